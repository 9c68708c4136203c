// The simulator's server: what a remote stores, without the network in front
// of it (sim_backend.h adds that). Plaintext conversations are per-conversation
// operation logs; end-to-end conversations are sealed logs of opaque frames
// under an opaque log id, plus a per-user device directory. Used only by tests.
#pragma once

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "sync/backend.h"

namespace tidings::sim {

// One entry of a sealed log.
struct SimEntry {
  sync::Frame frame;  // with sender (always the writer's user), server time and remote id
  // An item no backend could decode (a writer bypassing Tidings): a pull
  // skips it and counts it in FramePage::skipped.
  bool garbage = false;
};

struct SimLog {
  std::string creator;                   // the user whose EnsureLog made it
  std::vector<std::string> members;      // in the order they were added; never removed
  std::vector<SimEntry> entries;         // the one log order every reader sees
  std::map<std::string, size_t> by_key;  // dedup key -> index in entries

  bool IsMember(const std::string& user) const {
    return std::find(members.begin(), members.end(), user) != members.end();
  }
};

class SimServer {
 public:
  // ---- Plaintext conversations ----

  // Returns the stored copy (first acceptance wins: idempotent by op id).
  const engine::Operation& Apply(const std::string& conv, engine::Operation op, uint64_t now_ms) {
    auto& seen = seen_[conv];
    auto it = seen.find(op.op_id);
    auto& log = log_[conv];
    if (it != seen.end()) return log[it->second];
    op.conversation_id = conv;
    op.server_time_ms = now_ms;
    op.remote_id = "srv-" + std::to_string(log.size());
    seen[op.op_id] = log.size();
    log.push_back(std::move(op));
    return log.back();
  }
  const std::map<std::string, std::vector<engine::Operation>>& logs() const { return log_; }

  // ---- Sealed logs ----

  // Makes the log if it is new (`user` is its creator) and adds the members
  // it lacks, in order. Never removes a member.
  void EnsureLog(const std::string& log_id, const std::string& user,
                 const std::vector<std::string>& members) {
    auto [it, made] = sealed_.try_emplace(log_id);
    if (made) it->second.creator = user;
    for (const auto& m : members) {
      if (!it->second.IsMember(m)) it->second.members.push_back(m);
    }
  }

  // Appends `frame` as written by `writer` and returns the stored copy. An
  // entry with the same dedup key wins: nothing is stored and that entry is
  // returned. The key is the frame id, scoped to the writer when
  // `per_writer` (Chime's ClientRequestToken is per sender). The log exists.
  const sync::Frame& AppendFrame(const std::string& log_id, sync::Frame frame,
                                 const std::string& writer, bool per_writer, uint64_t now_ms) {
    SimLog& log = sealed_.at(log_id);
    const std::string key = per_writer ? writer + "\n" + frame.id : frame.id;
    if (auto it = log.by_key.find(key); it != log.by_key.end()) {
      return log.entries[it->second].frame;
    }
    log.by_key[key] = log.entries.size();
    return Store(log, std::move(frame), writer, now_ms, false);
  }
  // Appends without deduplication, as a raw write of a whole item would
  // (DynamoDB: any member can put any item), or an undecodable item.
  void AppendRaw(const std::string& log_id, sync::Frame frame, const std::string& writer,
                 bool garbage, uint64_t now_ms) {
    Store(sealed_.at(log_id), std::move(frame), writer, now_ms, garbage);
  }
  // Replaces the entry at `index` (an unconditional put over an existing item).
  void Overwrite(const std::string& log_id, size_t index, sync::Frame frame,
                 const std::string& writer, uint64_t now_ms) {
    SimEntry& e = sealed_.at(log_id).entries.at(index);
    const std::string remote_id = e.frame.remote_id;
    frame.sender = writer;
    frame.server_time_ms = now_ms;
    frame.remote_id = remote_id;
    e = {std::move(frame), false};
  }

  // Null if no EnsureLog made it.
  const SimLog* sealed_log(const std::string& log_id) const {
    auto it = sealed_.find(log_id);
    return it == sealed_.end() ? nullptr : &it->second;
  }
  const std::map<std::string, SimLog>& sealed_logs() const { return sealed_; }

  // The logs `user` was made a member of.
  std::vector<std::string> LogsOf(const std::string& user) const {
    std::vector<std::string> out;
    for (const auto& [id, log] : sealed_) {
      if (log.IsMember(user)) out.push_back(id);
    }
    return out;
  }

  // ---- The device directory: records under their user, as only that user
  // could write them (the caller checks who may) ----

  void PublishDevice(const std::string& user, const std::string& record) {
    auto& records = devices_[user];
    if (std::find(records.begin(), records.end(), record) == records.end()) {
      records.push_back(record);
    }
  }
  std::vector<std::string> Devices(const std::string& user) const {
    auto it = devices_.find(user);
    return it == devices_.end() ? std::vector<std::string>{} : it->second;
  }

 private:
  static const sync::Frame& Store(SimLog& log, sync::Frame frame, const std::string& writer,
                                  uint64_t now_ms, bool garbage) {
    frame.sender = writer;
    frame.server_time_ms = now_ms;
    frame.remote_id = "frame-" + std::to_string(log.entries.size());
    log.entries.push_back({std::move(frame), garbage});
    return log.entries.back().frame;
  }

  std::map<std::string, std::vector<engine::Operation>> log_;
  std::map<std::string, std::map<std::string, size_t>> seen_;
  std::map<std::string, SimLog> sealed_;
  std::map<std::string, std::vector<std::string>> devices_;
};

}  // namespace tidings::sim
