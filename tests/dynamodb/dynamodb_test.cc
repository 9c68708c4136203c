// The DynamoDB backend against a real moto_server with signature checks and
// IAM policy enforcement on: every request is signed by an IAM user holding
// only the least-privilege policy from docs/dynamodb.md.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "../engine/test_util.h"
#include "fault_proxy.h"
#include "moto_fixture.h"
#include "sync/core/reconciler.h"
#include "sync/dynamodb/dynamodb_backend.h"

namespace tidings::dynamodb {
namespace {

testing::MotoServer* moto = nullptr;
const char* kTable = "tidings-test";

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

std::vector<engine::Operation> PullAll(DynamoBackend& b, const std::string& conv) {
  std::vector<engine::Operation> all;
  std::string cursor;
  for (int i = 0; i < 1000; ++i) {
    auto page = b.Pull(conv, cursor, 100);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (!page.ok()) break;
    all.insert(all.end(), page->ops.begin(), page->ops.end());
    cursor = page->next_cursor;
    if (!page->has_more) break;
  }
  return all;
}

engine::Operation Op(const std::string& id, const std::string& body) {
  engine::Operation op;
  op.kind = engine::OpKind::kSend;
  op.op_id = op.message_id = id;
  op.author = "tester";
  op.at = {uint64_t{1'700'000'000'000} << 16, 1};
  op.body = body;
  return op;
}

TEST(DynamoDb, TwoStoresConvergeThroughDynamoDb) {
  testing::TempDir dir;
  auto a = engine::Store::Open(dir / "a", testing::TestKey(), testing::CreateOptions("alice"));
  auto b = engine::Store::Open(dir / "b", testing::TestKey(), testing::CreateOptions("bob"));
  ASSERT_TRUE(a.ok() && b.ok());
  // Offline on both sides.
  ASSERT_TRUE((*a)->PutConversation("visit-1", "Visit", {"alice", "bob"}).ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        (*a)->Send({.conversation_id = "visit-1", .body = "from alice " + std::to_string(i)}).ok());
    ASSERT_TRUE(
        (*b)->Send({.conversation_id = "visit-1", .body = "from bob " + std::to_string(i)}).ok());
  }
  auto edited = (*a)->Send({.conversation_id = "visit-1", .body = "typo"});
  ASSERT_TRUE((*a)->Edit(edited->id, "fixed").ok());
  auto gone = (*b)->Send({.conversation_id = "visit-1", .body = "oops"});
  ASSERT_TRUE((*b)->Delete(gone->id).ok());

  auto ba = Backend("alice"), bb = Backend("bob");
  sync::SyncConfig config;
  sync::Reconciler ra(
      &(*a)->sync_log(), ba.get(), config, [] { return int64_t{0}; }, [] { return 1; });
  sync::Reconciler rb(
      &(*b)->sync_log(), bb.get(), config, [] { return int64_t{0}; }, [] { return 1; });
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(ra.SyncAll().ok());
    ASSERT_TRUE(rb.SyncAll().ok());
  }
  auto pa = (*a)->Page({.conversation_id = "visit-1", .limit = 100});
  auto pb = (*b)->Page({.conversation_id = "visit-1", .limit = 100});
  ASSERT_TRUE(pa.ok() && pb.ok());
  ASSERT_EQ(pa->size(), 12u);
  ASSERT_EQ(pa->size(), pb->size());
  for (size_t i = 0; i < pa->size(); ++i) {
    EXPECT_EQ((*pa)[i].id, (*pb)[i].id);
    EXPECT_EQ((*pa)[i].body, (*pb)[i].body);
    EXPECT_EQ((*pa)[i].deleted, (*pb)[i].deleted);
    EXPECT_EQ((*pa)[i].state, engine::MessageState::kSent);
  }
  EXPECT_EQ((*b)->Get(edited->id)->body, "fixed");
  EXPECT_TRUE((*a)->Get(gone->id)->deleted);
  EXPECT_TRUE((*a)->Outbox(0)->empty());
  EXPECT_TRUE((*b)->Outbox(0)->empty());
  // bob learned the conversation from the membership listing too.
  auto listed = bb->ListConversations();
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(*listed, std::vector<std::string>{"visit-1"});
  // Each send exactly once on the server.
  std::map<std::string, int> count;
  for (const auto& op : PullAll(*ba, "visit-1")) count[op.op_id]++;
  for (const auto& [id, n] : count) EXPECT_EQ(n, 1) << id;
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

TEST(DynamoDb, RetryAfterAmbiguousOutcomeIsNotDuplicated) {
  std::vector<engine::Operation> ops;
  for (int i = 0; i < 30; ++i)
    ops.push_back(Op("amb-" + std::to_string(i), "body " + std::to_string(i)));
  auto first = Backend("u");
  auto acks = first->Push("ambiguous", ops);
  ASSERT_TRUE(acks.ok()) << acks.status().ToString();
  // The client never heard (a new process retries with the same ids).
  auto second = Backend("u");
  auto again = second->Push("ambiguous", ops);
  ASSERT_TRUE(again.ok());
  for (size_t i = 0; i < ops.size(); ++i) {
    EXPECT_TRUE((*again)[i].status.ok());
    EXPECT_EQ((*again)[i].remote_id, (*acks)[i].remote_id);
  }
  EXPECT_EQ(PullAll(*second, "ambiguous").size(), ops.size());
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
  auto backend = DynamoBackend::Create(c, aws::StaticCredentials(moto->credentials()));
  int64_t now = 0;
  sync::Reconciler rec(
      &(*store)->sync_log(), backend.get(), {}, [&] { return now; }, [] { return 0; });

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
