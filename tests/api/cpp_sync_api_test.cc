// The C++ sync layer (tidings_sync.hpp) over the C calls: values copied out,
// errors as Status, the listener kept alive by the Sync, moves.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <array>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/api/api_test_util.h"
#include "tidings/tidings_sync.hpp"

namespace {

using tidings::apitest::TempDir;
namespace api = tidings::api;

TEST(CppSyncApi, HandleOverTwoBackendsStatusCountersAndAuth) {
  ::setenv("AWS_ACCESS_KEY_ID", "test", 0);
  ::setenv("AWS_SECRET_ACCESS_KEY", "test", 0);
  ::setenv("AWS_REGION", "us-east-1", 0);
  TempDir dir;
  std::array<uint8_t, TIDINGS_KEY_SIZE> key{};
  key.fill(5);
  auto store = api::Store::Create(dir / "s", api::Key::Raw(key), "alice");
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE(store->Send("general", "queued").ok());

  api::SyncOptions o;
  o.require_every_backend = true;
  auto opened = api::Sync::Open(*store, o);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  api::Sync sync = std::move(opened).value();                     // a moved Sync keeps its handle
  EXPECT_EQ(sync.AddChime({}).code(), TIDINGS_INVALID_ARGUMENT);  // ARNs missing
  ASSERT_TRUE(sync.AddChime({"arn:aws:chime:us-east-1:123456789012:app-instance/app",
                             "arn:aws:chime:us-east-1:123456789012:app-instance/app/user/me", "",
                             "http://127.0.0.1:1"})
                  .ok());
  ASSERT_TRUE(sync.AddDynamoDb({"", "", "http://127.0.0.1:1"}).ok());
  EXPECT_EQ(sync.AddDynamoDb().code(), TIDINGS_ALREADY_EXISTS);
  std::vector<api::SyncEvent> events;
  ASSERT_TRUE(sync.SetListener([&](const api::SyncEvent& e) { events.push_back(e); }).ok());
  ASSERT_TRUE(sync.Once().ok());

  auto status = sync.GetStatus();
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(status->size(), 2u);
  EXPECT_EQ((*status)[0].backend, "chime");
  EXPECT_FALSE((*status)[0].last_error.empty());
  auto backends = sync.Backends();
  ASSERT_TRUE(backends.ok());
  ASSERT_EQ(backends->size(), 2u);
  EXPECT_EQ((*backends)[1].name, "dynamodb");
  EXPECT_TRUE((*backends)[1].stopped_by.ok());
  EXPECT_EQ((*backends)[1].outbox_depth, 1u);
  EXPECT_EQ((*backends)[1].errors.at(TIDINGS_UNAVAILABLE), (*backends)[1].requests);
  EXPECT_TRUE(events.empty()) << "refused connections stop nothing";
  // The persisted view, from the store alone.
  auto persisted = api::GetSyncStatus(*store, "dynamodb");
  ASSERT_TRUE(persisted.ok());
  ASSERT_EQ(persisted->size(), 1u);
  EXPECT_EQ((*persisted)[0].conversation_id, "general");

  EXPECT_EQ(api::AuthMac(*store, "x").status().code(), TIDINGS_UNAVAILABLE);
  ASSERT_TRUE(api::RotateAuthSecret(*store).ok());
  auto mac = api::AuthMac(*store, "x");
  ASSERT_TRUE(mac.ok());
  EXPECT_EQ(mac->size(), size_t{TIDINGS_AUTH_MAC_SIZE});
  EXPECT_TRUE(api::CheckAwsCredentials().ok());
}

// The app's credentials as a std::function the Sync keeps alive (also
// across a move), typing and the push channel's state.
TEST(CppSyncApi, CredentialsFunctionTypingAndThePushChannel) {
  ::setenv("AWS_REGION", "us-east-1", 0);
  TempDir dir;
  std::array<uint8_t, TIDINGS_KEY_SIZE> key{};
  key.fill(6);
  auto store = api::Store::Create(dir / "s", api::Key::Raw(key), "alice");
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  std::atomic<int> asked{0};
  api::SyncOptions o;
  o.credentials = [&]() -> api::Result<api::AwsCredentials> {
    ++asked;
    return api::AwsCredentials{"AKIDCPP", "cpp-secret", "cpp-token", 0};
  };
  auto opened = api::Sync::Open(*store, o);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  api::Sync sync = std::move(opened).value();
  ASSERT_TRUE(sync.AddChime({"arn:aws:chime:us-east-1:123456789012:app-instance/app",
                             "arn:aws:chime:us-east-1:123456789012:app-instance/app/user/me", "",
                             "http://127.0.0.1:1"})
                  .ok());
  EXPECT_EQ(sync.Typing("general").code(), TIDINGS_FAILED_PRECONDITION);
  ASSERT_TRUE(sync.Start().ok());
  EXPECT_TRUE(sync.Typing("general").ok());
  EXPECT_TRUE(sync.Poke().ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  bool down_with_reason = false;
  while (!down_with_reason && std::chrono::steady_clock::now() < deadline) {
    auto backends = sync.Backends();
    ASSERT_TRUE(backends.ok());
    EXPECT_FALSE((*backends)[0].realtime_connected);
    down_with_reason =
        (*backends)[0].realtime_available &&
        (*backends)[0].realtime_detail.find("GetMessagingSessionEndpoint") != std::string::npos;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(down_with_reason);
  EXPECT_GE(asked.load(), 1) << "the function signed the requests";
  ASSERT_TRUE(sync.Stop().ok());
}

}  // namespace
