// The C ABI across versions: struct_size on the structs a caller fills, and
// lists that keep working for a caller compiled against smaller structs.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "api/struct_size.h"
#include "tests/api/api_test_util.h"
#include "tidings/tidings.h"

namespace {

using tidings::apitest::kKey;
using tidings::apitest::TempDir;

bool Contains(const char* haystack, const char* needle) {
  return std::strstr(haystack, needle) != nullptr;
}

class AbiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_ / "store";
    tidings_key_source key = tidings_key_raw(kKey);
    tidings_error e{};
    ASSERT_EQ(tidings_store_create(path_.c_str(), &key, "alice", &store_, &e), TIDINGS_OK)
        << e.message;
  }
  void TearDown() override { tidings_store_close(store_); }

  // Opens the store again (read-only, so beside store_) with `o`.
  tidings_code OpenWith(const tidings_open_options* o, tidings_error* e) {
    tidings_key_source key = tidings_key_raw(kKey);
    tidings_store* s = nullptr;
    tidings_code code = tidings_store_open(path_.c_str(), &key, o, &s, e);
    tidings_store_close(s);
    return code;
  }

  TempDir dir_;
  std::string path_;
  tidings_store* store_ = nullptr;
};

TEST(AbiInit, InitialisersZeroEverythingAndSetTheCompiledSize) {
  tidings_open_options o;
  std::memset(&o, 0xAB, sizeof(o));
  tidings_open_options_init(&o);
  EXPECT_EQ(o.struct_size, sizeof(o));
  EXPECT_FALSE(o.create_if_missing || o.error_if_exists || o.read_only);
  EXPECT_EQ(o.user_id, nullptr);
  EXPECT_EQ(o.max_clock_drift_ms, 0u);
  tidings_send_request r;
  std::memset(&r, 0xAB, sizeof(r));
  tidings_send_request_init(&r);
  EXPECT_EQ(r.struct_size, sizeof(r));
  EXPECT_EQ(r.metadata, nullptr);
  EXPECT_EQ(r.message_id, nullptr);
}

TEST_F(AbiTest, OpenOptionsStructSizeIsChecked) {
  tidings_open_options o;
  tidings_open_options_init(&o);
  o.read_only = true;
  tidings_error e{};
  ASSERT_EQ(OpenWith(&o, &e), TIDINGS_OK) << e.message;

  // 0 is refused, and the message says how to set it.
  o.struct_size = 0;
  EXPECT_EQ(OpenWith(&o, &e), TIDINGS_INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(e.message, "tidings_open_options_init")) << e.message;

  // Smaller than the first published version: no caller ever had that.
  o.struct_size = offsetof(tidings_open_options, durability);
  EXPECT_EQ(OpenWith(&o, &e), TIDINGS_INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(e.message, "smaller than any version")) << e.message;

  // A newer header's struct: accepted while the fields this library does
  // not know are zero (their defaults), refused once one is set.
  struct Newer {
    tidings_open_options o;
    uint64_t future_field;
  } newer;
  std::memset(&newer, 0, sizeof(newer));
  newer.o.struct_size = sizeof(newer);
  newer.o.read_only = true;
  EXPECT_EQ(OpenWith(&newer.o, &e), TIDINGS_OK) << e.message;
  newer.future_field = 1;
  EXPECT_EQ(OpenWith(&newer.o, &e), TIDINGS_INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(e.message, "older than the header you compiled against")) << e.message;
}

