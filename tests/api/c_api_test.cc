// The C API as an app embeds it: codes, error structs, ownership, callbacks.
// Run under ASan/UBSan in CI, which turns any leak, double free or
// use-after-free of the returned objects into a failure.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/api/api_test_util.h"
#include "tidings/tidings.h"

namespace {

using tidings::apitest::kKey;
using tidings::apitest::TempDir;

// An error struct full of junk, to prove success clears it.
tidings_error Dirty() {
  tidings_error e;
  e.code = TIDINGS_INTERNAL;
  std::memset(e.message, 'x', sizeof(e.message) - 1);
  e.message[sizeof(e.message) - 1] = '\0';
  return e;
}

void ExpectCleared(const tidings_error& e) {
  EXPECT_EQ(e.code, TIDINGS_OK);
  EXPECT_STREQ(e.message, "");
}

class CApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_ / "store";
    tidings_key_source key = tidings_key_raw(kKey);
    tidings_open_options o;
    tidings_open_options_init(&o);
    o.create_if_missing = true;
    o.user_id = "alice";
    o.durability = TIDINGS_DURABILITY_RELAXED;
    tidings_error e = Dirty();
    ASSERT_EQ(tidings_store_open(path_.c_str(), &key, &o, &store_, &e), TIDINGS_OK) << e.message;
    ExpectCleared(e);
  }
  void TearDown() override { tidings_store_close(store_); }

  std::string Send(const char* conv, const std::string& body) {
    tidings_send_request r;
    tidings_send_request_init(&r);
    r.conversation_id = conv;
    r.body = body.data();
    r.body_size = body.size();
    tidings_message* m = nullptr;
    tidings_error e = Dirty();
    EXPECT_EQ(tidings_store_send(store_, &r, &m, &e), TIDINGS_OK) << e.message;
    ExpectCleared(e);
    if (m == nullptr) return "";
    std::string id = m->id;
    tidings_message_free(m);
    return id;
  }

  TempDir dir_;
  std::string path_;
  tidings_store* store_ = nullptr;
};

TEST(CApiBasics, CodeNamesMirrorTheCppCodes) {
  EXPECT_STREQ(tidings_code_name(TIDINGS_OK), "OK");
  EXPECT_STREQ(tidings_code_name(TIDINGS_WRONG_KEY), "WRONG_KEY");
  EXPECT_STREQ(tidings_code_name(TIDINGS_DATA_LOSS), "DATA_LOSS");
  EXPECT_STREQ(tidings_code_name(TIDINGS_UNIMPLEMENTED), "UNIMPLEMENTED");
  EXPECT_STREQ(tidings_code_name(static_cast<tidings_code>(999)), "UNKNOWN");
  EXPECT_STREQ(tidings_code_name(static_cast<tidings_code>(-1)), "UNKNOWN");
  EXPECT_TRUE(tidings_code_is_retryable(TIDINGS_UNAVAILABLE));
  EXPECT_TRUE(tidings_code_is_retryable(TIDINGS_ABORTED));
  EXPECT_FALSE(tidings_code_is_retryable(TIDINGS_WRONG_KEY));
  EXPECT_FALSE(tidings_code_is_retryable(TIDINGS_FAILED_PRECONDITION));
  EXPECT_STRNE(tidings_version(), "");
  EXPECT_STREQ(tidings_op_kind_name(TIDINGS_OP_READ_MARKER), "read_marker");
  EXPECT_STREQ(tidings_op_kind_name(static_cast<tidings_op_kind>(77)), "unknown");
}

TEST(CApiBasics, OrderCompare) {
  EXPECT_LT(tidings_order_compare({1, 9}, {2, 0}), 0);
  EXPECT_GT(tidings_order_compare({2, 1}, {2, 0}), 0);
  EXPECT_EQ(tidings_order_compare({2, 1}, {2, 1}), 0);
}

TEST(CApiBasics, OpenMissingStoreIsNotFoundAndOutIsNulled) {
  TempDir dir;
  tidings_key_source key = tidings_key_raw(kKey);
  tidings_store* out = reinterpret_cast<tidings_store*>(0x1);  // must be overwritten
  tidings_error e{};
  EXPECT_EQ(tidings_store_open((dir / "none").c_str(), &key, nullptr, &out, &e), TIDINGS_NOT_FOUND);
  EXPECT_EQ(out, nullptr);
  EXPECT_EQ(e.code, TIDINGS_NOT_FOUND);
  EXPECT_STRNE(e.message, "");
}

