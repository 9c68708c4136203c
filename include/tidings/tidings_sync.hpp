// tidings_sync.hpp: the C++ layer over tidings_sync.h, in the style of
// tidings.hpp (header-only, RAII, errors as api::Status / api::Result, no
// exceptions of its own).
//
// Thread safety: as the C API. A Sync may be used from many threads at once;
// moving or destroying it must not race with other calls on it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tidings/tidings.hpp"
#include "tidings/tidings_sync.h"

namespace tidings::api {

struct SyncStatus {
  std::string backend;
  std::string conversation_id;
  std::string cursor;
  uint64_t outbox_depth = 0;
  int64_t last_success_ms = 0;  // 0: never
  int64_t last_activity_ms = 0;
  std::string last_error;  // empty when the last round succeeded
  int64_t next_attempt_ms = 0;
  uint32_t consecutive_failures = 0;
  bool stopped = false;
  uint64_t skipped_ops = 0;
  bool end_to_end = false;
  uint64_t rejected_frames = 0;  // refused as forged, foreign or broken
  uint64_t pending_frames = 0;   // waiting for their key
  std::string last_rejection;
  uint64_t waiting_for_upgrade = 0;  // kept until an upgrade reads them
  bool filling_history = false;      // older history still being fetched
};

struct DynamoDbConfig {
  std::string table;     // empty: "tidings"
  std::string region;    // empty: AWS_REGION
  std::string endpoint;  // empty: AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL / AWS
  // Borrows this config's strings.
  tidings_dynamodb_config c() const {
    tidings_dynamodb_config out;
    tidings_dynamodb_config_init(&out);
    out.table = table.empty() ? nullptr : table.c_str();
    out.region = region.empty() ? nullptr : region.c_str();
    out.endpoint = endpoint.empty() ? nullptr : endpoint.c_str();
    return out;
  }
};

struct ChimeConfig {
  std::string app_instance_arn;  // required
  std::string user_arn;          // required: the AppInstanceUser this device acts as
  std::string region;            // empty: AWS_REGION
  std::string endpoint;  // empty: AWS_ENDPOINT_URL_CHIME_SDK_MESSAGING / AWS_ENDPOINT_URL / AWS
  tidings_chime_config c() const {
    tidings_chime_config out;
    tidings_chime_config_init(&out);
    out.app_instance_arn = app_instance_arn.c_str();
    out.user_arn = user_arn.c_str();
    out.region = region.empty() ? nullptr : region.c_str();
    out.endpoint = endpoint.empty() ? nullptr : endpoint.c_str();
    return out;
  }
};

// AWS credentials an app hands over (tidings_aws_credentials_fn).
struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty: long-term keys
  int64_t expires_at_ms = 0;  // Unix ms; 0: they do not expire
};
// Called on a sync thread at the first request and 5 minutes before the
// credentials expire; an error Status is why there are none now
// (UNAUTHENTICATED stops sync until Restart). Exceptions it throws count
// as UNAVAILABLE.
using CredentialsFn = std::function<Result<AwsCredentials>()>;

namespace internal {
inline tidings_code CredentialsTrampoline(void* context, tidings_aws_credentials_sink* sink) {
  try {
    Result<AwsCredentials> c = (*static_cast<CredentialsFn*>(context))();
    if (!c.ok()) return c.status().code();
    return tidings_aws_credentials_set(sink, c->access_key_id.c_str(), c->secret_access_key.c_str(),
                                       c->session_token.c_str(), c->expires_at_ms, nullptr);
  } catch (...) {
    return TIDINGS_UNAVAILABLE;
  }
}
}  // namespace internal

// tidings_sync_options; zero means the default.
struct SyncOptions {
  int64_t active_poll_ms = 0;
  int64_t idle_poll_ms = 0;
  int64_t base_backoff_ms = 0;
  int64_t max_backoff_ms = 0;
  int64_t connect_timeout_ms = 0;
  int64_t request_timeout_ms = 0;
  int64_t stop_grace_ms = 0;
  bool require_every_backend = false;
  CredentialsFn credentials;  // empty: the standard AWS chain
  tidings_sync_options c() const {
    tidings_sync_options out;
    tidings_sync_options_init(&out);
    out.active_poll_ms = active_poll_ms;
    out.idle_poll_ms = idle_poll_ms;
    out.base_backoff_ms = base_backoff_ms;
    out.max_backoff_ms = max_backoff_ms;
    out.connect_timeout_ms = connect_timeout_ms;
    out.request_timeout_ms = request_timeout_ms;
    out.stop_grace_ms = stop_grace_ms;
    out.require_every_backend = require_every_backend;
    return out;
  }
};

