// The simulator's network and backend: a seeded network in front of the
// in-memory server (sim_server.h) that drops, delays (applies late),
// duplicates and fails requests, loses responses after the server committed,
// and partitions replicas - for plaintext operations and sealed-log frames
// alike. The server authenticates frame writers as Chime does, or not, as
// DynamoDB does (SimWorld::authenticates_senders), so a simulation runs both
// ways. SimAdversary writes what a user with valid credentials can write by
// hand. Used only by tests.
#pragma once

#include <algorithm>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "sim_server.h"
#include "sync/backend.h"

namespace tidings::sim {

struct Faults {
  int drop = 0;           // percent: request lost, nothing applied
  int server_error = 0;   // percent: 503
  int throttle = 0;       // percent: throttled (per op or whole request) with retry-after
  int lose_response = 0;  // percent: applied, but the client times out
  int delay = 0;          // percent: applied later, the client times out
  int duplicate = 0;      // percent: applied twice; a frame page repeats frames
  int crash = 0;          // percent: the client process dies with the answer in hand
  int auth = 0;           // percent: credentials expired (401)
};

// The server refuses these operations for good (a validation error): a send
// whose body contains '!'. Deterministic, so every retry is refused too.
// Only sends are refused: a refused edit would stay applied on its own
// device (the store does not roll local edits back), which is a documented
// local divergence, not a convergence failure (docs/sync.md).
inline bool Rejected(const engine::Operation& op) {
  return op.kind == engine::OpKind::kSend && op.body.find('!') != std::string::npos;
}

// Largest frame the simulator's server carries: Chime's (4 KB of message
// Content hold 3072 bytes after base64).
inline constexpr size_t kSimMaxFrameBytes = 3072;

// 1-64 characters of [A-Za-z0-9._-] (sync::Frame::id).
inline bool ValidFrameId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

// "e" + 32 lowercase hex digits (sync::SealedLog::log_id).
inline bool ValidLogId(std::string_view id) {
  return id.size() == 33 && id[0] == 'e' && std::all_of(id.begin() + 1, id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Why the server refuses this frame for good (every retry too), or OK.
inline Status CheckFrame(const sync::Frame& frame) {
  if (!ValidFrameId(frame.id)) {
    return InvalidArgument("ValidationException: a frame id is 1-64 characters of [A-Za-z0-9._-]");
  }
  if (frame.bytes.size() > kSimMaxFrameBytes) {
    return TooLarge("ValidationException: a frame of " + std::to_string(frame.bytes.size()) +
                    " bytes; this server carries at most " + std::to_string(kSimMaxFrameBytes));
  }
  return Status::Ok();
}

// What a client sends of a frame: its id and bytes; the server sets the rest.
inline sync::Frame Sent(const sync::Frame& frame) { return {.id = frame.id, .bytes = frame.bytes}; }

// A request the network holds and the server applies later.
struct DelayedPush {
  uint64_t deliver_at;
  std::string conv;  // operations: their conversation
  std::vector<engine::Operation> ops;
  std::string log_id;  // frames: their log and writer
  std::vector<sync::Frame> frames;
  std::string writer;
};

struct SimWorld {
  explicit SimWorld(uint64_t seed) : rng(seed) {}
  std::mt19937_64 rng;
  uint64_t now_ms = 1'700'000'000'000;
  SimServer server;
  Faults faults;
  // Sealed logs: true, as Chime - Frame::sender is the writer's user, only a
  // log's members read, write and add members to it (its creator is one),
  // frame ids are deduplicated per writer, pages name the log's creator and
  // members, and there is no device directory (records travel as frames).
  // False, as DynamoDB - no sender, anyone who knows a log id reads and writes
  // it, frame ids are deduplicated per log, and each user publishes device
  // records under their own user.
  bool authenticates_senders = false;
  std::set<int> partitioned;
  // Replicas whose process "died" mid-sync: set in a backend call (which a
  // pull's read-ahead makes on its own thread) while the replica's
  // cancellation predicate reads it.
  class Crashing {
   public:
    void insert(int replica) {
      std::lock_guard<std::mutex> lock(mu_);
      replicas_.insert(replica);
    }
    size_t count(int replica) const {
      std::lock_guard<std::mutex> lock(mu_);
      return replicas_.count(replica);
    }
    size_t erase(int replica) {
      std::lock_guard<std::mutex> lock(mu_);
      return replicas_.erase(replica);
    }

   private:
    mutable std::mutex mu_;
    std::set<int> replicas_;
  } crashing;
  std::optional<int64_t> retry_after;  // of the last whole-request failure
  std::vector<DelayedPush> delayed;
  uint64_t requests = 0;
  uint64_t frame_history_pulls = 0;  // PullFrameHistory calls (previews of a re-read)

  bool Roll(int percent) { return percent > 0 && static_cast<int>(rng() % 100) < percent; }
  void DeliverDelayed(bool all) {
    for (auto it = delayed.begin(); it != delayed.end();) {
      if (all || it->deliver_at <= now_ms) {
        for (auto& op : it->ops) server.Apply(it->conv, op, now_ms);
        for (auto& f : it->frames) {
          server.AppendFrame(it->log_id, f, it->writer, authenticates_senders, now_ms);
        }
        it = delayed.erase(it);
      } else {
        ++it;
      }
    }
  }
};

class SimBackend final : public sync::Backend {
 public:
  // Acts for `user`: the writer of its frames, the owner of the device
  // records it publishes, whose logs ListLogs lists. Sealed-log and directory
  // calls fail (FailedPrecondition) on a backend made without a user.
  SimBackend(SimWorld* world, int replica, std::string user = {})
      : world_(world), replica_(replica), user_(std::move(user)) {}

  const std::string& user() const { return user_; }
  std::string_view name() const override { return "sim"; }
  size_t max_batch() const override { return 5; }

  Result<std::string> EnsureConversation(const engine::Conversation& c) override {
    TIDINGS_RETURN_IF_ERROR(Network());
    return "sim:" + c.id;
  }

  Result<std::vector<sync::PushAck>> Push(const std::string& conv,
                                          std::span<const engine::Operation> ops) override {
    TIDINGS_RETURN_IF_ERROR(Network());
    if (auto throttled = Throttled(ops.size())) return std::move(*throttled);
    // A refused operation fails the whole request half of the time (the
    // reconciler must find it by retrying one at a time) or only its own ack.
    const bool refuse_whole = world_->rng() % 2 == 0;
    if (refuse_whole && std::any_of(ops.begin(), ops.end(), Rejected)) {
      return InvalidArgument("ValidationException: invalid operation in batch");
    }
    if (world_->Roll(world_->faults.delay)) {
      world_->delayed.push_back({.deliver_at = world_->now_ms + 1 + world_->rng() % 5000,
                                 .conv = conv,
                                 .ops = std::vector<engine::Operation>(ops.begin(), ops.end())});
      return DeadlineExceeded("request timed out");
    }
    std::vector<sync::PushAck> acks;
    for (const auto& op : ops) {
      if (Rejected(op)) {
        sync::PushAck refused;
        refused.status = InvalidArgument("ValidationException: invalid operation");
        acks.push_back(std::move(refused));
        continue;
      }
      const auto& stored = world_->server.Apply(conv, op, world_->now_ms);
      if (world_->Roll(world_->faults.duplicate)) world_->server.Apply(conv, op, world_->now_ms);
      sync::PushAck ack;
      ack.remote_id = stored.remote_id;
      ack.server_time_ms = stored.server_time_ms;
      acks.push_back(std::move(ack));
    }
    return Answer(std::move(acks));
  }

  Result<sync::PullPage> Pull(const std::string& conv, std::string_view cursor,
                              size_t limit) override {
    TIDINGS_RETURN_IF_ERROR(Network());
    size_t from = cursor.empty() ? 0 : std::stoul(std::string(cursor));
    sync::PullPage page;
    auto it = world_->server.logs().find(conv);
    size_t size = it == world_->server.logs().end() ? 0 : it->second.size();
    size_t to = std::min(size, from + limit);
    for (size_t i = from; i < to; ++i) page.ops.push_back(it->second[i]);
    // Responses may arrive reordered: the merge must not care.
    std::shuffle(page.ops.begin(), page.ops.end(), world_->rng);
    page.next_cursor = std::to_string(to);
    page.has_more = to < size;
    if (world_->Roll(world_->faults.crash)) world_->crashing.insert(replica_);
    return page;
  }

  // Positions are log indexes, as the forward cursor's: the newest page is
  // [size - limit, size) with the forward cursor `size`; an older page before
  // b is [b - limit, b).
  Result<sync::HistoryPage> PullHistory(const std::string& conv, std::string_view before,
                                        size_t limit) override {
    TIDINGS_RETURN_IF_ERROR(Network());
    if (limit == 0) return InvalidArgument("a pull asks for at least one operation");
    auto it = world_->server.logs().find(conv);
    const size_t size = it == world_->server.logs().end() ? 0 : it->second.size();
    sync::HistoryPage page;
    size_t to = size;
    if (before.empty()) {
      page.forward_cursor = std::to_string(size);
    } else {
      TIDINGS_ASSIGN_OR_RETURN(to, ParseCursor(before, size));
      if (to == 0) return InvalidArgument("a history position at the beginning of the log");
    }
    const size_t from = to > limit ? to - limit : 0;
    for (size_t i = from; i < to; ++i) page.ops.push_back(it->second[i]);
    std::shuffle(page.ops.begin(), page.ops.end(), world_->rng);
    if (from > 0) page.before = std::to_string(from);
    if (world_->Roll(world_->faults.crash)) world_->crashing.insert(replica_);
    return page;
  }

  Result<std::vector<std::string>> ListConversations() override {
    TIDINGS_RETURN_IF_ERROR(Network());
    std::vector<std::string> out;
    for (const auto& [c, log] : world_->server.logs()) out.push_back(c);
    return out;
  }

  std::optional<int64_t> last_retry_after_ms() const override { return world_->retry_after; }

  // ---- Sealed logs and the device directory ----

  size_t max_frame_bytes() const override { return kSimMaxFrameBytes; }
  bool authenticates_senders() const override { return world_->authenticates_senders; }

  Result<std::string> EnsureLog(const sync::SealedLog& log) override {
    TIDINGS_RETURN_IF_ERROR(Network());
    TIDINGS_RETURN_IF_ERROR(EnsureLogAs(*world_, user_, log));
    if (world_->Roll(world_->faults.lose_response)) {
      return DeadlineExceeded("response lost after the server committed");
    }
    return "sim:" + log.log_id;
  }

  Result<std::vector<sync::PushAck>> PushFrames(const std::string& log_id,
                                                std::span<const sync::Frame> frames) override {
    TIDINGS_RETURN_IF_ERROR(Network());
    TIDINGS_RETURN_IF_ERROR(Readable(*world_, user_, log_id).status());
    if (auto throttled = Throttled(frames.size())) return std::move(*throttled);
    if (world_->Roll(world_->faults.delay)) {
      DelayedPush later{.deliver_at = world_->now_ms + 1 + world_->rng() % 5000,
                        .log_id = log_id,
                        .writer = user_};
      for (const auto& f : frames) {
        if (CheckFrame(f).ok()) later.frames.push_back(Sent(f));
      }
      world_->delayed.push_back(std::move(later));
      return DeadlineExceeded("request timed out");
    }
    std::vector<sync::PushAck> acks;
    for (const auto& f : frames) {
      sync::PushAck ack;
      ack.status = CheckFrame(f);
      if (ack.status.ok()) {
        const sync::Frame& stored = Append(log_id, f);
        ack.remote_id = stored.remote_id;
        ack.server_time_ms = stored.server_time_ms;
        if (world_->Roll(world_->faults.duplicate)) Append(log_id, f);
      }
      acks.push_back(std::move(ack));
    }
    return Answer(std::move(acks));
  }

  Result<sync::FramePage> PullFrames(const std::string& log_id, std::string_view cursor,
                                     size_t limit) override {
    TIDINGS_RETURN_IF_ERROR(Network());
    TIDINGS_ASSIGN_OR_RETURN(const SimLog* log, Readable(*world_, user_, log_id));
    if (limit == 0) return InvalidArgument("a pull asks for at least one frame");
    TIDINGS_ASSIGN_OR_RETURN(size_t from, ParseCursor(cursor, log->entries.size()));
    // A page may start with frames already seen (a request answered twice, a
    // page boundary read again): FramePage allows it, readers deduplicate.
    if (from > 0 && world_->Roll(world_->faults.duplicate)) {
      from -= 1 + world_->rng() % std::min<size_t>(from, 2);
    }
    sync::FramePage page;
    size_t i = from;
    for (; i < log->entries.size() && page.frames.size() < limit; ++i) {
      const SimEntry& entry = log->entries[i];
      if (entry.garbage) {
        page.skipped++;
        continue;
      }
      page.frames.push_back(entry.frame);
      if (!world_->authenticates_senders) page.frames.back().sender.clear();
    }
    page.next_cursor = std::to_string(i);
    page.has_more = i < log->entries.size();
    if (world_->authenticates_senders) {
      page.log_creator = log->creator;
      page.log_members = log->members;
    }
    if (world_->Roll(world_->faults.crash)) world_->crashing.insert(replica_);
    return page;
  }

  // Positions are entry indexes, as PullHistory's: the newest page ends at
  // the log's end, an older page before b ends at b.
  Result<sync::FramePage> PullFrameHistory(const std::string& log_id, std::string_view before,
                                           size_t limit) override {
    TIDINGS_RETURN_IF_ERROR(Network());
    TIDINGS_ASSIGN_OR_RETURN(const SimLog* log, Readable(*world_, user_, log_id));
    if (limit == 0) return InvalidArgument("a pull asks for at least one frame");
    world_->frame_history_pulls++;
    size_t to = log->entries.size();
    if (!before.empty()) {
      TIDINGS_ASSIGN_OR_RETURN(to, ParseCursor(before, to));
      if (to == 0) return InvalidArgument("a history position at the beginning of the log");
    }
    sync::FramePage page;
    size_t from = to;
    for (; from > 0 && page.frames.size() < limit; --from) {
      const SimEntry& entry = log->entries[from - 1];
      if (entry.garbage) {
        page.skipped++;
        continue;
      }
      page.frames.push_back(entry.frame);
      if (!world_->authenticates_senders) page.frames.back().sender.clear();
    }
    std::reverse(page.frames.begin(), page.frames.end());
    page.next_cursor = std::to_string(from);
    page.has_more = from > 0;
    if (world_->Roll(world_->faults.crash)) world_->crashing.insert(replica_);
    return page;
  }

  Result<std::vector<std::string>> ListLogs() override {
    TIDINGS_RETURN_IF_ERROR(Network());
    TIDINGS_RETURN_IF_ERROR(HasUser(user_));
    return world_->server.LogsOf(user_);
  }

  Status PublishDevice(std::string_view record) override {
    TIDINGS_RETURN_IF_ERROR(Network());
    TIDINGS_RETURN_IF_ERROR(PublishAs(*world_, user_, record));
    if (world_->Roll(world_->faults.lose_response)) {
      return DeadlineExceeded("response lost after the server committed");
    }
    return Status::Ok();
  }

  Result<std::vector<std::string>> FetchDevices(const std::string& user) override {
    TIDINGS_RETURN_IF_ERROR(Network());
    if (world_->authenticates_senders) return NoDirectory();
    return world_->server.Devices(user);
  }

  // ---- What the server enforces, for SimBackend and SimAdversary alike ----

  static Status HasUser(const std::string& user) {
    if (!user.empty()) return Status::Ok();
    return FailedPrecondition("this SimBackend acts for no user: pass one to its constructor");
  }
  // The log, if `user` may read and write it: on an authenticating server
  // only its members may; otherwise anyone who knows its id.
  static Result<const SimLog*> Readable(const SimWorld& world, const std::string& user,
                                        const std::string& log_id) {
    TIDINGS_RETURN_IF_ERROR(HasUser(user));
    if (!ValidLogId(log_id)) return InvalidArgument("a log id is \"e\" + 32 lowercase hex digits");
    const SimLog* log = world.server.sealed_log(log_id);
    if (log == nullptr) return NotFound("no sealed log " + log_id + ": EnsureLog makes it");
    if (world.authenticates_senders && !log->IsMember(user)) {
      return PermissionDenied("ForbiddenException: " + user + " is not a member of log " + log_id);
    }
    return log;
  }
  static Status EnsureLogAs(SimWorld& world, const std::string& user, const sync::SealedLog& log) {
    TIDINGS_RETURN_IF_ERROR(HasUser(user));
    if (!ValidLogId(log.log_id)) {
      return InvalidArgument("a log id is \"e\" + 32 lowercase hex digits");
    }
    std::vector<std::string> members = log.members;
    if (world.authenticates_senders) {
      const SimLog* existing = world.server.sealed_log(log.log_id);
      if (existing != nullptr && !existing->IsMember(user)) {
        return PermissionDenied("ForbiddenException: " + user + " is not a member of log " +
                                log.log_id);
      }
      if (existing == nullptr) members.insert(members.begin(), user);  // Chime: the creator is one
    }
    world.server.EnsureLog(log.log_id, user, members);
    return Status::Ok();
  }
  static Status PublishAs(SimWorld& world, const std::string& user, std::string_view record) {
    if (world.authenticates_senders) return Status::Ok();  // records travel as frames
    TIDINGS_RETURN_IF_ERROR(HasUser(user));
    if (record.empty()) return InvalidArgument("an empty device record");
    world.server.PublishDevice(user, std::string(record));
    return Status::Ok();
  }
  static Status NoDirectory() {
    return Unimplemented(
        "this server authenticates frame senders: device records travel as announcement frames");
  }

 private:
  Status Network() {
    world_->requests++;
    world_->retry_after.reset();
    if (world_->partitioned.count(replica_)) return Unavailable("network unreachable (partition)");
    if (world_->Roll(world_->faults.drop)) return Unavailable("connection reset");
    if (world_->Roll(world_->faults.server_error)) {
      if (world_->rng() % 2) world_->retry_after = 1000;  // 503 with Retry-After
      return Unavailable("HTTP 503 from the server");
    }
    if (world_->Roll(world_->faults.auth)) return Unauthenticated("ExpiredTokenException");
    return Status::Ok();
  }

  // Throttled as a whole request or per item (each with a retry-after), or
  // not at all (nullopt).
  std::optional<Result<std::vector<sync::PushAck>>> Throttled(size_t items) {
    if (!world_->Roll(world_->faults.throttle)) return std::nullopt;
    const int64_t wait = 500 + static_cast<int64_t>(world_->rng() % 3000);
    if (world_->rng() % 2) {
      world_->retry_after = wait;
      return ResourceExhausted("ThrottlingException: rate exceeded");
    }
    std::vector<sync::PushAck> acks(items);
    for (auto& a : acks) {
      a.status = ResourceExhausted("ThrottlingException: rate exceeded");
      a.retry_after_ms = wait;
    }
    return acks;
  }

  // The server committed `acks`; the answer may still be lost, or the client
  // die holding it.
  Result<std::vector<sync::PushAck>> Answer(std::vector<sync::PushAck> acks) {
    if (world_->Roll(world_->faults.lose_response)) {
      return DeadlineExceeded("response lost after the server committed");
    }
    if (world_->Roll(world_->faults.crash)) world_->crashing.insert(replica_);
    return acks;
  }

  const sync::Frame& Append(const std::string& log_id, const sync::Frame& frame) {
    return world_->server.AppendFrame(log_id, Sent(frame), user_, world_->authenticates_senders,
                                      world_->now_ms);
  }

  static Result<size_t> ParseCursor(std::string_view cursor, size_t size) {
    if (cursor.empty()) return size_t{0};
    size_t at = 0;
    for (char c : cursor) {
      if (c < '0' || c > '9' || at > size) return InvalidArgument("not a cursor of this server");
      at = at * 10 + static_cast<size_t>(c - '0');
    }
    if (at > size) return InvalidArgument("not a cursor of this server");
    return at;
  }

  SimWorld* world_;
  int replica_;
  std::string user_;
};

}  // namespace tidings::sim
