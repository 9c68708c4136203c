#include "sync/core/read_ahead.h"

#include <system_error>
#include <utility>

namespace tidings::sync {

ReadAhead::ReadAhead(Backend* backend, const std::string& conversation_id, size_t limit,
                     bool enabled)
    : backend_(backend), conversation_id_(conversation_id), limit_(limit), enabled_(enabled) {}

ReadAhead::~ReadAhead() {
  if (reading_) reading_->wait();
}

void ReadAhead::Start(std::string cursor) {
  if (!enabled_ || reading_) return;
  started_at_ = std::move(cursor);
  try {
    reading_ = std::async(std::launch::async,
                          [this] { return backend_->Pull(conversation_id_, started_at_, limit_); });
  } catch (const std::system_error&) {
    reading_.reset();  // no thread now: Take reads the page itself
  }
}

Result<PullPage> ReadAhead::Take(std::string_view cursor) {
  if (reading_) {
    Result<PullPage> page = reading_->get();
    reading_.reset();
    if (started_at_ == cursor) return page;
  }
  return backend_->Pull(conversation_id_, cursor, limit_);
}

}  // namespace tidings::sync
