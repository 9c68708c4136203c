// The Chime backend against an in-process fake of the service (fake_chime.h):
// request shapes (paths, encoded ARNs, query timestamps, headers, tokens,
// metadata, base64, limits), the mapping back from channel messages, the
// cursor and its overlap, error mapping, and the reconciler parking a
// conversation the user was removed from.
#include "sync/chime/chime_backend.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>

#include "../engine/test_util.h"
#include "crypto/hash.h"
#include "fake_chime.h"
#include "sync/chime/chime_json.h"
#include "sync/core/reconciler.h"

namespace tidings::chime {
namespace {

const std::string kApp = "arn:aws:chime:us-east-1:123456789012:app-instance/app-1";
const std::string kAlice = kApp + "/user/alice";
const std::string kBob = kApp + "/user/bob";

struct Fixture {
  std::shared_ptr<testing::FakeChime> server = std::make_shared<testing::FakeChime>();
  std::unique_ptr<ChimeBackend> Backend(const std::string& user = kAlice) {
    ChimeConfig c;
    c.app_instance_arn = kApp;
    c.user_arn = user;
    c.region = "us-east-1";
    c.endpoint = "http://127.0.0.1:9";
    auto b = ChimeBackend::Create(c, aws::StaticCredentials({"AKIDEXAMPLE", "secret", "", 0}),
                                  std::make_unique<testing::FakeHttp>(server));
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return std::move(*b);
  }
  std::string Header(const http::Request& r, const std::string& name) {
    for (const auto& [k, v] : r.headers)
      if (k == name) return v;
    return "";
  }
};

engine::Conversation Conv(const std::string& id,
                          std::vector<std::string> members = {"alice", "bob"}) {
  engine::Conversation c;
  c.id = id;
  c.title = "Visit";
  c.members = std::move(members);
  return c;
}

engine::Operation Send(const std::string& id, const std::string& body) {
  engine::Operation op;
  op.kind = engine::OpKind::kSend;
  op.op_id = op.message_id = id;
  op.author = "alice";
  op.at = {(uint64_t{1'700'000'000'000} << 16) | 3, 0xabcdef};
  op.body = body;
  op.content_type = "text/plain";
  return op;
}

std::string Field(const std::string& json, const char* name) {
  simdjson::dom::parser p;
  simdjson::padded_string padded(json);
  std::string_view v;
  if (p.parse(padded)[name].get_string().get(v)) return "";
  return std::string(v);
}

TEST(ChimeBackend, CreateRefusesMissingArns) {
  auto bad = ChimeBackend::Create({"not-an-arn", kAlice, "us-east-1", "http://x"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("AppInstance ARN"), std::string::npos);
  auto no_user = ChimeBackend::Create({kApp, "", "us-east-1", "http://x"});
  EXPECT_EQ(no_user.status().code(), Code::kInvalidArgument);
}

TEST(ChimeBackend, EnsureConversationCreatesTheChannelWithMembers) {
  Fixture f;
  auto b = f.Backend();
  auto arn = b->EnsureConversation(Conv("visit-1"));
  ASSERT_TRUE(arn.ok()) << arn.status().ToString();
  EXPECT_EQ(*arn, b->DefaultChannelArn("visit-1"));
  // Listing, then CreateChannel with bob in MemberArns: members join with the
  // channel, so a member's device never finds it made without them.
  ASSERT_EQ(f.server->requests.size(), 2u);
  const auto& list = f.server->requests[0];
  EXPECT_EQ(list.method, "GET");
  EXPECT_NE(list.url.find("/channels?scope=app-instance-user-memberships"), std::string::npos);
  EXPECT_NE(list.url.find("app-instance-user-arn=arn%3Aaws%3Achime%3Aus-east-1%3A123456789012%"
                          "3Aapp-instance%2Fapp-1%2Fuser%2Falice"),
            std::string::npos)
      << list.url;
  const auto& create = f.server->requests[1];
  EXPECT_EQ(create.method, "POST");
  EXPECT_EQ(create.url, "http://127.0.0.1:9/channels");
  EXPECT_EQ(Field(create.body, "AppInstanceArn"), kApp);
  EXPECT_EQ(Field(create.body, "ChannelId"), arn->substr(kApp.size() + 9));
  EXPECT_EQ(Field(create.body, "ClientRequestToken"), Field(create.body, "ChannelId"));
  EXPECT_EQ(ParseChannelMetadata(Field(create.body, "Metadata")), "visit-1");
  EXPECT_EQ(Field(create.body, "Name"), "Visit");
  EXPECT_NE(create.body.find("\"MemberArns\":[" + JsonString(kBob) + "]"), std::string::npos)
      << create.body;
  for (const auto& r : f.server->requests) {
    EXPECT_EQ(f.Header(r, "x-amz-chime-bearer"), kAlice);
    EXPECT_NE(f.Header(r, "authorization").find("/us-east-1/chime/aws4_request"),
              std::string::npos);
  }
  // Cached: no more requests.
  ASSERT_TRUE(b->EnsureConversation(Conv("visit-1")).ok());
  EXPECT_EQ(f.server->requests.size(), 2u);
}

// A conversation that keeps messages N days gets a channel that expires N
// days after its last message; one without a policy gets none, and no extra
// request either.
TEST(ChimeBackend, RetentionSetsChannelExpiration) {
  Fixture f;
  ChimeConfig c;
  c.app_instance_arn = kApp;
  c.user_arn = kAlice;
  c.region = "us-east-1";
  c.endpoint = "http://127.0.0.1:9";
  c.keep_days = [](const std::string& conv) -> uint32_t { return conv == "short" ? 7 : 0; };
  auto b = ChimeBackend::Create(c, aws::StaticCredentials({"AKIDEXAMPLE", "secret", "", 0}),
                                std::make_unique<testing::FakeHttp>(f.server));
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE((*b)->EnsureConversation(Conv("short")).ok());
  ASSERT_TRUE((*b)->EnsureConversation(Conv("long")).ok());
  std::vector<std::string> creates;
  for (const auto& r : f.server->requests) {
    EXPECT_EQ(r.url.find("expiration-settings"), std::string::npos) << "made here: set at create";
    if (r.method == "POST" && r.url == "http://127.0.0.1:9/channels") creates.push_back(r.body);
  }
  ASSERT_EQ(creates.size(), 2u);
  EXPECT_NE(creates[0].find("\"ExpirationSettings\":{\"ExpirationDays\":7,"
                            "\"ExpirationCriterion\":\"LAST_MESSAGE_TIMESTAMP\"}"),
            std::string::npos)
      << creates[0];
  EXPECT_EQ(creates[1].find("ExpirationSettings"), std::string::npos) << creates[1];
}

TEST(ChimeBackend, TwoDevicesCreatingOneConversationMeetOnOneChannel) {
  Fixture f;
  auto alice = f.Backend(kAlice), bob = f.Backend(kBob);
  // Both list first (nothing there), then both create: the second gets a
  // Conflict on the deterministic ChannelId and uses the same channel.
  ASSERT_TRUE(alice->ListConversations().ok());
  ASSERT_TRUE(bob->ListConversations().ok());
  auto a = alice->EnsureConversation(Conv("shared"));
  ASSERT_TRUE(a.ok());
  f.server->channels[*a].members.erase(kBob);  // bob not yet added (a race)
  auto b = bob->EnsureConversation(Conv("shared"));
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(f.server->channels.size(), 1u);
  // Listing maps the channel back to the conversation id.
  f.server->channels[*a].members.insert(kBob);
  auto listed = bob->ListConversations();
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(*listed, std::vector<std::string>{"shared"});
}

TEST(ChimeBackend, SendShape) {
  Fixture f;
  auto b = f.Backend();
  auto arn = b->EnsureConversation(Conv("c1"));
  ASSERT_TRUE(arn.ok());
  f.server->requests.clear();
  engine::Operation op = Send("0190f3a2-b4c5-7000-8000-000000000001", "hello \"world\"\n");
  op.metadata = {{"k", "v"}};
  auto acks = b->Push("c1", std::span(&op, 1));
  ASSERT_TRUE(acks.ok()) << acks.status().ToString();
  ASSERT_EQ(acks->size(), 1u);
  ASSERT_TRUE((*acks)[0].status.ok());
  EXPECT_EQ((*acks)[0].remote_id.substr(0, 3), "msg");
  EXPECT_GT((*acks)[0].server_time_ms, 0u);
  ASSERT_EQ(f.server->requests.size(), 1u);
  const auto& r = f.server->requests[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.url,
            "http://127.0.0.1:9/channels/arn%3Aaws%3Achime%3Aus-east-1%3A123456789012%"
            "3Aapp-instance%2Fapp-1%2Fchannel%2F" +
                arn->substr(kApp.size() + 9) + "/messages");
  EXPECT_EQ(Field(r.body, "ClientRequestToken"), op.message_id);
  EXPECT_EQ(Field(r.body, "Persistence"), "PERSISTENT");
  EXPECT_EQ(Field(r.body, "Type"), "STANDARD");
  EXPECT_EQ(Field(r.body, "Content"), op.body);
  EXPECT_EQ(Field(r.body, "ContentType"), "text/plain");
  std::string metadata = Field(r.body, "Metadata");
  EXPECT_LE(metadata.size(), kMaxMetadataBytes);
  Envelope e;
  ASSERT_TRUE(ParseEnvelope(metadata, &e)) << metadata;
  EXPECT_EQ(e.kind, "send");
  EXPECT_EQ(e.message_id, op.message_id);
  EXPECT_EQ(e.op_id, op.op_id);
  EXPECT_EQ(e.hlc, op.at.hlc);
  EXPECT_EQ(e.replica, op.at.replica);
  EXPECT_EQ(e.author, "alice");
  EXPECT_EQ(e.metadata, op.metadata);
  EXPECT_EQ(f.Header(r, "content-type"), "application/json");
}

TEST(ChimeBackend, BinaryBodiesAreBase64AndLimitsAreClearErrors) {
  Fixture f;
  auto b = f.Backend();
  ASSERT_TRUE(b->EnsureConversation(Conv("c1")).ok());
  f.server->requests.clear();
  std::string binary = {'\xff', '\x00', '\x80', 'a'};
  engine::Operation bin = Send("bin-00000001", binary);
  engine::Operation big = Send("big-00000001", std::string(4097, 'x'));
  engine::Operation big_bin = Send("bigbin-000001", std::string(3073, '\xff'));
  engine::Operation fits = Send("fits-0000001", std::string(4096, 'y'));
  engine::Operation meta = Send("meta-0000001", "x");
  meta.metadata = {{"k", std::string(1000, 'm')}};
  std::vector<engine::Operation> ops = {bin, big, big_bin, fits, meta};
  auto acks = b->Push("c1", ops);
  ASSERT_TRUE(acks.ok());
  ASSERT_EQ(acks->size(), 5u);
  EXPECT_TRUE((*acks)[0].status.ok());
  EXPECT_EQ((*acks)[1].status.code(), Code::kTooLarge);
  EXPECT_NE((*acks)[1].status.message().find("4096"), std::string::npos)
      << (*acks)[1].status.ToString();
  EXPECT_EQ((*acks)[2].status.code(), Code::kTooLarge);
  EXPECT_NE((*acks)[2].status.message().find("base64"), std::string::npos);
  EXPECT_TRUE((*acks)[3].status.ok()) << "4096 bytes is the limit, inclusive";
  EXPECT_EQ((*acks)[4].status.code(), Code::kTooLarge);
  EXPECT_NE((*acks)[4].status.message().find("1024"), std::string::npos);
  EXPECT_EQ(sync::Classify((*acks)[1].status), sync::ErrorClass::kPermanent);
  // Only the two that fit were sent, never a truncated one.
  ASSERT_EQ(f.server->requests.size(), 2u);
  EXPECT_EQ(Field(f.server->requests[0].body, "ContentType"), kBase64ContentType);
  std::string decoded;
  ASSERT_TRUE(crypto::Base64Decode(Field(f.server->requests[0].body, "Content"), &decoded));
  EXPECT_EQ(decoded, binary);
  // And it comes back as the same bytes.
  auto page = b->Pull("c1", "", 100);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->ops.size(), 2u);
  EXPECT_EQ(page->ops[0].body, binary);
  EXPECT_EQ(page->ops[0].op_id, bin.op_id);
  EXPECT_EQ(page->ops[1].body, fits.body);
}

TEST(ChimeBackend, RetriedSendIsNotDuplicated) {
  Fixture f;
  auto b = f.Backend();
  ASSERT_TRUE(b->EnsureConversation(Conv("c1")).ok());
  engine::Operation op = Send("dup-00000001", "once");
  // 503 then throttled: the client's own retries, same token each time.
  f.server->faults = {{503, "ServiceUnavailableException", "", ""},
                      {429, "ThrottledClientException", "", ""}};
  auto first = b->Push("c1", std::span(&op, 1));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE((*first)[0].status.ok()) << (*first)[0].status.ToString();
  // The reconciler retries after a lost answer: same id, same message.
  auto again = b->Push("c1", std::span(&op, 1));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)[0].remote_id, (*first)[0].remote_id);
  EXPECT_EQ(f.server->channels.begin()->second.messages.size(), 1u);
  EXPECT_GE(b->client().retries(), 2u);
}

