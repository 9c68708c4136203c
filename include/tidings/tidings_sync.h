/* tidings_sync.h: the sync part of the C API - keeping a store in step with
 * remote backends (Amazon DynamoDB, Amazon Chime SDK Messaging) - and the
 * proof of key that lets the processes sharing a store trust each other.
 * Part of the same stable ABI as tidings.h, whose conventions (errors,
 * output, structs, strings, threads) hold here too. In short:
 *
 *  Lists    Opaque handles read with _count and _at (the item at an index,
 *           NULL past the end), freed with _free (NULL is a no-op). Items
 *           are owned by the list and valid until it is freed.
 *  Structs  The caller fills structs that start with `struct_size`; it is
 *           mandatory (0 is INVALID_ARGUMENT): prepare one with its
 *           tidings_*_init function, then set the fields you need. A zero
 *           field means "the default".
 *  AWS      Credentials come from the standard AWS chain
 *           (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN,
 *           shared files), or from the app through a callback
 *           (tidings_sync_options.credentials: e.g. refreshing Cognito
 *           credentials). They never appear in an error or a log.
 */
#ifndef TIDINGS_TIDINGS_SYNC_H_
#define TIDINGS_TIDINGS_SYNC_H_

#include <string.h>

#include "tidings/tidings.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * Persisted sync status
 * ---------------------------------------------------------------------- */

/* Where one conversation stands with one backend, as last recorded by the
 * sync engine (persisted in the store, so any process can read it). */
typedef struct tidings_sync_status {
  const char* backend; /* "dynamodb", "chime", ... */
  const char* conversation_id;
  const char* cursor;       /* opaque resume point; "" before the first pull */
  uint64_t outbox_depth;    /* operations waiting to be pushed */
  int64_t last_success_ms;  /* Unix ms; 0: never */
  int64_t last_activity_ms; /* last push or pull that moved something */
  const char* last_error;   /* "" when the last round succeeded */
  int64_t next_attempt_ms;  /* backoff: not before this (0: now) */
  uint32_t consecutive_failures;
  bool stopped; /* permission lost: no more polling until fixed */
  /* Remote operations the store refused as malformed, skipped so sync goes on. */
  uint64_t skipped_ops;
  /* End-to-end encryption (docs/security.md): */
  bool end_to_end;            /* the conversation travels sealed */
  uint64_t rejected_frames;   /* pulled frames refused as forged, foreign or broken */
  uint64_t pending_frames;    /* pulled frames waiting for the key that opens them */
  const char* last_rejection; /* why the newest refused frame was; "" if none */
  /* Pulled operations a newer Tidings wrote: kept, neither merged nor lost,
   * until this device runs a build that reads them (upgrade it). */
  uint64_t waiting_for_upgrade;
  /* Pulled newest-first, its older history is still being fetched (in the
   * background, or with tidings_sync_load_older; end-to-end: while a new
   * device reads the log again from its start). */
  bool filling_history;
} tidings_sync_status;

typedef struct tidings_sync_status_list tidings_sync_status_list; /* opaque */

/* 0 for NULL. Thread-safe. */
TIDINGS_EXPORT size_t tidings_sync_status_list_count(const tidings_sync_status_list* list);
/* The status at `index`, NULL past the end (or for a NULL list). Grouped by
 * backend (in the order the backends were added), then by conversation.
 * Thread-safe. */
TIDINGS_EXPORT const tidings_sync_status* tidings_sync_status_list_at(
    const tidings_sync_status_list* list, size_t index);
TIDINGS_EXPORT void tidings_sync_status_list_free(tidings_sync_status_list* list);

/* The persisted sync status of every conversation for `backend` (NULL: every
 * backend that has synced this store). Works on a read-only handle while
 * another process syncs the store. Errors: DATA_LOSS, INVALID_ARGUMENT.
 * Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_sync_status(tidings_store* store, const char* backend,
                                                      tidings_sync_status_list** out,
                                                      tidings_error* error);

/* ------------------------------------------------------------------------
 * Backends
 * ---------------------------------------------------------------------- */

/* Amazon DynamoDB (or a compatible local endpoint). */
typedef struct tidings_dynamodb_config {
  uint32_t struct_size; /* sizeof(tidings_dynamodb_config): use the _init */
  const char* table;    /* NULL: "tidings" */
  const char* region;   /* NULL: AWS_REGION */
  const char* endpoint; /* NULL: AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL,
                           else AWS; e.g. "http://127.0.0.1:4566" */
} tidings_dynamodb_config;

