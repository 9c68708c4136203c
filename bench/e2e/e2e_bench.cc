// End-to-end encryption, in process (no server): what sealing costs per
// pushed message and opening (verify + decrypt) per pulled message, against
// the plaintext path doing the same work, in one run:
//
//   BM_Open/P          Session::OpenPage of a page of P sealed operation
//                      frames from another device (Ed25519 verify,
//                      XChaCha20-Poly1305 decrypt, decode, membership checks)
//   BM_PullSealed/P    the sealed pull's local work per page: OpenPage, then
//                      Store Merge of the opened operations with the cursor
//                      and the log state, as Reconciler::CommitPage does
//   BM_PullPlain/P     the plaintext pull's local work for the same
//                      operations: wire::DecodeOperation of each, then Merge
//   BM_Seal            Session::Seal of one 80-byte text message
//   BM_Encode          wire::EncodeOperation of the same message (what the
//                      plaintext DynamoDB path packs)
//   BM_NewDeviceJoin/N a second device of a member reads a conversation of
//                      N messages, until it holds them all (below)
//   BM_NewDeviceFirstScreen/N/F  the same, messages a second apart: from the
//                      round that brings the key share to the newest page
//                      shown, with the newest pages read first (F=1) or the
//                      re-read in log order alone (F=0)
// Counters: frame_bytes, encoded_bytes, chime_content_bytes (base64 of the
// frame, what a Chime message's Content holds), overhead_bytes.
// Where the time goes, libsodium alone on a 200-byte message:
//   BM_DeviceSign        DeviceKeys::Sign, what Seal signs with (derives the
//                        key pair from the seed in fresh sodium_malloc
//                        memory every call)
//   BM_Ed25519Sign       crypto_sign_detached with the expanded key kept
//   BM_Ed25519SeedKeypair  the derivation alone
//   BM_Ed25519Verify     crypto_sign_verify_detached (one per opened frame)
//
// Merged operations get fresh ids every iteration on both sides, so the
// store's duplicate check never short-cuts a merge. Setup: two stores
// ("alice", "bob") sync one conversation through an in-process frame server
// (tests/sync/frame_backend.h) until bob holds the epoch key; alice's Session then
// seals the benchmark's frames. Command and figures: bench/RESULTS.md.
#include <benchmark/benchmark.h>
#include <sodium.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "../../tests/engine/test_util.h"
#include "bench/engine/bench_util.h"
#include "engine/store.h"
#include "sync/core/reconciler.h"
#include "sync/e2e/session.h"
#include "sync/wire/operation_codec.h"
#include "tests/sync/frame_backend.h"

namespace {

using namespace tidings;

constexpr uint64_t kT0 = 1'700'000'000'000;
constexpr char kConv[] = "bench";

// 80 bytes of text, like a short chat message.
std::string Body80(uint64_t i) {
  std::string s =
      "Message " + std::to_string(i) + ": see you Wednesday at the clinic, bring the forms";
  s.resize(80, '.');
  return s;
}

engine::Operation Message(uint64_t i) {
  engine::Operation op;
  op.kind = engine::OpKind::kSend;
  op.op_id = op.message_id = engine::NewMessageId(kT0 + i);
  op.conversation_id = kConv;
  op.author = "alice";
  op.at = {(kT0 + i) << 16, 77};
  op.body = Body80(i);
  op.content_type = "text/plain";
  return op;
}

void Check(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    std::abort();
  }
}

struct Device {
  tidings::testing::TempDir dir;
  std::unique_ptr<engine::Store> store;
  std::unique_ptr<tidings::testing::FrameBackend> backend;
  std::unique_ptr<sync::Reconciler> reconciler;
  int64_t now = kT0;

  Device(tidings::testing::FrameServer* server, const std::string& user,
         sync::SyncConfig config = {}) {
    store = engine::Store::Open(dir.path(), tidings::testing::TestKey(),
                                tidings::testing::CreateOptions(user))
                .value();
    backend = std::make_unique<tidings::testing::FrameBackend>(server, user);
    reconciler = std::make_unique<sync::Reconciler>(
        &store->sync_log(), backend.get(), config, [this] { return now += 10; },
        [] { return uint64_t{42}; });
  }
  std::unique_ptr<e2e::Session> NewSession() {
    e2e::SessionOptions o;
    o.backend = "frames";
    o.user = store->user_id();
    o.max_frame_bytes = backend->max_frame_bytes();
    o.now_ms = [this] { return static_cast<uint64_t>(now += 10); };
    auto s = e2e::Session::Open(&store->sync_log(), std::move(o));
    Check(s.status(), "Session::Open");
    return std::move(*s);
  }
};

