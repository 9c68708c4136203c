// Search (engine/search.cc, engine/search_index.cc, engine/search_build.cc):
// what a query finds and in which order, that the index follows every
// change of a message, its rebuild, and verify's check of it.
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <thread>

#include "engine/retention.h"
#include "engine/search_index.h"
#include "engine/store_impl.h"
#include "store_test_util.h"

namespace tidings::engine {

// Reaches into the store: raw records of the search family.
struct SearchTestPeer {
  static StoreImpl& Impl(Store& s) { return dynamic_cast<StoreImpl&>(s); }
  static size_t Postings(Store& s) {
    StoreImpl& impl = Impl(s);
    std::unique_ptr<rocksdb::Iterator> it(
        impl.db_->NewIterator(rocksdb::ReadOptions(), impl.cfs_[kSearch]));
    size_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
    return n;
  }
  // Records of the search family whose key starts with `tag`
  // (engine/search_index.h: tail, block, folded).
  static size_t Count(Store& s, char tag) {
    StoreImpl& impl = Impl(s);
    std::unique_ptr<rocksdb::Iterator> it(
        impl.db_->NewIterator(rocksdb::ReadOptions(), impl.cfs_[kSearch]));
    size_t n = 0;
    for (it->Seek(std::string(1, tag)); it->Valid() && it->key()[0] == tag; it->Next()) ++n;
    return n;
  }
  // Every raw key and value of the search family, as RocksDB holds them
  // under the file cipher.
  static std::string AllBytes(Store& s) {
    StoreImpl& impl = Impl(s);
    std::unique_ptr<rocksdb::Iterator> it(
        impl.db_->NewIterator(rocksdb::ReadOptions(), impl.cfs_[kSearch]));
    std::string all;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      all += it->key().ToString() + it->value().ToString();
    }
    return all;
  }
  // Overwrites a meta record with a valid tag around bytes that do not
  // decode (a bug's or an old build's record, not random damage).
  static void PutMeta(Store& s, const std::string& key, const std::string& plain) {
    Put(s, kMeta, key, plain);
  }
  static void Put(Store& s, int cf, const std::string& key, const std::string& plain) {
    StoreImpl& impl = Impl(s);
    const std::string sealed = impl.sealer_->Seal(impl.Ad(cf, key), plain);
    ASSERT_TRUE(impl.db_->Put(rocksdb::WriteOptions(), impl.cfs_[cf], key, sealed).ok());
  }
  // The allocation-free term hash indexing uses, and the one queries use.
  static uint64_t TermNumber(Store& s, char domain, std::string_view text) {
    return Impl(s).TermNumber(domain, text);
  }
  static std::string TermHash(Store& s, char domain, std::string_view text) {
    return Impl(s).TermHash(domain, text);
  }
  // Puts a copy of every docs or ranks record (`tag`) with all its
  // documents removed in the block cache, as a query would find it after a
  // removal committed since its snapshot. Returns how many.
  static size_t CacheWithoutDocuments(Store& s, char tag) {
    StoreImpl& impl = Impl(s);
    std::unique_ptr<rocksdb::Iterator> it(
        impl.db_->NewIterator(rocksdb::ReadOptions(), impl.cfs_[kSearch]));
    size_t n = 0;
    const std::string first(1, tag);
    for (it->Seek(first); it->Valid() && it->key().starts_with(first); it->Next(), ++n) {
      auto plain =
          impl.sealer_->Open(impl.Ad(kSearch, it->key().ToString()), it->value().ToStringView());
      EXPECT_TRUE(plain.ok());
      auto* removed = new std::string(plain.ok() ? plain->size() : 0, '\0');
      const std::string key = search_index::CacheKey(it->key().ToString());
      EXPECT_TRUE(
          impl.block_cache_
              ->Insert(key, removed, removed->size(),
                       [](const rocksdb::Slice&, void* v) { delete static_cast<std::string*>(v); })
              .ok());
    }
    return n;
  }
  // The largest fold id that has a ranks record, and the id the next fold
  // gets; and the database's next sequence number.
  static uint64_t LargestFold(Store& s) {
    StoreImpl& impl = Impl(s);
    rocksdb::ReadOptions ro;
    ro.total_order_seek = true;
    std::unique_ptr<rocksdb::Iterator> it(impl.db_->NewIterator(ro, impl.cfs_[kSearch]));
    uint64_t largest = 0;
    const std::string first(1, search_index::kRanksTag);
    for (it->Seek(first); it->Valid() && it->key().starts_with(first); it->Next()) {
      largest = std::max(largest, GetFixed64BE(it->key().data() + 1));
    }
    return largest;
  }
  static uint64_t NextFoldId(Store& s) { return Impl(s).NextFoldId(); }
  static uint64_t NextSequence(Store& s) { return Impl(s).db_->GetLatestSequenceNumber() + 1; }
  // Deletes one posting behind the store's back (as damage would).
  static void DropOnePosting(Store& s) {
    StoreImpl& impl = Impl(s);
    std::unique_ptr<rocksdb::Iterator> it(
        impl.db_->NewIterator(rocksdb::ReadOptions(), impl.cfs_[kSearch]));
    it->SeekToFirst();
    ASSERT_TRUE(it->Valid());
    ASSERT_TRUE(impl.db_->Delete(rocksdb::WriteOptions(), impl.cfs_[kSearch], it->key()).ok());
  }
};

