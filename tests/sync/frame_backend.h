// An in-process sealed-log server for end-to-end tests and benchmarks: one
// total order per log, dedupe by frame id, a per-user device directory,
// senders authenticated as on Chime (or not, as on DynamoDB), newest-first
// pages. No plaintext path. Hooks let a test fail, watch or tamper with
// requests.
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sync/backend.h"

namespace tidings::testing {

struct FrameServer {
  bool authenticate = true;  // Chime-like; false: DynamoDB-like
  std::map<std::string, std::vector<sync::Frame>> logs;
  std::map<std::string, std::set<std::string>> members;  // log -> users
  std::map<std::string, std::vector<std::string>> directory;
  uint64_t time = 1;
  // Server time between two frames: a second, so the 5 s a re-read reads
  // past its share is a few frames, as on a real server.
  uint64_t step_ms = 1'000;

  std::string AllBytes() const {
    std::string all;
    for (const auto& [id, frames] : logs) {
      for (const auto& f : frames) all += f.id + f.bytes;
    }
    return all;
  }
};

class FrameBackend final : public sync::Backend {
 public:
  FrameBackend(FrameServer* server, std::string user) : server_(server), user_(std::move(user)) {}
  std::string_view name() const override { return name_; }
  std::string name_ = "frames";
  size_t max_frame_bytes_ = 3072;
  std::function<void()> before_push;  // runs once, at the next PushFrames
  std::function<void()> before_pull;  // runs at every PullFrames
  size_t max_batch() const override { return 10; }
  Result<std::string> EnsureConversation(const engine::Conversation&) override {
    return Unimplemented("plaintext");
  }
  Result<std::vector<sync::PushAck>> Push(const std::string&,
                                          std::span<const engine::Operation>) override {
    return Unimplemented("plaintext");
  }
  Result<sync::PullPage> Pull(const std::string&, std::string_view, size_t) override {
    return Unimplemented("plaintext");
  }
  Result<std::vector<std::string>> ListConversations() override {
    return std::vector<std::string>{};
  }
  size_t max_frame_bytes() const override { return max_frame_bytes_; }
  bool authenticates_senders() const override { return server_->authenticate; }
  Result<std::string> EnsureLog(const sync::SealedLog& log) override {
    if (fail_pushes) return Unavailable("the test's network is down");
    server_->members[log.log_id].insert(log.members.begin(), log.members.end());
    return log.log_id;
  }
  Result<std::vector<sync::PushAck>> PushFrames(const std::string& log_id,
                                                std::span<const sync::Frame> frames) override {
    if (fail_pushes) return Unavailable("the test's network is down");
    if (before_push) std::exchange(before_push, nullptr)();
    std::vector<sync::PushAck> acks;
    auto& log = server_->logs[log_id];
    for (const auto& f : frames) {
      if (f.bytes.size() > max_frame_bytes()) return InvalidArgument("frame too large");
      bool dup =
          std::any_of(log.begin(), log.end(), [&](const sync::Frame& g) { return g.id == f.id; });
      if (!dup) {
        sync::Frame stored = f;
        stored.sender = server_->authenticate ? user_ : "";
        stored.server_time_ms = server_->time;
        server_->time += server_->step_ms;
        stored.remote_id = "r" + std::to_string(stored.server_time_ms);
        log.push_back(std::move(stored));
      }
      acks.push_back({});
    }
    return acks;
  }
  Result<sync::FramePage> PullFrames(const std::string& log_id, std::string_view cursor,
                                     size_t limit) override {
    if (before_pull) before_pull();
    sync::FramePage page;
    const auto& log = server_->logs[log_id];
    size_t from = cursor.empty() ? 0 : std::stoul(std::string(cursor));
    for (size_t i = from; i < std::min(log.size(), from + limit); ++i)
      page.frames.push_back(log[i]);
    page.next_cursor = std::to_string(from + page.frames.size());
    page.has_more = from + page.frames.size() < log.size();
    return page;
  }
  Result<sync::FramePage> PullFrameHistory(const std::string& log_id, std::string_view before,
                                           size_t limit) override {
    if (before_pull) before_pull();
    ++history_pulls;
    sync::FramePage page;
    const auto& log = server_->logs[log_id];
    const size_t to = before.empty() ? log.size() : std::stoul(std::string(before));
    const size_t most = limit * history_overfill;
    const size_t from = to > most ? to - most : 0;
    page.frames.assign(log.begin() + static_cast<ptrdiff_t>(from),
                       log.begin() + static_cast<ptrdiff_t>(to));
    page.next_cursor = std::to_string(from);
    page.has_more = from > 0;
    return page;
  }
  size_t history_pulls = 0;
  // Pages of this many times the limit, as a DynamoDB item returns a whole push.
  size_t history_overfill = 1;
  Result<std::vector<std::string>> ListLogs() override {
    std::vector<std::string> out;
    for (const auto& [id, users] : server_->members) {
      if (users.count(user_)) out.push_back(id);
    }
    return out;
  }
  Status PublishDevice(std::string_view record) override {
    auto& mine = server_->directory[user_];
    if (std::find(mine.begin(), mine.end(), record) == mine.end()) mine.emplace_back(record);
    return Status::Ok();
  }
  Result<std::vector<std::string>> FetchDevices(const std::string& user) override {
    return server_->directory[user];
  }
  // An attacker's raw append: any bytes, as this backend's user.
  void Inject(const std::string& log_id, sync::Frame f) {
    f.sender = server_->authenticate ? user_ : f.sender;
    f.server_time_ms = server_->time;
    server_->time += server_->step_ms;
    server_->logs[log_id].push_back(std::move(f));
  }
  bool fail_pushes = false;

 private:
  FrameServer* server_;
  std::string user_;
};

}  // namespace tidings::testing
