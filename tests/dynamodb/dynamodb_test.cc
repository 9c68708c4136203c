// The DynamoDB backend against a real moto_server with signature checks and
// IAM policy enforcement on: every request is signed by an IAM user holding
// only the least-privilege policy from docs/dynamodb.md. Convergence is the
// backend conformance suite's (tests/backend_conformance).
#include <gtest/gtest.h>

#include <ctime>
#include <map>
#include <set>
#include <thread>

#include "../engine/test_util.h"
#include "crypto/hash.h"
#include "engine/codec.h"
#include "fault_proxy.h"
#include "moto_fixture.h"
#include "sync/core/reconciler.h"
#include "sync/dynamodb/dynamodb_backend.h"
#include "sync/wire/operation_codec.h"
#include "tests/common/pull_all.h"

namespace tidings::dynamodb {
namespace {

testing::MotoServer* moto = nullptr;
const char* kTable = "tidings";  // the table the device policy names

class MotoEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    moto = new testing::MotoServer();
    std::string why;
    if (!moto->Start(kTable, &why)) {
      std::fprintf(stderr, "%s\n", why.c_str());
      std::abort();
    }
  }
  void TearDown() override {
    delete moto;
    moto = nullptr;
  }
};
::testing::Environment* const env = ::testing::AddGlobalTestEnvironment(new MotoEnvironment);

std::unique_ptr<DynamoBackend> Backend(const std::string& user, aws::Credentials creds,
                                       const std::string& table = kTable) {
  DynamoConfig c;
  c.table = table;
  c.user_id = user;
  c.region = "us-east-1";
  c.endpoint = moto->endpoint();
  return DynamoBackend::Create(c, aws::StaticCredentials(std::move(creds)));
}

std::unique_ptr<DynamoBackend> Backend(const std::string& user) {
  return Backend(user, moto->credentials());
}

using testing::PullAll;

engine::Operation Op(const std::string& id, const std::string& body) {
  engine::Operation op;
  op.kind = engine::OpKind::kSend;
  op.op_id = op.message_id = id;
  op.author = "tester";
  op.at = {uint64_t{1'700'000'000'000} << 16, 1};
  op.body = body;
  return op;
}

