// A user with valid credentials who bypasses Tidings and calls the server's
// API by hand (raw boto3 against DynamoDB, SendChannelMessage against Chime):
// what the forgery tests and the simulation throw at honest devices. Used
// only by tests.
//
// It meets no network faults and obeys only what the server itself enforces:
//   authenticating server (SimWorld::authenticates_senders, as Chime): its
//     frames carry its own user as sender; it reads and writes only logs it
//     is a member of (a log it makes, it is a member of: squatting); frame
//     ids are deduplicated per writer; it can change only its own frames
//     (UpdateChannelMessage); it has no device directory.
//   otherwise (as DynamoDB): it writes any bytes under any frame id - even an
//     id the log holds already - into any log whose id it knows, writes items
//     no backend can decode, overwrites any entry (an unconditional PutItem),
//     and publishes device records under its own user only (IAM's
//     dynamodb:LeadingKeys), though a record may claim any user.
// Frames may be of any size: the server's limit binds Tidings' clients, and a
// reader must cope with whatever a backend hands it.
#pragma once

#include <string>
#include <vector>

#include "sim_backend.h"

namespace tidings::sim {

class SimAdversary {
 public:
  SimAdversary(SimWorld* world, std::string user) : world_(world), user_(std::move(user)) {}

  const std::string& user() const { return user_; }

  // Makes the log (as its creator) or adds members to it, as EnsureLog does.
  Status EnsureLog(const std::string& log_id, const std::vector<std::string>& members) {
    return SimBackend::EnsureLogAs(*world_, user_, {.log_id = log_id, .members = members});
  }

  // Appends a frame with any id and bytes; returns the copy a reader gets
  // (Frame::sender empty where the server does not authenticate writers).
  // An authenticating server deduplicates by (writer, id): a second frame
  // under the same id is the first one again.
  Result<sync::Frame> Append(const std::string& log_id, const sync::Frame& frame) {
    TIDINGS_RETURN_IF_ERROR(SimBackend::Readable(*world_, user_, log_id).status());
    sync::Frame stored;
    if (world_->authenticates_senders) {
      stored = world_->server.AppendFrame(log_id, Sent(frame), user_, true, world_->now_ms);
    } else {
      world_->server.AppendRaw(log_id, Sent(frame), user_, false, world_->now_ms);
      stored = world_->server.sealed_log(log_id)->entries.back().frame;
      stored.sender.clear();
    }
    return stored;
  }

  // Appends an item no backend can decode (bad base64, a truncated frame
  // list): a pull skips it and counts it in FramePage::skipped.
  Status AppendGarbage(const std::string& log_id) {
    TIDINGS_RETURN_IF_ERROR(SimBackend::Readable(*world_, user_, log_id).status());
    world_->server.AppendRaw(log_id, {.id = "garbage", .bytes = "\x01garbage"}, user_, true,
                             world_->now_ms);
    return Status::Ok();
  }

  // Replaces the log's entry at `index` (0 = the first) with `frame`: any
  // entry where the server does not authenticate writers, only the
  // adversary's own where it does. Readers that pulled it before keep what
  // they saw.
  Status Overwrite(const std::string& log_id, size_t index, const sync::Frame& frame) {
    TIDINGS_ASSIGN_OR_RETURN(const SimLog* log, SimBackend::Readable(*world_, user_, log_id));
    if (index >= log->entries.size()) return NotFound("no entry " + std::to_string(index));
    if (world_->authenticates_senders && log->entries[index].frame.sender != user_) {
      return PermissionDenied("ForbiddenException: only a message's sender updates it");
    }
    world_->server.Overwrite(log_id, index, Sent(frame), user_, world_->now_ms);
    return Status::Ok();
  }

  // Publishes any bytes as a device record under the adversary's own user.
  // Unimplemented where the server authenticates writers (no directory).
  Status PublishRecord(const std::string& record) {
    if (world_->authenticates_senders) return SimBackend::NoDirectory();
    world_->server.PublishDevice(user_, record);
    return Status::Ok();
  }

 private:
  SimWorld* world_;
  std::string user_;
};

}  // namespace tidings::sim
