// The sync part of the C API (tidings_sync.h): persisted status, backend
// configuration and the multi-backend sync handle (api/sync_handle.h). Same
// boundary rules as c_api.cc (see internal.h).
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "api/app_credentials.h"
#include "api/internal.h"
#include "api/struct_size.h"
#include "api/sync_handle.h"
#include "sync/aws/credentials.h"
#include "sync/chime/chime_backend.h"
#include "sync/dynamodb/dynamodb_backend.h"
#include "tidings/tidings_sync.h"

struct tidings_sync_status_list {
  std::vector<std::pair<std::string, tidings::sync::ConversationStatus>> rows;
  std::vector<tidings_sync_status> items;  // point into rows
};

struct tidings_sync_backend_list {
  std::vector<tidings::capi::SyncHandle::BackendState> rows;
  std::vector<std::vector<tidings_sync_error_count>> error_counts;
  std::vector<std::vector<const tidings_sync_error_count*>> error_pointers;
  std::vector<std::string> stopped_why;
  std::vector<std::string> realtime_detail;
  std::vector<tidings_sync_backend> items;
};

namespace tidings::capi {
namespace {

tidings_sync_status_list* NewStatusList(
    std::vector<std::pair<std::string, sync::ConversationStatus>> rows) {
  auto list = std::make_unique<tidings_sync_status_list>();
  list->rows = std::move(rows);
  for (const auto& [backend, st] : list->rows) {
    tidings_sync_status c{};
    c.backend = backend.c_str();
    c.conversation_id = st.conversation_id.c_str();
    c.cursor = st.cursor.c_str();
    c.outbox_depth = st.outbox_depth;
    c.last_success_ms = st.last_success_ms;
    c.last_activity_ms = st.last_activity_ms;
    c.last_error = st.last_error.c_str();
    c.next_attempt_ms = st.next_attempt_ms;
    c.consecutive_failures = st.consecutive_failures;
    c.stopped = st.stopped;
    c.skipped_ops = st.skipped_ops;
    c.end_to_end = st.end_to_end;
    c.rejected_frames = st.rejected_frames;
    c.pending_frames = st.pending_frames;
    c.last_rejection = st.last_rejection.c_str();
    c.waiting_for_upgrade = st.waiting_for_upgrade;
    c.filling_history = st.filling_history;
    list->items.push_back(c);
  }
  return list.release();
}

tidings_sync_backend_list* NewBackendList(std::vector<SyncHandle::BackendState> rows) {
  auto list = std::make_unique<tidings_sync_backend_list>();
  list->rows = std::move(rows);
  const size_t n = list->rows.size();
  list->error_counts.resize(n);
  list->error_pointers.resize(n);
  list->stopped_why.resize(n);
  list->realtime_detail.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const auto& r = list->rows[i];
    for (const auto& [code, count] : r.errors) {
      list->error_counts[i].push_back({static_cast<tidings_code>(code), count});
    }
    for (const auto& c : list->error_counts[i]) list->error_pointers[i].push_back(&c);
    list->stopped_why[i] = r.stopped_by.message();
    tidings_sync_backend b{};
    b.name = r.name.c_str();
    b.running = r.running;
    b.stopped_by = static_cast<tidings_code>(r.stopped_by.code());
    b.stopped_why = list->stopped_why[i].c_str();
    b.outbox_depth = r.outbox_depth;
    b.requests = r.requests;
    b.retries = r.retries;
    b.last_success_ms = r.last_ok_ms;
    b.errors = list->error_pointers[i].data();
    b.error_count = list->error_pointers[i].size();
    list->realtime_detail[i] = r.realtime.detail;
    b.realtime_available = r.realtime.available;
    b.realtime_connected = r.realtime.connected;
    b.realtime_detail = list->realtime_detail[i].c_str();
    list->items.push_back(b);
  }
  return list.release();
}

std::string Text(const char* s) { return s == nullptr ? "" : s; }

// The sync structs as first published; fields appended later are read only
// when the caller's struct_size covers them (ReadCallerStruct).
constexpr size_t kDynamoConfigV1 = TIDINGS_END_OF(tidings_dynamodb_config, endpoint);
constexpr size_t kDynamoConfigKnown = TIDINGS_END_OF(tidings_dynamodb_config, endpoint);
constexpr size_t kChimeConfigV1 = TIDINGS_END_OF(tidings_chime_config, endpoint);
constexpr size_t kChimeConfigKnown = TIDINGS_END_OF(tidings_chime_config, endpoint);
constexpr size_t kSyncOptionsV1 = TIDINGS_END_OF(tidings_sync_options, require_every_backend);
constexpr size_t kSyncOptionsKnown = TIDINGS_END_OF(tidings_sync_options, credentials_context);

Result<dynamodb::DynamoConfig> DynamoFrom(const tidings_dynamodb_config* in) {
  if (in == nullptr) return InvalidArgument("no DynamoDB configuration given (NULL)");
  TIDINGS_ASSIGN_OR_RETURN(
      auto c, ReadCallerStruct(in, kDynamoConfigV1, kDynamoConfigKnown, "tidings_dynamodb_config"));
  dynamodb::DynamoConfig out;
  if (c.table != nullptr) out.table = c.table;
  out.region = Text(c.region);
  out.endpoint = Text(c.endpoint);
  return out;
}

Result<chime::ChimeConfig> ChimeFrom(const tidings_chime_config* in) {
  if (in == nullptr) {
    return InvalidArgument(
        "no Chime configuration given (NULL): app_instance_arn and user_arn are required");
  }
  TIDINGS_ASSIGN_OR_RETURN(
      auto c, ReadCallerStruct(in, kChimeConfigV1, kChimeConfigKnown, "tidings_chime_config"));
  chime::ChimeConfig out;
  out.app_instance_arn = Text(c.app_instance_arn);
  out.user_arn = Text(c.user_arn);
  out.region = Text(c.region);
  out.endpoint = Text(c.endpoint);
  return out;
}

Result<SyncOptions> OptionsFrom(const tidings_sync_options* in) {
  SyncOptions out;
  if (in == nullptr) return out;
  TIDINGS_ASSIGN_OR_RETURN(
      auto o, ReadCallerStruct(in, kSyncOptionsV1, kSyncOptionsKnown, "tidings_sync_options"));
  const int64_t durations[] = {o.active_poll_ms, o.idle_poll_ms,       o.base_backoff_ms,
                               o.max_backoff_ms, o.connect_timeout_ms, o.request_timeout_ms,
                               o.stop_grace_ms};
  for (int64_t d : durations) {
    if (d < 0) return InvalidArgument("tidings_sync_options: durations must not be negative");
  }
  if (o.active_poll_ms > 0) out.config.active_poll_ms = o.active_poll_ms;
  if (o.idle_poll_ms > 0) out.config.idle_poll_ms = o.idle_poll_ms;
  if (o.base_backoff_ms > 0) out.config.base_backoff_ms = o.base_backoff_ms;
  if (o.max_backoff_ms > 0) out.config.max_backoff_ms = o.max_backoff_ms;
  if (o.connect_timeout_ms > 0)
    out.http.connect_timeout_ms = static_cast<long>(o.connect_timeout_ms);
  if (o.request_timeout_ms > 0) out.http.total_timeout_ms = static_cast<long>(o.request_timeout_ms);
  out.stop_grace_ms = o.stop_grace_ms;
  out.require_every_backend = o.require_every_backend;
  if (o.credentials != nullptr) {
    out.credentials = AppCredentials(o.credentials, o.credentials_context);
  }
  return out;
}

Status AddDynamo(tidings_sync& sync, const tidings_dynamodb_config* config) {
  TIDINGS_ASSIGN_OR_RETURN(auto dc, DynamoFrom(config));
  dc.user_id = sync.store->user_id();
  // Items carry a TTL while their conversation keeps messages N days.
  dc.keep_days = [store = sync.store](const std::string& conversation_id) -> uint32_t {
    auto p = store->EffectiveRetention(conversation_id);
    return p.ok() ? p->keep_days : 0;
  };
  return sync.handle->Add(
      "dynamodb",
      [dc, credentials = sync.credentials](
          std::unique_ptr<http::HttpClient> http) -> Result<std::unique_ptr<sync::Backend>> {
        TIDINGS_RETURN_IF_ERROR(aws::CheckEndpointSetting(dc.endpoint, "DYNAMODB"));
        auto backend = dynamodb::DynamoBackend::Create(dc, credentials, std::move(http));
        if (!backend) return Internal("could not set up the DynamoDB client");
        return std::unique_ptr<sync::Backend>(std::move(backend));
      });
}

Status AddChime(tidings_sync& sync, const tidings_chime_config* config) {
  TIDINGS_ASSIGN_OR_RETURN(auto cc, ChimeFrom(config));
  // Channels expire while their conversation keeps messages N days.
  cc.keep_days = [store = sync.store](const std::string& conversation_id) -> uint32_t {
    auto p = store->EffectiveRetention(conversation_id);
    return p.ok() ? p->keep_days : 0;
  };
  return sync.handle->Add(
      "chime",
      [cc, credentials = sync.credentials](
          std::unique_ptr<http::HttpClient> http) -> Result<std::unique_ptr<sync::Backend>> {
        TIDINGS_ASSIGN_OR_RETURN(auto backend,
                                 chime::ChimeBackend::Create(cc, credentials, std::move(http)));
        return std::unique_ptr<sync::Backend>(std::move(backend));
      });
}

Status OpenSync(tidings_store* store, const tidings_sync_options* options, tidings_sync** out) {
  if (store == nullptr) return InvalidArgument("no store given (NULL)");
  if (out == nullptr) return InvalidArgument("no place for the sync handle (NULL)");
  TIDINGS_ASSIGN_OR_RETURN(auto o, OptionsFrom(options));
  auto sync = std::make_unique<tidings_sync>();
  sync->store = EngineOf(store);
  sync->credentials = o.credentials;
  sync->handle = std::make_unique<SyncHandle>(&sync->store->sync_log(), std::move(o));
  *out = sync.release();
  return Status::Ok();
}

// The accessors of an opaque list with `items`.
template <typename List>
size_t ListCount(const List* list) {
  return list == nullptr ? 0 : list->items.size();
}
template <typename List>
auto ListAt(const List* list, size_t index) -> decltype(&list->items[0]) {
  if (list == nullptr || index >= list->items.size()) return nullptr;
  return &list->items[index];
}

// tidings_sync_open with the defaults, then `add` (AddDynamo, AddChime).
template <typename Config>
Status OpenWith(tidings_store* store, const Config* config, tidings_sync** out,
                Status (*add)(tidings_sync&, const Config*)) {
  tidings_sync* sync = nullptr;
  TIDINGS_RETURN_IF_ERROR(OpenSync(store, nullptr, &sync));
  std::unique_ptr<tidings_sync> owned(sync);
  TIDINGS_RETURN_IF_ERROR(add(*sync, config));
  *out = owned.release();
  return Status::Ok();
}

// As Guard, for a call on a sync handle: INVALID_ARGUMENT for NULL.
template <typename F>
tidings_code GuardSync(tidings_error* error, tidings_sync* sync, F&& f) {
  return Guard(error, [&]() -> Status {
    if (sync == nullptr) return InvalidArgument("no sync handle given (NULL)");
    return f(*sync->handle);
  });
}

}  // namespace
}  // namespace tidings::capi