static inline void tidings_dynamodb_config_init(tidings_dynamodb_config* config) {
  memset(config, 0, sizeof *config);
  config->struct_size = sizeof *config;
}

/* Amazon Chime SDK Messaging (or tidings-chime-local, the project's local
 * emulator). Every call is made as `user_arn` (the x-amz-chime-bearer); a
 * conversation is a channel of the app instance (docs/chime.md). */
typedef struct tidings_chime_config {
  uint32_t struct_size;         /* sizeof(tidings_chime_config): use the _init */
  const char* app_instance_arn; /* required: arn:aws:chime:<region>:<account>:app-instance/<id> */
  const char* user_arn;         /* required: the AppInstanceUser this device acts as */
  const char* region;           /* NULL: AWS_REGION */
  const char* endpoint;         /* NULL: AWS_ENDPOINT_URL_CHIME_SDK_MESSAGING, AWS_ENDPOINT_URL,
                                   else AWS; e.g. "http://127.0.0.1:8081" */
} tidings_chime_config;

static inline void tidings_chime_config_init(tidings_chime_config* config) {
  memset(config, 0, sizeof *config);
  config->struct_size = sizeof *config;
}

/* Creates the DynamoDB table (on-demand capacity) if it is missing and waits
 * until it is active. Idempotent. Errors: UNAUTHENTICATED,
 * PERMISSION_DENIED, UNAVAILABLE (retry), INVALID_ARGUMENT. Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_dynamodb_create_table(const tidings_dynamodb_config* config,
                                                          tidings_error* error);

/* Looks for AWS credentials the way the backends will, without any request:
 * OK if the chain has some. Call it at start-up to report missing
 * credentials at once rather than at the first request. Errors:
 * UNAUTHENTICATED (the message says where it looked). Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_aws_credentials_check(tidings_error* error);

/* Moves AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (with AWS_ACCESS_KEY_ID)
 * out of the environment into locked memory that is wiped at exit: the
 * credentials chain uses them from there, and the environment (and
 * /proc/PID/environ, and child processes) no longer has them - the values are
 * overwritten with zeros, then unset. For a process that owns its
 * environment (`tidings` and its daemon do this at start); an app that reads
 * AWS_* itself should not. Call before other threads start (setenv/getenv are
 * not thread-safe). OK also when none are set. Errors: RESOURCE_EXHAUSTED
 * (no locked memory). */
TIDINGS_EXPORT tidings_code tidings_aws_environment_take(tidings_error* error);

/* ------------------------------------------------------------------------
 * A sync handle: one store, one or more backends
 * ---------------------------------------------------------------------- */

typedef struct tidings_sync tidings_sync; /* opaque */

/* Where an app hands over AWS credentials (temporary ones, e.g. from
 * Cognito, or long-term keys): opaque, valid only inside the callback. */
typedef struct tidings_aws_credentials_sink tidings_aws_credentials_sink;

/* Inside a tidings_aws_credentials_fn: hands over the credentials. The
 * library copies them at once (the secret key and the session token into
 * locked, wiped memory), so wipe your copies after. `session_token` NULL or
 * "": long-term keys. `expires_at_ms`: Unix ms; 0, they do not expire.
 * Errors: INVALID_ARGUMENT (NULL sink, no access key id or secret key),
 * RESOURCE_EXHAUSTED (no locked memory). Not for use outside the callback. */
TIDINGS_EXPORT tidings_code tidings_aws_credentials_set(
    tidings_aws_credentials_sink* sink, const char* access_key_id, const char* secret_access_key,
    const char* session_token, int64_t expires_at_ms, tidings_error* error);

/* Calls tidings_aws_credentials_set and returns TIDINGS_OK, or returns why
 * there are none now (UNAUTHENTICATED: sync stops until
 * tidings_sync_restart; anything else: retried with backoff). Called on a
 * sync thread or a Chime messaging session's thread, never twice at once
 * for one handle: at the first request and
 * again 5 minutes before the credentials expire (an unexpired set is kept if
 * a refresh fails). Keep it quick (hand over what the app already fetched)
 * and never call tidings_sync_* on the handle from it. */
typedef tidings_code (*tidings_aws_credentials_fn)(void* context,
                                                   tidings_aws_credentials_sink* sink);

