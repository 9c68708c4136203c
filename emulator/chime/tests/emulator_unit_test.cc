// Unit tests of tidings-chime-local's pieces: the model (state.h), request
// routing, the SigV4 verifier against the client's signer, the journal.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "emulator/chime/auth.h"
#include "emulator/chime/journal.h"
#include "emulator/chime/routes.h"
#include "emulator/chime/state.h"
#include "emulator/chime/testing/emulator_process.h"
#include "sync/aws_protocol/sigv4.h"

namespace chime_local {
namespace {

const std::string kApp = "arn:aws:chime:us-east-1:123456789012:app-instance/unit";
const std::string kAlice = kApp + "/user/alice", kBob = kApp + "/user/bob";

class StateTest : public ::testing::Test {
 protected:
  tidings::Result<Reply> Do(std::string op, std::map<std::string, std::string> f) {
    Call c{std::move(op), std::move(f)};
    c.f["_at"] = std::to_string(1'700'000'000'000 + (++n_ % 3));  // the clock stalls
    c.f["_id"] = "id" + std::to_string(n_);
    return state_.Handle(c);
  }
  std::string Channel() {
    auto r = Do("CreateChannel", {{"ChimeBearer", kAlice},
                                  {"AppInstanceArn", kApp},
                                  {"Name", "n"},
                                  {"ClientRequestToken", "tok"},
                                  {"ChannelId", "c1"}});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return kApp + "/channel/c1";
  }
  tidings::Result<Reply> Send(const std::string& ch, const std::string& token,
                              const std::string& content = "hello") {
    return Do("SendChannelMessage", {{"ChimeBearer", kAlice},
                                     {"ChannelArn", ch},
                                     {"Content", content},
                                     {"Metadata", "meta"},
                                     {"Type", "STANDARD"},
                                     {"Persistence", "PERSISTENT"},
                                     {"ClientRequestToken", token}});
  }
  State state_;
  int n_ = 0;
};

TEST_F(StateTest, CreateAndSendAreIdempotentByClientRequestToken) {
  const std::string ch = Channel();
  auto again = Do("CreateChannel", {{"ChimeBearer", kAlice},
                                    {"AppInstanceArn", kApp},
                                    {"Name", "n"},
                                    {"ClientRequestToken", "tok"},
                                    {"ChannelId", "c1"}});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->status, 201);
  EXPECT_FALSE(again->mutated);
  auto a = Send(ch, "m1"), b = Send(ch, "m1");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->body, b->body);
  EXPECT_TRUE(a->mutated);
  EXPECT_FALSE(b->mutated);
}

TEST_F(StateTest, PagesStayValidWhileMessagesArriveAndTimesIncrease) {
  const std::string ch = Channel();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Send(ch, "m" + std::to_string(i)).ok());
  auto page = Do("ListChannelMessages", {{"ChimeBearer", kAlice},
                                         {"ChannelArn", ch},
                                         {"SortOrder", "ASCENDING"},
                                         {"MaxResults", "3"}});
  ASSERT_TRUE(page.ok());
  size_t k = page->body.find("\"NextToken\":\"");
  ASSERT_NE(k, std::string::npos);
  std::string token = page->body.substr(k + 13, page->body.find('"', k + 13) - k - 13);
  // The clock stalls and steps back; server times still strictly increase.
  std::vector<double> times;
  for (size_t p = 0; (p = page->body.find("\"CreatedTimestamp\":", p)) != std::string::npos; ++p)
    times.push_back(std::stod(page->body.substr(p + 19)));
  ASSERT_EQ(times.size(), 3u);
  EXPECT_LT(times[0], times[1]);
  EXPECT_LT(times[1], times[2]);
  for (int i = 5; i < 7; ++i) ASSERT_TRUE(Send(ch, "m" + std::to_string(i)).ok());
  auto rest = Do("ListChannelMessages", {{"ChimeBearer", kAlice},
                                         {"ChannelArn", ch},
                                         {"SortOrder", "ASCENDING"},
                                         {"NextToken", token}});
  ASSERT_TRUE(rest.ok()) << rest.status().ToString();
  EXPECT_EQ(rest->body.find("NextToken"), std::string::npos);
  size_t count = 0;
  for (size_t p = 0; (p = rest->body.find("\"MessageId\"", p)) != std::string::npos; ++p) ++count;
  EXPECT_EQ(count, 4u) << "2 left + 2 new";
  auto bad = Do("ListChannelMessages",
                {{"ChimeBearer", kAlice}, {"ChannelArn", ch}, {"NextToken", token + "x"}});
  EXPECT_EQ(bad.status().code(), tidings::Code::kInvalidArgument);
}