TEST(DynamoDb, ConcurrentAppendersLeaveNoGapsAndNoDuplicates) {
  constexpr int kWriters = 4, kPer = 10;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      auto backend = Backend("writer" + std::to_string(w));
      for (int i = 0; i < kPer; ++i) {
        engine::Operation op = Op("w" + std::to_string(w) + "-" + std::to_string(i), "x");
        auto acks = backend->Push("race", std::span<const engine::Operation>(&op, 1));
        if (!acks.ok() || !acks->front().status.ok()) failures++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto reader = Backend("reader");
  auto all = PullAll(*reader, "race");
  ASSERT_EQ(all.size(), size_t{kWriters * kPer});
  std::set<std::string> ids;
  std::set<std::string> sks;
  for (const auto& op : all) {
    ids.insert(op.op_id);
    sks.insert(op.remote_id.substr(0, op.remote_id.find('/')));
  }
  EXPECT_EQ(ids.size(), all.size()) << "no duplicates";
  EXPECT_EQ(sks.size(), all.size());
  for (int sk = 1; sk <= kWriters * kPer; ++sk)
    EXPECT_TRUE(sks.count(std::to_string(sk))) << "gap at " << sk;
}

TEST(DynamoDb, BacklogGoesUpInFewRequests) {
  std::vector<engine::Operation> ops;
  for (int i = 0; i < 100; ++i) ops.push_back(Op("bk-" + std::to_string(i), std::string(300, 'b')));
  auto b = Backend("u");
  uint64_t before = b->client().requests();
  auto acks = b->Push("backlog", ops);
  ASSERT_TRUE(acks.ok());
  EXPECT_LE(b->client().requests() - before, 3u) << "one tail read and one put";
  EXPECT_EQ(PullAll(*b, "backlog").size(), 100u);
}

// An item packs a push's operations (here 50 each): a history page stops at
// the item that brings it to the limit, so a fresh device's first screen is
// about one screen, not `limit` packed items; its position asks the next
// Query for as many items as a page needs (one here), so each older page is
// one request that reads no item it drops; together they cover the log once.
TEST(DynamoDb, AHistoryPageOfPackedItemsStopsAtTheLimit) {
  auto writer = Backend("writer");
  for (int item = 0; item < 5; ++item) {
    std::vector<engine::Operation> ops;
    for (int i = 0; i < 50; ++i) ops.push_back(Op("pk-" + std::to_string(item * 50 + i), "x"));
    auto acks = writer->Push("packed", ops);
    ASSERT_TRUE(acks.ok()) << acks.status().ToString();
  }
  auto reader = Backend("reader");
  std::map<std::string, int> seen;
  std::string before;
  int pages = 0;
  do {
    const uint64_t requests = reader->client().requests();
    auto page = reader->PullHistory("packed", before, 50);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    EXPECT_EQ(reader->client().requests() - requests, 1u);
    EXPECT_EQ(page->ops.size(), 50u) << "one item of 50 reaches the limit";
    EXPECT_EQ(page->forward_cursor.empty(), pages > 0) << "the newest page's alone";
    if (!page->before.empty()) {
      EXPECT_EQ(page->before.substr(page->before.find('/')), "/1")
          << "the next page needs one item";
    }
    for (const auto& op : page->ops) seen[op.op_id]++;
    before = page->before;
  } while (!before.empty() && ++pages < 20);
  EXPECT_EQ(pages, 4) << "five items, one page each";
  ASSERT_EQ(seen.size(), 250u);
  for (const auto& [id, n] : seen) EXPECT_EQ(n, 1) << id;
  for (const char* bad : {"12/0", "12/x", "x/3", "12/"}) {
    EXPECT_EQ(reader->PullHistory("packed", bad, 50).status().code(), Code::kInvalidArgument)
        << bad;
  }
}

// Newest first (Backend::PullHistory): Query ScanIndexForward=false. The
// newest page, its forward cursor and the older pages down to the first
// item cover the log once, also with appends after the newest page; and a
// fresh device's reconciler shows the newest messages after one request.
TEST(DynamoDb, NewestFirstPagesAndTheForwardCursorCoverTheLogOnce) {
  auto writer = Backend("writer");
  for (int i = 0; i < 7; ++i) {  // one item each
    engine::Operation op = Op("nf-" + std::to_string(i), "x");
    auto acks = writer->Push("newest", std::span<const engine::Operation>(&op, 1));
    ASSERT_TRUE(acks.ok() && acks->front().status.ok());
  }
  auto reader = Backend("reader");
  std::map<std::string, int> seen;
  auto newest = reader->PullHistory("newest", "", 3);
  ASSERT_TRUE(newest.ok()) << newest.status().ToString();
  ASSERT_EQ(newest->ops.size(), 3u);
  for (const auto& op : newest->ops) {
    seen[op.op_id]++;
    EXPECT_GE(op.op_id, "nf-4") << "the newest three";
  }
  EXPECT_EQ(newest->forward_cursor, "7");
  EXPECT_EQ(newest->before, "5/3") << "the lowest sk read, and 3 items of one operation next";
  for (int i = 7; i < 9; ++i) {
    engine::Operation op = Op("nf-" + std::to_string(i), "x");
    ASSERT_TRUE(writer->Push("newest", std::span<const engine::Operation>(&op, 1)).ok());
  }
  auto forward = reader->Pull("newest", newest->forward_cursor, 100);
  ASSERT_TRUE(forward.ok());
  for (const auto& op : forward->ops) seen[op.op_id]++;
  std::string before = newest->before;
  int pages = 0;
  while (!before.empty() && pages++ < 10) {
    auto older = reader->PullHistory("newest", before, 3);
    ASSERT_TRUE(older.ok()) << older.status().ToString();
    EXPECT_TRUE(older->forward_cursor.empty());
    for (const auto& op : older->ops) seen[op.op_id]++;
    before = older->before;
  }
  EXPECT_LE(pages, 3);
  ASSERT_EQ(seen.size(), 9u);
  for (const auto& [id, n] : seen) EXPECT_EQ(n, 1) << id;
  EXPECT_EQ(reader->PullHistory("newest", "x1", 3).status().code(), Code::kInvalidArgument);
  auto empty = reader->PullHistory("no-such-conversation", "", 3);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->ops.empty());
  EXPECT_TRUE(empty->forward_cursor.empty());

  // Through the reconciler: one request, the newest page; the rest fills.
  testing::TempDir dir;
  auto store = engine::Store::Open(dir.path(), testing::TestKey(), testing::CreateOptions("dev"));
  ASSERT_TRUE(store.ok());
  sync::SyncConfig config;
  config.pull_page_size = 2;
  config.max_history_pages_per_round = 0;
  config.end_to_end_default = false;
  sync::Reconciler rec(
      &(*store)->sync_log(), reader.get(), config, [] { return int64_t{1}; },
      [] { return uint64_t{0}; });
  const uint64_t requests = reader->client().requests();
  ASSERT_TRUE(rec.Pull("newest").ok());
  EXPECT_EQ(reader->client().requests() - requests, 2u) << "the newest page, then forward";
  EXPECT_EQ((*store)->GetConversation("newest")->message_count, 2u);
  EXPECT_TRUE(rec.GetStatus("newest").filling_history);
  uint64_t merged = 0;
  for (int i = 0; i < 10; ++i) {
    auto fill = rec.LoadOlder("newest", 1);
    ASSERT_TRUE(fill.ok()) << fill.status().ToString();
    merged += fill->merged;
    if (!fill->more) break;
  }
  EXPECT_EQ(merged, 7u);
  EXPECT_EQ((*store)->GetConversation("newest")->message_count, 9u);
  EXPECT_FALSE(rec.GetStatus("newest").filling_history);
}