// One backend of a Sync, now (tidings_sync_backend).
struct SyncBackend {
  std::string name;
  bool running = false;
  Status stopped_by;  // OK unless an error stopped its thread
  uint64_t outbox_depth = 0;
  uint64_t requests = 0;
  uint64_t retries = 0;
  int64_t last_success_ms = 0;
  std::map<tidings_code, uint64_t> errors;  // failed requests by code
  bool realtime_available = false;          // it has a push channel, running
  bool realtime_connected = false;          // up: nothing is polled
  std::string realtime_detail;              // why it is down
};

// End-to-end encryption (see tidings_sync.h): no key ever crosses the API,
// only ids and fingerprints ("12345 67890 ...", 6 groups of 5 digits).
struct Identity {
  std::string user;
  std::string device_id;
  std::string fingerprint;       // this device's
  std::string user_fingerprint;  // over the user's devices not removed
};

struct Device {
  std::string user;
  std::string device_id;
  std::string fingerprint;
  tidings_trust trust = TIDINGS_TRUST_UNVERIFIED;
  uint64_t first_seen_ms = 0;
  bool this_device = false;
  const char* trust_name() const { return tidings_trust_name(trust); }
};

struct KeyEvent {
  uint64_t seq = 0;
  tidings_key_event_kind kind = TIDINGS_KEY_EVENT_NEW_DEVICE;
  std::string user;
  std::string device_id;
  uint64_t at_ms = 0;
  const char* kind_name() const { return tidings_key_event_kind_name(kind); }
};

struct SyncEvent {
  tidings_sync_event_kind kind;
  std::string backend;
  std::string conversation_id;
  std::string message_id;
  Status error;         // STOPPED: why
  std::string message;  // STOPPED, MESSAGE_FAILED, REALTIME: why
  std::string user;     // TYPING: who
};

namespace internal {
inline KeyEvent KeyEventFrom(const tidings_key_event& e) {
  return KeyEvent{e.seq, e.kind, e.user, e.device_id, e.at_ms};
}
inline std::vector<SyncStatus> SyncStatusesFrom(const tidings_sync_status_list* list) {
  std::vector<SyncStatus> out;
  for (size_t i = 0; i < tidings_sync_status_list_count(list); ++i) {
    const tidings_sync_status& c = *tidings_sync_status_list_at(list, i);
    out.push_back(SyncStatus{c.backend, c.conversation_id, c.cursor, c.outbox_depth,
                             c.last_success_ms, c.last_activity_ms, c.last_error, c.next_attempt_ms,
                             c.consecutive_failures, c.stopped, c.skipped_ops, c.end_to_end,
                             c.rejected_frames, c.pending_frames, c.last_rejection,
                             c.waiting_for_upgrade, c.filling_history});
  }
  return out;
}
}  // namespace internal

// A sync handle over one or more backends for a Store that outlives it.
// Move-only; stops and frees itself on destruction.
class Sync {
 public:
  Sync(Sync&&) noexcept = default;
  // The old handle stops before its listener goes.
  Sync& operator=(Sync&& o) noexcept {
    if (this != &o) {
      handle_ = std::move(o.handle_);
      listener_ = std::move(o.listener_);
      key_listener_ = std::move(o.key_listener_);
      credentials_ = std::move(o.credentials_);
    }
    return *this;
  }

  // No backend yet: AddDynamoDb / AddChime, then Once or Start.
  static Result<Sync> Open(Store& store, const SyncOptions& options = {}) {
    tidings_sync_options o = options.c();
    std::unique_ptr<CredentialsFn> credentials;
    if (options.credentials) {
      credentials = std::make_unique<CredentialsFn>(options.credentials);
      o.credentials = internal::CredentialsTrampoline;
      o.credentials_context = credentials.get();
    }
    Result<Sync> sync = Make([&](tidings_sync** raw, tidings_error* e) {
      return tidings_sync_open(store.c_handle(), &o, raw, e);
    });
    if (sync.ok()) sync->credentials_ = std::move(credentials);
    return sync;
  }
  static Result<Sync> OpenDynamoDb(Store& store, const DynamoDbConfig& config = {}) {
    tidings_dynamodb_config c = config.c();
    return Make([&](tidings_sync** raw, tidings_error* e) {
      return tidings_sync_open_dynamodb(store.c_handle(), &c, raw, e);
    });
  }
  static Result<Sync> OpenChime(Store& store, const ChimeConfig& config) {
    tidings_chime_config c = config.c();
    return Make([&](tidings_sync** raw, tidings_error* e) {
      return tidings_sync_open_chime(store.c_handle(), &c, raw, e);
    });
  }

