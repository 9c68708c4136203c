/* An app in C against the installed package: creates a store, sends, reads
 * the message back after reopening, closes. Usage: app DIR */
#include <stdio.h>
#include <string.h>
#include <tidings/tidings.h>

static int fail(const char* what, const tidings_error* err) {
  fprintf(stderr, "app.c: %s: %s (%s)\n", what, tidings_code_name(err->code), err->message);
  return 1;
}

int main(int argc, char** argv) {
  const char* body = "hello from an installed C app";
  char path[4096], key_path[4096], id[128];
  tidings_error err;
  tidings_store* store = NULL;
  tidings_message* msg = NULL;
  tidings_send_request req;
  tidings_key_source key;
  int same;
  if (argc != 2) return 2;
  memset(&err, 0, sizeof err);
  snprintf(path, sizeof path, "%s/store", argv[1]);
  snprintf(key_path, sizeof key_path, "%s/store.key", argv[1]);

  if (tidings_key_file_create(key_path, &err) != TIDINGS_OK) return fail("key", &err);
  key = tidings_key_file(key_path);
  if (tidings_store_create(path, &key, "c-app", &store, &err) != TIDINGS_OK) {
    return fail("create", &err);
  }
  memset(&req, 0, sizeof req);
  req.struct_size = sizeof req;
  req.conversation_id = "conv";
  req.body = body;
  req.body_size = strlen(body);
  if (tidings_store_send(store, &req, &msg, &err) != TIDINGS_OK) return fail("send", &err);
  snprintf(id, sizeof id, "%s", msg->id);
  tidings_message_free(msg);
  tidings_store_close(store);

  if (tidings_store_open(path, &key, NULL, &store, &err) != TIDINGS_OK) return fail("open", &err);
  if (tidings_store_get(store, id, &msg, &err) != TIDINGS_OK) return fail("get", &err);
  same = msg->body_size == strlen(body) && memcmp(msg->body, body, msg->body_size) == 0;
  tidings_message_free(msg);
  tidings_store_close(store);
  if (!same) {
    fprintf(stderr, "app.c: the message read back differs from the one sent\n");
    return 1;
  }
  printf("app.c: ok (libtidings %s)\n", tidings_version());
  return 0;
}
