// ReadAhead: the next page of a log, read on a thread of its own while the
// reconciler merges the page before it. A long pull then costs about the
// server's time or the merge's, whichever is more, rather than their sum
// (bench/RESULTS.md, "DynamoDB").
//
// The backend is still used by one thread at a time (sync/backend.h): the
// reconciler calls it neither between Start and Take nor after Start without
// a Take, and the destructor waits for a read in flight. So a stop during a
// pull waits for that one request, as a stop during any request does (the
// sync handle's stop grace, api/sync_handle.h, then cancels its transport).
// What the read throws (bad_alloc) Take throws, as a read made there would.
#pragma once

#include <functional>
#include <future>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "common/status.h"

namespace tidings::sync {

template <typename Page>
class ReadAhead {
 public:
  // The page after a cursor, from the backend.
  using Read = std::function<Result<Page>(std::string_view cursor)>;

  // enabled false: Start does nothing and every Take reads then.
  ReadAhead(Read read, bool enabled) : read_(std::move(read)), enabled_(enabled) {}
  ~ReadAhead() {
    if (reading_ && reading_->valid()) reading_->wait();
  }
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;

  // Begins reading the page after `cursor`, unless a read is in flight
  // already. With no thread to be had, the page is read by Take instead.
  void Start(std::string cursor) {
    if (!enabled_ || reading_) return;
    started_at_ = std::move(cursor);
    try {
      reading_ = std::async(std::launch::async, [this] { return read_(started_at_); });
    } catch (const std::system_error&) {
      reading_.reset();
    }
  }

  // Waits for a read in flight, if any, and drops its page (and what it
  // threw), so the caller may use the backend itself.
  void Drop() {
    if (!reading_) return;
    std::future<Result<Page>> read = std::move(*reading_);
    reading_.reset();
    read.wait();
  }

  // The page after `cursor`: the one Start read, when it started from
  // `cursor`, or else (a read started elsewhere is waited for and dropped)
  // one read now.
  Result<Page> Take(std::string_view cursor) {
    if (reading_) {
      std::future<Result<Page>> read = std::move(*reading_);
      reading_.reset();
      Result<Page> page = read.get();
      if (started_at_ == cursor) return page;
    }
    return read_(cursor);
  }

 private:
  Read read_;
  bool enabled_;
  std::string started_at_;
  std::optional<std::future<Result<Page>>> reading_;
};

}  // namespace tidings::sync