  Status AddDynamoDb(const DynamoDbConfig& config = {}) {
    tidings_dynamodb_config c = config.c();
    return Do(
        [&](tidings_sync* h, tidings_error* e) { return tidings_sync_add_dynamodb(h, &c, e); });
  }
  Status AddChime(const ChimeConfig& config) {
    tidings_chime_config c = config.c();
    return Do([&](tidings_sync* h, tidings_error* e) { return tidings_sync_add_chime(h, &c, e); });
  }
  // Before Start; see tidings_sync_event_fn for where it runs. Exceptions it
  // throws are swallowed at the boundary.
  Status SetListener(std::function<void(const SyncEvent&)> listener) {
    auto owned = std::make_unique<std::function<void(const SyncEvent&)>>(std::move(listener));
    auto trampoline = [](void* ctx, const tidings_sync_event* ev) {
      try {
        SyncEvent out{ev->kind,
                      ev->backend,
                      ev->conversation_id,
                      ev->message_id,
                      Status(ev->code, ev->code == TIDINGS_OK ? "" : ev->message),
                      ev->message,
                      ev->user};
        (*static_cast<std::function<void(const SyncEvent&)>*>(ctx))(out);
      } catch (...) {
      }
    };
    Status s = Do([&](tidings_sync* h, tidings_error* e) {
      return tidings_sync_set_listener(h, +trampoline, owned.get(), e);
    });
    if (s.ok()) listener_ = std::move(owned);
    return s;
  }

  // Before Start; called on a sync thread once per key-change event, after
  // the round that learned it (tidings_sync_set_key_listener). Exceptions
  // it throws are swallowed at the boundary.
  Status SetKeyListener(std::function<void(const KeyEvent&)> listener) {
    auto owned = std::make_unique<std::function<void(const KeyEvent&)>>(std::move(listener));
    auto trampoline = [](void* ctx, const tidings_key_event* ev) {
      try {
        (*static_cast<std::function<void(const KeyEvent&)>*>(ctx))(internal::KeyEventFrom(*ev));
      } catch (...) {
      }
    };
    Status s = Do([&](tidings_sync* h, tidings_error* e) {
      return tidings_sync_set_key_listener(h, +trampoline, owned.get(), e);
    });
    if (s.ok()) key_listener_ = std::move(owned);
    return s;
  }

  // One push-then-pull round on this thread, backend after backend.
  Status Once() { return Do(tidings_sync_once); }
  Status Start() { return Do(tidings_sync_start); }
  Status Stop() { return Do(tidings_sync_stop); }
  // `backend` empty: every backend an error stopped.
  Status Restart(const std::string& backend = "") {
    return Do([&](tidings_sync* h, tidings_error* e) {
      return tidings_sync_restart(h, backend.empty() ? nullptr : backend.c_str(), e);
    });
  }
  // The network came back or the app came to the foreground: retry and
  // reconnect now, skipping backoffs (tidings_sync_poke).
  Status Poke() { return Do(tidings_sync_poke); }
  // This user is typing in the conversation (rate-limited, never stored).
  Status Typing(const std::string& conversation_id) {
    return Do([&](tidings_sync* h, tidings_error* e) {
      return tidings_sync_typing(h, conversation_id.c_str(), e);
    });
  }
  // "The user scrolled up": up to `pages` older pages merged now
  // (tidings_sync_load_older); *merged and *more as there.
  Status LoadOlder(const std::string& conversation_id, uint32_t pages, uint64_t* merged,
                   bool* more) {
    return Do([&](tidings_sync* h, tidings_error* e) {
      return tidings_sync_load_older(h, conversation_id.c_str(), pages, merged, more, e);
    });
  }
  Status RetryFailed(uint64_t seq) {
    return Do(
        [&](tidings_sync* h, tidings_error* e) { return tidings_sync_outbox_retry(h, seq, e); });
  }
  Status DiscardFailed(uint64_t seq) {
    return Do(
        [&](tidings_sync* h, tidings_error* e) { return tidings_sync_outbox_discard(h, seq, e); });
  }