typedef struct tidings_sync_options {
  uint32_t struct_size;       /* sizeof(tidings_sync_options): use the _init */
  int64_t active_poll_ms;     /* poll of an active conversation; 0: 2 s */
  int64_t idle_poll_ms;       /* ... backing off to this when idle; 0: 60 s */
  int64_t base_backoff_ms;    /* first retry after a failure; 0: 0.5 s */
  int64_t max_backoff_ms;     /* cap of the exponential backoff; 0: 60 s */
  int64_t connect_timeout_ms; /* per HTTP connection; 0: 5 s */
  int64_t request_timeout_ms; /* per HTTP request; 0: 30 s */
  /* How long tidings_sync_stop lets a request in flight finish before it
   * abandons it (nothing of an abandoned answer is recorded; the operation is
   * sent again later and deduplicated by its id). 0: wait for it, bounded by
   * request_timeout_ms. */
  int64_t stop_grace_ms;
  /* true: an operation leaves the outbox only once every backend of this
   * handle accepted it (e.g. delivered through Chime and persisted in
   * DynamoDB). The handle records its backends in the store when it starts
   * or runs a round; the store remembers them for later handles. false: the
   * store's setting stays as it is (by default, the first backend to accept
   * an operation is enough). docs/engine.md has the details. */
  bool require_every_backend;
  /* Where every backend of the handle gets AWS credentials: NULL, the
   * standard chain; else this callback, with `credentials_context` passed
   * back untouched (it must stay valid until the handle is closed). */
  tidings_aws_credentials_fn credentials;
  void* credentials_context;
} tidings_sync_options;

static inline void tidings_sync_options_init(tidings_sync_options* options) {
  memset(options, 0, sizeof *options);
  options->struct_size = sizeof *options;
}

/* A sync handle for `store` with no backend yet: add them with
 * tidings_sync_add_*, then run tidings_sync_once or tidings_sync_start.
 * It pushes the outbox (operation ids are idempotency keys, so nothing is
 * doubled) and pulls other replicas' operations, with one thread per backend
 * while started. `options` NULL: the defaults. The store must be open for
 * writing and outlive the handle. Errors: INVALID_ARGUMENT (NULL store or
 * out, struct_size 0, a negative duration). Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_sync_open(tidings_store* store,
                                              const tidings_sync_options* options,
                                              tidings_sync** out, tidings_error* error);

/* Adds a backend to the handle; backends are synced in the order added.
 * Errors: INVALID_ARGUMENT (NULL or bad config: the message says which
 * field), ALREADY_EXISTS (the handle has this backend),
 * FAILED_PRECONDITION (the handle is started). Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_sync_add_dynamodb(tidings_sync* sync,
                                                      const tidings_dynamodb_config* config,
                                                      tidings_error* error);
TIDINGS_EXPORT tidings_code tidings_sync_add_chime(tidings_sync* sync,
                                                   const tidings_chime_config* config,
                                                   tidings_error* error);

/* tidings_sync_open with the default options, then tidings_sync_add_*: a
 * handle with one backend. Errors as those two. Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_sync_open_dynamodb(tidings_store* store,
                                                       const tidings_dynamodb_config* config,
                                                       tidings_sync** out, tidings_error* error);
TIDINGS_EXPORT tidings_code tidings_sync_open_chime(tidings_store* store,
                                                    const tidings_chime_config* config,
                                                    tidings_sync** out, tidings_error* error);

/* One full round on the calling thread, backend after backend: push then
 * pull every conversation. OK when the round ran; per-conversation failures
 * (retried later) are in tidings_sync_get_status. Errors: UNAUTHENTICATED
 * (credentials), FAILED_PRECONDITION (started, or no backend), store errors.
 * Other calls on the handle wait for the round. */
TIDINGS_EXPORT tidings_code tidings_sync_once(tidings_sync* sync, tidings_error* error);

