// Session: the end-to-end protocol of one store on one backend, sans I/O.
// The reconciler (sync/core) asks it for the frames to push - this device's
// announcement, key shares of a new epoch, re-shares to devices that
// appeared, sealed operations - and hands it every pulled page to open.
// docs/security.md has the design and the threat model.
//
// Opening a page, frame by frame in log order (the same order on every
// device, so every device makes the same decisions):
//   announcement  pins the device record, if the backend authenticated its
//                 sender as the record's user (Chime); a hint to refresh
//                 the directory otherwise (DynamoDB)
//   key share     opens the sealed epoch key addressed to this device, checks
//                 the signer's signature and membership, and binds the log
//                 to its conversation on first use
//   sealed op     checks the author device's signature, membership of the
//                 author's user in the epoch and in the conversation where
//                 the frame sits, decrypts, and checks the operation's ids
//                 and author against the frame's
// A frame whose epoch key has not arrived waits in the log state and opens
// when a share brings it; a log this device has no key for at all keeps
// none, and the share that binds it is where a re-read of the log from its
// start stops (LogState::replay_until). Anything forged, foreign or broken is skipped and
// counted (LogState::rejected), never merged, and never stops the log.
//
// Thread safety: one thread at a time (the reconciler's).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "engine/sync_log.h"
#include "sync/backend.h"
#include "sync/e2e/directory.h"
#include "sync/e2e/identity.h"
#include "sync/e2e/log_state.h"

namespace tidings::e2e {

// The records `user` published, as the backend authenticates them
// (Backend::FetchDevices). Empty function: the backend authenticates frame
// senders instead, and records come as announcements.
using FetchDevices = std::function<Result<std::vector<std::string>>(const std::string& user)>;

enum class Mode : uint8_t {
  kUnset = 0,   // never synced: new conversations become end-to-end
  kPlain = 1,   // plaintext on the server, for non-Tidings Chime clients
  kSealed = 2,  // end-to-end encrypted
};

struct SessionOptions {
  std::string backend;  // Backend::name(): scopes the per-log state
  std::string user;     // the local user
  size_t max_frame_bytes = 0;
  std::function<uint64_t()> now_ms;
  size_t max_pending_frames = 5'000;       // per log; older ones dropped and counted
  uint64_t directory_refresh_ms = 60'000;  // FetchDevices of a user at most this often
  // The newest operation version read; 0: this build's (wire::kOperationVersion).
  // Tests set an older one to play an older build.
  uint8_t newest_operation_version = 0;
};

struct OpenResult {
  std::vector<engine::Operation> ops;          // verified and decrypted, in log order
  std::vector<engine::SyncStateWrite> writes;  // directory pins and key events
  uint64_t rejected = 0;                       // frames skipped by this call
  bool keys_learned = false;                   // a new epoch key arrived
  bool devices_learned = false;                // a device was pinned (push again: it may need keys)
  bool read_on = false;  // a re-read of the log started or ended: pull again now
  // The current epoch's conversation facts, when this call changed them.
  std::optional<EpochInfo> conversation_info;
};

class Session {
 public:
  static Result<std::unique_ptr<Session>> Open(engine::SyncLog* store, SessionOptions options);

  const DeviceKeys& keys() const { return keys_; }
  Directory& directory() { return directory_; }
  const SessionOptions& options() const { return options_; }

  // ---- Conversations and their logs ----
  // The sealed logs of a conversation on this backend, smallest id first.
  Result<std::vector<std::string>> BoundLogs(const std::string& conversation_id);
  // The mode and, when sealed and bound on this backend, the log it pushes
  // to (the smallest bound id).
  Result<std::pair<Mode, std::string>> GetMode(const std::string& conversation_id);
  Status SetMode(const std::string& conversation_id, Mode mode);
  // The sealed log of an end-to-end conversation, made with a fresh log
  // secret (and the mode set to kSealed) if it has none.
  Result<LogState*> LogForConversation(const std::string& conversation_id);
  // A log by id, loaded, or new and unbound (a log the backend listed).
  Result<LogState*> LogById(const std::string& log_id);
  // Ids of the logs this device knows, bound or not.
  Result<std::vector<std::string>> KnownLogs();

  // ---- Push ----
  // Frames that must precede this push's operations: the announcement (once
  // per log), a new epoch when the members or their devices changed, and
  // re-shares of epoch keys to members' devices that appeared since. The new
  // epoch is in `log` already (so Seal uses it); ControlAcked records what
  // the backend took.
  Result<std::vector<sync::Frame>> ControlFrames(LogState& log,
                                                 const engine::Conversation& conversation,
                                                 const FetchDevices& fetch);
  void ControlAcked(LogState& log, const sync::Frame& frame);
  // The operation sealed and signed under the current epoch. TooLarge (with
  // this conversation's limit) if the frame would exceed max_frame_bytes.
  Result<sync::Frame> Seal(const LogState& log, const engine::Operation& op);

  // ---- Pull ----
  Result<OpenResult> OpenPage(LogState& log, const sync::FramePage& page,
                              const FetchDevices& fetch);

