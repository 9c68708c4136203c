// Pull 5,000 messages from one tidings-chime-local: the Tidings backend's
// pull loop, the whole pull into a store through the reconciler, a boto3
// ListChannelMessages paging loop (run.py / boto3_pull.py), and the
// emulator's ceiling (a minimal client: signed GETs of the same pages, no
// parsing). One emulator, started here on 127.0.0.1; see bench/RESULTS.md.
//
//   build/bench/chime/tidings_chime_bench [messages=5000] [runs=3]
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "../../tests/engine/test_util.h"
#include "emulator/chime/testing/emulator_process.h"
#include "sync/aws_protocol/sigv4.h"
#include "sync/chime/chime_backend.h"
#include "sync/core/reconciler.h"

using namespace tidings;

namespace {

const std::string kApp = "arn:aws:chime:us-east-1:123456789012:app-instance/bench";
const std::string kUser = kApp + "/user/bench";

// CPU time of this process (user + system), s: what the client itself costs
// per message, apart from waiting for the server.
double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

std::unique_ptr<chime::ChimeBackend> Backend(const chime_local::testing::EmulatorProcess& emu) {
  chime::ChimeConfig c{kApp, kUser, "us-east-1", emu.endpoint()};
  auto b = chime::ChimeBackend::Create(
      c, aws::StaticCredentials({emu.options().access_key, emu.options().secret_key, "", 0}));
  if (!b.ok()) std::abort();
  return std::move(*b);
}

}  // namespace

int main(int argc, char** argv) {
  const int messages = argc > 1 ? std::atoi(argv[1]) : 5000;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 3;
  auto emu = chime_local::testing::EmulatorProcess::Start({});
  if (!emu.ok()) {
    std::fprintf(stderr, "%s\n", emu.status().ToString().c_str());
    return 1;
  }
  auto writer = Backend(**emu);
  engine::Conversation conv;
  conv.id = "bench";
  conv.members = {"bench"};
  auto arn = writer->EnsureConversation(conv);
  if (!arn.ok()) return 1;
  auto t0 = std::chrono::steady_clock::now();
  std::vector<engine::Operation> batch;
  for (int i = 0; i < messages; ++i) {
    engine::Operation op;
    op.kind = engine::OpKind::kSend;
    op.op_id = op.message_id = engine::NewMessageId(1'700'000'000'000 + i);
    op.author = "bench";
    op.at = {(uint64_t{1'700'000'000'000} + static_cast<uint64_t>(i)) << 16, 1};
    op.body = "Message " + std::to_string(i) + ": see you Wednesday at the clinic, bring the forms";
    op.content_type = "text/plain";
    batch.push_back(std::move(op));
    if (batch.size() == 20 || i + 1 == messages) {
      auto acks = writer->Push("bench", batch);
      if (!acks.ok()) return 1;
      batch.clear();
    }
  }
  std::printf("seeded %d messages in %.2f s (%.0f sends/s)\n", messages, Seconds(t0),
              messages / Seconds(t0));

  for (int run = 0; run < runs; ++run) {
    // 1. The backend's pull loop: requests, parsing, mapping, dedupe.
    auto reader = Backend(**emu);
    if (!reader->ListConversations().ok()) return 1;
    auto t = std::chrono::steady_clock::now();
    double cpu0 = CpuSeconds();
    std::string cursor;
    size_t got = 0;
    for (;;) {
      auto page = reader->Pull("bench", cursor, 50);
      if (!page.ok()) return 1;
      got += page->ops.size();
      cursor = page->next_cursor;
      if (!page->has_more) break;
    }
    double backend_s = Seconds(t);
    double backend_cpu_ms = (CpuSeconds() - cpu0) * 1000;

    // 2. Into an encrypted store through the reconciler (merge included).
    tidings::testing::TempDir dir;
    auto store = engine::Store::Open(dir.path(), tidings::testing::TestKey(),
                                     tidings::testing::CreateOptions("reader"));
    if (!store.ok()) return 1;
    auto backend = Backend(**emu);
    sync::SyncConfig config;
    config.pull_page_size = 50;
    config.max_pull_pages_per_round = 1000;
    config.newest_first = false;  // every message, oldest first, as the loops above
    sync::Reconciler rec(
        &(*store)->sync_log(), backend.get(), config, [] { return int64_t{0}; }, [] { return 1; });
    t = std::chrono::steady_clock::now();
    cpu0 = CpuSeconds();
    // Conversations(), as sync does: it takes the channel for the plaintext
    // conversation it is (a new one would become end to end).
    if (!rec.Conversations().ok() || !rec.Pull("bench").ok()) return 1;
    double store_s = Seconds(t);
    double store_cpu_ms = (CpuSeconds() - cpu0) * 1000;
    const auto want = static_cast<size_t>(messages);
    auto stored = (*store)->Page({.conversation_id = "bench", .limit = want + 1});
    if (!stored.ok() || stored->size() != want) {
      std::fprintf(stderr, "the store holds %zu of the %zu messages\n",
                   stored.ok() ? stored->size() : 0, want);
      return 1;
    }

    // 3. The emulator's ceiling: the same signed page requests, bodies not
    // even parsed (NextToken cut out of the text).
    auto raw = Backend(**emu);
    t = std::chrono::steady_clock::now();
    std::string token;
    int requests = 0;
    for (;;) {
      std::string path = "/channels/" + aws::UriEncode(*arn, true) +
                         "/messages?sort-order=ASCENDING&max-results=50";
      if (!token.empty()) path += "&next-token=" + aws::UriEncode(token, true);
      auto body = raw->client().Call("GET", path, {{"x-amz-chime-bearer", kUser}}, "");
      if (!body.ok()) return 1;
      ++requests;
      size_t k = body->find("\"NextToken\":\"");
      if (k == std::string::npos) break;
      token = body->substr(k + 13, body->find('"', k + 13) - k - 13);
    }
    double raw_s = Seconds(t);
    std::printf(
        "run %d: backend pull %zu msgs in %.3f s = %.0f msg/s, client CPU %.0f ms | into store "
        "%.3f s = %.0f msg/s, client CPU %.0f ms (%zu shown) | minimal client %d requests in "
        "%.3f s = %.0f req/s, %.0f msg/s\n",
        run, got, backend_s, got / backend_s, backend_cpu_ms, store_s, messages / store_s,
        store_cpu_ms, stored.ok() ? stored->size() : 0, requests, raw_s, requests / raw_s,
        messages / raw_s);
  }
  // For run.py: where boto3 should read from.
  std::printf("BOTO3 %s %s %s %s %s\n", (*emu)->endpoint().c_str(),
              (*emu)->options().access_key.c_str(), (*emu)->options().secret_key.c_str(),
              kUser.c_str(), arn->c_str());
  std::fflush(stdout);
  // run.py times boto3 against this emulator, then closes stdin.
  char line[16];
  if (std::getenv("TIDINGS_BENCH_WAIT")) (void)std::fgets(line, sizeof(line), stdin);
  return (*emu)->Stop().ok() ? 0 : 1;
}