/* Starts one background thread per backend: each pushes right after local
 * writes, polls active conversations every active_poll_ms and idle ones up
 * to every idle_poll_ms. A backend with a push channel (Chime's messaging
 * WebSocket) connects it too: while it is up nothing is polled, remote
 * changes arrive within milliseconds and typing indicators work; while it is
 * down (reconnecting with backoff) polling resumes. See the REALTIME event
 * and tidings_sync_backend.realtime_*. An UNAUTHENTICATED answer or a store
 * error stops that backend's thread (see tidings_sync_backends and the
 * STOPPED event) until tidings_sync_restart. Errors: FAILED_PRECONDITION (already started,
 * or no backend). Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_sync_start(tidings_sync* sync, tidings_error* error);

/* Stops every backend's thread (in parallel) and waits for them, abandoning
 * requests in flight after stop_grace_ms; nothing is lost (outbox and
 * cursors are durable). The handle may be started again. Idempotent.
 * Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_sync_stop(tidings_sync* sync, tidings_error* error);

/* Restarts the thread of `backend` ("dynamodb", "chime"), or with NULL of
 * every backend an error stopped: for after the app fixed the credentials.
 * Errors: NOT_FOUND (no such backend on this handle), FAILED_PRECONDITION
 * (the handle is not started). Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_sync_restart(tidings_sync* sync, const char* backend,
                                                 tidings_error* error);

/* Asks every started backend to push and pull every conversation now (e.g.
 * after a write another process made), skipping any backoff once, and to
 * reconnect its push channel at once: call it when the network comes back
 * or the app comes to the foreground. Does nothing when not started.
 * Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_sync_poke(tidings_sync* sync, tidings_error* error);

/* Tells the other members of `conversation_id` that this user is typing
 * (Chime: a NON_PERSISTENT message; never stored anywhere). Call it on
 * keystrokes: at most one indicator per conversation per 3 s is sent, the
 * calls in between are dropped (OK). Others' typing arrives as TYPING
 * events. A backend without typing indicators ignores it (OK). Errors:
 * FAILED_PRECONDITION (not started), INVALID_ARGUMENT. Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_sync_typing(tidings_sync* sync, const char* conversation_id,
                                                tidings_error* error);

/* "The user scrolled up": fetches up to `pages` (0: one) older pages of a
 * conversation the handle's backends read newest-first (docs/sync.md,
 * "Newest first"), and merges each, with where the fill stands, in one
 * batch, now, on the calling thread (a started handle's round for the
 * conversation waits, or this call waits for it). *merged: the remote
 * operations merged (messages and changes to them; they also arrive as
 * events); *more: older history is still to fetch. Nothing to fetch (the
 * history is complete, or the conversation was never pulled: a sync brings
 * its newest page first) is OK with 0 and false. Errors:
 * FAILED_PRECONDITION (an end-to-end conversation: its history arrives
 * oldest-first as sync pulls it), INVALID_ARGUMENT (NULL or empty id, NULL
 * merged or more), a backend's error as it came (UNAVAILABLE and the like:
 * try again; UNAUTHENTICATED), CANCELLED (the handle was stopped meanwhile:
 * the page is not merged; try again), store errors. Works started or not.
 * Thread-safe; while it waits on the network, status lists, poke and typing
 * on the handle answer. */
TIDINGS_EXPORT tidings_code tidings_sync_load_older(tidings_sync* sync, const char* conversation_id,
                                                    uint32_t pages, uint64_t* merged, bool* more,
                                                    tidings_error* error);

/* tidings_store_outbox_retry / _discard for a store this handle syncs: the
 * same, plus the handle's bookkeeping (the retried operation is sent at once
 * by every started backend). Errors as those. Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_sync_outbox_retry(tidings_sync* sync, uint64_t seq,
                                                      tidings_error* error);
TIDINGS_EXPORT tidings_code tidings_sync_outbox_discard(tidings_sync* sync, uint64_t seq,
                                                        tidings_error* error);

/* The status of every conversation with every backend of the handle, as of
 * the backends' last rounds; outbox_depth counts what that backend has not
 * accepted yet, now. Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_sync_get_status(tidings_sync* sync,
                                                    tidings_sync_status_list** out,
                                                    tidings_error* error);

/* Failed requests to a backend with one error code. */
typedef struct tidings_sync_error_count {
  tidings_code code; /* UNAVAILABLE, DEADLINE_EXCEEDED, UNAUTHENTICATED, ... */
  uint64_t count;
} tidings_sync_error_count;

/* One backend of a handle, now; counters run from tidings_sync_open. */
typedef struct tidings_sync_backend {
  const char* name;        /* "dynamodb", "chime" */
  bool running;            /* its thread runs */
  tidings_code stopped_by; /* the error that stopped its thread; OK if none */
  const char* stopped_why; /* its message; "" if none */
  uint64_t outbox_depth;   /* operations this backend has not accepted yet */
  uint64_t requests;       /* HTTP requests sent */
  uint64_t retries;        /* requests that repeated an identical failed one */
  int64_t last_success_ms; /* Unix ms of the last 2xx answer; 0: none yet */
  const tidings_sync_error_count* const* errors; /* failed requests by code */
  size_t error_count;
  /* The push channel (Chime's messaging WebSocket): */
  bool realtime_available;     /* the backend has one and it runs */
  bool realtime_connected;     /* up: nothing is polled meanwhile */
  const char* realtime_detail; /* why it is down; "" while up */
} tidings_sync_backend;

