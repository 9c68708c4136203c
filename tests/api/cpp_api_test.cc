// The C++ layer (tidings.hpp): RAII, value types, Status/Result.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

#include "tests/api/api_test_util.h"
#include "tidings/tidings.hpp"

namespace {

using tidings::apitest::TempDir;
using tidings::apitest::TestKey;
namespace api = tidings::api;

TEST(CppApi, OrderKeyTextRoundTrip) {
  api::OrderKey k{0x1234abcd0001ULL, 0xfeedULL};
  auto parsed = api::OrderKey::Parse(k.ToString());
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(*parsed, k);
  EXPECT_FALSE(api::OrderKey::Parse("nothex-1").has_value());
  EXPECT_FALSE(api::OrderKey::Parse("12").has_value());
  EXPECT_FALSE(api::OrderKey::Parse("1-").has_value());
  EXPECT_FALSE(api::OrderKey::Parse("11111111111111111-1").has_value());  // 17 digits
  EXPECT_LT(api::OrderKey({1, 2}), api::OrderKey({1, 3}));
}

TEST(CppApi, ResultAndStatus) {
  api::Result<int> r = api::Status(TIDINGS_NOT_FOUND, "nope");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), TIDINGS_NOT_FOUND);
  EXPECT_EQ(r.status().ToString(), "NOT_FOUND: nope");
  api::Result<int> bad = api::Status();  // OK without a value is a bug, reported as one
  EXPECT_EQ(bad.status().code(), TIDINGS_INTERNAL);
  api::Result<int> good = 7;
  ASSERT_TRUE(good);
  EXPECT_EQ(*good, 7);
  EXPECT_TRUE(api::Status(TIDINGS_UNAVAILABLE, "x").IsRetryable());
}

TEST(CppApi, BackupAndRestore) {
  TempDir dir;
  const std::string path = dir / "s", backup = dir / "b.tidbak", restored = dir / "r";
  {
    auto store = api::Store::Create(path, TestKey(), "alice");
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(store->Send("general", "hello").ok());
    uint64_t calls = 0;
    ASSERT_TRUE(store->Backup(backup, [&](uint64_t, uint64_t) { ++calls; }).ok());
    EXPECT_GT(calls, 0u);
    EXPECT_EQ(store->Backup(backup).code(), TIDINGS_ALREADY_EXISTS);
  }
  ASSERT_TRUE(api::Store::Restore(backup, restored, TestKey()).ok());
  auto copy = api::Store::Open(restored, TestKey());
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  auto page = copy->Newest("general");
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ((*page)[0].body, "hello");
}

TEST(CppApi, StoreRoundTripAndErrors) {
  TempDir dir;
  const std::string path = dir / "s";
  {
    auto store = api::Store::Create(path, TestKey(), "alice");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto m = store->Send("general", "hello");
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    EXPECT_EQ(m->body, "hello");
    EXPECT_EQ(m->sender, "alice");
    EXPECT_EQ(m->state, api::MessageState::kPending);
    api::SendRequest r;
    r.conversation_id = "general";
    r.body = "with meta";
    r.metadata = {{"lang", "en"}};
    auto m2 = store->Send(r);
    ASSERT_TRUE(m2.ok());
    EXPECT_EQ(m2->metadata.at("lang"), "en");
    auto edited = store->Edit(m->id, "hello!");
    ASSERT_TRUE(edited.ok());
    EXPECT_FALSE(edited->edited_at.IsZero());
    ASSERT_TRUE(store->React(m->id, "+1").ok());
    ASSERT_TRUE(store->PutConversation("general", "General", {"alice", "bob"}).ok());

    auto page = store->Newest("general");
    ASSERT_TRUE(page.ok());
    ASSERT_EQ(page->size(), 2u);
    EXPECT_EQ((*page)[0].body, "hello!");
    EXPECT_EQ((*page)[0].reactions.size(), 1u);
    auto before = store->Before("general", (*page)[1].order);
    ASSERT_TRUE(before.ok());
    ASSERT_EQ(before->size(), 1u);
    EXPECT_EQ((*before)[0].id, m->id);
    auto after = store->After("general", (*page)[0].order);
    ASSERT_TRUE(after.ok());
    ASSERT_EQ(after->size(), 1u);
    EXPECT_EQ((*after)[0].id, m2->id);

    auto conv = store->GetConversation("general");
    ASSERT_TRUE(conv.ok());
    EXPECT_EQ(conv->title, "General");
    EXPECT_EQ(conv->members, (std::vector<std::string>{"alice", "bob"}));
    auto convs = store->Conversations();
    ASSERT_TRUE(convs.ok());
    EXPECT_EQ(convs->size(), 1u);
    auto outbox = store->Outbox();
    ASSERT_TRUE(outbox.ok());
    EXPECT_EQ(outbox->size(), 4u);  // send, send, edit, react
    EXPECT_STREQ((*outbox)[2].kind_name(), "edit");
    auto counts = store->CountOutbox();
    ASSERT_TRUE(counts.ok());
    EXPECT_EQ(counts->pending, 4u);
    EXPECT_EQ(counts->total(), 4u);
    auto stats = store->GetStats();
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->messages, 2u);
    EXPECT_EQ(stats->user_id, "alice");
    uint64_t progress_calls = 0;
    auto report = store->Verify([&](uint64_t, uint64_t) { ++progress_calls; });
    ASSERT_TRUE(report.ok());
    EXPECT_EQ(report->problems, 0u);
    EXPECT_GT(progress_calls, 0u);
    std::vector<std::string> bodies;
    ASSERT_TRUE(store
                    ->ForEachMessage([&](const api::Message& msg) {
                      bodies.push_back(msg.body);
                      return true;
                    })
                    .ok());
    EXPECT_EQ(bodies, (std::vector<std::string>{"hello!", "with meta"}));

    EXPECT_EQ(store->Get("missing").status().code(), TIDINGS_NOT_FOUND);
    EXPECT_EQ(store->Newest("missing").status().code(), TIDINGS_NOT_FOUND);
    EXPECT_EQ(store->Send("general", std::string(70000, 'x')).status().code(), TIDINGS_TOO_LARGE);
    EXPECT_EQ(store->RetryFailed((*outbox)[0].seq).code(), TIDINGS_FAILED_PRECONDITION);
  }  // closed by RAII: a writer can open it again at once
  std::array<uint8_t, TIDINGS_KEY_SIZE> wrong{};
  auto reopened = api::Store::Open(path, api::Key::Raw(wrong));
  EXPECT_EQ(reopened.status().code(), TIDINGS_WRONG_KEY);
  auto again = api::Store::Open(path, TestKey());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->Newest("general")->size(), 2u);
}

