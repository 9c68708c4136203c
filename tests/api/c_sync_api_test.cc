// The sync part of the C API (tidings_sync.h) as an app embeds it: the
// status lists, the configs' struct_size, a handle over several backends
// against endpoints that refuse or hang (no server runs here: the
// conformance suites sync for real), its counters and events, and the
// proof of key between processes.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/api/api_test_util.h"
#include "tests/common/eventually.h"
#include "tidings/tidings_sync.h"

namespace {

using tidings::apitest::kAppArn;
using tidings::apitest::kKey;
using tidings::apitest::kRefused;
using tidings::apitest::TempDir;
using tidings::testing::Eventually;

constexpr const char kUserArn[] = "arn:aws:chime:us-east-1:123456789012:app-instance/app/user/me";

// A port that accepts connections (the kernel's backlog) and never answers.
class HangingPort {
 public:
  HangingPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1";
    }
    url_ = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  }
  ~HangingPort() { ::close(fd_); }
  const std::string& url() const { return url_; }

 private:
  int fd_ = -1;
  std::string url_;
};

class CSyncApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("AWS_ACCESS_KEY_ID", "test", 0);
    ::setenv("AWS_SECRET_ACCESS_KEY", "test", 0);
    ::setenv("AWS_REGION", "us-east-1", 0);
    path_ = dir_ / "store";
    tidings_key_source key = tidings_key_raw(kKey);
    tidings_error e{};
    ASSERT_EQ(tidings_store_create(path_.c_str(), &key, "alice", &store_, &e), TIDINGS_OK)
        << e.message;
  }
  void TearDown() override { tidings_store_close(store_); }

  void Send(const char* conv) {
    tidings_send_request r{};
    r.struct_size = sizeof(r);
    r.conversation_id = conv;
    r.body = "queued";
    r.body_size = 6;
    tidings_error e{};
    ASSERT_EQ(tidings_store_send(store_, &r, nullptr, &e), TIDINGS_OK) << e.message;
  }
  // Another process's view of the store.
  tidings_store* OpenReadOnly() {
    tidings_key_source key = tidings_key_raw(kKey);
    tidings_open_options o{};
    o.struct_size = sizeof(o);
    o.read_only = true;
    tidings_store* ro = nullptr;
    tidings_error e{};
    EXPECT_EQ(tidings_store_open(path_.c_str(), &key, &o, &ro, &e), TIDINGS_OK) << e.message;
    return ro;
  }
  // A handle over Chime then DynamoDB, both at `endpoint`.
  tidings_sync* OpenBoth(const tidings_sync_options* o, const char* endpoint) {
    tidings_error e{};
    tidings_sync* sync = nullptr;
    EXPECT_EQ(tidings_sync_open(store_, o, &sync, &e), TIDINGS_OK) << e.message;
    tidings_chime_config chime;
    tidings_chime_config_init(&chime);
    chime.app_instance_arn = kAppArn;
    chime.user_arn = kUserArn;
    chime.endpoint = endpoint;
    EXPECT_EQ(tidings_sync_add_chime(sync, &chime, &e), TIDINGS_OK) << e.message;
    tidings_dynamodb_config dynamo;
    tidings_dynamodb_config_init(&dynamo);
    dynamo.endpoint = endpoint;
    EXPECT_EQ(tidings_sync_add_dynamodb(sync, &dynamo, &e), TIDINGS_OK) << e.message;
    return sync;
  }

  TempDir dir_;
  std::string path_;
  tidings_store* store_ = nullptr;
};

