// tidings_attachments.hpp: the C++ layer over tidings_attachments.h, in the
// style of tidings.hpp (header-only, errors as api::Status / api::Result).
//
//   api::SendRequest r{.conversation_id = "visit", .body = "the scan"};
//   r.attachments.push_back({.path = "/tmp/scan.pdf", .name = "scan.pdf"});
//   store.Send(r);                                    // encrypted into the store
//   api::SetAttachmentStore(sync, {.bucket = "clinic-media"});
//   api::FetchAttachment(sync, m.attachments[0].object);   // on the other device
//   api::ExportAttachment(store, m.attachments[0].object, "/tmp/out.pdf");
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tidings/tidings.hpp"
#include "tidings/tidings_attachments.h"
#include "tidings/tidings_sync.hpp"

namespace tidings::api {

enum class AttachmentState {
  kQueued = TIDINGS_ATTACHMENT_QUEUED,
  kUploading = TIDINGS_ATTACHMENT_UPLOADING,
  kSent = TIDINGS_ATTACHMENT_SENT,
  kFailed = TIDINGS_ATTACHMENT_FAILED,
  kRemote = TIDINGS_ATTACHMENT_REMOTE,
  kDownloading = TIDINGS_ATTACHMENT_DOWNLOADING,
  kAvailable = TIDINGS_ATTACHMENT_AVAILABLE,
  kEvicted = TIDINGS_ATTACHMENT_EVICTED,
};

inline const char* AttachmentStateName(AttachmentState s) {
  return tidings_attachment_state_name(static_cast<tidings_attachment_state>(s));
}

struct AttachmentStatus {
  std::string object;
  uint64_t size = 0;
  uint64_t object_size = 0;
  AttachmentState state = AttachmentState::kRemote;
  std::string failure_reason;
  uint64_t references = 0;
  std::string location;
  uint64_t last_used_ms = 0;
};

struct S3Config {
  std::string bucket;    // required
  std::string region;    // empty: AWS_REGION
  std::string endpoint;  // empty: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS
  bool path_style = false;
  uint64_t auto_fetch_max_bytes = 0;  // fetch received files up to this size at once
};

// Bytes done of total; return false to cancel.
using TransferProgress = std::function<bool(uint64_t done, uint64_t total)>;

namespace internal {
inline bool TransferTrampoline(void* context, uint64_t done, uint64_t total) {
  return (*static_cast<const TransferProgress*>(context))(done, total);
}
}  // namespace internal

// Every attachment object of the store; `object` non-empty: that one.
inline Result<std::vector<AttachmentStatus>> Attachments(Store& store,
                                                         const std::string& object = "") {
  tidings_attachment_list* list = nullptr;
  Status s = internal::Call([&](tidings_error* e) {
    return tidings_store_attachments(store.c_handle(), object.empty() ? nullptr : object.c_str(),
                                     &list, e);
  });
  if (!s.ok()) return s;
  std::vector<AttachmentStatus> out;
  for (size_t i = 0; i < tidings_attachment_list_count(list); ++i) {
    const tidings_attachment_status* a = tidings_attachment_list_at(list, i);
    out.push_back({a->object, a->size, a->object_size, static_cast<AttachmentState>(a->state),
                   a->failure_reason, a->references, a->location, a->last_used_ms});
  }
  tidings_attachment_list_free(list);
  return out;
}

inline Status ExportAttachment(Store& store, const std::string& object, const std::string& path,
                               const TransferProgress& progress = nullptr) {
  return internal::Call([&](tidings_error* e) {
    return tidings_store_attachment_export(store.c_handle(), object.c_str(), path.c_str(),
                                           progress ? internal::TransferTrampoline : nullptr,
                                           const_cast<void*>(static_cast<const void*>(&progress)),
                                           e);
  });
}

inline Status EvictAttachment(Store& store, const std::string& object) {
  return internal::Call([&](tidings_error* e) {
    return tidings_store_attachment_evict(store.c_handle(), object.c_str(), e);
  });
}

inline Status SetAttachmentStore(Sync& sync, const S3Config& config) {
  tidings_s3_config c;
  tidings_s3_config_init(&c);
  c.bucket = config.bucket.c_str();
  c.region = config.region.empty() ? nullptr : config.region.c_str();
  c.endpoint = config.endpoint.empty() ? nullptr : config.endpoint.c_str();
  c.path_style = config.path_style;
  c.auto_fetch_max_bytes = config.auto_fetch_max_bytes;
  return internal::Call(
      [&](tidings_error* e) { return tidings_sync_set_attachment_store(sync.c_handle(), &c, e); });
}

inline Status FetchAttachment(Sync& sync, const std::string& object,
                              const TransferProgress& progress = nullptr) {
  return internal::Call([&](tidings_error* e) {
    return tidings_sync_fetch_attachment(sync.c_handle(), object.c_str(),
                                         progress ? internal::TransferTrampoline : nullptr,
                                         const_cast<void*>(static_cast<const void*>(&progress)), e);
  });
}

}  // namespace tidings::api
