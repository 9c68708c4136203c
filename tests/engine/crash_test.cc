// Kill -9 a writer at random moments; every append it was told succeeded must
// be there after reopen, and verify must pass. TIDINGS_CRASH_ITERATIONS
// overrides the count (default 200; 30 under sanitizers, where each start is slower).
// Then kill -9 a data-key rotation at random moments: the old or the new
// store always opens, with every message (20 kills; 200 with TIDINGS_SOAK=1).
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <set>
#include <thread>

#include "engine/rekey.h"
#include "test_util.h"

namespace tidings::engine {
namespace {

TEST(CrashSafety, AcknowledgedAppendsSurviveSigkill) {
  int iterations = std::getenv("TIDINGS_SANITIZED") ? 30 : 200;
  if (const char* n = std::getenv("TIDINGS_CRASH_ITERATIONS")) iterations = std::atoi(n);
  unsigned seed =
      static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count());
  if (const char* s = std::getenv("TIDINGS_CRASH_SEED"))
    seed = static_cast<unsigned>(std::atoll(s));
  std::mt19937 rng(seed);
  SCOPED_TRACE("seed " + std::to_string(seed) + " (replay with TIDINGS_CRASH_SEED)");

  testing::TempDir dir;
  const std::string store_path = dir / "store";
  std::set<std::string> acknowledged;
  for (int it = 0; it < iterations; ++it) {
    int out[2];
    ASSERT_EQ(0, ::pipe(out));
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::dup2(out[1], 1);
      ::close(out[0]);
      ::close(out[1]);
      std::string tag = "it" + std::to_string(it);
      ::execl(CRASH_WRITER, CRASH_WRITER, store_path.c_str(), tag.c_str(), nullptr);
      ::_exit(127);
    }
    ::close(out[1]);
    // Every 10th child dies at a random moment of its start (store creation
    // or opening); the others once they are appending, so a slow machine
    // still kills mid-append rather than always mid-open.
    if (it % 10 != 0) {
      pollfd p{out[0], POLLIN, 0};
      ::poll(&p, 1, 10'000);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 40));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "writer exited early (status " << status << ")";
    std::string data;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(out[0], buf, sizeof(buf))) > 0) data.append(buf, static_cast<size_t>(n));
    ::close(out[0]);
    size_t pos = 0;
    while (true) {
      size_t nl = data.find('\n', pos);
      if (nl == std::string::npos) break;  // a partial line was never acknowledged
      acknowledged.insert(data.substr(pos, nl - pos));
      pos = nl + 1;
    }
    if (it % 50 == 49 || it == iterations - 1) {
      StoreOptions o;
      o.read_only = true;
      auto store = Store::Open(store_path, testing::TestKey(), o);
      if (acknowledged.empty() && store.status().code() == Code::kNotFound)
        continue;  // never created
      ASSERT_TRUE(store.ok()) << store.status().ToString();
      for (const auto& id : acknowledged) {
        auto m = (*store)->Get(id);
        ASSERT_TRUE(m.ok()) << "acknowledged message " << id << " lost after " << it + 1
                            << " kills: " << m.status().ToString();
      }
      auto report = (*store)->Verify(nullptr);
      ASSERT_TRUE(report.ok());
      ASSERT_EQ(report->problems, 0u) << (report->details.empty() ? "" : report->details[0]);
    }
  }
  EXPECT_GT(acknowledged.size(), static_cast<size_t>(iterations));
  std::printf("crash test: %d kills, %zu acknowledged appends all present\n", iterations,
              acknowledged.size());
}

crypto::KeySource RotationKey(uint8_t fill) {
  uint8_t bytes[32];
  for (auto& b : bytes) b = fill;
  return crypto::KeySource::Raw(std::move(crypto::SecretKey::FromBytes(bytes)).value());
}

