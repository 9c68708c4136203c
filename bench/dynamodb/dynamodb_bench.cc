// Tidings against a DynamoDB endpoint (moto in bench/dynamodb/run.py):
//   dynamodb_bench push  ENDPOINT TABLE CONV N   push a backlog of N messages
//   (end to end; push-plain: a plaintext conversation, its newest id on stderr)
//   dynamodb_bench pull  ENDPOINT TABLE CONV     pull + merge a plaintext conversation
//   (push-plain's) into a fresh store, oldest first
//   dynamodb_bench raw   ENDPOINT TABLE CONV     the same Query pages, signed, not decoded
//   (ceiling)
// Prints one JSON line: {"mode":..., "messages":..., "seconds":..., "requests":...}.
// TIDINGS_BENCH_SEARCH_INDEX=0: stores without the full-text index;
// TIDINGS_BENCH_READ_AHEAD=0: pulls without read-ahead (SyncConfig).
// Side by side: bench/dynamodb/pull_ab.py.
// Time to first screen (bench/dynamodb/first_screen.py), each on a fresh store:
//   dynamodb_bench first  ENDPOINT TABLE CONV NEWEST_ID newest|oldest
//       pull until the store's listener reports NEWEST_ID added (its merge
//       committed), newest first (PullHistory) or oldest first (every page
//       from the beginning); the requests made until then
//   dynamodb_bench rtt    ENDPOINT TABLE CONV     the newest page's signed
//       Query (newest first, Limit 50 items), not decoded: one round trip
//   dynamodb_bench backfill ENDPOINT TABLE CONV   newest first, then the
//       whole history filled with the default bounds; peak RSS sampled
//       after every pull ("rss_start_mb", "rss_peak_mb")
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "../sync/sync_bench_util.h"
#include "engine/store.h"
#include "sync/core/reconciler.h"
#include "sync/dynamodb/dynamodb_backend.h"

using namespace tidings;