namespace {

// How many messages the index's tail holds before a fold (the test's
// parameter): every test runs with its postings in the tail only, and folded
// every 3 messages (most in blocks, the rest in the tail). The simulation
// also folds every message on some replicas.
size_t g_fold_every = 2048;

class Search : public ::testing::TestWithParam<size_t> {
 protected:
  void SetUp() override { g_fold_every = GetParam(); }
};
INSTANTIATE_TEST_SUITE_P(Fold, Search, ::testing::Values(2048, 3),
                         [](const auto& p) { return "every" + std::to_string(p.param); });

constexpr uint64_t kNow = 1'760'000'000'000;

struct Searchable {
  TempDir dir;
  std::shared_ptr<std::atomic<uint64_t>> now = std::make_shared<std::atomic<uint64_t>>(kNow);
  std::unique_ptr<Store> store;

  StoreOptions Options(bool index = true) {
    StoreOptions o = CreateOptions();
    auto clock = now;
    o.wall_clock_ms = [clock] { return clock->load(); };
    o.search_index = index;
    o.search_fold_every = g_fold_every;
    return o;
  }
  Searchable() { store = MustOpen(dir.path(), Options()); }
  void Reopen(StoreOptions o) {
    store.reset();
    store = MustOpen(dir.path(), o);
  }
  Message Send(const std::string& conv, const std::string& body) {
    auto m = store->Send(Msg(conv, body));
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? *m : Message{};
  }
  SearchResult Find(SearchRequest r) {
    auto res = store->Search(r);
    EXPECT_TRUE(res.ok()) << r.query << ": " << res.status().ToString();
    return res.ok() ? *res : SearchResult{};
  }
  // The bodies of the hits of `query`, best first.
  std::vector<std::string> Bodies(const std::string& query, const std::string& conv = "") {
    std::vector<std::string> out;
    for (const auto& h : Find({.query = query, .conversation_id = conv}).hits) {
      out.push_back(store->Get(h.message_id)->body);
    }
    return out;
  }
  void ExpectVerifies() {
    auto report = store->Verify(nullptr);
    ASSERT_TRUE(report.ok());
    EXPECT_EQ(report->problems, 0u) << report->details.front();
  }
};

using Bodies = std::vector<std::string>;

// A posting's value round-trips, and no bytes make its decoder read past
// its input, size a vector from a hostile count or accept a bad position.
TEST_P(Search, PostingValuesDecodeOnlyWhenWellFormed) {
  search_index::PostingValue v{.message_terms = 52, .sender = 0xdeadbeef, .positions = {0, 3, 700}};
  std::string enc;
  search_index::EncodePosting(v, &enc);
  search_index::PostingValue back;
  ASSERT_TRUE(search_index::DecodePosting(enc, &back));
  EXPECT_EQ(back.message_terms, 52u);
  EXPECT_EQ(back.sender, 0xdeadbeefu);
  EXPECT_EQ(back.positions, (std::vector<uint32_t>{0, 3, 700}));
  for (size_t cut = 0; cut < enc.size(); ++cut) {
    EXPECT_FALSE(search_index::DecodePosting(enc.substr(0, cut), &back)) << cut;
  }
  EXPECT_FALSE(search_index::DecodePosting(enc + "x", &back)) << "trailing bytes";
  std::string huge_count = enc.substr(0, 5) + std::string("\xff\xff\xff\xff\x0f");
  EXPECT_FALSE(search_index::DecodePosting(huge_count, &back));
  std::string repeated = enc;
  repeated[repeated.size() - 2] = 0;  // a zero delta: the same position twice
  EXPECT_FALSE(search_index::DecodePosting(repeated, &back));
  // A delta of nearly 2^64 would wrap a position (or a block's document
  // number) around to a smaller one: refused, not decoded out of order.
  const std::string wrap("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10);
  EXPECT_FALSE(search_index::DecodePosting(enc.substr(0, 5) + "\x02\x01" + wrap, &back));
  std::vector<search_index::BlockEntry> entries;
  EXPECT_TRUE(search_index::DecodeBlock(std::string("\x02\x05\x01\x00\x01\x01\x00", 7), &entries));
  EXPECT_FALSE(search_index::DecodeBlock(
      std::string("\x02\x05\x01\x00", 4) + "\xfd" + wrap.substr(1) + std::string("\x01\x00", 2),
      &entries));
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < 20000; ++i) {
    std::string junk(static_cast<size_t>(i % 24), '\0');
    for (char& c : junk) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      c = static_cast<char>(x);
    }
    if (search_index::DecodePosting(junk, &back)) {
      EXPECT_LE(back.positions.size(), junk.size());
    }
  }
}

