// Moving attachment objects (sync/attachments/transfer.h) over an in-process
// fake of the object store: uploads resume after a crash without sending a
// part twice, downloads resume and are checked range by range.
#include "sync/attachments/transfer.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "crypto/attachment_cipher.h"
#include "tests/attachments/transfer_test_util.h"

namespace tidings::attachments {
namespace {

// An object store in memory, counting calls, with failures on request. Safe
// to call from several threads, as the transfer's workers do; the tests read
// its fields once no transfer runs.
class FakeStore : public ObjectStore {
 public:
  std::map<std::string, std::string> objects;
  struct Pending {
    std::string key;
    std::map<int, std::string> parts;
  };
  std::map<std::string, Pending> uploads;
  int part_calls = 0, parts_stored = 0, put_calls = 0, get_calls = 0, next_id = 0;
  std::map<uint64_t, Status> fail_get_from;  // a GetRange from this offset fails so
  std::map<int, Status> fail_part;           // an UploadPart of this number fails so
  // Called before an UploadPart (with its number) or a GetRange (with the
  // range's number from 1, for ranges of `range_bytes`) does anything, and
  // after it did it, on the calling thread and without the store's lock: a
  // test holds one back to make the others finish first, or cancels.
  std::function<void(int)> before, after;
  uint64_t range_bytes = 5 << 20;
  int in_flight = 0, max_in_flight = 0;  // UploadParts and GetRanges at once
  // GetRangeTo hands a range on in pieces of this size, as a network does,
  // calling `piece` (range number, bytes handed on) after each.
  uint64_t piece_bytes = 1 << 20;
  std::function<void(int, uint64_t)> piece;
  std::map<uint64_t, uint64_t> short_get;      // a GetRangeTo from here hands on only so many
  std::map<uint64_t, std::string> extra_get;   // ... or these bytes past the range too
  std::map<uint64_t, Status> fail_get_midway;  // ... or half the range, then fails so
  std::vector<uint64_t> got_from;              // the offsets GetRangeTo was asked for

  // Where the last download (got_from cleared before it) began.
  uint64_t FirstFrom() const { return *std::min_element(got_from.begin(), got_from.end()); }

  // One of the counters above, read while a transfer runs.
  int Read(const int& counter) {
    std::lock_guard<std::mutex> lock(mu_);
    return counter;
  }

  Status PutObject(const std::string& key, std::string body) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++put_calls;
    objects[key] = std::move(body);
    return Status::Ok();
  }
  Result<uint64_t> HeadObject(const std::string& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = objects.find(key);
    if (it == objects.end()) return NotFound("no such key");
    return uint64_t{it->second.size()};
  }
  Result<std::string> GetRange(const std::string& key, uint64_t offset, uint64_t length) override {
    return Hooked(static_cast<int>(offset / range_bytes) + 1, [&]() -> Result<std::string> {
      ++get_calls;
      if (auto f = fail_get_from.find(offset); f != fail_get_from.end()) return f->second;
      auto it = objects.find(key);
      if (it == objects.end()) return NotFound("no such key");
      return it->second.substr(offset, length);
    });
  }
  Status GetRangeTo(const std::string& key, uint64_t offset, uint64_t length,
                    const RangeWriter& write) override {
    const int number = static_cast<int>(offset / range_bytes) + 1;
    return Hooked(number,
                  [&]() -> Result<std::string> {
                    ++get_calls;
                    got_from.push_back(offset);
                    if (auto f = fail_get_from.find(offset); f != fail_get_from.end())
                      return f->second;
                    auto it = objects.find(key);
                    if (it == objects.end()) return NotFound("no such key");
                    std::string bytes = it->second.substr(offset, length);
                    std::optional<Status> fail;
                    if (auto f = fail_get_midway.find(offset); f != fail_get_midway.end()) {
                      bytes.resize(bytes.size() / 2);
                      fail = f->second;
                    }
                    if (auto cut = short_get.find(offset); cut != short_get.end())
                      bytes.resize(cut->second);
                    if (auto e = extra_get.find(offset); e != extra_get.end()) bytes += e->second;
                    for (uint64_t at = 0; at < bytes.size(); at += piece_bytes) {
                      TIDINGS_RETURN_IF_ERROR(
                          write(at, std::string_view(bytes).substr(at, piece_bytes)));
                      if (piece) piece(number, std::min<uint64_t>(at + piece_bytes, bytes.size()));
                    }
                    if (fail) return *fail;
                    return std::string();
                  })
        .status();
  }
  // UploadPartFrom reads a part in pieces of piece_bytes, as a transport
  // does while it sends, calling `read_piece` (part number, bytes read)
  // after each.
  std::function<void(int, uint64_t)> read_piece;
  Result<std::string> UploadPartFrom(const std::string& key, const std::string& upload_id,
                                     int number, uint64_t size, const PartReader& read) override {
    std::string body(size, '\0');
    for (uint64_t at = 0; at < size;) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(piece_bytes, size - at));
      TIDINGS_ASSIGN_OR_RETURN(const size_t got, read(at, body.data() + at, want));
      if (got == 0) return DataLoss("a part ended before its length");
      at += got;
      if (read_piece) read_piece(number, at);
    }
    return UploadPart(key, upload_id, number, std::move(body));
  }
  Result<std::string> CreateMultipartUpload(const std::string& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string id = "upload-" + std::to_string(++next_id);
    uploads[id].key = key;
    return id;
  }
  Result<std::string> UploadPart(const std::string& key, const std::string& upload_id, int number,
                                 std::string body) override {
    return Hooked(number, [&]() -> Result<std::string> {
      ++part_calls;
      if (auto f = fail_part.find(number); f != fail_part.end()) return f->second;
      auto it = uploads.find(upload_id);
      if (it == uploads.end() || it->second.key != key) return NotFound("no such upload");
      const size_t size = body.size();
      it->second.parts[number] = std::move(body);
      ++parts_stored;
      return "etag-" + std::to_string(number) + "-" + std::to_string(size);
    });
  }
  Result<std::vector<UploadedPart>> ListParts(const std::string& key,
                                              const std::string& upload_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = uploads.find(upload_id);
    if (it == uploads.end() || it->second.key != key) return NotFound("no such upload");
    std::vector<UploadedPart> out;
    for (const auto& [n, body] : it->second.parts) {
      out.push_back(
          {n, "etag-" + std::to_string(n) + "-" + std::to_string(body.size()), body.size()});
    }
    return out;
  }
  Status CompleteMultipartUpload(const std::string& key, const std::string& upload_id,
                                 const std::vector<UploadedPart>& parts) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = uploads.find(upload_id);
    if (it == uploads.end() || it->second.key != key) return NotFound("no such upload");
    if (parts.empty() || parts.size() > 10'000) return InvalidArgument("InvalidPart");
    std::string whole;
    for (size_t i = 0; i < parts.size(); ++i) {
      const auto p = it->second.parts.find(parts[i].number);
      // S3: every part but the last is 5 MiB or more.
      if (p != it->second.parts.end() && i + 1 < parts.size() && p->second.size() < (5u << 20)) {
        return InvalidArgument("EntityTooSmall");
      }
      if (parts[i].number != static_cast<int>(i) + 1 || p == it->second.parts.end() ||
          parts[i].etag !=
              "etag-" + std::to_string(p->first) + "-" + std::to_string(p->second.size())) {
        return InvalidArgument("InvalidPart");
      }
      whole += p->second;
    }
    objects[key] = whole;
    uploads.erase(it);
    return Status::Ok();
  }
  Status AbortMultipartUpload(const std::string&, const std::string& upload_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    return uploads.erase(upload_id) ? Status::Ok() : NotFound("no such upload");
  }
  Result<std::vector<std::string>> ListUploads(const std::string& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    for (const auto& [id, u] : uploads) {
      if (u.key == key) out.push_back(id);
    }
    return out;
  }

 private:
  // Runs `call` under the lock between the hooks, counting calls in flight.
  Result<std::string> Hooked(int number, const std::function<Result<std::string>()>& call) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      max_in_flight = std::max(max_in_flight, ++in_flight);
    }
    if (before) before(number);
    Result<std::string> out = [&] {
      std::lock_guard<std::mutex> lock(mu_);
      return call();
    }();
    if (after) after(number);
    std::lock_guard<std::mutex> lock(mu_);
    --in_flight;
    return out;
  }

  std::mutex mu_;
};