TEST_F(CSyncApiTest, OneBackendAgainstADeadEndpointAndTheStatusLists) {
  Send("general");
  tidings_error e;
  e.code = TIDINGS_INTERNAL;  // junk that success must clear
  std::strcpy(e.message, "stale");
  tidings_sync_status_list* st = nullptr;
  ASSERT_EQ(tidings_store_sync_status(store_, nullptr, &st, &e), TIDINGS_OK) << e.message;
  EXPECT_EQ(e.code, TIDINGS_OK);
  EXPECT_STREQ(e.message, "");
  EXPECT_EQ(tidings_sync_status_list_count(st), 0u);  // never synced
  EXPECT_EQ(tidings_sync_status_list_at(st, 0), nullptr);
  tidings_sync_status_list_free(st);
  EXPECT_EQ(tidings_sync_status_list_count(nullptr), 0u);

  tidings_dynamodb_config config;
  tidings_dynamodb_config_init(&config);
  config.endpoint = kRefused;
  tidings_sync* sync = nullptr;
  ASSERT_EQ(tidings_sync_open_dynamodb(store_, &config, &sync, &e), TIDINGS_OK) << e.message;
  // The round runs; the failure is per conversation, recorded for retry.
  EXPECT_EQ(tidings_sync_once(sync, &e), TIDINGS_OK) << e.message;
  ASSERT_EQ(tidings_sync_get_status(sync, &st, &e), TIDINGS_OK);
  ASSERT_EQ(tidings_sync_status_list_count(st), 1u);
  const tidings_sync_status* s0 = tidings_sync_status_list_at(st, 0);
  EXPECT_STREQ(s0->backend, "dynamodb");
  EXPECT_STREQ(s0->conversation_id, "general");
  EXPECT_STRNE(s0->last_error, "") << "failures " << s0->consecutive_failures << ", last success "
                                   << s0->last_success_ms << ", activity " << s0->last_activity_ms;
  EXPECT_GT(s0->next_attempt_ms, 0);
  EXPECT_EQ(s0->outbox_depth, 1u);
  EXPECT_EQ(tidings_sync_status_list_at(st, 1), nullptr);
  tidings_sync_status_list_free(st);
  // Start/stop: a second start is refused, stop is idempotent, once refused
  // while the threads run.
  ASSERT_EQ(tidings_sync_start(sync, &e), TIDINGS_OK) << e.message;
  EXPECT_EQ(tidings_sync_start(sync, &e), TIDINGS_FAILED_PRECONDITION);
  EXPECT_EQ(tidings_sync_once(sync, &e), TIDINGS_FAILED_PRECONDITION);
  EXPECT_EQ(tidings_sync_stop(sync, &e), TIDINGS_OK);
  EXPECT_EQ(tidings_sync_stop(sync, &e), TIDINGS_OK);
  tidings_sync_close(sync);
  tidings_sync_close(nullptr);

  // The status persisted: a read-only handle (another process) sees it.
  tidings_store* ro = OpenReadOnly();
  ASSERT_NE(ro, nullptr);
  ASSERT_EQ(tidings_store_sync_status(ro, "dynamodb", &st, &e), TIDINGS_OK) << e.message;
  ASSERT_EQ(tidings_sync_status_list_count(st), 1u);
  EXPECT_STRNE(tidings_sync_status_list_at(st, 0)->last_error, "");
  tidings_sync_status_list_free(st);
  tidings_store_close(ro);
  EXPECT_EQ(tidings_sync_once(nullptr, &e), TIDINGS_INVALID_ARGUMENT);
}

