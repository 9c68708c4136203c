// An in-process sealed-log server for the end-to-end benchmarks: one total
// order per log, dedupe by frame id, a per-user device directory, senders
// authenticated as on Chime. No plaintext path (the benchmarks that compare
// modes use the real servers). Same semantics as tests/sync/e2e_sync_test.cc.
#pragma once

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "sync/backend.h"

namespace bench_e2e {

struct FrameServer {
  std::map<std::string, std::vector<tidings::sync::Frame>> logs;
  std::map<std::string, std::set<std::string>> members;  // log -> users
  std::map<std::string, std::vector<std::string>> directory;
  uint64_t time = 1;
  uint64_t step_ms = 1;  // server time between two frames
};

class FrameBackend final : public tidings::sync::Backend {
 public:
  FrameBackend(FrameServer* server, std::string user) : server_(server), user_(std::move(user)) {}
  std::string_view name() const override { return "frames"; }
  size_t max_batch() const override { return 10; }
  tidings::Result<std::string> EnsureConversation(const tidings::engine::Conversation&) override {
    return tidings::Unimplemented("plaintext");
  }
  tidings::Result<std::vector<tidings::sync::PushAck>> Push(
      const std::string&, std::span<const tidings::engine::Operation>) override {
    return tidings::Unimplemented("plaintext");
  }
  tidings::Result<tidings::sync::PullPage> Pull(const std::string&, std::string_view,
                                                size_t) override {
    return tidings::Unimplemented("plaintext");
  }
  tidings::Result<std::vector<std::string>> ListConversations() override {
    return std::vector<std::string>{};
  }
  size_t max_frame_bytes() const override { return 3072; }
  bool authenticates_senders() const override { return true; }
  tidings::Result<std::string> EnsureLog(const tidings::sync::SealedLog& log) override {
    server_->members[log.log_id].insert(log.members.begin(), log.members.end());
    return log.log_id;
  }
  tidings::Result<std::vector<tidings::sync::PushAck>> PushFrames(
      const std::string& log_id, std::span<const tidings::sync::Frame> frames) override {
    std::vector<tidings::sync::PushAck> acks;
    auto& log = server_->logs[log_id];
    for (const auto& f : frames) {
      bool dup = std::any_of(log.begin(), log.end(), [&](const auto& g) { return g.id == f.id; });
      if (!dup) {
        tidings::sync::Frame stored = f;
        stored.sender = user_;
        stored.server_time_ms = server_->time;
        server_->time += server_->step_ms;
        stored.remote_id = "r" + std::to_string(stored.server_time_ms);
        log.push_back(std::move(stored));
      }
      acks.push_back({});
    }
    return acks;
  }
  tidings::Result<tidings::sync::FramePage> PullFrames(const std::string& log_id,
                                                       std::string_view cursor,
                                                       size_t limit) override {
    tidings::sync::FramePage page;
    const auto& log = server_->logs[log_id];
    size_t from = cursor.empty() ? 0 : std::stoul(std::string(cursor));
    for (size_t i = from; i < std::min(log.size(), from + limit); ++i) {
      page.frames.push_back(log[i]);
    }
    page.next_cursor = std::to_string(from + page.frames.size());
    page.has_more = from + page.frames.size() < log.size();
    return page;
  }
  // Positions are frame indexes: the page before `before` (the log's end
  // when empty).
  tidings::Result<tidings::sync::FramePage> PullFrameHistory(const std::string& log_id,
                                                             std::string_view before,
                                                             size_t limit) override {
    tidings::sync::FramePage page;
    const auto& log = server_->logs[log_id];
    const size_t to = before.empty() ? log.size() : std::stoul(std::string(before));
    const size_t from = to > limit ? to - limit : 0;
    page.frames.assign(log.begin() + static_cast<ptrdiff_t>(from),
                       log.begin() + static_cast<ptrdiff_t>(to));
    page.next_cursor = std::to_string(from);
    page.has_more = from > 0;
    return page;
  }
  tidings::Result<std::vector<std::string>> ListLogs() override {
    std::vector<std::string> out;
    for (const auto& [id, users] : server_->members) {
      if (users.count(user_)) out.push_back(id);
    }
    return out;
  }
  tidings::Status PublishDevice(std::string_view record) override {
    auto& mine = server_->directory[user_];
    if (std::find(mine.begin(), mine.end(), record) == mine.end()) mine.emplace_back(record);
    return tidings::Status::Ok();
  }
  tidings::Result<std::vector<std::string>> FetchDevices(const std::string& user) override {
    return server_->directory[user];
  }

 private:
  FrameServer* server_;
  std::string user_;
};

}  // namespace bench_e2e