TEST_F(StateTest, ChangesCarryEventsForTheMembersOfTheMoment) {
  const std::string ch = Channel();
  ASSERT_TRUE(
      Do("CreateChannelMembership",
         {{"ChimeBearer", kAlice}, {"ChannelArn", ch}, {"MemberArn", kBob}, {"Type", "DEFAULT"}})
          .ok());
  auto sent = Send(ch, "t1", "hi \"there\"");
  ASSERT_TRUE(sent.ok());
  ASSERT_EQ(sent->events.size(), 1u);
  const Event& e = sent->events[0];
  EXPECT_EQ(e.type, "CREATE_CHANNEL_MESSAGE");
  EXPECT_EQ(e.message_type, "STANDARD");
  EXPECT_EQ(e.recipients, (std::vector<std::string>{kAlice, kBob}));
  EXPECT_NE(e.payload.find(R"("Content":"hi \"there\"")"), std::string::npos) << e.payload;
  EXPECT_NE(e.payload.find(R"("CreatedTimestamp":"2023-11-14T22:13:20.)"), std::string::npos)
      << "ISO-8601 with milliseconds: " << e.payload;
  auto again = Send(ch, "t1", "hi \"there\"");
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->events.empty()) << "an idempotent retry changes nothing, tells no one";
  auto left = Do("DeleteChannelMembership",
                 {{"ChimeBearer", kBob}, {"ChannelArn", ch}, {"MemberArn", kBob}});
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->events.size(), 1u);
  EXPECT_EQ(left->events[0].type, "DELETE_CHANNEL_MEMBERSHIP");
  EXPECT_EQ(left->events[0].recipients, (std::vector<std::string>{kAlice, kBob}))
      << "the member who left hears it too";
  auto typing = Do("SendChannelMessage", {{"ChimeBearer", kAlice},
                                          {"ChannelArn", ch},
                                          {"Content", "typing"},
                                          {"Type", "CONTROL"},
                                          {"Persistence", "NON_PERSISTENT"},
                                          {"ClientRequestToken", "t2"}});
  ASSERT_TRUE(typing.ok());
  EXPECT_FALSE(typing->mutated) << "NON_PERSISTENT: not stored, not journaled";
  ASSERT_EQ(typing->events.size(), 1u);
  EXPECT_EQ(typing->events[0].recipients, (std::vector<std::string>{kAlice}))
      << "bob left: he hears nothing more";
  EXPECT_EQ(typing->events[0].message_type, "CONTROL");
}

TEST_F(StateTest, ValidationForbiddenAndRedact) {
  const std::string ch = Channel();
  EXPECT_EQ(Send(ch, "big", std::string(4097, 'x')).status().code(),
            tidings::Code::kInvalidArgument);
  EXPECT_EQ(Send(ch, "x").status().code(), tidings::Code::kInvalidArgument) << "short token";
  EXPECT_EQ(Do("ListChannelMessages", {{"ChimeBearer", kBob}, {"ChannelArn", ch}}).status().code(),
            tidings::Code::kPermissionDenied);
  EXPECT_EQ(Do("ListChannelMessages",
               {{"ChimeBearer", kAlice}, {"ChannelArn", ch + "x"}, {"NotBefore", "2023"}})
                .status()
                .code(),
            tidings::Code::kInvalidArgument);
  EXPECT_EQ(
      Do("ListChannelMessages", {{"ChimeBearer", kAlice}, {"ChannelArn", kApp + "/channel/none"}})
          .status()
          .code(),
      tidings::Code::kNotFound);
  auto sent = Send(ch, "m1");
  ASSERT_TRUE(sent.ok());
  std::string id = sent->body.substr(sent->body.find("MessageId") + 12);
  id = id.substr(0, id.find('"'));
  ASSERT_TRUE(
      Do("RedactChannelMessage", {{"ChimeBearer", kAlice}, {"ChannelArn", ch}, {"MessageId", id}})
          .ok());
  auto got =
      Do("GetChannelMessage", {{"ChimeBearer", kAlice}, {"ChannelArn", ch}, {"MessageId", id}});
  ASSERT_TRUE(got.ok());
  EXPECT_NE(got->body.find("\"Redacted\":true"), std::string::npos);
  EXPECT_EQ(got->body.find("meta"), std::string::npos) << "redact strips metadata";
}

