/* tidings.h: the C API of Tidings, an embeddable, local-first, encrypted
 * message store. This is the stable ABI; the shared library exports exactly
 * the tidings_* functions declared here and nothing else.
 *
 * Conventions (hold for every declaration unless it says otherwise):
 *
 *  Errors   Every function that can fail returns a tidings_code and, when the
 *           caller passes a non-NULL `tidings_error* error`, fills it: on
 *           failure with the code and a message that says what happened and
 *           what to do; on success it is CLEARED (code TIDINGS_OK, empty
 *           message), so a reused error struct never carries stale text.
 *           Messages never contain message text, keys or passphrases. Branch
 *           on the code, not on the message. No C++ exception ever crosses
 *           this API: an unexpected one becomes TIDINGS_INTERNAL.
 *  Output   Out-parameters (`**out`) are written only on success; on failure
 *           they are set to NULL. Objects returned through them are owned by
 *           the caller and freed with the matching tidings_*_free function
 *           (each accepts NULL). Pointers inside a returned object (strings,
 *           arrays) are owned by that object and valid until it is freed.
 *  Structs  Structs returned by the library are allocated by it: never
 *           allocate, copy by value or free them yourself; later versions
 *           append fields at their end, so read them only through the
 *           pointers the library gives you. For the same reason a list is an
 *           opaque handle read with tidings_<list>_count and _at, and an array
 *           of structs inside a returned struct is an array of pointers.
 *           Structs the caller fills (options, requests) start with
 *           `struct_size`: initialise each with its tidings_<struct>_init
 *           function below, which zeroes it and sets struct_size to the size
 *           you compiled against, then set the fields you need; a zero field
 *           means "the default". The library reads only the fields your
 *           struct_size covers and refuses with INVALID_ARGUMENT a
 *           struct_size of 0, one smaller than the first published version of
 *           the struct, or a larger one (a newer header than the library)
 *           whose fields this library does not know are not all zero.
 *           The value types tidings_error, tidings_order and
 *           tidings_key_source never grow.
 *  Strings  NUL-terminated UTF-8 unless a size is given. Message bodies are
 *           byte strings with an explicit size (also NUL-terminated for
 *           convenience).
 *  Threads  A tidings_store may be used from any number of threads at once;
 *           all store functions are thread-safe, except tidings_store_close,
 *           which the caller must not race with any other call on the same
 *           store. Returned objects are immutable: read them from any thread,
 *           free each exactly once. Callbacks run on library threads as
 *           documented at each one.
 */
#ifndef TIDINGS_TIDINGS_H_
#define TIDINGS_TIDINGS_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h> /* memset, for the tidings_*_init functions */

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define TIDINGS_EXPORT
#else
#define TIDINGS_EXPORT __attribute__((visibility("default")))
#endif

/* ------------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------- */

/* Status codes. Values mirror the library's internal tidings::Code and
 * never change; new codes are only appended. What a caller should do:
 *   retry with backoff:  UNAVAILABLE, ABORTED, DEADLINE_EXCEEDED,
 *                        RESOURCE_EXHAUSTED (see tidings_code_is_retryable)
 *   ask the user:        WRONG_KEY (key or passphrase does not open the
 *                        store), PERMISSION_DENIED (e.g. key file readable by
 *                        others), UNAUTHENTICATED (backend credentials)
 *   fix the call:        INVALID_ARGUMENT, TOO_LARGE, NOT_FOUND,
 *                        ALREADY_EXISTS, FAILED_PRECONDITION
 *   open read-only:      BUSY (another process holds the store for writing)
 *   restore / re-sync:   DATA_LOSS (corrupt or tampered data; never garbage)
 *   report a bug:        INTERNAL */
typedef enum tidings_code {
  TIDINGS_OK = 0,
  TIDINGS_INVALID_ARGUMENT = 1,
  TIDINGS_NOT_FOUND = 2,
  TIDINGS_ALREADY_EXISTS = 3,
  TIDINGS_FAILED_PRECONDITION = 4,
  TIDINGS_ABORTED = 5,
  TIDINGS_UNAVAILABLE = 6,
  TIDINGS_DEADLINE_EXCEEDED = 7,
  TIDINGS_PERMISSION_DENIED = 8,
  TIDINGS_UNAUTHENTICATED = 9,
  TIDINGS_RESOURCE_EXHAUSTED = 10,
  TIDINGS_DATA_LOSS = 11,
  TIDINGS_WRONG_KEY = 12,
  TIDINGS_TOO_LARGE = 13,
  TIDINGS_BUSY = 14,
  TIDINGS_CANCELLED = 15,
  TIDINGS_IO_ERROR = 16,
  TIDINGS_INTERNAL = 17,
  TIDINGS_UNIMPLEMENTED = 18
} tidings_code;