TEST(CApiBasics, NullArgumentsAreInvalidNotCrashes) {
  tidings_error e{};
  EXPECT_EQ(tidings_store_open(nullptr, nullptr, nullptr, nullptr, &e), TIDINGS_INVALID_ARGUMENT);
  EXPECT_EQ(e.code, TIDINGS_INVALID_ARGUMENT);
  EXPECT_EQ(tidings_store_send(nullptr, nullptr, nullptr, &e), TIDINGS_INVALID_ARGUMENT);
  EXPECT_EQ(tidings_store_get(nullptr, "x", nullptr, nullptr), TIDINGS_INVALID_ARGUMENT);
  uint8_t small[8];
  EXPECT_EQ(tidings_key_generate(small, sizeof(small), &e), TIDINGS_INVALID_ARGUMENT);
  // Free functions and close accept NULL.
  tidings_store_close(nullptr);
  tidings_message_free(nullptr);
  tidings_message_list_free(nullptr);
  tidings_conversation_free(nullptr);
  tidings_conversation_list_free(nullptr);
  tidings_outbox_list_free(nullptr);
  // A NULL list is empty.
  EXPECT_EQ(tidings_message_list_count(nullptr), 0u);
  EXPECT_EQ(tidings_message_list_at(nullptr, 0), nullptr);
  EXPECT_EQ(tidings_conversation_list_count(nullptr), 0u);
  EXPECT_EQ(tidings_conversation_list_at(nullptr, 0), nullptr);
  EXPECT_EQ(tidings_outbox_list_count(nullptr), 0u);
  EXPECT_EQ(tidings_outbox_list_at(nullptr, 0), nullptr);
  tidings_stats_free(nullptr);
  tidings_verify_report_free(nullptr);
}