TEST_F(AbiTest, SendRequestStructSizeIsChecked) {
  tidings_send_request r;
  tidings_send_request_init(&r);
  r.conversation_id = "c";
  tidings_error e{};
  ASSERT_EQ(tidings_store_send(store_, &r, nullptr, &e), TIDINGS_OK) << e.message;
  r.struct_size = 0;
  EXPECT_EQ(tidings_store_send(store_, &r, nullptr, &e), TIDINGS_INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(e.message, "tidings_send_request_init")) << e.message;
  r.struct_size = sizeof(uint32_t);
  EXPECT_EQ(tidings_store_send(store_, &r, nullptr, &e), TIDINGS_INVALID_ARGUMENT);
  struct Newer {
    tidings_send_request r;
    const char* future_field;
  } newer;
  std::memset(&newer, 0, sizeof(newer));
  newer.r.struct_size = sizeof(newer);
  newer.r.conversation_id = "c";
  EXPECT_EQ(tidings_store_send(store_, &newer.r, nullptr, &e), TIDINGS_OK) << e.message;
  newer.future_field = "set";
  EXPECT_EQ(tidings_store_send(store_, &newer.r, nullptr, &e), TIDINGS_INVALID_ARGUMENT);
  // Nothing was written by the refused calls.
  tidings_message_list* page = nullptr;
  ASSERT_EQ(tidings_store_page_newest(store_, "c", 0, &page, &e), TIDINGS_OK) << e.message;
  EXPECT_EQ(tidings_message_list_count(page), 2u);
  tidings_message_list_free(page);
}

// Two versions of one caller-filled struct, as a header would publish them:
// the library (V2) reads an older caller's V1 without touching past it.
struct OptionsV1 {
  uint32_t struct_size;
  bool flag;
  const char* name;
};
struct OptionsV2 {
  uint32_t struct_size;
  bool flag;
  const char* name;
  uint64_t limit;  // added in V2; 0 means the default
};

TEST(AbiStructSize, AnOlderCallerIsReadOnlyAsFarAsItsStructGoes) {
  constexpr size_t kV1 = TIDINGS_END_OF(OptionsV1, name);
  constexpr size_t kKnown = TIDINGS_END_OF(OptionsV2, limit);
  // The V1 caller's struct sits right before bytes it does not own.
  struct {
    OptionsV1 v1;
    unsigned char beyond[sizeof(OptionsV2)];
  } caller;
  std::memset(&caller, 0xAB, sizeof(caller));
  caller.v1.struct_size = sizeof(OptionsV1);
  caller.v1.flag = true;
  caller.v1.name = "old";
  auto read = tidings::capi::ReadCallerStruct(reinterpret_cast<const OptionsV2*>(&caller.v1), kV1,
                                              kKnown, "options");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_TRUE(read->flag);
  EXPECT_STREQ(read->name, "old");
  EXPECT_EQ(read->limit, 0u) << "a field the caller does not have must read as its default";
  EXPECT_EQ(read->struct_size, sizeof(OptionsV2));

  // A V2 caller's fields are all read.
  OptionsV2 v2;
  std::memset(&v2, 0, sizeof(v2));
  v2.struct_size = sizeof(v2);
  v2.limit = 9;
  auto full = tidings::capi::ReadCallerStruct(&v2, kV1, kKnown, "options");
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->limit, 9u);

  // Below V1, or 0: refused with what to do.
  v2.struct_size = offsetof(OptionsV1, name);
  EXPECT_EQ(tidings::capi::ReadCallerStruct(&v2, kV1, kKnown, "options").status().code(),
            tidings::Code::kInvalidArgument);
  v2.struct_size = 0;
  auto zero = tidings::capi::ReadCallerStruct(&v2, kV1, kKnown, "options");
  EXPECT_EQ(zero.status().code(), tidings::Code::kInvalidArgument);
  EXPECT_NE(zero.status().message().find("options_init()"), std::string::npos);
}

// tidings_message as its first published version declared it, for a caller
// compiled then: the library's struct may have grown since, but the prefix
// stays where it was.
struct MessageV1 {
  const char* id;
  const char* conversation_id;
  const char* sender;
  tidings_order order;
  const char* body;
  size_t body_size;
  const char* content_type;
  tidings_message_state state;
  const char* failure_reason;
  uint64_t server_time_ms;
  tidings_order edited_at;
  bool deleted;
  const tidings_reaction* const* reactions;
  size_t reaction_count;
  const tidings_pair* const* metadata;
  size_t metadata_count;
};
static_assert(offsetof(MessageV1, metadata_count) == offsetof(tidings_message, metadata_count),
              "the first version is a prefix of tidings_message");
static_assert(sizeof(MessageV1) < sizeof(tidings_message), "a smaller struct than the library's");