/* Room for the message, including its NUL; longer messages are cut at a
 * UTF-8 character boundary. */
#define TIDINGS_ERROR_MESSAGE_SIZE 512

/* Caller-allocated; pass NULL to any function if you only want the code. */
typedef struct tidings_error {
  tidings_code code;
  char message[TIDINGS_ERROR_MESSAGE_SIZE];
} tidings_error;

/* "OK", "WRONG_KEY", ...: a static string, never NULL ("UNKNOWN" for values
 * this version does not know). Thread-safe. */
TIDINGS_EXPORT const char* tidings_code_name(tidings_code code);

/* True for codes worth retrying with backoff (see above). Thread-safe. */
TIDINGS_EXPORT bool tidings_code_is_retryable(tidings_code code);

/* The library version (major.minor.patch, as the project's CMakeLists.txt
 * says): a static string. Thread-safe. */
TIDINGS_EXPORT const char* tidings_version(void);

/* ------------------------------------------------------------------------
 * Keys
 * ---------------------------------------------------------------------- */

#define TIDINGS_KEY_SIZE 32

typedef enum tidings_key_kind {
  TIDINGS_KEY_RAW = 1,        /* 32 bytes from the app's keychain/keystore */
  TIDINGS_KEY_PASSPHRASE = 2, /* stretched with Argon2id (salt in the store) */
  TIDINGS_KEY_FILE = 3        /* path of a key file, mode 0600 or stricter */
} tidings_key_kind;

/* How to unlock a store. Borrowed: the library copies what it needs into
 * locked memory during the call and wipes it afterwards; the caller should
 * wipe its own copy. Build one with the helpers below. */
typedef struct tidings_key_source {
  tidings_key_kind kind;
  const void* data; /* RAW: the key bytes; PASSPHRASE: UTF-8 bytes;
                       FILE: a NUL-terminated path */
  size_t size;      /* RAW: TIDINGS_KEY_SIZE; PASSPHRASE: byte count;
                       FILE: ignored */
} tidings_key_source;

static inline tidings_key_source tidings_key_raw(const uint8_t key[TIDINGS_KEY_SIZE]) {
  tidings_key_source k = {TIDINGS_KEY_RAW, key, TIDINGS_KEY_SIZE};
  return k;
}
static inline tidings_key_source tidings_key_passphrase(const char* utf8, size_t size) {
  tidings_key_source k = {TIDINGS_KEY_PASSPHRASE, utf8, size};
  return k;
}
static inline tidings_key_source tidings_key_file(const char* path) {
  tidings_key_source k = {TIDINGS_KEY_FILE, path, 0};
  return k;
}

/* Fills `out` (`size` must be TIDINGS_KEY_SIZE) with a fresh random key for
 * the app to keep in its keychain. Errors: INVALID_ARGUMENT. Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_key_generate(uint8_t* out, size_t size, tidings_error* error);

/* Writes a fresh random key to a new file `path` with mode 0600 (64 hex
 * digits and a newline). Never overwrites: ALREADY_EXISTS if the file exists;
 * IO_ERROR if it cannot be created. Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_key_file_create(const char* path, tidings_error* error);

/* ------------------------------------------------------------------------
 * Opening a store
 * ---------------------------------------------------------------------- */

typedef struct tidings_store tidings_store; /* opaque */

typedef enum tidings_durability {
  TIDINGS_DURABILITY_SYNC = 0,   /* a write returns after its log is fsynced
                                    (concurrent writers share fsyncs) */
  TIDINGS_DURABILITY_RELAXED = 1 /* a power cut may lose the last writes; a
                                    process crash does not */
} tidings_durability;

/* How hard Argon2id works on a passphrase (libsodium's limits): INTERACTIVE
 * 64 MiB, well under a second on a phone; MODERATE 256 MiB, about a second on
 * a laptop (kiosks); SENSITIVE 1 GiB, several seconds (servers). DEFAULT:
 * interactive for a new store, the store's current limits for a rekey that
 * keeps a passphrase. */
typedef enum tidings_passphrase_profile {
  TIDINGS_PASSPHRASE_DEFAULT = 0,
  TIDINGS_PASSPHRASE_INTERACTIVE = 1,
  TIDINGS_PASSPHRASE_MODERATE = 2,
  TIDINGS_PASSPHRASE_SENSITIVE = 3
} tidings_passphrase_profile;

/* Called now and then with the work done so far; `total` is an estimate.
 * Runs on the calling thread. */
typedef void (*tidings_progress_fn)(void* context, uint64_t done, uint64_t total);

