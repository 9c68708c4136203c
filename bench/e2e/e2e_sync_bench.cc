// Push and pull throughput through a real server, end-to-end encrypted vs
// plaintext mode, with the real reconciler (SyncConfig::end_to_end_default
// true vs false): a writer store pushes a backlog of N messages, a second
// user's store pulls them. Every run does both modes, in alternating order
// (plain first on even runs), each with fresh users, stores and
// conversation, against one server; the summary gives the medians and the
// ratios. Timed: the writer's SyncAll with the backlog in its outbox (push),
// then the reader's SyncAll (pull, merge included). Not timed: a warm-up
// exchange of one message, after which the reader holds the conversation's
// key (on Chime a device gets keys after it announced itself).
//
//   tidings_e2e_sync_bench chime [messages=2000] [runs=3]
//       starts tidings-chime-local on 127.0.0.1 itself
//   tidings_e2e_sync_bench dynamodb ENDPOINT TABLE [messages=2000] [runs=3]
//       against a running moto (bench/e2e/run_dynamodb.py starts one)
//   tidings_e2e_sync_bench chime-join [messages=2000] [runs=3]
//   tidings_e2e_sync_bench dynamodb-join ENDPOINT TABLE [messages=2000] [runs=3]
//       a new device of the reader joins the end-to-end conversation (Join
//       below): its first screen with the newest pages read first and with
//       the re-read in log order alone, alternating
// Command and figures: bench/RESULTS.md.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../../tests/engine/test_util.h"
#include "emulator/chime/testing/emulator_process.h"
#include "sync/chime/chime_backend.h"
#include "sync/core/reconciler.h"
#include "sync/dynamodb/dynamodb_backend.h"

using namespace tidings;