// A conversation under a time-based retention policy: its items carry a
// "ttl" (epoch seconds, keep_days after acceptance) and its log starts above
// every sk a fully expired log could have had; other conversations' items
// carry none. The table setup turns TTL on, idempotently.
TEST(DynamoDb, TimeRetentionWritesTtlAttributes) {
  auto admin = Backend("admin", moto->admin_credentials());
  ASSERT_TRUE(admin->EnableTimeToLive().ok());
  ASSERT_TRUE(admin->EnableTimeToLive().ok()) << "a second time: already on";
  auto described = admin->client().Call("DescribeTimeToLive", "{\"TableName\":\"tidings\"}");
  ASSERT_TRUE(described.ok()) << described.status().ToString();
  EXPECT_NE(described->find("\"ttl\""), std::string::npos) << *described;

  DynamoConfig c;
  c.table = kTable;
  c.user_id = "tidings-device";
  c.region = "us-east-1";
  c.endpoint = moto->endpoint();
  c.keep_days = [](const std::string& conv) -> uint32_t { return conv == "expiring" ? 7 : 0; };
  auto b = DynamoBackend::Create(c, aws::StaticCredentials(moto->credentials()));
  const uint64_t now_s = static_cast<uint64_t>(std::time(nullptr));
  for (const std::string conv : {"expiring", "kept"}) {
    auto acks = b->Push(conv, std::vector<engine::Operation>{Op(conv + "-1", "x")});
    ASSERT_TRUE(acks.ok() && (*acks)[0].status.ok()) << conv;
  }
  auto items = [&](const std::string& conv) {
    auto resp =
        b->client().Call("Query",
                         "{\"TableName\":\"tidings\",\"KeyConditionExpression\":\"pk = :p\","
                         "\"ExpressionAttributeValues\":{\":p\":{\"S\":\"c#" +
                             conv + "\"}}}");
    EXPECT_TRUE(resp.ok()) << resp.status().ToString();
    return resp.ok() ? *resp : std::string();
  };
  const std::string expiring = items("expiring");
  const size_t at = expiring.find("\"ttl\"");
  ASSERT_NE(at, std::string::npos) << expiring;
  const size_t digits = expiring.find_first_of("0123456789", at);
  ASSERT_NE(digits, std::string::npos) << expiring;
  const uint64_t ttl = std::stoull(expiring.substr(digits));
  EXPECT_NEAR(static_cast<double>(ttl), static_cast<double>(now_s + 7 * 86400), 3600.0);
  EXPECT_EQ(items("kept").find("\"ttl\""), std::string::npos);
  auto first = b->Pull("expiring", "", 10);
  ASSERT_TRUE(first.ok());
  EXPECT_GT(std::stoull(first->next_cursor), uint64_t{1'000'000'000'000})
      << "sk = server time in ms";
  EXPECT_EQ(PullAll(*b, "expiring").size(), 1u);
}

// Puts one log item with `o` (base64 of `ops`) and, unless empty, `v`.
void PutLogItem(DynamoBackend& b, const std::string& conv, uint64_t sk, const std::string& ops,
                const std::string& format) {
  const std::string body = "{\"TableName\":\"" + std::string(kTable) +
                           "\",\"Item\":{\"pk\":{\"S\":\"c#" + conv + "\"},\"sk\":{\"N\":\"" +
                           std::to_string(sk) + "\"},\"t\":{\"N\":\"1700000000000\"}," +
                           (format.empty() ? "" : "\"v\":{\"N\":\"" + format + "\"},") +
                           "\"o\":{\"B\":\"" + crypto::Base64Encode(ops) + "\"}}}";
  auto put = b.client().Call("PutItem", body);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
}

