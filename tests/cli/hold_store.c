/* Test helper: holds a store open for writing, as a sync daemon would, until
 * its stdin closes. Prints "ready" once the store is open. Pure C over
 * libtidings.so. Usage: hold_store STORE KEY_FILE */
#include <stdio.h>

#include "tidings/tidings.h"

int main(int argc, char** argv) {
  tidings_error err;
  tidings_store* store = NULL;
  tidings_key_source key;
  int c;
  if (argc != 3) return 2;
  key = tidings_key_file(argv[2]);
  if (tidings_store_open(argv[1], &key, NULL, &store, &err) != TIDINGS_OK) {
    fprintf(stderr, "hold_store: %s: %s\n", tidings_code_name(err.code), err.message);
    return 1;
  }
  printf("ready\n");
  fflush(stdout);
  while ((c = getchar()) != EOF) {
  }
  tidings_store_close(store);
  return 0;
}
