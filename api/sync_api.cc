// The sync part of the C API: persisted status, and a SyncEngine over the
// DynamoDB or Chime backend. Same boundary rules as c_api.cc (see internal.h).
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/internal.h"
#include "sync/chime/chime_backend.h"
#include "sync/core/sync_engine.h"
#include "sync/dynamodb/dynamodb_backend.h"
#include "tidings/tidings.h"

struct tidings_sync {
  // Declared in this order so the engine (which uses the backend) goes first.
  std::unique_ptr<tidings::sync::Backend> backend;
  std::unique_ptr<tidings::sync::SyncEngine> engine;
  std::string backend_name;
  tidings::engine::Store* store = nullptr;
};

namespace tidings::capi {
namespace {

struct StatusRow {
  std::string backend;
  sync::ConversationStatus st;
};
struct StatusListBacking {
  std::vector<StatusRow> rows;  // never resized once items point in
  std::vector<tidings_sync_status> items;
};
struct StatusListBox {
  tidings_sync_status_list pub;
  StatusListBacking* backing;
};

tidings_sync_status_list* NewStatusList(std::vector<StatusRow> rows) {
  auto* b = new StatusListBacking{std::move(rows), {}};
  for (const auto& r : b->rows) {
    tidings_sync_status c{};
    c.backend = r.backend.c_str();
    c.conversation_id = r.st.conversation_id.c_str();
    c.cursor = r.st.cursor.c_str();
    c.outbox_depth = r.st.outbox_depth;
    c.last_success_ms = r.st.last_success_ms;
    c.last_activity_ms = r.st.last_activity_ms;
    c.last_error = r.st.last_error.c_str();
    c.next_attempt_ms = r.st.next_attempt_ms;
    c.consecutive_failures = r.st.consecutive_failures;
    c.stopped = r.st.stopped;
    b->items.push_back(c);
  }
  auto* box = new StatusListBox{{b->items.data(), b->items.size()}, b};
  return &box->pub;
}

// A string field of a versioned config struct; nullopt when it is NULL or
// the caller's struct predates it (struct_size too small; 0 means "current").
template <typename Config>
std::optional<std::string> Field(const Config* c, size_t offset, const char* const& value) {
  bool has = c->struct_size == 0 || c->struct_size >= offset + sizeof(value);
  if (!has || value == nullptr) return std::nullopt;
  return std::string(value);
}

dynamodb::DynamoConfig DynamoFrom(const tidings_dynamodb_config* c) {
  dynamodb::DynamoConfig out;
  if (c == nullptr) return out;
  if (auto table = Field(c, offsetof(tidings_dynamodb_config, table), c->table)) out.table = *table;
  out.region = Field(c, offsetof(tidings_dynamodb_config, region), c->region).value_or("");
  out.endpoint = Field(c, offsetof(tidings_dynamodb_config, endpoint), c->endpoint).value_or("");
  return out;
}

chime::ChimeConfig ChimeFrom(const tidings_chime_config* c) {
  chime::ChimeConfig out;
  if (c == nullptr) return out;
  out.app_instance_arn =
      Field(c, offsetof(tidings_chime_config, app_instance_arn), c->app_instance_arn).value_or("");
  out.user_arn = Field(c, offsetof(tidings_chime_config, user_arn), c->user_arn).value_or("");
  out.region = Field(c, offsetof(tidings_chime_config, region), c->region).value_or("");
  out.endpoint = Field(c, offsetof(tidings_chime_config, endpoint), c->endpoint).value_or("");
  return out;
}

Status OpenSync(engine::Store& s, std::unique_ptr<sync::Backend> backend, tidings_sync** out) {
  auto handle = std::make_unique<tidings_sync>();
  handle->backend = std::move(backend);
  handle->backend_name = std::string(handle->backend->name());
  handle->store = &s;
  handle->engine = std::make_unique<sync::SyncEngine>(&s.sync_log(), handle->backend.get());
  *out = handle.release();
  return Status::Ok();
}

}  // namespace
}  // namespace tidings::capi

using tidings::Status;
using tidings::capi::Guard;