// Items written before the wire codec (no "v": the store's own operation
// encoding, length-prefixed) still sync; a newer format is a clear error
// naming the item, and a corrupt item is skipped and counted.
TEST(DynamoDb, ReadsLegacyItemsAndRefusesUnknownFormats) {
  auto b = Backend("u");
  engine::Operation legacy = Op("legacy-1", "written by an earlier build");
  legacy.conversation_id = "formats";
  std::string framed;
  engine::Writer(&framed).Bytes(engine::EncodeOperation(legacy));
  PutLogItem(*b, "formats", 1, framed, "");
  auto ops = PullAll(*b, "formats");
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].op_id, "legacy-1");
  EXPECT_EQ(ops[0].body, "written by an earlier build");
  EXPECT_EQ(ops[0].remote_id, "1/0");
  // A new push appends after it, in the current format.
  auto acks = b->Push("formats", std::vector<engine::Operation>{Op("current-1", "now")});
  ASSERT_TRUE(acks.ok()) << acks.status().ToString();
  EXPECT_EQ((*acks)[0].remote_id, "2/0");
  EXPECT_EQ(PullAll(*b, "formats").size(), 2u);

  PutLogItem(*b, "formats", 3, framed, "3");
  auto newer = b->Pull("formats", "2", 10);
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.status().code(), Code::kFailedPrecondition) << newer.status().ToString();
  EXPECT_NE(newer.status().message().find("sk 3"), std::string::npos);

  // An operation of a wire version newer than this build reads, beside one
  // it reads, in an item of the current format: handed over as bytes (the
  // reconciler keeps them until an upgrade), not skipped.
  std::string mixed, future = wire::EncodeOperation(Op("future-1", "from a newer build"));
  future[0] = static_cast<char>(wire::kOperationVersion + 1);
  engine::Writer w(&mixed);
  w.Bytes(wire::EncodeOperation(Op("current-2", "readable")));
  w.Bytes(future);
  PutLogItem(*b, "formats-mixed", 1, mixed, "1");
  auto held = b->Pull("formats-mixed", "", 10);
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  EXPECT_EQ(held->skipped, 0u);
  ASSERT_EQ(held->ops.size(), 1u);
  EXPECT_EQ(held->ops[0].op_id, "current-2");
  ASSERT_EQ(held->too_new.size(), 1u);
  EXPECT_EQ(held->too_new[0].bytes, future);
  EXPECT_EQ(held->too_new[0].remote_id, "1/1");

  PutLogItem(*b, "formats-corrupt", 1, framed.substr(0, framed.size() - 3), "");
  PutLogItem(*b, "formats-corrupt", 2, framed, "");
  auto corrupt = b->Pull("formats-corrupt", "", 10);
  ASSERT_TRUE(corrupt.ok()) << corrupt.status().ToString();
  EXPECT_EQ(corrupt->skipped, 1u);
  ASSERT_EQ(corrupt->ops.size(), 1u);
  EXPECT_EQ(corrupt->ops[0].remote_id, "2/0");
  EXPECT_EQ(corrupt->next_cursor, "2");
}

TEST(DynamoDb, ErrorsAreClearAndClassified) {
  engine::Operation op = Op("err-1", "x");
  auto wrong_secret = moto->credentials();
  wrong_secret.secret_access_key = "not-the-secret";
  auto r1 = Backend("u", wrong_secret)->Push("c", std::span<const engine::Operation>(&op, 1));
  ASSERT_FALSE(r1.ok());
  EXPECT_EQ(r1.status().code(), Code::kUnauthenticated) << r1.status().ToString();
  EXPECT_EQ(r1.status().message().find("not-the-secret"), std::string::npos)
      << "no secret in errors";

  auto unknown = aws::Credentials{"AKIAUNKNOWNUNKNOWN00", "whatever", "", 0};
  auto r2 = Backend("u", unknown)->Pull("c", "", 10);
  EXPECT_EQ(r2.status().code(), Code::kUnauthenticated) << r2.status().ToString();

  auto r3 = Backend("u", moto->credentials(), "no-such-table")->Pull("c", "", 10);
  ASSERT_FALSE(r3.ok());
  // moto checks the IAM policy (scoped to the one table) before the table.
  EXPECT_TRUE(r3.status().code() == Code::kNotFound ||
              r3.status().code() == Code::kPermissionDenied)
      << r3.status().ToString();

  auto denied = Backend("u")->CreateTable();  // not in the device policy
  EXPECT_EQ(denied.code(), Code::kPermissionDenied) << denied.ToString();
  EXPECT_EQ(sync::Classify(denied), sync::ErrorClass::kPermanent);
}