TEST(CApiBasics, WrongKeyPassphraseAndKeyFileCodes) {
  TempDir dir;
  const std::string path = dir / "s";
  const char phrase[] = "correct horse battery staple";
  tidings_key_source good = tidings_key_passphrase(phrase, std::strlen(phrase));
  tidings_store* s = nullptr;
  tidings_error e = Dirty();
  ASSERT_EQ(tidings_store_create(path.c_str(), &good, "bob", &s, &e), TIDINGS_OK) << e.message;
  ExpectCleared(e);
  tidings_store_close(s);

  // Creating again: ALREADY_EXISTS.
  EXPECT_EQ(tidings_store_create(path.c_str(), &good, "bob", &s, &e), TIDINGS_ALREADY_EXISTS);

  const char wrong[] = "wrong horse";
  tidings_key_source bad = tidings_key_passphrase(wrong, std::strlen(wrong));
  EXPECT_EQ(tidings_store_open(path.c_str(), &bad, nullptr, &s, &e), TIDINGS_WRONG_KEY);
  EXPECT_EQ(e.code, TIDINGS_WRONG_KEY);
  EXPECT_EQ(s, nullptr);
  // The message names no secret.
  EXPECT_EQ(std::string(e.message).find("horse"), std::string::npos) << e.message;

  // The right passphrase still opens it: the failed attempt changed nothing.
  ASSERT_EQ(tidings_store_open(path.c_str(), &good, nullptr, &s, &e), TIDINGS_OK) << e.message;
  tidings_store_close(s);

  // Key files: created 0600, refused once loose, missing is NOT_FOUND.
  const std::string key_path = dir / "k.key";
  ASSERT_EQ(tidings_key_file_create(key_path.c_str(), &e), TIDINGS_OK) << e.message;
  struct stat st {};
  ASSERT_EQ(::stat(key_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(tidings_key_file_create(key_path.c_str(), &e), TIDINGS_ALREADY_EXISTS);
  tidings_key_source kf = tidings_key_file(key_path.c_str());
  const std::string kpath = dir / "k";
  ASSERT_EQ(tidings_store_create(kpath.c_str(), &kf, "carol", &s, &e), TIDINGS_OK) << e.message;
  tidings_store_close(s);
  ASSERT_EQ(::chmod(key_path.c_str(), 0644), 0);
  EXPECT_EQ(tidings_store_open(kpath.c_str(), &kf, nullptr, &s, &e), TIDINGS_PERMISSION_DENIED);
  const std::string missing_path = dir / "nope.key";  // must outlive the key source
  tidings_key_source missing = tidings_key_file(missing_path.c_str());
  EXPECT_EQ(tidings_store_open(kpath.c_str(), &missing, nullptr, &s, &e), TIDINGS_NOT_FOUND);
  // A raw key of the wrong size never reaches the engine.
  tidings_key_source short_key = {TIDINGS_KEY_RAW, kKey, 16};
  EXPECT_EQ(tidings_store_open(kpath.c_str(), &short_key, nullptr, &s, &e),
            TIDINGS_INVALID_ARGUMENT);
  // Another store's raw key: WRONG_KEY, not DATA_LOSS.
  uint8_t other[TIDINGS_KEY_SIZE];
  ASSERT_EQ(tidings_key_generate(other, sizeof(other), &e), TIDINGS_OK);
  tidings_key_source raw = tidings_key_raw(other);
  EXPECT_EQ(tidings_store_open(path.c_str(), &raw, nullptr, &s, &e), TIDINGS_WRONG_KEY);
}

TEST(CApiBasics, LongErrorMessagesAreCutAtACharacterBoundary) {
  // A store path of multi-byte characters makes an error message longer than
  // the buffer; the cut must leave valid UTF-8 and a NUL.
  TempDir dir;
  std::string path = dir.path() + "/";
  for (int i = 0; i < 300; ++i) path += "\xc3\xa9";  // é
  tidings_key_source key = tidings_key_raw(kKey);
  tidings_store* s = nullptr;
  tidings_error e{};
  EXPECT_NE(tidings_store_open(path.c_str(), &key, nullptr, &s, &e), TIDINGS_OK);
  size_t n = std::strlen(e.message);
  ASSERT_LT(n, sizeof(e.message));
  ASSERT_GT(n, 0u);
  // Count the trailing continuation bytes: a complete sequence ends the text.
  size_t i = n;
  while (i > 0 && (static_cast<unsigned char>(e.message[i - 1]) & 0xC0) == 0x80) --i;
  if (i > 0 && (static_cast<unsigned char>(e.message[i - 1]) & 0xE0) == 0xC0) {
    EXPECT_EQ(n - i, 1u) << "a two-byte character was cut";
  }
}

TEST_F(CApiTest, SendGetPageRoundTrip) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(Send("general", "hello " + std::to_string(i)));
  Send("random", "elsewhere");

  // Bodies are bytes: an embedded NUL survives.
  std::string binary("a\0b", 3);
  std::string bin_id = Send("bin", binary);
  tidings_message* m = nullptr;
  tidings_error e = Dirty();
  ASSERT_EQ(tidings_store_get(store_, bin_id.c_str(), &m, &e), TIDINGS_OK) << e.message;
  ExpectCleared(e);
  EXPECT_EQ(std::string(m->body, m->body_size), binary);
  EXPECT_STREQ(m->sender, "alice");
  EXPECT_STREQ(m->content_type, "text/plain");
  EXPECT_EQ(m->state, TIDINGS_MESSAGE_PENDING);
  EXPECT_FALSE(m->deleted);
  tidings_message_free(m);

  tidings_message_list* page = nullptr;
  ASSERT_EQ(tidings_store_page_newest(store_, "general", 3, &page, &e), TIDINGS_OK) << e.message;
  ASSERT_EQ(tidings_message_list_count(page), 3u);
  EXPECT_STREQ(tidings_message_list_at(page, 0)->id, ids[2].c_str());
  EXPECT_STREQ(tidings_message_list_at(page, 2)->id, ids[4].c_str());
  EXPECT_EQ(std::string(tidings_message_list_at(page, 2)->body,
                        tidings_message_list_at(page, 2)->body_size),
            "hello 4");
  EXPECT_LT(tidings_order_compare(tidings_message_list_at(page, 0)->order,
                                  tidings_message_list_at(page, 1)->order),
            0);
  tidings_order first = tidings_message_list_at(page, 0)->order;
  tidings_message_list_free(page);

  ASSERT_EQ(tidings_store_page_before(store_, "general", first, 10, &page, &e), TIDINGS_OK);
  ASSERT_EQ(tidings_message_list_count(page), 2u);
  EXPECT_STREQ(tidings_message_list_at(page, 0)->id, ids[0].c_str());
  EXPECT_STREQ(tidings_message_list_at(page, 1)->id, ids[1].c_str());
  tidings_order second = tidings_message_list_at(page, 1)->order;
  tidings_message_list_free(page);

  ASSERT_EQ(tidings_store_page_after(store_, "general", second, 2, &page, &e), TIDINGS_OK);
  ASSERT_EQ(tidings_message_list_count(page), 2u);
  EXPECT_STREQ(tidings_message_list_at(page, 0)->id, ids[2].c_str());
  EXPECT_STREQ(tidings_message_list_at(page, 1)->id, ids[3].c_str());
  tidings_message_list_free(page);

  // An unknown conversation is NOT_FOUND, not an empty page.
  page = reinterpret_cast<tidings_message_list*>(0x1);
  EXPECT_EQ(tidings_store_page_newest(store_, "nope", 10, &page, &e), TIDINGS_NOT_FOUND);
  EXPECT_EQ(page, nullptr);
  EXPECT_EQ(tidings_store_get(store_, "no-such-id", &m, &e), TIDINGS_NOT_FOUND);

  // Reopen: everything is still there.
  tidings_store_close(store_);
  tidings_key_source key = tidings_key_raw(kKey);
  ASSERT_EQ(tidings_store_open(path_.c_str(), &key, nullptr, &store_, &e), TIDINGS_OK);
  ASSERT_EQ(tidings_store_page_newest(store_, "general", 0, &page, &e), TIDINGS_OK);
  EXPECT_EQ(tidings_message_list_count(page), 5u);
  tidings_message_list_free(page);
}

TEST_F(CApiTest, SendRequestOptionsAndLimits) {
  tidings_pair meta[] = {{"k1", "v1"}, {"k2", "v2"}};
  const tidings_pair* meta_ptrs[] = {&meta[0], &meta[1]};
  tidings_send_request r;
  tidings_send_request_init(&r);
  r.conversation_id = "c";
  r.body = "x";
  r.body_size = 1;
  r.content_type = "text/markdown";
  r.metadata = meta_ptrs;
  r.metadata_count = 2;
  r.message_id = "my-own-id";
  tidings_message* m = nullptr;
  tidings_error e{};
  ASSERT_EQ(tidings_store_send(store_, &r, &m, &e), TIDINGS_OK) << e.message;
  EXPECT_STREQ(m->id, "my-own-id");
  EXPECT_STREQ(m->content_type, "text/markdown");
  ASSERT_EQ(m->metadata_count, 2u);
  EXPECT_STREQ(m->metadata[1]->key, "k2");
  EXPECT_STREQ(m->metadata[1]->value, "v2");
  tidings_message_free(m);

  std::string big(64 * 1024 + 1, 'x');
  r.body = big.data();
  r.body_size = big.size();
  r.message_id = nullptr;
  r.metadata_count = 0;
  EXPECT_EQ(tidings_store_send(store_, &r, nullptr, &e), TIDINGS_TOO_LARGE);
  EXPECT_EQ(e.code, TIDINGS_TOO_LARGE);
  r.body = nullptr;
  r.body_size = 3;
  EXPECT_EQ(tidings_store_send(store_, &r, nullptr, &e), TIDINGS_INVALID_ARGUMENT);
  r.body_size = 0;  // an empty body is fine, and *out is optional
  EXPECT_EQ(tidings_store_send(store_, &r, nullptr, &e), TIDINGS_OK) << e.message;
  r.conversation_id = nullptr;
  EXPECT_EQ(tidings_store_send(store_, &r, nullptr, &e), TIDINGS_INVALID_ARGUMENT);
}

TEST_F(CApiTest, EditDeleteReactMarkReadAndConversations) {
  std::string a = Send("general", "first");
  std::string b = Send("general", "second");
  Send("other", "x");
  tidings_error e = Dirty();
  tidings_message* m = nullptr;
  ASSERT_EQ(tidings_store_edit(store_, a.c_str(), "first!", 6, &m, &e), TIDINGS_OK) << e.message;
  ExpectCleared(e);
  EXPECT_EQ(std::string(m->body, m->body_size), "first!");
  EXPECT_NE(m->edited_at.hlc, 0u);
  tidings_message_free(m);

  ASSERT_EQ(tidings_store_react(store_, a.c_str(), "+1", true, &e), TIDINGS_OK);
  ASSERT_EQ(tidings_store_delete(store_, b.c_str(), &e), TIDINGS_OK);
  EXPECT_EQ(tidings_store_edit(store_, b.c_str(), "zombie", 6, nullptr, &e),
            TIDINGS_FAILED_PRECONDITION);
  EXPECT_EQ(tidings_store_delete(store_, "missing", &e), TIDINGS_NOT_FOUND);

  ASSERT_EQ(tidings_store_get(store_, a.c_str(), &m, &e), TIDINGS_OK);
  ASSERT_EQ(m->reaction_count, 1u);
  EXPECT_STREQ(m->reactions[0]->user, "alice");
  EXPECT_STREQ(m->reactions[0]->reaction, "+1");
  tidings_order a_order = m->order;
  tidings_message_free(m);
  ASSERT_EQ(tidings_store_get(store_, b.c_str(), &m, &e), TIDINGS_OK);
  EXPECT_TRUE(m->deleted);
  EXPECT_EQ(m->body_size, 0u);
  tidings_message_free(m);

  ASSERT_EQ(tidings_store_mark_read(store_, "general", a_order, &e), TIDINGS_OK) << e.message;
  const char* members[] = {"alice", "bob"};
  ASSERT_EQ(tidings_store_put_conversation(store_, "general", "General", members, 2, &e),
            TIDINGS_OK)
      << e.message;

  tidings_conversation* c = nullptr;
  ASSERT_EQ(tidings_store_get_conversation(store_, "general", &c, &e), TIDINGS_OK) << e.message;
  EXPECT_STREQ(c->title, "General");
  ASSERT_EQ(c->member_count, 2u);
  EXPECT_STREQ(c->members[1], "bob");
  EXPECT_EQ(c->message_count, 1u);  // the deleted one does not count
  ASSERT_EQ(c->read_marker_count, 1u);
  EXPECT_STREQ(c->read_markers[0]->user, "alice");
  EXPECT_EQ(tidings_order_compare(c->read_markers[0]->up_to, a_order), 0);
  tidings_conversation_free(c);
  EXPECT_EQ(tidings_store_get_conversation(store_, "nope", &c, &e), TIDINGS_NOT_FOUND);

  tidings_conversation_list* list = nullptr;
  ASSERT_EQ(tidings_store_conversations(store_, 0, &list, &e), TIDINGS_OK);
  ASSERT_EQ(tidings_conversation_list_count(list), 2u);
  // Most recently active first: "general" had the last write (its title).
  std::vector<std::string> order = {tidings_conversation_list_at(list, 0)->id,
                                    tidings_conversation_list_at(list, 1)->id};
  tidings_conversation_list_free(list);
  EXPECT_EQ(order.size(), 2u);
  ASSERT_EQ(tidings_store_conversations(store_, 1, &list, &e), TIDINGS_OK);
  EXPECT_EQ(tidings_conversation_list_count(list), 1u);
  tidings_conversation_list_free(list);
}

TEST_F(CApiTest, OutboxStatsVerifyAndRetryDiscardCodes) {
  Send("general", "one");
  std::string id = Send("general", "two");
  tidings_error e = Dirty();
  ASSERT_EQ(tidings_store_react(store_, id.c_str(), "ok", true, &e), TIDINGS_OK);
  Send("other", "three");

  tidings_outbox_list* ob = nullptr;
  ASSERT_EQ(tidings_store_outbox(store_, nullptr, 0, &ob, &e), TIDINGS_OK) << e.message;
  ExpectCleared(e);
  ASSERT_EQ(tidings_outbox_list_count(ob), 4u);
  EXPECT_EQ(tidings_outbox_list_at(ob, 0)->kind, TIDINGS_OP_SEND);
  EXPECT_EQ(tidings_outbox_list_at(ob, 2)->kind, TIDINGS_OP_REACT);
  EXPECT_STREQ(tidings_outbox_list_at(ob, 2)->message_id, id.c_str());
  EXPECT_FALSE(tidings_outbox_list_at(ob, 0)->failed);
  EXPECT_LT(tidings_outbox_list_at(ob, 0)->seq, tidings_outbox_list_at(ob, 1)->seq);
  uint64_t seq = tidings_outbox_list_at(ob, 0)->seq;
  tidings_outbox_list_free(ob);
  ASSERT_EQ(tidings_store_outbox(store_, "other", 0, &ob, &e), TIDINGS_OK);
  EXPECT_EQ(tidings_outbox_list_count(ob), 1u);
  tidings_outbox_list_free(ob);
  uint64_t pending = 99, failed = 99;
  ASSERT_EQ(tidings_store_outbox_count(store_, nullptr, &pending, &failed, &e), TIDINGS_OK);
  EXPECT_EQ(pending, 4u);
  EXPECT_EQ(failed, 0u);
  ASSERT_EQ(tidings_store_outbox_count(store_, "general", &pending, nullptr, &e), TIDINGS_OK);
  EXPECT_EQ(pending, 3u);
  EXPECT_EQ(tidings_store_outbox_count(nullptr, "", &pending, &failed, &e),
            TIDINGS_INVALID_ARGUMENT);

  // Only failed entries can be retried or discarded.
  EXPECT_EQ(tidings_store_outbox_retry(store_, seq, &e), TIDINGS_FAILED_PRECONDITION);
  EXPECT_EQ(tidings_store_outbox_discard(store_, seq, &e), TIDINGS_FAILED_PRECONDITION);
  EXPECT_EQ(tidings_store_outbox_retry(store_, 999999, &e), TIDINGS_NOT_FOUND);

  tidings_stats* st = nullptr;
  ASSERT_EQ(tidings_store_stats(store_, &st, &e), TIDINGS_OK);
  EXPECT_EQ(st->messages, 3u);
  EXPECT_EQ(st->conversations, 2u);
  EXPECT_EQ(st->outbox, 4u);
  EXPECT_STREQ(st->user_id, "alice");
  EXPECT_NE(st->replica_id, 0u);
  tidings_stats_free(st);

  struct Progress {
    int calls = 0;
    uint64_t last = 0;
  } progress;
  tidings_verify_report* report = nullptr;
  ASSERT_EQ(tidings_store_verify(
                store_,
                [](void* ctx, uint64_t done, uint64_t) {
                  auto* p = static_cast<Progress*>(ctx);
                  ++p->calls;
                  p->last = done;
                },
                &progress, &report, &e),
            TIDINGS_OK);
  EXPECT_GT(report->records_checked, 0u);
  EXPECT_EQ(report->problems, 0u);
  EXPECT_EQ(report->detail_count, 0u);
  EXPECT_GT(progress.calls, 0);
  tidings_verify_report_free(report);
  ASSERT_EQ(tidings_store_verify(store_, nullptr, nullptr, &report, &e), TIDINGS_OK);
  tidings_verify_report_free(report);
}

TEST_F(CApiTest, BackupAndRestore) {
  for (int i = 0; i < 5; ++i) Send("a", "m" + std::to_string(i));
  const std::string backup = dir_ / "b.tidbak", restored = dir_ / "restored";
  tidings_error e = Dirty();
  ASSERT_EQ(tidings_store_backup(store_, backup.c_str(), nullptr, nullptr, &e), TIDINGS_OK)
      << e.message;
  ExpectCleared(e);
  EXPECT_EQ(tidings_store_backup(store_, backup.c_str(), nullptr, nullptr, &e),
            TIDINGS_ALREADY_EXISTS);
  EXPECT_EQ(tidings_store_backup(store_, nullptr, nullptr, nullptr, &e), TIDINGS_INVALID_ARGUMENT);

  uint8_t wrong[TIDINGS_KEY_SIZE] = {1};
  tidings_key_source wrong_key = tidings_key_raw(wrong);
  EXPECT_EQ(
      tidings_store_restore(backup.c_str(), restored.c_str(), &wrong_key, nullptr, nullptr, &e),
      TIDINGS_WRONG_KEY);
  tidings_key_source key = tidings_key_raw(kKey);
  uint64_t last = 0;
  ASSERT_EQ(tidings_store_restore(
                backup.c_str(), restored.c_str(), &key,
                [](void* ctx, uint64_t done, uint64_t) { *static_cast<uint64_t*>(ctx) = done; },
                &last, &e),
            TIDINGS_OK)
      << e.message;
  tidings_store* copy = nullptr;
  ASSERT_EQ(tidings_store_open(restored.c_str(), &key, nullptr, &copy, &e), TIDINGS_OK);
  tidings_stats* st = nullptr;
  ASSERT_EQ(tidings_store_stats(copy, &st, &e), TIDINGS_OK);
  EXPECT_EQ(st->messages, 5u);
  tidings_stats_free(st);
  tidings_store_close(copy);
}

// Retention through the C API: set, read back (as set and effective), list,
// purge with a report sized by the caller's struct.
TEST_F(CApiTest, RetentionPolicyAndPurge) {
  for (int i = 0; i < 5; ++i) Send("a", "m" + std::to_string(i));
  Send("b", "x");
  tidings_error e = Dirty();
  ASSERT_EQ(tidings_store_set_retention(store_, nullptr, 30, 0, &e), TIDINGS_OK) << e.message;
  ASSERT_EQ(tidings_store_set_retention(store_, "a", 0, 2, &e), TIDINGS_OK) << e.message;
  EXPECT_EQ(tidings_store_set_retention(store_, "", 40000, 0, &e), TIDINGS_INVALID_ARGUMENT);
  uint32_t days = 9;
  uint64_t last = 9;
  ASSERT_EQ(tidings_store_get_retention(store_, "b", true, &days, &last, &e), TIDINGS_OK);
  EXPECT_EQ(days, 30u) << "b follows the store-wide policy";
  EXPECT_EQ(last, 0u);
  ASSERT_EQ(tidings_store_get_retention(store_, "b", false, &days, &last, &e), TIDINGS_OK);
  EXPECT_EQ(days, 0u) << "b has no policy of its own";
  std::vector<std::string> seen;
  ASSERT_EQ(tidings_store_for_each_retention(
                store_,
                [](void* ctx, const char* id, uint32_t, uint64_t keep_last) {
                  static_cast<std::vector<std::string>*>(ctx)->push_back(std::string(id) + "=" +
                                                                         std::to_string(keep_last));
                  return true;
                },
                &seen, &e),
            TIDINGS_OK);
  EXPECT_EQ(seen, std::vector<std::string>{"a=2"});
  tidings_purge_report report;
  tidings_purge_report_init(&report);
  ASSERT_EQ(tidings_store_purge_expired(store_, &report, &e), TIDINGS_OK) << e.message;
  // Nothing here reached a backend, and a count policy counts only
  // acknowledged sends (engine/retention.h): the five unsent stay queued.
  EXPECT_EQ(report.messages_purged, 0u);
  EXPECT_EQ(report.conversations, 0u);
  EXPECT_EQ(report.outbox_dropped, 0u);
  tidings_outbox_list* outbox = nullptr;
  ASSERT_EQ(tidings_store_outbox(store_, "a", 0, &outbox, &e), TIDINGS_OK) << e.message;
  EXPECT_EQ(tidings_outbox_list_count(outbox), 5u);
  tidings_outbox_list_free(outbox);
  report.struct_size = 4;
  EXPECT_EQ(tidings_store_purge_expired(store_, &report, &e), TIDINGS_INVALID_ARGUMENT);
  EXPECT_EQ(tidings_store_purge_expired(store_, nullptr, &e), TIDINGS_OK);
}

TEST_F(CApiTest, ForEachMessageVisitsAllAndCanStop) {
  for (int i = 0; i < 4; ++i) Send("a", "m" + std::to_string(i));
  Send("b", "x");
  std::vector<std::string> seen;
  tidings_error e = Dirty();
  ASSERT_EQ(tidings_store_for_each_message(
                store_,
                [](void* ctx, const tidings_message* m) {
                  static_cast<std::vector<std::string>*>(ctx)->push_back(
                      std::string(m->body, m->body_size));
                  return true;
                },
                &seen, &e),
            TIDINGS_OK);
  ExpectCleared(e);
  ASSERT_EQ(seen.size(), 5u);
  int count = 0;
  EXPECT_EQ(
      tidings_store_for_each_message(
          store_, [](void* ctx, const tidings_message*) { return ++*static_cast<int*>(ctx) < 2; },
          &count, &e),
      TIDINGS_CANCELLED);
  EXPECT_EQ(count, 2);
}

struct Recorder {
  std::atomic<int> calls{0};
  std::atomic<int> added{0};
  tidings_store* store = nullptr;
  uint64_t token = 0;
  bool unsubscribe_inside = false;
  tidings_code inside_result = TIDINGS_INTERNAL;
};

void Record(void* ctx, const tidings_change* c) {
  auto* r = static_cast<Recorder*>(ctx);
  ++r->calls;
  if (c->kind == TIDINGS_CHANGE_MESSAGE_ADDED) ++r->added;
  if (r->unsubscribe_inside) {
    r->unsubscribe_inside = false;
    r->inside_result = tidings_store_unsubscribe(r->store, r->token, nullptr);
  }
}

TEST_F(CApiTest, SubscribeDeliversAndUnsubscribeIsFinal) {
  Recorder r;
  tidings_error e = Dirty();
  ASSERT_EQ(tidings_store_subscribe(store_, Record, &r, &r.token, &e), TIDINGS_OK);
  ExpectCleared(e);
  Send("c", "one");
  EXPECT_EQ(r.added.load(), 1);
  EXPECT_GE(r.calls.load(), 1);
  ASSERT_EQ(tidings_store_unsubscribe(store_, r.token, &e), TIDINGS_OK);
  int before = r.calls.load();
  Send("c", "two");
  EXPECT_EQ(r.calls.load(), before);
  EXPECT_EQ(tidings_store_unsubscribe(store_, r.token, &e), TIDINGS_NOT_FOUND);

  // Unsubscribing from inside the callback returns at once (no deadlock) and
  // ends deliveries.
  Recorder inside;
  inside.store = store_;
  inside.unsubscribe_inside = true;
  ASSERT_EQ(tidings_store_subscribe(store_, Record, &inside, &inside.token, &e), TIDINGS_OK);
  Send("c", "three");
  EXPECT_EQ(inside.inside_result, TIDINGS_OK);
  int n = inside.calls.load();
  Send("c", "four");
  EXPECT_EQ(inside.calls.load(), n);
}

TEST_F(CApiTest, ConcurrentWritersAndSubscriberThenClose) {
  // Writers on several threads while a subscriber counts; close with the
  // subscription still active must end it cleanly (ASan checks the rest).
  Recorder r;
  ASSERT_EQ(tidings_store_subscribe(store_, Record, &r, &r.token, nullptr), TIDINGS_OK);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < 25; ++i) {
        std::string body = "t" + std::to_string(t) + "-" + std::to_string(i);
        tidings_send_request req;
        tidings_send_request_init(&req);
        req.conversation_id = "busy";
        req.body = body.data();
        req.body_size = body.size();
        EXPECT_EQ(tidings_store_send(store_, &req, nullptr, nullptr), TIDINGS_OK);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(r.added.load(), 100);
  tidings_message_list* page = nullptr;
  ASSERT_EQ(tidings_store_page_newest(store_, "busy", 1000, &page, nullptr), TIDINGS_OK);
  EXPECT_EQ(tidings_message_list_count(page), 100u);
  for (size_t i = 1; i < tidings_message_list_count(page); ++i) {
    EXPECT_LT(tidings_order_compare(tidings_message_list_at(page, i - 1)->order,
                                    tidings_message_list_at(page, i)->order),
              0);
  }
  tidings_message_list_free(page);
  tidings_store_close(store_);
  store_ = nullptr;
}

TEST_F(CApiTest, ReadOnlyHandleBesideAWriter) {
  Send("c", "visible");
  tidings_key_source key = tidings_key_raw(kKey);
  tidings_error e{};
  // A second writer is refused with BUSY...
  tidings_store* second = nullptr;
  EXPECT_EQ(tidings_store_open(path_.c_str(), &key, nullptr, &second, &e), TIDINGS_BUSY)
      << e.message;
  // ...a read-only handle works beside the writer and refuses writes.
  tidings_open_options o;
  tidings_open_options_init(&o);
  o.read_only = true;
  tidings_store* ro = nullptr;
  ASSERT_EQ(tidings_store_open(path_.c_str(), &key, &o, &ro, &e), TIDINGS_OK) << e.message;
  tidings_message_list* page = nullptr;
  ASSERT_EQ(tidings_store_page_newest(ro, "c", 10, &page, &e), TIDINGS_OK) << e.message;
  EXPECT_EQ(tidings_message_list_count(page), 1u);
  tidings_message_list_free(page);
  tidings_send_request r;
  tidings_send_request_init(&r);
  r.conversation_id = "c";
  EXPECT_EQ(tidings_store_send(ro, &r, nullptr, &e), TIDINGS_FAILED_PRECONDITION);

  // After refresh the reader sees the writer's later messages.
  Send("c", "later");
  ASSERT_EQ(tidings_store_refresh(ro, &e), TIDINGS_OK) << e.message;
  ASSERT_EQ(tidings_store_page_newest(ro, "c", 10, &page, &e), TIDINGS_OK);
  EXPECT_EQ(tidings_message_list_count(page), 2u);
  tidings_message_list_free(page);
  tidings_store_close(ro);
}

}  // namespace

