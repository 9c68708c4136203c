// The C search API (tidings_search.h) as an app embeds it: hits, snippets and
// marks, filters and paging, refused requests, cancelling from another
// thread, the rebuild and the open options.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tests/api/api_test_util.h"
#include "tidings/tidings_search.h"

namespace {

using tidings::apitest::kKey;
using tidings::apitest::TempDir;

struct Hits {
  tidings_code code = TIDINGS_INTERNAL;
  std::string error;
  uint64_t total = 0;
  std::vector<std::string> ids, conversations, marked;
};

class CSearchApiTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(Open(false, false), TIDINGS_OK); }
  void TearDown() override { tidings_store_close(store_); }

  tidings_code Open(bool read_only, bool index_off, tidings_progress_fn progress = nullptr,
                    void* context = nullptr) {
    tidings_store_close(store_);
    store_ = nullptr;
    tidings_key_source key = tidings_key_raw(kKey);
    tidings_open_options o;
    tidings_open_options_init(&o);
    o.open_progress = progress;
    o.open_progress_context = context;
    o.create_if_missing = true;
    o.user_id = "alice";
    o.durability = TIDINGS_DURABILITY_RELAXED;
    o.read_only = read_only;
    o.search_index_off = index_off;
    tidings_error e{};
    return tidings_store_open((dir_ / "store").c_str(), &key, &o, &store_, &e);
  }

  tidings_order Send(const char* conv, const std::string& body) {
    tidings_send_request r;
    tidings_send_request_init(&r);
    r.conversation_id = conv;
    r.body = body.data();
    r.body_size = body.size();
    tidings_message* m = nullptr;
    tidings_error e{};
    EXPECT_EQ(tidings_store_send(store_, &r, &m, &e), TIDINGS_OK) << e.message;
    tidings_order order = m != nullptr ? m->order : tidings_order{};
    tidings_message_free(m);
    return order;
  }

  Hits Search(const tidings_search_request& r) {
    Hits out;
    tidings_search_result* res = nullptr;
    tidings_error e{};
    out.code = tidings_store_search(store_, &r, &res, &e);
    out.error = e.message;
    if (out.code != TIDINGS_OK) {
      EXPECT_EQ(res, nullptr);
      return out;
    }
    out.total = tidings_search_result_total(res);
    for (size_t i = 0; i < tidings_search_result_count(res); ++i) {
      const tidings_search_hit* h = tidings_search_result_at(res, i);
      out.ids.push_back(h->message_id);
      out.conversations.push_back(h->conversation_id);
      EXPECT_EQ(std::strlen(h->snippet), h->snippet_size);
      for (size_t m = 0; m < h->mark_count; ++m) {
        EXPECT_LE(h->marks[m].end, h->snippet_size);
        out.marked.emplace_back(h->snippet + h->marks[m].begin,
                                h->marks[m].end - h->marks[m].begin);
      }
    }
    EXPECT_EQ(tidings_search_result_at(res, tidings_search_result_count(res)), nullptr);
    tidings_search_result_free(res);
    return out;
  }

  Hits Search(const char* query) {
    tidings_search_request r;
    tidings_search_request_init(&r);
    r.query = query;
    return Search(r);
  }

  TempDir dir_;
  tidings_store* store_ = nullptr;
};

TEST_F(CSearchApiTest, HitsCarrySnippetMarksAndOrder) {
  const tidings_order order = Send("clinic", "Take 400 mg of ibuprofen after food");
  Send("pharmacy", "ibuprofen is out of stock");
  Send("clinic", "see you tomorrow");

  Hits all = Search("ibuprofen");
  ASSERT_EQ(all.code, TIDINGS_OK) << all.error;
  EXPECT_EQ(all.total, 2u);
  EXPECT_EQ(all.marked, (std::vector<std::string>{"ibuprofen", "ibuprofen"}));

  tidings_search_request r;
  tidings_search_request_init(&r);
  r.query = "\"400 mg\" ibu*";
  r.conversation_id = "clinic";
  tidings_search_result* res = nullptr;
  tidings_error e{};
  ASSERT_EQ(tidings_store_search(store_, &r, &res, &e), TIDINGS_OK) << e.message;
  ASSERT_EQ(tidings_search_result_count(res), 1u);
  const tidings_search_hit* h = tidings_search_result_at(res, 0);
  EXPECT_STREQ(h->conversation_id, "clinic");
  EXPECT_STREQ(h->sender, "alice");
  EXPECT_EQ(tidings_order_compare(h->order, order), 0);
  EXPECT_GT(h->score, 0);
  ASSERT_EQ(h->mark_count, 3u);
  EXPECT_EQ(std::string(h->snippet + h->marks[0].begin, h->marks[0].end - h->marks[0].begin),
            "400");
  tidings_search_result_free(res);
}