  Result<std::vector<SyncStatus>> GetStatus() {
    tidings_sync_status_list* raw = nullptr;
    Status s =
        Do([&](tidings_sync* h, tidings_error* e) { return tidings_sync_get_status(h, &raw, e); });
    if (!s.ok()) return s;
    internal::Owned<tidings_sync_status_list, tidings_sync_status_list_free> owned(raw);
    return internal::SyncStatusesFrom(raw);
  }
  Result<std::vector<SyncBackend>> Backends() {
    tidings_sync_backend_list* raw = nullptr;
    Status s =
        Do([&](tidings_sync* h, tidings_error* e) { return tidings_sync_backends(h, &raw, e); });
    if (!s.ok()) return s;
    internal::Owned<tidings_sync_backend_list, tidings_sync_backend_list_free> owned(raw);
    std::vector<SyncBackend> out;
    for (size_t i = 0; i < tidings_sync_backend_list_count(raw); ++i) {
      const tidings_sync_backend& b = *tidings_sync_backend_list_at(raw, i);
      SyncBackend r{b.name,
                    b.running,
                    Status(b.stopped_by, b.stopped_why),
                    b.outbox_depth,
                    b.requests,
                    b.retries,
                    b.last_success_ms,
                    {},
                    b.realtime_available,
                    b.realtime_connected,
                    b.realtime_detail};
      for (size_t j = 0; j < b.error_count; ++j) r.errors[b.errors[j]->code] = b.errors[j]->count;
      out.push_back(std::move(r));
    }
    return out;
  }

  // The C handle, for calls this layer does not wrap. Owned by this Sync.
  tidings_sync* c_handle() const { return handle_.get(); }

 private:
  Sync() = default;
  template <typename F>
  static Result<Sync> Make(F&& open) {
    tidings_sync* raw = nullptr;
    Status s = internal::Call([&](tidings_error* e) { return open(&raw, e); });
    if (!s.ok()) return s;
    Sync sync;
    sync.handle_.reset(raw);
    return sync;
  }
  template <typename F>
  Status Do(F&& f) {
    return internal::Call([&](tidings_error* e) { return f(handle_.get(), e); });
  }

  // Declared first so the handle (whose threads call them) goes first.
  std::unique_ptr<CredentialsFn> credentials_;
  std::unique_ptr<std::function<void(const SyncEvent&)>> listener_;
  std::unique_ptr<std::function<void(const KeyEvent&)>> key_listener_;
  internal::Owned<tidings_sync, tidings_sync_close> handle_;
};

// Persisted sync status per conversation (tidings_store_sync_status);
// backend empty means every backend.
inline Result<std::vector<SyncStatus>> GetSyncStatus(Store& store,
                                                     const std::string& backend = "") {
  tidings_sync_status_list* raw = nullptr;
  Status s = internal::Call([&](tidings_error* e) {
    return tidings_store_sync_status(store.c_handle(), backend.empty() ? nullptr : backend.c_str(),
                                     &raw, e);
  });
  if (!s.ok()) return s;
  internal::Owned<tidings_sync_status_list, tidings_sync_status_list_free> owned(raw);
  return internal::SyncStatusesFrom(raw);
}

// Creates the DynamoDB table if missing (idempotent).
inline Status CreateDynamoDbTable(const DynamoDbConfig& config = {}) {
  tidings_dynamodb_config c = config.c();
  return internal::Call([&](tidings_error* e) { return tidings_dynamodb_create_table(&c, e); });
}

// OK if the AWS credentials chain has credentials (tidings_aws_credentials_check).
inline Status CheckAwsCredentials() { return internal::Call(tidings_aws_credentials_check); }

// Moves the AWS secrets out of the environment (tidings_aws_environment_take).
inline Status TakeAwsEnvironment() { return internal::Call(tidings_aws_environment_take); }

// ---- End-to-end encryption (see tidings_sync.h) ----

// This store's device and fingerprints.
inline Result<Identity> GetIdentity(Store& store) {
  tidings_identity* raw = nullptr;
  Status s = internal::Call(
      [&](tidings_error* e) { return tidings_store_identity(store.c_handle(), &raw, e); });
  if (!s.ok()) return s;
  internal::Owned<tidings_identity, tidings_identity_free> owned(raw);
  return Identity{raw->user, raw->device_id, raw->fingerprint, raw->user_fingerprint};
}

