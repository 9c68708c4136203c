// Search: one query over the index (engine/search_index.h).
//
// The query's clauses (search/query.h) become sources, one per term: the
// postings of a whole term, or for a prefix the postings of its first
// search::kPrefixChars characters (and of the whole term when the prefix is
// exactly that long). Each source's postings are decoded without copies
// (views of the blocks' plaintexts) into one list ordered by fold, then
// message key (PostingKey), which is the order the blocks are read in; one
// pass counts its document frequency exactly (BM25's idf, the same on every
// replica with the same messages), and a merge join that gallops through
// the longer lists makes the messages every source holds candidates.
// A candidate passes the filters (time from its key, sender from its
// posting), phrase positions, and, for a prefix longer than what the index
// keeps, a match of its own text. Scores are BM25 blended with recency; the
// best offset + limit are kept, and only those hits' records are read for
// their snippets.
#include <rocksdb/db.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <deque>
#include <functional>
#include <queue>

#include "engine/search_index.h"
#include "engine/store_impl.h"
#include "search/query.h"
#include "search/snippet.h"

namespace tidings::engine {
namespace {

using search_index::PostingValue;

constexpr double kK1 = 1.2, kB = 0.75;  // BM25's usual constants
constexpr double kRecencyBoost = 0.5;   // the newest hit scores up to 1.5x
constexpr double kRecencyHalfLifeDays = 30;
constexpr size_t kCancelCheckEvery = 4096;

// Where a posting stands in a source's list: its fold (the tail is
// kTailFold), then its message key. Every posting of a message is in one
// fold (a fold takes whole messages), so the sources agree on this order,
// and each block, read in fold order, is already in it: a source is sorted
// without a sort. Compared as five numbers (the key as big-endian words),
// which orders keys as their bytes, without a memcmp call.
struct PostingKey {
  static constexpr uint64_t kTailFold = UINT64_MAX;
  std::array<uint64_t, 1 + search_index::kMessageKeyBytes / 8> words;

  static PostingKey Of(uint64_t fold, std::string_view message_key) {
    PostingKey k;
    k.words[0] = fold;
    for (size_t i = 1; i < k.words.size(); ++i) {
      k.words[i] = GetFixed64BE(message_key.data() + 8 * (i - 1));
    }
    return k;
  }
  // The message key's bytes.
  void MessageKeyTo(std::string* out) const {
    out->resize(search_index::kMessageKeyBytes);
    for (size_t i = 1; i < words.size(); ++i) EncodeFixed64BE(out->data() + 8 * (i - 1), words[i]);
  }
  // Its order key (the message key's last 16 bytes).
  bool OrderTo(OrderKey* out) const {
    char bytes[16];
    for (size_t i = 0; i < 2; ++i) EncodeFixed64BE(bytes + 8 * i, words[3 + i]);
    return OrderKey::Decode(std::string_view(bytes, sizeof bytes), out);
  }
  auto operator<=>(const PostingKey&) const = default;
};

// A posting as a query reads it: where it stands, and its encoded
// PostingValue, a view into a buffer the query holds (Arena).
struct Posting {
  PostingKey key;
  std::string_view value;
};

bool KeyLess(const Posting& a, const Posting& b) { return a.key < b.key; }

// The plaintexts the postings view: a deque, so adding one moves none.
using Arena = std::deque<std::string>;

// One term of the query: the postings of one or two keys (a prefix reads
// its prefix postings and, when exactly that long, the term's), from the
// blocks and the tail, in one list in PostingKey order (a message in both
// keys appears twice, adjacent).
struct Source {
  size_t clause = 0;
  std::vector<Posting> entries;
  size_t at = 0;
  uint64_t df = 0;  // messages in scope with this term