TEST_F(StateTest, PublicChannelsAreReadableByTheAppInstanceHiddenMembersListedOnRequest) {
  ASSERT_TRUE(Do("CreateChannel", {{"ChimeBearer", kAlice},
                                   {"AppInstanceArn", kApp},
                                   {"Name", "board"},
                                   {"Privacy", "PUBLIC"},
                                   {"ClientRequestToken", "pub"},
                                   {"ChannelId", "pub"}})
                  .ok());
  const std::string ch = kApp + "/channel/pub";
  EXPECT_TRUE(Do("ListChannelMessages", {{"ChimeBearer", kBob}, {"ChannelArn", ch}}).ok());
  EXPECT_EQ(Do("ListChannelMessages",
               {{"ChimeBearer", "arn:aws:chime:us-east-1:1:app-instance/other/user/x"},
                {"ChannelArn", ch}})
                .status()
                .code(),
            tidings::Code::kPermissionDenied);
  ASSERT_TRUE(
      Do("CreateChannelMembership",
         {{"ChimeBearer", kAlice}, {"ChannelArn", ch}, {"MemberArn", kBob}, {"Type", "HIDDEN"}})
          .ok());
  auto listed = Do("ListChannelMemberships", {{"ChimeBearer", kAlice}, {"ChannelArn", ch}});
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->body.find("/user/bob"), std::string::npos);
  listed = Do("ListChannelMemberships",
              {{"ChimeBearer", kAlice}, {"ChannelArn", ch}, {"Type", "HIDDEN"}});
  ASSERT_TRUE(listed.ok());
  EXPECT_NE(listed->body.find("/user/bob"), std::string::npos);
  EXPECT_EQ(listed->body.find("/user/alice"), std::string::npos);
}

TEST(Routes, DecodesPercentEncodedArnsAndMapsQueryNames) {
  auto call = ParseRequest("GET",
                           "/channels/arn%3Aaws%3Achime%3Aus-east-1%3A1%3Aapp-instance%2Fa%2F"
                           "channel%2Fc/messages?max-results=5&not-before=2023-11-14T22%3A13%3A20Z",
                           "");
  ASSERT_TRUE(call.ok());
  EXPECT_EQ(call->op, "ListChannelMessages");
  EXPECT_EQ(call->Get("ChannelArn"), "arn:aws:chime:us-east-1:1:app-instance/a/channel/c");
  EXPECT_EQ(call->Get("MaxResults"), "5");
  EXPECT_EQ(call->Get("NotBefore"), "2023-11-14T22:13:20Z");
  EXPECT_EQ(ParseRequest("POST", "/channels", "{nope").status().code(),
            tidings::Code::kInvalidArgument);
  EXPECT_EQ(ParseRequest("GET", "/meetings", "").status().code(), tidings::Code::kUnimplemented);
  auto body = ParseRequest("POST", "/channels", R"({"Name":"n","_at":"1","MemberArns":["a","b"]})");
  ASSERT_TRUE(body.ok());
  EXPECT_FALSE(body->Has("_at")) << "server-assigned fields never come from the body";
  EXPECT_EQ(body->Get("MemberArns"), "a\nb");
}

TEST(Routes, TellsOperationsOnTheSamePathApartByTheirQuery) {
  const std::string ch =
      "/channels/arn%3Aaws%3Achime%3Aus-east-1%3A1%3Aapp-instance%2Fa%2Fchannel%2Fc";
  auto op = [](const std::string& method, const std::string& target) {
    auto call = ParseRequest(method, target, "");
    return call.ok() ? call->op : call.status().ToString();
  };
  EXPECT_EQ(op("GET", ch + "/messages/m1?scope=message-status"), "GetChannelMessageStatus");
  EXPECT_EQ(op("GET", ch + "/messages/m1"), "GetChannelMessage");
  EXPECT_EQ(op("GET", ch + "?scope=app-instance-user-moderated-channel&app-instance-user-arn=u"),
            "DescribeChannelModeratedByAppInstanceUser");
  EXPECT_EQ(op("GET", ch), "DescribeChannel");
  EXPECT_EQ(op("POST", ch + "/memberships?operation=batch-create"), "BatchCreateChannelMembership");
  EXPECT_EQ(op("POST", ch + "/memberships"), "CreateChannelMembership");
  EXPECT_EQ(op("GET", "/endpoints/messaging-session"), "GetMessagingSessionEndpoint");
  EXPECT_EQ(op("PUT", ch), "UpdateChannel");
  EXPECT_EQ(op("DELETE", ch), "DeleteChannel");
  // Operations of the model the emulator does not serve: never NotFound
  // (a modeled error that cleanup code acts on), never another handler.
  auto search = ParseRequest("POST", "/channels?operation=search", "{}");
  EXPECT_EQ(search.status().code(), tidings::Code::kUnimplemented);
  EXPECT_NE(search.status().message().find("SearchChannels"), std::string::npos);
  EXPECT_EQ(ParseRequest("GET", ch + "/bans", "").status().code(), tidings::Code::kUnimplemented);
  EXPECT_EQ(ParseRequest("GET", "/channels", "").status().code(), tidings::Code::kUnimplemented);
}