TEST(ChimeBackend, ThrottlingCarriesTheRetryHint) {
  Fixture f;
  auto b = f.Backend();
  ASSERT_TRUE(b->EnsureConversation(Conv("c1")).ok());
  engine::Operation ops[2] = {Send("t-000000001", "a"), Send("t-000000002", "b")};
  for (int i = 0; i < 3; ++i)
    f.server->faults.push_back({429, "ThrottledClientException", "", "50"});
  auto acks = b->Push("c1", ops);
  ASSERT_TRUE(acks.ok());
  EXPECT_EQ((*acks)[0].status.code(), Code::kUnavailable);
  EXPECT_EQ((*acks)[1].status.code(), Code::kUnavailable) << "nothing overtakes it";
  EXPECT_EQ((*acks)[0].retry_after_ms, 50);
  for (int i = 0; i < 3; ++i)
    f.server->faults.push_back({429, "ThrottledClientException", "", "80"});
  auto page = b->Pull("c1", "", 50);
  EXPECT_EQ(page.status().code(), Code::kUnavailable);
  EXPECT_EQ(b->last_retry_after_ms(), 80);
  EXPECT_TRUE(f.server->channels.begin()->second.messages.empty());
}

TEST(ChimeBackend, OperationsTravelAsMessagesAndAreMirrored) {
  Fixture f;
  auto b = f.Backend();
  auto arn = b->EnsureConversation(Conv("c1"));
  ASSERT_TRUE(arn.ok());
  engine::Operation send = Send("m-0000000001", "typo");
  engine::Operation edit;
  edit.kind = engine::OpKind::kEdit;
  edit.op_id = "e-0000000001";
  edit.message_id = send.message_id;
  edit.author = "alice";
  edit.at = {send.at.hlc + 5, send.at.replica};
  edit.body = "fixed";
  engine::Operation react = edit;
  react.kind = engine::OpKind::kReact;
  react.op_id = "r-0000000001";
  react.body.clear();
  react.reaction = "👍";
  engine::Operation read = react;
  read.kind = engine::OpKind::kReadMarker;
  read.op_id = "rd-000000001";
  read.message_id.clear();
  read.reaction.clear();
  read.read_up_to = send.at;
  engine::Operation del = edit;
  del.kind = engine::OpKind::kDelete;
  del.op_id = "d-0000000001";
  del.body.clear();
  std::vector<engine::Operation> ops = {send, edit, react, read, del};
  f.server->requests.clear();
  auto acks = b->Push("c1", ops);
  ASSERT_TRUE(acks.ok());
  for (const auto& a : *acks) EXPECT_TRUE(a.status.ok()) << a.status.ToString();
  EXPECT_EQ(b->mirror_failures(), 0u);
  // send, edit + UpdateChannelMessage, react, read + UpdateChannelReadMarker,
  // delete + RedactChannelMessage.
  std::vector<std::string> shape;
  for (const auto& r : f.server->requests) {
    std::string path = r.url.substr(r.url.find("/channels/") + 10);
    path = path.substr(path.find('/'));
    shape.push_back(r.method + " " + path);
  }
  const std::string id = f.server->channels[*arn].messages[0].id;
  // The delete reads its target first (its time: the tombstone every device
  // derives from the redaction).
  EXPECT_EQ(shape, (std::vector<std::string>{
                       "POST /messages", "POST /messages", "PUT /messages/" + id, "POST /messages",
                       "POST /messages", "PUT /readMarker", "GET /messages/" + id, "POST /messages",
                       "POST /messages/" + id + "?operation=redact"}));
  const auto& edit_req = f.server->requests[1];
  EXPECT_EQ(Field(edit_req.body, "ContentType"), kOpContentType);
  EXPECT_EQ(Field(edit_req.body, "ClientRequestToken"), edit.op_id);
  // Other clients show a line of text; the operation rides in Metadata.
  EXPECT_EQ(Field(edit_req.body, "Content"), "\u270f\ufe0f edited: fixed");
  Envelope e;
  ASSERT_TRUE(ParseEnvelope(Field(edit_req.body, "Metadata"), &e));
  EXPECT_EQ(e.kind, "edit");
  EXPECT_EQ(e.op_id, edit.op_id);
  EXPECT_EQ(Field(f.server->requests[3].body, "Content"), "reacted 👍");
  EXPECT_EQ(Field(f.server->requests[4].body, "Content"), "\u2713 read");
  EXPECT_EQ(Field(f.server->requests[7].body, "Content"), "\U0001F5D1\uFE0F deleted a message");
  // The native update keeps the Tidings envelope of the original message.
  Envelope kept;
  ASSERT_TRUE(ParseEnvelope(Field(f.server->requests[2].body, "Metadata"), &kept));
  EXPECT_EQ(kept.message_id, send.message_id);
  EXPECT_EQ(kept.hlc, send.at.hlc);
  EXPECT_EQ(kept.edit_op_id, edit.op_id) << "and the edit itself";
  EXPECT_EQ(kept.edit_hlc, edit.at.hlc);

  // A fresh device pulls all of it back: same ops, same ids and order keys,
  // whatever the native calls did to the original message. The redaction
  // stripped the send's metadata, so the delete brings its place along.
  for (bool keeps : {false, true}) {
    f.server->redact_keeps_metadata = keeps;
    if (keeps) {
      auto& first = f.server->channels[*arn].messages[0];
      first.metadata = Field(f.server->requests[2].body, "Metadata");
    }
    auto other = f.Backend(kAlice);
    auto page = other->Pull("c1", "", 50);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    std::map<std::string, engine::Operation> by_id;
    std::vector<std::string> order;
    for (const auto& op : page->ops) {
      EXPECT_FALSE(op.remote_id.empty());
      if (by_id.emplace(op.op_id, op).second) order.push_back(op.op_id);
    }
    ASSERT_EQ(by_id.count(edit.op_id), 1u) << keeps;
    EXPECT_EQ(by_id[edit.op_id].body, "fixed");
    EXPECT_EQ(by_id[edit.op_id].at, edit.at);
    EXPECT_EQ(by_id[react.op_id].reaction, "👍");
    EXPECT_EQ(by_id[read.op_id].read_up_to, send.at);
    ASSERT_EQ(by_id.count(send.op_id), 1u) << "the target's place";
    EXPECT_EQ(by_id[send.op_id].at, send.at);
    EXPECT_EQ(by_id[del.op_id].kind, engine::OpKind::kDelete);
    // The redacted message is the delete's own (its operation names it): no
    // second, foreign-looking tombstone takes a place in the conversation.
    for (const auto& op : page->ops) {
      EXPECT_FALSE(op.kind == engine::OpKind::kSend && op.message_id == "chime:" + id) << keeps;
    }
    EXPECT_EQ(by_id.count(edit.op_id) + by_id.count(react.op_id) + by_id.count(read.op_id) +
                  by_id.count(send.op_id) + by_id.count(del.op_id),
              5u);
  }
}

