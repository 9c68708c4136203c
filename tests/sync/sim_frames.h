// Devices that move sealed-log frames through SimBackends, as a device's sync
// does minus the cryptography: an outbox pushed until acknowledged (a retry
// reuses the ids), a cursor per log, and each frame kept once, in the order
// first pulled. Simulations and tests drive them over the faulty network and
// check what every device saw. Used only by tests.
#pragma once

#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "sim_backend.h"

namespace tidings::sim {

class FrameDevice {
 public:
  FrameDevice(SimWorld* world, int replica, std::string user)
      : world_(world), replica_(replica), backend_(world, replica, std::move(user)) {}

  SimBackend& backend() { return backend_; }
  const std::string& user() const { return backend_.user(); }

  // Follows the log: Sync makes sure it exists with these members and pulls it.
  void Follow(const sync::SealedLog& log) {
    LogState& state = logs_[log.log_id];
    if (state.log.members != log.members) state.ensured = false;  // members to add
    state.log = log;
  }
  // Queues a frame for the log (which it then follows); Sync pushes it.
  void Send(const sync::SealedLog& log, sync::Frame frame) {
    Follow(log);
    logs_[log.log_id].outbox.push_back(std::move(frame));
  }

  // One round for every followed log: EnsureLog until it succeeded, the
  // outbox in batches of max_batch(), then pages until there are no more.
  // Stops at the first failure and returns it; nothing is lost (the outbox
  // keeps what was not acknowledged, the cursor what was not pulled), so the
  // caller runs another round later. A frame the server refuses for good
  // leaves the outbox and is counted in refused().
  Status Sync() {
    for (auto& [id, state] : logs_) TIDINGS_RETURN_IF_ERROR(SyncLog(state));
    return Status::Ok();
  }

  // The log's frames in the order first pulled, each once (by writer and id
  // where the server authenticates writers, by id otherwise).
  const std::vector<sync::Frame>& frames(const std::string& log_id) const {
    static const std::vector<sync::Frame> kNone;
    auto it = logs_.find(log_id);
    return it == logs_.end() ? kNone : it->second.frames;
  }
  // Undecodable items the backend skipped (FramePage::skipped), repeats included.
  uint64_t skipped(const std::string& log_id) const {
    auto it = logs_.find(log_id);
    return it == logs_.end() ? 0 : it->second.skipped;
  }
  uint64_t refused() const { return refused_; }
  bool follows(const std::string& log_id) const { return logs_.count(log_id) > 0; }
  bool idle() const {
    for (const auto& [id, state] : logs_) {
      if (!state.ensured || !state.outbox.empty()) return false;
    }
    return true;
  }

 private:
  struct LogState {
    sync::SealedLog log;
    bool ensured = false;
    std::vector<sync::Frame> outbox;
    std::string cursor;
    std::vector<sync::Frame> frames;
    std::set<std::string> keys;
    uint64_t skipped = 0;
  };

  // The process died holding the answer (a fault): it is lost.
  Status Died() {
    if (!world_->crashing.erase(replica_)) return Status::Ok();
    return Cancelled("the device died holding the answer");
  }

  Status SyncLog(LogState& state) {
    if (!state.ensured) {
      auto made = backend_.EnsureLog(state.log);
      TIDINGS_RETURN_IF_ERROR(made.status());
      state.ensured = true;
    }
    while (!state.outbox.empty()) TIDINGS_RETURN_IF_ERROR(PushBatch(state));
    for (int page = 0; page < 10'000; ++page) {
      auto got = backend_.PullFrames(state.log.log_id, state.cursor, 4);
      TIDINGS_RETURN_IF_ERROR(got.status());
      TIDINGS_RETURN_IF_ERROR(Died());
      for (auto& f : got->frames) {
        if (state.keys.insert(f.sender + "\n" + f.id).second) state.frames.push_back(std::move(f));
      }
      state.skipped += got->skipped;
      state.cursor = got->next_cursor;
      if (!got->has_more) return Status::Ok();
    }
    return Internal("a pull that never ends");
  }

  // Pushes the first max_batch() frames of the outbox; acknowledged and
  // refused ones leave it. A transient per-frame error ends the round.
  Status PushBatch(LogState& state) {
    const size_t n = std::min(backend_.max_batch(), state.outbox.size());
    auto acks = backend_.PushFrames(state.log.log_id, std::span(state.outbox.data(), n));
    TIDINGS_RETURN_IF_ERROR(acks.status());
    TIDINGS_RETURN_IF_ERROR(Died());
    Status first_transient = Status::Ok();
    std::vector<sync::Frame> kept;
    for (size_t i = 0; i < n; ++i) {
      const Status& s = (*acks)[i].status;
      if (!s.ok() && sync::Classify(s) == sync::ErrorClass::kTransient) {
        if (first_transient.ok()) first_transient = s;
        kept.push_back(std::move(state.outbox[i]));
      } else if (!s.ok()) {
        ++refused_;
      }
    }
    for (size_t i = n; i < state.outbox.size(); ++i) kept.push_back(std::move(state.outbox[i]));
    state.outbox = std::move(kept);
    return first_transient;
  }

  SimWorld* world_;
  int replica_;
  SimBackend backend_;
  std::map<std::string, LogState> logs_;
  uint64_t refused_ = 0;
};

// Syncs every device, round after round (two simulated minutes apart), until
// every outbox is empty and every device saw the same frames of each log it
// follows - the server's order - or `rounds` pass. Run it after healing (no
// faults, no partition, delayed requests delivered). Returns "" or what did
// not settle.
inline std::string SyncUntilQuiet(SimWorld& world, std::span<FrameDevice* const> devices,
                                  int rounds = 20) {
  std::string last;
  for (int round = 0; round < rounds; ++round) {
    world.now_ms += 120'000;
    last.clear();
    for (FrameDevice* d : devices) {
      if (Status s = d->Sync(); !s.ok()) last = d->user() + ": " + s.ToString();
    }
    if (!last.empty()) continue;
    bool quiet = true;
    for (FrameDevice* d : devices) quiet = quiet && d->idle();
    for (const auto& [log_id, log] : world.server.sealed_logs()) {
      // The server's order, each frame once (the first of an id written twice).
      std::vector<std::string> want;
      std::set<std::string> seen_keys;
      for (const auto& e : log.entries) {
        const std::string key =
            (world.authenticates_senders ? e.frame.sender : "") + "\n" + e.frame.id;
        if (!e.garbage && seen_keys.insert(key).second) want.push_back(key);
      }
      for (FrameDevice* d : devices) {
        if (!d->follows(log_id)) continue;
        std::vector<std::string> keys;
        for (const auto& f : d->frames(log_id)) keys.push_back(f.sender + "\n" + f.id);
        if (keys != want) {
          quiet = false;
          last = d->user() + " saw another order of " + log_id;
        }
      }
    }
    if (quiet) return "";
  }
  return last.empty() ? "outboxes not empty after " + std::to_string(rounds) + " rounds" : last;
}

}  // namespace tidings::sim