TEST(DynamoDb, PermanentErrorParksTheOperation) {
  testing::TempDir dir;
  auto store = engine::Store::Open(dir.path(), testing::TestKey(), testing::CreateOptions("carol"));
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Send({.conversation_id = "parked", .body = "x"}).ok());
  auto backend = Backend("carol", moto->credentials(), "forbidden-table");
  sync::Reconciler rec(
      &(*store)->sync_log(), backend.get(), {}, [] { return int64_t{0}; }, [] { return 1; });
  ASSERT_TRUE(rec.Push("parked").ok());
  auto outbox = (*store)->Outbox(0);
  ASSERT_EQ(outbox->size(), 1u);
  EXPECT_TRUE(outbox->front().failed);
  EXPECT_EQ((*store)->Page({.conversation_id = "parked"})->front().state,
            engine::MessageState::kFailed);
}

// Every fault ends in success after retries (the AWS client's own, then the
// reconciler's) or in a clear error - never in a lost or doubled message.
TEST(DynamoDb, FaultsEndInSuccessOrClearErrorsNothingLostOrDoubled) {
  using testing::Fault;
  testing::FaultProxy proxy(moto->port());
  testing::TempDir dir;
  auto store =
      engine::Store::Open(dir.path(), testing::TestKey(), testing::CreateOptions("faulty"));
  ASSERT_TRUE(store.ok());
  DynamoConfig c;
  c.table = kTable;
  c.user_id = "faulty";
  c.region = "us-east-1";
  c.endpoint = proxy.endpoint();
  auto backend = DynamoBackend::Create(c, aws::StaticCredentials(moto->CredentialsFor("faulty")));
  int64_t now = 0;
  // The plaintext log, whose items this test reads back to count each message.
  sync::SyncConfig config;
  config.end_to_end_default = false;
  sync::Reconciler rec(
      &(*store)->sync_log(), backend.get(), config, [&] { return now; }, [] { return 0; });

  const std::vector<Fault> faults = {
      Fault::k503,          Fault::kThrottle,         Fault::kDropRequest,
      Fault::kLoseResponse, Fault::kTruncateResponse, Fault::kGarbleResponse,
      Fault::kHtmlPage};
  std::vector<std::string> sent;
  for (Fault f : faults) {
    auto m =
        (*store)->Send({.conversation_id = "faults", .body = "m" + std::to_string(sent.size())});
    ASSERT_TRUE(m.ok());
    sent.push_back(m->id);
    // The fault hits every attempt of one AWS call (3 attempts), so the
    // reconciler sees the failure and retries on a later round.
    proxy.Script({f, f, f});
    for (int round = 0; round < 6 && !(*store)->Outbox(0)->empty(); ++round) {
      Status s = rec.Push("faults");
      ASSERT_TRUE(s.ok()) << s.ToString();
      now += 120'000;
    }
    auto outbox = (*store)->Outbox(0);
    ASSERT_TRUE(outbox->empty()) << "fault " << static_cast<int>(f) << ": "
                                 << (outbox->empty() ? "" : outbox->front().last_error);
  }
  proxy.Script({});
  EXPECT_GE(backend->client().retries(), faults.size()) << "the AWS client retried";
  std::map<std::string, int> count;
  for (const auto& op : PullAll(*backend, "faults")) count[op.op_id]++;
  EXPECT_EQ(count.size(), sent.size());
  for (const auto& id : sent) EXPECT_EQ(count[id], 1) << "message " << id;
  // Malformed answers are clear errors, never garbage.
  proxy.Script({Fault::kGarbleResponse, Fault::kGarbleResponse, Fault::kGarbleResponse});
  auto garbled = backend->Pull("faults", "", 10);
  ASSERT_FALSE(garbled.ok());
  EXPECT_TRUE(garbled.status().code() == Code::kUnavailable ||
              garbled.status().code() == Code::kInvalidArgument)
      << garbled.status().ToString();
  proxy.Script({Fault::kHtmlPage, Fault::kHtmlPage, Fault::kHtmlPage});
  auto html = backend->Pull("faults", "", 10);
  ASSERT_FALSE(html.ok());
  EXPECT_NE(html.status().message().find("text/html"), std::string::npos)
      << html.status().ToString();
}

}  // namespace
}  // namespace tidings::dynamodb