TEST_F(CSearchApiTest, FiltersPagingAndNewestFirst) {
  Send("a", "rash on the arm");
  Send("b", "rash again");
  Send("a", "the rash is gone");
  tidings_search_request r;
  tidings_search_request_init(&r);
  r.query = "rash";
  r.conversation_id = "a";
  EXPECT_EQ(Search(r).total, 2u);
  r.conversation_id = "";
  r.sender = "bob";
  EXPECT_EQ(Search(r).total, 0u);
  r.sender = nullptr;
  r.order = TIDINGS_SEARCH_NEWEST;
  Hits newest = Search(r);
  ASSERT_EQ(newest.ids.size(), 3u);
  EXPECT_EQ(newest.conversations, (std::vector<std::string>{"a", "b", "a"}));
  r.offset = 1;
  r.limit = 1;
  Hits page = Search(r);
  EXPECT_EQ(page.total, 3u);
  EXPECT_EQ(page.ids, std::vector<std::string>{newest.ids[1]});
  r.from_ms = UINT64_MAX / 2;  // every message is older
  r.offset = 0;
  EXPECT_EQ(Search(r).total, 0u);
}

TEST_F(CSearchApiTest, RefusesBadRequestsSayingWhy) {
  Send("a", "hello");
  tidings_search_request r;
  tidings_search_request_init(&r);
  EXPECT_EQ(Search(r).code, TIDINGS_INVALID_ARGUMENT) << "no query";
  r.query = "hello";
  const int unknown_order = 7;
  std::memcpy(&r.order, &unknown_order, sizeof r.order);  // as a C app could
  Hits bad_order = Search(r);
  EXPECT_EQ(bad_order.code, TIDINGS_INVALID_ARGUMENT);
  EXPECT_NE(bad_order.error.find("TIDINGS_SEARCH_NEWEST"), std::string::npos);
  tidings_search_request_init(&r);
  r.query = "hello";
  r.limit = 1001;
  EXPECT_EQ(Search(r).code, TIDINGS_INVALID_ARGUMENT);
  r.limit = 0;  // the default
  EXPECT_EQ(Search(r).total, 1u);
  r.struct_size = 0;
  EXPECT_NE(Search(r).error.find("tidings_search_request_init"), std::string::npos);
  Hits empty = Search("   ");
  EXPECT_EQ(empty.code, TIDINGS_INVALID_ARGUMENT);
  EXPECT_FALSE(empty.error.empty());

  tidings_search_request_init(&r);
  r.query = "hello";
  tidings_error e{};
  EXPECT_EQ(tidings_store_search(store_, &r, nullptr, &e), TIDINGS_INVALID_ARGUMENT);
  tidings_search_result* res = nullptr;
  EXPECT_EQ(tidings_store_search(nullptr, &r, &res, &e), TIDINGS_INVALID_ARGUMENT);
  EXPECT_EQ(tidings_store_search(store_, nullptr, &res, &e), TIDINGS_INVALID_ARGUMENT);
  EXPECT_EQ(tidings_search_result_count(nullptr), 0u);
  EXPECT_EQ(tidings_search_result_at(nullptr, 0), nullptr);
  tidings_search_result_free(nullptr);
}

