// The pinned device directory: every user's devices as this device first
// learned them (trust on first use), their trust state, and the key-change
// events a UI must show. Persisted in the store's sync state, one record per
// user ("e2e/dir/<user>") and one event list ("e2e/events"), so the CLI and
// the API read it from any handle.
//
// A device is pinned when a source the backend authenticates says it is the
// user's (an announcement whose sender Chime authenticated, or the user's own
// DynamoDB partition). A new device of a user who already had devices, or a
// record that contradicts a pinned one, is a key-change event: never silent.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/sync_log.h"
#include "sync/e2e/identity.h"

namespace tidings::e2e {

enum class Trust : uint8_t {
  kUnverified = 0,  // pinned on first use, not compared out of band
  kVerified = 1,    // the user compared fingerprints and marked it verified
  kRemoved = 2,     // removed by the user: gets no key from this device
};
const char* TrustName(Trust t);  // "unverified", "verified", "removed"

struct PinnedDevice {
  DeviceRecord record;
  Trust trust = Trust::kUnverified;
  uint64_t first_seen_ms = 0;
};

enum class KeyEventKind : uint8_t {
  kNewDevice = 1,    // a known user has a device not seen before
  kKeyConflict = 2,  // a record contradicts a pinned one (kept: the pinned one)
};
const char* KeyEventKindName(KeyEventKind k);  // "new-device", "key-conflict"

struct KeyEvent {
  uint64_t seq = 0;  // 1, 2, 3 ... per store
  std::string user;
  std::string device_id;
  KeyEventKind kind = KeyEventKind::kNewDevice;
  uint64_t at_ms = 0;
};

class Directory {
 public:
  explicit Directory(engine::SyncLog* store) : store_(store) {}

  // The user's pinned devices (loaded on first use).
  Result<std::vector<PinnedDevice>> Devices(const std::string& user);
  // The pinned device with this id, among users loaded so far or `users`.
  Result<std::optional<PinnedDevice>> Find(const std::string& device_id,
                                           const std::vector<std::string>& users);
  // Pins `record` for its user. Returns true if it was new. A new device of a
  // user who had devices, or a conflicting record, adds a KeyEvent. Writes
  // go to *writes (committed by the caller with the page that taught them).
  Result<bool> Pin(const DeviceRecord& record, uint64_t now_ms,
                   std::vector<engine::SyncStateWrite>* writes);
  // Sets a device's trust (verify, remove). NotFound for an unknown device.
  Status SetTrust(const std::string& user, const std::string& device_id, Trust trust);
  // Key-change events with seq > after, oldest first.
  Result<std::vector<KeyEvent>> EventsAfter(uint64_t after);

 private:
  Result<std::vector<PinnedDevice>*> Load(const std::string& user);
  std::string EncodeUser(const std::vector<PinnedDevice>& devices) const;
  Status AddEvent(KeyEvent event, std::vector<engine::SyncStateWrite>* writes);
  // Adds `user` to the "\n"-joined list under kKnownUsersKey.
  Status AddKnownUser(const std::string& user, std::vector<engine::SyncStateWrite>* writes);

  engine::SyncLog* store_;
  std::map<std::string, std::vector<PinnedDevice>> users_;
};

// State keys (exposed for tests and the API).
std::string DirectoryKey(const std::string& user);
inline constexpr std::string_view kEventsKey = "e2e/events";
inline constexpr std::string_view kDeviceKeysKey = "e2e/device";
inline constexpr std::string_view kKnownUsersKey = "e2e/users";

}  // namespace tidings::e2e