typedef struct tidings_sync_backend_list tidings_sync_backend_list; /* opaque */

/* 0 for NULL. Thread-safe. */
TIDINGS_EXPORT size_t tidings_sync_backend_list_count(const tidings_sync_backend_list* list);
/* The backend at `index` in the order added; NULL past the end. */
TIDINGS_EXPORT const tidings_sync_backend* tidings_sync_backend_list_at(
    const tidings_sync_backend_list* list, size_t index);
TIDINGS_EXPORT void tidings_sync_backend_list_free(tidings_sync_backend_list* list);

/* Every backend of the handle: health and counters, e.g. for a metrics
 * endpoint. Errors: store errors (outbox depth). Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_sync_backends(tidings_sync* sync,
                                                  tidings_sync_backend_list** out,
                                                  tidings_error* error);

typedef enum tidings_sync_event_kind {
  TIDINGS_SYNC_STOPPED = 0,           /* a backend's thread stopped: code and
                                         message say why (UNAUTHENTICATED:
                                         credentials; other: the store) */
  TIDINGS_SYNC_MESSAGE_RECEIVED = 1,  /* a remote message was merged */
  TIDINGS_SYNC_MESSAGE_FAILED = 2,    /* a backend refused a local message for
                                         good; message says why */
  TIDINGS_SYNC_REQUEST_ABANDONED = 3, /* tidings_sync_stop abandoned a request
                                        after stop_grace_ms */
  TIDINGS_SYNC_TYPING = 4,            /* `user` is typing in conversation_id
                                         (show it for a few seconds) */
  TIDINGS_SYNC_REALTIME = 5           /* a backend's push channel came up (code
                                         OK) or went down, or failed to come
                                         up after the start (UNAVAILABLE,
                                         message says why; polling meanwhile) */
} tidings_sync_event_kind;

typedef struct tidings_sync_event {
  tidings_sync_event_kind kind;
  const char* backend;
  const char* conversation_id; /* "" unless a message or TYPING event */
  const char* message_id;      /* "" unless a message event */
  tidings_code code;           /* STOPPED: the error; REALTIME: OK when up; else OK */
  const char* message;         /* STOPPED, MESSAGE_FAILED, REALTIME: why; else "" */
  const char* user;            /* TYPING: who; else "" */
} tidings_sync_event;

/* Called on a sync thread (or the thread inside tidings_sync_stop for
 * REQUEST_ABANDONED); `event` is borrowed for the call only. Ignore kinds
 * you do not know: later versions add some. Keep it short;
 * it may read the store but must not call tidings_sync_* on this handle.
 * Message events are reported once, whatever the number of backends. */
typedef void (*tidings_sync_event_fn)(void* context, const tidings_sync_event* event);

/* Sets (or with NULL clears) the handle's one listener. `context` is passed
 * back untouched and must stay valid until the handle is closed or the
 * listener replaced. Errors: FAILED_PRECONDITION (started: set it before).
 * Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_sync_set_listener(tidings_sync* sync,
                                                      tidings_sync_event_fn callback, void* context,
                                                      tidings_error* error);

/* Stops (if started) and frees the handle; NULL is a no-op. Not thread-safe
 * with other calls on the same handle. */
TIDINGS_EXPORT void tidings_sync_close(tidings_sync* sync);

/* ------------------------------------------------------------------------
 * Proof of key between local processes
 *
 * A process that holds a store (a sync daemon) and another that wants it to
 * write for it must trust each other without sending the key. The holder
 * rotates an auth secret - 32 random bytes kept sealed in the store, so only
 * a holder of the store key can read it - and both sides MAC a challenge
 * with it (docs/daemon.md has the handshake).
 * ---------------------------------------------------------------------- */

#define TIDINGS_AUTH_MAC_SIZE 32

