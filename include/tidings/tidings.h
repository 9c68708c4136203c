/* Tidings C API: the stable ABI for Swift, Kotlin/JNI and other embedders.
 *
 * Conventions
 * - Every function returns a tidings_code; TIDINGS_OK (0) is success.
 * - Functions take an optional `tidings_error* err` (may be NULL). On failure
 *   it receives the code and a message saying what happened and what to do;
 *   on success it is CLEARED (code 0, empty message). Messages never contain
 *   message text, keys or credentials.
 * - Handles are opaque. Objects returned through out-parameters are owned by
 *   the caller and released with the matching tidings_*_free function.
 *   Strings inside returned objects live as long as the object.
 * - No C++ exception ever crosses this boundary.
 * - Thread safety: a tidings_store* may be used from any number of threads
 *   at once. Listener callbacks run on the thread that committed the change,
 *   after the commit; they must return quickly and must not close the store.
 */
#ifndef TIDINGS_TIDINGS_H_
#define TIDINGS_TIDINGS_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TIDINGS_EXPORT __attribute__((visibility("default")))
#else
#define TIDINGS_EXPORT
#endif

/* Mirrors tidings::Code (include/tidings/status.h); values never change. */
typedef enum tidings_code {
  TIDINGS_OK = 0,
  TIDINGS_INVALID_ARGUMENT = 1,
  TIDINGS_NOT_FOUND = 2,
  TIDINGS_ALREADY_EXISTS = 3,
  TIDINGS_FAILED_PRECONDITION = 4,
  TIDINGS_ABORTED = 5,
  TIDINGS_UNAVAILABLE = 6, /* transient: retry later */
  TIDINGS_DEADLINE_EXCEEDED = 7,
  TIDINGS_PERMISSION_DENIED = 8,
  TIDINGS_UNAUTHENTICATED = 9,
  TIDINGS_RESOURCE_EXHAUSTED = 10,
  TIDINGS_DATA_LOSS = 11, /* corrupt or tampered data */
  TIDINGS_WRONG_KEY = 12, /* the key does not open this store */
  TIDINGS_TOO_LARGE = 13,
  TIDINGS_BUSY = 14, /* another process holds the store for writing */
  TIDINGS_CANCELLED = 15,
  TIDINGS_IO_ERROR = 16,
  TIDINGS_INTERNAL = 17,
  TIDINGS_UNIMPLEMENTED = 18
} tidings_code;

typedef struct tidings_error {
  tidings_code code;
  char message[512]; /* NUL-terminated; empty on success */
} tidings_error;

typedef struct tidings_store tidings_store;

typedef enum tidings_durability {
  TIDINGS_DURABILITY_SYNC = 0,   /* returns after the WAL is fsynced */
  TIDINGS_DURABILITY_RELAXED = 1 /* survives a process crash, not a power cut */
} tidings_durability;

typedef struct tidings_open_options {
  int create_if_missing;         /* non-zero: create the store */
  int read_only;                 /* non-zero: inspect while another process writes */
  tidings_durability durability; /* default SYNC */
  const char* user_id;           /* required when creating; NULL otherwise */
} tidings_open_options;

/* Opening. The key is one of: 32 raw bytes (from the keychain/keystore), a
 * passphrase (Argon2id), or a key file path (must be mode 0600).
 * On success *out is a new handle; close it with tidings_store_close. */
TIDINGS_EXPORT tidings_code tidings_store_open_with_key(const char* path, const uint8_t* key,
                                                        size_t key_len,
                                                        const tidings_open_options* options,
                                                        tidings_store** out, tidings_error* err);
TIDINGS_EXPORT tidings_code tidings_store_open_with_passphrase(const char* path,
                                                               const char* passphrase,
                                                               const tidings_open_options* options,
                                                               tidings_store** out,
                                                               tidings_error* err);
TIDINGS_EXPORT tidings_code tidings_store_open_with_key_file(const char* path,
                                                             const char* key_file,
                                                             const tidings_open_options* options,
                                                             tidings_store** out,
                                                             tidings_error* err);
/* Closes and frees the handle (NULL is allowed). No call may be in flight. */
TIDINGS_EXPORT void tidings_store_close(tidings_store* store);

typedef enum tidings_message_state {
  TIDINGS_PENDING = 0,
  TIDINGS_SENT = 1,
  TIDINGS_FAILED = 2
} tidings_message_state;

typedef struct tidings_message {
  const char* id;
  const char* conversation_id;
  const char* sender;
  uint64_t order_hlc; /* order key: (order_hlc, order_replica) */
  uint64_t order_replica;
  const uint8_t* body; /* not NUL-terminated; body_len bytes */
  size_t body_len;
  const char* content_type;
  tidings_message_state state;
  const char* failure_reason; /* "" unless FAILED */
  int edited;
  int deleted;
} tidings_message;