  bool valid() const { return at < entries.size(); }
  const PostingKey& current() const { return entries[at].key; }
  // Merges the ordered runs that start at `runs` (one per key read) and
  // counts the messages the postings name.
  void Merge(const std::vector<size_t>& runs) {
    for (size_t r = 1; r < runs.size(); ++r) {  // [0, runs[r]) is sorted: add run r
      const size_t end = r + 1 < runs.size() ? runs[r + 1] : entries.size();
      std::inplace_merge(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(runs[r]),
                         entries.begin() + static_cast<std::ptrdiff_t>(end), KeyLess);
    }
    for (size_t i = 0; i < entries.size(); ++i) {
      df += i == 0 || entries[i].key != entries[i - 1].key;
    }
  }
  // Past `current` (each of its entries).
  void Advance() {
    const PostingKey key = current();
    do ++at;
    while (valid() && current() == key);
  }
  // At the first posting of `key` or after it: a galloping search, so a
  // rare term's source skips through a common one's in O(log) steps.
  void AdvanceTo(const PostingKey& key) {
    if (!valid() || current() >= key) return;
    size_t step = 1, low = at;
    while (low + step < entries.size() && entries[low + step].key < key) {
      low += step;
      step *= 2;
    }
    const auto from = entries.begin() + static_cast<std::ptrdiff_t>(low + 1);
    const auto to =
        entries.begin() + static_cast<std::ptrdiff_t>(std::min(low + step + 1, entries.size()));
    at = static_cast<size_t>(
        std::lower_bound(from, to, key,
                         [](const Posting& p, const PostingKey& k) { return p.key < k; }) -
        entries.begin());
  }
};

// What ranking needs of a candidate that passed every filter.
struct Candidate {
  PostingKey message_key;
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
  Arena arena;
  // Each source's tail postings, per key it reads, in key order.
  std::vector<std::vector<std::vector<Posting>>> tails(sources.size());
  std::vector<search_index::BlockEntry> tail_entries;
  for (size_t k = 0; k < sources.size(); ++k) {
    for (const auto& h : hashes[k]) {
      tail_entries.clear();
      tail.Collect(h, scope, &tail_entries);
      auto& run = tails[k].emplace_back();
      for (auto& e : tail_entries) {
        if (e.message_key.size() != search_index::kMessageKeyBytes) return malformed_key();
        run.push_back({PostingKey::Of(PostingKey::kTailFold, e.message_key),
                       arena.emplace_back(std::move(e.value))});
      }
      std::sort(run.begin(), run.end(), KeyLess);
    }
  }
  if (tail_lock.owns_lock()) tail_lock.unlock();

  // Per key a source reads: its blocks in fold order, then its tail (one
  // ordered run); the runs of a two-key prefix are merged.
  std::string ad;
  std::vector<size_t> runs;
  for (size_t k = 0; k < sources.size(); ++k) {
    auto& entries = sources[k].entries;
    runs.clear();
    for (size_t hk = 0; hk < hashes[k].size(); ++hk) {
      runs.push_back(entries.size());
      const std::string first = search_index::kBlockTag + hashes[k][hk];
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(index_ro, cfs_[kSearch]));
      for (it->Seek(first); it->Valid() && it->key().starts_with(first); it->Next()) {
        if (cancelled()) return Cancelled("the search was cancelled");
        const std::string_view block_key = it->key().ToStringView();
        AdInto(&ad, kSearch, block_key);
        auto plain = sealer_->Open(ad, it->value().ToStringView());
        if (block_key.size() != search_index::kBlockKeyBytes || !plain.ok()) {
          return DataLoss("a search index record failed authentication; run `tidings verify`");
        }
        const uint64_t fold = GetFixed64BE(block_key.data() + first.size());
        search_index::BlockReader reader(arena.emplace_back(std::move(*plain)));
        std::string_view key, value;
        while (reader.Next(&key, &value)) {
          if (key.starts_with(scope)) entries.push_back({PostingKey::Of(fold, key), value});
        }
        if (!reader.ok() || fold == PostingKey::kTailFold) {
          return DataLoss("a search index record is corrupt; run `tidings verify`");
        }
      }
      TIDINGS_RETURN_IF_ERROR(ReadDone(*it));
      entries.insert(entries.end(), tails[k][hk].begin(), tails[k][hk].end());
    }
    sources[k].Merge(runs);
  }