TEST(SigV4, AcceptsTheClientSignerAndRefusesWrongSecretsSkewAndTampering) {
  AuthConfig config{"AKID", "secret", "us-east-1"};
  const int64_t now = 1'700'000'000;
  auto sign = [&](const std::string& secret, int64_t at) {
    tidings::http::Request r{"POST",
                             "http://127.0.0.1:9/channels/arn%3Ax%2Fy/messages?a=b%2Bc",
                             {{"content-type", "application/json"}, {"x-amz-chime-bearer", kAlice}},
                             "{\"Content\":\"hi\"}"};
    EXPECT_TRUE(
        tidings::aws::SignRequest(&r, {"AKID", secret, "", 0}, {"us-east-1", "chime", at}).ok());
    return r;
  };
  EXPECT_FALSE(VerifySigV4(config, sign("secret", now), now).has_value());
  EXPECT_FALSE(VerifySigV4(config, sign("secret", now - 800), now).has_value()) << "skew ok";
  EXPECT_EQ(VerifySigV4(config, sign("wrong", now), now)->code, "InvalidSignatureException");
  EXPECT_EQ(VerifySigV4(config, sign("secret", now - 1000), now)->code,
            "InvalidSignatureException");
  auto tampered = sign("secret", now);
  tampered.body = "{\"Content\":\"ho\"}";
  EXPECT_TRUE(VerifySigV4(config, tampered, now).has_value());
  tidings::http::Request unsigned_req{"GET", "http://127.0.0.1:9/channels", {}, ""};
  EXPECT_EQ(VerifySigV4(config, unsigned_req, now)->code, "MissingAuthenticationTokenException");
  AuthConfig other{"OTHER", "secret", "us-east-1"};
  EXPECT_EQ(VerifySigV4(other, sign("secret", now), now)->code, "UnrecognizedClientException");
}

TEST(SigV4, WordsClockSkewAsAwsDoes) {
  const int64_t now = 1'796'343'600;  // 2026-12-04T00:20:00Z
  auto expired = SkewError("20261204T000000Z", now - 1200, now);
  ASSERT_TRUE(expired.has_value());
  EXPECT_EQ(expired->status, 403);
  EXPECT_EQ(expired->code, "InvalidSignatureException");
  EXPECT_EQ(expired->message,
            "Signature expired: 20261204T000000Z is now earlier than 20261204T000500Z "
            "(20261204T002000Z - 15 min.)");
  auto early = SkewError("20261204T004000Z", now + 1200, now);
  ASSERT_TRUE(early.has_value());
  EXPECT_EQ(early->message,
            "Signature not yet current: 20261204T004000Z is still later than 20261204T003500Z "
            "(20261204T002000Z + 15 min.)");
  EXPECT_FALSE(SkewError("20261204T000600Z", now - 840, now).has_value());
}

TEST(SigV4, VerifiesPresignedConnectUrls) {
  AuthConfig config{"AKID", "secret", "us-east-1"};
  const int64_t now = 1'700'000'000;
  const std::string base =
      "https://127.0.0.1:4443/connect?userArn=" + tidings::aws::UriEncode(kAlice, true) +
      "&sessionId=s-1";
  auto presign = [&](const std::string& key, const std::string& secret, int64_t at) {
    auto url =
        tidings::aws::PresignUrl("GET", base, {key, secret, "", 0}, {"us-east-1", "chime", at}, 10);
    EXPECT_TRUE(url.ok());
    return tidings::http::Request{"GET", *url, {{"Host", "127.0.0.1:4443"}}, ""};
  };
  std::map<std::string, std::string> params;
  EXPECT_FALSE(VerifyPresigned(config, presign("AKID", "secret", now), now + 3, &params));
  EXPECT_EQ(params["userArn"], kAlice);
  EXPECT_EQ(params["sessionId"], "s-1");
  auto wrong = VerifyPresigned(config, presign("AKID", "wrong", now), now, &params);
  ASSERT_TRUE(wrong.has_value());
  EXPECT_EQ(wrong->code, "InvalidSignatureException");
  auto expired = VerifyPresigned(config, presign("AKID", "secret", now), now + 11, &params);
  ASSERT_TRUE(expired.has_value());
  EXPECT_EQ(expired->message.rfind("Signature expired", 0), 0u) << expired->message;
  EXPECT_EQ(VerifyPresigned(config, presign("OTHER", "secret", now), now, &params)->code,
            "UnrecognizedClientException");
  auto tampered = presign("AKID", "secret", now);
  tampered.url.replace(tampered.url.find("s-1"), 3, "s-2");
  EXPECT_TRUE(VerifyPresigned(config, tampered, now, &params).has_value());
  tidings::http::Request bare{"GET", base, {{"Host", "127.0.0.1:4443"}}, ""};
  EXPECT_EQ(VerifyPresigned(config, bare, now, &params)->code,
            "MissingAuthenticationTokenException");
}

