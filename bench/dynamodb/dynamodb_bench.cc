// Tidings against a DynamoDB endpoint (moto in bench/dynamodb/run.py):
//   dynamodb_bench push  ENDPOINT TABLE CONV N   push a backlog of N messages
//   dynamodb_bench pull  ENDPOINT TABLE CONV     pull + merge the conversation into a store
//   dynamodb_bench raw   ENDPOINT TABLE CONV     the same Query pages, signed, not decoded
//   (ceiling)
// Prints one JSON line: {"mode":..., "messages":..., "seconds":..., "requests":...}.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "../engine/bench_util.h"
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
  uint8_t k[32] = {3};
  auto store = engine::Store::Open(
      dir.path(), crypto::KeySource::Raw(crypto::SecretKey::FromBytes(k).value()), o);
  if (!store.ok()) return 1;
  sync::Reconciler rec(
      &(*store)->sync_log(), backend.get(), {}, [] { return int64_t{0}; }, [] { return 1; });
  size_t messages = 0;
  auto t0 = std::chrono::steady_clock::now();
  if (mode == "push") {
    size_t n = std::strtoull(argv[5], nullptr, 10);
    std::vector<engine::SendRequest> reqs;
    for (size_t i = 0; i < n; ++i)
      reqs.push_back({.conversation_id = conv, .body = bench::Body(i)});
    if (!(*store)->SendMany(reqs).ok()) return 1;
    t0 = std::chrono::steady_clock::now();  // time the sync only
    // One Push call drains a bounded slice of the outbox; repeat until empty.
    for (int round = 0; round < 1000 && !(*store)->Outbox(1)->empty(); ++round) {
      if (!rec.Push(conv).ok()) return 1;
    }
    if (!(*store)->Outbox(0)->empty()) return 1;
    messages = n;
  } else if (mode == "pull") {
    while (true) {
      if (!rec.Pull(conv).ok()) return 1;
      auto st = rec.GetStatus(conv);
      if (!st.last_error.empty()) return 1;
      auto c = (*store)->GetConversation(conv);
      messages = c.ok() ? c->message_count : 0;
      auto again = backend->Pull(conv, st.cursor, 1);
      if (!again.ok() || again->ops.empty()) break;
    }
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
