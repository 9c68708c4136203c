// The daemon's socket server against idle and hostile local clients: idle
// connections that never authenticate cannot starve a real client and are
// closed after the handshake deadline; op names a client makes up cannot
// grow the metrics page; labels cannot forge a metrics line; a search
// answers over the socket as the store does, under its limit and deadline.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <regex>
#include <sstream>
#include <vector>

#include "daemon/client.h"
#include "daemon/metrics.h"
#include "daemon/search_op.h"
#include "daemon/socket_server.h"
#include "tests/api/api_test_util.h"
#include "tests/daemon/daemon_test_util.h"

namespace tidings::daemon {
namespace {

using Clock = std::chrono::steady_clock;

const uint8_t kKey[TIDINGS_KEY_SIZE] = {9};

api::Store NewStore(const std::string& path) { return daemon::NewStore(path, kKey); }

int64_t MsSince(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

// A connection that never says anything.
int ConnectIdle(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  timeval tv{};
  tv.tv_sec = 10;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

// What a SocketServer counted, by (op, result).
struct Counts {
  std::mutex mu;
  std::map<std::pair<std::string, std::string>, int> by;
  std::function<void(const std::string&, const std::string&)> Fn() {
    return [this](const std::string& op, const std::string& result) {
      std::lock_guard<std::mutex> lock(mu);
      ++by[{op, result}];
    };
  }
  int Of(const std::string& op, const std::string& result) {
    std::lock_guard<std::mutex> lock(mu);
    return by[{op, result}];
  }
};

TEST(DaemonSocket, IdleConnectionsNeitherStarveClientsNorStay) {
  apitest::TempDir dir;
  const std::string path = dir / "s";
  api::Store store = NewStore(path);
  Counts counts;
  SocketServer server(&store, path, {}, counts.Fn());
  ASSERT_TRUE(server.Start().ok());

  // More idle connections than there are handshake slots (16).
  std::vector<int> idle;
  for (int i = 0; i < 24; ++i) idle.push_back(ConnectIdle(server.path()));

  const auto t0 = Clock::now();
  auto answer = CallDaemon(path, api::Key::Raw(kKey),
                           Fields{{"op", "send"}, {"conversation", "c"}, {"body", "hi"}}, 10'000);
  const int64_t send_ms = MsSince(t0);
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_EQ(answer->Get("op"), "ok") << answer->Get("message");
  EXPECT_LT(send_ms, 1000) << "the send waited behind idle connections";

  // Every idle one is closed, with at most the greeting: the 8 oldest at
  // once (their slots were needed), the rest at the handshake deadline (3 s).
  for (int fd : idle) {
    auto frame = ReadFrame(fd);
    if (frame.ok()) {
      EXPECT_EQ(frame->Get("op"), "hello");
      frame = ReadFrame(fd);
    }
    EXPECT_FALSE(frame.ok()) << "an idle connection got an answer";
    EXPECT_LT(MsSince(t0), 5000) << "an idle connection stayed open past the deadline";
    ::close(fd);
  }
  EXPECT_GE(counts.Of("handshake", "RESOURCE_EXHAUSTED"), 8);
  EXPECT_GE(counts.Of("handshake", "DEADLINE_EXCEEDED"), 1);
  EXPECT_EQ(counts.Of("send", "ok"), 1);
  server.Stop();
}

TEST(DaemonSocket, MadeUpOpsShareOneSeries) {
  apitest::TempDir dir;
  const std::string path = dir / "s";
  api::Store store = NewStore(path);
  Counts counts;
  SocketServer server(&store, path, {}, counts.Fn());
  ASSERT_TRUE(server.Start().ok());
  for (int i = 0; i < 300; ++i) {
    const std::string op = "junk-" + std::to_string(i) + "\"} 1\nforged_total 1\n";
    auto answer = CallDaemon(path, api::Key::Raw(kKey), Fields{{"op", op}}, 10'000);
    ASSERT_TRUE(answer.ok()) << answer.status().ToString();
    EXPECT_EQ(answer->Get("op"), "error");
  }
  ASSERT_TRUE(CallDaemon(path, api::Key::Raw(kKey), Fields{{"op", "poke"}}, 10'000).ok());
  server.Stop();
  std::lock_guard<std::mutex> lock(counts.mu);
  std::map<std::string, int> by_op;
  for (const auto& [k, n] : counts.by) by_op[k.first] += n;
  EXPECT_EQ(by_op.size(), 2u) << "a series per made-up op";
  EXPECT_EQ(by_op["other"], 300);
  EXPECT_EQ(by_op["poke"], 1);
}

TEST(DaemonSocket, SearchAnswersAsTheStoreDoes) {
  apitest::TempDir dir;
  const std::string path = dir / "s";
  api::Store store = NewStore(path);
  ASSERT_TRUE(store.Send("clinic", "Take 400 mg of ibuprofen after food").ok());
  ASSERT_TRUE(store.Send("pharmacy", "ibuprofen is out of stock").ok());
  ASSERT_TRUE(store.Send("clinic", "see you").ok());
  Counts counts;
  SocketServer server(&store, path, {}, counts.Fn());
  ASSERT_TRUE(server.Start().ok());
  auto call = [&](const Fields& request) {
    auto answer = CallDaemon(path, api::Key::Raw(kKey), request, 10'000);
    EXPECT_TRUE(answer.ok()) << answer.status().ToString();
    return answer.ok() ? SearchResultFromFields(*answer)
                       : Result<api::SearchResult>(answer.status());
  };

  const api::SearchRequest r{.query = "ibu*", .order = api::SearchOrder::kNewest};
  auto direct = api::Search(store, r);
  ASSERT_TRUE(direct.ok());
  auto remote = call(SearchFields(r));
  ASSERT_TRUE(remote.ok()) << remote.status().ToString();
  EXPECT_EQ(remote->total, 2u);
  ASSERT_EQ(remote->hits.size(), direct->hits.size());
  for (size_t i = 0; i < direct->hits.size(); ++i) {
    const api::SearchHit &a = remote->hits[i], &b = direct->hits[i];
    EXPECT_EQ(a.message_id, b.message_id);
    EXPECT_EQ(a.conversation_id, b.conversation_id);
    EXPECT_EQ(a.sender, b.sender);
    EXPECT_EQ(a.order, b.order);
    EXPECT_EQ(a.snippet, b.snippet);
    EXPECT_EQ(a.marks, b.marks);
  }
  auto one = call(SearchFields({.query = "ibuprofen", .conversation_id = "pharmacy"}));
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->hits.size(), 1u);
  EXPECT_EQ(one->hits[0].snippet, "ibuprofen is out of stock");

  EXPECT_EQ(call(SearchFields({.query = "i*"})).status().code(), Code::kInvalidArgument);
  auto big = call(SearchFields({.query = "ibuprofen", .limit = kMaxSocketSearchLimit + 1}));
  EXPECT_EQ(big.status().code(), Code::kInvalidArgument);
  EXPECT_NE(big.status().message().find("offset"), std::string::npos);
  EXPECT_EQ(call(Fields{{"op", "search"}, {"query", "x"}, {"order", "oldest"}}).status().code(),
            Code::kInvalidArgument);
  server.Stop();
  EXPECT_EQ(counts.Of("search", "ok"), 2) << "search has its own metrics series";
  EXPECT_EQ(counts.Of("search", "INVALID_ARGUMENT"), 3);
}

TEST(DaemonSocket, ASearchPastItsDeadlineStops) {
  apitest::TempDir dir;
  api::Store store = NewStore(dir / "s");
  for (int i = 0; i < 6000; ++i) {
    ASSERT_TRUE(store.Send("a", "common words " + std::to_string(i)).ok());
  }
  const Fields request{{"op", "search"}, {"query", "common"}};
  Fields late = ExecuteSearch(store, request, 0);
  EXPECT_EQ(StatusFromFields(late).code(), Code::kDeadlineExceeded) << late.Get("message");
  auto in_time = SearchResultFromFields(ExecuteSearch(store, request));
  ASSERT_TRUE(in_time.ok()) << in_time.status().ToString();
  EXPECT_EQ(in_time->total, 6000u);
}

TEST(DaemonMetrics, LabelsAreEscapedSoNoLineCanBeForged) {
  MetricsInput in;
  api::SyncBackend b;
  b.name = "dyn\"} 1\nforged_total{x=\"1\\";
  in.backends = {b};
  in.socket_requests[{"send\nforged_total 7", "ok"}] = 1;
  const std::string page = RenderMetrics(in);
  // Every line is a comment or `name{label="escaped",...} value`.
  const std::regex sample(
      R"re([a-z_]+(\{([a-z_]+="([^"\\\n]|\\["\\n])*")(,[a-z_]+="([^"\\\n]|\\["\\n])*")*\})? [0-9.]+)re");
  std::istringstream lines(page);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("# ", 0) == 0) continue;
    EXPECT_TRUE(std::regex_match(line, sample)) << "not a well-formed sample: " << line;
    EXPECT_NE(line.rfind("forged_total", 0), 0u) << "a forged line: " << line;
  }
  EXPECT_NE(page.find(R"(tidings_sync_up{backend="dyn\"} 1\nforged_total{x=\"1\\"} 0)"),
            std::string::npos)
      << page;
  EXPECT_NE(page.find(R"(tidings_socket_requests_total{op="send\nforged_total 7",result="ok"} 1)"),
            std::string::npos)
      << page;
}

}  // namespace
}  // namespace tidings::daemon
