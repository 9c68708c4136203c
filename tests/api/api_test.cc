#include <gtest/gtest.h>

#include <atomic>
#include <cstring>

#include "../engine/test_util.h"
#include "tidings/tidings.hpp"

namespace {

using tidings::testing::TempDir;

const uint8_t kKey[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                          17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

TEST(CApi, RoundTripErrorsClearedOnSuccessAndCodes) {
  TempDir dir;
  tidings_open_options o{1, 0, TIDINGS_DURABILITY_RELAXED, "alice"};
  tidings_store* store = nullptr;
  tidings_error err;
  std::memset(&err, 'x', sizeof(err));
  ASSERT_EQ(tidings_store_open_with_key(dir.path().c_str(), kKey, 32, &o, &store, &err),
            TIDINGS_OK);
  EXPECT_EQ(err.code, TIDINGS_OK);
  EXPECT_STREQ(err.message, "");

  std::atomic<int> added{0};
  uint64_t token = tidings_store_subscribe(
      store,
      [](void* ctx, tidings_change_kind kind, const char*, const char*) {
        if (kind == TIDINGS_MESSAGE_ADDED) ++*static_cast<std::atomic<int>*>(ctx);
      },
      &added);
  EXPECT_NE(token, 0u);

  char* id = nullptr;
  ASSERT_EQ(tidings_store_send(store, "c", reinterpret_cast<const uint8_t*>("hello"), 5,
                               "text/plain", &id, &err),
            TIDINGS_OK);
  EXPECT_EQ(added.load(), 1);
  tidings_store_unsubscribe(store, token);

  // A failure fills the error; the next success clears it.
  EXPECT_EQ(tidings_store_get(store, "nope", nullptr, &err), TIDINGS_INVALID_ARGUMENT);
  tidings_message* m = nullptr;
  EXPECT_EQ(tidings_store_get(store, "nope", &m, &err), TIDINGS_NOT_FOUND);
  EXPECT_NE(std::strlen(err.message), 0u);
  ASSERT_EQ(tidings_store_get(store, id, &m, &err), TIDINGS_OK);
  EXPECT_STREQ(err.message, "");
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(m->body), m->body_len), "hello");
  EXPECT_EQ(m->state, TIDINGS_PENDING);
  tidings_message_free(m);

  std::string big(70 * 1024, 'x');
  EXPECT_EQ(tidings_store_send(store, "c", reinterpret_cast<const uint8_t*>(big.data()), big.size(),
                               nullptr, nullptr, &err),
            TIDINGS_TOO_LARGE);

  tidings_message_list* page = nullptr;
  ASSERT_EQ(tidings_store_page(store, "c", 10, 0, 0, 0, &page, &err), TIDINGS_OK);
  EXPECT_EQ(page->count, 1u);
  tidings_message_list_free(page);
  tidings_conversation_list* convs = nullptr;
  ASSERT_EQ(tidings_store_conversations(store, 0, &convs, &err), TIDINGS_OK);
  ASSERT_EQ(convs->count, 1u);
  EXPECT_STREQ(convs->items[0].id, "c");
  tidings_conversation_list_free(convs);
  uint64_t pending = 0, failed = 0, problems = 1;
  ASSERT_EQ(tidings_store_outbox_depth(store, &pending, &failed, &err), TIDINGS_OK);
  EXPECT_EQ(pending, 1u);
  ASSERT_EQ(tidings_store_verify(store, &problems, &err), TIDINGS_OK);
  EXPECT_EQ(problems, 0u);
  tidings_string_free(id);
  tidings_store_close(store);

  uint8_t wrong[32] = {0};
  tidings_open_options plain{0, 0, TIDINGS_DURABILITY_SYNC, nullptr};
  EXPECT_EQ(tidings_store_open_with_key(dir.path().c_str(), wrong, 32, &plain, &store, &err),
            TIDINGS_WRONG_KEY);
  EXPECT_STREQ(tidings_code_name(err.code), "WRONG_KEY");
  EXPECT_EQ(tidings_store_open_with_key(dir.path().c_str(), wrong, 31, &plain, &store, &err),
            TIDINGS_INVALID_ARGUMENT);
  EXPECT_EQ(tidings_store_send(nullptr, "c", nullptr, 0, nullptr, nullptr, &err),
            TIDINGS_INVALID_ARGUMENT);
}

TEST(CppApi, ThinWrapper) {
  TempDir dir;
  auto store = tidings::Store::OpenWithKey(dir.path(), kKey, 32,
                                           {.create_if_missing = true, .user_id = "bob"});
  ASSERT_TRUE(store.ok()) << store.error().message;
  auto id = store->Send("c", "one");
  ASSERT_TRUE(id.ok());
  EXPECT_TRUE(store->Edit(id.value(), "uno").ok());
  auto m = store->Get(id.value());
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->body, "uno");
  EXPECT_TRUE(m->edited);
  EXPECT_EQ(store->Get("missing").error().code, TIDINGS_NOT_FOUND);
  auto page = store->Page("c");
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page.value().size(), 1u);
}

}  // namespace
