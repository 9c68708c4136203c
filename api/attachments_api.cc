// The C API's attachment calls (include/tidings/tidings_attachments.h) over
// the store's attachment records and the sync handle's AttachmentSync.
#include <atomic>
#include <string>
#include <vector>

#include "api/internal.h"
#include "api/struct_size.h"
#include "api/sync_handle.h"
#include "tidings/tidings_attachments.h"

using tidings::Status;
using tidings::capi::Guard;

// Owns the engine's objects and the C structs that point into them.
struct tidings_attachment_list {
  std::vector<tidings::engine::AttachmentObject> objects;
  std::vector<std::string> hex;
  std::vector<tidings_attachment_status> items;
};

namespace {

namespace engine = tidings::engine;

constexpr size_t kS3ConfigV1 = TIDINGS_END_OF(tidings_s3_config, auto_fetch_max_bytes);

// The engine's progress and cancel flag over a tidings_transfer_fn.
struct Transfer {
  tidings_transfer_fn fn = nullptr;
  void* context = nullptr;
  std::atomic<bool> cancel{false};
  engine::AttachmentProgress progress() {
    if (fn == nullptr) return nullptr;
    return [this](uint64_t done, uint64_t total) {
      if (!fn(context, done, total)) cancel = true;
    };
  }
};

tidings_attachment_list* NewList(std::vector<engine::AttachmentObject> objects) {
  auto* list = new tidings_attachment_list;
  list->objects = std::move(objects);
  for (const auto& o : list->objects) list->hex.push_back(tidings::capi::ObjectHex(o.object));
  for (size_t i = 0; i < list->objects.size(); ++i) {
    const auto& o = list->objects[i];
    list->items.push_back(tidings_attachment_status{
        list->hex[i].c_str(), o.size, o.object_size, static_cast<tidings_attachment_state>(o.state),
        o.failure_reason.c_str(), o.references, o.location.c_str(), o.last_used_ms});
  }
  return list;
}

}  // namespace

extern "C" {

const char* tidings_attachment_state_name(tidings_attachment_state state) {
  const int raw = tidings::capi::RawEnum(state);
  if (raw < 0 || raw > static_cast<int>(engine::AttachmentState::kEvicted)) return "unknown";
  return engine::AttachmentStateName(static_cast<engine::AttachmentState>(raw));
}

size_t tidings_attachment_list_count(const tidings_attachment_list* list) {
  return list == nullptr ? 0 : list->items.size();
}

const tidings_attachment_status* tidings_attachment_list_at(const tidings_attachment_list* list,
                                                            size_t index) {
  if (list == nullptr || index >= list->items.size()) return nullptr;
  return &list->items[index];
}

void tidings_attachment_list_free(tidings_attachment_list* list) { delete list; }

tidings_code tidings_store_attachments(tidings_store* store, const char* object,
                                       tidings_attachment_list** out, tidings_error* error) {
  if (out != nullptr) *out = nullptr;
  return Guard(error, store, [&](engine::Store& s) -> Status {
    if (out == nullptr) return tidings::InvalidArgument("no place for the list (NULL)");
    std::vector<engine::AttachmentObject> objects;
    if (object != nullptr) {
      TIDINGS_ASSIGN_OR_RETURN(std::string id, tidings::capi::ObjectFromHex(object));
      TIDINGS_ASSIGN_OR_RETURN(engine::AttachmentObject one, s.GetAttachment(id));
      objects.push_back(std::move(one));
    } else {
      TIDINGS_ASSIGN_OR_RETURN(objects, s.Attachments());
    }
    *out = NewList(std::move(objects));
    return Status::Ok();
  });
}

tidings_code tidings_store_attachment_export(tidings_store* store, const char* object,
                                             const char* path, tidings_transfer_fn progress,
                                             void* progress_context, tidings_error* error) {
  return Guard(error, store, [&](engine::Store& s) -> Status {
    TIDINGS_ASSIGN_OR_RETURN(std::string id, tidings::capi::ObjectFromHex(object));
    if (path == nullptr || *path == '\0') return tidings::InvalidArgument("no path given");
    Transfer t{progress, progress_context};
    return s.ExportAttachment(id, path, t.progress(), &t.cancel);
  });
}

tidings_code tidings_store_attachment_evict(tidings_store* store, const char* object,
                                            tidings_error* error) {
  return Guard(error, store, [&](engine::Store& s) -> Status {
    TIDINGS_ASSIGN_OR_RETURN(std::string id, tidings::capi::ObjectFromHex(object));
    return s.EvictAttachment(id);
  });
}

tidings_code tidings_sync_set_attachment_store(tidings_sync* sync, const tidings_s3_config* config,
                                               tidings_error* error) {
  return Guard(error, [&]() -> Status {
    if (sync == nullptr) return tidings::InvalidArgument("no sync handle given (NULL)");
    if (config == nullptr) return tidings::InvalidArgument("no S3 configuration given (NULL)");
    TIDINGS_ASSIGN_OR_RETURN(
        tidings_s3_config c,
        tidings::capi::ReadCallerStruct(config, kS3ConfigV1, kS3ConfigV1, "tidings_s3_config"));
    if (c.bucket == nullptr || *c.bucket == '\0') {
      return tidings::InvalidArgument("no S3 bucket given (tidings_s3_config.bucket)");
    }
    tidings::s3::S3Config s3;
    if (c.region != nullptr) s3.region = c.region;
    if (c.endpoint != nullptr) s3.endpoint = c.endpoint;
    if (c.path_style) s3.addressing = tidings::s3::Addressing::kPath;
    return sync->handle->SetAttachmentStore(s3, c.bucket, c.auto_fetch_max_bytes);
  });
}

tidings_code tidings_sync_fetch_attachment(tidings_sync* sync, const char* object,
                                           tidings_transfer_fn progress, void* progress_context,
                                           tidings_error* error) {
  return Guard(error, [&]() -> Status {
    if (sync == nullptr) return tidings::InvalidArgument("no sync handle given (NULL)");
    TIDINGS_ASSIGN_OR_RETURN(std::string id, tidings::capi::ObjectFromHex(object));
    Transfer t{progress, progress_context};
    return sync->handle->FetchAttachment(id, t.progress(), &t.cancel);
  });
}

}  // extern "C"
