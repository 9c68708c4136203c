// What a store knows of its attachments' objects (docs/attachments.md): the
// app's and sync's view of one object - how big, who refers to it, whether
// this device holds it and where its upload or download stands. The files
// are engine/attachment_files.h; the records, family "attachments"
// (engine/attachment_records.cc).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "crypto/secret_key.h"
#include "engine/attachment_files.h"

namespace tidings::engine {

// Where an object stands on this device.
enum class AttachmentState : uint8_t {
  // Sent from this device: held until its upload is done.
  kQueued = 0,     // waiting for the message's push
  kUploading = 1,  // a multipart upload has parts on the server
  kSent = 2,       // on the server
  kFailed = 3,     // the upload failed for good; see failure_reason
  // Received: the message arrived, the object comes on demand.
  kRemote = 4,       // not downloaded
  kDownloading = 5,  // part of it is here
  kAvailable = 6,    // held whole
  kEvicted = 7,      // was held, removed to keep within the quota (or by the app)
};
const char* AttachmentStateName(AttachmentState s);  // "queued", "uploading", ...

struct AttachmentObject {
  std::string object;  // SHA-256 of the encrypted object: 32 bytes
  uint64_t size = 0;   // plaintext bytes
  uint64_t object_size = 0;
  AttachmentState state = AttachmentState::kRemote;
  std::string failure_reason;  // kFailed: what went wrong; no file names or contents
  uint64_t references = 0;     // messages that hold it
  std::string location;        // the bucket, once known
  uint64_t last_used_ms = 0;   // when it was imported or downloaded
  bool held() const {
    return state == AttachmentState::kQueued || state == AttachmentState::kUploading ||
           state == AttachmentState::kSent || state == AttachmentState::kAvailable;
  }
};

// What a transfer needs of an object: the object as above, its content key
// (in sodium memory) and the upload's saved progress (sync/attachments'
// UploadState, opaque to the store).
struct AttachmentTransfer {
  AttachmentObject info;
  crypto::SecretKey content_key;
  std::string upload_progress;
};

// One file to send with a message (SendRequest::attachments).
struct AttachmentInput {
  std::string path;             // read from this file, or
  AttachmentSource read;        // from this callback when path is empty
  std::string name;             // shown to the recipient; up to kMaxAttachmentNameBytes
  std::string content_type;     // empty: application/octet-stream
  std::string preview;          // an inline thumbnail, up to kMaxPreviewBytes
  AttachmentProgress progress;  // encrypting: bytes done
  const std::atomic<bool>* cancel = nullptr;
};

}  // namespace tidings::engine