namespace {

struct Progress {
  int calls = 0;
  uint64_t last_done = 0;
};

void CountProgress(void* context, uint64_t done, uint64_t total) {
  auto* p = static_cast<Progress*>(context);
  ++p->calls;
  p->last_done = done;
  EXPECT_LE(done, total);
}

// A new passphrase and a new data key, through the C API: the old key stops
// opening the store, the new one opens it with its messages.
TEST_F(CApiTest, RekeyChangesTheKeyAndRotatesTheDataKey) {
  const std::string id = Send("c", "kept across the rekey");
  tidings_key_source old_key = tidings_key_raw(kKey);
  tidings_error e = Dirty();
  EXPECT_EQ(tidings_store_rekey(path_.c_str(), &old_key, nullptr, &e), TIDINGS_BUSY)
      << "the store is still open";
  tidings_store_close(store_);
  store_ = nullptr;

  const char phrase[] = "new passphrase";
  tidings_key_source next = tidings_key_passphrase(phrase, sizeof(phrase) - 1);
  tidings_rekey_options o;
  tidings_rekey_options_init(&o);
  o.new_key = &next;
  o.rotate_data_key = true;
  Progress progress;
  o.progress = CountProgress;
  o.progress_context = &progress;
  e = Dirty();
  ASSERT_EQ(tidings_store_rekey(path_.c_str(), &old_key, &o, &e), TIDINGS_OK) << e.message;
  ExpectCleared(e);
  EXPECT_GT(progress.calls, 0);
  EXPECT_GT(progress.last_done, 0u);

  EXPECT_EQ(tidings_store_open(path_.c_str(), &old_key, nullptr, &store_, &e), TIDINGS_WRONG_KEY);
  ASSERT_EQ(tidings_store_open(path_.c_str(), &next, nullptr, &store_, &e), TIDINGS_OK)
      << e.message;
  tidings_message* m = nullptr;
  ASSERT_EQ(tidings_store_get(store_, id.c_str(), &m, &e), TIDINGS_OK) << e.message;
  EXPECT_STREQ(m->body, "kept across the rekey");
  tidings_message_free(m);

  // The wrong current key changes nothing.
  tidings_store_close(store_);
  store_ = nullptr;
  o.rotate_data_key = false;
  o.progress = nullptr;
  EXPECT_EQ(tidings_store_rekey(path_.c_str(), &old_key, &o, &e), TIDINGS_WRONG_KEY);
  o.passphrase_profile = static_cast<tidings_passphrase_profile>(9);
  EXPECT_EQ(tidings_store_rekey(path_.c_str(), &next, &o, &e), TIDINGS_INVALID_ARGUMENT);
}

}  // namespace
