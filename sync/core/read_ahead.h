// ReadAhead: a conversation's next forward page, read on a thread of its own
// while the reconciler merges the page before it. A long pull then costs
// about the server's time or the merge's, whichever is more, rather than
// their sum (bench/RESULTS.md, "DynamoDB pull").
//
// The backend is still used by one thread at a time (sync/backend.h): the
// reconciler calls it neither between Start and Take nor after Start without
// a Take, and the destructor waits for a read in flight (Backend::Cancel, on
// shutdown, cuts it short).
#pragma once

#include <cstddef>
#include <future>
#include <optional>
#include <string>
#include <string_view>

#include "sync/backend.h"

namespace tidings::sync {

class ReadAhead {
 public:
  // enabled false: Start does nothing and every Take reads then.
  ReadAhead(Backend* backend, const std::string& conversation_id, size_t limit, bool enabled);
  ~ReadAhead();
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;

  // Begins reading the page after `cursor`. With no thread to be had, the
  // page is read by Take instead.
  void Start(std::string cursor);
  // The page after `cursor`: the one Start read, when it started from
  // `cursor`, or else (a read started elsewhere is waited for and dropped)
  // one read now.
  Result<PullPage> Take(std::string_view cursor);

 private:
  Backend* backend_;
  const std::string& conversation_id_;
  size_t limit_;
  bool enabled_;
  std::string started_at_;
  std::optional<std::future<Result<PullPage>>> reading_;
};

}  // namespace tidings::sync