TEST_F(CSyncApiTest, ConfigsNeedTheirStructSizeAndChimeItsArns) {
  tidings_error e{};
  tidings_sync* sync = nullptr;
  EXPECT_EQ(tidings_sync_open_chime(store_, nullptr, &sync, &e), TIDINGS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(e.message).find("app_instance_arn"), std::string::npos) << e.message;
  tidings_chime_config chime{};  // struct_size 0: not prepared with the _init
  chime.app_instance_arn = kAppArn;
  chime.user_arn = kUserArn;
  EXPECT_EQ(tidings_sync_open_chime(store_, &chime, &sync, &e), TIDINGS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(e.message).find("tidings_chime_config_init"), std::string::npos);
  tidings_chime_config_init(&chime);
  EXPECT_EQ(chime.struct_size, sizeof(chime));
  EXPECT_EQ(chime.app_instance_arn, nullptr);  // the _init clears every field
  chime.app_instance_arn = kAppArn;
  EXPECT_EQ(tidings_sync_open_chime(store_, &chime, &sync, &e), TIDINGS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(e.message).find("user"), std::string::npos) << e.message;
  EXPECT_EQ(sync, nullptr);

  tidings_dynamodb_config dynamo{};
  EXPECT_EQ(tidings_sync_open_dynamodb(store_, &dynamo, &sync, &e), TIDINGS_INVALID_ARGUMENT);
  EXPECT_EQ(tidings_dynamodb_create_table(&dynamo, &e), TIDINGS_INVALID_ARGUMENT);
  EXPECT_EQ(tidings_sync_open_dynamodb(store_, nullptr, &sync, &e), TIDINGS_INVALID_ARGUMENT);
  tidings_sync_options o{};
  EXPECT_EQ(tidings_sync_open(store_, &o, &sync, &e), TIDINGS_INVALID_ARGUMENT);
  tidings_sync_options_init(&o);
  o.max_backoff_ms = -1;
  EXPECT_EQ(tidings_sync_open(store_, &o, &sync, &e), TIDINGS_INVALID_ARGUMENT);
  EXPECT_EQ(sync, nullptr);
  // Smaller than any published version: refused, and nothing past
  // struct_size is read (the struct sits at the very end of a heap block, so
  // the sanitizer build catches a read past it).
  const size_t older = offsetof(tidings_sync_options, connect_timeout_ms);
  auto* block = static_cast<unsigned char*>(std::malloc(older));
  ASSERT_NE(block, nullptr);
  std::memset(block, 0, older);
  const uint32_t older_size = static_cast<uint32_t>(older);
  std::memcpy(block, &older_size, sizeof(older_size));
  EXPECT_EQ(tidings_sync_open(store_, reinterpret_cast<tidings_sync_options*>(block), &sync, &e),
            TIDINGS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(e.message).find("smaller than any version"), std::string::npos)
      << e.message;
  std::free(block);
  // A newer header's fields this library does not know must be zero.
  struct {
    tidings_sync_options o;
    int64_t newer_field;
  } newer;
  tidings_sync_options_init(&newer.o);
  newer.newer_field = 0;
  newer.o.struct_size = sizeof(newer);
  ASSERT_EQ(tidings_sync_open(store_, &newer.o, &sync, &e), TIDINGS_OK) << e.message;
  tidings_sync_close(sync);
  newer.newer_field = 1;
  EXPECT_EQ(tidings_sync_open(store_, &newer.o, &sync, &e), TIDINGS_INVALID_ARGUMENT);
  // The backend configs go through the same check.
  tidings_dynamodb_config tiny;
  tidings_dynamodb_config_init(&tiny);
  tiny.struct_size = 4;
  EXPECT_EQ(tidings_sync_open_dynamodb(store_, &tiny, &sync, &e), TIDINGS_INVALID_ARGUMENT);
  tidings_chime_config tiny_chime;
  tidings_chime_config_init(&tiny_chime);
  tiny_chime.struct_size = 4;
  EXPECT_EQ(tidings_sync_open_chime(store_, &tiny_chime, &sync, &e), TIDINGS_INVALID_ARGUMENT);
}

