// The C++ search layer (tidings_search.hpp): value types, cancel tokens,
// errors as Status, the rebuild, the open options.
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

#include "tests/api/api_test_util.h"
#include "tidings/tidings_search.hpp"

namespace {

using tidings::apitest::TempDir;
using tidings::apitest::TestKey;
namespace api = tidings::api;

TEST(CppSearchApi, SearchesPagesAndCancels) {
  TempDir dir;
  const std::string path = dir / "store";
  auto store = api::Store::Create(path, TestKey(), "alice");
  ASSERT_TRUE(store.ok()) << store.status().message();
  auto sent = store->Send("clinic", "Dr. Müller will call you tomorrow");
  ASSERT_TRUE(sent.ok());
  ASSERT_TRUE(store->Send("clinic", "muller is late").ok());

  auto res = api::Search(*store, {.query = "muller call"});
  ASSERT_TRUE(res.ok()) << res.status().message();
  ASSERT_EQ(res->hits.size(), 1u);
  const api::SearchHit& h = res->hits[0];
  EXPECT_EQ(h.message_id, sent->id);
  EXPECT_EQ(h.order, sent->order);
  EXPECT_EQ(h.sender, "alice");
  ASSERT_EQ(h.marks.size(), 2u);
  EXPECT_EQ(h.snippet.substr(h.marks[0].first, h.marks[0].second - h.marks[0].first), "Müller");

  auto page = api::Search(
      *store, {.query = "muller", .order = api::SearchOrder::kNewest, .offset = 1, .limit = 1});
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total, 2u);
  ASSERT_EQ(page->hits.size(), 1u);
  EXPECT_EQ(page->hits[0].message_id, sent->id);

  auto bad = api::Search(*store, {.query = "m*"});
  EXPECT_EQ(bad.status().code(), TIDINGS_INVALID_ARGUMENT);

  auto cancel = api::SearchCancel::Create();
  ASSERT_TRUE(cancel.ok());
  EXPECT_TRUE(api::Search(*store, {.query = "muller", .cancel = &*cancel}).ok());
  cancel->Trigger();
  EXPECT_TRUE(cancel->triggered());

  uint64_t done = 0;
  EXPECT_TRUE(api::RebuildSearchIndex(*store, [&](uint64_t d, uint64_t) { done = d; }).ok());
  EXPECT_EQ(done, 2u);
}

TEST(CppSearchApi, OpenOptionsReachTheIndex) {
  TempDir dir;
  const std::string path = dir / "store";
  {
    auto store = api::Store::Create(path, TestKey(), "alice");
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(store->Send("a", "running late").ok());
  }
  api::OpenOptions o;
  o.search_stem_english = true;
  auto stemmed = api::Store::Open(path, TestKey(), o);
  ASSERT_TRUE(stemmed.ok()) << stemmed.status().message();
  EXPECT_EQ(api::Search(*stemmed, {.query = "run"})->total, 1u) << "stemming is on";
  stemmed->Close();
  o.search_stem_english = false;
  o.search_index = false;
  auto off = api::Store::Open(path, TestKey(), o);
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(api::Search(*off, {.query = "running"}).status().code(), TIDINGS_FAILED_PRECONDITION);
}

}  // namespace