  // Filters that need no record: time from the key, sender from a posting.
  const uint32_t sender_hash = request.sender.empty() ? 0 : SenderHash(request.sender);
  rocksdb::ReadOptions record_ro;
  record_ro.snapshot = snap;
  // A candidate's postings (one per source) against the filters, phrases
  // and, when a prefix is longer than the index keeps, its text; `tf` gets
  // its per-clause frequencies.
  std::string key_copy;
  auto accept = [&](const PostingKey& key, std::vector<PostingValue>& postings,
                    std::vector<uint32_t>* tf, Candidate* out) -> Result<bool> {
    if (!request.sender.empty() && postings[0].sender != sender_hash) return false;
    if (!key.OrderTo(&out->order)) return malformed_key();
    const uint64_t ms = out->order.millis();
    if (ms < request.from_ms || (request.to_ms != 0 && ms >= request.to_ms)) return false;
    tf->assign(query.clauses.size(), 0);
    for (size_t first = 0; first < sources.size();) {
      const size_t clause = sources[first].clause;
      std::vector<const std::vector<uint32_t>*> terms;
      size_t end = first;
      for (; end < sources.size() && sources[end].clause == clause; ++end) {
        terms.push_back(&postings[end].positions);
      }
      (*tf)[clause] =
          terms.size() == 1 ? static_cast<uint32_t>(terms[0]->size()) : PhraseMatches(terms);
      if ((*tf)[clause] == 0) return false;
      first = end;
    }
    out->message_terms = postings[0].message_terms;
    if (match_text) {
      key.MessageKeyTo(&key_copy);
      TIDINGS_ASSIGN_OR_RETURN(auto plain, ReadSealedLocked(kMessages, key_copy, record_ro));
      MessageRecord rec;
      if (!plain.has_value()) return false;  // the index runs ahead of nothing; verify says so
      if (!DecodeMessage(*plain, &rec))
        return DataLoss("a message record is corrupt; run `tidings verify`");
      std::vector<search::Token> tokens;
      analyzer_.Analyze(rec.m.body, &tokens);
      if (search::MatchTokens(query, tokens).empty()) return false;
    }
    out->message_key = key;
    return true;
  };

  // The merge join: candidates are the message keys every source holds.
  std::vector<Candidate> candidates;
  std::vector<uint32_t> tfs, tf;  // candidates' frequencies, query.clauses.size() each
  size_t steps = 0;
  auto all_valid = [&] {
    return std::all_of(sources.begin(), sources.end(), [](const Source& s) { return s.valid(); });
  };
  std::vector<PostingValue> postings(sources.size());
  PostingValue v;
  while (all_valid()) {
    if (++steps % kCancelCheckEvery == 0 && cancelled())
      return Cancelled("the search was cancelled");
    PostingKey target = sources[0].current();
    for (const auto& s : sources) target = std::max(target, s.current());
    bool match = true;
    for (auto& s : sources) {
      s.AdvanceTo(target);
      match = match && s.valid() && s.current() == target;
    }
    if (!match) continue;
    for (size_t k = 0; k < sources.size(); ++k) {
      PostingValue& merged = postings[k];
      merged.positions.clear();
      const auto& entries = sources[k].entries;
      for (size_t e = sources[k].at; e < entries.size() && entries[e].key == target; ++e) {
        if (!search_index::DecodePosting(entries[e].value, &v)) {
          return DataLoss("a search index record is corrupt; run `tidings verify`");
        }
        merged.message_terms = v.message_terms;
        merged.sender = v.sender;
        merged.positions.insert(merged.positions.end(), v.positions.begin(), v.positions.end());
      }
      std::sort(merged.positions.begin(), merged.positions.end());
      merged.positions.erase(std::unique(merged.positions.begin(), merged.positions.end()),
                             merged.positions.end());
      sources[k].Advance();
    }
    Candidate c;
    TIDINGS_ASSIGN_OR_RETURN(bool ok, accept(target, postings, &tf, &c));
    if (!ok) continue;
    c.tf = tfs.size();
    tfs.insert(tfs.end(), tf.begin(), tf.end());
    candidates.push_back(c);
  }

  // BM25 per clause (a phrase's frequency is its rarest term's), blended
  // with recency. N and the average length are the store's, read at the
  // snapshot the postings were; df is counted in the searched scope.
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
    c.message_key.MessageKeyTo(&key_copy);
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
