#include <algorithm>
#include <map>
#include <mutex>

#include "backend_harness.h"
#include "common/clock.h"
#include "emulator/chime/testing/emulator_process.h"
#include "sync/chime/chime_backend.h"
#include "sync/dynamodb/dynamodb_backend.h"
#include "tests/chime/fake_chime.h"
#include "tests/dynamodb/moto_fixture.h"
#include "tests/sync/sim_backend.h"

namespace tidings::conformance {
namespace {

const std::string kApp = "arn:aws:chime:us-east-1:123456789012:app-instance/conformance";

// The simulator's server on the real clock: the stores stamp operations with
// it, and a server time far from theirs would clamp their order.
class LiveSimBackend final : public sync::Backend {
 public:
  LiveSimBackend(sim::SimWorld* world, int replica, const std::string& user)
      : world_(world), backend_(world, replica, user) {}
  std::string_view name() const override { return backend_.name(); }
  size_t max_batch() const override { return backend_.max_batch(); }
  Result<std::string> EnsureConversation(const engine::Conversation& c) override {
    Tick();
    return backend_.EnsureConversation(c);
  }
  Result<std::vector<sync::PushAck>> Push(const std::string& conv,
                                          std::span<const engine::Operation> ops) override {
    Tick();
    return backend_.Push(conv, ops);
  }
  Result<sync::PullPage> Pull(const std::string& conv, std::string_view cursor,
                              size_t limit) override {
    Tick();
    return backend_.Pull(conv, cursor, limit);
  }
  Result<sync::HistoryPage> PullHistory(const std::string& conv, std::string_view before,
                                        size_t limit) override {
    Tick();
    return backend_.PullHistory(conv, before, limit);
  }
  Result<std::vector<std::string>> ListConversations() override {
    Tick();
    return backend_.ListConversations();
  }

  size_t max_frame_bytes() const override { return backend_.max_frame_bytes(); }
  bool authenticates_senders() const override { return backend_.authenticates_senders(); }
  Result<std::string> EnsureLog(const sync::SealedLog& log) override {
    Tick();
    return backend_.EnsureLog(log);
  }
  Result<std::vector<sync::PushAck>> PushFrames(const std::string& log_id,
                                                std::span<const sync::Frame> frames) override {
    Tick();
    return backend_.PushFrames(log_id, frames);
  }
  Result<sync::FramePage> PullFrames(const std::string& log_id, std::string_view cursor,
                                     size_t limit) override {
    Tick();
    return backend_.PullFrames(log_id, cursor, limit);
  }
  Result<sync::FramePage> PullFrameHistory(const std::string& log_id, std::string_view before,
                                           size_t limit) override {
    Tick();
    return backend_.PullFrameHistory(log_id, before, limit);
  }
  Result<std::vector<std::string>> ListLogs() override {
    Tick();
    return backend_.ListLogs();
  }
  Status PublishDevice(std::string_view record) override {
    Tick();
    return backend_.PublishDevice(record);
  }
  Result<std::vector<std::string>> FetchDevices(const std::string& user) override {
    Tick();
    return backend_.FetchDevices(user);
  }

 private:
  void Tick() { world_->now_ms = std::max(world_->now_ms + 1, static_cast<uint64_t>(WallMs())); }

  sim::SimWorld* world_;
  sim::SimBackend backend_;
};

// `authenticates_senders`: the server names each frame's writer, as Chime
// ("sim_auth"), or not, as DynamoDB ("sim").
class SimHarness final : public BackendHarness {
 public:
  explicit SimHarness(bool authenticates_senders) {
    world_.authenticates_senders = authenticates_senders;
  }
  std::unique_ptr<sync::Backend> Connect(const std::string& user) override {
    return std::make_unique<LiveSimBackend>(&world_, next_replica_++, user);
  }
  bool lists_by_member() const override { return false; }

