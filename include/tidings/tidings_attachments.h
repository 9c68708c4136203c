/* tidings_attachments.h: files sent with messages (docs/attachments.md). The
 * conventions of tidings.h hold here: errors, out-parameters, struct_size on
 * caller-filled structs, lists read through functions.
 *
 * Sending: put tidings_attachment_input entries on a tidings_send_request.
 * The send encrypts each file into the store (one object per distinct file,
 * under its own key) before it returns; sync uploads the objects to S3
 * (tidings_sync_set_attachment_store) and pushes the message only once they
 * are there. The message carries each file's reference - with its key,
 * end-to-end encrypted when the conversation is - and S3 holds only
 * ciphertext under an opaque key.
 *
 * Receiving: a message's tidings_attachment entries name objects this device
 * does not hold yet; tidings_sync_fetch_attachment downloads one (checked
 * range by range), tidings_store_attachment_export decrypts it to a file.
 *
 * Object names are 64 hex digits (tidings_attachment.object). */
#ifndef TIDINGS_TIDINGS_ATTACHMENTS_H_
#define TIDINGS_TIDINGS_ATTACHMENTS_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h> /* memset, for tidings_s3_config_init */

#include "tidings/tidings.h"
#include "tidings/tidings_sync.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Progress of a transfer: bytes done of `total`. Return false to cancel it
 * (the call returns TIDINGS_CANCELLED). */
typedef bool (*tidings_transfer_fn)(void* context, uint64_t done, uint64_t total);

typedef enum tidings_attachment_state {
  /* Sent from this device, kept until uploaded: */
  TIDINGS_ATTACHMENT_QUEUED = 0,    /* waiting for the message's push */
  TIDINGS_ATTACHMENT_UPLOADING = 1, /* part of it is on the server */
  TIDINGS_ATTACHMENT_SENT = 2,      /* on the server */
  TIDINGS_ATTACHMENT_FAILED = 3,    /* the upload cannot succeed: failure_reason */
  /* Received: */
  TIDINGS_ATTACHMENT_REMOTE = 4,      /* not downloaded */
  TIDINGS_ATTACHMENT_DOWNLOADING = 5, /* part of it is here */
  TIDINGS_ATTACHMENT_AVAILABLE = 6,   /* here, whole */
  TIDINGS_ATTACHMENT_EVICTED = 7      /* removed to keep within the quota; fetch again */
} tidings_attachment_state;

/* "queued", "uploading", ...; "unknown" otherwise. Static. Thread-safe. */
TIDINGS_EXPORT const char* tidings_attachment_state_name(tidings_attachment_state state);

/* One object as this device knows it. */
typedef struct tidings_attachment_status {
  const char* object; /* 64 hex digits */
  uint64_t size;      /* bytes of the file */
  uint64_t object_size;
  tidings_attachment_state state;
  const char* failure_reason; /* "" unless FAILED; never file names or contents */
  uint64_t references;        /* messages that hold it */
  const char* location;       /* the S3 bucket, once known; else "" */
  uint64_t last_used_ms;      /* Unix ms it was imported or downloaded */
} tidings_attachment_status;

/* Opaque, like tidings_message_list. */
typedef struct tidings_attachment_list tidings_attachment_list;

/* The number of objects; 0 for NULL. Thread-safe. */
TIDINGS_EXPORT size_t tidings_attachment_list_count(const tidings_attachment_list* list);
/* The object at `index`, owned by the list; NULL past the end. */
TIDINGS_EXPORT const tidings_attachment_status* tidings_attachment_list_at(
    const tidings_attachment_list* list, size_t index);
TIDINGS_EXPORT void tidings_attachment_list_free(tidings_attachment_list* list);

/* The store's attachment objects, in object order; `object` non-NULL: that
 * one only (NOT_FOUND if no message holds it). Errors: INVALID_ARGUMENT (not
 * 64 hex digits), DATA_LOSS. Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_attachments(tidings_store* store, const char* object,
                                                      tidings_attachment_list** out,
                                                      tidings_error* error);

/* Decrypts object `object` to the new file `path` (0600). The file appears
 * only once the whole object opened: a damaged object is DATA_LOSS and
 * leaves nothing at `path`. FAILED_PRECONDITION if this device does not hold
 * it (fetch it first); NOT_FOUND if no message holds it; CANCELLED by
 * `progress` (may be NULL). Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_attachment_export(tidings_store* store,
                                                            const char* object, const char* path,
                                                            tidings_transfer_fn progress,
                                                            void* progress_context,
                                                            tidings_error* error);

/* Removes a downloaded object's file; a later fetch brings it back.
 * FAILED_PRECONDITION for a file this device sent that is not uploaded yet
 * (it is the only copy). Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_attachment_evict(tidings_store* store, const char* object,
                                                           tidings_error* error);

/* Where a sync handle keeps attachments: an S3 bucket (or a compatible
 * local server). Credentials are the handle's (tidings_sync_options). The
 * device needs s3:PutObject, GetObject, AbortMultipartUpload and
 * ListMultipartUploadParts on the bucket's objects (docs/s3.md has the
 * policy); give the bucket an AbortIncompleteMultipartUpload lifecycle
 * rule. */
typedef struct tidings_s3_config {
  uint32_t struct_size; /* set by tidings_s3_config_init */
  const char* bucket;   /* required */
  const char* region;   /* NULL: AWS_REGION */
  const char* endpoint; /* NULL: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS */
  bool path_style;      /* endpoint/bucket/key even for DNS-style bucket names */
  /* Received attachments of at most this many bytes are downloaded as soon
   * as their message is merged (by the sync thread); larger ones, and all
   * when 0, with tidings_sync_fetch_attachment. */
  uint64_t auto_fetch_max_bytes;
} tidings_s3_config;

static inline void tidings_s3_config_init(tidings_s3_config* config) {
  memset(config, 0, sizeof *config);
  config->struct_size = (uint32_t)sizeof *config;
}

/* Makes `config`'s bucket where this handle's sends upload their
 * attachments and fetches download them. Without one, a send with
 * attachments fails (parked) saying so. Set it before tidings_sync_start.
 * Errors: INVALID_ARGUMENT (no bucket, a bad endpoint), FAILED_PRECONDITION
 * (started). */
TIDINGS_EXPORT tidings_code tidings_sync_set_attachment_store(tidings_sync* sync,
                                                              const tidings_s3_config* config,
                                                              tidings_error* error);

/* Downloads object `object` into the store unless it is here already,
 * resuming a partial download; each range is checked as it comes. Errors:
 * DATA_LOSS (the server's bytes are not the object the message names;
 * nothing is kept), UNAVAILABLE (retry; the next fetch resumes), NOT_FOUND,
 * FAILED_PRECONDITION (no attachment store set), CANCELLED (by `progress`;
 * the part downloaded stays for the next fetch), UNAUTHENTICATED,
 * PERMISSION_DENIED. Blocks; call it off the UI thread. Thread-safe: sync's
 * uploads run beside it; other fetches (the app's, sync's automatic ones)
 * wait for it. */
TIDINGS_EXPORT tidings_code tidings_sync_fetch_attachment(tidings_sync* sync, const char* object,
                                                          tidings_transfer_fn progress,
                                                          void* progress_context,
                                                          tidings_error* error);

#ifdef __cplusplus
}
#endif

#endif /* TIDINGS_TIDINGS_ATTACHMENTS_H_ */
