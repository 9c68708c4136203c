// Attachment transfer against moto's S3 (started here on 127.0.0.1, SigV4
// and IAM on): Tidings' encrypted upload and download of one object
// (sync/attachments/transfer.h) against boto3's managed transfer
// (upload_file / download_file, 8 MB parts, 10 threads) of the same file on
// the same server, in interleaved repetitions. The file is
// TIDINGS_BENCH_ATTACHMENT_MB (default 200) of random bytes; Tidings
// encrypts it once before the timed runs (BM_Import times that alone).
// BM_PeakRss moves TIDINGS_BENCH_RSS_MB (default 1024) up and down in a
// child process and reports how much its peak RSS grew.
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "bench/attachments/moto_s3.h"
#include "sync/attachments/s3_object_store.h"
#include "sync/attachments/transfer.h"
#include "tests/common/temp_dir.h"

namespace {

using namespace tidings;
using bench::attachments::EnvMb;
using bench::attachments::kBucket;
using bench::attachments::WriteRandomFile;

// One moto server, one bucket, one plaintext file and its object, shared.
struct World {
  bench::attachments::MotoS3 server;
  testing::TempDir dir;
  std::string file;
  size_t bytes = 0;
  std::unique_ptr<engine::AttachmentFiles> files;
  crypto::SecretKey key = crypto::SecretKey::Random().value();
  crypto::SecretKey hash_key = crypto::SecretKey::Random().value();
  engine::ImportedObject object;
  std::unique_ptr<attachments::S3ObjectStore> store;

  static World& Get() {
    // Deleted at exit, which stops moto_server (the forked children of
    // BM_PeakRss leave with _exit and do not).
    static World* w = [] {
      auto* world = new World();
      if (!world->Init()) {
        delete world;
        std::exit(1);
      }
      std::atexit([] { delete w; });
      return world;
    }();
    return *w;
  }
  bool Init() {
    if (!server.Start()) return false;
    store = Store(server.moto.credentials());
    bytes = EnvMb("TIDINGS_BENCH_ATTACHMENT_MB", 200) << 20;
    file = dir.path() + "/photo.bin";
    WriteRandomFile(file, bytes);
    files = std::make_unique<engine::AttachmentFiles>(dir.path() + "/attachments");
    if (!files->Open().ok()) return false;
    auto imported = files->ImportFile(file, key, hash_key);
    if (!imported.ok()) return false;
    object = *imported;
    return store != nullptr;
  }
  // TIDINGS_BENCH_SIGN_PARTS=1: parts sent with their payload hash signed.
  std::unique_ptr<attachments::S3ObjectStore> Store(const aws::Credentials& c) {
    auto made =
        attachments::S3ObjectStore::Create(server.Config(), aws::StaticCredentials(c), kBucket);
    if (!made.ok()) return nullptr;
    (*made)->set_sign_parts(EnvMb("TIDINGS_BENCH_SIGN_PARTS", 0) != 0);
    return std::move(*made);
  }
};

// TransferOptions' defaults, unless TIDINGS_BENCH_PARALLEL (parts in
// flight), TIDINGS_BENCH_PART_MB (MiB a part), TIDINGS_BENCH_RANGE_MB (MiB a
// range) or TIDINGS_BENCH_DOWNLOAD_PARALLEL (ranges in flight) say
// otherwise.
attachments::TransferOptions Options() {
  attachments::TransferOptions o;
  o.parallel = static_cast<int>(EnvMb("TIDINGS_BENCH_PARALLEL", static_cast<size_t>(o.parallel)));
  o.part_bytes = EnvMb("TIDINGS_BENCH_PART_MB", o.part_bytes >> 20) << 20;
  o.range_bytes = EnvMb("TIDINGS_BENCH_RANGE_MB", o.range_bytes >> 20) << 20;
  o.download_parallel = static_cast<int>(
      EnvMb("TIDINGS_BENCH_DOWNLOAD_PARALLEL", static_cast<size_t>(o.download_parallel)));
  return o;
}

void BM_Import(benchmark::State& state) {
  World& w = World::Get();
  for (auto _ : state) {
    auto o = w.files->ImportFile(w.file, w.key, w.hash_key);
    if (!o.ok()) state.SkipWithError(o.status().ToString().c_str());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * w.bytes));
  state.SetLabel("tidings encrypt");
}
BENCHMARK(BM_Import)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

void BM_Upload(benchmark::State& state) {
  World& w = World::Get();
  static int run = 0;  // a new key every run, across repetitions: nothing is there yet
  for (auto _ : state) {
    attachments::UploadState upload;
    const std::string key = attachments::ObjectKey(w.object.id) + "-" + std::to_string(run++);
    const Status s = attachments::Upload(
        *w.files, w.object.id, w.key, w.object.cipher_bytes, key, *w.store, &upload,
        [](const attachments::UploadState&) { return Status::Ok(); }, Options());
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * w.bytes));
  state.SetLabel("tidings");
}
BENCHMARK(BM_Upload)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