TEST_F(CSyncApiTest, SeveralBackendsInOneHandle) {
  Send("general");
  tidings_error e{};
  tidings_sync_options o;
  tidings_sync_options_init(&o);
  o.require_every_backend = true;
  tidings_sync* sync = OpenBoth(&o, kRefused);
  // Each backend once; not while started.
  tidings_dynamodb_config dynamo;
  tidings_dynamodb_config_init(&dynamo);
  EXPECT_EQ(tidings_sync_add_dynamodb(sync, &dynamo, &e), TIDINGS_ALREADY_EXISTS);
  EXPECT_EQ(tidings_sync_restart(sync, nullptr, &e), TIDINGS_FAILED_PRECONDITION);

  EXPECT_EQ(tidings_sync_once(sync, &e), TIDINGS_OK) << e.message;
  tidings_sync_status_list* st = nullptr;
  ASSERT_EQ(tidings_sync_get_status(sync, &st, &e), TIDINGS_OK);
  ASSERT_EQ(tidings_sync_status_list_count(st), 2u);
  EXPECT_STREQ(tidings_sync_status_list_at(st, 0)->backend, "chime");  // the order added
  EXPECT_STREQ(tidings_sync_status_list_at(st, 1)->backend, "dynamodb");
  EXPECT_EQ(tidings_sync_status_list_at(st, 1)->outbox_depth, 1u);
  tidings_sync_status_list_free(st);

  tidings_sync_backend_list* bl = nullptr;
  ASSERT_EQ(tidings_sync_backends(sync, &bl, &e), TIDINGS_OK) << e.message;
  ASSERT_EQ(tidings_sync_backend_list_count(bl), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const tidings_sync_backend* b = tidings_sync_backend_list_at(bl, i);
    SCOPED_TRACE(b->name);
    EXPECT_FALSE(b->running);
    EXPECT_EQ(b->stopped_by, TIDINGS_OK);
    EXPECT_STREQ(b->stopped_why, "");
    EXPECT_EQ(b->outbox_depth, 1u);
    EXPECT_GT(b->requests, 0u);  // refused connections count as requests ...
    EXPECT_EQ(b->last_success_ms, 0);
    ASSERT_EQ(b->error_count, 1u);  // ... that failed UNAVAILABLE
    EXPECT_EQ(b->errors[0]->code, TIDINGS_UNAVAILABLE);
    EXPECT_EQ(b->errors[0]->count, b->requests);
  }
  EXPECT_EQ(tidings_sync_backend_list_at(bl, 2), nullptr);
  tidings_sync_backend_list_free(bl);

  ASSERT_EQ(tidings_sync_start(sync, &e), TIDINGS_OK) << e.message;
  EXPECT_EQ(tidings_sync_add_dynamodb(sync, &dynamo, &e), TIDINGS_FAILED_PRECONDITION);
  EXPECT_EQ(tidings_sync_set_listener(sync, nullptr, nullptr, &e), TIDINGS_FAILED_PRECONDITION);
  EXPECT_EQ(tidings_sync_poke(sync, &e), TIDINGS_OK);
  EXPECT_EQ(tidings_sync_restart(sync, "chime", &e), TIDINGS_OK) << e.message;
  EXPECT_EQ(tidings_sync_restart(sync, "imap", &e), TIDINGS_NOT_FOUND);
  EXPECT_EQ(tidings_sync_restart(sync, nullptr, &e), TIDINGS_OK);  // none stopped by an error
  ASSERT_EQ(tidings_sync_backends(sync, &bl, &e), TIDINGS_OK);
  EXPECT_TRUE(tidings_sync_backend_list_at(bl, 0)->running);
  EXPECT_TRUE(tidings_sync_backend_list_at(bl, 1)->running);
  tidings_sync_backend_list_free(bl);
  // The handle's outbox calls: nothing has failed, nothing to retry.
  EXPECT_EQ(tidings_sync_outbox_retry(sync, 1, &e), TIDINGS_FAILED_PRECONDITION);
  EXPECT_EQ(tidings_sync_outbox_discard(sync, 999, &e), TIDINGS_NOT_FOUND);
  tidings_sync_close(sync);  // stops its threads
  uint64_t pending = 0;
  ASSERT_EQ(tidings_store_outbox_count(store_, nullptr, &pending, nullptr, &e), TIDINGS_OK);
  EXPECT_EQ(pending, 1u) << "nothing is lost while the servers are away";
}