// Opens the store with whichever of the two keys the rotation child
// alternates between opens it; fails the test if neither does.
std::unique_ptr<Store> OpenEither(const std::string& path, bool read_only) {
  StoreOptions o;
  o.read_only = read_only;
  auto store = Store::Open(path, RotationKey(0x0a), o);
  if (store.status().code() == Code::kWrongKey) store = Store::Open(path, RotationKey(0x0b), o);
  EXPECT_TRUE(store.ok()) << "neither the old nor the new store opens: "
                          << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

TEST(CrashSafety, ARotationKilledAnywhereLeavesTheOldOrTheNewStore) {
  const bool soak = std::getenv("TIDINGS_SOAK") != nullptr;
  const int iterations = soak ? 200 : 20;
  const int messages = soak ? 20000 : 2000;
  unsigned seed =
      static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count());
  if (const char* s = std::getenv("TIDINGS_CRASH_SEED"))
    seed = static_cast<unsigned>(std::atoll(s));
  std::mt19937 rng(seed);
  SCOPED_TRACE("seed " + std::to_string(seed) + " (replay with TIDINGS_CRASH_SEED)");

  testing::TempDir dir;
  const std::string store_path = dir / "store";
  std::vector<std::string> ids;
  {
    StoreOptions o;
    o.create_if_missing = true;
    o.user_id = "me";
    o.durability = Durability::kRelaxed;
    auto store = Store::Open(store_path, RotationKey(0x0a), o);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    std::vector<SendRequest> batch(100);
    for (int i = 0; i < messages; i += 100) {
      for (int j = 0; j < 100; ++j) {
        batch[j].conversation_id = "c" + std::to_string(j % 8);
        batch[j].body = "message " + std::to_string(i + j) + std::string(200, 'x');
      }
      auto sent = (*store)->SendMany(batch);
      ASSERT_TRUE(sent.ok()) << sent.status().ToString();
      for (const auto& m : *sent) ids.push_back(m.id);
    }
  }
  // How long one rotation takes here, so the kills spread over all of it.
  const auto t0 = std::chrono::steady_clock::now();
  {
    engine::RekeyOptions o;
    o.rotate_data_key = true;
    ASSERT_TRUE(engine::Rekey(store_path, RotationKey(0x0a), std::move(o)).ok());
  }
  const auto rotation_ms = std::max<int64_t>(
      1,
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count());

  int rotations = 0;
  for (int it = 0; it < iterations; ++it) {
    int out[2];
    ASSERT_EQ(0, ::pipe(out));
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::dup2(out[1], 1);
      ::close(out[0]);
      ::close(out[1]);
      ::execl(REKEY_CHILD, REKEY_CHILD, store_path.c_str(), nullptr);
      ::_exit(127);
    }
    ::close(out[1]);
    pollfd p{out[0], POLLIN, 0};
    ::poll(&p, 1, 10'000);  // "started"
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % (3 * rotation_ms)));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "rekey child exited early (status " << status << ")";
    std::string data;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(out[0], buf, sizeof(buf))) > 0) data.append(buf, static_cast<size_t>(n));
    ::close(out[0]);
    for (size_t pos = data.find("rotated"); pos != std::string::npos;
         pos = data.find("rotated", pos + 1)) {
      ++rotations;
    }

    // Alternately as a reader (the leftovers stay) and as a writer (they go).
    const bool read_only = it % 2 == 0;
    auto store = OpenEither(store_path, read_only);
    ASSERT_NE(store, nullptr) << "after " << it + 1 << " kills";
    uint64_t found = 0;
    for (int c = 0; c < 8; ++c) {
      auto page = store->Page({.conversation_id = "c" + std::to_string(c), .limit = 10000});
      ASSERT_TRUE(page.ok()) << page.status().ToString();
      found += page->size();
    }
    ASSERT_EQ(found, ids.size()) << "after " << it + 1 << " kills";
    ASSERT_TRUE(store->Get(ids[rng() % ids.size()]).ok());
    if (it % 5 == 4 || it == iterations - 1) {
      auto report = store->Verify(nullptr);
      ASSERT_TRUE(report.ok());
      ASSERT_EQ(report->problems, 0u) << (report->details.empty() ? "" : report->details[0]);
    }
    if (!read_only) {
      size_t dirs = 0;
      for (const auto& e : std::filesystem::directory_iterator(store_path)) {
        dirs += e.is_directory();
      }
      ASSERT_EQ(dirs, 1u) << "a writer's open leaves only the database the header names";
    }
  }
  std::printf(
      "rekey crash test: %d kills during rotations of %d messages (one rotation %lld ms), %d "
      "rotations completed, the store opened with all messages every time\n",
      iterations, messages, static_cast<long long>(rotation_ms), rotations);
}

}  // namespace
}  // namespace tidings::engine
