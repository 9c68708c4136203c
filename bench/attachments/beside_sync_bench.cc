// A message sent while a file uploads: how long until it is on the server.
// A running SyncEngine over an in-process loopback backend (answers at
// once), its files going to moto's S3 (started here on 127.0.0.1, SigV4 and
// IAM on). Each iteration sends a file of TIDINGS_BENCH_ATTACHMENT_MB
// (default 20) to one conversation, then a text to another, and times the
// text from its send until the store says it is sent; the file's own time
// is the counter file_ms.
//   /0: uploads on the sync thread (a wrapper that takes no waker, as
//       before uploads had a thread of their own)
//   /1: uploads on AttachmentSync's upload thread (what a running engine does)
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "bench/attachments/moto_s3.h"
#include "engine/store.h"
#include "loopback_backend.h"
#include "sync/attachments/s3_object_store.h"
#include "sync/core/attachment_sync.h"
#include "sync/core/sync_engine.h"
#include "tests/common/temp_dir.h"
#include "tests/engine/test_util.h"

namespace {

using namespace tidings;
using bench::attachments::EnvMb;
using bench::attachments::kBucket;
using bench::attachments::WriteRandomFile;

// Forwards to AttachmentSync but takes no waker: every upload runs on the
// caller's thread, inside the round - the baseline.
class OnTheSyncThread final : public sync::AttachmentTransfers {
 public:
  explicit OnTheSyncThread(sync::AttachmentSync* inner) : inner_(inner) {}
  Result<Progress> UploadFor(engine::Operation* op) override { return inner_->UploadFor(op); }
  void AfterMerge(std::span<const engine::Operation> ops) override { inner_->AfterMerge(ops); }

 private:
  sync::AttachmentSync* inner_;
};

struct World {
  bench::attachments::MotoS3 server;
  testing::TempDir dir;
  std::string file;

  static World& Get() {
    static World* w = [] {
      auto* world = new World();
      if (!world->Init()) std::exit(1);
      std::atexit([] { delete w; });
      return world;
    }();
    return *w;
  }
  bool Init() {
    if (!server.Start()) return false;
    file = dir.path() + "/scan.bin";
    WriteRandomFile(file, EnvMb("TIDINGS_BENCH_ATTACHMENT_MB", 20) << 20);
    return true;
  }
};

bool SentBy(engine::Store& store, const std::string& id,
            std::chrono::steady_clock::time_point deadline) {
  while (std::chrono::steady_clock::now() < deadline) {
    auto m = store.Get(id);
    if (m.ok() && m->state == engine::MessageState::kSent) return true;
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  return false;
}

void BM_TextBesideUpload(benchmark::State& state) {
  World& w = World::Get();
  const bool own_thread = state.range(0) != 0;
  testing::TempDir dir;
  auto opened =
      engine::Store::Open(dir.path(), tidings::testing::TestKey(), testing::CreateOptions("hana"));
  if (!opened.ok()) return state.SkipWithError(opened.status().ToString().c_str());
  std::unique_ptr<engine::Store> store = std::move(*opened);
  auto objects = attachments::S3ObjectStore::Create(
      w.server.Config(), aws::StaticCredentials(w.server.moto.credentials()), kBucket);
  if (!objects.ok()) return state.SkipWithError(objects.status().ToString().c_str());
  sync::AttachmentSync transfers(&store->sync_log(), std::move(*objects), kBucket);
  OnTheSyncThread baseline(&transfers);
  sync::LoopbackBackend backend;
  sync::SyncConfig config;
  config.active_poll_ms = config.idle_poll_ms = 3'600'000;  // pushes and wakes only
  sync::SyncEngine engine(&store->sync_log(), &backend, config);
  sync::AttachmentTransfers* used = own_thread ? static_cast<sync::AttachmentTransfers*>(&transfers)
                                               : static_cast<sync::AttachmentTransfers*>(&baseline);
  if (!engine.SetAttachmentTransfers(used).ok() ||
      !store->PutConversation("files", "Files", {"hana", "ivan"}).ok() ||
      !store->PutConversation("chat", "Chat", {"hana", "ivan"}).ok() || !engine.Start().ok()) {
    return state.SkipWithError("setup");
  }
  double file_ms = 0;
  int n = 0;
  for (auto _ : state) {
    engine::SendRequest with_file{.conversation_id = "files", .body = "the scan"};
    with_file.attachments.push_back({.path = w.file, .name = "scan.bin"});
    auto scan = store->Send(with_file);  // encrypts the file here, before the clock
    const auto t0 = std::chrono::steady_clock::now();
    auto text = store->Send({.conversation_id = "chat", .body = "sent you the scan"});
    if (!scan.ok() || !text.ok()) return state.SkipWithError("send");
    const auto deadline = t0 + std::chrono::seconds(300);
    if (!SentBy(*store, text->id, deadline)) return state.SkipWithError("the text never went");
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (!SentBy(*store, scan->id, deadline)) return state.SkipWithError("the file never went");
    file_ms +=
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    ++n;
  }
  engine.Stop();
  state.counters["file_ms"] = n > 0 ? file_ms / n : 0;
  state.SetLabel(own_thread ? "upload thread" : "sync thread");
}
BENCHMARK(BM_TextBesideUpload)
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime()
    ->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