// A message's postings, packed (what the writer's in-memory tail holds):
// entries come back as added, Find takes any term of them and no other, and
// a tail record of them decodes to the same list.
TEST_P(Search, PackedPostingsKeepEveryEntryAndFindEachTerm) {
  search_index::MessagePostings m;
  std::vector<std::pair<std::string, std::string>> added;
  for (uint64_t i = 0; i < 70; ++i) {
    std::string term(search_index::kTermHashBytes, '\0');
    EncodeFixed64BE(term.data(), 1000 + 7 * i);
    std::string value;
    search_index::EncodePosting(
        {.message_terms = 70, .sender = 9, .positions = {static_cast<uint32_t>(i), 100}}, &value);
    m.postings.emplace_back(term, value);
    added.emplace_back(term, value);
  }
  ASSERT_EQ(m.postings.size(), added.size());
  size_t i = 0;
  for (const auto& [term, value] : m.postings) {
    EXPECT_EQ(term, added[i].first);
    EXPECT_EQ(value, added[i].second);
    auto found = m.postings.Find(term);
    ASSERT_TRUE(found.has_value()) << i;
    EXPECT_EQ(*found, added[i].second);
    ++i;
  }
  for (uint64_t absent : {uint64_t{0}, uint64_t{1001}, uint64_t{1000 + 7 * 70}}) {
    std::string term(search_index::kTermHashBytes, '\0');
    EncodeFixed64BE(term.data(), absent);
    EXPECT_FALSE(m.postings.Find(term).has_value()) << absent;
  }
  std::string tail;
  search_index::EncodeTail(m, &tail);
  search_index::MessagePostings back;
  ASSERT_TRUE(search_index::DecodeTail(tail, &back));
  EXPECT_TRUE(back.postings == m.postings);
  // Terms out of order are refused as a whole record.
  search_index::MessagePostings swapped;
  swapped.postings.emplace_back(added[1].first, added[1].second);
  swapped.postings.emplace_back(added[0].first, added[0].second);
  tail.clear();
  search_index::EncodeTail(swapped, &tail);
  EXPECT_FALSE(search_index::DecodeTail(tail, &back));
}

// Indexing hashes terms into a buffer of its own (no allocation per term);
// queries look them up with TermHash: the two must agree on every length,
// including terms longer than the buffer.
TEST_P(Search, IndexingAndQueriesHashTermsAlike) {
  Searchable s;
  for (char domain : {search_index::kTermDomain, search_index::kPrefixDomain}) {
    for (size_t n : {0, 1, 3, 63, 64, 65, 200}) {
      const std::string text(n, 'q');
      const std::string h = SearchTestPeer::TermHash(*s.store, domain, text);
      ASSERT_EQ(h.size(), search_index::kTermHashBytes);
      EXPECT_EQ(SearchTestPeer::TermNumber(*s.store, domain, text), GetFixed64BE(h.data()))
          << domain << n;
    }
  }
  EXPECT_NE(SearchTestPeer::TermNumber(*s.store, 't', "abc"),
            SearchTestPeer::TermNumber(*s.store, 'x', "abc"));
}

TEST_P(Search, TermsAreAndedAndFoldedAndTheSnippetMarksThem) {
  Searchable s;
  s.Send("a", "Take 400 mg of ibuprofen after food");
  s.Send("a", "Dr. Müller will call you tomorrow");
  s.Send("b", "ibuprofen is out of stock");
  EXPECT_EQ(s.Bodies("muller"), Bodies{"Dr. Müller will call you tomorrow"});
  EXPECT_EQ(s.Bodies("MÜLLER call"), Bodies{"Dr. Müller will call you tomorrow"});
  EXPECT_EQ(s.Bodies("ibuprofen food"), Bodies{"Take 400 mg of ibuprofen after food"});
  EXPECT_TRUE(s.Bodies("ibuprofen aspirin").empty()) << "every word must match";
  EXPECT_EQ(s.Bodies("ibuprofen").size(), 2u);
  EXPECT_EQ(s.Bodies("ibuprofen", "b"), Bodies{"ibuprofen is out of stock"});

  auto res = s.Find({.query = "\"400 mg\" ibuprofen"});
  ASSERT_EQ(res.hits.size(), 1u);
  const SearchHit& h = res.hits[0];
  EXPECT_EQ(h.conversation_id, "a");
  EXPECT_EQ(h.sender, "alice");
  std::vector<std::string> marked;
  for (auto [b, e] : h.marks) marked.push_back(h.snippet.substr(b, e - b));
  EXPECT_EQ(marked, (Bodies{"400", "mg", "ibuprofen"}));
}

TEST_P(Search, PhrasesNeedAdjacentWordsInOrder) {
  Searchable s;
  s.Send("a", "blood pressure was high");
  s.Send("a", "pressure on the blood vessel");
  s.Send("a", "the 400mg tablet");
  EXPECT_EQ(s.Bodies("\"blood pressure\""), Bodies{"blood pressure was high"});
  EXPECT_EQ(s.Bodies("blood pressure").size(), 2u);
  EXPECT_EQ(s.Bodies("\"400 mg\""), Bodies{"the 400mg tablet"});
  EXPECT_TRUE(s.Bodies("\"pressure blood\"").empty());
}