TEST_F(AbiTest, ListsWorkForACallerCompiledAgainstASmallerStruct) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    std::string body = "body " + std::to_string(i);
    tidings_pair lang = {"lang", "en"};
    const tidings_pair* meta[] = {&lang};
    tidings_send_request r;
    tidings_send_request_init(&r);
    r.conversation_id = "c";
    r.body = body.data();
    r.body_size = body.size();
    r.metadata = meta;
    r.metadata_count = 1;
    tidings_message* m = nullptr;
    tidings_error e{};
    ASSERT_EQ(tidings_store_send(store_, &r, &m, &e), TIDINGS_OK) << e.message;
    ids.push_back(m->id);
    tidings_message_free(m);
  }
  tidings_message_list* page = nullptr;
  ASSERT_EQ(tidings_store_page_newest(store_, "c", 0, &page, nullptr), TIDINGS_OK);
  ASSERT_EQ(tidings_message_list_count(page), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    // What the old caller's compiled code does: read its own, smaller
    // struct through the pointer the library hands out.
    MessageV1 old;
    std::memcpy(&old, tidings_message_list_at(page, i), sizeof(old));
    EXPECT_STREQ(old.id, ids[i].c_str()) << "item " << i;
    EXPECT_EQ(std::string(old.body, old.body_size), "body " + std::to_string(i));
    ASSERT_EQ(old.metadata_count, 1u);
    EXPECT_STREQ(old.metadata[0]->key, "lang");
  }
  EXPECT_EQ(tidings_message_list_at(page, ids.size()), nullptr);
  tidings_message_list_free(page);
}

// Prefixes of the other listed structs, as an older caller would declare
// them.
struct ConversationV1 {
  const char* id;
  const char* title;
  const char* const* members;
  size_t member_count;
};
struct OutboxEntryV1 {
  uint64_t seq;
  tidings_op_kind kind;
  const char* op_id;
  const char* conversation_id;
  const char* message_id;
};
static_assert(offsetof(ConversationV1, member_count) ==
              offsetof(tidings_conversation, member_count));
static_assert(offsetof(OutboxEntryV1, message_id) == offsetof(tidings_outbox_entry, message_id));

TEST_F(AbiTest, ConversationAndOutboxListsWorkForASmallerStruct) {
  const char* convs[] = {"a", "b", "c"};
  const char* members[] = {"alice", "bob"};
  for (const char* c : convs) {
    tidings_send_request r;
    tidings_send_request_init(&r);
    r.conversation_id = c;
    ASSERT_EQ(tidings_store_send(store_, &r, nullptr, nullptr), TIDINGS_OK);
    ASSERT_EQ(tidings_store_put_conversation(store_, c, c, members, 2, nullptr), TIDINGS_OK);
  }
  tidings_conversation_list* list = nullptr;
  ASSERT_EQ(tidings_store_conversations(store_, 0, &list, nullptr), TIDINGS_OK);
  ASSERT_EQ(tidings_conversation_list_count(list), 3u);
  for (size_t i = 0; i < 3; ++i) {
    ConversationV1 old;
    std::memcpy(&old, tidings_conversation_list_at(list, i), sizeof(old));
    EXPECT_STREQ(old.id, old.title) << "item " << i;
    ASSERT_EQ(old.member_count, 2u);
    EXPECT_STREQ(old.members[1], "bob");
  }
  EXPECT_EQ(tidings_conversation_list_at(list, 3), nullptr);
  tidings_conversation_list_free(list);

  tidings_outbox_list* outbox = nullptr;
  ASSERT_EQ(tidings_store_outbox(store_, nullptr, 0, &outbox, nullptr), TIDINGS_OK);
  ASSERT_EQ(tidings_outbox_list_count(outbox), 3u);
  uint64_t last_seq = 0;
  for (size_t i = 0; i < 3; ++i) {
    OutboxEntryV1 old;
    std::memcpy(&old, tidings_outbox_list_at(outbox, i), sizeof(old));
    EXPECT_GT(old.seq, last_seq);
    last_seq = old.seq;
    EXPECT_EQ(old.kind, TIDINGS_OP_SEND);
    EXPECT_STREQ(old.conversation_id, convs[i]);
  }
  EXPECT_EQ(tidings_outbox_list_at(outbox, 3), nullptr);
  tidings_outbox_list_free(outbox);
}

}  // namespace