struct Events {
  std::mutex mu;
  std::vector<std::string> seen;  // "kind backend"
  static void Record(void* ctx, const tidings_sync_event* ev) {
    auto* self = static_cast<Events*>(ctx);
    std::lock_guard<std::mutex> lock(self->mu);
    self->seen.push_back(std::to_string(ev->kind) + " " + ev->backend);
  }
};

TEST_F(CSyncApiTest, StopAbandonsAHangingRequestAfterTheGraceAndCanStartAgain) {
  Send("general");
  HangingPort port;
  tidings_error e{};
  tidings_sync_options o;
  tidings_sync_options_init(&o);
  o.stop_grace_ms = 200;
  o.request_timeout_ms = 60'000;  // the grace, not the timeout, must end the wait
  tidings_sync* sync = OpenBoth(&o, port.url().c_str());
  Events events;
  ASSERT_EQ(tidings_sync_set_listener(sync, &Events::Record, &events, &e), TIDINGS_OK);
  auto requests = [&] {
    tidings_sync_backend_list* bl = nullptr;
    EXPECT_EQ(tidings_sync_backends(sync, &bl, &e), TIDINGS_OK) << e.message;
    uint64_t n = 0;
    for (size_t i = 0; i < tidings_sync_backend_list_count(bl); ++i) {
      n += tidings_sync_backend_list_at(bl, i)->requests;
    }
    tidings_sync_backend_list_free(bl);
    return n;
  };
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    const uint64_t before = requests();
    ASSERT_EQ(tidings_sync_start(sync, &e), TIDINGS_OK) << e.message;
    Eventually([&] { return requests() >= before + 2; }, std::chrono::seconds(10));
    ASSERT_GE(requests(), before + 2) << "both backends send a request that hangs";
    const auto stop_start = std::chrono::steady_clock::now();
    ASSERT_EQ(tidings_sync_stop(sync, &e), TIDINGS_OK);
    EXPECT_LT(std::chrono::steady_clock::now() - stop_start, std::chrono::seconds(5));
    std::lock_guard<std::mutex> lock(events.mu);
    EXPECT_EQ(events.seen, (std::vector<std::string>{"3 chime", "3 dynamodb"}));
    events.seen.clear();
  }
  tidings_sync_close(sync);
}