// The pinned devices of `user`, or (empty) of every user the store knows.
inline Result<std::vector<Device>> GetDevices(Store& store, const std::string& user = "") {
  tidings_device_list* raw = nullptr;
  Status s = internal::Call([&](tidings_error* e) {
    return tidings_store_devices(store.c_handle(), user.empty() ? nullptr : user.c_str(), &raw, e);
  });
  if (!s.ok()) return s;
  internal::Owned<tidings_device_list, tidings_device_list_free> owned(raw);
  std::vector<Device> out;
  for (size_t i = 0; i < tidings_device_list_count(raw); ++i) {
    const tidings_device& d = *tidings_device_list_at(raw, i);
    out.push_back(
        Device{d.user, d.device_id, d.fingerprint, d.trust, d.first_seen_ms, d.this_device});
  }
  return out;
}

inline Status SetDeviceTrust(Store& store, const std::string& user, const std::string& device_id,
                             tidings_trust trust) {
  return internal::Call([&](tidings_error* e) {
    return tidings_store_set_device_trust(store.c_handle(), user.c_str(), device_id.c_str(), trust,
                                          e);
  });
}
// After comparing fingerprints out of band.
inline Status VerifyDevice(Store& store, const std::string& user, const std::string& device_id) {
  return SetDeviceTrust(store, user, device_id, TIDINGS_TRUST_VERIFIED);
}
// It gets no key from this device any more; the next push starts a new epoch.
inline Status RemoveDevice(Store& store, const std::string& user, const std::string& device_id) {
  return SetDeviceTrust(store, user, device_id, TIDINGS_TRUST_REMOVED);
}

// Key-change events with seq > after, oldest first.
inline Result<std::vector<KeyEvent>> GetKeyEvents(Store& store, uint64_t after = 0) {
  tidings_key_event_list* raw = nullptr;
  Status s = internal::Call(
      [&](tidings_error* e) { return tidings_store_key_events(store.c_handle(), after, &raw, e); });
  if (!s.ok()) return s;
  internal::Owned<tidings_key_event_list, tidings_key_event_list_free> owned(raw);
  std::vector<KeyEvent> out;
  for (size_t i = 0; i < tidings_key_event_list_count(raw); ++i) {
    out.push_back(internal::KeyEventFrom(*tidings_key_event_list_at(raw, i)));
  }
  return out;
}

inline Result<tidings_conversation_mode> GetConversationMode(Store& store, const std::string& id) {
  tidings_conversation_mode mode = TIDINGS_MODE_END_TO_END_PENDING;
  Status s = internal::Call([&](tidings_error* e) {
    return tidings_store_conversation_mode(store.c_handle(), id.c_str(), &mode, e);
  });
  if (!s.ok()) return s;
  return mode;
}

// A new conversation: end-to-end, or with `plaintext` in plaintext mode.
inline Status CreateConversation(Store& store, const std::string& id, const std::string& title,
                                 const std::vector<std::string>& members, bool plaintext = false) {
  std::vector<const char*> m;
  for (const auto& s : members) m.push_back(s.c_str());
  return internal::Call([&](tidings_error* e) {
    return tidings_store_create_conversation(store.c_handle(), id.c_str(), title.c_str(), m.data(),
                                             m.size(), plaintext, e);
  });
}

// A plaintext conversation becomes end-to-end from its next sync on.
inline Status UpgradeConversation(Store& store, const std::string& id) {
  return internal::Call([&](tidings_error* e) {
    return tidings_store_upgrade_conversation(store.c_handle(), id.c_str(), e);
  });
}

// Proof of key between local processes (see tidings_sync.h).
inline Status RotateAuthSecret(Store& store) {
  return internal::Call(
      [&](tidings_error* e) { return tidings_store_auth_rotate(store.c_handle(), e); });
}
// HMAC-SHA256 of `data` under the store's auth secret: TIDINGS_AUTH_MAC_SIZE bytes.
inline Result<std::string> AuthMac(Store& store, std::string_view data) {
  std::string mac(TIDINGS_AUTH_MAC_SIZE, '\0');
  Status s = internal::Call([&](tidings_error* e) {
    return tidings_store_auth_mac(store.c_handle(), data.data(), data.size(),
                                  reinterpret_cast<uint8_t*>(mac.data()), mac.size(), e);
  });
  if (!s.ok()) return s;
  return mac;
}

}  // namespace tidings::api
