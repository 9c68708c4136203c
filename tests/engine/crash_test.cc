// Kill -9 a writer at random moments; every append it was told succeeded must
// be there after reopen, and verify must pass. TIDINGS_CRASH_ITERATIONS
// overrides the count (default 200; 60 under sanitizers, where each start is slower).
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

#include "test_util.h"

namespace tidings::engine {
namespace {

TEST(CrashSafety, AcknowledgedAppendsSurviveSigkill) {
  int iterations = std::getenv("TIDINGS_SANITIZED") ? 60 : 200;
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
      if (acknowledged.empty() && store.status().code() == Code::kNotFound) continue;  // never created
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

}  // namespace
}  // namespace tidings::engine