TEST(ChimeBackend, MirrorFailureLosesNothingAndDoublesNothing) {
  Fixture f;
  auto b = f.Backend();
  auto arn = b->EnsureConversation(Conv("c1"));
  ASSERT_TRUE(arn.ok());
  engine::Operation send = Send("m-0000000002", "x");
  ASSERT_TRUE(b->Push("c1", std::span(&send, 1)).ok());
  engine::Operation edit = send;
  edit.kind = engine::OpKind::kEdit;
  edit.op_id = "e-0000000002";
  edit.body = "y";
  auto& fake = *f.server;
  const size_t n = fake.channels[*arn].messages.size();
  // Another process does not know the target's Chime id: the mirror is
  // skipped (counted); the op message is delivered.
  auto b2 = f.Backend();
  auto r = b2->Push("c1", std::span(&edit, 1));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r)[0].status.ok());
  EXPECT_EQ(b2->mirror_failures(), 1u);
  EXPECT_EQ(fake.channels[*arn].messages.size(), n + 1);
  // This one knows it, but every attempt of the native update fails.
  edit.op_id = "e-0000000003";
  for (int i = 0; i < 3; ++i)
    fake.faults.push_back({500, "ServiceFailureException", "", "", "PUT"});
  auto r2 = b->Push("c1", std::span(&edit, 1));
  ASSERT_TRUE(r2.ok());
  EXPECT_TRUE((*r2)[0].status.ok()) << "the op is delivered; only the mirror failed";
  EXPECT_EQ(b->mirror_failures(), 1u);
  EXPECT_EQ(b->last_retry_after_ms(), std::nullopt);
  EXPECT_EQ(fake.channels[*arn].messages.size(), n + 2);
  // The reconciler never heard and retries: nothing doubles.
  auto r3 = b->Push("c1", std::span(&edit, 1));
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ((*r3)[0].remote_id, (*r2)[0].remote_id);
  EXPECT_EQ(fake.channels[*arn].messages.size(), n + 2);
}