struct Fixture {
  tidings::testing::FrameServer server;
  std::unique_ptr<Device> alice, bob;
  std::unique_ptr<e2e::Session> sealer, opener;
  e2e::LogState* sealer_log = nullptr;
  e2e::LogState* opener_log = nullptr;
  uint64_t next_id = 1'000'000;  // fresh ids for merged operations
};

Fixture& Shared() {
  static Fixture* f = [] {
    auto* fx = new Fixture;
    fx->server.step_ms = 1;  // as bench/RESULTS.md's figures were taken
    fx->alice = std::make_unique<Device>(&fx->server, "alice");
    fx->bob = std::make_unique<Device>(&fx->server, "bob");
    Check(fx->alice->store->PutConversation(kConv, "Bench", {"bob"}).status(), "PutConversation");
    Check(fx->alice->store->Send({kConv, "hello"}).status(), "Send");
    for (int round = 0; round < 3; ++round) {
      Check(fx->alice->reconciler->SyncAll(), "alice sync");
      Check(fx->bob->reconciler->SyncAll(), "bob sync");
    }
    // The reconcilers are done; the benchmark's sessions take over the stores.
    fx->alice->reconciler.reset();
    fx->bob->reconciler.reset();
    fx->sealer = fx->alice->NewSession();
    auto slog = fx->sealer->LogForConversation(kConv);
    Check(slog.status(), "sealer log");
    fx->sealer_log = *slog;
    fx->opener = fx->bob->NewSession();
    auto olog = fx->opener->LogById(fx->sealer_log->log_id);
    Check(olog.status(), "opener log");
    fx->opener_log = *olog;
    return fx;
  }();
  return *f;
}

// A page of `n` sealed operation frames by alice, as the server returns them.
sync::FramePage SealedPage(size_t n) {
  auto& f = Shared();
  sync::FramePage page;
  for (size_t i = 0; i < n; ++i) {
    auto frame = f.sealer->Seal(*f.sealer_log, Message(i));
    Check(frame.status(), "Seal");
    frame->sender = "alice";
    frame->server_time_ms = kT0 + i;
    frame->remote_id = "r" + std::to_string(i);
    page.frames.push_back(std::move(*frame));
  }
  page.next_cursor = std::to_string(n);
  // Every frame must open, or the benchmark measures rejections.
  auto opened = f.opener->OpenPage(*f.opener_log, page, {});
  Check(opened.status(), "OpenPage");
  if (opened->ops.size() != n || opened->rejected != 0) {
    std::fprintf(stderr, "opened %zu of %zu frames, %llu rejected\n", opened->ops.size(), n,
                 static_cast<unsigned long long>(opened->rejected));
    std::abort();
  }
  return page;
}

void Renumber(std::vector<engine::Operation>& ops) {
  auto& f = Shared();
  for (auto& op : ops) {
    op.op_id = op.message_id = engine::NewMessageId(kT0 + f.next_id);
    op.at = {(kT0 + f.next_id) << 16, 77};
    ++f.next_id;
  }
}

void PerMessage(benchmark::State& state, size_t n) {
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
}

void BM_Open(benchmark::State& state) {
  auto& f = Shared();
  const size_t n = static_cast<size_t>(state.range(0));
  const auto page = SealedPage(n);
  for (auto _ : state) {
    auto opened = f.opener->OpenPage(*f.opener_log, page, {});
    benchmark::DoNotOptimize(opened);
  }
  PerMessage(state, n);
}

void BM_PullSealed(benchmark::State& state) {
  auto& f = Shared();
  const size_t n = static_cast<size_t>(state.range(0));
  const auto page = SealedPage(n);
  auto& store = f.bob->store->sync_log();
  for (auto _ : state) {
    auto opened = f.opener->OpenPage(*f.opener_log, page, {});
    Check(opened.status(), "OpenPage");
    Renumber(opened->ops);
    std::vector<engine::SyncStateWrite> writes = opened->writes;
    auto log_state = f.opener->StateWrites(*f.opener_log);
    writes.insert(writes.end(), log_state.begin(), log_state.end());
    Check(store.Merge("frames#e2e", kConv, opened->ops, page.next_cursor, writes), "Merge");
  }
  PerMessage(state, n);
}