/* Initialise with tidings_open_options_init. */
typedef struct tidings_open_options {
  uint32_t struct_size;   /* set by tidings_open_options_init */
  bool create_if_missing; /* create the store if the directory has none */
  bool error_if_exists;   /* ALREADY_EXISTS if there is one */
  /* Open without the writer lock, so another process may hold the store for
   * writing; writes then fail with FAILED_PRECONDITION. */
  bool read_only;
  tidings_durability durability;
  /* The local user (sender of local messages): required to create a store;
   * NULL on open means "as stored". */
  const char* user_id;
  uint64_t max_clock_drift_ms; /* 0: the default, 5 minutes */
  /* A new passphrase store's Argon2id limits; an existing store keeps its
   * own. */
  tidings_passphrase_profile passphrase_profile;
  /* The full-text index (tidings_search.h): on unless this is set; writes
   * then skip it and searches fail. The next open with it on rebuilds it. */
  bool search_index_off;
  /* English stemming in the index ("running" finds "run"): 0 keeps what the
   * store's index was built with (off for a new store), 1 turns it on, -1
   * off; a change rebuilds the index at a writable open. */
  int search_stem_english;
  /* Called while a writable open builds the index of a store made before it
   * (or after the settings changed): messages done, of about total. May be
   * NULL. */
  tidings_progress_fn open_progress;
  void* open_progress_context;
  /* Bytes of downloaded attachments the device keeps before it evicts the
   * least recently used (tidings_attachments.h; a fetch brings them back).
   * Files this device sent are kept until uploaded and do not count.
   * 0: 1 GiB; UINT64_MAX: no limit. */
  uint64_t attachment_quota_bytes;
} tidings_open_options;

/* Zeroes *options (every field its default) and sets struct_size to the size
 * this header declares. Inline, so the size is the one you compiled with:
 *   tidings_open_options o;
 *   tidings_open_options_init(&o);
 *   o.create_if_missing = true; */
static inline void tidings_open_options_init(tidings_open_options* options) {
  memset(options, 0, sizeof *options);
  options->struct_size = (uint32_t)sizeof *options;
}

/* Opens the store in directory `path` (options NULL: open an existing store
 * for writing with sync durability). On success *out is a new handle; close
 * it with tidings_store_close.
 * Errors: NOT_FOUND (no store there, or no key file), ALREADY_EXISTS,
 * WRONG_KEY (the key does not open this store; nothing was modified),
 * PERMISSION_DENIED (key file readable by group or others: chmod 600),
 * DATA_LOSS (corrupt header or files), BUSY (another process holds it for
 * writing: open read-only), INVALID_ARGUMENT, IO_ERROR. Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_open(const char* path, const tidings_key_source* key,
                                               const tidings_open_options* options,
                                               tidings_store** out, tidings_error* error);

/* Creates a new store in `path` for `user_id` (sync durability) and opens it:
 * tidings_store_open with create_if_missing and error_if_exists.
 * Errors as tidings_store_open; ALREADY_EXISTS if a store is there. */
TIDINGS_EXPORT tidings_code tidings_store_create(const char* path, const tidings_key_source* key,
                                                 const char* user_id, tidings_store** out,
                                                 tidings_error* error);

/* Closes the store and frees the handle (NULL is a no-op). Waits for
 * callbacks in flight; after it returns no callback of this store runs.
 * Everything written with sync durability is already on disk. NOT
 * thread-safe with other calls on the same store. */
TIDINGS_EXPORT void tidings_store_close(tidings_store* store);

/* Read-only handles see the writer process's changes made after they opened
 * only after this call. Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_refresh(tidings_store* store, tidings_error* error);

/* Initialise with tidings_rekey_options_init. */
typedef struct tidings_rekey_options {
  uint32_t struct_size; /* set by tidings_rekey_options_init */
  /* The key that unlocks the store afterwards (a new passphrase, key file or
   * raw key); NULL keeps the current one. Borrowed, like every key source. */
  const tidings_key_source* new_key;
  tidings_passphrase_profile passphrase_profile;
  /* Also re-encrypt the whole store under a new data key (minutes for large
   * stores; crash-safe). Without it, only the key wrapping changes
   * (seconds; no data is rewritten). */
  bool rotate_data_key;
  tidings_progress_fn progress; /* may be NULL; rotation only */
  void* progress_context;
} tidings_rekey_options;

static inline void tidings_rekey_options_init(tidings_rekey_options* options) {
  memset(options, 0, sizeof *options);
  options->struct_size = (uint32_t)sizeof *options;
}

/* Changes the key of the closed store in `path`, unlocked with `key`: a new
 * passphrase or key source (the data keys are wrapped again), and with
 * rotate_data_key a new data key (every record is re-encrypted into a new
 * database directory; killed at any moment, the store opens with the old key
 * or the new one, never neither). Stores of older formats are upgraded.
 * Errors: WRONG_KEY (`key` does not open it; nothing changed), BUSY (open
 * for writing elsewhere: close it first), DATA_LOSS (a corrupt record or
 * header; nothing changed), NOT_FOUND / PERMISSION_DENIED /
 * INVALID_ARGUMENT for the new key, IO_ERROR. Thread-safe; do not open the
 * store during the call. */
