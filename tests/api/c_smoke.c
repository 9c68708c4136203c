/* Linked against libtidings.so only: proves tidings.h is valid C (and C++:
 * c_smoke_cxx.cc compiles this file as C++), clean under -Wall -Wextra
 * -Werror, and that the exported symbols are all an app needs. It follows
 * the README's C example, then reads this device's identity and makes a
 * plaintext conversation (tidings_sync.h) and searches (tidings_search.h).
 * Usage: c_smoke DIR */
#include <stdio.h>
#include <string.h>

#include "tidings/tidings_search.h"
#include "tidings/tidings_sync.h"

#define CHECK(cond)                                                                        \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      fprintf(stderr, "c_smoke: %s failed: %s (%s)\n", #cond, tidings_code_name(err.code), \
              err.message);                                                                \
      return 1;                                                                            \
    }                                                                                      \
  } while (0)

int main(int argc, char** argv) {
  tidings_error err;
  char path[4096], key_path[4096];
  tidings_store* store = NULL;
  tidings_key_source key;
  tidings_open_options options;
  tidings_send_request req;
  tidings_message* msg = NULL;
  tidings_message_list* page = NULL;
  const tidings_message* item = NULL;
  const char* body = "hello from C";
  tidings_identity* me = NULL;
  tidings_conversation_mode mode = TIDINGS_MODE_END_TO_END;
  tidings_search_request search;
  tidings_search_result* hits = NULL;
  const tidings_search_hit* hit = NULL;
  memset(&err, 0, sizeof err);
  if (argc != 2) return 2;
  snprintf(path, sizeof path, "%s/store", argv[1]);
  snprintf(key_path, sizeof key_path, "%s/store.key", argv[1]);

  CHECK(tidings_key_file_create(key_path, &err) == TIDINGS_OK);
  key = tidings_key_file(key_path);
  CHECK(tidings_store_create(path, &key, "c-user", &store, &err) == TIDINGS_OK);
  CHECK(err.code == TIDINGS_OK && err.message[0] == '\0');

  tidings_send_request_init(&req);
  req.conversation_id = "c-conv";
  req.body = body;
  req.body_size = strlen(body);
  CHECK(tidings_store_send(store, &req, &msg, &err) == TIDINGS_OK);
  CHECK(strcmp(msg->sender, "c-user") == 0);
  tidings_message_free(msg);
  tidings_store_close(store);

  tidings_open_options_init(&options);
  options.durability = TIDINGS_DURABILITY_RELAXED;
  CHECK(tidings_store_open(path, &key, &options, &store, &err) == TIDINGS_OK);
  CHECK(tidings_store_page_newest(store, "c-conv", 10, &page, &err) == TIDINGS_OK);
  CHECK(tidings_message_list_count(page) == 1);
  item = tidings_message_list_at(page, 0);
  CHECK(item != NULL && item->body_size == strlen(body));
  CHECK(memcmp(item->body, body, strlen(body)) == 0);
  CHECK(tidings_message_list_at(page, 1) == NULL);
  tidings_message_list_free(page);
  CHECK(tidings_store_get(store, "missing", &msg, &err) == TIDINGS_NOT_FOUND);
  CHECK(msg == NULL && err.code == TIDINGS_NOT_FOUND);
  CHECK(tidings_store_identity(store, &me, &err) == TIDINGS_OK);
  CHECK(strlen(me->device_id) == 32 && strlen(me->fingerprint) == 35); /* 6 groups of 5 */
  tidings_identity_free(me);
  CHECK(tidings_store_create_conversation(store, "c-plain", "", NULL, 0, true, &err) == TIDINGS_OK);
  CHECK(tidings_store_conversation_mode(store, "c-plain", &mode, &err) == TIDINGS_OK);
  CHECK(mode == TIDINGS_MODE_PLAINTEXT);

  tidings_search_request_init(&search);
  search.query = "hel*";
  CHECK(tidings_store_search(store, &search, &hits, &err) == TIDINGS_OK);
  CHECK(tidings_search_result_count(hits) == 1 && tidings_search_result_total(hits) == 1);
  hit = tidings_search_result_at(hits, 0);
  CHECK(hit != NULL && strcmp(hit->conversation_id, "c-conv") == 0);
  CHECK(hit->mark_count == 1 && hit->marks[0].begin == 0 && hit->marks[0].end == 5);
  CHECK(hit->snippet_size == strlen(body) && memcmp(hit->snippet, body, strlen(body)) == 0);
  tidings_search_result_free(hits);
  tidings_store_close(store);
  printf("c_smoke: ok (libtidings %s)\n", tidings_version());
  return 0;
}