std::map<std::string, std::string> Query(const std::string& url) {
  std::map<std::string, std::string> out;
  std::string q = url.substr(url.find('?') + 1);
  size_t start = 0;
  while (true) {
    size_t amp = q.find('&', start);
    std::string kv = q.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
    out[kv.substr(0, kv.find('='))] = testing::UrlDecode(kv.substr(kv.find('=') + 1));
    if (amp == std::string::npos) break;
    start = amp + 1;
  }
  return out;
}

TEST(ChimeBackend, PullPagesAscendingWithOverlapAndDedupe) {
  Fixture f;
  auto b = f.Backend();
  auto arn = b->EnsureConversation(Conv("c1"));
  ASSERT_TRUE(arn.ok());
  f.server->step_ms = 201;  // 120 messages over 24 s: the overlap holds ~25
  std::vector<engine::Operation> ops;
  for (int i = 0; i < 120; ++i) {
    char id[32];
    std::snprintf(id, sizeof(id), "p-%09d", i);
    ops.push_back(Send(id, "m" + std::to_string(i)));
  }
  for (size_t i = 0; i < ops.size(); i += 20) {
    auto acks = b->Push("c1", std::span(ops).subspan(i, 20));
    ASSERT_TRUE(acks.ok());
  }
  f.server->requests.clear();
  std::string cursor;
  std::vector<std::string> got;
  for (int page = 0; page < 10; ++page) {
    auto p = b->Pull("c1", cursor, 100);  // capped at 50 per request
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    for (const auto& op : p->ops) got.push_back(op.op_id);
    cursor = p->next_cursor;
    if (!p->has_more) break;
  }
  ASSERT_EQ(got.size(), 120u);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], ops[i].op_id);
  ASSERT_EQ(f.server->requests.size(), 4u) << "three pages and a rescan";
  EXPECT_EQ(Query(f.server->requests[3].url)["sort-order"], "DESCENDING");
  auto q0 = Query(f.server->requests[0].url);
  EXPECT_EQ(q0["sort-order"], "ASCENDING");
  EXPECT_EQ(q0["max-results"], "50");
  EXPECT_EQ(q0.count("not-before"), 0u) << "from the beginning";
  auto q1 = Query(f.server->requests[1].url);
  EXPECT_EQ(q1["next-token"], "o50");
  // A restart: a new backend continues from the persisted cursor. The new
  // listing starts the overlap window before the newest message and returns
  // nothing already merged.
  const int64_t newest = f.server->channels[*arn].messages.back().created_ms;
  auto fresh = f.Backend();
  f.server->requests.clear();
  auto again = fresh->Pull("c1", cursor, 100);
  const std::string listing_url = [&] {
    for (const auto& r : f.server->requests) {
      if (r.url.find("sort-order=ASCENDING") != std::string::npos) return r.url;
    }
    return std::string();
  }();
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->ops.empty()) << "the overlap is deduplicated";
  EXPECT_EQ(again->next_cursor, cursor) << "nothing new: the cursor does not move";
  auto q = Query(listing_url);
  char expect[64];
  std::time_t secs = static_cast<std::time_t>((newest - kOverlapMs) / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::strftime(expect, sizeof(expect), "%Y-%m-%dT%H:%M:%S", &tm);
  std::string iso = std::string(expect) + "." +
                    std::to_string(1000 + (newest - kOverlapMs) % 1000).substr(1) + "000Z";
  EXPECT_EQ(q["not-before"], iso);
  EXPECT_NE(listing_url.find("not-before=" + aws::UriEncode(iso, true)), std::string::npos);
  // A message that became visible late, inside the overlap window, is found.
  {
    testing::FakeMessage m;
    m.id = "late1";
    m.content = "late";
    m.sender = kBob;
    m.created_ms = newest - 1000;
    f.server->channels[*arn].messages.push_back(m);
  }
  auto with_late = fresh->Pull("c1", cursor, 100);
  ASSERT_TRUE(with_late.ok());
  ASSERT_EQ(with_late->ops.size(), 1u);
  EXPECT_EQ(with_late->ops[0].op_id, "chime:late1");
}

// Newest first, read by hand: forward pulls from `cursor` until the listing
// has no more (at most `rounds`), and older pages from `before` to the
// beginning (at most `max_pages`; `rewrite` may change each position first),
// counting each operation id in *seen.
void PullForward(ChimeBackend& reader, std::string cursor, int rounds,
                 std::map<std::string, int>* seen) {
  for (int i = 0; i < rounds; ++i) {
    auto p = reader.Pull("c1", cursor, 50);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    for (const auto& op : p->ops) (*seen)[op.op_id]++;
    cursor = p->next_cursor;
    if (!p->has_more) break;
  }
}