TIDINGS_EXPORT tidings_code tidings_store_rekey(const char* path, const tidings_key_source* key,
                                                const tidings_rekey_options* options,
                                                tidings_error* error);

/* ------------------------------------------------------------------------
 * Values
 * ---------------------------------------------------------------------- */

/* Position in the total order all replicas agree on: hlc is 48-bit Unix
 * milliseconds << 16 | a 16-bit counter; ties broken by replica. Compare
 * with tidings_order_compare. A value type: copy freely. */
typedef struct tidings_order {
  uint64_t hlc;
  uint64_t replica;
} tidings_order;

/* <0, 0, >0 like strcmp. Thread-safe. */
TIDINGS_EXPORT int tidings_order_compare(tidings_order a, tidings_order b);

/* key -> value. In a returned object both strings are owned by it. */
typedef struct tidings_pair {
  const char* key;
  const char* value;
} tidings_pair;

typedef struct tidings_reaction {
  const char* user;
  const char* reaction;
} tidings_reaction;

typedef enum tidings_message_state {
  TIDINGS_MESSAGE_PENDING = 0, /* written locally, not yet acknowledged */
  TIDINGS_MESSAGE_SENT = 1,    /* acknowledged by a backend or received */
  TIDINGS_MESSAGE_FAILED = 2   /* refused permanently; see failure_reason */
} tidings_message_state;

/* A file sent with a message (tidings_attachments.h has its status, export
 * and fetch). */
typedef struct tidings_attachment {
  const char* object; /* 64 hex digits: names it for status, fetch and export */
  const char* name;   /* as the sender gave it */
  const char* content_type;
  uint64_t size;          /* bytes of the file */
  const uint8_t* preview; /* the sender's inline thumbnail; may be NULL when */
  size_t preview_size;    /* preview_size is 0 */
  /* The message's own text, too long for a backend to carry in one message
   * (Chime: 4 KB): sent as this file ("message.txt"), made the body by the
   * receiving store once fetched (sync fetches it by itself). Show the body,
   * not this file. */
  bool body;
} tidings_attachment;

typedef struct tidings_message {
  const char* id; /* UUIDv7 text, or a backend's prefixed id */
  const char* conversation_id;
  const char* sender;
  tidings_order order;
  const char* body; /* empty once deleted; NUL-terminated too */
  size_t body_size;
  const char* content_type;
  tidings_message_state state;
  const char* failure_reason; /* "" unless state is FAILED */
  uint64_t server_time_ms;    /* when a backend accepted it; 0 if not yet */
  tidings_order edited_at;    /* all zero if never edited */
  bool deleted;
  const tidings_reaction* const* reactions; /* sorted */
  size_t reaction_count;
  const tidings_pair* const* metadata;
  size_t metadata_count;
  const tidings_pair* const* remote_ids; /* backend name -> remote id */
  size_t remote_id_count;
  const tidings_attachment* const* attachments; /* in the sender's order; none once deleted */
  size_t attachment_count;
} tidings_message;

TIDINGS_EXPORT void tidings_message_free(tidings_message* message);

/* Messages in ascending order. Opaque: read it with the functions below. */
typedef struct tidings_message_list tidings_message_list;

/* The number of messages; 0 for NULL. Thread-safe. */
TIDINGS_EXPORT size_t tidings_message_list_count(const tidings_message_list* list);

/* The message at `index` (0 is the oldest), owned by the list; NULL past the
 * end or for a NULL list. Thread-safe. */
TIDINGS_EXPORT const tidings_message* tidings_message_list_at(const tidings_message_list* list,
                                                              size_t index);

TIDINGS_EXPORT void tidings_message_list_free(tidings_message_list* list);

typedef struct tidings_read_marker {
  const char* user;
  tidings_order up_to; /* the newest message this user has read */
} tidings_read_marker;

typedef struct tidings_conversation {
  const char* id;
  const char* title;
  const char* const* members;
  size_t member_count;
  tidings_order last_order; /* of the newest message; zero if none */
  const char* last_message_id;
  uint64_t message_count; /* visible (not deleted) messages */
  uint64_t unread_count;  /* from others, after the local user's marker */
  /* Sorted by user. */
  const tidings_read_marker* const* read_markers;
  size_t read_marker_count;
  const tidings_pair* const* remote_ids; /* backend name -> e.g. a channel ARN */
  size_t remote_id_count;
} tidings_conversation;

TIDINGS_EXPORT void tidings_conversation_free(tidings_conversation* conversation);

