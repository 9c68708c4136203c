// Search: one query over the index (engine/search_index.h).
//
// The query's clauses (search/query.h) become sources, one per term: the
// postings of a whole term, or for a prefix the postings of its first
// search::kPrefixChars characters (and of the whole term when the prefix is
// exactly that long). The blocks are read a fold at a time, every source's
// keys side by side: a source's postings in the fold are views of its
// blocks' plaintexts, in document order, and counted for its document
// frequency (BM25's idf, exact, the same on every replica with the same
// messages); a merge join on document numbers that gallops through the
// longer lists makes the documents every source holds candidates. The tail
// is joined last, its messages numbered in key order. A candidate's phrase
// positions are checked, then its rank (length and order key, from its
// fold's ranks record) and, with a conversation or sender filter, its
// document (key and sender, from the fold's docs records) against the
// filters, and, for a prefix longer than what the index keeps, its own text.
// Scores are BM25 blended with recency; the best offset + limit are kept,
// and only those hits' records are read for their snippets.
#include <rocksdb/db.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <functional>
#include <optional>

#include "engine/search_index.h"
#include "engine/store_impl.h"
#include "search/query.h"
#include "search/snippet.h"

namespace tidings::engine {
namespace {

constexpr double kK1 = 1.2, kB = 0.75;  // BM25's usual constants
constexpr double kRecencyBoost = 0.5;   // the newest hit scores up to 1.5x
constexpr double kRecencyHalfLifeDays = 30;
constexpr size_t kCancelCheckEvery = 4096;

// Where a posting stands: its fold (the tail is kTailFold) and its document
// number there. In the tail, a message's number is its place among the tail
// messages the query reads, in key order (TailDocs). A fold numbers its
// documents in key order, so every source orders its postings alike, and
// each block is already in that order: a source is joined on a number, not
// on the message's key.
struct Place {
  static constexpr uint64_t kTailFold = UINT64_MAX;
  uint64_t fold = 0;
  uint32_t doc = 0;
  bool folded() const { return fold != kTailFold; }
};

// A posting as a query reads it: its document in the fold at hand and its
// encoded positions, a view of the fold's block (or of a tail record).
struct FoldPosting {
  uint32_t doc = 0;
  std::string_view positions;
};

bool DocLess(const FoldPosting& a, const FoldPosting& b) { return a.doc < b.doc; }

// The plaintexts the postings view: a deque, so adding one moves none.
using Arena = std::deque<std::string>;

// One term of the query: the postings of one or two keys (a prefix reads
// its prefix postings and, when exactly that long, the term's). A query reads
// them a fold at a time: `entries` holds the fold's, in document order (a
// message under both keys appears twice, adjacent). The vectors are reused
// from fold to fold, so a query over a million messages allocates a few
// hundred postings' worth, not a list of every posting.
struct Source {
  size_t clause = 0;
  std::vector<FoldPosting> entries;
  size_t at = 0;
  uint64_t df = 0;  // messages with this term