TEST_P(Search, PrefixesFindEveryCompletion) {
  Searchable s;
  s.Send("a", "ibuprofen twice a day");
  s.Send("a", "Ibuprofène en France");
  s.Send("a", "an ibu is not a word");
  s.Send("a", "ibis are birds");
  EXPECT_EQ(s.Bodies("ibu*").size(), 3u);
  EXPECT_EQ(s.Bodies("ibup*").size(), 2u) << "longer than the indexed 3: the text decides";
  EXPECT_EQ(s.Bodies("ibupro* day"), Bodies{"ibuprofen twice a day"});
  EXPECT_EQ(s.store->Search({.query = "ib*"}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(s.store->Search({.query = "   "}).status().code(), Code::kInvalidArgument);
}

TEST_P(Search, FiltersBySenderAndTime) {
  Searchable s;
  s.Send("a", "fever since monday");
  *s.now += 3 * kMillisPerDay;
  s.Send("a", "fever is gone");
  Operation op;
  op.kind = OpKind::kSend;
  op.op_id = op.message_id = "remote-1";
  op.conversation_id = "a";
  op.author = "bob";
  op.at = OrderKey{(kNow + kMillisPerDay) << 16, 9};
  op.body = "no fever here, says bob";
  op.server_time_ms = kNow + kMillisPerDay;
  ASSERT_TRUE(s.store->sync_log().Merge("test", "a", std::vector<Operation>{op}, "c1").ok());

  EXPECT_EQ(s.Find({.query = "fever"}).total, 3u);
  auto bob = s.Find({.query = "fever", .sender = "bob"});
  ASSERT_EQ(bob.hits.size(), 1u);
  EXPECT_EQ(bob.hits[0].message_id, "remote-1");
  EXPECT_EQ(s.Find({.query = "fever", .sender = "carol"}).total, 0u);
  auto early = s.Find({.query = "fever", .to_ms = kNow + kMillisPerDay / 2});
  ASSERT_EQ(early.hits.size(), 1u);
  EXPECT_EQ(s.store->Get(early.hits[0].message_id)->body, "fever since monday");
  EXPECT_EQ(s.Find({.query = "fever", .from_ms = kNow + 2 * kMillisPerDay}).total, 1u);
}

TEST_P(Search, RanksByRelevanceThenRecencyAndPages) {
  Searchable s;
  s.Send("a", "rash on the arm, a small rash, the rash itches");  // most about it
  s.Send("a", "a rash");                                          // short
  s.Send("a", "we talked about many things today and also about a rash briefly at the end");
  auto res = s.Find({.query = "rash"});
  ASSERT_EQ(res.hits.size(), 3u);
  EXPECT_EQ(s.store->Get(res.hits[0].message_id)->body.substr(0, 7), "rash on");
  EXPECT_GT(res.hits[0].score, res.hits[1].score);
  EXPECT_GT(res.hits[1].score, res.hits[2].score);
  EXPECT_EQ(s.store->Get(res.hits[2].message_id)->body.substr(0, 6), "we tal");

  // The same words, older: recency breaks the tie.
  *s.now += 90 * kMillisPerDay;
  s.Send("a", "a rash");
  auto again = s.Find({.query = "a rash"});
  EXPECT_EQ(again.hits[0].order, s.store->Page({.conversation_id = "a", .limit = 1})->back().order);

  // Paging: offset and limit over the same order; newest-first on request.
  auto all = s.Find({.query = "rash", .limit = 10});
  auto page2 = s.Find({.query = "rash", .offset = 2, .limit = 2});
  ASSERT_EQ(all.hits.size(), 4u);
  ASSERT_EQ(page2.hits.size(), 2u);
  EXPECT_EQ(page2.total, 4u);
  EXPECT_EQ(page2.hits[0].message_id, all.hits[2].message_id);
  auto newest = s.Find({.query = "rash", .order = SearchOrder::kNewest});
  for (size_t i = 1; i < newest.hits.size(); ++i) {
    EXPECT_LT(newest.hits[i].order, newest.hits[i - 1].order);
  }
}

TEST_P(Search, EditedDeletedAndPurgedTextIsNotFound) {
  Searchable s;
  auto m = s.Send("a", "the secret word is marmalade");
  s.Send("a", "marmalade for breakfast");
  auto gone = s.Send("a", "delete this marmalade note");
  ASSERT_TRUE(s.store->Edit(m.id, "the secret word is jam").ok());
  ASSERT_TRUE(s.store->Delete(gone.id).ok());
  EXPECT_EQ(s.Bodies("marmalade"), Bodies{"marmalade for breakfast"});
  EXPECT_EQ(s.Bodies("jam"), Bodies{"the secret word is jam"});
  EXPECT_TRUE(s.Bodies("note").empty());

  // Remote edits and deletes, merged.
  Operation edit;
  edit.kind = OpKind::kEdit;
  edit.op_id = "e1";
  edit.message_id = m.id;
  edit.conversation_id = "a";
  edit.author = "alice";
  edit.at = OrderKey{(kNow + 5000) << 16, 3};
  edit.body = "the secret word is honey";
  edit.server_time_ms = kNow + 5000;
  ASSERT_TRUE(s.store->sync_log().Merge("test", "a", std::vector<Operation>{edit}, "c1").ok());
  EXPECT_TRUE(s.Bodies("jam").empty());
  EXPECT_EQ(s.Bodies("honey").size(), 1u);

  // A purge takes the index entries with the messages.
  ASSERT_TRUE(s.store->SetRetention("a", RetentionPolicy{.keep_days = 1}).ok());
  *s.now += 3 * kMillisPerDay;
  ASSERT_TRUE(s.store->PurgeExpired().ok());
  EXPECT_TRUE(s.Bodies("honey").empty());
  EXPECT_TRUE(s.Bodies("marmalade").empty());
  EXPECT_EQ(SearchTestPeer::Postings(*s.store), 0u);
  s.ExpectVerifies();
}

// Messages stay in the tail (a record each) until search_fold_every of them
// fold into per-term blocks; a folded message's edit or delete rewrites its
// blocks, and a reopened writer (its tail read back from disk) and a reader
// find the same.
TEST_P(Search, TheTailFoldsIntoBlocksAndFoldedTextLeavesThem) {
  Searchable s;
  std::vector<Message> sent;
  for (int i = 0; i < 7; ++i) {
    sent.push_back(s.Send("a", "note " + std::to_string(i) + (i == 0 ? " zebra" : " okapi")));
  }
  const size_t every = GetParam();
  const size_t tail = 7 % every;
  EXPECT_EQ(SearchTestPeer::Count(*s.store, search_index::kTailTag), tail);
  EXPECT_EQ(SearchTestPeer::Count(*s.store, search_index::kFoldedTag), 7 - tail);
  EXPECT_EQ(SearchTestPeer::Count(*s.store, search_index::kBlockTag) > 0, tail < 7);
  const size_t folds = 7 / every;  // a docs record each (kDocsPerChunk > 3)
  EXPECT_EQ(SearchTestPeer::Count(*s.store, search_index::kDocsTag), folds);
  EXPECT_EQ(SearchTestPeer::Count(*s.store, search_index::kRanksTag), folds);
  EXPECT_EQ(s.Find({.query = "note"}).total, 7u);
  EXPECT_EQ(s.Bodies("zebra"), Bodies{"note 0 zebra"});

  // The first message is folded unless the tail holds all of them.
  ASSERT_TRUE(s.store->Edit(sent[0].id, "note 0 giraffe").ok());
  EXPECT_TRUE(s.Bodies("zebra").empty());
  EXPECT_EQ(s.Bodies("giraffe"), Bodies{"note 0 giraffe"});
  ASSERT_TRUE(s.store->Delete(sent[1].id).ok());
  EXPECT_EQ(s.Find({.query = "okapi"}).total, 5u);
  EXPECT_EQ(s.Find({.query = "note"}).total, 6u);
  s.ExpectVerifies();

  auto expect_same = [&](Store& store) {
    auto all = store.Search({.query = "note"});
    ASSERT_TRUE(all.ok()) << all.status().ToString();
    EXPECT_EQ(all->total, 6u);
    auto giraffe = store.Search({.query = "gir*"});
    ASSERT_TRUE(giraffe.ok());
    ASSERT_EQ(giraffe->total, 1u);
    EXPECT_EQ(giraffe->hits[0].message_id, sent[0].id);
  };
  StoreOptions ro = s.Options();
  ro.read_only = true;
  auto reader = MustOpen(s.dir.path(), ro);
  expect_same(*reader);
  reader.reset();
  s.Reopen(s.Options());
  expect_same(*s.store);
  s.Send("a", "note 7 okapi");  // folds on top of the reloaded tail
  EXPECT_EQ(s.Find({.query = "okapi"}).total, 6u);
  s.ExpectVerifies();

  // The first fold's last document leaves: so do its docs and ranks
  // records, with the keys of the messages they named.
  ASSERT_TRUE(s.store->Delete(sent[2].id).ok());
  EXPECT_EQ(SearchTestPeer::Count(*s.store, search_index::kDocsTag), every == 3 ? 2u : 0u);
  EXPECT_EQ(SearchTestPeer::Count(*s.store, search_index::kRanksTag), every == 3 ? 2u : 0u);
  EXPECT_EQ(s.Find({.query = "okapi"}).total, 5u);
  s.ExpectVerifies();
}

// Below the file cipher too, the index holds no word, prefix or sender in
// clear: terms are keyed hashes, values are positions and counts.
TEST_P(Search, PostingsHoldNoText) {
  Searchable s;
  s.Send("a", "zebramarker quokkamarker Zebramarker");
  ASSERT_EQ(s.Find({.query = "zebramarker"}).total, 1u);
  ASSERT_EQ(s.Find({.query = "quo*"}).total, 1u);
  const std::string raw = SearchTestPeer::AllBytes(*s.store);
  EXPECT_GT(raw.size(), 100u);
  for (std::string marker : {"zebra", "quokka", "marker", "quo", "zeb", "alice"}) {
    EXPECT_EQ(raw.find(marker), std::string::npos) << marker;
  }
}

// A send refused for good never leaves its device: it leaves the index
// (replicas with the same messages rank alike), and comes back if retried.
TEST_P(Search, FailedSendsLeaveTheIndexUntilRetried) {
  Searchable s;
  s.Send("a", "refill the prescription");
  auto outbox = s.store->Outbox(0);
  ASSERT_EQ(outbox->size(), 1u);
  const uint64_t seq = outbox->front().seq;
  ASSERT_TRUE(s.store->sync_log().FailOutbox(seq, "refused", /*permanent=*/true, 0).ok());
  EXPECT_EQ(s.Find({.query = "prescription"}).total, 0u);
  s.ExpectVerifies();
  ASSERT_TRUE(s.store->RetryFailed(seq).ok());
  EXPECT_EQ(s.Find({.query = "prescription"}).total, 1u);
  s.ExpectVerifies();
}

TEST_P(Search, VerifyFindsAnIndexThatDiffersAndARebuildMends) {
  Searchable s;
  for (int i = 0; i < 20; ++i) s.Send("a", "message number " + std::to_string(i) + " about fever");
  s.ExpectVerifies();
  SearchTestPeer::DropOnePosting(*s.store);
  auto report = s.store->Verify(nullptr);
  ASSERT_TRUE(report.ok());
  ASSERT_GT(report->problems, 0u);
  EXPECT_NE(report->details.front().find("tidings search --rebuild"), std::string::npos);
  uint64_t last = 0;
  ASSERT_TRUE(s.store->RebuildSearchIndex([&](uint64_t done, uint64_t) { last = done; }).ok());
  EXPECT_EQ(last, 20u);
  s.ExpectVerifies();
  EXPECT_EQ(s.Find({.query = "fever"}).total, 20u);
}

// Results after a rebuild of a store made without the index equal those of
// incremental indexing.
TEST_P(Search, AnIndexBuiltLaterGivesTheSameResults) {
  Searchable inc;
  Searchable later;
  later.Reopen(later.Options(/*index=*/false));
  for (int i = 0; i < 2500; ++i) {
    const std::string body = "note " + std::to_string(i % 37) + " dose " + std::to_string(i % 5) +
                             (i % 11 == 0 ? " ibuprofen" : "");
    inc.Send("c" + std::to_string(i % 3), body);
    later.Send("c" + std::to_string(i % 3), body);
  }
  EXPECT_EQ(later.store->Search({.query = "dose"}).status().code(), Code::kFailedPrecondition);
  std::vector<uint64_t> progress;
  StoreOptions o = later.Options();
  o.open_progress = [&](uint64_t done, uint64_t) { progress.push_back(done); };
  later.Reopen(o);
  EXPECT_EQ(progress, (std::vector<uint64_t>{1000, 2000, 2500}));
  for (std::string q : {"ibuprofen", "dose 3", "\"note 12\"", "ibu*", "note"}) {
    auto a = inc.Find({.query = q, .limit = 50}), b = later.Find({.query = q, .limit = 50});
    ASSERT_EQ(a.total, b.total) << q;
    for (size_t i = 0; i < a.hits.size(); ++i) {
      EXPECT_EQ(a.hits[i].order.hlc >> 16, b.hits[i].order.hlc >> 16) << q;
      EXPECT_EQ(a.hits[i].score, b.hits[i].score) << q;
      EXPECT_EQ(a.hits[i].snippet, b.hits[i].snippet) << q;
    }
  }
  later.ExpectVerifies();
}

// A query's results do not depend on where its postings are: folded into
// blocks every 3 messages (most folds hold only some of a query's terms, and
// still count for their idf) or all in the tail.
TEST_P(Search, ResultsDoNotDependOnHowTheIndexIsFolded) {
  g_fold_every = 3;
  Searchable folded;
  g_fold_every = 100'000;
  Searchable tail;
  for (int i = 0; i < 400; ++i) {
    std::string body = "note " + std::to_string(i % 37);
    if (i % 7 == 0) body += " alpha";
    if (i % 5 == 0) body += " beta";
    if (i % 13 == 0) body += " gamma delta";
    if (i % 17 == 0) body += " delta gamma";
    if (i % 4 == 0) body += i % 8 == 0 ? " ibu" : " ibuprofen ibu";
    folded.Send("c" + std::to_string(i % 3), body);
    tail.Send("c" + std::to_string(i % 3), body);
  }
  EXPECT_GT(SearchTestPeer::Count(*folded.store, search_index::kBlockTag), 0u);
  EXPECT_EQ(SearchTestPeer::Count(*tail.store, search_index::kBlockTag), 0u);
  for (std::string q : {"alpha beta", "alpha", "\"gamma delta\"", "ibu*", "ibu* beta",
                        "beta \"delta gamma\" note"}) {
    auto a = folded.Find({.query = q, .limit = 100}), b = tail.Find({.query = q, .limit = 100});
    ASSERT_EQ(a.total, b.total) << q;
    EXPECT_GT(a.total, 0u) << q;
    ASSERT_EQ(a.hits.size(), b.hits.size()) << q;
    for (size_t i = 0; i < a.hits.size(); ++i) {
      EXPECT_EQ(folded.store->Get(a.hits[i].message_id)->body,
                tail.store->Get(b.hits[i].message_id)->body)
          << q;
      EXPECT_EQ(a.hits[i].score, b.hits[i].score) << q;
      EXPECT_EQ(a.hits[i].marks, b.hits[i].marks) << q;
    }
  }
  EXPECT_EQ(folded.Find({.query = "alpha beta"}).total, 400u / 35 + 1);
  EXPECT_EQ(folded.Find({.query = "\"gamma delta\""}).total, 400u / 13 + 1);
}

// BM25 to the last bit, from counts worked out by hand: a 3-letter prefix
// reads the whole term "ibu" and the prefix of longer words, and a message
// holding both ("ibuprofen ibu") counts once for df and twice for tf.
TEST_P(Search, ScoresAreBm25WithDocumentFrequencyCountedOnce) {
  Searchable s;
  s.Send("c", "ibu one");
  s.Send("c", "ibuprofen ibu two");
  s.Send("c", "other words here");
  const auto r = s.Find({.query = "ibu*"});
  ASSERT_EQ(r.total, 2u);
  ASSERT_EQ(r.hits.size(), 2u);
  // N = 3 messages of 2 + 3 + 3 tokens; df = 2. Every hit was sent in the
  // same millisecond, so recency gives both the newest's 1.5x.
  const double idf = std::log(1 + (3 - 2 + 0.5) / (2 + 0.5)), avg = 8.0 / 3;
  auto bm25 = [&](double tf, double len) {
    return idf * tf * 2.2 / (tf + 1.2 * (1 - 0.75 + 0.75 * len / avg));
  };
  EXPECT_EQ(s.store->Get(r.hits[0].message_id)->body, "ibuprofen ibu two");
  EXPECT_NEAR(r.hits[0].score, 1.5 * bm25(2, 3), 1e-12);
  EXPECT_NEAR(r.hits[1].score, 1.5 * bm25(1, 2), 1e-12);
}

// A build killed part way goes on from its last chunk at the next open.
TEST_P(Search, AnInterruptedBuildResumes) {
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
  GTEST_SKIP() << "ThreadSanitizer cannot follow a child that starts threads after fork; "
                  "the release and ASan builds run this";
#endif
#endif
  Searchable s;
  s.Reopen(s.Options(/*index=*/false));
  for (int i = 0; i < 3500; ++i) s.Send("a", "entry " + std::to_string(i) + " wound care");
  s.store.reset();
  pid_t child = fork();
  if (child == 0) {
    StoreOptions o = s.Options();
    o.open_progress = [](uint64_t done, uint64_t) {
      if (done >= 2000) _exit(0);  // killed after two chunks committed
    };
    (void)Store::Open(s.dir.path(), TestKey(7), o);
    _exit(1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::vector<uint64_t> progress;
  StoreOptions o = s.Options();
  o.open_progress = [&](uint64_t done, uint64_t) { progress.push_back(done); };
  s.Reopen(o);
  EXPECT_EQ(progress, (std::vector<uint64_t>{1000, 1500})) << "resumed after 2,000";
  EXPECT_EQ(s.Find({.query = "wound care"}).total, 3500u);
  s.ExpectVerifies();
}

// The index is derived data: a state or totals record that does not decode
// never keeps the store from opening. A reader cannot search; a writer
// builds the index again.
TEST_P(Search, ADamagedStateRecordIsRebuiltNotFatal) {
  for (const char* key : {"search_state", "search_totals"}) {
    Searchable s;
    s.Send("a", "iodine swab");
    SearchTestPeer::PutMeta(*s.store, key, "garbage");
    s.store.reset();
    StoreOptions ro = s.Options();
    ro.read_only = true;
    {
      auto reader = MustOpen(s.dir.path(), ro);
      ASSERT_NE(reader, nullptr) << key;
      EXPECT_EQ(reader->Search({.query = "iodine"}).status().code(), Code::kFailedPrecondition);
      EXPECT_EQ(reader->Page({.conversation_id = "a"})->size(), 1u);
    }
    s.Reopen(s.Options());
    EXPECT_EQ(s.Find({.query = "iodine"}).total, 1u) << key;
    s.ExpectVerifies();
  }
}

// Queries keep authenticated docs records in the block cache. A document is
// only ever removed, so a cached record may be newer than a query's snapshot
// and lack a document the snapshot's postings name: the query reads that
// record at its snapshot instead of reporting corruption.
TEST_P(Search, ACachedDocsRecordNewerThanTheQueryIsReadAgain) {
  Searchable s;
  for (int i = 0; i < 7; ++i) s.Send(i % 2 ? "a" : "b", "note " + std::to_string(i) + " okapi");
  EXPECT_EQ(s.Find({.query = "okapi"}).total, 7u);
  EXPECT_EQ(s.Find({.query = "okapi", .conversation_id = "a"}).total, 3u);
  for (char tag : {search_index::kRanksTag, search_index::kDocsTag}) {
    EXPECT_EQ(SearchTestPeer::CacheWithoutDocuments(*s.store, tag), 7 / GetParam()) << tag;
    EXPECT_EQ(s.Find({.query = "okapi"}).total, 7u) << tag;
    EXPECT_EQ(s.Find({.query = "okapi", .conversation_id = "a"}).total, 3u) << tag;
    EXPECT_EQ(s.Bodies("note"), s.Bodies("okapi")) << tag;
  }
}

// Fold ids come from the database's sequence number, but a restore copies
// the records into a new database whose sequence starts lower: the next
// fold must still not take an id a fold with documents has (its blocks and
// documents would mix with the new fold's).
TEST_P(Search, FoldIdsStayNewAfterARestore) {
  if (GetParam() != 3) GTEST_SKIP() << "needs folds";
  Searchable s;
  for (int i = 0; i < 30; ++i) {
    s.Send("a", "note " + std::to_string(i) + " okapi");
    // Other writes move the sequence far past what a restore copies.
    for (int j = 0; j < 20; ++j) ASSERT_TRUE(s.store->PutConversation("b", "B", {"x"}).ok());
  }
  const std::string backup = s.dir.path() + "/b.tidbak";
  ASSERT_TRUE(s.store->Backup(backup, nullptr).ok());
  s.store.reset();
  const std::string restored = s.dir.path() + "/restored";
  ASSERT_TRUE(Store::Restore(backup, restored, TestKey(7), nullptr).ok());
  auto store = MustOpen(restored, s.Options());
  ASSERT_NE(store, nullptr);
  const uint64_t largest = SearchTestPeer::LargestFold(*store);
  ASSERT_GT(largest, 0u);
  EXPECT_LE(SearchTestPeer::NextSequence(*store), largest) << "the scenario: a lower sequence";
  EXPECT_GT(SearchTestPeer::NextFoldId(*store), largest);
  for (int i = 30; i < 36; ++i) {
    ASSERT_TRUE(store
                    ->Send(SendRequest{.conversation_id = "a",
                                       .body = "note " + std::to_string(i) + " okapi"})
                    .ok());
  }
  auto all = store->Search({.query = "okapi", .limit = 100});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->total, 36u);
  auto report = store->Verify(nullptr);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->problems, 0u) << (report->details.empty() ? "" : report->details[0]);
}

// An index of an older layout ("blocks": postings spelling their message
// keys; "docs": no ranks records) is not read: a reader cannot search it,
// and a writer builds the current one in its place, leaving none of the old
// records.
TEST_P(Search, AnIndexOfTheOlderBlocksLayoutIsBuiltAgain) {
  Searchable s;
  s.Send("a", "iodine swab");
  const std::string old_block = std::string(1, search_index::kBlockTag) + std::string(16, 'o');
  SearchTestPeer::Put(*s.store, kSearch, old_block, "an old layout's block");
  SearchTestPeer::PutMeta(*s.store, "search_state",
                          GetParam() == 3 ? "docs complete 0" : "blocks complete 0");
  s.store.reset();
  StoreOptions ro = s.Options();
  ro.read_only = true;
  {
    auto reader = MustOpen(s.dir.path(), ro);
    ASSERT_NE(reader, nullptr);
    EXPECT_EQ(reader->Search({.query = "iodine"}).status().code(), Code::kFailedPrecondition);
  }
  s.Reopen(s.Options());
  EXPECT_EQ(s.Find({.query = "iodine"}).total, 1u);
  EXPECT_EQ(SearchTestPeer::AllBytes(*s.store).find(old_block), std::string::npos);
  s.ExpectVerifies();
}

// Stemmed, a 3-letter word's term is its stem ("try" is "tri"); a 3-letter
// prefix still finds the word itself, and not a word that only stems to it.
TEST_P(Search, StemmedPrefixesFindThreeLetterWords) {
  Searchable s;
  StoreOptions o = s.Options();
  o.search_stem_english = true;
  s.Reopen(o);
  s.Send("a", "let us try again");
  s.Send("a", "she was trying hard");
  s.Send("a", "the baby will cry");
  EXPECT_EQ(s.Find({.query = "try*"}).total, 2u);
  EXPECT_EQ(s.Find({.query = "tri*"}).total, 0u);
  EXPECT_EQ(s.Find({.query = "cri*"}).total, 0u);
  EXPECT_EQ(s.Find({.query = "cry*"}).total, 1u);
  EXPECT_EQ(s.Find({.query = "tries"}).total, 2u) << "stems meet";
  // An open that does not say keeps the store's stemming.
  s.Reopen(s.Options());
  EXPECT_EQ(s.Find({.query = "tries"}).total, 2u);
  s.ExpectVerifies();
}

// A rebuild while other threads send and delete leaves an exact index.
TEST_P(Search, ARebuildBesideWritersLeavesAnExactIndex) {
  Searchable s;
  std::vector<SendRequest> batch;
  for (int i = 0; i < 5000; ++i)
    batch.push_back(Msg("c" + std::to_string(i % 7), "gauze " + std::to_string(i)));
  auto sent = s.store->SendMany(batch);
  ASSERT_TRUE(sent.ok());
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      auto m = s.store->Send(Msg("c" + std::to_string(i % 7), "gauze extra " + std::to_string(i)));
      ASSERT_TRUE(m.ok());
      if (i % 3 == 0) {
        const auto& victim = (*sent)[static_cast<size_t>(i) % sent->size()];
        ASSERT_TRUE(s.store->Delete(victim.id).ok());
      }
    }
  });
  ASSERT_TRUE(s.store->RebuildSearchIndex(nullptr).ok());
  stop = true;
  writer.join();
  s.ExpectVerifies();
}

TEST_P(Search, ACancelledSearchStops) {
  Searchable s;
  std::vector<SendRequest> batch;
  for (int i = 0; i < 9000; ++i) batch.push_back(Msg("a", "common words " + std::to_string(i)));
  ASSERT_TRUE(s.store->SendMany(batch).ok());
  std::atomic<bool> cancel{true};
  EXPECT_EQ(s.store->Search({.query = "common", .cancel = &cancel}).status().code(),
            Code::kCancelled);
  cancel = false;
  EXPECT_EQ(s.Find({.query = "common", .cancel = &cancel}).total, 9000u);
}

TEST_P(Search, LimitsAndReadOnlyStores) {
  Searchable s;
  s.Send("a", "hello there");
  EXPECT_EQ(s.store->Search({.query = "hello", .limit = kMaxSearchLimit + 1}).status().code(),
            Code::kInvalidArgument);
  s.store.reset();
  StoreOptions ro = s.Options();
  ro.read_only = true;
  auto reader = MustOpen(s.dir.path(), ro);
  auto res = reader->Search({.query = "hello"});
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  EXPECT_EQ(res->total, 1u);
}

}  // namespace
}  // namespace tidings::engine