void BM_Download(benchmark::State& state) {
  World& w = World::Get();
  const std::string key = attachments::ObjectKey(w.object.id);
  attachments::UploadState upload;
  (void)attachments::Upload(
      *w.files, w.object.id, w.key, w.object.cipher_bytes, key, *w.store, &upload,
      [](const attachments::UploadState&) { return Status::Ok(); }, Options());
  for (auto _ : state) {
    state.PauseTiming();
    auto receiver = std::make_unique<testing::TempDir>();
    engine::AttachmentFiles files(receiver->path() + "/attachments");
    if (!files.Open().ok()) state.SkipWithError("open");
    state.ResumeTiming();
    const Status s = attachments::Download(files, w.object.id, w.key, w.object.cipher_bytes, key,
                                           *w.store, Options());
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * w.bytes));
  state.SetLabel("tidings");
}
BENCHMARK(BM_Download)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

// boto3 in a child process, its credentials in its environment (never in
// argv): the seconds it reports for the transfer alone.
double Boto3(World& w, const std::string& mode, const std::string& key, const std::string& path) {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    const aws::Credentials& c = w.server.moto.credentials();
    ::setenv("AWS_ACCESS_KEY_ID", c.access_key_id.c_str(), 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", std::string(c.secret_access_key.view()).c_str(), 1);
    const std::string endpoint = w.server.moto.endpoint();
    ::execlp("python3", "python3", BOTO3_TRANSFER, mode.c_str(), endpoint.c_str(), kBucket,
             key.c_str(), path.c_str(), nullptr);
    ::_exit(127);
  }
  ::close(fds[1]);
  char line[64] = {};
  const ssize_t n = ::read(fds[0], line, sizeof line - 1);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return n > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? std::strtod(line, nullptr) : -1;
}

void BM_Boto3Upload(benchmark::State& state) {
  World& w = World::Get();
  static int run = 0;
  for (auto _ : state) {
    const double s = Boto3(w, "upload", "boto3/upload-" + std::to_string(run++), w.file);
    if (s < 0) state.SkipWithError("boto3 upload failed");
    state.SetIterationTime(s);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * w.bytes));
  state.SetLabel("boto3");
}
BENCHMARK(BM_Boto3Upload)->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(1);

void BM_Boto3Download(benchmark::State& state) {
  World& w = World::Get();
  (void)Boto3(w, "upload", "boto3/source", w.file);
  for (auto _ : state) {
    const double s = Boto3(w, "download", "boto3/source", w.dir.path() + "/downloaded.bin");
    if (s < 0) state.SkipWithError("boto3 download failed");
    state.SetIterationTime(s);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * w.bytes));
  state.SetLabel("boto3");
}
BENCHMARK(BM_Boto3Download)->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(1);

// Peak RSS of a child that imports, uploads and downloads a file of
// TIDINGS_BENCH_RSS_MB, less its peak before the transfer.
void BM_PeakRss(benchmark::State& state) {
  World& w = World::Get();
  const size_t mb = EnvMb("TIDINGS_BENCH_RSS_MB", 1024);
  for (auto _ : state) {
    int fds[2];
    if (::pipe(fds) != 0) state.SkipWithError("pipe");
    // Made and removed here: the child leaves with _exit, which runs no
    // destructor (its ~3 files of TIDINGS_BENCH_RSS_MB stayed behind).
    testing::TempDir dir;
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(fds[0]);
      const std::string file = dir.path() + "/big.bin";
      WriteRandomFile(file, mb << 20);
      engine::AttachmentFiles files(dir.path() + "/attachments");
      auto store = w.Store(w.server.moto.credentials());
      rusage before{};
      ::getrusage(RUSAGE_SELF, &before);
      bool ok = files.Open().ok();
      auto o = files.ImportFile(file, w.key, w.hash_key);
      ok = ok && o.ok();
      attachments::UploadState upload;
      const std::string key = "rss/" + std::to_string(::getpid());
      ok = ok && store != nullptr &&
           attachments::Upload(
               files, o->id, w.key, o->cipher_bytes, key, *store, &upload,
               [](const attachments::UploadState&) { return Status::Ok(); }, Options())
               .ok();
      engine::AttachmentFiles receiver(dir.path() + "/received");
      ok = ok && receiver.Open().ok() &&
           attachments::Download(receiver, o->id, w.key, o->cipher_bytes, key, *store, Options())
               .ok();
      rusage after{};
      ::getrusage(RUSAGE_SELF, &after);
      const long grew_kb = ok ? after.ru_maxrss - before.ru_maxrss : -1;
      (void)!::write(fds[1], &grew_kb, sizeof grew_kb);
      ::_exit(0);
    }
    ::close(fds[1]);
    long grew_kb = -1;
    (void)!::read(fds[0], &grew_kb, sizeof grew_kb);
    ::close(fds[0]);
    ::waitpid(pid, nullptr, 0);
    if (grew_kb < 0) state.SkipWithError("the transfer failed");
    state.counters["rss_growth_MB"] = static_cast<double>(grew_kb) / 1024;
    state.counters["file_MB"] = static_cast<double>(mb);
  }
}
BENCHMARK(BM_PeakRss)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