TEST_F(CSearchApiTest, AnotherThreadCancelsASearch) {
  for (int i = 0; i < 6000; ++i) Send("a", "common words " + std::to_string(i));
  tidings_search_cancel* cancel = nullptr;
  tidings_error e{};
  ASSERT_EQ(tidings_search_cancel_create(&cancel, &e), TIDINGS_OK);
  tidings_search_request r;
  tidings_search_request_init(&r);
  r.query = "common";
  r.cancel = cancel;
  EXPECT_EQ(Search(r).total, 6000u) << "an untriggered token changes nothing";

  // The UI thread triggers while this one keeps searching, as when the user
  // types the next letter.
  std::atomic<bool> searching{false};
  std::thread ui([&] {
    while (!searching.load()) std::this_thread::yield();
    tidings_search_cancel_trigger(cancel);
  });
  Hits last;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (last.code != TIDINGS_CANCELLED && std::chrono::steady_clock::now() < give_up) {
    searching = true;
    last = Search(r);
    ASSERT_TRUE(last.code == TIDINGS_OK || last.code == TIDINGS_CANCELLED) << last.error;
  }
  ui.join();
  EXPECT_EQ(last.code, TIDINGS_CANCELLED);
  EXPECT_TRUE(tidings_search_cancel_is_triggered(cancel));
  EXPECT_EQ(Search(r).code, TIDINGS_CANCELLED) << "a triggered token stays triggered";
  tidings_search_cancel_free(cancel);
  tidings_search_cancel_free(nullptr);
  tidings_search_cancel_trigger(nullptr);
  EXPECT_FALSE(tidings_search_cancel_is_triggered(nullptr));
  EXPECT_EQ(tidings_search_cancel_create(nullptr, &e), TIDINGS_INVALID_ARGUMENT);
}

TEST_F(CSearchApiTest, RebuildReportsProgressAndNeedsAWriter) {
  for (int i = 0; i < 50; ++i) Send("a", "note " + std::to_string(i));
  uint64_t last_done = 0, calls = 0;
  auto progress = [](void* ctx, uint64_t done, uint64_t) {
    auto* p = static_cast<std::pair<uint64_t*, uint64_t*>*>(ctx);
    *p->first = done;
    ++*p->second;
  };
  std::pair<uint64_t*, uint64_t*> ctx{&last_done, &calls};
  tidings_error e{};
  ASSERT_EQ(tidings_store_rebuild_search_index(store_, progress, &ctx, &e), TIDINGS_OK)
      << e.message;
  EXPECT_GT(calls, 0u);
  EXPECT_EQ(last_done, 50u);
  EXPECT_EQ(Search("note").total, 50u);
  EXPECT_EQ(tidings_store_rebuild_search_index(store_, nullptr, nullptr, &e), TIDINGS_OK);

  ASSERT_EQ(Open(true, false), TIDINGS_OK);
  EXPECT_EQ(Search("note").total, 50u) << "a read-only handle searches";
  EXPECT_EQ(tidings_store_rebuild_search_index(store_, nullptr, nullptr, &e),
            TIDINGS_FAILED_PRECONDITION);
}

TEST_F(CSearchApiTest, OpenOptionsTurnTheIndexOff) {
  Send("a", "hello");
  ASSERT_EQ(Open(false, true), TIDINGS_OK);
  EXPECT_EQ(Search("hello").code, TIDINGS_FAILED_PRECONDITION);
  Send("a", "hello again");
  uint64_t built = 0;
  auto progress = [](void* ctx, uint64_t done, uint64_t) { *static_cast<uint64_t*>(ctx) = done; };
  ASSERT_EQ(Open(false, false, progress, &built), TIDINGS_OK);  // rebuilds
  EXPECT_EQ(built, 2u) << "open_progress saw the build";
  EXPECT_EQ(Search("hello").total, 2u);
}

TEST_F(CSearchApiTest, ARequestFromANewerHeaderIsReadOrRefused) {
  Send("a", "hello");
  // A newer header's request: 8 more bytes, which this library cannot read.
  struct Newer {
    tidings_search_request r;
    uint64_t later_field;
  } newer;
  std::memset(&newer, 0, sizeof newer);
  newer.r.struct_size = sizeof newer;
  newer.r.query = "hello";
  EXPECT_EQ(Search(newer.r).total, 1u) << "unknown fields left zero are fine";
  newer.later_field = 1;
  Hits refused = Search(newer.r);
  EXPECT_EQ(refused.code, TIDINGS_INVALID_ARGUMENT);
  EXPECT_NE(refused.error.find("older than the header"), std::string::npos) << refused.error;
}

}  // namespace