/* Replaces the store's auth secret with fresh random bytes. Errors:
 * FAILED_PRECONDITION (read-only handle), store errors. Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_auth_rotate(tidings_store* store, tidings_error* error);

/* HMAC-SHA256 of `data` under the store's current auth secret, into `mac`
 * (`mac_size` must be TIDINGS_AUTH_MAC_SIZE). A read-only handle sees a
 * secret rotated after it opened only after tidings_store_refresh.
 * Errors: UNAVAILABLE (no secret rotated in yet: retry), INVALID_ARGUMENT,
 * DATA_LOSS. Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_auth_mac(tidings_store* store, const void* data,
                                                   size_t size, uint8_t* mac, size_t mac_size,
                                                   tidings_error* error);

/* ------------------------------------------------------------------------
 * End-to-end encryption: device keys, trust, key changes, modes
 *
 * Every store is a device with its own signing and box keys, made on its
 * first writable open and kept in the encrypted store; they never leave it
 * and no call here returns them. Other users' devices are pinned on first use
 * (as the backend authenticates them) and listed with a trust state; a new
 * device of a known user, or a changed key, is a key-change event. Two people
 * compare fingerprints (30 digits in 6 groups of 5) out of band, then mark
 * the other's device verified. docs/security.md has the design.
 * ---------------------------------------------------------------------- */

/* This device. */
typedef struct tidings_identity {
  const char* user;
  const char* device_id;        /* 32 lowercase hex digits */
  const char* fingerprint;      /* this device's: "12345 67890 ..." */
  const char* user_fingerprint; /* over the user's pinned devices not removed */
} tidings_identity;

TIDINGS_EXPORT void tidings_identity_free(tidings_identity* identity);

/* This store's device and fingerprints. Works on a read-only handle.
 * Errors: NOT_FOUND (a store made by an older version, not yet opened for
 * writing: open it for writing once), DATA_LOSS. Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_identity(tidings_store* store, tidings_identity** out,
                                                   tidings_error* error);

typedef enum tidings_trust {
  TIDINGS_TRUST_UNVERIFIED = 0, /* pinned on first use, not compared */
  TIDINGS_TRUST_VERIFIED = 1,   /* fingerprints compared out of band */
  TIDINGS_TRUST_REMOVED = 2     /* gets no conversation key from this device
                                   any more; the next push starts a new epoch
                                   without it */
} tidings_trust;

/* "unverified", "verified", "removed"; "unknown" otherwise. Static. */
TIDINGS_EXPORT const char* tidings_trust_name(tidings_trust trust);

/* A pinned device of a user. */
typedef struct tidings_device {
  const char* user;
  const char* device_id;   /* 32 lowercase hex digits */
  const char* fingerprint; /* "12345 67890 ..." */
  tidings_trust trust;
  uint64_t first_seen_ms; /* Unix ms when this store pinned it */
  bool this_device;       /* the store's own device */
} tidings_device;

typedef struct tidings_device_list tidings_device_list; /* opaque */

/* 0 for NULL. Thread-safe. */
TIDINGS_EXPORT size_t tidings_device_list_count(const tidings_device_list* list);
/* The device at `index`, NULL past the end (or for a NULL list): by user,
 * then first seen. Thread-safe. */
TIDINGS_EXPORT const tidings_device* tidings_device_list_at(const tidings_device_list* list,
                                                            size_t index);
TIDINGS_EXPORT void tidings_device_list_free(tidings_device_list* list);

/* The pinned devices of `user`, or with NULL of every user the store knows
 * (itself, the members of its conversations, users met through sync). An
 * unknown user has none (an empty list). Works on a read-only handle.
 * Errors: DATA_LOSS. Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_devices(tidings_store* store, const char* user,
                                                  tidings_device_list** out, tidings_error* error);

/* Sets the trust of `user`'s pinned device `device_id`: VERIFIED after
 * comparing fingerprints out of band, REMOVED to stop sharing keys with it
 * (or back to UNVERIFIED). Errors: NOT_FOUND (no such device is pinned for
 * that user: the message says how to list them), FAILED_PRECONDITION (this
 * store's own device cannot be removed; read-only), INVALID_ARGUMENT.
 * Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_set_device_trust(tidings_store* store, const char* user,
                                                           const char* device_id,
                                                           tidings_trust trust,
                                                           tidings_error* error);

typedef enum tidings_key_event_kind {
  TIDINGS_KEY_EVENT_NEW_DEVICE = 1,  /* a known user has a device not seen before */
  TIDINGS_KEY_EVENT_KEY_CONFLICT = 2 /* a record contradicts a pinned one (the
                                        pinned one is kept) */
} tidings_key_event_kind;

