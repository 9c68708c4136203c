// The end-to-end part of the C API (tidings_sync.h): this device's identity,
// the pinned devices of other users and their trust, key-change events, and
// conversation modes. Keys never cross it: only ids and fingerprints. Same
// boundary rules as c_api.cc (see internal.h).
#include <algorithm>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "api/e2e_mode.h"
#include "api/internal.h"
#include "common/clock.h"
#include "common/lines.h"
#include "crypto/secret_key.h"
#include "sync/e2e/directory.h"
#include "sync/e2e/log_state.h"
#include "sync/e2e/session.h"
#include "tidings/tidings_sync.h"

struct tidings_device_list {
  std::vector<std::string> strings;  // reserved up front: items point into it
  std::vector<tidings_device> items;
};

struct tidings_key_event_list {
  std::vector<tidings::e2e::KeyEvent> events;
  std::vector<tidings_key_event> items;
};

namespace tidings::capi {
namespace {

struct IdentityStrings {
  std::string user, device_id, fingerprint, user_fingerprint;
};
// Standard-layout, so the tidings_identity* handed out converts back.
struct IdentityBox {
  tidings_identity pub;
  IdentityStrings* strings;
};

// This store's device keys, as stored (never made here: a read-only handle
// cannot, and a writable open made them).
Result<e2e::DeviceKeys> StoredKeys(engine::Store& s) {
  TIDINGS_ASSIGN_OR_RETURN(std::string bytes, s.sync_log().GetSyncState(e2e::kDeviceKeysKey));
  if (bytes.empty()) {
    return NotFound(
        "this store has no device keys yet (it was made by an older version): open it for "
        "writing once, e.g. run `tidings keys` while no daemon holds it, and they are made");
  }
  auto keys = e2e::DeviceKeys::Deserialize(bytes, s.user_id());
  crypto::Wipe(&bytes);
  return keys;
}

std::vector<e2e::DeviceRecord> NotRemoved(const std::vector<e2e::PinnedDevice>& devices) {
  std::vector<e2e::DeviceRecord> out;
  for (const auto& d : devices) {
    if (d.trust != e2e::Trust::kRemoved) out.push_back(d.record);
  }
  return out;
}

// Every user the store knows: itself, its conversations' members, and the
// users sync met ("\n"-joined under kKnownUsersKey).
Result<std::vector<std::string>> KnownUsers(engine::Store& s) {
  std::set<std::string> users{s.user_id()};
  TIDINGS_ASSIGN_OR_RETURN(auto convs, s.Conversations(0));
  for (const auto& c : convs) users.insert(c.members.begin(), c.members.end());
  TIDINGS_ASSIGN_OR_RETURN(std::string met, s.sync_log().GetSyncState(e2e::kKnownUsersKey));
  for (auto& user : SplitLines(met)) users.insert(std::move(user));
  return std::vector<std::string>(users.begin(), users.end());
}

Status Identity(engine::Store& s, tidings_identity** out) {
  TIDINGS_ASSIGN_OR_RETURN(e2e::DeviceKeys keys, StoredKeys(s));
  e2e::Directory dir(&s.sync_log());
  TIDINGS_ASSIGN_OR_RETURN(auto mine, dir.Devices(s.user_id()));
  auto records = NotRemoved(mine);
  if (std::none_of(records.begin(), records.end(),
                   [&](const e2e::DeviceRecord& r) { return r.device_id() == keys.device_id(); })) {
    records.push_back(keys.record());
  }
  auto b = std::make_unique<IdentityStrings>();
  b->user = s.user_id();
  b->device_id = keys.device_id();
  b->fingerprint = e2e::DeviceFingerprint(keys.record());
  b->user_fingerprint = e2e::UserFingerprint(s.user_id(), records);
  const tidings_identity pub{b->user.c_str(), b->device_id.c_str(), b->fingerprint.c_str(),
                             b->user_fingerprint.c_str()};
  *out = &(new IdentityBox{pub, b.release()})->pub;
  return Status::Ok();
}

Status Devices(engine::Store& s, const char* user, tidings_device_list** out) {
  std::vector<std::string> users;
  if (user != nullptr) {
    users.emplace_back(user);
  } else {
    TIDINGS_ASSIGN_OR_RETURN(users, KnownUsers(s));
  }
  auto keys = StoredKeys(s);
  const std::string self = keys.ok() ? keys->device_id() : "";
  e2e::Directory dir(&s.sync_log());
  std::vector<e2e::PinnedDevice> all;
  for (const auto& u : users) {
    TIDINGS_ASSIGN_OR_RETURN(auto devices, dir.Devices(u));
    std::stable_sort(devices.begin(), devices.end(), [](const auto& a, const auto& b) {
      return a.first_seen_ms < b.first_seen_ms;
    });
    all.insert(all.end(), devices.begin(), devices.end());
  }
  auto list = std::make_unique<tidings_device_list>();
  list->strings.reserve(all.size() * 3);
  for (const auto& d : all) {
    tidings_device item{};
    list->strings.push_back(d.record.user);
    item.user = list->strings.back().c_str();
    list->strings.push_back(d.record.device_id());
    item.device_id = list->strings.back().c_str();
    list->strings.push_back(e2e::DeviceFingerprint(d.record));
    item.fingerprint = list->strings.back().c_str();
    item.trust = static_cast<tidings_trust>(d.trust);
    item.first_seen_ms = d.first_seen_ms;
    item.this_device = d.record.user == s.user_id() && d.record.device_id() == self;
    list->items.push_back(item);
  }
  *out = list.release();
  return Status::Ok();
}

Status SetTrust(engine::Store& s, const char* user, const char* device_id, tidings_trust trust) {
  if (user == nullptr || *user == '\0') return InvalidArgument("no user given");
  if (device_id == nullptr || *device_id == '\0') return InvalidArgument("no device id given");
  if (trust != TIDINGS_TRUST_UNVERIFIED && trust != TIDINGS_TRUST_VERIFIED &&
      trust != TIDINGS_TRUST_REMOVED) {
    return InvalidArgument("unknown trust value; use TIDINGS_TRUST_VERIFIED or _REMOVED");
  }
  if (trust == TIDINGS_TRUST_REMOVED && user == s.user_id()) {
    auto keys = StoredKeys(s);
    if (keys.ok() && keys->device_id() == device_id) {
      return FailedPrecondition(
          "this is this store's own device; it cannot remove itself. Remove it from "
          "another of your devices");
    }
  }
  e2e::Directory dir(&s.sync_log());
  return dir.SetTrust(user, device_id, static_cast<e2e::Trust>(trust));
}

Status KeyEvents(engine::Store& s, uint64_t after, tidings_key_event_list** out) {
  e2e::Directory dir(&s.sync_log());
  auto list = std::make_unique<tidings_key_event_list>();
  TIDINGS_ASSIGN_OR_RETURN(list->events, dir.EventsAfter(after));
  for (const auto& e : list->events) {
    list->items.push_back({e.seq, static_cast<tidings_key_event_kind>(e.kind), e.user.c_str(),
                           e.device_id.c_str(), e.at_ms});
  }
  *out = list.release();
  return Status::Ok();
}

Result<tidings_conversation_mode> ApiMode(engine::Store& s, const std::string& id) {
  TIDINGS_RETURN_IF_ERROR(s.GetConversation(id).status());
  TIDINGS_ASSIGN_OR_RETURN(Mode mode, ModeOf(s, id));
  switch (mode) {
    case Mode::kEndToEnd:
      return TIDINGS_MODE_END_TO_END;
    case Mode::kPlaintext:
      return TIDINGS_MODE_PLAINTEXT;
    case Mode::kEndToEndPending:
      break;
  }
  return TIDINGS_MODE_END_TO_END_PENDING;
}

Status CreateConversation(engine::Store& s, const std::string& id, const std::string& title,
                          const std::vector<std::string>& members, bool plaintext) {
  auto existing = s.GetConversation(id);
  if (existing.ok()) {
    return AlreadyExists("conversation " + id +
                         " exists; its mode is kept (see `tidings status`; `tidings conversation "
                         "upgrade` makes a plaintext one end-to-end)");
  }
  if (existing.status().code() != Code::kNotFound) return existing.status();
  // The mode first: were the conversation written first, a sync in between
  // could take it end-to-end. Undone if the conversation cannot be written.
  if (plaintext) TIDINGS_RETURN_IF_ERROR(s.sync_log().PutSyncState(e2e::ModeKey(id), "plain"));
  Status st = s.PutConversation(id, title, members).status();
  if (!st.ok() && plaintext) (void)s.sync_log().PutSyncState(e2e::ModeKey(id), "");
  return st;
}

// Decided end-to-end, so sync seals it from now on: also a conversation
// whose plaintext history would otherwise keep it plaintext.
Status Upgrade(engine::Store& s, const std::string& id) {
  TIDINGS_RETURN_IF_ERROR(s.GetConversation(id).status());
  TIDINGS_ASSIGN_OR_RETURN(std::string mode, s.sync_log().GetSyncState(e2e::ModeKey(id)));
  if (mode == "e2e") return Status::Ok();
  return s.sync_log().PutSyncState(e2e::ModeKey(id), "e2e");
}

Result<std::vector<std::string>> MembersFrom(const char* const* members, size_t count) {
  if (members == nullptr && count != 0) {
    return InvalidArgument("members is NULL but member_count is not 0");
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < count; ++i) {
    if (members[i] == nullptr) return InvalidArgument("a member is NULL");
    out.emplace_back(members[i]);
  }
  return out;
}

Status RequireId(const char* id) {
  if (id == nullptr) return InvalidArgument("no conversation id given (NULL)");
  return Status::Ok();
}

}  // namespace

Status EnsureDeviceKeys(engine::Store& store) {
  return e2e::LoadOrCreateDeviceKeys(store.sync_log(), store.user_id(),
                                     static_cast<uint64_t>(WallMs()))
      .status();
}

}  // namespace tidings::capi

