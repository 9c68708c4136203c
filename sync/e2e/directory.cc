#include "sync/e2e/directory.h"

#include <algorithm>

#include "sync/wire/bytes.h"

namespace tidings::e2e {
namespace {

constexpr size_t kMaxEvents = 256;  // the newest are kept

std::string EncodeEvents(uint64_t next, const std::vector<KeyEvent>& events) {
  std::string out;
  wire::ByteWriter w(&out);
  w.U8(1);
  w.Varint(next);
  w.Varint(events.size());
  for (const auto& e : events) {
    w.Varint(e.seq);
    w.Bytes(e.user);
    w.Bytes(e.device_id);
    w.U8(static_cast<uint8_t>(e.kind));
    w.Varint(e.at_ms);
  }
  return out;
}

Status DecodeEvents(std::string_view bytes, uint64_t* next, std::vector<KeyEvent>* events) {
  *next = 1;
  events->clear();
  if (bytes.empty()) return Status::Ok();
  wire::ByteReader r(bytes, "key events");
  uint8_t version = 0;
  uint64_t n = 0;
  TIDINGS_RETURN_IF_ERROR(r.U8("version", &version));
  TIDINGS_RETURN_IF_ERROR(r.Varint("next", next));
  TIDINGS_RETURN_IF_ERROR(r.Varint("count", &n));
  if (n > kMaxEvents) return r.Error("count", "is too large");
  events->resize(n);
  for (auto& e : *events) {
    uint8_t kind = 0;
    TIDINGS_RETURN_IF_ERROR(r.Varint("seq", &e.seq));
    TIDINGS_RETURN_IF_ERROR(r.Bytes("user", &e.user));
    TIDINGS_RETURN_IF_ERROR(r.Bytes("device", &e.device_id));
    TIDINGS_RETURN_IF_ERROR(r.U8("kind", &kind));
    e.kind = static_cast<KeyEventKind>(kind);
    TIDINGS_RETURN_IF_ERROR(r.Varint("at", &e.at_ms));
  }
  return Status::Ok();
}

}  // namespace

const char* TrustName(Trust t) {
  switch (t) {
    case Trust::kUnverified:
      return "unverified";
    case Trust::kVerified:
      return "verified";
    case Trust::kRemoved:
      return "removed";
  }
  return "unknown";
}

const char* KeyEventKindName(KeyEventKind k) {
  switch (k) {
    case KeyEventKind::kNewDevice:
      return "new-device";
    case KeyEventKind::kKeyConflict:
      return "key-conflict";
  }
  return "unknown";
}

std::string DirectoryKey(const std::string& user) { return "e2e/dir/" + user; }

std::string Directory::EncodeUser(const std::vector<PinnedDevice>& devices) const {
  std::string out;
  wire::ByteWriter w(&out);
  w.U8(1);
  w.Varint(devices.size());
  for (const auto& d : devices) {
    w.Bytes(d.record.Encode());
    w.U8(static_cast<uint8_t>(d.trust));
    w.Varint(d.first_seen_ms);
  }
  return out;
}

Result<std::vector<PinnedDevice>*> Directory::Load(const std::string& user) {
  auto it = users_.find(user);
  if (it != users_.end()) return &it->second;
  TIDINGS_ASSIGN_OR_RETURN(std::string bytes, store_->GetSyncState(DirectoryKey(user)));
  std::vector<PinnedDevice> devices;
  if (!bytes.empty()) {
    wire::ByteReader r(bytes, "pinned devices");
    uint8_t version = 0;
    uint64_t n = 0;
    TIDINGS_RETURN_IF_ERROR(r.U8("version", &version));
    TIDINGS_RETURN_IF_ERROR(r.Varint("count", &n));
    if (n > 10'000) return r.Error("count", "is too large");
    for (uint64_t i = 0; i < n; ++i) {
      std::string record;
      uint8_t trust = 0;
      PinnedDevice d;
      TIDINGS_RETURN_IF_ERROR(r.Bytes("record", &record));
      TIDINGS_RETURN_IF_ERROR(r.U8("trust", &trust));
      TIDINGS_RETURN_IF_ERROR(r.Varint("first seen", &d.first_seen_ms));
      TIDINGS_ASSIGN_OR_RETURN(d.record, DecodeDeviceRecord(record, user));
      d.trust = static_cast<Trust>(trust);
      devices.push_back(std::move(d));
    }
  }
  return &users_.emplace(user, std::move(devices)).first->second;
}

Result<std::vector<PinnedDevice>> Directory::Devices(const std::string& user) {
  TIDINGS_ASSIGN_OR_RETURN(auto* devices, Load(user));
  return *devices;
}

Result<std::optional<PinnedDevice>> Directory::Find(const std::string& device_id,
                                                    const std::vector<std::string>& users) {
  for (const auto& u : users) TIDINGS_RETURN_IF_ERROR(Load(u).status());
  for (const auto& [user, devices] : users_) {
    for (const auto& d : devices) {
      if (d.record.device_id() == device_id) return std::optional<PinnedDevice>(d);
    }
  }
  return std::optional<PinnedDevice>();
}

Result<bool> Directory::Pin(const DeviceRecord& record, uint64_t now_ms,
                            std::vector<engine::SyncStateWrite>* writes) {
  TIDINGS_ASSIGN_OR_RETURN(auto* devices, Load(record.user));
  const std::string id = record.device_id();
  for (const auto& d : *devices) {
    if (d.record.device_id() != id) continue;
    if (d.record.box_pk == record.box_pk) return false;  // already pinned
    // Same signing key, another box key: keep the pinned one, say so.
    TIDINGS_RETURN_IF_ERROR(
        AddEvent({0, record.user, id, KeyEventKind::kKeyConflict, now_ms}, writes));
    return false;
  }
  const bool known_user = !devices->empty();
  devices->push_back({record, Trust::kUnverified, now_ms});
  writes->push_back({DirectoryKey(record.user), EncodeUser(*devices)});
  if (!known_user) TIDINGS_RETURN_IF_ERROR(AddKnownUser(record.user, writes));
  if (known_user) {
    TIDINGS_RETURN_IF_ERROR(
        AddEvent({0, record.user, id, KeyEventKind::kNewDevice, now_ms}, writes));
  }
  return true;
}

Status Directory::SetTrust(const std::string& user, const std::string& device_id, Trust trust) {
  users_.erase(user);  // re-read: another process may have pinned more
  TIDINGS_ASSIGN_OR_RETURN(auto* devices, Load(user));
  for (auto& d : *devices) {
    if (d.record.device_id() != device_id) continue;
    d.trust = trust;
    return store_->PutSyncState(DirectoryKey(user), EncodeUser(*devices));
  }
  return NotFound("no device " + device_id + " is known for user " + user +
                  " (run `tidings keys` to list the devices this store has seen)");
}

Status Directory::AddKnownUser(const std::string& user,
                               std::vector<engine::SyncStateWrite>* writes) {
  std::string joined;
  bool pending = false;
  for (auto it = writes->rbegin(); it != writes->rend(); ++it) {
    if (it->key == kKnownUsersKey) {
      joined = it->value;
      pending = true;
      break;
    }
  }
  if (!pending) {
    TIDINGS_ASSIGN_OR_RETURN(joined, store_->GetSyncState(kKnownUsersKey));
  }
  if (("\n" + joined).find("\n" + user + "\n") != std::string::npos) return Status::Ok();
  joined += user + "\n";
  writes->push_back({std::string(kKnownUsersKey), joined});
  return Status::Ok();
}

Status Directory::AddEvent(KeyEvent event, std::vector<engine::SyncStateWrite>* writes) {
  // The newest pending write of the list, if this page already added one.
  std::string bytes;
  for (auto it = writes->rbegin(); it != writes->rend(); ++it) {
    if (it->key == kEventsKey) {
      bytes = it->value;
      break;
    }
  }
  if (bytes.empty()) {
    TIDINGS_ASSIGN_OR_RETURN(bytes, store_->GetSyncState(kEventsKey));
  }
  uint64_t next = 1;
  std::vector<KeyEvent> events;
  TIDINGS_RETURN_IF_ERROR(DecodeEvents(bytes, &next, &events));
  event.seq = next++;
  events.push_back(std::move(event));
  if (events.size() > kMaxEvents) events.erase(events.begin());
  writes->push_back({std::string(kEventsKey), EncodeEvents(next, events)});
  return Status::Ok();
}

Result<std::vector<KeyEvent>> Directory::EventsAfter(uint64_t after) {
  TIDINGS_ASSIGN_OR_RETURN(std::string bytes, store_->GetSyncState(kEventsKey));
  uint64_t next = 1;
  std::vector<KeyEvent> events;
  TIDINGS_RETURN_IF_ERROR(DecodeEvents(bytes, &next, &events));
  std::erase_if(events, [&](const KeyEvent& e) { return e.seq <= after; });
  return events;
}

}  // namespace tidings::e2e