/* "new-device", "key-conflict"; "unknown" otherwise. Static. */
TIDINGS_EXPORT const char* tidings_key_event_kind_name(tidings_key_event_kind kind);

/* A change in a known user's device keys: show it to the user. */
typedef struct tidings_key_event {
  uint64_t seq; /* 1, 2, 3 ... per store */
  tidings_key_event_kind kind;
  const char* user;
  const char* device_id;
  uint64_t at_ms; /* Unix ms when this store learned it */
} tidings_key_event;

typedef struct tidings_key_event_list tidings_key_event_list; /* opaque */

/* 0 for NULL. Thread-safe. */
TIDINGS_EXPORT size_t tidings_key_event_list_count(const tidings_key_event_list* list);
/* The event at `index`, oldest first; NULL past the end. Thread-safe. */
TIDINGS_EXPORT const tidings_key_event* tidings_key_event_list_at(
    const tidings_key_event_list* list, size_t index);
TIDINGS_EXPORT void tidings_key_event_list_free(tidings_key_event_list* list);

/* The key-change events with seq > `after` (0: all kept; the newest 256 are
 * kept), oldest first. Works on a read-only handle. Errors: DATA_LOSS.
 * Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_key_events(tidings_store* store, uint64_t after,
                                                     tidings_key_event_list** out,
                                                     tidings_error* error);

/* Called on a sync thread after a round that learned key-change events, once
 * per event, oldest first; `event` is borrowed for the call only. Keep it
 * short; it may read the store but must not call tidings_sync_* on this
 * handle. */
typedef void (*tidings_key_event_fn)(void* context, const tidings_key_event* event);

/* Sets (or with NULL clears) the handle's key-change listener. No event is
 * dropped: the store remembers the last seq delivered to a key-change
 * listener, so events learned while none was set (or by another process)
 * come at the next round. `context` must stay valid until the handle is
 * closed or the listener replaced. Errors: FAILED_PRECONDITION (started: set
 * it before). Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_sync_set_key_listener(tidings_sync* sync,
                                                          tidings_key_event_fn callback,
                                                          void* context, tidings_error* error);

/* How a conversation travels. */
typedef enum tidings_conversation_mode {
  /* The default for a new conversation: end-to-end encrypted from its first
   * sync on (nothing of it has left the device yet). */
  TIDINGS_MODE_END_TO_END_PENDING = 0,
  TIDINGS_MODE_END_TO_END = 1, /* sealed: servers hold only ciphertext */
  TIDINGS_MODE_PLAINTEXT = 2   /* readable on the servers, for interop with
                                  Chime clients that are not Tidings; also a
                                  conversation synced in plaintext before it
                                  had a mode, until it is upgraded */
} tidings_conversation_mode;

/* "end-to-end (pending first sync)", "end-to-end", "plaintext"; "unknown"
 * otherwise. Static. */
TIDINGS_EXPORT const char* tidings_conversation_mode_name(tidings_conversation_mode mode);

/* The mode of conversation `id`. Works on a read-only handle. Errors:
 * NOT_FOUND (no such conversation), DATA_LOSS. Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_conversation_mode(tidings_store* store, const char* id,
                                                            tidings_conversation_mode* out,
                                                            tidings_error* error);

/* Creates conversation `id` (title and members as
 * tidings_store_put_conversation): end-to-end by default, or with
 * `plaintext` true in plaintext mode, explicitly. Errors: ALREADY_EXISTS
 * (the conversation exists: its mode is kept; upgrade it to change it),
 * INVALID_ARGUMENT, TOO_LARGE, FAILED_PRECONDITION (read-only).
 * Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_create_conversation(tidings_store* store, const char* id,
                                                              const char* title,
                                                              const char* const* members,
                                                              size_t member_count, bool plaintext,
                                                              tidings_error* error);

/* Upgrades a plaintext conversation (made so, or synced in plaintext before
 * it had a mode) to end-to-end: from its next sync on its
 * operations go to a new sealed log (the old plaintext log is still pulled
 * for history). An end-to-end conversation is left as it is (OK); there is
 * no way back to plaintext. Errors: NOT_FOUND, FAILED_PRECONDITION
 * (read-only). Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_upgrade_conversation(tidings_store* store, const char* id,
                                                               tidings_error* error);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TIDINGS_TIDINGS_SYNC_H_ */