/* Most recently active first. Opaque, like tidings_message_list. */
typedef struct tidings_conversation_list tidings_conversation_list;

/* The number of conversations; 0 for NULL. Thread-safe. */
TIDINGS_EXPORT size_t tidings_conversation_list_count(const tidings_conversation_list* list);

/* The conversation at `index` (0 is the most recently active), owned by the
 * list; NULL past the end or for a NULL list. Thread-safe. */
TIDINGS_EXPORT const tidings_conversation* tidings_conversation_list_at(
    const tidings_conversation_list* list, size_t index);

TIDINGS_EXPORT void tidings_conversation_list_free(tidings_conversation_list* list);

typedef enum tidings_op_kind {
  TIDINGS_OP_SEND = 1,
  TIDINGS_OP_EDIT = 2,
  TIDINGS_OP_DELETE = 3,
  TIDINGS_OP_REACT = 4,
  TIDINGS_OP_UNREACT = 5,
  TIDINGS_OP_READ_MARKER = 6
} tidings_op_kind;

/* "send", "edit", ...; "unknown" otherwise. Static. Thread-safe. */
TIDINGS_EXPORT const char* tidings_op_kind_name(tidings_op_kind kind);

/* An operation waiting to reach the backends. */
typedef struct tidings_outbox_entry {
  uint64_t seq; /* outbox order; the handle for retry/discard */
  tidings_op_kind kind;
  const char* op_id;
  const char* conversation_id;
  const char* message_id; /* the message created or targeted */
  tidings_order at;
  uint32_t attempts;
  int64_t next_attempt_ms; /* Unix ms; not retried before */
  const char* last_error;  /* "" if none; never message text or secrets */
  bool failed;             /* parked: needs retry or discard */
} tidings_outbox_entry;

/* Outbox entries in outbox order. Opaque, like tidings_message_list. */
typedef struct tidings_outbox_list tidings_outbox_list;

/* The number of entries; 0 for NULL. Thread-safe. */
TIDINGS_EXPORT size_t tidings_outbox_list_count(const tidings_outbox_list* list);

/* The entry at `index`, owned by the list; NULL past the end or for a NULL
 * list. Thread-safe. */
TIDINGS_EXPORT const tidings_outbox_entry* tidings_outbox_list_at(const tidings_outbox_list* list,
                                                                  size_t index);

TIDINGS_EXPORT void tidings_outbox_list_free(tidings_outbox_list* list);

typedef struct tidings_stats {
  uint64_t messages;
  uint64_t conversations;
  uint64_t outbox;
  uint64_t outbox_failed;
  uint64_t disk_bytes;
  uint32_t schema_version;
  uint64_t replica_id;
  const char* user_id;
} tidings_stats;

TIDINGS_EXPORT void tidings_stats_free(tidings_stats* stats);

typedef struct tidings_verify_report {
  uint64_t records_checked;
  uint64_t problems;          /* 0: every record and index entry is intact */
  const char* const* details; /* one line per problem: keys in hex, never
                                 contents */
  size_t detail_count;
} tidings_verify_report;

TIDINGS_EXPORT void tidings_verify_report_free(tidings_verify_report* report);

/* ------------------------------------------------------------------------
 * Local writes. Each writes the change and its outbox entry in one atomic
 * batch. On a read-only handle: FAILED_PRECONDITION.
 * ---------------------------------------------------------------------- */

/* A file to send with a message: from `path`, or when it is NULL from
 * `read`, which fills `buffer` with up to `capacity` bytes and returns how
 * many (0 at the end, -1 on an error, which stops the send). Initialise with
 * tidings_attachment_input_init. */
typedef struct tidings_attachment_input {
  uint32_t struct_size; /* set by tidings_attachment_input_init */
  const char* path;
  int64_t (*read)(void* context, uint8_t* buffer, size_t capacity);
  void* read_context;
  const char* name;         /* shown to the recipients, up to 255 bytes; NULL: "" */
  const char* content_type; /* NULL: "application/octet-stream" */
  const uint8_t* preview;   /* a thumbnail the app made, up to 2048 bytes, */
  size_t preview_size;      /* travelling inline with the message */
} tidings_attachment_input;

static inline void tidings_attachment_input_init(tidings_attachment_input* input) {
  memset(input, 0, sizeof *input);
  input->struct_size = (uint32_t)sizeof *input;
}

