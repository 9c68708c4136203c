// What this device knows about one sealed log on one backend: the
// conversation it carries, its epochs and their keys, the current epoch, the
// pull cursor, frames waiting for a key, and counters. Persisted as one
// record in the store's sync state ("e2e/<backend>/log/<log id>"), written
// in the same atomic batch as the operations a page merged.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "crypto/secret_key.h"
#include "sync/backend.h"
#include "sync/e2e/frame.h"

namespace tidings::e2e {

struct EpochId {
  uint64_t number = 0;
  std::string sharer;  // device id that made the key
  auto operator<=>(const EpochId&) const = default;
};

struct Epoch {
  EpochId id;
  crypto::SecretKey key;
  EpochInfo info;
  std::vector<std::string> delivered;  // devices known to hold the key, sorted
};

// A frame that cannot open yet (its epoch key has not arrived), with the
// epoch that was current where it sits in the log: membership is judged as
// of there when it opens.
// A frame that opened and verified but holds an operation of a wire version
// newer than this build reads is kept too (`too_new`), encrypted as it came,
// and opened again by the first build that reads more (LogState::reader).
struct PendingFrame {
  sync::Frame frame;
  EpochId current_at;
  bool too_new = false;
};

struct LogState {
  std::string log_id;
  std::string conversation_id;   // empty until a key share to this device names it
  crypto::SecretKey log_secret;  // invalid until then
  std::map<EpochId, Epoch> epochs;
  std::vector<EpochId> chain;  // the current epoch after each accepted new epoch, in log order
  std::string cursor;
  bool announced = false;       // this device's announcement is in the log
  bool on_server = false;       // made remotely (EnsureLog) or listed by the backend
  std::string ensured_members;  // members EnsureLog last made, "\n"-joined
  // A user the backend lists as able to read the log whom no epoch this
  // device opened names (noted in the status, not refused: see
  // Session::CheckLogMembers).
  std::string stranger;
  std::string log_creator;  // as the backend reported (Chime), empty elsewhere
  std::vector<std::string> log_members;
  std::vector<PendingFrame> pending;
  uint64_t rejected = 0;         // frames skipped as forged, foreign or broken
  std::string last_rejection;    // why the newest one was (no content)
  uint64_t dropped_pending = 0;  // waiting frames dropped over the bound
  // The newest operation version (wire::kOperationVersion) of the build that
  // last opened this log's frames: a build that reads newer ones opens the
  // `too_new` frames again. 0 in records from before it was kept.
  uint8_t reader = 0;
  // Sealed operations read but not kept, because no key this device holds
  // could judge them yet: all of them while the log is unbound (nothing
  // could open them, and a long history would overflow `pending`), and
  // those a re-read could not judge. The next key share that brings this
  // device a key while some wait is noted (replay_until: its FrameDigest;
  // replay_until_ms: its server time). Once the forward read reaches the
  // log's end (so the shares after it are open too), the log is read again
  // from its start up to that share and the few seconds after it
  // (`rereading`; docs/sync.md), and then goes on from resume_cursor.
  uint64_t unopened = 0;
  uint64_t unopened_top = 0;  // the highest epoch number one of them needs
  std::string replay_until;   // empty: nothing to read again
  uint64_t replay_until_ms = 0;
  bool rereading = false;
  bool past_share = false;  // the re-read met the share: it is in the window after it
  std::string resume_cursor;
  // The re-read's own epoch chain, as a read in log order with the keys
  // this device holds has it: the epoch current where it is (the newest
  // start of a held epoch it passed; none before the first).
  EpochId reread_current;

  size_t too_new() const;  // pending frames waiting for an upgrade

  const Epoch* current() const;
  bool bound() const { return !conversation_id.empty(); }
};

// What names a frame across listings of a log: the hash of its place in
// the log (Frame::remote_id, when the backend has one) and its bytes, so a
// copy of a frame elsewhere in the log is another frame.
std::string FrameDigest(const sync::Frame& frame);

// One log's record. Holds key bytes: only the encrypted store may keep it;
// the caller wipes its copy after the write.
std::string EncodeLogState(const LogState& s);
Result<LogState> DecodeLogState(std::string_view bytes);

std::string LogStateKey(std::string_view backend, std::string_view log_id);
// conversation id -> its mode, for every backend: "plain", "e2e", or absent
// (never synced: new conversations become end-to-end).
std::string ModeKey(std::string_view conversation_id);
// conversation id -> the id of its sealed log on this backend.
std::string BindingKey(std::string_view backend, std::string_view conversation_id);
// Log ids of this backend this device knows, "\n"-joined.
std::string LogsKey(std::string_view backend);

// "e" + 32 hex: keyed BLAKE2b-128 of "tidings-log-v1" under the log secret.
std::string LogIdOf(const crypto::SecretKey& log_secret);

}  // namespace tidings::e2e