extern "C" {

void tidings_sync_status_list_free(tidings_sync_status_list* list) {
  if (list == nullptr) return;
  auto* box = reinterpret_cast<tidings::capi::StatusListBox*>(list);
  delete box->backing;
  delete box;
}

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
    std::vector<tidings::capi::StatusRow> rows;
    for (const auto& name : names) {
      TIDINGS_ASSIGN_OR_RETURN(auto statuses, tidings::sync::ReadSyncStatus(s.sync_log(), name));
      for (auto& st : statuses) rows.push_back({name, std::move(st)});
    }
    *out = tidings::capi::NewStatusList(std::move(rows));
    return Status::Ok();
  });
}

tidings_code tidings_dynamodb_create_table(const tidings_dynamodb_config* config,
                                           tidings_error* error) {
  return Guard(error, [&]() -> Status {
    auto backend = tidings::dynamodb::DynamoBackend::Create(tidings::capi::DynamoFrom(config));
    if (!backend) return tidings::Internal("could not set up the DynamoDB client");
    return backend->CreateTable();
  });
}

tidings_code tidings_sync_open_dynamodb(tidings_store* store, const tidings_dynamodb_config* config,
                                        tidings_sync** out, tidings_error* error) {
  if (out != nullptr) *out = nullptr;
  return Guard(error, store, [&](tidings::engine::Store& s) -> Status {
    if (out == nullptr) return tidings::InvalidArgument("no place for the sync handle (NULL)");
    auto dyn = tidings::capi::DynamoFrom(config);
    dyn.user_id = s.user_id();
    auto backend = tidings::dynamodb::DynamoBackend::Create(std::move(dyn));
    if (!backend) return tidings::Internal("could not set up the DynamoDB client");
    return tidings::capi::OpenSync(s, std::move(backend), out);
  });
}

tidings_code tidings_sync_open_chime(tidings_store* store, const tidings_chime_config* config,
                                     tidings_sync** out, tidings_error* error) {
  if (out != nullptr) *out = nullptr;
  return Guard(error, store, [&](tidings::engine::Store& s) -> Status {
    if (out == nullptr) return tidings::InvalidArgument("no place for the sync handle (NULL)");
    if (config == nullptr) {
      return tidings::InvalidArgument(
          "no Chime configuration given (NULL): app_instance_arn and user_arn are required");
    }
    TIDINGS_ASSIGN_OR_RETURN(
        auto backend, tidings::chime::ChimeBackend::Create(tidings::capi::ChimeFrom(config)));
    return tidings::capi::OpenSync(s, std::move(backend), out);
  });
}

tidings_code tidings_sync_once(tidings_sync* sync, tidings_error* error) {
  return Guard(error, [&]() -> Status {
    if (sync == nullptr) return tidings::InvalidArgument("no sync handle given (NULL)");
    return sync->engine->SyncOnce();
  });
}

tidings_code tidings_sync_start(tidings_sync* sync, tidings_error* error) {
  return Guard(error, [&]() -> Status {
    if (sync == nullptr) return tidings::InvalidArgument("no sync handle given (NULL)");
    return sync->engine->Start();
  });
}

tidings_code tidings_sync_stop(tidings_sync* sync, tidings_error* error) {
  return Guard(error, [&]() -> Status {
    if (sync == nullptr) return tidings::InvalidArgument("no sync handle given (NULL)");
    sync->engine->Stop();
    return Status::Ok();
  });
}

tidings_code tidings_sync_get_status(tidings_sync* sync, tidings_sync_status_list** out,
                                     tidings_error* error) {
  if (out != nullptr) *out = nullptr;
  return Guard(error, [&]() -> Status {
    if (sync == nullptr) return tidings::InvalidArgument("no sync handle given (NULL)");
    if (out == nullptr) return tidings::InvalidArgument("no place for the status (NULL)");
    std::vector<tidings::capi::StatusRow> rows;
    for (auto& st : sync->engine->Snapshot()) {
      // The depth now, as tidings_store_sync_status reports it, not as of the
      // round.
      auto outbox = sync->store->CountOutbox(st.conversation_id);
      if (outbox.ok()) st.outbox_depth = outbox->total();
      rows.push_back({sync->backend_name, std::move(st)});
    }
    *out = tidings::capi::NewStatusList(std::move(rows));
    return Status::Ok();
  });
}

void tidings_sync_close(tidings_sync* sync) {
  if (sync == nullptr) return;
  try {
    sync->engine->Stop();
    delete sync;
  } catch (...) {
  }
}

}  // extern "C"