void PullOlder(ChimeBackend& reader, std::string before, size_t limit, int max_pages,
               std::map<std::string, int>* seen,
               const std::function<std::string(std::string)>& rewrite = {}) {
  for (int pages = 0; !before.empty(); ++pages) {
    ASSERT_LT(pages, max_pages) << "the history never ends";
    if (rewrite) before = rewrite(before);
    auto older = reader.PullHistory("c1", before, limit);
    ASSERT_TRUE(older.ok()) << older.status().ToString();
    for (const auto& op : older->ops) (*seen)[op.op_id]++;
    before = older->before;
  }
}

// Newest first: the newest page of a small channel (no NextToken, so no
// older page) hands over a forward cursor that still finds a message made
// visible late inside the overlap window (docs/chime.md, "Newest first"), as
// the cursor of an oldest-first listing of the same messages does: the
// cursor starts at B, not at the page's oldest message.
TEST(ChimeBackend, NewestPageForwardCursorFindsALateMessageOlderThanThePage) {
  Fixture f;
  auto b = f.Backend();
  auto arn = b->EnsureConversation(Conv("c1"));
  ASSERT_TRUE(arn.ok());
  f.server->step_ms = 100;
  std::vector<engine::Operation> ops = {Send("n-1", "one"), Send("n-2", "two"),
                                        Send("n-3", "three")};
  for (const auto& op : ops) ASSERT_TRUE(b->Push("c1", std::span(&op, 1)).ok());
  const int64_t oldest = f.server->channels[*arn].messages.front().created_ms;

  auto reader = f.Backend(kBob);
  ASSERT_TRUE(reader->ListConversations().ok());
  auto newest = reader->PullHistory("c1", "", 50);
  ASSERT_TRUE(newest.ok()) << newest.status().ToString();
  ASSERT_EQ(newest->ops.size(), 3u);
  EXPECT_TRUE(newest->before.empty()) << "the whole channel fits the page";
  ASSERT_FALSE(newest->forward_cursor.empty());

  // Made visible late: created 200 ms before the page's oldest message, well
  // inside the 5 s overlap window behind the newest one.
  testing::FakeMessage late;
  late.id = "late1";
  late.content = "late";
  late.sender = kAlice;
  late.created_ms = oldest - 200;
  f.server->channels[*arn].messages.push_back(late);

  // For comparison: the oldest-first cursor of the same three messages finds it.
  {
    auto other = f.Backend(kBob);
    ASSERT_TRUE(other->ListConversations().ok());
    f.server->channels[*arn].messages.pop_back();
    auto first = other->Pull("c1", "", 50);
    ASSERT_TRUE(first.ok());
    f.server->channels[*arn].messages.push_back(late);
    auto then = other->Pull("c1", first->next_cursor, 50);
    ASSERT_TRUE(then.ok());
    ASSERT_EQ(then->ops.size(), 1u);
    EXPECT_EQ(then->ops[0].op_id, "chime:late1");
  }

  std::map<std::string, int> got;
  PullForward(*reader, newest->forward_cursor, 3, &got);
  EXPECT_EQ(got, (std::map<std::string, int>{{"chime:late1", 1}}))
      << "a message made visible late, older than the newest page's oldest, once";
}

// Newest first with messages created in the same millisecond across the
// page boundary: forward pulls and the older pages split the channel at a
// time, not at a message, so each message of that millisecond is read once
// ("each operation once", docs/sync.md).
TEST(ChimeBackend, SameMillisecondAcrossTheNewestPageBoundaryIsReadOnce) {
  Fixture f;
  auto b = f.Backend();
  auto arn = b->EnsureConversation(Conv("c1"));
  ASSERT_TRUE(arn.ok());
  f.server->step_ms = 0;  // every message in one millisecond
  std::vector<engine::Operation> ops;
  for (int i = 0; i < 5; ++i) ops.push_back(Send("s-" + std::to_string(i), "m"));
  for (const auto& op : ops) ASSERT_TRUE(b->Push("c1", std::span(&op, 1)).ok());

  auto reader = f.Backend(kBob);
  ASSERT_TRUE(reader->ListConversations().ok());
  std::map<std::string, int> seen;
  auto newest = reader->PullHistory("c1", "", 2);
  ASSERT_TRUE(newest.ok()) << newest.status().ToString();
  for (const auto& op : newest->ops) seen[op.op_id]++;
  ASSERT_FALSE(newest->before.empty());
  PullForward(*reader, newest->forward_cursor, 5, &seen);
  PullOlder(*reader, newest->before, 2, 10, &seen);
  EXPECT_EQ(seen.size(), ops.size());
  for (const auto& op : ops) EXPECT_EQ(seen[op.op_id], 1) << op.op_id;
}

// Newest first with older pages: a message created just before the newest
// page's oldest message (inside the overlap window) that becomes visible
// only after the older pages were read (the reconciler reads them right
// after the newest page) is found by the forward pulls, which start at B,
// the overlap's start, as an oldest-first cursor's would.
TEST(ChimeBackend, NewestFirstLateMessageVisibleAfterTheOlderPagesIsFound) {
  Fixture f;
  auto b = f.Backend();
  auto arn = b->EnsureConversation(Conv("c1"));
  ASSERT_TRUE(arn.ok());
  f.server->step_ms = 50;
  std::vector<engine::Operation> ops;
  for (int i = 0; i < 12; ++i) ops.push_back(Send("v-" + std::to_string(100 + i), "m"));
  for (const auto& op : ops) ASSERT_TRUE(b->Push("c1", std::span(&op, 1)).ok());
  auto& messages = f.server->channels[*arn].messages;
  ASSERT_LT(messages.back().created_ms - messages.front().created_ms, kOverlapMs);

  auto reader = f.Backend(kBob);
  ASSERT_TRUE(reader->ListConversations().ok());
  std::map<std::string, int> seen;
  auto newest = reader->PullHistory("c1", "", 4);
  ASSERT_TRUE(newest.ok()) << newest.status().ToString();
  for (const auto& op : newest->ops) seen[op.op_id]++;
  const int64_t page_oldest = messages[messages.size() - 4].created_ms;
  PullOlder(*reader, newest->before, 4, 10, &seen);
  // Now visible: created 10 ms before the newest page's oldest message.
  testing::FakeMessage late;
  late.id = "late2";
  late.content = "late";
  late.sender = kAlice;
  late.created_ms = page_oldest - 10;
  messages.push_back(late);
  PullForward(*reader, newest->forward_cursor, 5, &seen);
  EXPECT_EQ(seen["chime:late2"], 1) << "lost: in no listing";
  for (const auto& op : ops) EXPECT_EQ(seen[op.op_id], 1) << op.op_id;
}