void BM_PullPlain(benchmark::State& state) {
  auto& f = Shared();
  const size_t n = static_cast<size_t>(state.range(0));
  std::vector<std::string> encoded;
  for (size_t i = 0; i < n; ++i) encoded.push_back(wire::EncodeOperation(Message(i)));
  auto& store = f.bob->store->sync_log();
  for (auto _ : state) {
    std::vector<engine::Operation> ops;
    ops.reserve(n);
    for (const auto& bytes : encoded) {
      auto op = wire::DecodeOperation(bytes);
      Check(op.status(), "DecodeOperation");
      ops.push_back(std::move(*op));
    }
    Renumber(ops);
    Check(store.Merge("frames", kConv, ops, std::to_string(n)), "Merge");
  }
  PerMessage(state, n);
}

void BytesCounters(benchmark::State& state) {
  auto& f = Shared();
  const auto op = Message(1);
  const auto frame = f.sealer->Seal(*f.sealer_log, op);
  Check(frame.status(), "Seal");
  const size_t frame_size = frame->bytes.size();
  const double frame_bytes = static_cast<double>(frame_size);
  const double encoded_bytes = static_cast<double>(wire::EncodeOperation(op).size());
  state.counters["body_bytes"] = static_cast<double>(op.body.size());
  state.counters["frame_bytes"] = frame_bytes;
  state.counters["encoded_bytes"] = encoded_bytes;
  state.counters["overhead_bytes"] = frame_bytes - encoded_bytes;
  state.counters["chime_content_bytes"] = static_cast<double>(4 * ((frame_size + 2) / 3));
}

void BM_Seal(benchmark::State& state) {
  auto& f = Shared();
  const auto op = Message(1);
  for (auto _ : state) {
    auto frame = f.sealer->Seal(*f.sealer_log, op);
    benchmark::DoNotOptimize(frame);
  }
  PerMessage(state, 1);
  BytesCounters(state);
}

void BM_Encode(benchmark::State& state) {
  const auto op = Message(1);
  for (auto _ : state) {
    auto bytes = wire::EncodeOperation(op);
    benchmark::DoNotOptimize(bytes);
  }
  PerMessage(state, 1);
  state.counters["encoded_bytes"] = static_cast<double>(wire::EncodeOperation(op).size());
}

const std::string kSigned(200, 'm');

void BM_DeviceSign(benchmark::State& state) {
  auto& f = Shared();
  for (auto _ : state) {
    auto sig = f.sealer->keys().Sign(kSigned);
    benchmark::DoNotOptimize(sig);
  }
  PerMessage(state, 1);
}

struct RawKeys {
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  unsigned char sk[crypto_sign_SECRETKEYBYTES];
  unsigned char seed[crypto_sign_SEEDBYTES] = {9};
  unsigned char sig[crypto_sign_BYTES];
  RawKeys() {
    crypto_sign_seed_keypair(pk, sk, seed);
    crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(kSigned.data()),
                         kSigned.size(), sk);
  }
};

void BM_Ed25519Sign(benchmark::State& state) {
  RawKeys k;
  for (auto _ : state) {
    crypto_sign_detached(k.sig, nullptr, reinterpret_cast<const unsigned char*>(kSigned.data()),
                         kSigned.size(), k.sk);
    benchmark::DoNotOptimize(k.sig);
  }
  PerMessage(state, 1);
}

void BM_Ed25519SeedKeypair(benchmark::State& state) {
  RawKeys k;
  for (auto _ : state) {
    crypto_sign_seed_keypair(k.pk, k.sk, k.seed);
    benchmark::DoNotOptimize(k.sk);
  }
  PerMessage(state, 1);
}

void BM_Ed25519Verify(benchmark::State& state) {
  RawKeys k;
  for (auto _ : state) {
    int ok = crypto_sign_verify_detached(
        k.sig, reinterpret_cast<const unsigned char*>(kSigned.data()), kSigned.size(), k.pk);
    if (ok != 0) std::abort();
  }
  PerMessage(state, 1);
}