TEST(Journal, ReplaysRecordsIgnoresATornTailAndIsPrivate) {
  char tmpl[] = "/tmp/chime-journal-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  {
    auto j = Journal::Open(dir, [](std::string_view) { return tidings::Status::Ok(); });
    ASSERT_TRUE(j.ok());
    ASSERT_TRUE((*j)->Append("{\"op\":\"a\"}").ok());
    ASSERT_TRUE((*j)->Append("{\"op\":\"b\"}").ok());
  }
  std::ofstream(dir + "/journal.jsonl", std::ios::app) << "{\"op\":\"tor";
  std::vector<std::string> seen;
  auto j = Journal::Open(dir, [&](std::string_view line) {
    seen.emplace_back(line);
    return tidings::Status::Ok();
  });
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"{\"op\":\"a\"}", "{\"op\":\"b\"}"}));
  ASSERT_TRUE((*j)->Append("{\"op\":\"c\"}").ok());
  struct stat st {};
  ASSERT_EQ(::stat((dir + "/journal.jsonl").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  j->reset();
  seen.clear();
  ASSERT_TRUE(Journal::Open(dir, [&](std::string_view line) {
                seen.emplace_back(line);
                return tidings::Status::Ok();
              }).ok());
  EXPECT_EQ(seen.size(), 3u) << "the torn tail was cut, the next record is whole";
  std::remove((dir + "/journal.jsonl").c_str());
  ::rmdir(dir.c_str());
}

TEST(EmulatorProcess, ServesTheWebSocketWithATestCertificateAndKeepsItsPortOnRestart) {
  char tmpl[] = "/tmp/chime-tls-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  auto tls = testing::MakeTestTls(tmpl);
  ASSERT_TRUE(tls.ok()) << tls.status().ToString();
  testing::EmulatorOptions o;
  o.tls_cert = tls->cert_file;
  o.tls_key = tls->key_file;
  auto emu = testing::EmulatorProcess::Start(o);
  ASSERT_TRUE(emu.ok()) << emu.status().ToString();
  const int ws_port = (*emu)->ws_port();
  EXPECT_GT(ws_port, 0);
  auto sessions = (*emu)->RealtimeSessions();
  ASSERT_TRUE(sessions.ok()) << sessions.status().ToString();
  EXPECT_EQ(*sessions, 0);
  auto dropped = (*emu)->DropSockets("", 0);
  ASSERT_TRUE(dropped.ok()) << dropped.status().ToString();
  EXPECT_EQ(*dropped, 0);
  EXPECT_TRUE((*emu)->SetRealtimeFaults({0, 503, 0}).ok());
  EXPECT_FALSE((*emu)->SetRealtimeFaults({0, 200, 0}).ok()) << "not an error status";
  ASSERT_TRUE((*emu)->Restart().ok());
  EXPECT_EQ((*emu)->ws_port(), ws_port);
  ASSERT_TRUE((*emu)->Stop().ok());
  for (const char* f : {"ca.pem", "ca.key", "ca.srl", "cert.pem", "key.pem", "req.csr", "ext.cnf"})
    std::remove((std::string(tmpl) + "/" + f).c_str());
  ::rmdir(tmpl);
}

TEST(State, ParsesIso8601) {
  int64_t ms = 0;
  ASSERT_TRUE(State::ParseIso8601("2023-11-14T22:13:20.123Z", &ms));
  EXPECT_EQ(ms, 1700000000123);
  ASSERT_TRUE(State::ParseIso8601("2023-11-14T22:13:20+00:00", &ms));
  EXPECT_EQ(ms, 1700000000000);
  EXPECT_FALSE(State::ParseIso8601("yesterday", &ms));
  EXPECT_FALSE(State::ParseIso8601("2023-11-14T22:13:20.Z", &ms));
}

}  // namespace
}  // namespace chime_local