TEST(ChimeBackend, EventsNameWhatToPullAndAnOldCursorStillReads) {
  Fixture f;
  auto b = f.Backend();
  auto arn = b->EnsureConversation(Conv("c1"));
  ASSERT_TRUE(arn.ok());
  ASSERT_TRUE(b->ListConversations().ok());
  f.server->ForeignMessage(*arn, kBob, "to be deleted");
  auto first = b->Pull("c1", "", 50);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->ops.size(), 1u);
  const std::string id = f.server->channels[*arn].messages.back().id;
  auto event = [&](const std::string& type, const std::string& channel) {
    sync::RealtimeEvent e;
    e.type = type;
    e.payload = "{\"ChannelArn\":\"" + channel + "\",\"MessageId\":\"" + id +
                "\",\"Content\":\"\",\"Type\":\"STANDARD\",\"Persistence\":\"PERSISTENT\","
                "\"CreatedTimestamp\":\"2023-11-14T22:13:20.123Z\",\"Sender\":{\"Arn\":\"" +
                kBob + "\"}}";
    auto effect = b->AcceptEvent(e);
    EXPECT_TRUE(effect.ok()) << effect.status().ToString();
    return effect.ok() ? *effect : sync::EventEffect{};
  };
  // An administrator's deletion: the message left the listing for good; the
  // next pull tombstones it anyway (no placeholder: this device has it).
  auto deleted = event("DELETE_CHANNEL_MESSAGE", *arn);
  EXPECT_EQ(deleted.pull_conversations, std::vector<std::string>{"c1"});
  auto next = b->Pull("c1", first->next_cursor, 50);
  ASSERT_TRUE(next.ok());
  ASSERT_EQ(next->ops.size(), 1u);
  EXPECT_EQ(next->ops[0].kind, engine::OpKind::kDelete);
  EXPECT_EQ(next->ops[0].message_id, "chime:" + id);
  EXPECT_EQ(next->ops[0].op_id, "chime-tombstone:" + id);
  EXPECT_EQ(next->ops[0].author, "bob");
  EXPECT_TRUE(b->Pull("c1", next->next_cursor, 50)->ops.empty()) << "remembered once";
  // A sealed log's channel: pull the log. A channel this user is not in:
  // relist (after one listing).
  const std::string log = "e" + std::string(32, 'c');
  EXPECT_EQ(event("CREATE_CHANNEL_MESSAGE", b->LogChannelArn(log)).pull_logs,
            std::vector<std::string>{log});
  const size_t before = f.server->requests.size();
  EXPECT_TRUE(event("CREATE_CHANNEL_MESSAGE", kApp + "/channel/unknown").relist);
  EXPECT_TRUE(event("CREATE_CHANNEL_MESSAGE", kApp + "/channel/unknown").relist);
  EXPECT_LE(f.server->requests.size() - before, 1u) << "at most one listing a second";

  // A cursor written by an older build ("c1") resumes 5 s before its newest.
  f.server->requests.clear();
  const int64_t newest = f.server->channels[*arn].messages.back().created_ms;
  auto old = b->Pull("c1", "c1;" + std::to_string(newest) + ";;;", 50);
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  bool listed_from_overlap = false;
  for (const auto& r : f.server->requests) {
    auto q = Query(r.url);
    if (q["sort-order"] == "ASCENDING") listed_from_overlap = !q["not-before"].empty();
  }
  EXPECT_TRUE(listed_from_overlap);
}

TEST(ChimeBackend, OtherClientsMessagesMergeWithAStableOrder) {
  Fixture f;
  auto b = f.Backend();
  auto arn = b->EnsureConversation(Conv("c1"));
  ASSERT_TRUE(arn.ok());
  f.server->ForeignMessage(*arn, kBob, "hi from boto3");
  // Tidings-looking metadata that does not parse: a plain message.
  f.server->ForeignMessage(*arn, kBob, "odd");
  f.server->channels[*arn].messages.back().metadata = "{\"tidings\":1,\"k\":\"send\",\"h\":7}";
  // A malformed op message: skipped.
  f.server->ForeignMessage(*arn, kBob, "{not json");
  f.server->channels[*arn].messages.back().content_type = kOpContentType;
  // A bot outside the user namespace, and so outside the conversation's
  // members: skipped, like the malformed op message.
  f.server->ForeignMessage(*arn, kApp + "/bot/helper", "beep");
  auto page = b->Pull("c1", "", 50);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->ops.size(), 2u);
  EXPECT_EQ(page->skipped, 2u);
  const auto& m = f.server->channels[*arn].messages;
  const auto& op = page->ops[0];
  EXPECT_EQ(op.kind, engine::OpKind::kSend);
  EXPECT_EQ(op.message_id, "chime:" + m[0].id);
  EXPECT_EQ(op.op_id, op.message_id);
  EXPECT_EQ(op.author, "bob");
  EXPECT_EQ(op.body, "hi from boto3");
  EXPECT_EQ(op.content_type, "text/plain");
  EXPECT_EQ(op.at.hlc, static_cast<uint64_t>(m[0].created_ms) << 16);
  EXPECT_EQ(op.server_time_ms, static_cast<uint64_t>(m[0].created_ms));
  EXPECT_EQ(op.remote_id, m[0].id);
  EXPECT_EQ(page->ops[1].body, "odd");
  EXPECT_EQ(page->ops[1].message_id, "chime:" + m[1].id);
  EXPECT_EQ(page->ops[1].at.replica, op.at.replica) << "same sender, same replica hash";
  // Another device computes exactly the same operations.
  auto other = f.Backend(kBob);
  ASSERT_TRUE(other->EnsureConversation(Conv("c1")).ok());
  auto same = other->Pull("c1", "", 50);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->ops, page->ops);
  // A device without the member list (an invitation found in the listing)
  // cannot tell members apart: it takes the bot's message, with its own
  // stable order key.
  auto invited = f.Backend(kBob);
  auto all = invited->Pull("c1", "", 50);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->ops.size(), 3u);
  EXPECT_EQ(all->skipped, 1u);
  EXPECT_EQ(all->ops[2].author, kApp + "/bot/helper");
  EXPECT_NE(all->ops[2].at.replica, op.at.replica);
}