// A new device of bob joins a conversation of N messages that alice sent
// and bob's first device already read: rounds of the new device, alice (who
// re-shares it the epoch key once it announced itself) and bob, until the
// new device holds all N or 40 rounds passed. Timed: those rounds. Counters:
// the messages the new device ended with (`held`), the rounds, and its
// store's size on disk after them.
void BM_NewDeviceJoin(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  constexpr char kJoined[] = "joined";
  for (auto _ : state) {
    state.PauseTiming();
    tidings::testing::FrameServer server;
    server.step_ms = 1;  // as bench/RESULTS.md's figures were taken
    auto alice = std::make_unique<Device>(&server, "alice");
    auto bob = std::make_unique<Device>(&server, "bob");
    Check(alice->store->PutConversation(kJoined, "Bench", {"bob"}).status(), "PutConversation");
    std::vector<engine::SendRequest> batch(std::min<size_t>(n, 500));
    for (size_t sent = 0; sent < n; sent += batch.size()) {
      batch.resize(std::min(batch.size(), n - sent));
      for (size_t k = 0; k < batch.size(); ++k) batch[k] = {kJoined, Body80(sent + k)};
      Check(alice->store->SendMany(batch).status(), "SendMany");
    }
    for (int round = 0; round < 3; ++round) {
      Check(alice->reconciler->SyncAll(), "alice sync");
      Check(bob->reconciler->SyncAll(), "bob sync");
    }
    auto phone = std::make_unique<Device>(&server, "bob");
    auto held = [&] {
      auto c = phone->store->GetConversation(kJoined);
      return c.ok() ? c->message_count : 0;
    };
    int rounds = 0;
    state.ResumeTiming();
    for (; rounds < 40 && held() < n; ++rounds) {
      Check(phone->reconciler->SyncAll(), "new device sync");
      Check(alice->reconciler->SyncAll(), "alice sync");
      Check(bob->reconciler->SyncAll(), "bob sync");
    }
    state.PauseTiming();
    state.counters["held"] = static_cast<double>(held());
    state.counters["rounds"] = rounds;
    state.counters["store_MB"] =
        static_cast<double>(bench::DirBytes(phone->dir.path())) / (1 << 20);
    phone.reset();
    bob.reset();
    alice.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
}

// A second device of bob joins a conversation of N messages sent a second
// apart (so the 5 s a re-read reads past its share are a few messages, as on
// a real server). Timed (manual time): from the start of the new device's
// first round after alice re-shared it the key to the moment the message
// 10 before the newest is merged (the newest page's, as a screen shows it;
// the last 5 s are the re-read's). Counters: all_ms until it holds all N.
void BM_NewDeviceFirstScreen(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  sync::SyncConfig config;
  config.newest_first = state.range(1) != 0;
  constexpr char kJoined[] = "joined";
  using Clock = std::chrono::steady_clock;
  double all_ms = 0;
  for (auto _ : state) {
    tidings::testing::FrameServer server;  // frames a second apart
    auto alice = std::make_unique<Device>(&server, "alice");
    auto bob = std::make_unique<Device>(&server, "bob");
    Check(alice->store->PutConversation(kJoined, "Bench", {"bob"}).status(), "PutConversation");
    for (size_t sent = 0; sent < n; sent += 100) {
      std::vector<engine::SendRequest> batch;
      for (size_t k = sent; k < std::min(n, sent + 100); ++k) batch.push_back({kJoined, Body80(k)});
      Check(alice->store->SendMany(batch).status(), "SendMany");
      Check(alice->reconciler->SyncAll(), "alice sync");
    }
    Check(bob->reconciler->SyncAll(), "bob sync");
    auto phone = std::make_unique<Device>(&server, "bob", config);
    const std::string screen = Body80(n - 10);
    std::optional<Clock::time_point> shown;
    phone->store->Subscribe([&](const engine::ChangeEvent& e) {
      if (shown || e.kind != engine::ChangeEvent::Kind::kMessageAdded) return;
      auto m = phone->store->Get(e.message_id);
      if (m.ok() && m->body == screen) shown = Clock::now();
    });
    auto held = [&] {
      auto c = phone->store->GetConversation(kJoined);
      return c.ok() ? c->message_count : 0;
    };
    // Its first round announces it and reads the log with no key.
    Check(phone->reconciler->SyncAll(), "new device sync");
    Check(alice->reconciler->SyncAll(), "alice sync");
    const Clock::time_point start = Clock::now();
    for (int round = 0; round < 40 && held() < n; ++round) {
      Check(phone->reconciler->SyncAll(), "new device sync");
    }
    const Clock::time_point end = Clock::now();
    if (!shown || held() < n) {
      state.SkipWithError("the new device did not get the whole history");
      return;
    }
    state.SetIterationTime(std::chrono::duration<double>(*shown - start).count());
    all_ms += std::chrono::duration<double, std::milli>(end - start).count();
  }
  state.counters["all_ms"] = all_ms / static_cast<double>(state.iterations());
}

BENCHMARK(BM_Open)->Arg(50)->Arg(100)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PullSealed)->Arg(50)->Arg(100)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PullPlain)->Arg(50)->Arg(100)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Seal)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Encode)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_DeviceSign)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Ed25519Sign)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Ed25519SeedKeypair)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Ed25519Verify)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_NewDeviceFirstScreen)
    ->ArgsProduct({{2000, 10000}, {1, 0}})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->UseManualTime();
BENCHMARK(BM_NewDeviceJoin)
    ->Arg(1000)
    ->Arg(4000)
    ->Arg(8000)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