 private:
  sim::SimWorld world_{/*seed=*/1};
  int next_replica_ = 0;
};

std::unique_ptr<sync::Backend> OrNull(Result<std::unique_ptr<chime::ChimeBackend>> made) {
  if (!made.ok()) return nullptr;
  return std::move(made).value();
}

class FakeChimeHarness final : public BackendHarness {
 public:
  std::unique_ptr<sync::Backend> Connect(const std::string& user) override {
    chime::ChimeConfig c;
    c.app_instance_arn = kApp;
    c.user_arn = kApp + "/user/" + user;
    c.region = "us-east-1";
    c.endpoint = "http://127.0.0.1:9";  // never dialled: FakeHttp answers
    return OrNull(
        chime::ChimeBackend::Create(c, aws::StaticCredentials({"AKIDEXAMPLE", "secret", "", 0}),
                                    std::make_unique<chime::testing::FakeHttp>(server_)));
  }
  bool lists_by_member() const override { return true; }

 private:
  std::shared_ptr<chime::testing::FakeChime> server_ =
      std::make_shared<chime::testing::FakeChime>();
};

class EmulatorHarness final : public BackendHarness {
 public:
  static Result<std::unique_ptr<BackendHarness>> Start() {
    TIDINGS_ASSIGN_OR_RETURN(auto emulator, chime_local::testing::EmulatorProcess::Start({}));
    auto h = std::make_unique<EmulatorHarness>();
    h->emulator_ = std::move(emulator);
    return std::unique_ptr<BackendHarness>(std::move(h));
  }
  std::unique_ptr<sync::Backend> Connect(const std::string& user) override {
    chime::ChimeConfig c;
    c.app_instance_arn = kApp;
    c.user_arn = kApp + "/user/" + user;
    c.region = "us-east-1";
    c.endpoint = emulator_->endpoint();
    const auto& o = emulator_->options();
    return OrNull(chime::ChimeBackend::Create(
        c, aws::StaticCredentials({o.access_key, o.secret_key, "", 0})));
  }
  bool lists_by_member() const override { return true; }

 private:
  std::unique_ptr<chime_local::testing::EmulatorProcess> emulator_;
};

class MotoHarness final : public BackendHarness {
 public:
  static constexpr char kTable[] = "tidings";  // the table the device policy names

  static Result<std::unique_ptr<BackendHarness>> Start() {
    auto h = std::make_unique<MotoHarness>();
    std::string why;
    if (!h->moto_.Start(kTable, &why)) return Unavailable(why);
    return std::unique_ptr<BackendHarness>(std::move(h));
  }
  std::unique_ptr<sync::Backend> Connect(const std::string& user) override {
    dynamodb::DynamoConfig c;
    c.table = kTable;
    c.user_id = user;
    c.region = "us-east-1";
    c.endpoint = moto_.endpoint();
    return dynamodb::DynamoBackend::Create(c, aws::StaticCredentials(moto_.CredentialsFor(user)));
  }
  bool lists_by_member() const override { return true; }

 private:
  testing::MotoServer moto_;
};

Result<std::unique_ptr<BackendHarness>> Make(std::string_view name) {
  if (name == "sim" || name == "sim_auth") {
    return std::unique_ptr<BackendHarness>(std::make_unique<SimHarness>(name == "sim_auth"));
  }
  if (name == "fake_chime") {
    return std::unique_ptr<BackendHarness>(std::make_unique<FakeChimeHarness>());
  }
  if (name == "emulator") return EmulatorHarness::Start();
  if (name == "moto") return MotoHarness::Start();
  return InvalidArgument("no backend harness named " + std::string(name));
}

}  // namespace

const std::vector<std::string>& HarnessNames() {
  static const std::vector<std::string> names = {"sim", "sim_auth", "fake_chime", "emulator",
                                                 "moto"};
  return names;
}

Result<BackendHarness*> Harness(std::string_view name) {
  // Started once, stopped at exit (their destructors stop the servers).
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<BackendHarness>, std::less<>> started;
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = started.find(name); it != started.end()) return it->second.get();
  TIDINGS_ASSIGN_OR_RETURN(auto made, Make(name));
  return (started[std::string(name)] = std::move(made)).get();
}

}  // namespace tidings::conformance