using namespace testing_util;

// Changes the byte at `offset` of the file at `path` (writing a constant
// would leave it as it was once in 256 runs).
void FlipByte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  const char was = static_cast<char>(f.get());
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(was ^ 0x55));
}

constexpr uint64_t kPart = 5 << 20;
const TransferOptions kOptions{.part_bytes = kPart,
                               .multipart_from_bytes = kPart,
                               .parallel = 4,
                               .range_bytes = kPart,
                               .download_parallel = 4};

Status SaveNothing(const UploadState&) { return Status::Ok(); }

// Uploads `sent` from device `d` to `s3` under its ObjectKey, from `*state`.
Status UploadFrom(Device& d, const Sent& sent, FakeStore& s3, UploadState* state,
                  const SaveUpload& save, const TransferOptions& options = kOptions,
                  const TransferProgress& progress = nullptr,
                  const std::atomic<bool>* cancel = nullptr) {
  return Upload(d.files, sent.object.id, sent.key, sent.object.cipher_bytes,
                ObjectKey(sent.object.id), s3, state, save, options, progress, cancel);
}

// Downloads `sent` from its ObjectKey in `s3` to device `d`.
Status DownloadTo(Device& d, const Sent& sent, FakeStore& s3,
                  const TransferProgress& progress = nullptr,
                  const std::atomic<bool>* cancel = nullptr) {
  return Download(d.files, sent.object.id, sent.key, sent.object.cipher_bytes,
                  ObjectKey(sent.object.id), s3, kOptions, progress, cancel);
}