using tidings::Status;
using tidings::capi::Guard;
using tidings::capi::GuardSync;
using tidings::capi::SyncHandle;

extern "C" {

size_t tidings_sync_status_list_count(const tidings_sync_status_list* list) {
  return tidings::capi::ListCount(list);
}
const tidings_sync_status* tidings_sync_status_list_at(const tidings_sync_status_list* list,
                                                       size_t index) {
  return tidings::capi::ListAt(list, index);
}
void tidings_sync_status_list_free(tidings_sync_status_list* list) { delete list; }

size_t tidings_sync_backend_list_count(const tidings_sync_backend_list* list) {
  return tidings::capi::ListCount(list);
}
const tidings_sync_backend* tidings_sync_backend_list_at(const tidings_sync_backend_list* list,
                                                         size_t index) {
  return tidings::capi::ListAt(list, index);
}
void tidings_sync_backend_list_free(tidings_sync_backend_list* list) { delete list; }

tidings_code tidings_store_sync_status(tidings_store* store, const char* backend,
                                       tidings_sync_status_list** out, tidings_error* error) {
  if (out != nullptr) *out = nullptr;
  return Guard(error, store, [&](tidings::engine::Store& s) -> Status {
    if (out == nullptr) return tidings::InvalidArgument("no place for the status (NULL)");
    std::vector<std::string> names;
    if (backend != nullptr) {
      names.emplace_back(backend);
    } else {  // every backend that ever synced this store
      TIDINGS_ASSIGN_OR_RETURN(names, tidings::sync::SyncedBackends(s.sync_log()));
    }
    std::vector<std::pair<std::string, tidings::sync::ConversationStatus>> rows;
    for (const auto& name : names) {
      TIDINGS_ASSIGN_OR_RETURN(auto statuses, tidings::sync::ReadSyncStatus(s.sync_log(), name));
      for (auto& st : statuses) rows.emplace_back(name, std::move(st));
    }
    *out = tidings::capi::NewStatusList(std::move(rows));
    return Status::Ok();
  });
}

tidings_code tidings_dynamodb_create_table(const tidings_dynamodb_config* config,
                                           tidings_error* error) {
  return Guard(error, [&]() -> Status {
    TIDINGS_ASSIGN_OR_RETURN(auto dc, tidings::capi::DynamoFrom(config));
    TIDINGS_RETURN_IF_ERROR(tidings::aws::CheckEndpointSetting(dc.endpoint, "DYNAMODB"));
    auto backend = tidings::dynamodb::DynamoBackend::Create(std::move(dc));
    if (!backend) return tidings::Internal("could not set up the DynamoDB client");
    return backend->CreateTable();
  });
}

tidings_code tidings_aws_environment_take(tidings_error* error) {
  return Guard(error, []() -> Status { return tidings::aws::TakeEnvironmentCredentials(); });
}

tidings_code tidings_aws_credentials_check(tidings_error* error) {
  return Guard(error, []() -> Status {
    auto creds = tidings::aws::DefaultCredentialsChain()->Get();
    if (creds.ok()) return Status::Ok();
    return tidings::Unauthenticated(creds.status().message());
  });
}

tidings_code tidings_sync_open(tidings_store* store, const tidings_sync_options* options,
                               tidings_sync** out, tidings_error* error) {
  if (out != nullptr) *out = nullptr;
  return Guard(error, [&]() { return tidings::capi::OpenSync(store, options, out); });
}

tidings_code tidings_sync_add_dynamodb(tidings_sync* sync, const tidings_dynamodb_config* config,
                                       tidings_error* error) {
  return GuardSync(error, sync,
                   [&](SyncHandle&) { return tidings::capi::AddDynamo(*sync, config); });
}

tidings_code tidings_sync_add_chime(tidings_sync* sync, const tidings_chime_config* config,
                                    tidings_error* error) {
  return GuardSync(error, sync,
                   [&](SyncHandle&) { return tidings::capi::AddChime(*sync, config); });
}

tidings_code tidings_sync_open_dynamodb(tidings_store* store, const tidings_dynamodb_config* config,
                                        tidings_sync** out, tidings_error* error) {
  if (out != nullptr) *out = nullptr;
  return Guard(
      error, [&] { return tidings::capi::OpenWith(store, config, out, tidings::capi::AddDynamo); });
}

tidings_code tidings_sync_open_chime(tidings_store* store, const tidings_chime_config* config,
                                     tidings_sync** out, tidings_error* error) {
  if (out != nullptr) *out = nullptr;
  return Guard(
      error, [&] { return tidings::capi::OpenWith(store, config, out, tidings::capi::AddChime); });
}

tidings_code tidings_sync_once(tidings_sync* sync, tidings_error* error) {
  return GuardSync(error, sync, [](SyncHandle& h) { return h.Once(); });
}

tidings_code tidings_sync_start(tidings_sync* sync, tidings_error* error) {
  return GuardSync(error, sync, [](SyncHandle& h) { return h.Start(); });
}

tidings_code tidings_sync_stop(tidings_sync* sync, tidings_error* error) {
  return GuardSync(error, sync, [](SyncHandle& h) {
    h.Stop();
    return Status::Ok();
  });
}

tidings_code tidings_sync_restart(tidings_sync* sync, const char* backend, tidings_error* error) {
  return GuardSync(error, sync,
                   [&](SyncHandle& h) { return h.Restart(backend == nullptr ? "" : backend); });
}

tidings_code tidings_sync_poke(tidings_sync* sync, tidings_error* error) {
  return GuardSync(error, sync, [](SyncHandle& h) {
    h.Poke();
    return Status::Ok();
  });
}

tidings_code tidings_sync_typing(tidings_sync* sync, const char* conversation_id,
                                 tidings_error* error) {
  return GuardSync(error, sync, [&](SyncHandle& h) {
    if (conversation_id == nullptr || *conversation_id == '\0') {
      return tidings::InvalidArgument("no conversation id given (NULL or empty)");
    }
    return h.Typing(conversation_id);
  });
}

tidings_code tidings_sync_load_older(tidings_sync* sync, const char* conversation_id,
                                     uint32_t pages, uint64_t* merged, bool* more,
                                     tidings_error* error) {
  if (merged != nullptr) *merged = 0;
  if (more != nullptr) *more = false;
  return GuardSync(error, sync, [&](SyncHandle& h) -> Status {
    if (conversation_id == nullptr || *conversation_id == '\0') {
      return tidings::InvalidArgument("no conversation id given (NULL or empty)");
    }
    if (merged == nullptr || more == nullptr) {
      return tidings::InvalidArgument("no place for the result (NULL merged or more)");
    }
    TIDINGS_ASSIGN_OR_RETURN(auto fill, h.LoadOlder(conversation_id, pages == 0 ? 1 : pages));
    *merged = fill.merged;
    *more = fill.more;
    return Status::Ok();
  });
}

tidings_code tidings_sync_outbox_retry(tidings_sync* sync, uint64_t seq, tidings_error* error) {
  return GuardSync(error, sync, [&](SyncHandle& h) { return h.RetryFailed(seq); });
}

tidings_code tidings_sync_outbox_discard(tidings_sync* sync, uint64_t seq, tidings_error* error) {
  return GuardSync(error, sync, [&](SyncHandle& h) { return h.DiscardFailed(seq); });
}

tidings_code tidings_sync_set_listener(tidings_sync* sync, tidings_sync_event_fn callback,
                                       void* context, tidings_error* error) {
  return GuardSync(error, sync, [&](SyncHandle& h) { return h.SetListener(callback, context); });
}

tidings_code tidings_sync_set_key_listener(tidings_sync* sync, tidings_key_event_fn callback,
                                           void* context, tidings_error* error) {
  return GuardSync(error, sync, [&](SyncHandle& h) { return h.SetKeyListener(callback, context); });
}

tidings_code tidings_sync_get_status(tidings_sync* sync, tidings_sync_status_list** out,
                                     tidings_error* error) {
  if (out != nullptr) *out = nullptr;
  return GuardSync(error, sync, [&](SyncHandle& h) -> Status {
    if (out == nullptr) return tidings::InvalidArgument("no place for the status (NULL)");
    auto rows = h.Statuses();
    for (auto& [backend, st] : rows) {
      // What this backend still has to push, now rather than as of its round.
      auto waiting = sync->store->CountOutbox(st.conversation_id, backend);
      if (waiting.ok()) st.outbox_depth = waiting->total();
    }
    *out = tidings::capi::NewStatusList(std::move(rows));
    return Status::Ok();
  });
}

tidings_code tidings_sync_backends(tidings_sync* sync, tidings_sync_backend_list** out,
                                   tidings_error* error) {
  if (out != nullptr) *out = nullptr;
  return GuardSync(error, sync, [&](SyncHandle& h) -> Status {
    if (out == nullptr) return tidings::InvalidArgument("no place for the backends (NULL)");
    TIDINGS_ASSIGN_OR_RETURN(auto rows, h.Backends());
    *out = tidings::capi::NewBackendList(std::move(rows));
    return Status::Ok();
  });
}

void tidings_sync_close(tidings_sync* sync) {
  try {
    delete sync;
  } catch (...) {
  }
}

}  // extern "C"