  // ---- Newest first (docs/sync.md, "Newest first, end to end") ----
  // True when `log` is about to be read again from its start (the forward
  // read just reached its end and a key share brought keys for operations
  // it could not open): the moment a preview may run.
  static bool PreviewDue(const LogState& log) {
    return log.rereading && log.cursor.empty() && !log.past_share && log.replay_until_ms != 0;
  }
  // A page of `log` read newest first (Backend::PullFrameHistory), opened
  // ahead of the re-read so the newest messages show first. Only sealed
  // operations older than the share the re-read stops at are judged (frames
  // up to it are skipped while *past_share is false; the page that holds it
  // sets it), and one is opened only if its author is a member, and the
  // device not removed, in every epoch this device holds: whichever of them
  // is current where the frame sits, the re-read accepts it too. Nothing is
  // rejected, counted, kept or changed in `log`; the re-read judges every
  // frame again in log order.
  // At most `most` operations are opened, the newest (a DynamoDB item may
  // hold a push of hundreds).
  Result<OpenResult> PreviewPage(LogState& log, const sync::FramePage& page, bool* past_share,
                                 size_t most, const FetchDevices& fetch);

  // The writes that persist `log` (commit them with the page or the push).
  std::vector<engine::SyncStateWrite> StateWrites(const LogState& log);

 private:
  Session(engine::SyncLog* store, SessionOptions options);
  // kTooNew: verified, but the operation's version is newer than this build
  // reads (kept pending until an upgrade).
  enum class Verdict { kOpened, kPending, kTooNew, kRejected, kIgnored };
  Verdict OpenFrame(LogState& log, const sync::Frame& frame, const EpochId& current_at,
                    const FetchDevices& fetch, OpenResult* out);
  Verdict OpenShare(LogState& log, const sync::Frame& frame, const FetchDevices& fetch,
                    OpenResult* out);
  Verdict OpenOp(LogState& log, const sync::Frame& frame, const EpochId& current_at,
                 const FetchDevices& fetch, OpenResult* out);
  void PinAnnouncement(LogState& log, const sync::Frame& frame, const FetchDevices& fetch,
                       OpenResult* out);
  Verdict Reject(LogState& log, OpenResult* out, std::string why);
  // Whether `user`'s `device` is out of the conversation where a frame sits:
  // not a member of the epoch current there (current_at), or removed from
  // it; while previewing, of any epoch this device holds.
  bool OutWhere(const LogState& log, const EpochId& current_at, const std::string& user,
                const std::string& device) const;
  uint8_t Newest() const;  // the newest operation version this session reads
  // Opens again the pending frames that wait for a key (too_new false) or
  // for an upgrade (true), keeping those that still cannot open.
  void RetryPending(LogState& log, const FetchDevices& fetch, bool too_new, OpenResult* out);
  // One frame of the re-read (LogState::rereading): a sealed operation is
  // judged by the epoch current where it sits (reread_current), or waits
  // (unopened) for its key; key shares move the re-read's chain; the rest
  // was handled when first read. `read_before`: a frame past the share,
  // which the forward read may have kept already.
  void Replay(LogState& log, const sync::Frame& frame, bool read_before, const FetchDevices& fetch,
              OpenResult* out);
  // The held epoch `frame` starts (`f`, decoded from it, signed over
  // `body`): a key share by the epoch's own sharer (not a re-share), one of
  // its members and of the re-read's current epoch, signed, with info that
  // opens under the epoch's key.
  std::optional<EpochId> EpochStart(LogState& log, const sync::Frame& frame, const KeyShareFrame& f,
                                    std::string_view body, const FetchDevices& fetch,
                                    OpenResult* out);
  // The pinned device `device_id` of one of `users`, fetching their records
  // from the directory backend when it is not known yet.
  std::optional<PinnedDevice> FindDevice(const std::string& device_id,
                                         const std::vector<std::string>& users,
                                         const FetchDevices& fetch, OpenResult* out);
  void Refresh(const std::string& user, const FetchDevices& fetch, bool force,
               std::vector<engine::SyncStateWrite>* writes);
  void CheckLogMembers(LogState& log);
  Result<std::vector<sync::Frame>> ShareFrames(LogState& log, const Epoch& epoch,
                                               const std::vector<PinnedDevice>& recipients,
                                               bool reshare);
  Result<std::vector<PinnedDevice>> MemberDevices(const std::vector<std::string>& members,
                                                  const std::set<std::string>& removed);
  void Bind(LogState& log, const std::string& conversation_id, const std::string& log_secret);

  engine::SyncLog* store_;
  SessionOptions options_;
  DeviceKeys keys_;
  Directory directory_;
  std::map<std::string, std::unique_ptr<LogState>> logs_;
  std::map<std::string, uint64_t> refreshed_;  // user -> last FetchDevices (ms)
  bool pinned_new_ = false;                    // a Refresh during this page pinned a device
  bool previewing_ = false;                    // PreviewPage: judge by every epoch, count nothing
  std::set<std::string> refreshed_now_;        // fetched during this page or push
  std::vector<engine::SyncStateWrite> deferred_;  // written with the next StateWrites
};

// This device's keys from the store, made and saved on first use. The
// C API's open calls it, so `tidings init` makes them.
Result<DeviceKeys> LoadOrCreateDeviceKeys(engine::SyncLog& store, const std::string& user,
                                          uint64_t now_ms);

// The largest body an operation shaped like `shape` (same ids, metadata and
// content type; its body is ignored) may carry in a sealed frame of
// `max_frame_bytes`: the limit a send to an end-to-end conversation is
// checked against.
size_t MaxSealedBody(size_t max_frame_bytes, const engine::Operation& shape);

}  // namespace tidings::e2e