// A member cannot pass as another: the author of a pulled operation is the
// sender Chime authenticated, whatever the envelope claims.
TEST(ChimeBackend, TheAuthorIsTheSenderChimeAuthenticatedNotTheEnvelopesClaim) {
  Fixture f;
  auto alice = f.Backend(kAlice);
  auto bob = f.Backend(kBob);
  ASSERT_TRUE(alice->EnsureConversation(Conv("c1")).ok());
  ASSERT_TRUE(bob->ListConversations().ok());
  engine::Operation forged = Send("m-0000000001", "I am alice, really");  // author "alice"
  engine::Operation edit;
  edit.kind = engine::OpKind::kEdit;
  edit.op_id = "e-0000000001";
  edit.message_id = "m-0000000002";  // alice's message, below
  edit.author = "alice";
  edit.at = {forged.at.hlc + 9, 7};
  edit.body = "rewritten by bob";
  ASSERT_TRUE(alice->Push("c1", std::vector<engine::Operation>{Send("m-0000000002", "mine")}).ok());
  auto acks = bob->Push("c1", std::vector<engine::Operation>{forged, edit});
  ASSERT_TRUE(acks.ok()) << acks.status().ToString();
  auto page = alice->Pull("c1", "", 50);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  std::map<std::string, std::string> author;
  for (const auto& op : page->ops) author[op.op_id] = op.author;
  EXPECT_EQ(author["m-0000000002"], "alice");
  EXPECT_EQ(author["m-0000000001"], "bob") << "the forged send is bob's";
  EXPECT_EQ(author["e-0000000001"], "bob") << "so the engine can refuse bob's edit of alice's";
}

TEST(ChimeBackend, ErrorsAreMappedAndMalformedResponsesAreClear) {
  Fixture f;
  auto b = f.Backend();
  ASSERT_TRUE(b->EnsureConversation(Conv("c1")).ok());
  f.server->faults = {{200, "", "{\"ChannelMessages\":[{\"MessageId\":5}]}", "", ""}};
  auto bad = b->Pull("c1", "", 50);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("malformed Chime response"), std::string::npos);
  for (const char* body :
       {"", "[]", "{\"ChannelMessages\":{}}", "{\"ChannelMessages\":[{}]}",
        "{\"ChannelMessages\":[{\"MessageId\":\"x\",\"CreatedTimestamp\":\"y\"}]}", "\xff\xfe",
        "{\"ChannelMessages\":[{\"MessageId\":\"x\"", "null"}) {
    f.server->faults = {{200, "", body, "", ""}};
    if (std::string(body).empty()) f.server->faults.front().body = " ";
    auto r = b->Pull("c1", "", 50);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << body;
  }
  f.server->faults = {{403, "ForbiddenException", "", "", ""}};
  auto denied = b->Pull("c1", "", 50);
  EXPECT_EQ(denied.status().code(), Code::kPermissionDenied);
  EXPECT_NE(denied.status().message().find("removed"), std::string::npos);
  EXPECT_NE(denied.status().message().find("docs/chime.md"), std::string::npos);
  f.server->faults = {{404, "NotFoundException", "", "", ""}};
  EXPECT_EQ(b->Pull("c1", "", 50).status().code(), Code::kNotFound);
  f.server->faults = {{401, "UnauthorizedClientException", "", "", ""}};
  EXPECT_EQ(b->Pull("c1", "", 50).status().code(), Code::kUnauthenticated);
  // A NextToken the server no longer accepts: the listing starts again.
  engine::Operation op = Send("tok-00000001", "x");
  ASSERT_TRUE(b->Push("c1", std::span(&op, 1)).ok());
  f.server->faults = {{400, "BadRequestException", "", "", "next-token"}};
  f.server->requests.clear();
  auto restarted = b->Pull("c1", "c1;-1;;0;o999", 50);
  ASSERT_TRUE(restarted.ok()) << restarted.status().ToString();
  EXPECT_EQ(restarted->ops.size(), 1u);
  EXPECT_EQ(f.server->requests.size(), 3u) << "refused, listed again, rescanned";
  // A cursor that does not parse starts from the beginning.
  auto garbage = b->Pull("c1", "garbage;;", 50);
  ASSERT_TRUE(garbage.ok());
  EXPECT_EQ(garbage->ops.size(), 1u);
}

TEST(ChimeBackend, PullOfAConversationWithoutAChannelReadsNothing) {
  Fixture f;
  auto b = f.Backend();
  auto page = b->Pull("local-only", "", 50);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->ops.empty());
  EXPECT_FALSE(page->has_more);
  EXPECT_EQ(f.server->requests.size(), 1u) << "only the listing";
}

// Removal from a channel, end to end through the reconciler: the
// conversation's pending operations are parked with the reason, it is no
// longer polled, nothing local is lost and other conversations go on.
TEST(ChimeBackend, RemovedFromAChannelParksOnlyThatConversation) {
  Fixture f;
  tidings::testing::TempDir dir;
  auto store = engine::Store::Open(dir.path(), tidings::testing::TestKey(),
                                   tidings::testing::CreateOptions("alice"));
  ASSERT_TRUE(store.ok());
  auto b = f.Backend();
  int64_t now = 1'000;
  sync::SyncConfig plaintext;  // parking a refused plaintext channel
  plaintext.end_to_end_default = false;
  sync::Reconciler rec(
      &(*store)->sync_log(), b.get(), plaintext, [&] { return now; }, [] { return 0; });
  ASSERT_TRUE((*store)->PutConversation("kept", "Kept", {"alice", "bob"}).ok());
  ASSERT_TRUE((*store)->PutConversation("lost", "Lost", {"alice", "bob"}).ok());
  ASSERT_TRUE((*store)->Send({.conversation_id = "kept", .body = "k1"}).ok());
  ASSERT_TRUE((*store)->Send({.conversation_id = "lost", .body = "l1"}).ok());
  ASSERT_TRUE(rec.SyncAll().ok());
  EXPECT_TRUE((*store)->Outbox(0)->empty());
  // A moderator removes alice from "lost".
  std::string lost_arn = b->DefaultChannelArn("lost");
  f.server->channels[lost_arn].members.erase(kAlice);
  auto pending = (*store)->Send({.conversation_id = "lost", .body = "l2"});
  ASSERT_TRUE(pending.ok());
  ASSERT_TRUE((*store)->Send({.conversation_id = "kept", .body = "k2"}).ok());
  now += 10'000;
  ASSERT_TRUE(rec.SyncAll().ok());
  auto st = rec.GetStatus("lost");
  EXPECT_TRUE(st.stopped);
  EXPECT_NE(st.last_error.find("PERMISSION_DENIED"), std::string::npos) << st.last_error;
  auto outbox = (*store)->Outbox(0);
  ASSERT_EQ(outbox->size(), 1u);
  EXPECT_TRUE(outbox->front().failed);
  EXPECT_NE(outbox->front().last_error.find("removed"), std::string::npos);
  auto lost = (*store)->Get(pending->id);
  ASSERT_TRUE(lost.ok());
  EXPECT_EQ(lost->state, engine::MessageState::kFailed);
  EXPECT_EQ(lost->body, "l2") << "nothing local is lost";
  EXPECT_EQ((*store)->Page({.conversation_id = "lost"})->size(), 2u);
  // The other conversation goes on.
  EXPECT_FALSE(rec.GetStatus("kept").stopped);
  EXPECT_EQ(f.server->channels[b->DefaultChannelArn("kept")].messages.size(), 2u);
  // And it is not polled any more.
  size_t requests = f.server->requests.size();
  now += 120'000;
  ASSERT_TRUE(rec.Pull("lost").ok());
  EXPECT_EQ(f.server->requests.size(), requests);
}