namespace {

using MakeBackend = std::function<std::unique_ptr<sync::Backend>(const std::string& user)>;

double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

[[noreturn]] void Fail(const std::string& what, const Status& s) {
  std::fprintf(stderr, "%s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

// Wall-clock Unix ms, as the daemon's reconciler reads it: the directory
// refresh interval (FetchDevices at most once a minute per user) holds as in
// production. A faster fake clock would refresh on every push and page.
struct Clock {
  int64_t operator()() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

struct Device {
  tidings::testing::TempDir dir;
  std::unique_ptr<engine::Store> store;
  std::unique_ptr<sync::Backend> backend;
  Clock clock;
  std::unique_ptr<sync::Reconciler> reconciler;

  Device(const MakeBackend& make, const std::string& user, bool sealed, size_t page,
         bool newest_first = true) {
    auto s = engine::Store::Open(dir.path(), tidings::testing::TestKey(),
                                 tidings::testing::CreateOptions(user));
    if (!s.ok()) Fail("open store", s.status());
    store = std::move(*s);
    backend = make(user);
    sync::SyncConfig config;
    config.end_to_end_default = sealed;
    config.pull_page_size = page;
    config.newest_first = newest_first;
    config.max_pull_pages_per_round = 1000;
    config.max_push_per_round = 5000;
    // TIDINGS_BENCH_READ_AHEAD=0: each page read after the one before merged.
    const char* read_ahead = std::getenv("TIDINGS_BENCH_READ_AHEAD");
    config.read_ahead = read_ahead == nullptr || read_ahead[0] != '0';
    reconciler = std::make_unique<sync::Reconciler>(&store->sync_log(), backend.get(), config,
                                                    std::ref(clock), [] { return uint64_t{1}; });
  }
  void Sync(const char* who) {
    Status s = reconciler->SyncAll();
    if (!s.ok()) Fail(who, s);
  }
  size_t Count(const std::string& conv) {
    auto page = store->Page({.conversation_id = conv, .limit = 100'000});
    return page.ok() ? page->size() : 0;
  }
};

// 80 bytes of text, like a short chat message.
std::string Body80(int i) {
  std::string body =
      "Message " + std::to_string(i) + ": see you Wednesday at the clinic, bring the forms";
  body.resize(80, '.');
  return body;
}

struct Figures {
  double push_s = 0, pull_s = 0, push_cpu_s = 0, pull_cpu_s = 0;
};

Figures Measure(const MakeBackend& make, size_t page, int messages, bool sealed,
                const std::string& tag) {
  const std::string writer_user = "w" + tag, reader_user = "r" + tag, conv = "c" + tag;
  Device writer(make, writer_user, sealed, page), reader(make, reader_user, sealed, page);
  if (auto c = writer.store->PutConversation(conv, "Bench", {reader_user}); !c.ok()) {
    Fail("PutConversation", c.status());
  }
  if (auto m = writer.store->Send({conv, "warm-up"}); !m.ok()) Fail("Send", m.status());
  for (int round = 0; round < 3 && reader.Count(conv) < 1; ++round) {
    writer.Sync("warm-up push");
    reader.Sync("warm-up pull");
  }
  if (reader.Count(conv) != 1) Fail("warm-up", Internal("the reader did not get the message"));
  if (writer.reconciler->GetStatus(conv).end_to_end != sealed) {
    Fail("mode", Internal("the conversation is not in the mode under test"));
  }
  for (int i = 0; i < messages; ++i) {
    if (auto m = writer.store->Send({conv, Body80(i)}); !m.ok()) Fail("Send", m.status());
  }
  Figures f;
  auto t = std::chrono::steady_clock::now();
  double cpu = CpuSeconds();
  writer.Sync("push");
  f.push_s = Seconds(t);
  f.push_cpu_s = CpuSeconds() - cpu;
  if (writer.reconciler->GetStatus(conv).outbox_depth != 0) {
    Fail("push", Internal("the outbox is not empty after the push"));
  }
  t = std::chrono::steady_clock::now();
  cpu = CpuSeconds();
  reader.Sync("pull");
  f.pull_s = Seconds(t);
  f.pull_cpu_s = CpuSeconds() - cpu;
  const size_t got = reader.Count(conv);
  if (got != static_cast<size_t>(messages) + 1) {
    Fail("pull", Internal("the reader holds " + std::to_string(got) + " messages"));
  }
  return f;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// page: operations per pull request (Chime returns at most 50 messages).
int Run(const MakeBackend& make, const char* server, size_t page, int messages, int runs) {
  std::vector<double> push[2], pull[2];  // msg/s; [0] plaintext, [1] end-to-end
  for (int run = 0; run < runs; ++run) {
    for (int k = 0; k < 2; ++k) {
      const bool sealed = (run % 2 == 0) ? k == 1 : k == 0;
      Figures f = Measure(make, page, messages, sealed, std::to_string(run) + (sealed ? "s" : "p"));
      push[sealed].push_back(messages / f.push_s);
      pull[sealed].push_back(messages / f.pull_s);
      std::printf(
          "%s run %d %-10s push %d msgs %.2f s = %6.0f msg/s (client CPU %4.0f ms) | pull %.2f "
          "s = %6.0f msg/s (client CPU %4.0f ms)\n",
          server, run, sealed ? "end-to-end" : "plaintext", messages, f.push_s, messages / f.push_s,
          f.push_cpu_s * 1000, f.pull_s, messages / f.pull_s, f.pull_cpu_s * 1000);
      std::fflush(stdout);
    }
  }
  const double pp = Median(push[0]), ps = Median(push[1]), lp = Median(pull[0]),
               ls = Median(pull[1]);
  std::printf("%s median push: plaintext %.0f msg/s, end-to-end %.0f msg/s, ratio %.2fx\n", server,
              pp, ps, ps / pp);
  std::printf("%s median pull: plaintext %.0f msg/s, end-to-end %.0f msg/s, ratio %.2fx\n", server,
              lp, ls, ls / lp);
  return 0;
}

// A new device of the reader joins a sealed conversation of `messages`
// messages, sent more than the 5 s a re-read reads past its share before
// the join (so all of them are older than the share). Untimed: the new
// device's first round (it announces itself and reads the log with no key)
// and the reader's (it re-shares the keys). Timed: the new device's rounds
// from then, until the message 10 before the newest is merged (`screen`,
// through the store's listener) and until it holds all (`all`).
struct JoinFigures {
  double screen_s = 0, all_s = 0;
  double round_trip_s = 0;  // one newest-first page of frames, read after the join
};

JoinFigures Join(const MakeBackend& make, size_t page_size, int messages, bool newest_first,
                 const std::string& tag) {
  const std::string writer_user = "w" + tag, reader_user = "r" + tag, conv = "c" + tag;
  Device writer(make, writer_user, true, page_size), reader(make, reader_user, true, page_size);
  if (auto c = writer.store->PutConversation(conv, "Bench", {reader_user}); !c.ok()) {
    Fail("PutConversation", c.status());
  }
  // The first message is the warm-up: the reader holds the key after it.
  for (int i = 0; i < messages; ++i) {
    if (auto m = writer.store->Send({conv, Body80(i)}); !m.ok()) Fail("Send", m.status());
    for (int round = 0; i == 0 && round < 3 && reader.Count(conv) < 1; ++round) {
      writer.Sync("warm-up push");
      reader.Sync("warm-up pull");
    }
  }
  writer.Sync("push");
  reader.Sync("reader pull");
  if (reader.Count(conv) != static_cast<size_t>(messages)) {
    Fail("reader", Internal("the reader does not hold the history"));
  }
  // (tidings-chime-local gives each message of a channel its own
  // millisecond, so a burst runs its clock up to a message per ms ahead.)
  std::this_thread::sleep_for(std::chrono::milliseconds(6'000 + messages));
  Device phone(make, reader_user, true, page_size, newest_first);
  const std::string screen = Body80(messages - 10);
  std::optional<std::chrono::steady_clock::time_point> shown;
  phone.store->Subscribe([&](const engine::ChangeEvent& e) {
    if (shown || e.kind != engine::ChangeEvent::Kind::kMessageAdded) return;
    if (auto m = phone.store->Get(e.message_id); m.ok() && m->body == screen) {
      shown = std::chrono::steady_clock::now();
    }
  });
  phone.Sync("new device, no key");
  reader.Sync("re-share");
  JoinFigures f;
  const auto t = std::chrono::steady_clock::now();
  for (int round = 0; round < 20 && phone.Count(conv) < static_cast<size_t>(messages); ++round) {
    phone.Sync("new device");
  }
  f.all_s = Seconds(t);
  if (!shown || phone.Count(conv) != static_cast<size_t>(messages)) {
    Fail("join", Internal("the new device did not get the whole history"));
  }
  f.screen_s = std::chrono::duration<double>(*shown - t).count();
  // The yardstick: the request for the newest page alone, as the preview's
  // first one is (the log's id from the channel list).
  auto logs = phone.backend->ListLogs();
  if (!logs.ok() || logs->empty()) Fail("ListLogs", logs.status());
  const auto r = std::chrono::steady_clock::now();
  if (auto page = phone.backend->PullFrameHistory(logs->front(), "", page_size); !page.ok()) {
    Fail("PullFrameHistory", page.status());
  }
  f.round_trip_s = Seconds(r);
  return f;
}

int RunJoin(const MakeBackend& make, const char* server, size_t page, int messages, int runs) {
  std::vector<double> screen[2], all[2], trip;  // s; [0] re-read alone, [1] newest first
  for (int run = 0; run < runs; ++run) {
    for (int k = 0; k < 2; ++k) {
      const bool newest = (run % 2 == 0) ? k == 1 : k == 0;
      JoinFigures f =
          Join(make, page, messages, newest, "j" + std::to_string(run) + (newest ? "n" : "o"));
      screen[newest].push_back(f.screen_s);
      all[newest].push_back(f.all_s);
      trip.push_back(f.round_trip_s);
      std::printf(
          "%s join run %d %-13s %d msgs: newest page shown after %.1f ms, all after %.1f ms\n",
          server, run, newest ? "newest first" : "re-read alone", messages, f.screen_s * 1000,
          f.all_s * 1000);
      std::fflush(stdout);
    }
  }
  std::printf(
      "%s median join: newest page shown after %.1f ms newest first, %.1f ms re-read alone; all "
      "after %.1f ms / %.1f ms; one newest-first page request %.1f ms\n",
      server, Median(screen[1]) * 1000, Median(screen[0]) * 1000, Median(all[1]) * 1000,
      Median(all[0]) * 1000, Median(trip) * 1000);
  return 0;
}

int RunChime(int messages, int runs, bool join) {
  auto emu = chime_local::testing::EmulatorProcess::Start({});
  if (!emu.ok()) Fail("start tidings-chime-local", emu.status());
  const std::string app = "arn:aws:chime:us-east-1:123456789012:app-instance/bench";
  MakeBackend make = [&](const std::string& user) -> std::unique_ptr<sync::Backend> {
    chime::ChimeConfig c{app, app + "/user/" + user, "us-east-1", (*emu)->endpoint()};
    auto b = chime::ChimeBackend::Create(
        c, aws::StaticCredentials(
               {(*emu)->options().access_key, (*emu)->options().secret_key, "", 0}));
    if (!b.ok()) Fail("ChimeBackend", b.status());
    return std::move(*b);
  };
  int rc =
      join ? RunJoin(make, "chime", 50, messages, runs) : Run(make, "chime", 50, messages, runs);
  return (*emu)->Stop().ok() ? rc : 1;
}

int RunDynamo(const std::string& endpoint, const std::string& table, int messages, int runs,
              bool join) {
  MakeBackend make = [&](const std::string& user) -> std::unique_ptr<sync::Backend> {
    dynamodb::DynamoConfig c;
    c.table = table;
    c.user_id = user;
    c.region = "us-east-1";
    c.endpoint = endpoint;
    return dynamodb::DynamoBackend::Create(c, aws::StaticCredentials({"bench", "bench", "", 0}));
  };
  return join ? RunJoin(make, "dynamodb", 100, messages, runs)
              : Run(make, "dynamodb", 100, messages, runs);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string server = argc > 1 ? argv[1] : "chime";
  if (server == "chime" || server == "chime-join") {
    return RunChime(argc > 2 ? std::atoi(argv[2]) : 2000, argc > 3 ? std::atoi(argv[3]) : 3,
                    server == "chime-join");
  }
  if ((server == "dynamodb" || server == "dynamodb-join") && argc > 3) {
    return RunDynamo(argv[2], argv[3], argc > 4 ? std::atoi(argv[4]) : 2000,
                     argc > 5 ? std::atoi(argv[5]) : 3, server == "dynamodb-join");
  }
  std::fprintf(stderr,
               "usage: %s chime|chime-join [messages] [runs]\n       %s dynamodb|dynamodb-join "
               "ENDPOINT TABLE [messages] [runs]\n",
               argv[0], argv[0]);
  return 2;
}