  bool valid() const { return at < entries.size(); }
  uint32_t current() const { return entries[at].doc; }
  // Once a fold's entries are in: orders them unless they are one block's
  // (already ascending), and counts the messages they name.
  void Start(bool sorted) {
    if (!sorted) std::sort(entries.begin(), entries.end(), DocLess);
    at = 0;
    for (size_t i = 0; i < entries.size(); ++i) {
      df += i == 0 || entries[i].doc != entries[i - 1].doc;
    }
  }
  // Past `current` (each of its entries).
  void Advance() {
    const uint32_t doc = current();
    do ++at;
    while (valid() && current() == doc);
  }
  // At the first posting of `doc` or after it: a galloping search, so a
  // rare term's source skips through a common one's in O(log) steps.
  void AdvanceTo(uint32_t doc) {
    if (!valid() || current() >= doc) return;
    size_t step = 1, low = at;
    while (low + step < entries.size() && entries[low + step].doc < doc) {
      low += step;
      step *= 2;
    }
    const auto from = entries.begin() + static_cast<std::ptrdiff_t>(low + 1);
    const auto to =
        entries.begin() + static_cast<std::ptrdiff_t>(std::min(low + step + 1, entries.size()));
    at = static_cast<size_t>(
        std::lower_bound(from, to, doc,
                         [](const FoldPosting& p, uint32_t d) { return p.doc < d; }) -
        entries.begin());
  }
};

// One key's blocks ('b' || T(term) || fold), in fold order, opened one at a
// time. A block's postings are views of its plaintext: of the iterator's
// value, or of `scratch_`, so they stay valid until Next.
class BlockCursor {
 public:
  BlockCursor(std::unique_ptr<rocksdb::Iterator> it, std::string prefix)
      : it_(std::move(it)), prefix_(std::move(prefix)) {
    it_->Seek(prefix_);
  }
  bool valid() const { return it_->Valid() && it_->key().starts_with(prefix_); }
  rocksdb::Iterator& iterator() { return *it_; }
  std::string_view key() const { return it_->key().ToStringView(); }
  // The block's fold id (the key's last 8 bytes). REQUIRES: valid(), and a
  // key of kBlockKeyBytes (checked where the fold is first read).
  uint64_t fold() const { return GetFixed64BE(key().data() + 1 + search_index::kTermHashBytes); }
  std::string_view value() const { return it_->value().ToStringView(); }
  std::string* scratch() { return &scratch_; }
  void Next() { it_->Next(); }

 private:
  std::unique_ptr<rocksdb::Iterator> it_;
  std::string prefix_;
  std::string scratch_;
};

// The tail messages a query reads, numbered in key order (Place::doc):
// their keys, token counts and senders.
struct TailDoc {
  std::string_view message_key;
  uint32_t message_terms = 0;
  uint32_t sender = 0;
};

void DeleteCachedRecord(const rocksdb::Slice& /*key*/, void* value) {
  delete static_cast<std::string*>(value);
}

// The block cache handles a query holds, released when it returns. Records
// it has moved past stay pinned while they fill at most half the cache: a
// record released while the cache is over its capacity is dropped at once,
// and the next query would read it again (releasing each fold's ranks as the
// query moved on made a 1M-message prefix query 2.7x slower). Beyond that,
// the last record of each kind is all it holds.
class CacheHandles {
 public:
  enum Kind { kRanks, kDocs, kKinds };
  explicit CacheHandles(rocksdb::Cache* cache) : cache_(cache), budget_(cache->GetCapacity() / 2) {}
  CacheHandles(const CacheHandles&) = delete;
  CacheHandles& operator=(const CacheHandles&) = delete;
  ~CacheHandles() {
    for (auto* h : held_) Release(h);
    for (auto* h : pinned_) Release(h);
  }
  // Holds `h` (null: nothing) as the current record of its kind.
  std::string_view Hold(Kind kind, rocksdb::Cache::Handle* h) {
    if (rocksdb::Cache::Handle* last = held_[kind]; last != nullptr) {
      const size_t charge = cache_->GetCharge(last);
      if (pinned_bytes_ + charge <= budget_) {
        pinned_.push_back(last);
        pinned_bytes_ += charge;
      } else {
        Release(last);
      }
    }
    held_[kind] = h;
    return h == nullptr ? std::string_view()
                        : std::string_view(*static_cast<const std::string*>(cache_->Value(h)));
  }

