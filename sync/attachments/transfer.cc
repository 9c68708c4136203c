#include "sync/attachments/transfer.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "crypto/attachment_cipher.h"
#include "crypto/hash.h"

namespace tidings::attachments {
namespace {

bool Stopped(const std::atomic<bool>* cancel) {
  return cancel != nullptr && cancel->load(std::memory_order_relaxed);
}

constexpr uint64_t kMinPartBytes = 5 << 20;  // S3's, for every part but the last
constexpr uint64_t kMaxParts = 10'000;
constexpr uint64_t kMaxPartBytes = uint64_t{5} << 30;  // S3's, 5 GiB
// An upload checks the object from its file in pieces of this size (and
// holds one piece of plaintext at a time).
constexpr size_t kCheckPieceBytes = 256 << 10;

}  // namespace

Result<std::string> ObjectStore::UploadPartFrom(const std::string& key,
                                                const std::string& upload_id, int number,
                                                uint64_t size, const PartReader& read) {
  std::string body(size, '\0');
  for (uint64_t at = 0; at < size;) {
    TIDINGS_ASSIGN_OR_RETURN(const size_t got,
                             read(at, body.data() + at, static_cast<size_t>(size - at)));
    if (got == 0) return DataLoss("an attachment's part ended before its length");
    at += got;
  }
  return UploadPart(key, upload_id, number, std::move(body));
}

Status ObjectStore::GetRangeTo(const std::string& key, uint64_t offset, uint64_t length,
                               const RangeWriter& write) {
  TIDINGS_ASSIGN_OR_RETURN(const std::string bytes, GetRange(key, offset, length));
  return write(0, bytes);
}

std::string ObjectKey(std::string_view id) { return "tidings/" + crypto::HexEncode(id); }

namespace {

// Whether the store already holds the whole object: an upload completed
// whose "done" was never saved (a crash, or a lost answer to Complete) is
// not sent again. The key names the object's SHA-256, and every receiver
// checks it.
Result<bool> AlreadyThere(ObjectStore& store, const std::string& key, uint64_t cipher_bytes) {
  auto size = store.HeadObject(key);
  if (size.status().code() == Code::kNotFound) return false;
  TIDINGS_RETURN_IF_ERROR(size.status());
  return *size == cipher_bytes;
}

Status NotTheObject() {
  return DataLoss(
      "the attachment's file on this device does not match its name: it was changed "
      "or damaged, so it is not uploaded; run `tidings verify`");
}

Status Abandon(ObjectStore& store, const std::string& key, const std::string& upload_id) {
  const Status s = store.AbortMultipartUpload(key, upload_id);
  return s.code() == Code::kNotFound ? Status::Ok() : s;
}

// Once the object is there, any other upload of its key is an orphan: a
// killed run's CreateMultipartUpload the server carried out after the next
// run had listed the key's uploads (a loaded server can). Best effort: the
// object is complete either way, and the next upload of the key lists
// again.
void AbandonOthers(ObjectStore& store, const std::string& key) {
  auto orphans = store.ListUploads(key);
  if (!orphans.ok()) return;
  for (const auto& orphan : *orphans) Abandon(store, key, orphan).IgnoreError();
}

// Returns the heap's free pages to the system, after each part. The parts'
// buffers, megabytes each, are allocated on one thread and freed on
// another, and glibc's arenas split and keep them: importing, uploading and
// downloading 1 GiB with 2 x 12 MiB in flight grows the peak RSS by 28 MB
// with this, by 37 MB with it once per transfer.
void GiveBackFreedMemory() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

// How a transfer's parts are moved: each is prepared on the calling thread in
// order (an upload reads and hashes it), worked on by one of the worker
// threads (sent or fetched), and finished on the calling thread in order
// (saved, or checked and appended).
struct PartSteps {
  // The part's input for `work`, or nullopt if it needs no work (an upload's
  // part the store already holds): then `finish` gets an empty output.
  std::function<Result<std::optional<std::string>>(size_t part)> prepare;
  std::function<Result<std::string>(size_t part, std::string input)> work;
  std::function<Status(size_t part, std::string output)> finish;
};

// Runs parts [0, count) through `steps`, `parallel` of them in work at once
// and at most `window` (at least `parallel`) prepared but not yet finished.
// The first error, or `cancel` (seen before each part is prepared), stops
// it: no part is prepared after that, the parts in work finish, and those
// before the earliest part that failed are still finished. Returns that
// part's error (or the error of a `finish`, which stops at once), or OK once
// every part is finished.
Status RunParts(size_t count, int parallel, size_t window, const PartSteps& steps,
                const std::atomic<bool>* cancel, const Status& cancelled) {
  const size_t threads =
      std::clamp<size_t>(static_cast<size_t>(std::max(parallel, 1)), 1, std::max<size_t>(count, 1));
  window = std::max(window, threads);
  std::mutex mu;
  std::condition_variable to_workers, to_caller;
  std::deque<std::pair<size_t, std::string>> queued;  // GUARDED_BY(mu)
  std::map<size_t, Result<std::string>> results;      // GUARDED_BY(mu); not yet finished
  size_t busy = 0;                                    // GUARDED_BY(mu); queued or in work
  bool failed = false;                                // GUARDED_BY(mu); a work failed
  bool closing = false;                               // GUARDED_BY(mu)
  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (size_t i = 0; i < threads; ++i) {
    workers.emplace_back([&] {
      std::unique_lock lock(mu);
      for (;;) {
        to_workers.wait(lock, [&] { return closing || !queued.empty(); });
        if (queued.empty()) return;
        auto [part, input] = std::move(queued.front());
        queued.pop_front();
        lock.unlock();
        Result<std::string> output = steps.work(part, std::move(input));
        lock.lock();
        failed = failed || !output.ok();
        results.emplace(part, std::move(output));
        --busy;
        to_caller.notify_one();
      }
    });
  }

  size_t prepared = 0, finished = 0;
  bool stopping = false;
  Status outcome;
  std::unique_lock lock(mu);
  // Finishes, in order, the parts whose work is done, up to the first that
  // failed. REQUIRES: lock held (released around `finish`).
  auto finish_ready = [&] {
    while (outcome.ok() && finished < prepared) {
      auto it = results.find(finished);
      if (it == results.end()) return;
      Result<std::string> output = std::move(it->second);
      results.erase(it);
      if (!output.ok()) {
        outcome = output.status();
        return;
      }
      lock.unlock();
      Status s = steps.finish(finished, std::move(*output));
      GiveBackFreedMemory();
      lock.lock();
      if (!s.ok()) {
        outcome = std::move(s);
        return;
      }
      ++finished;
    }
  };
  for (;;) {
    finish_ready();
    if (!outcome.ok() || failed) stopping = true;
    if (!stopping && prepared < count && Stopped(cancel)) {
      results.emplace(prepared++, cancelled);
      stopping = true;
    }
    if (stopping) {
      if (busy == 0) {
        finish_ready();
        break;
      }
    } else if (finished == count) {
      break;
    } else if (prepared < count && busy < threads && prepared - finished < window) {
      const size_t part = prepared++;
      lock.unlock();
      Result<std::optional<std::string>> input = steps.prepare(part);
      lock.lock();
      if (!input.ok()) {
        results.emplace(part, input.status());
        stopping = true;
      } else if (failed) {
        // An earlier part failed while this one was prepared: it is not
        // started (its result is never reached: the earlier one stops it).
        results.emplace(part, cancelled);
        stopping = true;
      } else if (!input->has_value()) {
        results.emplace(part, std::string());
      } else {
        queued.emplace_back(part, std::move(**input));
        ++busy;
        to_workers.notify_one();
      }
      continue;
    }
    to_caller.wait(lock);
  }
  closing = true;
  lock.unlock();
  to_workers.notify_all();
  for (std::thread& t : workers) t.join();
  return outcome;
}

}  // namespace

Status Upload(const engine::AttachmentFiles& files, std::string_view id,
              const crypto::SecretKey& content_key, uint64_t cipher_bytes, const std::string& key,
              ObjectStore& store, UploadState* state, const SaveUpload& save,
              const TransferOptions& options, const TransferProgress& progress,
              const std::atomic<bool>* cancel) {
  if (state->done) return Status::Ok();
  auto cancelled = [] { return tidings::Cancelled("the attachment upload was cancelled"); };
  if (Stopped(cancel)) return cancelled();
  // What is sent must be the object the import wrote: its size first, then
  // every chunk opened as the bytes go, in order (from the start again
  // after a restart), before the object is made whole on the server. The
  // object's SHA-256 was computed once, at import (it is its name); without
  // the content key no changed file opens, and checking the chunks costs a
  // third of hashing them again (docs/attachments.md).
  TIDINGS_ASSIGN_OR_RETURN(const uint64_t on_disk, files.Size(id));
  if (on_disk != cipher_bytes) return NotTheObject();
  crypto::AttachmentDecryptor check(content_key);
  std::string plain;
  bool intact = true;
  auto check_bytes = [&](std::string_view bytes) {
    for (size_t at = 0; intact && at < bytes.size(); at += kCheckPieceBytes) {
      plain.clear();
      intact = check.Update(bytes.substr(at, kCheckPieceBytes), &plain).ok();
    }
    return intact;
  };
  auto is_the_object = [&] {
    plain.clear();
    return intact && check.Finish(&plain).ok();
  };
  auto done = [&]() -> Status {
    state->done = true;
    TIDINGS_RETURN_IF_ERROR(save(*state));
    if (progress) progress(cipher_bytes, cipher_bytes);
    return Status::Ok();
  };
  // The object is there (a run killed after completing it, before it could
  // abandon the others): any open upload of its key is an orphan.
  auto found_done = [&]() -> Status {
    AbandonOthers(store, key);
    return done();
  };

  // Small objects go in one request, unless a multipart upload was started
  // (under other options) and must be finished or abandoned.
  if (cipher_bytes < options.multipart_from_bytes && state->upload_id.empty()) {
    TIDINGS_ASSIGN_OR_RETURN(std::string body, files.ReadRange(id, 0, cipher_bytes));
    if (!check_bytes(body) || !is_the_object()) return NotTheObject();
    TIDINGS_RETURN_IF_ERROR(store.PutObject(key, std::move(body)));
    return done();
  }

  // A saved state that cannot go on (a part size S3 refuses, or too small
  // for 10,000 parts: an older build's or a damaged one) is abandoned.
  if (!state->upload_id.empty() &&
      (state->part_bytes < kMinPartBytes || state->part_bytes > kMaxPartBytes ||
       state->part_bytes * kMaxParts < cipher_bytes)) {
    TIDINGS_RETURN_IF_ERROR(Abandon(store, key, state->upload_id));
    *state = UploadState{};
    TIDINGS_RETURN_IF_ERROR(save(*state));
  }
  // Parts the store holds beyond those saved (sent just before a crash,
  // perhaps after a gap: a part still in flight then) are kept, at the size
  // their place needs, rather than sent again.
  std::map<int, UploadedPart> held;
  if (state->upload_id.empty()) {
    TIDINGS_ASSIGN_OR_RETURN(const bool there, AlreadyThere(store, key, cipher_bytes));
    if (there) return found_done();
    // A part size fixed for the whole upload (a restart under other options
    // goes on with the parts already sent), large enough for 10,000 parts.
    state->part_bytes =
        std::max({options.part_bytes, kMinPartBytes, (cipher_bytes + kMaxParts - 1) / kMaxParts});
    state->parts.clear();
    TIDINGS_ASSIGN_OR_RETURN(const std::vector<std::string> orphans, store.ListUploads(key));
    for (const auto& orphan : orphans) TIDINGS_RETURN_IF_ERROR(Abandon(store, key, orphan));
    TIDINGS_ASSIGN_OR_RETURN(state->upload_id, store.CreateMultipartUpload(key));
    TIDINGS_RETURN_IF_ERROR(save(*state));
  } else {
    // Resumed: the store's list is the truth. An upload it no longer knows
    // was completed (the object is there) or lost (start over).
    auto listed = store.ListParts(key, state->upload_id);
    if (listed.status().code() == Code::kNotFound) {
      TIDINGS_ASSIGN_OR_RETURN(const bool there, AlreadyThere(store, key, cipher_bytes));
      if (there) return found_done();
      *state = UploadState{};
      TIDINGS_RETURN_IF_ERROR(save(*state));
      return Upload(files, id, content_key, cipher_bytes, key, store, state, save, options,
                    progress, cancel);
    }
    TIDINGS_RETURN_IF_ERROR(listed.status());
    for (const UploadedPart& p : *listed) {
      const uint64_t offset = static_cast<uint64_t>(p.number - 1) * state->part_bytes;
      const uint64_t want =
          offset < cipher_bytes ? std::min(state->part_bytes, cipher_bytes - offset) : 0;
      if (p.number >= 1 && want != 0 && p.bytes == want) held.emplace(p.number, p);
    }
    state->parts.clear();
    for (auto it = held.begin();
         it != held.end() && it->first == static_cast<int>(state->parts.size()) + 1;
         it = held.erase(it)) {
      state->parts.push_back(it->second);
    }
    TIDINGS_RETURN_IF_ERROR(save(*state));
  }

  // Every part is checked in order from the file (those already sent too);
  // the others are sent side by side, each read from the file again as it
  // goes (no part is held in memory), and join the state in order. A chunk
  // that does not open stops the upload at its part.
  const uint64_t part_bytes = state->part_bytes;
  const std::string upload_id = state->upload_id;
  const size_t saved = state->parts.size();
  auto length_of = [&](size_t part) {
    return std::min(part_bytes, cipher_bytes - part * part_bytes);
  };
  TIDINGS_ASSIGN_OR_RETURN(const engine::ObjectFile file, files.OpenObject(id));
  if (file.size() != cipher_bytes) return NotTheObject();
  std::string piece(kCheckPieceBytes, '\0');
  const PartSteps steps{
      .prepare = [&](size_t part) -> Result<std::optional<std::string>> {
        const uint64_t from = part * part_bytes, to = from + length_of(part);
        for (uint64_t at = from; at < to;) {
          const size_t want = static_cast<size_t>(std::min<uint64_t>(piece.size(), to - at));
          TIDINGS_ASSIGN_OR_RETURN(const size_t got, file.ReadAt(at, piece.data(), want));
          if (got != want) intact = false;
          if (!intact || !check_bytes(std::string_view(piece.data(), got))) return NotTheObject();
          at += got;
        }
        if (part < saved || held.count(static_cast<int>(part) + 1) != 0) {
          return std::optional<std::string>();
        }
        return std::optional<std::string>(std::string());
      },
      .work = [&](size_t part, std::string) -> Result<std::string> {
        const uint64_t from = part * part_bytes, length = length_of(part);
        const PartReader read = [&file, from, length, cancel](uint64_t offset, char* buf,
                                                              size_t cap) -> Result<size_t> {
          // A part streams from its file as it is sent: a cancel stops the
          // parts in flight too, within one read, not after their length.
          if (Stopped(cancel)) return tidings::Cancelled("the attachment upload was cancelled");
          if (offset >= length) return size_t{0};
          return file.ReadAt(from + offset, buf,
                             static_cast<size_t>(std::min<uint64_t>(cap, length - offset)));
        };
        return store.UploadPartFrom(key, upload_id, static_cast<int>(part) + 1, length, read);
      },
      .finish = [&](size_t part, std::string etag) -> Status {
        if (part < saved) return Status::Ok();
        const int number = static_cast<int>(part) + 1;
        if (auto it = held.find(number); it != held.end()) {
          state->parts.push_back(it->second);
        } else {
          state->parts.push_back({number, std::move(etag), length_of(part)});
        }
        TIDINGS_RETURN_IF_ERROR(save(*state));
        if (progress) progress(part * part_bytes + length_of(part), cipher_bytes);
        return Status::Ok();
      },
  };
  const Status sent = RunParts((cipher_bytes + part_bytes - 1) / part_bytes, options.parallel,
                               SIZE_MAX, steps, cancel, cancelled());
  if (!intact || (sent.ok() && !is_the_object())) {
    TIDINGS_RETURN_IF_ERROR(Abandon(store, key, state->upload_id));
    *state = UploadState{};
    TIDINGS_RETURN_IF_ERROR(save(*state));
    return NotTheObject();
  }
  TIDINGS_RETURN_IF_ERROR(sent);
  const Status completed = store.CompleteMultipartUpload(key, state->upload_id, state->parts);
  if (completed.code() == Code::kNotFound) {  // completed before, its answer lost
    TIDINGS_ASSIGN_OR_RETURN(const bool there, AlreadyThere(store, key, cipher_bytes));
    if (there) {
      AbandonOthers(store, key);
      return done();
    }
  }
  TIDINGS_RETURN_IF_ERROR(completed);
  AbandonOthers(store, key);
  return done();
}

namespace {

// A download's check of the object, in order: every chunk opens (the last
// FINAL) and the SHA-256 of all of them is the object's id.
struct DownloadCheck {
  explicit DownloadCheck(const crypto::SecretKey& key) : chunks(key) {}
  crypto::AttachmentDecryptor chunks;
  crypto::Sha256Hasher hash;
  std::string plain;  // one piece's, dropped after each
  // The next `bytes` of the object.
  bool Update(std::string_view bytes) {
    plain.clear();
    if (!chunks.Update(bytes, &plain).ok()) return false;
    hash.Update(bytes);
    return true;
  }
};

// The partial file is read back and checked in pieces of this size.
constexpr size_t kCheckSlice = 256 << 10;

// How much of a partial download left by an earlier attempt can be kept:
// the longest run of whole chunks from the start that open (the last one
// also FINAL if the file reaches `cipher_bytes`), fed to `*check`. An attempt
// stopped cleanly leaves exactly the bytes it checked (a chunk it had only
// part of is fetched again); a crash may leave bytes past them, from
// ranges written before the ones before them, or not yet on disk.
struct Kept {
  uint64_t bytes = 0;
  bool clean = true;  // `*check` saw exactly those bytes (no chunk failed)
};
Result<Kept> KeptPrefix(const engine::PartialFile& partial, uint64_t on_disk, uint64_t cipher_bytes,
                        DownloadCheck* check) {
  const uint64_t avail = std::min(on_disk, cipher_bytes);
  char prefix[crypto::kAttachmentPrefixBytes];
  if (avail < sizeof prefix) return Kept{};
  TIDINGS_ASSIGN_OR_RETURN(const size_t got, partial.ReadAt(0, prefix, sizeof prefix));
  if (got != sizeof prefix) return Kept{};
  uint32_t chunk = 0;
  for (size_t i = 4; i < sizeof prefix; ++i) chunk = chunk << 8 | static_cast<uint8_t>(prefix[i]);
  if (chunk == 0 || chunk > crypto::kMaxAttachmentChunkBytes) return Kept{};
  const uint64_t sealed = uint64_t{chunk} + crypto::kSecretStreamOverhead;
  std::string piece;
  Kept kept;
  for (uint64_t next = crypto::kAttachmentHeaderBytes + sealed;; next += sealed) {
    const uint64_t to = std::min(next, cipher_bytes);
    if (to > avail) break;  // not all here: fetched again
    piece.resize(static_cast<size_t>(to - kept.bytes));
    TIDINGS_ASSIGN_OR_RETURN(const size_t n,
                             partial.ReadAt(kept.bytes, piece.data(), piece.size()));
    if (n != piece.size()) break;
    kept.clean = check->Update(piece);
    if (kept.clean && to == cipher_bytes) {
      check->plain.clear();
      kept.clean = check->chunks.Finish(&check->plain).ok();
    }
    if (!kept.clean) break;
    kept.bytes = to;
    if (to == cipher_bytes) break;
  }
  return kept;
}

}  // namespace

Status Download(engine::AttachmentFiles& files, std::string_view id,
                const crypto::SecretKey& content_key, uint64_t cipher_bytes, const std::string& key,
                ObjectStore& store, const TransferOptions& options,
                const TransferProgress& progress, const std::atomic<bool>* cancel) {
  if (files.Has(id)) return Status::Ok();
  TIDINGS_ASSIGN_OR_RETURN(const uint64_t size, store.HeadObject(key));
  if (size != cipher_bytes) {
    return DataLoss("the attachment on the server is " + std::to_string(size) + " bytes, not the " +
                    std::to_string(cipher_bytes) + " its message says: it was changed or replaced");
  }
  // Every byte is checked once, in order, as it is read back from the
  // partial file (those of a resumed download too): every chunk opens and
  // the SHA-256 of all of them is the object's id, so the file is not read
  // again at the end. A chunk that fails stops the download there, and its
  // partial file goes.
  TIDINGS_ASSIGN_OR_RETURN(const engine::PartialFile partial, files.OpenPartial(id));
  auto check = std::make_unique<DownloadCheck>(content_key);
  auto failed = [&] {
    (void)files.DropPartial(id);
    return DataLoss(
        "a downloaded attachment failed its check: it was changed on the server "
        "or on the way; fetch it again to retry");
  };
  // What a resumed download already has is checked again; bytes past the
  // whole chunks that open (a crash's, or damage here) are cut, and fetched
  // again.
  TIDINGS_ASSIGN_OR_RETURN(const uint64_t on_disk, partial.Size());
  uint64_t have = 0;
  if (on_disk > 0) {
    TIDINGS_ASSIGN_OR_RETURN(const Kept kept,
                             KeptPrefix(partial, on_disk, cipher_bytes, check.get()));
    have = kept.bytes;
    if (have != on_disk) TIDINGS_RETURN_IF_ERROR(partial.Truncate(have));
    if (!kept.clean) {
      // A chunk past `have` failed: the check starts again over the bytes
      // kept.
      check = std::make_unique<DownloadCheck>(content_key);
      TIDINGS_ASSIGN_OR_RETURN(const Kept again,
                               KeptPrefix(partial, have, cipher_bytes, check.get()));
      if (again.bytes != have || !again.clean) return failed();  // changed under this download
    }
  }
  // Ranges fetched side by side, each written to its place as it arrives,
  // then read back and checked in order.
  std::string slice(kCheckSlice, '\0');
  auto check_bytes = [&](uint64_t from, uint64_t to) -> Status {
    for (uint64_t at = from; at < to;) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(slice.size(), to - at));
      TIDINGS_ASSIGN_OR_RETURN(const size_t got, partial.ReadAt(at, slice.data(), want));
      if (got != want || !check->Update(std::string_view(slice.data(), got))) return failed();
      at += got;
    }
    return Status::Ok();
  };
  const uint64_t range = std::max<uint64_t>(options.range_bytes, 1);
  const uint64_t from = have;
  auto offset_of = [&](size_t part) { return from + part * range; };
  auto length_of = [&](size_t part) { return std::min(range, cipher_bytes - offset_of(part)); };
  const PartSteps steps{
      .prepare = [](size_t) -> Result<std::optional<std::string>> {
        return std::optional<std::string>(std::string());
      },
      .work = [&](size_t part, std::string) -> Result<std::string> {
        const uint64_t at = offset_of(part), length = length_of(part);
        uint64_t end = 0;  // of the bytes written, in this attempt
        const RangeWriter write = [&](uint64_t offset, std::string_view bytes) -> Status {
          // A cancel stops the ranges in flight too, at their next piece: on
          // a slow link, 8 ranges of 32 MiB would hold it for minutes.
          if (Stopped(cancel)) return tidings::Cancelled("the attachment download was cancelled");
          if (offset != end && offset != 0) {
            return Internal("an object store handed on a range's bytes out of order");
          }
          if (offset + bytes.size() > length) {
            return DataLoss("the server sent more than the " + std::to_string(length) +
                            " bytes of a range; not using them");
          }
          TIDINGS_RETURN_IF_ERROR(partial.WriteAt(at + offset, bytes));
          end = offset + bytes.size();
          return Status::Ok();
        };
        TIDINGS_RETURN_IF_ERROR(store.GetRangeTo(key, at, length, write));
        if (end != length) {
          return Unavailable("the server sent " + std::to_string(end) + " bytes of a " +
                             std::to_string(length) + "-byte range; retry the download");
        }
        partial.StartWriteBack(at, length);
        return std::string();
      },
      .finish = [&](size_t part, std::string) -> Status {
        const uint64_t at = offset_of(part), length = length_of(part);
        TIDINGS_RETURN_IF_ERROR(check_bytes(at, at + length));
        have = at + length;
        if (progress) progress(have, cipher_bytes);
        return Status::Ok();
      },
  };
  const int parallel = std::max(std::min(options.parallel, options.download_parallel), 1);
  const Status fetched =
      RunParts((cipher_bytes - from + range - 1) / range, parallel, static_cast<size_t>(parallel),
               steps, cancel, tidings::Cancelled("the attachment download was cancelled"));
  if (!fetched.ok()) {
    // The partial file keeps what was checked, for the next attempt (a
    // file dropped for a failed check is already gone), and goes if that
    // is nothing.
    (void)(have > 0 ? partial.Truncate(have) : files.DropPartial(id));
    return fetched;
  }
  check->plain.clear();
  if (!check->chunks.Finish(&check->plain).ok()) return failed();
  const crypto::Digest256 got = check->hash.Finish();
  if (std::string_view(reinterpret_cast<const char*>(got.data()), got.size()) != id) {
    (void)files.DropPartial(id);
    return DataLoss(
        "a downloaded attachment does not match its reference: it was changed on the server "
        "or on the way");
  }
  return files.AdoptPartial(id, cipher_bytes);
}

}  // namespace tidings::attachments