using tidings::Status;
using tidings::capi::Guard;
namespace engine = tidings::engine;

extern "C" {

void tidings_identity_free(tidings_identity* identity) {
  if (identity == nullptr) return;
  auto* box = reinterpret_cast<tidings::capi::IdentityBox*>(identity);
  delete box->strings;
  delete box;
}

tidings_code tidings_store_identity(tidings_store* store, tidings_identity** out,
                                    tidings_error* error) {
  if (out != nullptr) *out = nullptr;
  return Guard(error, store, [&](engine::Store& s) -> Status {
    if (out == nullptr) return tidings::InvalidArgument("no place for the identity (NULL)");
    return tidings::capi::Identity(s, out);
  });
}

const char* tidings_trust_name(tidings_trust trust) {
  switch (tidings::capi::RawEnum(trust)) {
    case TIDINGS_TRUST_UNVERIFIED:
    case TIDINGS_TRUST_VERIFIED:
    case TIDINGS_TRUST_REMOVED:
      return tidings::e2e::TrustName(
          static_cast<tidings::e2e::Trust>(tidings::capi::RawEnum(trust)));
  }
  return "unknown";
}

size_t tidings_device_list_count(const tidings_device_list* list) {
  return list == nullptr ? 0 : list->items.size();
}
const tidings_device* tidings_device_list_at(const tidings_device_list* list, size_t index) {
  if (list == nullptr || index >= list->items.size()) return nullptr;
  return &list->items[index];
}
void tidings_device_list_free(tidings_device_list* list) { delete list; }

tidings_code tidings_store_devices(tidings_store* store, const char* user,
                                   tidings_device_list** out, tidings_error* error) {
  if (out != nullptr) *out = nullptr;
  return Guard(error, store, [&](engine::Store& s) -> Status {
    if (out == nullptr) return tidings::InvalidArgument("no place for the devices (NULL)");
    return tidings::capi::Devices(s, user, out);
  });
}

tidings_code tidings_store_set_device_trust(tidings_store* store, const char* user,
                                            const char* device_id, tidings_trust trust,
                                            tidings_error* error) {
  // A C caller may pass any int: read it as one (loading an out-of-range
  // enum is undefined in C++), and let SetTrust refuse what it does not know.
  int raw = 0;
  std::memcpy(&raw, &trust, sizeof raw);
  return Guard(error, store, [&](engine::Store& s) {
    if (raw < 0 || raw > 2) return tidings::InvalidArgument("unknown trust value");
    tidings_trust t{};
    std::memcpy(&t, &raw, sizeof t);
    return tidings::capi::SetTrust(s, user, device_id, t);
  });
}

const char* tidings_key_event_kind_name(tidings_key_event_kind kind) {
  switch (tidings::capi::RawEnum(kind)) {
    case TIDINGS_KEY_EVENT_NEW_DEVICE:
    case TIDINGS_KEY_EVENT_KEY_CONFLICT:
      return tidings::e2e::KeyEventKindName(
          static_cast<tidings::e2e::KeyEventKind>(tidings::capi::RawEnum(kind)));
  }
  return "unknown";
}

size_t tidings_key_event_list_count(const tidings_key_event_list* list) {
  return list == nullptr ? 0 : list->items.size();
}
const tidings_key_event* tidings_key_event_list_at(const tidings_key_event_list* list,
                                                   size_t index) {
  if (list == nullptr || index >= list->items.size()) return nullptr;
  return &list->items[index];
}
void tidings_key_event_list_free(tidings_key_event_list* list) { delete list; }

tidings_code tidings_store_key_events(tidings_store* store, uint64_t after,
                                      tidings_key_event_list** out, tidings_error* error) {
  if (out != nullptr) *out = nullptr;
  return Guard(error, store, [&](engine::Store& s) -> Status {
    if (out == nullptr) return tidings::InvalidArgument("no place for the events (NULL)");
    return tidings::capi::KeyEvents(s, after, out);
  });
}

const char* tidings_conversation_mode_name(tidings_conversation_mode mode) {
  switch (tidings::capi::RawEnum(mode)) {
    case TIDINGS_MODE_END_TO_END_PENDING:
      return "end-to-end (pending first sync)";
    case TIDINGS_MODE_END_TO_END:
      return "end-to-end";
    case TIDINGS_MODE_PLAINTEXT:
      return "plaintext";
  }
  return "unknown";
}

tidings_code tidings_store_conversation_mode(tidings_store* store, const char* id,
                                             tidings_conversation_mode* out, tidings_error* error) {
  return Guard(error, store, [&](engine::Store& s) -> Status {
    TIDINGS_RETURN_IF_ERROR(tidings::capi::RequireId(id));
    if (out == nullptr) return tidings::InvalidArgument("no place for the mode (NULL)");
    TIDINGS_ASSIGN_OR_RETURN(*out, tidings::capi::ApiMode(s, id));
    return Status::Ok();
  });
}

tidings_code tidings_store_create_conversation(tidings_store* store, const char* id,
                                               const char* title, const char* const* members,
                                               size_t member_count, bool plaintext,
                                               tidings_error* error) {
  return Guard(error, store, [&](engine::Store& s) -> Status {
    TIDINGS_RETURN_IF_ERROR(tidings::capi::RequireId(id));
    TIDINGS_ASSIGN_OR_RETURN(auto m, tidings::capi::MembersFrom(members, member_count));
    return tidings::capi::CreateConversation(s, id, title == nullptr ? "" : title, m, plaintext);
  });
}

tidings_code tidings_store_upgrade_conversation(tidings_store* store, const char* id,
                                                tidings_error* error) {
  return Guard(error, store, [&](engine::Store& s) -> Status {
    TIDINGS_RETURN_IF_ERROR(tidings::capi::RequireId(id));
    return tidings::capi::Upgrade(s, id);
  });
}

}  // extern "C"
