/* Compiles as C: the header is valid C99 and links against the shared library. */
#include <stdio.h>
#include <string.h>

#include "tidings/tidings.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  uint8_t key[32];
  memset(key, 3, sizeof(key));
  tidings_open_options o = {1, 0, TIDINGS_DURABILITY_SYNC, "c-user"};
  tidings_store* store = NULL;
  tidings_error err;
  if (tidings_store_open_with_key(argv[1], key, sizeof(key), &o, &store, &err) != TIDINGS_OK) {
    fprintf(stderr, "open: %s %s\n", tidings_code_name(err.code), err.message);
    return 1;
  }
  char* id = NULL;
  if (tidings_store_send(store, "c", (const uint8_t*)"hi", 2, NULL, &id, &err) != TIDINGS_OK) return 1;
  tidings_message* m = NULL;
  if (tidings_store_get(store, id, &m, &err) != TIDINGS_OK) return 1;
  int ok = m->body_len == 2 && memcmp(m->body, "hi", 2) == 0 && err.code == TIDINGS_OK &&
           err.message[0] == '\0';
  tidings_message_free(m);
  tidings_string_free(id);
  tidings_store_close(store);
  printf("c api smoke: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