typedef struct tidings_message_list {
  tidings_message* items;
  size_t count;
} tidings_message_list;

/* Sends a message (pending until a backend acknowledges it). On success, if
 * out_id is not NULL, *out_id is a new string to free with tidings_string_free. */
TIDINGS_EXPORT tidings_code tidings_store_send(tidings_store* store, const char* conversation_id,
                                               const uint8_t* body, size_t body_len,
                                               const char* content_type, char** out_id,
                                               tidings_error* err);
TIDINGS_EXPORT tidings_code tidings_store_edit(tidings_store* store, const char* message_id,
                                               const uint8_t* body, size_t body_len,
                                               tidings_error* err);
TIDINGS_EXPORT tidings_code tidings_store_delete(tidings_store* store, const char* message_id,
                                                 tidings_error* err);
/* add != 0 adds the reaction, 0 removes it. */
TIDINGS_EXPORT tidings_code tidings_store_react(tidings_store* store, const char* message_id,
                                                const char* reaction, int add, tidings_error* err);
/* Moves the local user's read marker up to (hlc, replica); never back. */
TIDINGS_EXPORT tidings_code tidings_store_mark_read(tidings_store* store,
                                                    const char* conversation_id, uint64_t hlc,
                                                    uint64_t replica, tidings_error* err);

/* Reads. *out is owned by the caller: tidings_message_free / _list_free. */
TIDINGS_EXPORT tidings_code tidings_store_get(tidings_store* store, const char* message_id,
                                              tidings_message** out, tidings_error* err);
/* The newest `limit` messages (before == NULL) or the `limit` messages
 * strictly older than before_hlc/before_replica when has_before != 0;
 * ascending order. */
TIDINGS_EXPORT tidings_code tidings_store_page(tidings_store* store, const char* conversation_id,
                                               size_t limit, int has_before, uint64_t before_hlc,
                                               uint64_t before_replica,
                                               tidings_message_list** out, tidings_error* err);
TIDINGS_EXPORT void tidings_message_free(tidings_message* message);
TIDINGS_EXPORT void tidings_message_list_free(tidings_message_list* list);
TIDINGS_EXPORT void tidings_string_free(char* s);

typedef struct tidings_conversation {
  const char* id;
  const char* title;
  uint64_t message_count;
  uint64_t unread_count;
  uint64_t last_hlc;
} tidings_conversation;

typedef struct tidings_conversation_list {
  tidings_conversation* items;
  size_t count;
} tidings_conversation_list;

/* Most recently active first; limit 0 means all. */
TIDINGS_EXPORT tidings_code tidings_store_conversations(tidings_store* store, size_t limit,
                                                        tidings_conversation_list** out,
                                                        tidings_error* err);
TIDINGS_EXPORT void tidings_conversation_list_free(tidings_conversation_list* list);

/* Outbox: counts, and retry/discard of operations parked as failed. */
TIDINGS_EXPORT tidings_code tidings_store_outbox_depth(tidings_store* store, uint64_t* pending,
                                                       uint64_t* failed, tidings_error* err);
TIDINGS_EXPORT tidings_code tidings_store_retry_failed(tidings_store* store, uint64_t seq,
                                                       tidings_error* err);
TIDINGS_EXPORT tidings_code tidings_store_discard_failed(tidings_store* store, uint64_t seq,
                                                         tidings_error* err);

/* Decrypts and checks every record; *problems receives the count found. */
TIDINGS_EXPORT tidings_code tidings_store_verify(tidings_store* store, uint64_t* problems,
                                                 tidings_error* err);

typedef enum tidings_change_kind {
  TIDINGS_MESSAGE_ADDED = 0,
  TIDINGS_MESSAGE_CHANGED = 1,
  TIDINGS_MESSAGE_STATE_CHANGED = 2,
  TIDINGS_CONVERSATION_CHANGED = 3,
  TIDINGS_OUTBOX_CHANGED = 4
} tidings_change_kind;

/* Called after each commit. The strings are valid only during the call. */
typedef void (*tidings_listener)(void* context, tidings_change_kind kind,
                                 const char* conversation_id, const char* message_id);
/* Returns a token for tidings_store_unsubscribe (never 0). */
TIDINGS_EXPORT uint64_t tidings_store_subscribe(tidings_store* store, tidings_listener listener,
                                                void* context);
TIDINGS_EXPORT void tidings_store_unsubscribe(tidings_store* store, uint64_t token);

/* "WRONG_KEY" etc.; never NULL. */
TIDINGS_EXPORT const char* tidings_code_name(tidings_code code);

#ifdef __cplusplus
}
#endif

#endif /* TIDINGS_TIDINGS_H_ */