TEST(CppApi, SubscriptionEndsOnDestructionAndSurvivesStoreClose) {
  TempDir dir;
  auto store = api::Store::Create(dir / "s", TestKey(), "alice");
  ASSERT_TRUE(store.ok());
  std::atomic<int> added{0};
  {
    auto sub = store->Subscribe([&](const api::ChangeEvent& e) {
      if (e.kind == TIDINGS_CHANGE_MESSAGE_ADDED) ++added;
    });
    ASSERT_TRUE(sub.ok());
    ASSERT_TRUE(store->Send("c", "one").ok());
    EXPECT_EQ(added.load(), 1);
  }
  ASSERT_TRUE(store->Send("c", "two").ok());
  EXPECT_EQ(added.load(), 1);  // the subscription ended with its scope

  // A throwing callback does not escape into the library.
  auto thrower = store->Subscribe([](const api::ChangeEvent&) { throw 42; });
  ASSERT_TRUE(thrower.ok());
  EXPECT_TRUE(store->Send("c", "three").ok());

  // A subscription that outlives its store is harmless.
  auto late = store->Subscribe([](const api::ChangeEvent&) {});
  ASSERT_TRUE(late.ok());
  store->Close();
  EXPECT_FALSE(store->is_open());
  late->Cancel();
}

TEST(CppApi, MovedStoreKeepsWorking) {
  TempDir dir;
  auto created = api::Store::Create(dir / "s", TestKey(), "alice");
  ASSERT_TRUE(created.ok());
  api::Store a = std::move(created).value();
  api::Store b = std::move(a);
  EXPECT_FALSE(a.is_open());  // NOLINT: checking the moved-from state on purpose
  ASSERT_TRUE(b.is_open());
  EXPECT_TRUE(b.Send("c", "x").ok());
  auto passphrase = api::Store::Create(dir / "p", api::Key::Passphrase("pw"), "bob");
  ASSERT_TRUE(passphrase.ok()) << passphrase.status().ToString();
  auto key_file = api::CreateKeyFile(dir / "k.key");
  ASSERT_TRUE(key_file.ok());
  EXPECT_EQ(api::CreateKeyFile(dir / "k.key").code(), TIDINGS_ALREADY_EXISTS);
}

// Moving a store from a raw key to a key file and rotating its data key.
TEST(CppApi, RekeyToAKeyFileAndRotate) {
  TempDir dir;
  const std::string path = dir / "s";
  std::string id;
  {
    auto store = api::Store::Create(path, TestKey(), "me");
    ASSERT_TRUE(store.ok());
    id = store->Send("general", "hello")->id;
  }
  ASSERT_TRUE(api::CreateKeyFile(dir / "k.key").ok());
  const api::Key file = api::Key::File(dir / "k.key");
  api::RekeyOptions o;
  o.new_key = &file;
  ASSERT_TRUE(api::Store::Rekey(path, TestKey(), o).ok());
  EXPECT_EQ(api::Store::Open(path, TestKey()).status().code(), TIDINGS_WRONG_KEY);

  uint64_t done = 0;
  api::RekeyOptions rotate;
  rotate.rotate_data_key = true;
  rotate.progress = [&](uint64_t d, uint64_t) { done = d; };
  ASSERT_TRUE(api::Store::Rekey(path, file, rotate).ok());
  EXPECT_GT(done, 0u);
  auto store = api::Store::Open(path, file);
  ASSERT_TRUE(store.ok()) << store.status().message();
  EXPECT_EQ(store->Get(id)->body, "hello");
}

}  // namespace