/* Initialise with tidings_send_request_init. */
typedef struct tidings_send_request {
  uint32_t struct_size;        /* set by tidings_send_request_init */
  const char* conversation_id; /* required */
  const char* body;            /* may be NULL when body_size is 0 */
  size_t body_size;            /* at most 64 KiB */
  const char* content_type;    /* NULL: "text/plain" */
  /* At most 16 pairs, 1 KiB in all; may be NULL when metadata_count is 0. */
  const tidings_pair* const* metadata;
  size_t metadata_count;
  const char* message_id; /* NULL: a new UUIDv7 (pass one to make a retried
                             send idempotent) */
  /* Files sent with it (at most 16; may be NULL when attachment_count is 0):
   * encrypted into the store before the send returns, uploaded before the
   * message is pushed (tidings_attachments.h). */
  const tidings_attachment_input* const* attachments;
  size_t attachment_count;
  /* Called while the files are encrypted: bytes done of all of them; return
   * false to cancel the send (TIDINGS_CANCELLED, nothing is stored). NULL:
   * none. */
  bool (*progress)(void* context, uint64_t done, uint64_t total);
  void* progress_context;
} tidings_send_request;

/* Zeroes *request and sets struct_size; see tidings_open_options_init. */
static inline void tidings_send_request_init(tidings_send_request* request) {
  memset(request, 0, sizeof *request);
  request->struct_size = (uint32_t)sizeof *request;
}

/* Sends a message; it is pending until a backend acknowledges it. *out
 * (optional: pass NULL if not needed) is the stored message.
 * Errors: INVALID_ARGUMENT (no conversation id), TOO_LARGE (body or
 * metadata over the limits, or over what this conversation's backends carry
 * once a sync handle recorded them: the message gives the exact number of
 * bytes, see tidings_sync.h), FAILED_PRECONDITION (read-only), IO_ERROR.
 * With attachments also: NOT_FOUND or PERMISSION_DENIED (a file cannot be
 * read; errors do not name it), CANCELLED (by `progress`). A body longer
 * than a recorded backend carries in one message (Chime: 4 KB), up to the
 * 64 KiB limit, is not refused: it travels as an attachment (see
 * tidings_attachment.body), uploaded to the sync handle's S3 bucket.
 * Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_send(tidings_store* store,
                                               const tidings_send_request* request,
                                               tidings_message** out, tidings_error* error);

/* Replaces the body of one of the local user's messages. *out optional.
 * Errors: NOT_FOUND, PERMISSION_DENIED (someone else's message),
 * FAILED_PRECONDITION (deleted, or read-only), TOO_LARGE (as for a send).
 * Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_edit(tidings_store* store, const char* message_id,
                                               const char* body, size_t body_size,
                                               tidings_message** out, tidings_error* error);

/* Deletes one of the local user's messages: its body is erased here and a
 * tombstone travels to the other replicas. Errors: NOT_FOUND,
 * PERMISSION_DENIED, FAILED_PRECONDITION. Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_delete(tidings_store* store, const char* message_id,
                                                 tidings_error* error);

/* Adds (add = true) or removes the local user's `reaction` (e.g. "+1").
 * Errors: NOT_FOUND, INVALID_ARGUMENT, FAILED_PRECONDITION. Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_react(tidings_store* store, const char* message_id,
                                                const char* reaction, bool add,
                                                tidings_error* error);

/* Moves the local user's read marker in a conversation forward to `up_to`
 * (never back). Errors: INVALID_ARGUMENT, FAILED_PRECONDITION. Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_mark_read(tidings_store* store,
                                                    const char* conversation_id,
                                                    tidings_order up_to, tidings_error* error);

/* Creates or updates a conversation's title and members (local only).
 * `members` may be NULL when member_count is 0. Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_put_conversation(tidings_store* store, const char* id,
                                                           const char* title,
                                                           const char* const* members,
                                                           size_t member_count,
                                                           tidings_error* error);

/* ------------------------------------------------------------------------
 * Reads. DATA_LOSS from any of them means a record failed authentication:
 * nothing unauthenticated is ever returned. All thread-safe.
 * ---------------------------------------------------------------------- */

/* Errors: NOT_FOUND, DATA_LOSS. */
TIDINGS_EXPORT tidings_code tidings_store_get(tidings_store* store, const char* message_id,
                                              tidings_message** out, tidings_error* error);

/* The newest `limit` messages of a conversation (0: 50; at most 10000), in
 * ascending order. Errors: NOT_FOUND (no such conversation), DATA_LOSS. */
TIDINGS_EXPORT tidings_code tidings_store_page_newest(tidings_store* store,
                                                      const char* conversation_id, size_t limit,
                                                      tidings_message_list** out,
                                                      tidings_error* error);

/* Up to `limit` messages strictly older than `before`, the newest of them,
 * ascending: pass the first message's order of the previous page to scroll
 * back. Errors as tidings_store_page_newest. */
TIDINGS_EXPORT tidings_code tidings_store_page_before(tidings_store* store,
                                                      const char* conversation_id,
                                                      tidings_order before, size_t limit,
                                                      tidings_message_list** out,
                                                      tidings_error* error);

