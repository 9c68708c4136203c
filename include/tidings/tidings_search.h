/* tidings_search.h: full-text search of a store's local plaintext (the C API
 * of docs/search.md). The conventions of tidings.h hold here: errors,
 * out-parameters, struct_size on the request, lists read through functions.
 *
 * The index lives inside the store, under its encryption, and is kept in the
 * same atomic batch as every message change (tidings_open_options'
 * search_index_off turns it off). A search runs on the local plaintext, so it
 * works the same for end-to-end encrypted conversations.
 *
 * Search as the user types: give each search a tidings_search_cancel, and
 * when the next keystroke arrives trigger it from the UI thread; the search
 * returns TIDINGS_CANCELLED soon after, and the next one starts. */
#ifndef TIDINGS_TIDINGS_SEARCH_H_
#define TIDINGS_TIDINGS_SEARCH_H_

#include <stddef.h>
#include <stdint.h>
#include <string.h> /* memset, for tidings_search_request_init */

#include "tidings/tidings.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A flag one thread sets to stop a search another thread runs. Opaque. */
typedef struct tidings_search_cancel tidings_search_cancel;

/* A new, untriggered token in *out; free it with tidings_search_cancel_free.
 * Errors: INVALID_ARGUMENT (out is NULL), RESOURCE_EXHAUSTED. */
TIDINGS_EXPORT tidings_code tidings_search_cancel_create(tidings_search_cancel** out,
                                                         tidings_error* error);

/* Stops every search running or started with this token (NULL: no-op).
 * Thread-safe: call it from any thread while the search runs. */
TIDINGS_EXPORT void tidings_search_cancel_trigger(tidings_search_cancel* cancel);

/* True once triggered (false for NULL). Thread-safe. */
TIDINGS_EXPORT bool tidings_search_cancel_is_triggered(const tidings_search_cancel* cancel);

/* Frees the token (NULL is a no-op). No search may still be using it. */
TIDINGS_EXPORT void tidings_search_cancel_free(tidings_search_cancel* cancel);

typedef enum tidings_search_order {
  TIDINGS_SEARCH_RELEVANCE = 0, /* BM25 blended with recency (docs/search.md) */
  TIDINGS_SEARCH_NEWEST = 1     /* newest first */
} tidings_search_order;

/* Initialise with tidings_search_request_init. */
typedef struct tidings_search_request {
  uint32_t struct_size; /* set by tidings_search_request_init */
  /* Words (all must match), "a phrase", prefix* for search as you type.
   * Required. */
  const char* query;
  const char* conversation_id; /* NULL or "": every conversation */
  const char* sender;          /* NULL or "": anyone */
  uint64_t from_ms;            /* message time >= from_ms (0: no bound) */
  uint64_t to_ms;              /* message time < to_ms (0: no bound) */
  tidings_search_order order;
  size_t offset; /* hits skipped (paging) */
  size_t limit;  /* hits returned: 0 means 20; at most 1000 */
  /* May be NULL. Borrowed: it must outlive the call. */
  const tidings_search_cancel* cancel;
} tidings_search_request;

static inline void tidings_search_request_init(tidings_search_request* request) {
  memset(request, 0, sizeof *request);
  request->struct_size = (uint32_t)sizeof *request;
}

/* A matched range of a snippet: bytes [begin, end). A value type that never
 * grows (so a hit holds an array of them). */
typedef struct tidings_search_mark {
  uint32_t begin;
  uint32_t end;
} tidings_search_mark;

typedef struct tidings_search_hit {
  const char* message_id;
  const char* conversation_id;
  const char* sender;
  tidings_order order; /* the message's order (tidings_message.order) */
  double score;        /* relevance order: higher is better */
  /* A piece of the body around the matches, UTF-8, NUL-terminated too. */
  const char* snippet;
  size_t snippet_size;
  /* The matched ranges of `snippet`, in order, not overlapping. */
  const tidings_search_mark* marks;
  size_t mark_count;
} tidings_search_hit;

/* The hits of one search, best (or newest) first. Opaque. */
typedef struct tidings_search_result tidings_search_result;

/* The number of hits returned; 0 for NULL. Thread-safe. */
TIDINGS_EXPORT size_t tidings_search_result_count(const tidings_search_result* result);

/* The hit at `index`, owned by the result; NULL past the end or for NULL. */
TIDINGS_EXPORT const tidings_search_hit* tidings_search_result_at(
    const tidings_search_result* result, size_t index);

/* Every hit of the query and filters, before offset and limit (for "page 2
 * of 7"); 0 for NULL. */
TIDINGS_EXPORT uint64_t tidings_search_result_total(const tidings_search_result* result);

TIDINGS_EXPORT void tidings_search_result_free(tidings_search_result* result);

/* Searches the store's messages. On success *out holds the hits.
 * Errors: INVALID_ARGUMENT (a query the syntax refuses: the message says
 * what to type; a bad request), CANCELLED (request->cancel was triggered),
 * FAILED_PRECONDITION (the index is off, or a store made before it is still
 * building it: open it for writing once), DATA_LOSS. Works on read-only
 * handles. Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_search(tidings_store* store,
                                                 const tidings_search_request* request,
                                                 tidings_search_result** out, tidings_error* error);

/* Builds the search index again from the messages (when verify reports it
 * differs from them). Resumable: if interrupted, the next writable open
 * finishes it. `progress` may be NULL; it runs on the calling thread.
 * Errors: FAILED_PRECONDITION (read-only, or the index is off), DATA_LOSS,
 * IO_ERROR. Thread-safe. */
TIDINGS_EXPORT tidings_code tidings_store_rebuild_search_index(tidings_store* store,
                                                               tidings_progress_fn progress,
                                                               void* context, tidings_error* error);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TIDINGS_TIDINGS_SEARCH_H_ */