int main(int argc, char** argv) {
  if (argc < 5) return 2;
  const std::string mode = argv[1], endpoint = argv[2], table = argv[3], conv = argv[4];
  dynamodb::DynamoConfig config;
  config.table = table;
  config.endpoint = endpoint;
  config.region = "us-east-1";
  config.user_id = "bench";
  auto backend =
      dynamodb::DynamoBackend::Create(config, aws::StaticCredentials({"bench", "bench", "", 0}));
  bench::TempDir dir;
  engine::StoreOptions o;
  o.create_if_missing = true;
  o.user_id = "bench";
  o.durability = engine::Durability::kRelaxed;
  // TIDINGS_BENCH_SEARCH_INDEX=0: merges without the full-text index.
  if (const char* v = std::getenv("TIDINGS_BENCH_SEARCH_INDEX")) o.search_index = v[0] != '0';
  // TIDINGS_BENCH_CACHE_MB: the store's memory budget (blocks and memtables).
  if (const char* mb = std::getenv("TIDINGS_BENCH_CACHE_MB")) {
    o.block_cache_bytes = std::strtoull(mb, nullptr, 10) << 20;
  }
  uint8_t k[32] = {3};
  auto store = engine::Store::Open(
      dir.path(), crypto::KeySource::Raw(crypto::SecretKey::FromBytes(k).value()), o);
  if (!store.ok()) return 1;
  // push-plain: the conversation is plaintext (newest first reads only those;
  // a new device reads a sealed log's history only from its join on). pull:
  // a plaintext conversation, oldest first, every page.
  sync::SyncConfig push_config;
  push_config.end_to_end_default = mode != "push-plain" && mode != "pull";
  push_config.newest_first = mode != "pull";
  // TIDINGS_BENCH_READ_AHEAD=0: each page read after the one before merged.
  const char* read_ahead = std::getenv("TIDINGS_BENCH_READ_AHEAD");
  push_config.read_ahead = read_ahead == nullptr || read_ahead[0] != '0';
  sync::Reconciler rec(
      &(*store)->sync_log(), backend.get(), push_config, [] { return int64_t{0}; },
      [] { return 1; });
  size_t messages = 0;
  auto t0 = std::chrono::steady_clock::now();
  if (mode == "push" || mode == "push-plain") {
    size_t n = std::strtoull(argv[5], nullptr, 10);
    // In batches of 1,000: one SendMany is one write batch.
    for (size_t at = 0; at < n; at += 1000) {
      std::vector<engine::SendRequest> reqs;
      for (size_t i = at; i < std::min(n, at + 1000); ++i)
        reqs.push_back({.conversation_id = conv, .body = bench::Body(i)});
      if (auto sent = (*store)->SendMany(reqs); !sent.ok()) {
        std::fprintf(stderr, "send: %s\n", sent.status().ToString().c_str());
        return 1;
      }
    }
    t0 = std::chrono::steady_clock::now();  // time the sync only
    // One Push call drains a bounded slice of the outbox; repeat until empty.
    for (int round = 0; round < 100000 && !(*store)->Outbox(1)->empty(); ++round) {
      if (!rec.Push(conv).ok()) return 1;
    }
    if (!(*store)->Outbox(0)->empty()) return 1;
    messages = n;
    auto newest = (*store)->Page({.conversation_id = conv, .limit = 1});
    if (!newest.ok() || newest->empty()) return 1;
    std::fprintf(stderr, "newest %s\n", newest->front().id.c_str());
  } else if (mode == "pull") {
    // Rounds until the reconciler has nothing more to read now, as the sync
    // thread runs them.
    do {
      if (!rec.Pull(conv).ok()) return 1;
      if (auto e = rec.GetStatus(conv).last_error; !e.empty()) {
        std::fprintf(stderr, "pull: %s\n", e.c_str());
        return 1;
      }
    } while (rec.HasMore(conv));
    auto c = (*store)->GetConversation(conv);
    messages = c.ok() ? c->message_count : 0;
  } else if (mode == "first" || mode == "backfill") {
    // A fresh device: its own store, and a reconciler that has seen nothing.
    bench::TempDir fresh_dir;
    auto fresh = engine::Store::Open(
        fresh_dir.path(), crypto::KeySource::Raw(crypto::SecretKey::FromBytes(k).value()), o);
    if (!fresh.ok()) return 1;
    sync::SyncConfig c;
    c.end_to_end_default = false;
    c.read_ahead = push_config.read_ahead;
    if (mode == "first") {
      c.pull_page_size = 50;  // a screen
      c.max_history_pages_per_round = 0;
      c.newest_first = argc > 6 && std::string(argv[6]) == "newest";
    }
    int64_t now = 0;
    sync::Reconciler fresh_rec(
        &(*fresh)->sync_log(), backend.get(), c, [&] { return ++now; }, [] { return 1; });
    const uint64_t requests_before = backend->client().requests();
    double rss_start = bench::sync::RssMB(), rss_peak = rss_start;
    // The newest message is visible when its merge commits: the store's
    // listener says so on the committing thread, as it would tell the app.
    const std::string newest = argc > 5 ? argv[5] : "";
    std::optional<std::chrono::steady_clock::time_point> seen;
    uint64_t seen_requests = 0;
    (*fresh)->Subscribe([&](const engine::ChangeEvent& e) {
      if (!seen && e.kind == engine::ChangeEvent::Kind::kMessageAdded && e.message_id == newest) {
        seen = std::chrono::steady_clock::now();
        seen_requests = backend->client().requests() - requests_before;
      }
    });
    t0 = std::chrono::steady_clock::now();
    do {
      if (!fresh_rec.Pull(conv).ok()) return 1;
      if (auto e = fresh_rec.GetStatus(conv).last_error; !e.empty()) {
        std::fprintf(stderr, "pull: %s\n", e.c_str());
        return 1;
      }
      rss_peak = std::max(rss_peak, bench::sync::RssMB());
    } while (mode == "first" ? !seen : fresh_rec.HasMore(conv));
    if (mode == "backfill") {
      seen = std::chrono::steady_clock::now();
      seen_requests = backend->client().requests() - requests_before;
    }
    const double secs = std::chrono::duration<double>(*seen - t0).count();
    auto c2 = (*fresh)->GetConversation(conv);
    std::printf(
        "{\"mode\":\"%s\",\"messages\":%llu,\"seconds\":%.6f,\"requests\":%llu,"
        "\"rss_start_mb\":%.1f,\"rss_peak_mb\":%.1f}\n",
        mode.c_str(), static_cast<unsigned long long>(c2.ok() ? c2->message_count : 0), secs,
        static_cast<unsigned long long>(seen_requests), rss_start, rss_peak);
    return 0;
  } else if (mode == "rtt") {
    std::string body = "{\"TableName\":\"" + table +
                       "\",\"KeyConditionExpression\":\"pk = :p\",\"ExpressionAttributeValues\":"
                       "{\":p\":{\"S\":\"c#" +
                       conv +
                       "\"}},\"ConsistentRead\":true,\"ScanIndexForward\":false,\"Limit\":50}";
    auto resp = backend->client().Call("Query", body);
    if (!resp.ok()) return 1;
    messages = 1;
  } else if (mode == "raw") {
    std::string cursor = "0";
    while (true) {
      std::string body =
          "{\"TableName\":\"" + table +
          "\",\"KeyConditionExpression\":\"pk = :p AND sk > :s\",\"ExpressionAttributeValues\":"
          "{\":p\":{\"S\":\"c#" +
          conv + "\"},\":s\":{\"N\":\"" + cursor + "\"}},\"ConsistentRead\":true,\"Limit\":100}";
      auto resp = backend->client().Call("Query", body);
      if (!resp.ok()) return 1;
      auto parsed = aws::ParseDynamoQuery(*resp);  // only to find the next key
      if (!parsed.ok() || parsed->items.empty()) break;
      cursor = std::to_string(parsed->items.back().sk);
      messages += parsed->items.size();
    }
  } else {
    return 2;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("{\"mode\":\"%s\",\"messages\":%zu,\"seconds\":%.3f,\"requests\":%llu}\n",
              mode.c_str(), messages, secs,
              static_cast<unsigned long long>(backend->client().requests()));
  return 0;
}