/* Up to `limit` messages strictly newer than `after`, the oldest of them,
 * ascending. Errors as tidings_store_page_newest. */
TIDINGS_EXPORT tidings_code tidings_store_page_after(tidings_store* store,
                                                     const char* conversation_id,
                                                     tidings_order after, size_t limit,
                                                     tidings_message_list** out,
                                                     tidings_error* error);

/* Errors: NOT_FOUND, DATA_LOSS. */
TIDINGS_EXPORT tidings_code tidings_store_get_conversation(tidings_store* store, const char* id,
                                                           tidings_conversation** out,
                                                           tidings_error* error);

/* Up to `limit` conversations (0: all), most recently active first, with
 * unread counts. */
TIDINGS_EXPORT tidings_code tidings_store_conversations(tidings_store* store, size_t limit,
                                                        tidings_conversation_list** out,
                                                        tidings_error* error);

/* Up to `limit` outbox entries (0: all) in outbox order; `conversation_id`
 * NULL or "" means every conversation. */
TIDINGS_EXPORT tidings_code tidings_store_outbox(tidings_store* store, const char* conversation_id,
                                                 size_t limit, tidings_outbox_list** out,
                                                 tidings_error* error);

/* Counts the outbox entries tidings_store_outbox would list (limit 0), by
 * state, without reading the messages they send: cheap enough for a status
 * line or a badge. `conversation_id` NULL or "" means every conversation.
 * On success *pending and *failed (either may be NULL) hold the counts. */
TIDINGS_EXPORT tidings_code tidings_store_outbox_count(tidings_store* store,
                                                       const char* conversation_id,
                                                       uint64_t* pending, uint64_t* failed,
                                                       tidings_error* error);

/* Puts a failed (parked) outbox entry back in line; the sync engine sends it
 * again with the same idempotency key. Errors: NOT_FOUND,
 * FAILED_PRECONDITION (the entry has not failed, or read-only). */
TIDINGS_EXPORT tidings_code tidings_store_outbox_retry(tidings_store* store, uint64_t seq,
                                                       tidings_error* error);

/* Drops a failed outbox entry; the message stays, marked failed. Errors as
 * tidings_store_outbox_retry. */
TIDINGS_EXPORT tidings_code tidings_store_outbox_discard(tidings_store* store, uint64_t seq,
                                                         tidings_error* error);

/* ------------------------------------------------------------------------
 * Maintenance
 * ---------------------------------------------------------------------- */

TIDINGS_EXPORT tidings_code tidings_store_stats(tidings_store* store, tidings_stats** out,
                                                tidings_error* error);

/* Decrypts and checks every record and index entry. Returns OK when the
 * check ran; the report's `problems` says whether the store is intact.
 * `progress` may be NULL. Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_verify(tidings_store* store, tidings_progress_fn progress,
                                                 void* context, tidings_verify_report** out,
                                                 tidings_error* error);

/* Writes an encrypted, authenticated, consistent snapshot of the store to
 * the new file `backup_path` (mode 0600). Only this store's key (passphrase,
 * key file or raw key) opens it, and any change to the file is detected on
 * restore. Works on read-only handles too, so a backup can be taken beside
 * a running daemon. `progress` may be NULL.
 * Errors: ALREADY_EXISTS (never overwrites), DATA_LOSS (a record of the
 * store failed authentication: run verify), RESOURCE_EXHAUSTED (disk full),
 * IO_ERROR. Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_backup(tidings_store* store, const char* backup_path,
                                                 tidings_progress_fn progress, void* context,
                                                 tidings_error* error);

/* Makes the store in `store_path` (a new or empty directory) from a backup,
 * unlocked with `key`, the key of the store the backup was made from. Nothing
 * appears at `store_path` unless the whole backup verified. The restored
 * store is the same device as the original: restore a lost store rather than
 * running both. Open it afterwards with tidings_store_open.
 * Errors: WRONG_KEY, DATA_LOSS (damaged, cut or altered backup),
 * ALREADY_EXISTS (`store_path` is not empty), INVALID_ARGUMENT (not a
 * backup), NOT_FOUND, FAILED_PRECONDITION (made by a newer Tidings),
 * IO_ERROR. Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_restore(const char* backup_path, const char* store_path,
                                                  const tidings_key_source* key,
                                                  tidings_progress_fn progress, void* context,
                                                  tidings_error* error);

/* Called once per message; `message` is borrowed for the call only. Return
 * true to go on, false to stop. Runs on the calling thread; it must not
 * close the store. */
typedef bool (*tidings_message_fn)(void* context, const tidings_message* message);