// Makes call `held` finish after `others` other calls: they wait
// (FakeStore::before) until it has begun, and it waits until they are done
// (FakeStore::after). Each wait gives up after 10 s, so a transfer that does
// not run them side by side fails the test rather than hanging it.
class HoldBack {
 public:
  HoldBack(FakeStore& s3, int held, int others) {
    s3.before = [this, held, others](int n) {
      std::unique_lock<std::mutex> lock(mu_);
      if (n != held) {
        cv_.wait_for(lock, std::chrono::seconds(10), [&] { return began_; });
        return;
      }
      began_ = true;
      cv_.notify_all();
      released_ = cv_.wait_for(lock, std::chrono::seconds(10), [&] { return done_ >= others; });
    };
    s3.after = [this, held](int n) {
      if (n == held) return;
      std::lock_guard<std::mutex> lock(mu_);
      ++done_;
      cv_.notify_all();
    };
  }
  // True if the held call went on only once the others were done.
  bool released() {
    std::lock_guard<std::mutex> lock(mu_);
    return released_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool began_ = false;
  int done_ = 0;
  bool released_ = false;
};

std::vector<int> Numbers(const UploadState& s) {
  std::vector<int> out;
  for (const UploadedPart& p : s.parts) out.push_back(p.number);
  return out;
}

std::vector<int> OneTo(size_t n) {
  std::vector<int> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<int>(i) + 1;
  return out;
}

TEST(Transfer, ASmallObjectIsOnePutAndComesBackWhole) {
  Device a, b;
  FakeStore s3;
  const std::string data = Bytes(100'000, 1);
  const Sent sent = Import(a, data);
  const std::string key = ObjectKey(sent.object.id);
  EXPECT_EQ(key.size(), std::string("tidings/").size() + 64);
  UploadState state;
  int saves = 0;
  ASSERT_TRUE(UploadFrom(
                  a, sent, s3, &state,
                  [&](const UploadState&) {
                    ++saves;
                    return Status::Ok();
                  },
                  kOptions)
                  .ok());
  EXPECT_TRUE(state.done);
  EXPECT_EQ(s3.put_calls, 1);
  EXPECT_EQ(saves, 1);
  ASSERT_TRUE(DownloadTo(b, sent, s3).ok());
  EXPECT_EQ(ReadAll(b, sent), data);
  // Done is done: a second upload sends nothing.
  ASSERT_TRUE(UploadFrom(a, sent, s3, &state, SaveNothing).ok());
  EXPECT_EQ(s3.put_calls, 1);
}

TEST(Transfer, AMultipartUploadResumesWithoutSendingAPartTwice) {
  Device a, b;
  FakeStore s3;
  const std::string data = Bytes(17 << 20, 2);  // 4 parts of 5 MiB, the last 2 MiB
  const Sent sent = Import(a, data);
  const std::string key = ObjectKey(sent.object.id);
  // The persisted state; the "crash" comes when the state after part 3
  // is being saved: the store holds part 3, the state does not.
  UploadState persisted;
  int saves = 0;
  auto crash_at_part_3 = [&](const UploadState& s) {
    if (s.parts.size() == 3) return Aborted("killed");
    ++saves;
    persisted = s;
    return Status::Ok();
  };
  UploadState state;
  EXPECT_EQ(UploadFrom(a, sent, s3, &state, crash_at_part_3, kOptions).code(), Code::kAborted);
  EXPECT_EQ(persisted.parts.size(), 2u);
  // Part 4 went out beside part 3, or was not read yet when the save failed.
  EXPECT_GE(s3.part_calls, 3);
  EXPECT_LE(s3.part_calls, 4);
  EXPECT_FALSE(persisted.upload_id.empty());

  UploadState resumed = persisted;
  std::vector<double> progress;
  ASSERT_TRUE(UploadFrom(
                  a, sent, s3, &resumed,
                  [&](const UploadState& s) {
                    persisted = s;
                    return Status::Ok();
                  },
                  kOptions,
                  [&](uint64_t done, uint64_t total) { progress.push_back(double(done) / total); })
                  .ok());
  EXPECT_TRUE(persisted.done);
  EXPECT_EQ(s3.part_calls, 4);  // part 3 (nor 4) was not sent again
  EXPECT_TRUE(s3.uploads.empty());
  EXPECT_EQ(progress.back(), 1.0);
  ASSERT_TRUE(DownloadTo(b, sent, s3).ok());
  EXPECT_EQ(ReadAll(b, sent), data);
}

// Killed after the last part reached the store and before Complete: the
// resumed upload hashes every part again - the last one shorter - and
// completes without sending any.
TEST(Transfer, AnUploadKilledBeforeCompleteResumesWithEveryPartSent) {
  Device a;
  FakeStore s3;
  const std::string data = Bytes(17 << 20, 7);  // 4 parts of 5 MiB, the last 2 MiB
  const Sent sent = Import(a, data);
  const std::string key = ObjectKey(sent.object.id);
  UploadState persisted;
  auto crash_after_last_part = [&](const UploadState& s) {
    if (s.parts.size() == 4) return Aborted("killed");
    persisted = s;
    return Status::Ok();
  };
  UploadState state;
  EXPECT_EQ(Upload(a.files, sent.object.id, sent.key, sent.object.cipher_bytes, key, s3, &state,
                   crash_after_last_part, kOptions)
                .code(),
            Code::kAborted);
  EXPECT_EQ(s3.part_calls, 4);
  UploadState resumed = persisted;
  Status done = Upload(
      a.files, sent.object.id, sent.key, sent.object.cipher_bytes, key, s3, &resumed,
      [&](const UploadState& s) {
        persisted = s;
        return Status::Ok();
      },
      kOptions);
  ASSERT_TRUE(done.ok()) << done.ToString();
  EXPECT_TRUE(persisted.done);
  EXPECT_EQ(s3.part_calls, 4);
  EXPECT_EQ(s3.objects.at(key).size(), sent.object.cipher_bytes);
}

// Killed after creating a multipart upload and before saving its id: the
// next attempt aborts that one before it begins its own, so none is left.
TEST(Transfer, AnUploadWhoseIdWasNeverSavedIsAbortedByTheNext) {
  Device a;
  FakeStore s3;
  const Sent sent = Import(a, Bytes(12 << 20, 8));
  const std::string key = ObjectKey(sent.object.id);
  UploadState state;
  EXPECT_EQ(Upload(
                a.files, sent.object.id, sent.key, sent.object.cipher_bytes, key, s3, &state,
                [](const UploadState&) { return Aborted("killed"); }, kOptions)
                .code(),
            Code::kAborted);
  ASSERT_EQ(s3.uploads.size(), 1u);
  UploadState fresh;  // nothing was saved
  ASSERT_TRUE(Upload(
                  a.files, sent.object.id, sent.key, sent.object.cipher_bytes, key, s3, &fresh,
                  [](const UploadState&) { return Status::Ok(); }, kOptions)
                  .ok());
  EXPECT_TRUE(s3.uploads.empty());
  EXPECT_EQ(s3.objects.at(key).size(), sent.object.cipher_bytes);
}

// A killed run's CreateMultipartUpload that the server carried out only
// after the next run had listed the key's uploads (seen once in 100 kills
// against a loaded moto): the run that completes the object aborts it.
TEST(Transfer, AnUploadMadeLateByAKilledRunIsAbortedOnceTheObjectIsComplete) {
  Device a;
  FakeStore s3;
  const Sent sent = Import(a, Bytes(12 << 20, 9));
  const std::string key = ObjectKey(sent.object.id);
  std::atomic<bool> made{false};
  s3.before = [&](int) {
    if (!made.exchange(true)) {
      ASSERT_TRUE(s3.CreateMultipartUpload(key).ok());
    }
  };
  UploadState state;
  ASSERT_TRUE(UploadFrom(a, sent, s3, &state, SaveNothing).ok());
  EXPECT_TRUE(made);
  EXPECT_EQ(s3.objects.at(key).size(), sent.object.cipher_bytes);
  EXPECT_TRUE(s3.ListUploads(key)->empty()) << "an orphan is left open";
}

// An upload killed once its object is complete, before it saved that it
// is done: `persisted` is what it saved last.
void UploadKilledAtDone(Device& a, const Sent& sent, FakeStore& s3, UploadState* persisted) {
  UploadState state;
  auto crash_at_done = [&](const UploadState& s) {
    if (s.done) return Aborted("killed");
    *persisted = s;
    return Status::Ok();
  };
  EXPECT_EQ(UploadFrom(a, sent, s3, &state, crash_at_done, kOptions).code(), Code::kAborted);
}

TEST(Transfer, ACompletedUploadWhoseDoneWasNotSavedIsNotSentAgain) {
  Device a;
  FakeStore s3;
  const Sent sent = Import(a, Bytes(11 << 20, 7));
  const std::string key = ObjectKey(sent.object.id);
  UploadState persisted;
  ASSERT_NO_FATAL_FAILURE(UploadKilledAtDone(a, sent, s3, &persisted));
  const int sent_parts = s3.part_calls;
  EXPECT_EQ(sent_parts, 3);
  EXPECT_FALSE(persisted.done);
  ASSERT_TRUE(UploadFrom(a, sent, s3, &persisted, SaveNothing).ok());
  EXPECT_TRUE(persisted.done);
  EXPECT_EQ(s3.part_calls, sent_parts);
  EXPECT_TRUE(s3.uploads.empty());
}

// A killed run's late orphan that the server made after the run that
// completed the object had listed the key's uploads (or that run was killed
// before it could): the next run finds the object there, resumed or afresh,
// and aborts it.
TEST(Transfer, ARunThatFindsTheObjectThereAbortsALateOrphan) {
  Device a;
  FakeStore s3;
  const Sent sent = Import(a, Bytes(11 << 20, 6));
  const std::string key = ObjectKey(sent.object.id);
  UploadState persisted;
  ASSERT_NO_FATAL_FAILURE(UploadKilledAtDone(a, sent, s3, &persisted));
  ASSERT_TRUE(s3.CreateMultipartUpload(key).ok());                     // the late orphan
  ASSERT_TRUE(UploadFrom(a, sent, s3, &persisted, SaveNothing).ok());  // resumed
  EXPECT_TRUE(s3.ListUploads(key)->empty()) << "an orphan is left open (resumed)";

  ASSERT_TRUE(s3.CreateMultipartUpload(key).ok());  // another, for a run with nothing saved
  UploadState fresh;
  ASSERT_TRUE(UploadFrom(a, sent, s3, &fresh, SaveNothing).ok());
  EXPECT_TRUE(s3.ListUploads(key)->empty()) << "an orphan is left open (afresh)";
}

TEST(Transfer, ADamagedLocalObjectIsNeverUploaded) {
  Device a;
  FakeStore s3;
  const Sent sent = Import(a, Bytes(11 << 20, 8));
  const std::string key = ObjectKey(sent.object.id);
  // A flipped byte in the last part: found when the whole was hashed, before
  // Complete; the upload is abandoned, no object appears.
  FlipByte(a.files.ObjectPath(sent.object.id), sent.object.cipher_bytes - 100);
  UploadState state;
  EXPECT_EQ(UploadFrom(a, sent, s3, &state, SaveNothing).code(), Code::kDataLoss);
  EXPECT_TRUE(s3.objects.empty());
  EXPECT_TRUE(s3.uploads.empty());
  EXPECT_TRUE(state.upload_id.empty());
  // A wrong size is refused before anything is sent; so is a small object.
  EXPECT_EQ(Upload(a.files, sent.object.id, sent.key, sent.object.cipher_bytes + 1, key, s3, &state,
                   SaveNothing, kOptions)
                .code(),
            Code::kDataLoss);
  const Sent small = Import(a, Bytes(1000, 9));
  FlipByte(a.files.ObjectPath(small.object.id), 500);
  UploadState small_state;
  EXPECT_EQ(Upload(a.files, small.object.id, small.key, small.object.cipher_bytes,
                   ObjectKey(small.object.id), s3, &small_state, SaveNothing, kOptions)
                .code(),
            Code::kDataLoss);
  EXPECT_EQ(s3.put_calls, 0);
}

TEST(Transfer, ASavedStateThatCannotGoOnIsAbandonedAndStartedOver) {
  Device a, b;
  FakeStore s3;
  const std::string data = Bytes(11 << 20, 10);
  const Sent sent = Import(a, data);
  const std::string key = ObjectKey(sent.object.id);
  // A state with 1 MiB parts (an older build's): S3 would refuse them at
  // Complete, so the upload is aborted and done again in parts S3 takes.
  UploadState state{.part_bytes = 1 << 20};
  state.upload_id = *s3.CreateMultipartUpload(key);
  ASSERT_TRUE(s3.UploadPart(key, state.upload_id, 1, data.substr(0, 1 << 20)).ok());
  const std::string old_id = state.upload_id;
  ASSERT_TRUE(UploadFrom(a, sent, s3, &state, SaveNothing).ok());
  EXPECT_TRUE(state.done);
  EXPECT_EQ(s3.uploads.count(old_id), 0u);
  EXPECT_TRUE(s3.uploads.empty());
  ASSERT_TRUE(DownloadTo(b, sent, s3).ok());
  EXPECT_EQ(ReadAll(b, sent), data);
}

TEST(Transfer, AnUploadTheStoreLostStartsOver) {
  Device a;
  FakeStore s3;
  const Sent sent = Import(a, Bytes(11 << 20, 3));
  const std::string key = ObjectKey(sent.object.id);
  UploadState state;
  auto stop_after_one = [&](const UploadState& s) {
    return s.parts.size() == 1 ? Aborted("killed") : Status::Ok();
  };
  EXPECT_FALSE(UploadFrom(a, sent, s3, &state, stop_after_one, kOptions).ok());
  s3.uploads.clear();  // expired, or aborted by a lifecycle rule
  ASSERT_TRUE(UploadFrom(a, sent, s3, &state, SaveNothing).ok());
  EXPECT_TRUE(state.done);
  EXPECT_EQ(s3.objects.at(key).size(), sent.object.cipher_bytes);
}

TEST(Transfer, ADownloadResumesAndChecksEveryRange) {
  Device a, b;
  FakeStore s3;
  const std::string data = Bytes(12 << 20, 4);
  const Sent sent = Import(a, data);
  const std::string key = ObjectKey(sent.object.id);
  UploadState state;
  ASSERT_TRUE(UploadFrom(a, sent, s3, &state, SaveNothing).ok());
  // The second range fails: the first is kept (whether or not it arrived
  // after the failure), the third is not.
  s3.fail_get_from[kPart] = Unavailable("the network went away");
  EXPECT_EQ(DownloadTo(b, sent, s3).code(), Code::kUnavailable);
  EXPECT_EQ(*b.files.PartialBytes(sent.object.id), kPart);
  s3.get_calls = 0;
  s3.fail_get_from.clear();
  ASSERT_TRUE(DownloadTo(b, sent, s3).ok());
  EXPECT_EQ(s3.get_calls, 2);  // the two ranges left, not three
  EXPECT_EQ(ReadAll(b, sent), data);

  // A partial file damaged on this device is cut back to the chunks before
  // the damage (here none: it starts over) in the same call, rather than
  // blaming the server.
  Device c;
  s3.fail_get_from[kPart] = Unavailable("the network went away");
  s3.get_calls = 0;
  EXPECT_FALSE(DownloadTo(c, sent, s3).ok());
  FlipByte(c.files.PartialPath(sent.object.id), 1000);
  s3.fail_get_from.clear();
  s3.get_calls = 0;
  ASSERT_TRUE(DownloadTo(c, sent, s3).ok());
  EXPECT_EQ(s3.get_calls, 3);
  EXPECT_EQ(ReadAll(c, sent), data);
}

TEST(Transfer, ATamperedObjectIsRefusedAtItsRangeAndLeavesNothing) {
  Device a, b;
  FakeStore s3;
  const Sent sent = Import(a, Bytes(40 << 20, 5));  // 9 ranges
  const std::string key = ObjectKey(sent.object.id);
  UploadState state;
  ASSERT_TRUE(UploadFrom(a, sent, s3, &state, SaveNothing).ok());
  s3.objects[key][(5 << 20) + 1000] ^= 0x01;  // in the second range
  EXPECT_EQ(DownloadTo(b, sent, s3).code(), Code::kDataLoss);
  // Stopped at the damaged range, not at the end: at most `parallel` ranges
  // were fetched past the last one appended.
  EXPECT_LE(s3.get_calls, 1 + kOptions.parallel);
  EXPECT_FALSE(b.files.Has(sent.object.id));
  EXPECT_EQ(*b.files.PartialBytes(sent.object.id), 0u);

  // Another object under the right key (a replaced one) is refused by size
  // or by its chunks; a missing one is NOT_FOUND.
  s3.objects[key] = s3.objects[key].substr(0, 1000);
  EXPECT_EQ(DownloadTo(b, sent, s3).code(), Code::kDataLoss);
  s3.objects.erase(key);
  EXPECT_EQ(DownloadTo(b, sent, s3).code(), Code::kNotFound);
}

// The same file encrypted again under the same content key: every chunk
// opens and the size is the same; only the SHA-256 that the download
// computes as it checks tells it from the object the reference names.
TEST(Transfer, AnotherEncryptionUnderTheSameKeyIsRefusedByItsHash) {
  Device a, b, c;
  FakeStore s3;
  const std::string data = Bytes(11 << 20, 6);
  const Sent sent = Import(a, data);
  const Sent twin = Import(c, data, &sent.key);
  ASSERT_NE(twin.object.id, sent.object.id);
  ASSERT_EQ(twin.object.cipher_bytes, sent.object.cipher_bytes);
  s3.objects[ObjectKey(sent.object.id)] =
      *c.files.ReadRange(twin.object.id, 0, twin.object.cipher_bytes);
  EXPECT_EQ(DownloadTo(b, sent, s3).code(), Code::kDataLoss);
  EXPECT_FALSE(b.files.Has(sent.object.id));
  EXPECT_EQ(*b.files.PartialBytes(sent.object.id), 0u);
}

TEST(Transfer, CancelStopsBetweenParts) {
  Device a;
  FakeStore s3;
  const Sent sent = Import(a, Bytes(11 << 20, 6));
  std::atomic<bool> cancel{false};
  UploadState state;
  TransferOptions one_at_a_time = kOptions;
  one_at_a_time.parallel = 1;
  EXPECT_EQ(Upload(
                a.files, sent.object.id, sent.key, sent.object.cipher_bytes,
                ObjectKey(sent.object.id), s3, &state, SaveNothing, one_at_a_time,
                [&](uint64_t, uint64_t) { cancel = true; }, &cancel)
                .code(),
            Code::kCancelled);
  EXPECT_EQ(s3.part_calls, 1);
  EXPECT_EQ(state.parts.size(), 1u);
}

TEST(Transfer, PartsFinishingOutOfOrderAreSavedAndReportedInOrder) {
  Device a, b;
  FakeStore s3;
  const std::string data = Bytes(17 << 20, 11);  // 4 parts, the last 2 MiB
  const Sent sent = Import(a, data);
  const std::string key = ObjectKey(sent.object.id);
  const std::thread::id caller = std::this_thread::get_id();
  bool elsewhere = false;  // a callback on another thread than the caller's
  std::vector<std::vector<int>> saved;
  std::vector<uint64_t> progress;
  auto on_progress = [&](uint64_t done, uint64_t) {
    elsewhere |= std::this_thread::get_id() != caller;
    progress.push_back(done);
  };
  {
    HoldBack part_1_last(s3, 1, 3);
    UploadState state;
    ASSERT_TRUE(UploadFrom(
                    a, sent, s3, &state,
                    [&](const UploadState& s) {
                      elsewhere |= std::this_thread::get_id() != caller;
                      saved.push_back(Numbers(s));
                      return Status::Ok();
                    },
                    kOptions, on_progress)
                    .ok());
    EXPECT_TRUE(part_1_last.released());
  }
  EXPECT_GE(s3.max_in_flight, 2);
  EXPECT_EQ(s3.parts_stored, 4);
  EXPECT_FALSE(elsewhere);
  // The upload id, then parts 1 to n as each joins its predecessors (never a
  // part whose predecessors are not done), then done.
  ASSERT_EQ(saved.size(), 6u);
  for (size_t i = 0; i < saved.size(); ++i) EXPECT_EQ(saved[i], OneTo(std::min<size_t>(i, 4)));
  EXPECT_TRUE(std::is_sorted(progress.begin(), progress.end()));
  EXPECT_EQ(progress.back(), sent.object.cipher_bytes);

  // Ranges arriving out of order are checked and appended in order.
  progress.clear();
  s3.max_in_flight = 0;
  {
    HoldBack range_1_last(s3, 1, 3);
    ASSERT_TRUE(DownloadTo(b, sent, s3, on_progress).ok());
    EXPECT_TRUE(range_1_last.released());
  }
  EXPECT_GE(s3.max_in_flight, 2);
  EXPECT_FALSE(elsewhere);
  EXPECT_EQ(progress,
            (std::vector<uint64_t>{kPart, 2 * kPart, 3 * kPart, sent.object.cipher_bytes}));
  EXPECT_EQ(ReadAll(b, sent), data);
}

TEST(Transfer, ADownloadFetchesAtMostParallelRangesAhead) {
  Device a, b;
  FakeStore s3;
  const std::string data = Bytes(40 << 20, 12);  // 9 ranges
  const Sent sent = Import(a, data);
  const std::string key = ObjectKey(sent.object.id);
  UploadState state;
  ASSERT_TRUE(UploadFrom(a, sent, s3, &state, SaveNothing).ok());
  // However the ranges arrive, none is fetched more than `parallel` ahead of
  // the ones checked (so a damaged range stops the download soon).
  HoldBack range_2_late(s3, 2, 2);
  int appended = 0, most_ahead = 0;
  ASSERT_TRUE(DownloadTo(b, sent, s3, [&](uint64_t, uint64_t) {
                ++appended;
                most_ahead = std::max(most_ahead, s3.Read(s3.get_calls) - appended);
              }).ok());
  EXPECT_TRUE(range_2_late.released());
  EXPECT_EQ(appended, 9);
  EXPECT_LE(most_ahead, kOptions.parallel - 1);
  EXPECT_EQ(ReadAll(b, sent), data);
}

TEST(Transfer, AFailedPartStopsTheUploadWhichResumesWithoutSendingAPartTwice) {
  Device a, b;
  FakeStore s3;
  const std::string data = Bytes(40 << 20, 13);  // 9 parts
  const Sent sent = Import(a, data);
  const std::string key = ObjectKey(sent.object.id);
  s3.fail_part[3] = Unavailable("part 3 timed out");
  std::atomic<int> calls_at_failure{0};
  s3.after = [&](int n) {
    if (n == 3) calls_at_failure = s3.Read(s3.part_calls);
  };
  UploadState persisted;
  auto save = [&](const UploadState& s) {
    EXPECT_EQ(Numbers(s), OneTo(s.parts.size()));
    persisted = s;
    return Status::Ok();
  };
  UploadState state;
  EXPECT_EQ(UploadFrom(a, sent, s3, &state, save, kOptions).code(), Code::kUnavailable);
  // Parts 1 and 2 are saved, whatever finished after part 3 is not; after
  // part 3 failed, at most the parts already handed to the workers went
  // (a slow scheduler may run part 3 after several others); the upload
  // stays open to go on.
  EXPECT_EQ(Numbers(persisted), OneTo(2));
  EXPECT_LE(s3.part_calls, calls_at_failure + kOptions.parallel);
  s3.after = nullptr;
  EXPECT_EQ(s3.uploads.size(), 1u);
  EXPECT_TRUE(s3.objects.empty());

  s3.fail_part.clear();
  ASSERT_TRUE(UploadFrom(a, sent, s3, &persisted, save, kOptions).ok());
  EXPECT_TRUE(persisted.done);
  EXPECT_EQ(s3.parts_stored, 9);  // each part once, over both attempts
  EXPECT_TRUE(s3.uploads.empty());
  ASSERT_TRUE(DownloadTo(b, sent, s3).ok());
  EXPECT_EQ(ReadAll(b, sent), data);
}

TEST(Transfer, TheEarliestPartsErrorIsTheOneReported) {
  Device a;
  FakeStore s3;
  const Sent sent = Import(a, Bytes(40 << 20, 14));
  const std::string key = ObjectKey(sent.object.id);
  // Part 4 fails first; part 2, held back until parts 1, 3 and 4 are done,
  // fails after it: an upload of one part at a time would have met part
  // 2's error, so that is the one reported.
  s3.fail_part[2] = PermissionDenied("part 2 is not allowed");
  s3.fail_part[4] = Unavailable("part 4 timed out");
  HoldBack part_2_last(s3, 2, 3);
  UploadState state;
  const Status s = UploadFrom(a, sent, s3, &state, SaveNothing);
  EXPECT_TRUE(part_2_last.released());
  EXPECT_EQ(s.code(), Code::kPermissionDenied) << s.ToString();
  EXPECT_EQ(Numbers(state), OneTo(1));
  // The first four, and one more for each of parts 1 and 3 if they finished
  // before part 4 failed; none after the failure.
  EXPECT_LE(s3.part_calls, kOptions.parallel + 2);
}

TEST(Transfer, CancelMidFlightStopsThePartsInFlight) {
  Device a, b;
  FakeStore s3;
  const std::string data = Bytes(40 << 20, 15);  // 9 parts
  const Sent sent = Import(a, data);
  const std::string key = ObjectKey(sent.object.id);
  std::atomic<bool> cancel{false};
  // An upload cancelled in the middle of a part stops reading it at its
  // next piece: the part is not sent, and nothing after it is saved.
  std::atomic<int> part1_pieces_after{0};
  s3.read_piece = [&](int n, uint64_t read) {
    if (n != 1) return;
    if (cancel) ++part1_pieces_after;
    if (read == 2 * s3.piece_bytes) cancel = true;
  };
  UploadState state;
  EXPECT_EQ(UploadFrom(a, sent, s3, &state, SaveNothing, kOptions, nullptr, &cancel).code(),
            Code::kCancelled);
  EXPECT_EQ(part1_pieces_after, 0);
  EXPECT_TRUE(Numbers(state).empty());
  EXPECT_EQ(s3.uploads.size(), 1u);  // left open for the next attempt
  cancel = false;
  s3.read_piece = nullptr;
  ASSERT_TRUE(UploadFrom(a, sent, s3, &state, SaveNothing, kOptions, nullptr, &cancel).ok());
  EXPECT_EQ(s3.objects.count(key), 1u);

  // A download cancelled in the middle of a range stops that range at its
  // next piece, not after its length: a slow link does not hold a cancel.
  std::atomic<int> range1_pieces_after{0};
  s3.piece = [&](int n, uint64_t handed) {
    if (n != 1) return;
    if (cancel) ++range1_pieces_after;
    if (handed == 2 * s3.piece_bytes) cancel = true;
  };
  EXPECT_EQ(DownloadTo(b, sent, s3, nullptr, &cancel).code(), Code::kCancelled);
  EXPECT_EQ(range1_pieces_after, 0);
  // No range was whole and checked: nothing is kept.
  auto nothing = b.files.PartialBytes(sent.object.id);
  EXPECT_TRUE(!nothing.ok() || *nothing == 0);
  cancel = false;
  s3.piece = nullptr;
  ASSERT_TRUE(DownloadTo(b, sent, s3, nullptr, &cancel).ok());
  EXPECT_EQ(ReadAll(b, sent), data);

  // Cancelled after the first range came whole, the next download keeps it
  // and fetches only the rest.
  Device c;
  s3.after = [&](int n) {
    if (n == 1) cancel = true;
  };
  s3.got_from.clear();
  const Status first = DownloadTo(c, sent, s3, nullptr, &cancel);
  EXPECT_EQ(first.code(), Code::kCancelled);
  cancel = false;
  s3.after = nullptr;
  auto partial = c.files.PartialBytes(sent.object.id);
  ASSERT_TRUE(partial.ok());
  const uint64_t kept = *partial;
  EXPECT_GE(kept, kPart);
  EXPECT_EQ(kept % kPart, 0u);
  s3.got_from.clear();
  ASSERT_TRUE(DownloadTo(c, sent, s3, nullptr, &cancel).ok());
  // From the last whole chunk kept, not from the start.
  EXPECT_GT(s3.FirstFrom(), 0u);
  EXPECT_LE(s3.FirstFrom(), kept);
  EXPECT_EQ(ReadAll(c, sent), data);
}

TEST(Transfer, AResumeKeepsThePartsOnTheServerPastAGap) {
  Device a, b;
  FakeStore s3;
  const std::string data = Bytes(40 << 20, 16);  // 9 parts
  const Sent sent = Import(a, data);
  const std::string key = ObjectKey(sent.object.id);
  auto part = [&](int n) {
    const uint64_t at = static_cast<uint64_t>(n - 1) * kPart;
    return *a.files.ReadRange(sent.object.id, at, std::min(kPart, sent.object.cipher_bytes - at));
  };
  // A crash with parts 1, 2, 4 and 5 on the server (part 3 was in flight),
  // part 7 cut short, and only part 1 saved.
  UploadState state{.part_bytes = kPart, .upload_id = *s3.CreateMultipartUpload(key)};
  for (int n : {1, 2, 4, 5}) {
    auto etag = s3.UploadPart(key, state.upload_id, n, part(n));
    ASSERT_TRUE(etag.ok());
    if (n == 1) state.parts.push_back({1, *etag, kPart});
  }
  ASSERT_TRUE(s3.UploadPart(key, state.upload_id, 7, part(7).substr(0, 1 << 20)).ok());
  const int calls_before = s3.part_calls;
  std::vector<std::vector<int>> saved;
  ASSERT_TRUE(UploadFrom(
                  a, sent, s3, &state,
                  [&](const UploadState& s) {
                    saved.push_back(Numbers(s));
                    return Status::Ok();
                  },
                  kOptions)
                  .ok());
  EXPECT_TRUE(state.done);
  // Parts 3, 6, 7 (again, at its size), 8 and 9 were sent; 2, 4 and 5 kept.
  EXPECT_EQ(s3.part_calls - calls_before, 5);
  // The store's list first (parts 1 and 2), then each part as it joins the
  // ones before it: 4 and 5 right after 3.
  ASSERT_FALSE(saved.empty());
  EXPECT_EQ(saved.front(), OneTo(2));
  for (const auto& numbers : saved) EXPECT_EQ(numbers, OneTo(numbers.size()));
  EXPECT_EQ(saved.back(), OneTo(9));
  ASSERT_TRUE(DownloadTo(b, sent, s3).ok());
  EXPECT_EQ(ReadAll(b, sent), data);
}

TEST(Transfer, ARangeCutShortOrTooLongIsNotUsed) {
  Device a;
  FakeStore s3;
  const std::string data = Bytes(12 << 20, 17);  // 3 ranges
  const Sent sent = Import(a, data);
  UploadState state;
  ASSERT_TRUE(UploadFrom(a, sent, s3, &state, SaveNothing).ok());
  struct Case {
    const char* what;
    std::function<void()> set;
    Code code;
  };
  for (const Case& c : {
           Case{"cut short", [&] { s3.short_get[kPart] = kPart / 2; }, Code::kUnavailable},
           Case{"longer than asked", [&] { s3.extra_get[kPart] = "more"; }, Code::kDataLoss},
           Case{"failed midway",
                [&] { s3.fail_get_midway[kPart] = Unavailable("the connection was reset"); },
                Code::kUnavailable},
       }) {
    SCOPED_TRACE(c.what);
    Device b;
    c.set();
    std::vector<uint64_t> progress;
    EXPECT_EQ(
        DownloadTo(b, sent, s3, [&](uint64_t done, uint64_t) { progress.push_back(done); }).code(),
        c.code);
    // Only the first range was checked and reported; the partial file keeps
    // it and nothing after it, whatever the second and third had written.
    EXPECT_EQ(progress, std::vector<uint64_t>{kPart});
    EXPECT_FALSE(b.files.Has(sent.object.id));
    EXPECT_EQ(*b.files.PartialBytes(sent.object.id), kPart);
    s3.short_get.clear();
    s3.extra_get.clear();
    s3.fail_get_midway.clear();
    s3.got_from.clear();
    ASSERT_TRUE(DownloadTo(b, sent, s3).ok());
    // Resumed at the last whole chunk of the first range (the rest of that
    // chunk had not opened yet).
    EXPECT_GT(s3.FirstFrom(), kPart - crypto::kAttachmentChunkBytes - 17);
    EXPECT_LE(s3.FirstFrom(), kPart);
    EXPECT_EQ(ReadAll(b, sent), data);
  }
  // A download that checked nothing leaves no partial file behind.
  Device c;
  s3.fail_get_from[0] = Unavailable("the network went away");
  EXPECT_EQ(DownloadTo(c, sent, s3).code(), Code::kUnavailable);
  EXPECT_FALSE(std::filesystem::exists(c.files.PartialPath(sent.object.id)));
}

TEST(Transfer, AByteFlippedMidRangeIsNeverHandedOn) {
  Device a, b;
  FakeStore s3;
  const Sent sent = Import(a, Bytes(40 << 20, 18));  // 9 ranges
  UploadState state;
  ASSERT_TRUE(UploadFrom(a, sent, s3, &state, SaveNothing).ok());
  // In the middle of the third range, which arrives in pieces of 64 KiB.
  s3.piece_bytes = 64 << 10;
  s3.objects[ObjectKey(sent.object.id)][2 * kPart + kPart / 2 + 12345] ^= 0x20;
  uint64_t reported = 0;
  EXPECT_EQ(DownloadTo(b, sent, s3, [&](uint64_t done, uint64_t) { reported = done; }).code(),
            Code::kDataLoss);
  EXPECT_EQ(reported, 2 * kPart);  // the two ranges before it, no byte of it
  EXPECT_FALSE(b.files.Has(sent.object.id));
  EXPECT_EQ(*b.files.PartialBytes(sent.object.id), 0u);  // the next fetch starts over
}

// A process killed in the middle of a range, with later ranges already
// written past it and the range's first half there: the resume keeps the
// whole chunks from the start that open, fetches from there, and the object
// is byte for byte the one sent.
TEST(Transfer, ADownloadKilledMidRangeResumesFromTheChunksThatOpen) {
  Device a, b;
  FakeStore s3;
  const std::string data = Bytes(40 << 20, 19);  // 9 ranges
  const Sent sent = Import(a, data);
  UploadState state;
  ASSERT_TRUE(UploadFrom(a, sent, s3, &state, SaveNothing).ok());
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Range 2 starts once ranges 1, 3 and 4 are done, and dies halfway.
    HoldBack range_2_last(s3, 2, 3);
    s3.piece = [](int number, uint64_t done) {
      if (number == 2 && done >= kPart / 2) ::kill(::getpid(), SIGKILL);
    };
    (void)DownloadTo(b, sent, s3);
    ::_exit(0);  // not reached
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  const uint64_t left = *b.files.PartialBytes(sent.object.id);
  EXPECT_GE(left, 4 * kPart) << "ranges 3 and 4 were written before range 2";
  ASSERT_TRUE(DownloadTo(b, sent, s3).ok());
  // Resumed inside range 2, after the bytes of its first half that made
  // whole chunks: ranges 3 and 4, never checked, were fetched again.
  ASSERT_FALSE(s3.got_from.empty());
  EXPECT_GT(s3.FirstFrom(), kPart + kPart / 2 - (64 << 10) - 1);
  EXPECT_LT(s3.FirstFrom(), 2 * kPart);
  EXPECT_EQ(ReadAll(b, sent), data);
  EXPECT_EQ(*b.files.PartialBytes(sent.object.id), 0u);
}

// What a crash can leave: ranges written out of order with a hole between
// them, bytes that never reached the disk (zeros), a file longer than the
// object. Only the chunks from the start that open are kept.
TEST(Transfer, AResumeKeepsOnlyTheChunksFromTheStartThatOpen) {
  Device a;
  FakeStore s3;
  const std::string data = Bytes(12 << 20, 20);
  const Sent sent = Import(a, data);
  const std::string object = *a.files.ReadRange(sent.object.id, 0, sent.object.cipher_bytes);
  UploadState state;
  ASSERT_TRUE(UploadFrom(a, sent, s3, &state, SaveNothing).ok());
  const uint64_t chunk = crypto::kAttachmentChunkBytes + 17;
  struct Case {
    const char* what;
    std::vector<std::pair<uint64_t, std::string>> writes;
    uint64_t kept_at_least, kept_below;
  };
  const uint64_t head = crypto::kAttachmentHeaderBytes;
  for (const Case& c : {
           Case{"a hole after the first range",
                {{0, object.substr(0, kPart)}, {2 * kPart, object.substr(2 * kPart)}},
                kPart - chunk,
                kPart},
           Case{"zeros where a range should be",
                {{0, object.substr(0, kPart)}, {kPart, std::string(kPart, '\0')}},
                kPart - chunk,
                kPart},
           Case{"longer than the object", {{0, object + "trailing"}}, 0, 1},
           Case{"cut inside the header", {{0, object.substr(0, 10)}}, 0, 1},
           Case{"one whole chunk",
                {{0, object.substr(0, head + chunk)}},
                head + chunk,
                head + chunk + 1},
       }) {
    SCOPED_TRACE(c.what);
    Device b;
    {
      auto partial = b.files.OpenPartial(sent.object.id);
      ASSERT_TRUE(partial.ok());
      for (const auto& [at, bytes] : c.writes) ASSERT_TRUE(partial->WriteAt(at, bytes).ok());
    }
    s3.got_from.clear();
    ASSERT_TRUE(DownloadTo(b, sent, s3).ok());
    EXPECT_EQ(ReadAll(b, sent), data);
    const uint64_t resumed = s3.got_from.empty() ? sent.object.cipher_bytes : s3.FirstFrom();
    if (std::string(c.what) == "longer than the object") {
      EXPECT_TRUE(s3.got_from.empty()) << "the whole object was there";
    } else {
      EXPECT_GE(resumed, c.kept_at_least);
      EXPECT_LT(resumed, c.kept_below);
    }
  }
}

}  // namespace
}  // namespace tidings::attachments