TEST(ChimeBackend, SealedLogShapesAndMalformedFramesSkipped) {
  Fixture f;
  auto b = f.Backend();
  const std::string log = "e" + std::string(32, '7');
  EXPECT_EQ(b->EnsureLog({"visit-1", {"alice"}}).status().code(), Code::kInvalidArgument);
  auto arn = b->EnsureLog({log, {"alice", "bob"}});
  ASSERT_TRUE(arn.ok()) << arn.status().ToString();
  const auto create = f.server->requests.back();
  EXPECT_EQ(Field(create.body, "ChannelId"), "tidings-" + log);
  EXPECT_EQ(Field(create.body, "Name"), "tidings") << "no title";
  EXPECT_EQ(Field(create.body, "Metadata"), "{\"tidings\":\"e2e1\"}") << "no conversation id";
  EXPECT_EQ(Field(create.body, "Privacy"), "PRIVATE");
  EXPECT_NE(create.body.find("\"MemberArns\":[" + JsonString(kBob) + "]"), std::string::npos);
  const size_t requests = f.server->requests.size();
  ASSERT_TRUE(b->EnsureLog({log, {"alice", "bob"}}).ok());
  EXPECT_EQ(f.server->requests.size(), requests) << "ensured already: no request";

  std::vector<sync::Frame> frames(1);
  frames[0].id = "k.1.0123abcd";
  frames[0].bytes = "\xE1\x02 key share";
  ASSERT_TRUE(b->PushFrames(log, frames).ok());
  const auto send = f.server->requests.back();
  const std::string token = Field(send.body, "ClientRequestToken");
  EXPECT_GE(token.size(), 2u);
  EXPECT_LE(token.size(), 64u);
  for (char c : token)
    EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') << token;
  EXPECT_EQ(Field(send.body, "Content"), crypto::Base64Encode(frames[0].bytes));
  EXPECT_EQ(ParseFrameMetadata(Field(send.body, "Metadata")), "k.1.0123abcd");

  // Not frames: bad base64, a redacted frame, a frame id outside the
  // alphabet, another client's text.
  f.server->ForeignMessage(*arn, kBob, "!!not base64");
  f.server->channels[*arn].messages.back().metadata = WriteFrameMetadata("o.1");
  f.server->ForeignMessage(*arn, kBob, " ");
  f.server->channels[*arn].messages.back().metadata = WriteFrameMetadata("o.2");
  f.server->channels[*arn].messages.back().redacted = true;
  f.server->ForeignMessage(*arn, kBob, "4QE=");
  f.server->channels[*arn].messages.back().metadata = WriteFrameMetadata("bad id/");
  f.server->ForeignMessage(*arn, kBob, "hello");
  auto page = b->PullFrames(log, "", 50);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->frames.size(), 1u);
  EXPECT_EQ(page->frames[0].bytes, frames[0].bytes);
  EXPECT_EQ(page->frames[0].sender, "alice");
  EXPECT_EQ(page->skipped, 4u);
  EXPECT_EQ(page->log_creator, "alice");
  EXPECT_EQ(page->log_members, (std::vector<std::string>{"alice", "bob"}));
  auto next = b->PullFrames(log, page->next_cursor, 50);
  ASSERT_TRUE(next.ok());
  EXPECT_TRUE(next->frames.empty());
  EXPECT_TRUE(next->log_creator.empty()) << "only from the start";

  // Refused before any request: a bad id, an empty or oversized frame.
  frames[0].id = "has space";
  EXPECT_EQ((*b->PushFrames(log, frames))[0].status.code(), Code::kInvalidArgument);
  frames[0].id = "o.3";
  frames[0].bytes.assign(kMaxFrameBytes + 1, 'x');
  EXPECT_EQ((*b->PushFrames(log, frames))[0].status.code(), Code::kTooLarge);
  frames[0].bytes.clear();
  EXPECT_EQ((*b->PushFrames(log, frames))[0].status.code(), Code::kInvalidArgument);
  EXPECT_EQ(b->FetchDevices("bob").status().code(), Code::kUnimplemented);
  EXPECT_TRUE(b->PublishDevice("record").ok());
}

// Newest first: an older page's NextToken that the server refuses (expired,
// or from a server that restarted) lists again from the oldest time already
// listed, skipping the ids listed then. With the newest page and the forward
// pulls from its cursor, every message is read once.
TEST(ChimeBackend, AnOlderPageWhoseTokenIsRefusedListsAgainFromItsTime) {
  Fixture f;
  auto b = f.Backend();
  auto arn = b->EnsureConversation(Conv("c1"));
  ASSERT_TRUE(arn.ok());
  f.server->step_ms = 1000;  // a second per request: the history spans 12 s
  std::vector<engine::Operation> ops;
  for (int i = 0; i < 12; ++i) ops.push_back(Send("t-" + std::to_string(100 + i), "m"));
  for (const auto& op : ops) ASSERT_TRUE(b->Push("c1", std::span(&op, 1)).ok());
  auto reader = f.Backend(kBob);
  ASSERT_TRUE(reader->ListConversations().ok());
  std::map<std::string, int> seen;
  auto newest = reader->PullHistory("c1", "", 2);
  ASSERT_TRUE(newest.ok()) << newest.status().ToString();
  for (const auto& op : newest->ops) seen[op.op_id]++;
  PullForward(*reader, newest->forward_cursor, 5, &seen);
  int refused = 0;
  PullOlder(*reader, newest->before, 2, 20, &seen, [&](std::string before) {
    if (before.back() == ';') return before;  // a new listing: no token
    ++refused;                                // a token the server never issued
    return before.substr(0, before.rfind(';') + 1) + "bogus";
  });
  EXPECT_GE(refused, 2) << "the older pages went on by token";
  EXPECT_EQ(seen.size(), ops.size());
  for (const auto& op : ops) EXPECT_EQ(seen[op.op_id], 1) << op.op_id;
  EXPECT_EQ(reader->PullHistory("c1", "h1;x", 4).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace tidings::chime