/* Visits every message of every conversation, each conversation in order
 * (for export). Errors: CANCELLED (the visitor returned false), DATA_LOSS.
 * Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_for_each_message(tidings_store* store,
                                                           tidings_message_fn visit, void* context,
                                                           tidings_error* error);

/* ------------------------------------------------------------------------
 * Retention: how long messages are kept (docs/engine.md, "Retention").
 * A policy is local configuration of this store, not synced; every device
 * with the same policy ends up with the same messages.
 * ---------------------------------------------------------------------- */

/* Sets the policy of `conversation_id`, or the store-wide one when it is NULL
 * or "". keep_days: keep messages from the last N days (by message time; 0:
 * no time limit, at most 36500). keep_last: keep the newest N messages of
 * each conversation (deleted ones count; 0: no limit). Both 0: removes the
 * policy (a conversation then follows the store-wide one). Applies at the
 * next purge (tidings_store_purge_expired, the next writable open, the sync
 * engine's periodic purge). Errors: INVALID_ARGUMENT, FAILED_PRECONDITION
 * (read-only). Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_set_retention(tidings_store* store,
                                                        const char* conversation_id,
                                                        uint32_t keep_days, uint64_t keep_last,
                                                        tidings_error* error);

/* The policy as set for `conversation_id` (store-wide when NULL or ""); both
 * 0 when none is. `effective` true: the one that applies to the
 * conversation (its own, else the store-wide one). Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_get_retention(tidings_store* store,
                                                        const char* conversation_id, bool effective,
                                                        uint32_t* keep_days, uint64_t* keep_last,
                                                        tidings_error* error);

/* Called once per conversation that has its own policy; `conversation_id`
 * is borrowed for the call only. Return false to stop. */
typedef bool (*tidings_retention_fn)(void* context, const char* conversation_id, uint32_t keep_days,
                                     uint64_t keep_last);

/* Visits every per-conversation policy, by conversation id. Errors:
 * CANCELLED (the visitor returned false). Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_for_each_retention(tidings_store* store,
                                                             tidings_retention_fn visit,
                                                             void* context, tidings_error* error);

/* What a purge did. Initialise with tidings_purge_report_init: the library
 * fills the fields the caller's struct_size covers. */
typedef struct tidings_purge_report {
  uint32_t struct_size;
  uint64_t messages_purged; /* message records removed (deleted ones too) */
  uint64_t conversations;   /* conversations that lost messages */
  uint64_t outbox_dropped;  /* unsent changes to purged messages, dropped */
  uint64_t remote_skipped;  /* remote changes at or below a purge horizon that
                               sync skipped, over the store's lifetime */
} tidings_purge_report;

TIDINGS_EXPORT void tidings_purge_report_init(tidings_purge_report* report);

/* Purges now what the policies no longer keep, then compacts the purged
 * ranges so their text leaves the disk. Cheap when nothing is due. `report`
 * may be NULL. Errors: FAILED_PRECONDITION (read-only), DATA_LOSS, IO_ERROR.
 * Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_purge_expired(tidings_store* store,
                                                        tidings_purge_report* report,
                                                        tidings_error* error);

/* ------------------------------------------------------------------------
 * Change notifications
 * ---------------------------------------------------------------------- */

typedef enum tidings_change_kind {
  TIDINGS_CHANGE_MESSAGE_ADDED = 0,
  TIDINGS_CHANGE_MESSAGE_CHANGED = 1,       /* edit, delete, reaction */
  TIDINGS_CHANGE_MESSAGE_STATE_CHANGED = 2, /* pending -> sent / failed */
  TIDINGS_CHANGE_CONVERSATION_CHANGED = 3,
  TIDINGS_CHANGE_OUTBOX_CHANGED = 4
} tidings_change_kind;

typedef struct tidings_change {
  tidings_change_kind kind;
  const char* conversation_id;
  const char* message_id; /* "" for conversation and outbox changes */
} tidings_change;

/* Called after a change is committed, on the thread that wrote it (a caller's
 * thread or the sync engine's); `change` is borrowed for the call only. Keep
 * it short: hand the work to your UI thread. It may call read functions and
 * tidings_store_unsubscribe, but must not close the store. */
typedef void (*tidings_change_fn)(void* context, const tidings_change* change);

/* Registers `callback`; *token identifies the subscription. `context` is
 * passed back untouched and must stay valid until unsubscribed. Only changes
 * made through this process's handles are reported. Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_subscribe(tidings_store* store,
                                                    tidings_change_fn callback, void* context,
                                                    uint64_t* token, tidings_error* error);

/* Ends a subscription. When it returns, the callback is not running and will
 * not be called again (unless called from inside that callback, which is
 * allowed and returns at once), so `context` may be freed.
 * Errors: NOT_FOUND (unknown token). Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_unsubscribe(tidings_store* store, uint64_t token,
                                                      tidings_error* error);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TIDINGS_TIDINGS_H_ */