 private:
  void Release(rocksdb::Cache::Handle* h) {
    if (h != nullptr) cache_->Release(h);
  }
  rocksdb::Cache* cache_;
  const size_t budget_;
  rocksdb::Cache::Handle* held_[kKinds] = {};
  std::vector<rocksdb::Cache::Handle*> pinned_;
  size_t pinned_bytes_ = 0;
};

// What ranking needs of a candidate that passed every filter.
struct Candidate {
  Place where;  // its postings' fold and document
  OrderKey order;
  uint32_t message_terms = 0;
  size_t tf = 0;  // its per-clause term frequencies (or phrase matches) start here in `tfs`
  double score = 0;
};

// Best first: higher score (kRelevance), then newer; order keys are unique.
bool Better(const Candidate& a, const Candidate& b, SearchOrder order) {
  if (order == SearchOrder::kRelevance && a.score != b.score) return a.score > b.score;
  return b.order < a.order;
}

// How often a phrase's terms stand at consecutive positions: `terms` are the
// sorted positions of each of its terms, in the phrase's order.
uint32_t PhraseMatches(const std::vector<const std::vector<uint32_t>*>& terms) {
  uint32_t n = 0;
  for (uint32_t p : *terms[0]) {
    bool all = true;
    for (size_t i = 1; i < terms.size() && all; ++i) {
      all = std::binary_search(terms[i]->begin(), terms[i]->end(), p + static_cast<uint32_t>(i));
    }
    n += all ? 1 : 0;
  }
  return n;
}

}  // namespace

Result<SearchResult> StoreImpl::Search(const SearchRequest& request) {
  if (!search_enabled_) {
    return FailedPrecondition("the search index is off for this store; open it with the index on");
  }
  if (request.limit > kMaxSearchLimit) {
    return InvalidArgument("ask for at most " + std::to_string(kMaxSearchLimit) + " hits a page");
  }
  if (!request.conversation_id.empty()) {
    TIDINGS_RETURN_IF_ERROR(ValidateId("conversation id", request.conversation_id));
  }
  TIDINGS_ASSIGN_OR_RETURN(search::Query query, search::ParseQuery(request.query, analyzer_));
  const std::function<bool()> cancelled = [&] {
    return request.cancel != nullptr && request.cancel->load(std::memory_order_relaxed);
  };

  if (cancelled()) return Cancelled("the search was cancelled");
  // The snapshot and the tail are taken together: a commit changes the tail
  // records and the writer's copy of them under search_tail_mu_ (taken
  // before db_mu_, as a commit does).
  std::shared_lock<std::shared_mutex> tail_lock(search_tail_mu_);
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  if (!search_ready_ || cfs_[kSearch] == nullptr) {
    return FailedPrecondition(
        "the search index of this store is not built (or is being rebuilt); open the store for "
        "writing once, or run `tidings search --rebuild`");
  }
  const std::string scope =
      request.conversation_id.empty() ? std::string() : ConvKey(request.conversation_id);

  // The sources' term hashes, and whether a candidate's text must be
  // matched too.
  std::vector<Source> sources;
  std::vector<std::vector<std::string>> hashes;  // per source
  bool match_text = false;
  for (size_t ci = 0; ci < query.clauses.size(); ++ci) {
    for (const auto& t : query.clauses[ci].terms) {
      Source src;
      src.clause = ci;
      std::vector<std::string> keys;
      if (!t.prefix) {
        keys.push_back(search_index::kTermDomain + t.term);
      } else {
        const std::string_view indexed = search::Analyzer::IndexedPrefix(t.term);
        if (indexed.empty() && analyzer_.options().stem_english) {
          // Stemmed, a 3-letter word's term is its stem ("try" is "tri"): its
          // unstemmed prefix is indexed too (search_index.cc).
          keys.push_back(search_index::kPrefixDomain + t.term);
        } else if (indexed.empty()) {  // exactly kPrefixChars: itself, or longer words
          keys.push_back(search_index::kTermDomain + t.term);
          keys.push_back(search_index::kPrefixDomain + t.term);
        } else {
          keys.push_back(search_index::kPrefixDomain + std::string(indexed));
          match_text = true;
        }
      }
      hashes.emplace_back();
      for (const auto& k : keys) {
        hashes.back().push_back(TermHash(k[0], std::string_view(k).substr(1)));
      }
      sources.push_back(std::move(src));
    }
  }

  // Read before the snapshot: a commit that rewrites a docs or ranks record
  // moves the epoch before it erases the record's cached copy.
  const uint64_t cache_epoch = search_cache_epoch_.load();
  auto snapshot = ConsistentView();
  const rocksdb::Snapshot* snap = snapshot ? snapshot->snapshot() : nullptr;
  rocksdb::ReadOptions index_ro;
  index_ro.snapshot = snap;
  search_index::TailIndex read_tail;  // a reader's: the tail records at the snapshot
  if (options_.read_only) {
    tail_lock.unlock();
    TIDINGS_RETURN_IF_ERROR(ReadSearchTail(index_ro, /*skip_damaged=*/false, &read_tail));
  }
  const search_index::TailIndex& tail = options_.read_only ? read_tail : search_tail_;
  auto malformed_key = [] {
    return DataLoss("a search index record names a malformed message key; run `tidings verify`");
  };
  auto corrupt = [] { return DataLoss("a search index record is corrupt; run `tidings verify`"); };
  Arena arena;
  // The tail postings of each source, per key it reads, and the tail
  // messages they name, numbered in key order. Every source reads the whole
  // index; the conversation filter is a candidate's (so df counts the
  // term's messages in the whole store).
  std::vector<std::vector<std::vector<FoldPosting>>> tails(sources.size());
  std::vector<TailDoc> tail_docs;
  {
    std::vector<std::pair<std::string, std::string>> collected;
    std::vector<std::vector<std::pair<std::string_view, std::string_view>>> per_key;  // key, value
    for (size_t k = 0; k < sources.size(); ++k) {
      for (const auto& h : hashes[k]) {
        collected.clear();
        tail.Collect(h, &collected);
        auto& run = per_key.emplace_back();
        for (auto& [message_key, value] : collected) {
          if (message_key.size() != search_index::kMessageKeyBytes) return malformed_key();
          run.emplace_back(arena.emplace_back(std::move(message_key)),
                           arena.emplace_back(std::move(value)));
        }
      }
    }
    for (const auto& run : per_key) {
      for (const auto& [message_key, value] : run)
        tail_docs.push_back({.message_key = message_key});
    }
    auto key_less = [](const TailDoc& a, const TailDoc& b) {
      return a.message_key < b.message_key;
    };
    std::sort(tail_docs.begin(), tail_docs.end(), key_less);
    tail_docs.erase(std::unique(tail_docs.begin(), tail_docs.end(),
                                [](const TailDoc& a, const TailDoc& b) {
                                  return a.message_key == b.message_key;
                                }),
                    tail_docs.end());
    size_t r = 0;
    for (size_t k = 0; k < sources.size(); ++k) {
      for (size_t hk = 0; hk < hashes[k].size(); ++hk, ++r) {
        auto& postings = tails[k].emplace_back();
        for (const auto& [message_key, value] : per_key[r]) {
          const auto at = std::lower_bound(tail_docs.begin(), tail_docs.end(),
                                           TailDoc{.message_key = message_key}, key_less);
          FoldPosting p{.doc = static_cast<uint32_t>(at - tail_docs.begin())};
          // A message's postings agree on its length and sender (DecodeTail).
          if (!search_index::SplitPosting(value, &at->message_terms, &at->sender, &p.positions)) {
            return corrupt();
          }
          postings.push_back(p);
        }
      }
    }
  }
  if (tail_lock.owns_lock()) tail_lock.unlock();

  // A fold's ranks (one record) and documents (kDocsPerChunk a record),
  // read only for candidates: a candidate's rank always, its document for a
  // conversation or sender filter and for the page. Once authenticated, a
  // record is kept in the block cache (under a key of its own, CacheKey), so
  // queries do not read and check it again. A document is only ever removed
  // (zeroed), and fold ids never repeat, so a cached record newer than this
  // query's snapshot can only lack a document the snapshot still holds:
  // `at_snapshot` reads it again; a record read at a snapshot older than a
  // commit that rewrote it is not cached (the epoch moved). Candidates come
  // in (fold, document) order, so a record is wanted by one run of them
  // (CacheHandles says how many stay held). A document this snapshot
  // does not hold either is a stale posting, skipped (verify reports it).
  CacheHandles held(block_cache_.get());
  auto read_record = [&](CacheHandles::Kind kind, const std::string& record_key, bool at_snapshot,
                         bool (*valid)(std::string_view)) -> Result<std::string_view> {
    const std::string cache_key = search_index::CacheKey(record_key);
    if (!at_snapshot) {
      if (auto* h = block_cache_->Lookup(cache_key)) return held.Hold(kind, h);
    }
    TIDINGS_ASSIGN_OR_RETURN(auto plain, ReadSealedLocked(kSearch, record_key, index_ro));
    if (plain.has_value() && !valid(*plain)) return corrupt();
    if (!plain.has_value()) return held.Hold(kind, nullptr);
    if (at_snapshot || search_cache_epoch_.load() != cache_epoch) {
      held.Hold(kind, nullptr);
      return std::string_view(arena.emplace_back(std::move(*plain)));
    }
    auto* value = new std::string(std::move(*plain));
    rocksdb::Cache::Handle* added = nullptr;
    if (!block_cache_->Insert(cache_key, value, value->size(), &DeleteCachedRecord, &added).ok()) {
      held.Hold(kind, nullptr);
      std::string_view kept = arena.emplace_back(std::move(*value));
      delete value;
      return kept;
    }
    return held.Hold(kind, added);
  };
  uint64_t last_ranks_fold = Place::kTailFold;
  std::string_view last_ranks;
  auto rank_of = [&](const Place& at) -> Result<std::optional<search_index::Rank>> {
    search_index::Rank rank;
    if (last_ranks_fold != at.fold) {
      last_ranks_fold = Place::kTailFold;
      TIDINGS_ASSIGN_OR_RETURN(
          last_ranks, read_record(CacheHandles::kRanks, search_index::RanksKey(at.fold), false,
                                  search_index::ValidRanks));
      last_ranks_fold = at.fold;
    }
    if (search_index::RankAt(last_ranks, at.doc, &rank)) return std::optional(rank);
    TIDINGS_ASSIGN_OR_RETURN(
        last_ranks, read_record(CacheHandles::kRanks, search_index::RanksKey(at.fold), true,
                                search_index::ValidRanks));
    if (!search_index::RankAt(last_ranks, at.doc, &rank)) {
      return std::optional<search_index::Rank>();
    }
    return std::optional(rank);
  };
  std::pair<uint64_t, uint32_t> last_docs_chunk{Place::kTailFold, 0};
  std::string_view last_docs;
  auto doc_of = [&](const Place& at) -> Result<std::optional<search_index::Doc>> {
    search_index::Doc d;
    const std::pair<uint64_t, uint32_t> chunk(
        at.fold, static_cast<uint32_t>(at.doc / search_index::kDocsPerChunk));
    if (last_docs_chunk != chunk) {
      last_docs_chunk = {Place::kTailFold, 0};
      TIDINGS_ASSIGN_OR_RETURN(
          last_docs,
          read_record(CacheHandles::kDocs, search_index::DocsKey(chunk.first, chunk.second), false,
                      search_index::ValidDocs));
      last_docs_chunk = chunk;
    }
    if (search_index::DocAt(last_docs, at.doc, &d)) return std::optional(d);
    TIDINGS_ASSIGN_OR_RETURN(
        last_docs,
        read_record(CacheHandles::kDocs, search_index::DocsKey(chunk.first, chunk.second), true,
                    search_index::ValidDocs));
    if (!search_index::DocAt(last_docs, at.doc, &d)) return std::optional<search_index::Doc>();
    return std::optional(d);
  };

  // The filters need no message record: a candidate's conversation and time
  // are in its key, its sender's hash in its document (or tail posting).
  const uint32_t sender_hash = request.sender.empty() ? 0 : SenderHash(request.sender);
  rocksdb::ReadOptions record_ro;
  record_ro.snapshot = snap;
  // A candidate's message key: in its document, or the tail's; false for a
  // stale posting.
  auto message_key_of = [&](const Place& at, std::string* out) -> Result<bool> {
    if (!at.folded()) {
      out->assign(tail_docs[at.doc].message_key);
      return true;
    }
    TIDINGS_ASSIGN_OR_RETURN(const auto d, doc_of(at));
    if (!d.has_value()) return false;
    out->assign(d->message_key);
    return true;
  };
  // A candidate's positions (one list per source) against phrases, the
  // filters and, when a prefix is longer than the index keeps, its text;
  // `tf` gets its per-clause frequencies.
  std::string key_copy;
  std::vector<const std::vector<uint32_t>*> phrase;
  auto accept = [&](const Place& at, const std::vector<std::vector<uint32_t>>& positions,
                    std::vector<uint32_t>* tf, Candidate* out) -> Result<bool> {
    tf->assign(query.clauses.size(), 0);
    for (size_t first = 0; first < sources.size();) {
      const size_t clause = sources[first].clause;
      phrase.clear();
      size_t end = first;
      for (; end < sources.size() && sources[end].clause == clause; ++end) {
        phrase.push_back(&positions[end]);
      }
      (*tf)[clause] =
          phrase.size() == 1 ? static_cast<uint32_t>(phrase[0]->size()) : PhraseMatches(phrase);
      if ((*tf)[clause] == 0) return false;
      first = end;
    }
    // The message: a folded posting names a document of its fold.
    uint32_t sender = 0;
    out->where = at;
    if (at.folded()) {
      TIDINGS_ASSIGN_OR_RETURN(const auto rank, rank_of(at));
      if (!rank.has_value()) return false;
      out->message_terms = rank->message_terms;
      if (!OrderKey::Decode(rank->order, &out->order)) return malformed_key();
      if (!scope.empty() || !request.sender.empty()) {
        TIDINGS_ASSIGN_OR_RETURN(const auto d, doc_of(at));
        if (!d.has_value() || !d->message_key.starts_with(scope)) return false;
        sender = d->sender;
      }
    } else {
      const TailDoc& d = tail_docs[at.doc];
      if (!d.message_key.starts_with(scope)) return false;
      out->message_terms = d.message_terms;
      sender = d.sender;
      if (!OrderKey::Decode(
              d.message_key.substr(d.message_key.size() - search_index::kOrderKeyBytes),
              &out->order)) {
        return malformed_key();
      }
    }
    if (!request.sender.empty() && sender != sender_hash) return false;
    const uint64_t ms = out->order.millis();
    if (ms < request.from_ms || (request.to_ms != 0 && ms >= request.to_ms)) return false;
    if (match_text) {
      TIDINGS_ASSIGN_OR_RETURN(const bool held_key, message_key_of(at, &key_copy));
      if (!held_key) return false;
      TIDINGS_ASSIGN_OR_RETURN(auto plain, ReadSealedLocked(kMessages, key_copy, record_ro));
      MessageRecord rec;
      if (!plain.has_value()) return false;  // the index runs ahead of nothing; verify says so
      if (!DecodeMessage(*plain, &rec))
        return DataLoss("a message record is corrupt; run `tidings verify`");
      std::vector<search::Token> tokens;
      analyzer_.Analyze(rec.m.body, &tokens);
      if (search::MatchTokens(query, tokens).empty()) return false;
    }
    return true;
  };

  // The merge join of one fold (or the tail): candidates are the documents
  // every source holds there.
  std::vector<Candidate> candidates;
  std::vector<uint32_t> tfs, tf;  // candidates' frequencies, query.clauses.size() each
  std::vector<std::vector<uint32_t>> positions(sources.size());
  std::vector<uint32_t> decoded;
  size_t steps = 0;
  auto all_valid = [&] {
    return std::all_of(sources.begin(), sources.end(), [](const Source& s) { return s.valid(); });
  };
  auto join = [&](uint64_t fold) -> Status {
    while (all_valid()) {
      if (++steps % kCancelCheckEvery == 0 && cancelled())
        return Cancelled("the search was cancelled");
      uint32_t target = sources[0].current();
      for (const auto& s : sources) target = std::max(target, s.current());
      bool match = true;
      for (auto& s : sources) {
        s.AdvanceTo(target);
        match = match && s.valid() && s.current() == target;
      }
      if (!match) continue;
      for (size_t k = 0; k < sources.size(); ++k) {
        auto& merged = positions[k];
        const auto& entries = sources[k].entries;
        const size_t first = sources[k].at;
        if (!search_index::DecodePositions(entries[first].positions, &merged)) return corrupt();
        for (size_t e = first + 1; e < entries.size() && entries[e].doc == target; ++e) {
          // Two keys of one prefix: the union of their positions.
          if (!search_index::DecodePositions(entries[e].positions, &decoded)) return corrupt();
          merged.insert(merged.end(), decoded.begin(), decoded.end());
          std::sort(merged.begin(), merged.end());
          merged.erase(std::unique(merged.begin(), merged.end()), merged.end());
        }
        sources[k].Advance();
      }
      Candidate c;
      TIDINGS_ASSIGN_OR_RETURN(bool ok, accept(Place{fold, target}, positions, &tf, &c));
      if (!ok) continue;
      c.tf = tfs.size();
      tfs.insert(tfs.end(), tf.begin(), tf.end());
      candidates.push_back(c);
    }
    return Status::Ok();
  };

  // The blocks, a fold at a time: the fold is the lowest any key's cursor is
  // at. Each source takes its keys' postings there (their count is its df's
  // share, so every block is read); when every source has some, they are
  // joined. Then the tail, joined the same way.
  std::vector<std::vector<BlockCursor>> cursors(sources.size());
  for (size_t k = 0; k < sources.size(); ++k) {
    for (const auto& h : hashes[k]) {
      cursors[k].emplace_back(
          std::unique_ptr<rocksdb::Iterator>(db_->NewIterator(index_ro, cfs_[kSearch])),
          search_index::kBlockTag + h);
    }
  }
  std::string ad;
  for (;;) {
    uint64_t fold = Place::kTailFold;
    bool any = false;
    for (auto& keys : cursors) {
      for (auto& c : keys) {
        if (!c.valid()) continue;
        if (c.key().size() != search_index::kBlockKeyBytes) return corrupt();
        fold = std::min(fold, c.fold());
        any = true;
      }
    }
    if (!any) break;
    if (fold == Place::kTailFold) return corrupt();
    if (cancelled()) return Cancelled("the search was cancelled");
    bool every = true;
    for (size_t k = 0; k < sources.size(); ++k) {
      auto& entries = sources[k].entries;
      entries.clear();
      size_t blocks = 0;
      for (auto& c : cursors[k]) {
        if (!c.valid() || c.fold() != fold) {
          continue;
        }
        AdInto(&ad, kSearch, c.key());
        auto plain = sealer_->OpenView(ad, c.value(), c.scratch());
        if (!plain.ok()) {
          return DataLoss("a search index record failed authentication; run `tidings verify`");
        }
        search_index::BlockReader reader(*plain);
        FoldPosting p;
        while (reader.Next(&p.doc, &p.positions)) entries.push_back(p);
        if (!reader.ok()) return corrupt();
        ++blocks;
      }
      sources[k].Start(/*sorted=*/blocks <= 1);
      every = every && !entries.empty();
    }
    if (every) TIDINGS_RETURN_IF_ERROR(join(fold));
    for (auto& keys : cursors) {
      for (auto& c : keys) {
        if (c.valid() && c.fold() == fold) {
          c.Next();
        }
      }
    }
  }
  for (auto& keys : cursors) {
    for (auto& c : keys) TIDINGS_RETURN_IF_ERROR(ReadDone(c.iterator()));
  }
  bool every = true;
  for (size_t k = 0; k < sources.size(); ++k) {
    auto& entries = sources[k].entries;
    entries.clear();
    for (const auto& run : tails[k]) entries.insert(entries.end(), run.begin(), run.end());
    sources[k].Start(/*sorted=*/false);
    every = every && !entries.empty();
  }
  if (every) TIDINGS_RETURN_IF_ERROR(join(Place::kTailFold));

  // BM25 per clause (a phrase's frequency is its rarest term's), blended
  // with recency. N and the average length are the store's, read at the
  // snapshot the postings were; df too counts the whole store.
  TIDINGS_ASSIGN_OR_RETURN(auto totals,
                           ReadSealedLocked(kMeta, search_index::kTotalsKey, record_ro));
  uint64_t n = 0, all_terms = 0;
  if (totals.has_value() && totals->size() == 16) {
    n = GetFixed64BE(totals->data());
    all_terms = GetFixed64BE(totals->data() + 8);
  }
  const double avg_terms =
      n == 0 || all_terms == 0 ? 1.0 : static_cast<double>(all_terms) / static_cast<double>(n);
  std::vector<double> idf(query.clauses.size(), 0);
  std::vector<uint64_t> df(query.clauses.size(), UINT64_MAX);
  for (const auto& s : sources) df[s.clause] = std::min(df[s.clause], s.df);
  for (size_t k = 0; k < idf.size(); ++k) {
    const double d = static_cast<double>(df[k]), all = static_cast<double>(std::max(n, df[k]));
    idf[k] = std::log(1.0 + (all - d + 0.5) / (d + 0.5));
  }
  // Recency is measured back from the newest hit, not from this device's
  // clock: replicas with the same messages rank them alike.
  double newest_ms = 0;
  for (const auto& c : candidates) newest_ms = std::max(newest_ms, double(c.order.millis()));
  for (auto& c : candidates) {
    double bm25 = 0;
    const double len = static_cast<double>(c.message_terms) / avg_terms;
    for (size_t k = 0; k < idf.size(); ++k) {
      const double f = tfs[c.tf + k];
      bm25 += idf[k] * f * (kK1 + 1) / (f + kK1 * (1 - kB + kB * len));
    }
    const double age_days = (newest_ms - static_cast<double>(c.order.millis())) / kMillisPerDay;
    c.score = bm25 * (1 + kRecencyBoost * std::exp2(-age_days / kRecencyHalfLifeDays));
  }

  // The page: the best offset + limit, in order; only their records are read.
  SearchResult result;
  result.total = candidates.size();
  const size_t want = std::min(candidates.size(), request.offset + request.limit);
  auto better = [&](const Candidate& a, const Candidate& b) { return Better(a, b, request.order); };
  std::partial_sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(want),
                    candidates.end(), better);
  for (size_t k = request.offset; k < want; ++k) {
    const Candidate& c = candidates[k];
    TIDINGS_ASSIGN_OR_RETURN(const bool held_key, message_key_of(c.where, &key_copy));
    if (!held_key) continue;  // a stale posting: verify reports it
    TIDINGS_ASSIGN_OR_RETURN(auto plain, ReadSealedLocked(kMessages, key_copy, record_ro));
    MessageRecord rec;
    if (!plain.has_value()) continue;  // a stale posting: verify reports it
    if (!DecodeMessage(*plain, &rec))
      return DataLoss("a message record is corrupt; run `tidings verify`");
    std::vector<search::Token> tokens;
    analyzer_.Analyze(rec.m.body, &tokens);
    search::Snippet snippet =
        search::MakeSnippet(rec.m.body, tokens, search::MatchTokens(query, tokens));
    result.hits.push_back(SearchHit{rec.m.id, rec.m.conversation_id, rec.m.sender, rec.m.order,
                                    c.score, std::move(snippet.text), std::move(snippet.marks)});
  }
  return result;
}

}  // namespace tidings::engine