TEST_F(CSyncApiTest, CredentialsCheckSaysWhatIsMissing) {
  tidings_error e{};
  EXPECT_EQ(tidings_aws_credentials_check(&e), TIDINGS_OK) << e.message;
  std::string saved_id = std::getenv("AWS_ACCESS_KEY_ID");
  std::string saved_secret = std::getenv("AWS_SECRET_ACCESS_KEY");
  ::unsetenv("AWS_ACCESS_KEY_ID");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  ::setenv("AWS_SHARED_CREDENTIALS_FILE", (dir_ / "no-such-file").c_str(), 1);
  EXPECT_EQ(tidings_aws_credentials_check(&e), TIDINGS_UNAUTHENTICATED);
  EXPECT_NE(std::string(e.message).find("AWS_ACCESS_KEY_ID"), std::string::npos) << e.message;
  ::unsetenv("AWS_SHARED_CREDENTIALS_FILE");
  ::setenv("AWS_ACCESS_KEY_ID", saved_id.c_str(), 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", saved_secret.c_str(), 1);
}

// The app's credentials: counts the calls; `refuse` makes it say there are
// none. The secret must never show in an error or event.
struct AppCredentials {
  std::atomic<int> calls{0};
  std::atomic<bool> refuse{false};
  static tidings_code Fetch(void* ctx, tidings_aws_credentials_sink* sink) {
    auto* self = static_cast<AppCredentials*>(ctx);
    ++self->calls;
    if (self->refuse) return TIDINGS_UNAUTHENTICATED;
    return tidings_aws_credentials_set(sink, "AKIDFROMTHEAPP", "app-secret-never-shown",
                                       "app-token", 0, nullptr);
  }
};

struct RealtimeEvents {
  std::mutex mu;
  std::vector<std::string> seen;  // "kind backend code message"
  static void Record(void* ctx, const tidings_sync_event* ev) {
    auto* self = static_cast<RealtimeEvents*>(ctx);
    std::lock_guard<std::mutex> lock(self->mu);
    self->seen.push_back(std::to_string(ev->kind) + " " + ev->backend + " " +
                         tidings_code_name(ev->code) + " " + ev->message + " " + ev->user);
  }
  std::string All() {
    std::lock_guard<std::mutex> lock(mu);
    std::string out;
    for (const auto& s : seen) out += s + "\n";
    return out;
  }
};

// "Load older" checks its arguments and clears its outputs; on backends
// that carry sealed logs a conversation made here is end to end, whose
// history is read oldest-first only: refused, saying so.
TEST_F(CSyncApiTest, LoadOlderRefusesAnEndToEndConversation) {
  Send("general");
  tidings_sync* sync = OpenBoth(nullptr, kRefused);
  tidings_error e{};
  uint64_t merged = 7;
  bool more = true;
  EXPECT_EQ(tidings_sync_load_older(sync, nullptr, 1, &merged, &more, &e),
            TIDINGS_INVALID_ARGUMENT);
  EXPECT_EQ(merged, 0u);
  EXPECT_FALSE(more);
  EXPECT_EQ(tidings_sync_load_older(sync, "general", 1, nullptr, &more, &e),
            TIDINGS_INVALID_ARGUMENT);
  EXPECT_EQ(tidings_sync_load_older(sync, "general", 0, &merged, &more, &e),
            TIDINGS_FAILED_PRECONDITION);
  EXPECT_NE(std::string(e.message).find("oldest-first"), std::string::npos) << e.message;
  EXPECT_EQ(tidings_sync_load_older(nullptr, "general", 1, &merged, &more, &e),
            TIDINGS_INVALID_ARGUMENT);
  tidings_sync_close(sync);
}

TEST_F(CSyncApiTest, CredentialsFromTheAppTypingAndThePushChannelsStatus) {
  tidings_error e{};
  EXPECT_EQ(tidings_aws_credentials_set(nullptr, "a", "b", nullptr, 0, &e),
            TIDINGS_INVALID_ARGUMENT);
  AppCredentials app;
  RealtimeEvents events;
  tidings_sync_options o;
  tidings_sync_options_init(&o);
  o.credentials = AppCredentials::Fetch;
  o.credentials_context = &app;
  tidings_sync* sync = OpenBoth(&o, kRefused);
  ASSERT_EQ(tidings_sync_set_listener(sync, RealtimeEvents::Record, &events, &e), TIDINGS_OK);
  EXPECT_EQ(tidings_sync_typing(sync, "general", &e), TIDINGS_FAILED_PRECONDITION);
  EXPECT_NE(std::string(e.message).find("not started"), std::string::npos) << e.message;
  EXPECT_EQ(tidings_sync_typing(sync, nullptr, &e), TIDINGS_INVALID_ARGUMENT);

  ASSERT_EQ(tidings_sync_start(sync, &e), TIDINGS_OK) << e.message;
  // Both backends sign with the app's credentials (the environment's are
  // set too, and not used): the callback is asked, once, then cached.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  Eventually([&] { return app.calls.load() != 0; });
  EXPECT_EQ(app.calls.load(), 1) << "fetched once, kept while valid (no expiry given)";
  EXPECT_EQ(tidings_sync_typing(sync, "general", &e), TIDINGS_OK) << e.message;
  EXPECT_EQ(tidings_sync_typing(sync, "general", &e), TIDINGS_OK) << "rate-limited, not refused";

  // Chime has a push channel (down: nothing listens), DynamoDB none.
  tidings_sync_backend_list* bl = nullptr;
  bool chime_down_with_reason = false;
  while (!chime_down_with_reason &&
         std::chrono::steady_clock::now() < deadline + std::chrono::seconds(5)) {
    ASSERT_EQ(tidings_sync_backends(sync, &bl, &e), TIDINGS_OK) << e.message;
    const tidings_sync_backend* chime = tidings_sync_backend_list_at(bl, 0);
    EXPECT_FALSE(chime->realtime_connected);
    chime_down_with_reason =
        chime->realtime_available &&
        std::string(chime->realtime_detail).find("GetMessagingSessionEndpoint") !=
            std::string::npos;
    const tidings_sync_backend* dynamo = tidings_sync_backend_list_at(bl, 1);
    EXPECT_FALSE(dynamo->realtime_available);
    EXPECT_FALSE(dynamo->realtime_connected);
    tidings_sync_backend_list_free(bl);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(chime_down_with_reason) << "the reason the channel is down is shown";
  EXPECT_EQ(tidings_sync_poke(sync, &e), TIDINGS_OK);
  tidings_sync_close(sync);
  EXPECT_EQ(events.All().find("app-secret-never-shown"), std::string::npos);

  // A callback with nothing to give stops sync as bad credentials do.
  app.refuse = true;
  sync = OpenBoth(&o, kRefused);
  ASSERT_EQ(tidings_sync_set_listener(sync, RealtimeEvents::Record, &events, &e), TIDINGS_OK);
  Send("general");
  ASSERT_EQ(tidings_sync_start(sync, &e), TIDINGS_OK) << e.message;
  EXPECT_TRUE(Eventually([&] {
    return events.All().find("0 chime UNAUTHENTICATED the app's AWS credentials callback") !=
           std::string::npos;
  })) << events.All();
  tidings_sync_close(sync);
}

TEST_F(CSyncApiTest, AuthMacNeedsTheStoresSecretWhichOnlyItsKeyOpens) {
  tidings_error e{};
  uint8_t mac[TIDINGS_AUTH_MAC_SIZE], again[TIDINGS_AUTH_MAC_SIZE];
  EXPECT_EQ(tidings_store_auth_mac(store_, "x", 1, mac, sizeof(mac), &e), TIDINGS_UNAVAILABLE);
  ASSERT_EQ(tidings_store_auth_rotate(store_, &e), TIDINGS_OK) << e.message;
  EXPECT_EQ(tidings_store_auth_mac(store_, "x", 1, mac, 16, &e), TIDINGS_INVALID_ARGUMENT);
  ASSERT_EQ(tidings_store_auth_mac(store_, "x", 1, mac, sizeof(mac), &e), TIDINGS_OK);
  ASSERT_EQ(tidings_store_auth_mac(store_, "y", 1, again, sizeof(again), &e), TIDINGS_OK);
  EXPECT_NE(std::memcmp(mac, again, sizeof(mac)), 0);

  // Another process (a read-only handle) computes the same MAC ...
  tidings_store* ro = OpenReadOnly();
  ASSERT_NE(ro, nullptr);
  ASSERT_EQ(tidings_store_auth_mac(ro, "x", 1, again, sizeof(again), &e), TIDINGS_OK);
  EXPECT_EQ(std::memcmp(mac, again, sizeof(mac)), 0);
  EXPECT_EQ(tidings_store_auth_rotate(ro, &e), TIDINGS_FAILED_PRECONDITION);
  // ... and after a rotation, once it refreshed, the new one.
  ASSERT_EQ(tidings_store_auth_rotate(store_, &e), TIDINGS_OK);
  ASSERT_EQ(tidings_store_refresh(ro, &e), TIDINGS_OK);
  ASSERT_EQ(tidings_store_auth_mac(ro, "x", 1, again, sizeof(again), &e), TIDINGS_OK);
  EXPECT_NE(std::memcmp(mac, again, sizeof(mac)), 0);
  tidings_store_close(ro);
}

}  // namespace
