// The full-text index kept with the messages (engine/search_index.h): the
// postings of a message record, added or removed in the batch that changes
// the record.
#include "engine/search_index.h"

#include <cstring>
#include <functional>
#include <map>

#include "engine/codec.h"
#include "engine/store_impl.h"

namespace tidings::engine {
namespace search_index {

void EncodePositions(const std::vector<uint32_t>& positions, std::string* out) {
  Writer w(out);
  w.Varint(positions.size());
  uint32_t last = 0;
  for (uint32_t p : positions) {
    w.Varint(p - last);
    last = p;
  }
}

namespace {
// Reads encoded positions from `r`; `out` may be null (only checked).
bool ReadPositions(Reader& r, size_t max_count, std::vector<uint32_t>* out) {
  // Every position costs at least a byte: a count beyond the bytes left is
  // corrupt, and is refused before it sizes anything.
  uint64_t count = 0;
  if (!r.Varint(&count) || count == 0 || count > max_count) return false;
  if (out != nullptr) {
    out->clear();
    out->reserve(count);
  }
  uint64_t at = 0;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t delta = 0;
    // Checked before adding: a 64-bit delta could wrap `at` around.
    if (!r.Varint(&delta) || (i > 0 && delta == 0) || delta > UINT32_MAX - at) return false;
    at += delta;
    if (out != nullptr) out->push_back(static_cast<uint32_t>(at));
  }
  return true;
}
}  // namespace

bool DecodePositions(std::string_view in, std::vector<uint32_t>* out) {
  Reader r(in);
  return ReadPositions(r, in.size(), out) && r.done();
}

void EncodePosting(uint32_t message_terms, uint32_t sender, std::string_view positions,
                   std::string* out) {
  Writer w(out);
  w.Varint(message_terms);
  for (int shift = 24; shift >= 0; shift -= 8) w.U8(static_cast<uint8_t>(sender >> shift));
  out->append(positions);
}

void EncodePosting(const PostingValue& v, std::string* out) {
  EncodePosting(v.message_terms, v.sender, {}, out);
  EncodePositions(v.positions, out);
}

bool SplitPosting(std::string_view in, uint32_t* message_terms, uint32_t* sender,
                  std::string_view* positions) {
  Reader r(in);
  uint64_t terms = 0;
  if (!r.Varint(&terms) || terms > UINT32_MAX) return false;
  *message_terms = static_cast<uint32_t>(terms);
  *sender = 0;
  for (int i = 0; i < 4; ++i) {
    uint8_t b = 0;
    if (!r.U8(&b)) return false;
    *sender = *sender << 8 | b;
  }
  *positions = in.substr(in.size() - r.remaining());
  return true;
}

bool DecodePosting(std::string_view in, PostingValue* v) {
  std::string_view positions;
  return SplitPosting(in, &v->message_terms, &v->sender, &positions) &&
         DecodePositions(positions, &v->positions);
}

void EncodeDoc(const Doc& d, std::string* out) {
  out->append(d.message_key);
  PutFixed32BE(out, d.message_terms);
  PutFixed32BE(out, d.sender);
}

bool DocAt(std::string_view chunk, uint32_t i, Doc* out) {
  const size_t at = (i % kDocsPerChunk) * kDocBytes;
  if (at + kDocBytes > chunk.size()) return false;
  const std::string_view doc = chunk.substr(at, kDocBytes);
  static constexpr char kRemoved[kDocBytes] = {};
  if (std::memcmp(doc.data(), kRemoved, kDocBytes) == 0) return false;
  out->message_key = doc.substr(0, kMessageKeyBytes);
  out->message_terms = GetFixed32BE(doc.data() + kMessageKeyBytes);
  out->sender = GetFixed32BE(doc.data() + kMessageKeyBytes + 4);
  return true;
}

void EncodeRank(const Rank& r, std::string* out) {
  PutFixed32BE(out, r.message_terms);
  out->append(r.order);
}

bool RankAt(std::string_view ranks, uint32_t i, Rank* out) {
  const size_t at = size_t{i} * kRankBytes;
  if (at + kRankBytes > ranks.size()) return false;
  out->message_terms = GetFixed32BE(ranks.data() + at);
  out->order = ranks.substr(at + 4, kOrderKeyBytes);
  return out->message_terms != 0;  // an indexed message has a token
}

bool ValidRanks(std::string_view ranks) { return !ranks.empty() && ranks.size() % kRankBytes == 0; }

bool ValidDocs(std::string_view chunk) {
  return !chunk.empty() && chunk.size() % kDocBytes == 0 &&
         chunk.size() <= kDocsPerChunk * kDocBytes;
}

void EncodeTail(const MessagePostings& m, std::string* out) {
  Writer w(out);
  w.Varint(m.postings.size());
  for (const auto& [term, value] : m.postings) {
    out->append(term);
    w.Bytes(value);
  }
}

bool DecodeTail(std::string_view in, MessagePostings* m) {
  Reader r(in);
  uint64_t count = 0;
  // Every posting takes more than kTermHashBytes: a larger count is corrupt.
  if (!r.Varint(&count) || count == 0 || count > in.size() / kTermHashBytes) return false;
  m->postings.clear();
  m->postings.reserve(count);
  std::string_view term, positions;
  uint32_t terms = 0, sender = 0, first_terms = 0, first_sender = 0;
  std::string value;
  for (uint64_t i = 0; i < count; ++i) {
    if (!r.Raw(kTermHashBytes, &term) || !r.Bytes(&value)) return false;
    if (i > 0 && term <= m->postings.back().first) return false;
    // Well-formed postings of one message: one length and one sender.
    if (!SplitPosting(value, &terms, &sender, &positions) || !DecodePositions(positions, nullptr))
      return false;
    if (i == 0) first_terms = terms, first_sender = sender;
    if (terms != first_terms || sender != first_sender) return false;
    m->postings.emplace_back(term, value);
  }
  return r.done();
}

void EncodeBlock(const std::vector<std::pair<uint32_t, std::string_view>>& entries,
                 std::string* out) {
  Writer w(out);
  w.Varint(entries.size());
  uint32_t last = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    w.Varint(i == 0 ? entries[i].first : entries[i].first - last);
    out->append(entries[i].second);
    last = entries[i].first;
  }
}

BlockReader::BlockReader(std::string_view block) : in_(block) {
  Reader r(in_);
  // Every entry takes more than a byte: a larger count is corrupt.
  ok_ = r.Varint(&left_) && left_ != 0 && left_ <= block.size();
  in_ = in_.substr(in_.size() - r.remaining());
}

bool BlockReader::Next(uint32_t* doc, std::string_view* positions) {
  if (!ok_ || left_ == 0) return false;
  Reader r(in_);
  uint64_t delta = 0;
  // Strictly ascending: after the first, a delta is at least 1.
  ok_ = r.Varint(&delta) && (first_ || delta != 0) && delta <= UINT32_MAX - doc_;
  const size_t start = in_.size() - r.remaining();
  ok_ = ok_ && ReadPositions(r, in_.size(), nullptr);
  if (!ok_) return false;
  doc_ += delta;
  *doc = static_cast<uint32_t>(doc_);
  *positions = in_.substr(start, in_.size() - r.remaining() - start);
  first_ = false;
  --left_;
  in_ = in_.substr(in_.size() - r.remaining());
  return true;
}

bool DecodeBlock(std::string_view in, std::vector<BlockEntry>* entries) {
  entries->clear();
  BlockReader reader(in);
  uint32_t doc = 0;
  std::string_view positions;
  while (reader.Next(&doc, &positions)) entries->push_back({doc, std::string(positions)});
  return reader.ok();
}

std::string TailKey(std::string_view message_key) {
  std::string k(1, kTailTag);
  return k.append(message_key);
}

std::string FoldedKey(std::string_view message_key) {
  std::string k(1, kFoldedTag);
  return k.append(message_key);
}

std::string BlockKey(std::string_view term_hash, uint64_t fold) {
  std::string k(1, kBlockTag);
  k.append(term_hash);
  PutFixed64BE(&k, fold);
  return k;
}

std::string DocsKey(uint64_t fold, uint32_t chunk) {
  std::string k(1, kDocsTag);
  PutFixed64BE(&k, fold);
  PutFixed32BE(&k, chunk);
  return k;
}

std::string RanksKey(uint64_t fold) {
  std::string k(1, kRanksTag);
  PutFixed64BE(&k, fold);
  return k;
}

namespace {
uint64_t TermNumber(std::string_view term_hash) { return GetFixed64BE(term_hash.data()); }
}  // namespace

void TailIndex::Put(const std::string& message_key, MessagePostings m) {
  Erase(message_key);
  auto [it, inserted] = messages_.emplace(message_key, std::move(m));
  for (const auto& [term, value] : it->second.postings) {
    terms_[TermNumber(term)].push_back(&*it);
  }
}

void TailIndex::Erase(const std::string& message_key) {
  auto it = messages_.find(message_key);
  if (it == messages_.end()) return;
  for (const auto& [term, value] : it->second.postings) {
    auto t = terms_.find(TermNumber(term));
    if (t == terms_.end()) continue;
    std::erase(t->second, &*it);
    if (t->second.empty()) terms_.erase(t);
  }
  messages_.erase(it);
}

void TailIndex::Clear() {
  messages_.clear();
  terms_.clear();
}

void TailIndex::Collect(const std::string& term_hash,
                        std::vector<std::pair<std::string, std::string>>* out) const {
  auto t = terms_.find(TermNumber(term_hash));
  if (t == terms_.end()) return;
  for (const Entry* message : t->second) {
    if (auto value = message->second.postings.Find(term_hash)) {
      out->emplace_back(message->first, std::string(*value));
    }
  }
}

std::optional<std::string_view> PostingList::Find(std::string_view term_hash) const {
  size_t lo = 0, hi = size();
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if ((*this)[mid].first < term_hash) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo == size() || (*this)[lo].first != term_hash) return std::nullopt;
  return (*this)[lo].second;
}

}  // namespace search_index

uint64_t StoreImpl::TermNumber(char domain, std::string_view text) const {
  // The hashed input is the domain byte and the text, as Hash16 spells it;
  // a term is at most search::kMaxTermBytes, so it fits on the stack.
  char buffer[1 + search::kMaxTermBytes];
  if (text.size() >= sizeof buffer) {
    return GetFixed64BE(TermHash(domain, text).data());
  }
  buffer[0] = domain;
  std::memcpy(buffer + 1, text.data(), text.size());
  const std::string_view in(buffer, 1 + text.size());
  const auto h =
      siphash_keys_ ? crypto::SipHash16(hash_key_, in) : crypto::KeyedHash16(hash_key_, in);
  return GetFixed64BE(reinterpret_cast<const char*>(h.data()));
}

bool StoreImpl::Indexed(const MessageRecord& r) {
  // A send refused for good stays on its device only: out of the index, so
  // that replicas with the same messages have the same index (and rank alike).
  return !r.m.deleted && r.m.state != MessageState::kFailed && !r.m.body.empty() &&
         r.m.content_type.starts_with("text/");
}

void StoreImpl::IndexStateChange(Txn& txn, const std::string& key, const MessageRecord& r,
                                 bool was_indexed) {
  if (was_indexed == Indexed(r)) return;
  MessageRecord text = r;  // the postings of its text, whatever its state
  text.m.state = MessageState::kSent;
  IndexMessage(txn, key, text, /*add=*/!was_indexed);
}

size_t StoreImpl::AnalyzePostings(const MessageRecord& r,
                                  search_index::MessagePostings* out) const {
  using namespace search_index;
  out->postings.clear();
  if (!Indexed(r)) return 0;
  thread_local std::vector<search::Token> tokens;
  tokens.clear();
  analyzer_.Analyze(r.m.body, &tokens);
  if (tokens.empty()) return 0;
  // Every occurrence of a whole term, and of the prefix of a long one, as
  // (hash, position); sorted, a key's occurrences are adjacent with their
  // positions ascending. Sends index every message, so nothing here
  // allocates per term. Two keys with one hash (2^-64 a pair) share a posting.
  thread_local std::vector<std::pair<uint64_t, uint32_t>> occurrences;
  occurrences.clear();
  const bool stem = analyzer_.options().stem_english;
  for (const auto& t : tokens) {
    occurrences.emplace_back(TermNumber(kTermDomain, t.term), t.position);
    std::string_view prefix = search::Analyzer::IndexedPrefix(t.folded());
    // Stemmed, a 3-letter word's term may not be itself ("try" is "tri"):
    // its own x posting is what a 3-letter prefix query reads (search.cc).
    if (prefix.empty() && stem &&
        search::Analyzer::CodePoints(t.folded()) == search::kPrefixChars) {
      prefix = t.folded();
    }
    if (!prefix.empty()) occurrences.emplace_back(TermNumber(kPrefixDomain, prefix), t.position);
  }
  std::sort(occurrences.begin(), occurrences.end());
  PostingValue v;
  v.message_terms = static_cast<uint32_t>(tokens.size());
  v.sender = SenderHash(r.m.sender);
  size_t distinct = 0;
  for (size_t i = 0; i < occurrences.size(); ++i) {
    distinct += i == 0 || occurrences[i].first != occurrences[i - 1].first;
  }
  out->postings.reserve(distinct);
  char term[kTermHashBytes];
  std::string value;
  for (size_t i = 0; i < occurrences.size();) {
    const uint64_t hash = occurrences[i].first;
    v.positions.clear();
    for (; i < occurrences.size() && occurrences[i].first == hash; ++i) {
      if (v.positions.empty() || v.positions.back() != occurrences[i].second) {
        v.positions.push_back(occurrences[i].second);
      }
    }
    EncodeFixed64BE(term, hash);
    value.clear();
    EncodePosting(v, &value);
    out->postings.emplace_back(std::string_view(term, kTermHashBytes), value);
  }
  return tokens.size();
}

size_t StoreImpl::ForEachPosting(
    const std::string& key, const MessageRecord& r,
    const std::function<void(const std::string&, const std::string&)>& visit) const {
  search_index::MessagePostings m;
  const size_t terms = AnalyzePostings(r, &m);
  for (const auto& [term, value] : m.postings) visit(std::string(term) + key, std::string(value));
  return terms;
}

bool StoreImpl::InSearchTail(const Txn& txn, const std::string& key) const {
  for (auto it = txn.search_tail.rbegin(); it != txn.search_tail.rend(); ++it) {
    if (it->first == key) return it->second.has_value();
  }
  return !txn.search_tail_clear && search_tail_.contains(key);
}

void StoreImpl::IndexMessage(Txn& txn, const std::string& key, const MessageRecord& r, bool add) {
  using namespace search_index;
  if (!search_enabled_ || cfs_[kSearch] == nullptr) return;
  if (building_ && key > build_cursor_) return;  // the build indexes it when it gets there
  search_index::MessagePostings m;
  const size_t terms = AnalyzePostings(r, &m);
  if (terms == 0) return;
  const std::string tail_key = TailKey(key);
  if (add) {
    std::string value, sealed, ad;
    EncodeTail(m, &value);
    AdInto(&ad, kSearch, tail_key);
    sealer_->SealTo(ad, value, &sealed);
    txn.batch.Put(cfs_[kSearch], tail_key, sealed).PermitUncheckedError();
    txn.search_tail.emplace_back(key, std::move(m));
  } else if (InSearchTail(txn, key)) {
    txn.batch.Delete(cfs_[kSearch], tail_key).PermitUncheckedError();
    txn.search_tail.emplace_back(key, std::nullopt);
  } else {
    RemoveFolded(txn, key, m);
  }
  const int64_t sign = add ? 1 : -1;
  txn.indexed_messages += sign;
  txn.indexed_terms += sign * static_cast<int64_t>(terms);
}

void StoreImpl::RemoveFolded(Txn& txn, const std::string& key,
                             const search_index::MessagePostings& m) {
  using namespace search_index;
  // Rare (an edit, delete, redaction or purge of a message already folded):
  // each of its terms' blocks from its fold is rewritten without it and its
  // document is zeroed, so its postings and its key leave the disk as its
  // text does. Errors leave the postings; verify reports them and a rebuild
  // clears them.
  const std::string folded_key = FoldedKey(key);
  auto folded = TxnRead(txn, kSearch, folded_key);
  if (!folded.ok() || !folded->has_value() || (*folded)->size() != kFoldedValueBytes) return;
  const uint64_t fold = GetFixed64BE((*folded)->data());
  const uint32_t doc = GetFixed32BE((*folded)->data() + kFoldIdBytes);
  // Only the document the folded record names, if it is this message's:
  // otherwise the blocks' entries of that number are another message's.
  Doc d;
  const std::string docs_key = DocsKey(fold, doc / kDocsPerChunk);
  auto docs = TxnRead(txn, kSearch, docs_key);
  if (!docs.ok() || !docs->has_value() || !ValidDocs(**docs) || !DocAt(**docs, doc, &d) ||
      d.message_key != key) {
    TxnDelete(txn, kSearch, folded_key);
    return;
  }
  std::vector<BlockEntry> entries;
  std::vector<std::pair<uint32_t, std::string_view>> kept;
  for (const auto& [term, value] : m.postings) {
    const std::string block_key = BlockKey(term, fold);
    auto block = TxnRead(txn, kSearch, block_key);
    if (!block.ok() || !block->has_value() || !DecodeBlock(**block, &entries)) continue;
    kept.clear();
    for (const auto& e : entries) {
      if (e.doc != doc) kept.emplace_back(e.doc, e.positions);
    }
    if (kept.size() == entries.size()) continue;
    if (kept.empty()) {
      TxnDelete(txn, kSearch, block_key);
      continue;
    }
    std::string rewritten;
    EncodeBlock(kept, &rewritten);
    TxnPut(txn, kSearch, block_key, std::move(rewritten));
  }
  // Its document and its rank are zeroed; a record left with none goes.
  auto remove = [&](const std::string& record_key, size_t offset, size_t bytes) {
    auto record = TxnRead(txn, kSearch, record_key);
    if (!record.ok() || !record->has_value() || (*record)->size() < offset + bytes) return;
    std::string zeroed = std::move(**record);
    zeroed.replace(offset, bytes, bytes, '\0');
    if (zeroed.find_first_not_of('\0') == std::string::npos) {
      TxnDelete(txn, kSearch, record_key);
    } else {
      TxnPut(txn, kSearch, record_key, std::move(zeroed));
    }
  };
  remove(docs_key, (doc % kDocsPerChunk) * kDocBytes, kDocBytes);
  remove(RanksKey(fold), size_t{doc} * kRankBytes, kRankBytes);
  TxnDelete(txn, kSearch, folded_key);
}

void StoreImpl::ForgetCachedIndexRecords(const Txn& txn) {
  if (block_cache_ == nullptr) return;
  bool moved = false;
  for (const auto& [where, value] : txn.overlay) {
    if (where.first == kSearch && (where.second.starts_with(search_index::kDocsTag) ||
                                   where.second.starts_with(search_index::kRanksTag))) {
      // First the epoch: a query that read the old record at an older
      // snapshot then does not cache it after this erase (engine/search.cc).
      if (!moved) search_cache_epoch_.fetch_add(1);
      moved = true;
      block_cache_->Erase(search_index::CacheKey(where.second));
    }
  }
}

void StoreImpl::ApplySearchTail(Txn& txn) {
  if (txn.search_tail_clear) search_tail_.Clear();
  for (auto& [key, postings] : txn.search_tail) {
    if (postings.has_value()) {
      search_tail_.Put(key, std::move(*postings));
    } else {
      search_tail_.Erase(key);
    }
  }
}

Status StoreImpl::ReadSearchTail(const rocksdb::ReadOptions& ro, bool skip_damaged,
                                 search_index::TailIndex* out) {
  using namespace search_index;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[kSearch]));
  const std::string first(1, kTailTag);
  std::string ad;
  for (it->Seek(first); it->Valid() && it->key().starts_with(first); it->Next()) {
    const std::string_view k = it->key().ToStringView();
    AdInto(&ad, kSearch, k);
    auto plain = sealer_->Open(ad, it->value().ToStringView());
    search_index::MessagePostings m;
    if (k.size() != kTailKeyBytes || !plain.ok() || !DecodeTail(*plain, &m)) {
      if (skip_damaged) continue;
      return DataLoss("a search index record failed authentication; run `tidings verify`");
    }
    out->Put(std::string(k.substr(1)), std::move(m));
  }
  return ReadDone(*it);
}

Status StoreImpl::LoadSearchTail() {
  std::unique_lock<std::shared_mutex> tail_lock(search_tail_mu_);
  search_tail_.Clear();
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  // A damaged record is left out: verify reports it, and the store opens.
  return ReadSearchTail(rocksdb::ReadOptions(), /*skip_damaged=*/true, &search_tail_);
}

uint64_t StoreImpl::NextFoldId() {
  using namespace search_index;
  // The database's next sequence number, which grows; but a restore or a
  // rekey copies the records into a new database whose sequence starts
  // lower, so also past the largest fold that still has documents.
  uint64_t next = db_->GetLatestSequenceNumber() + 1;
  rocksdb::ReadOptions ro;
  ro.total_order_seek = true;  // across the family's term prefixes
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[kSearch]));
  for (char tag : {kDocsTag, kRanksTag}) {
    it->SeekForPrev(std::string(1, tag) + std::string(kFoldIdBytes + kChunkBytes, '\xff'));
    if (it->Valid() && it->key().size() > kFoldIdBytes && it->key()[0] == tag) {
      next = std::max(next, GetFixed64BE(it->key().data() + 1) + 1);
    }
  }
  return next;
}

void StoreImpl::FoldSearchTail() {
  using namespace search_index;
  if (search_tail_.size() < std::max<size_t>(1, options_.search_fold_every) ||
      cfs_[kSearch] == nullptr) {
    return;
  }
  // The tail's messages become the fold's documents, numbered in key order
  // (the tail is walked in key order), and their postings the blocks, by
  // term, each in document order. Views into the tail, which lives until
  // the batch is written. The batch takes its records in key order ('b' <
  // 'd' < 'f' < 'r' < 'w', and each kind ascending): the memtable then
  // inserts each next to the last instead of searching for its place (in
  // hash order, the inserts were a third of an indexed append's time).
  std::unordered_map<std::string_view, std::vector<std::pair<uint32_t, std::string_view>>> terms;
  rocksdb::WriteBatch batch;
  std::string sealed, ad, value, docs, ranks;
  std::vector<std::pair<std::string, std::string>> docs_records, folded_records;  // key, plain
  const uint64_t fold = NextFoldId();
  auto put = [&](const std::string& k, std::string_view plain) {
    sealed.clear();
    AdInto(&ad, kSearch, k);
    sealer_->SealTo(ad, plain, &sealed);
    batch.Put(cfs_[kSearch], k, sealed).PermitUncheckedError();
  };
  uint32_t doc = 0;
  for (const auto& [key, m] : search_tail_.messages()) {
    Doc d{.message_key = key};
    std::string_view positions;
    for (const auto& [term, posting] : m.postings) {
      // A tail record decoded well: its postings split (they did at decode).
      SplitPosting(posting, &d.message_terms, &d.sender, &positions);
      terms[term].emplace_back(doc, positions);
    }
    EncodeDoc(d, &docs);
    EncodeRank({d.message_terms, std::string_view(key).substr(kMessageKeyBytes - kOrderKeyBytes)},
               &ranks);
    auto& folded = folded_records.emplace_back(FoldedKey(key), std::string()).second;
    PutFixed64BE(&folded, fold);
    PutFixed32BE(&folded, doc);
    if (++doc % kDocsPerChunk == 0 || doc == search_tail_.size()) {
      docs_records.emplace_back(DocsKey(fold, (doc - 1) / kDocsPerChunk), std::move(docs));
      docs.clear();
    }
  }
  std::vector<const decltype(terms)::value_type*> by_term;
  by_term.reserve(terms.size());
  for (const auto& t : terms) by_term.push_back(&t);
  std::sort(by_term.begin(), by_term.end(), [](auto* a, auto* b) { return a->first < b->first; });
  for (const auto* t : by_term) {
    value.clear();
    EncodeBlock(t->second, &value);
    put(BlockKey(t->first, fold), value);
  }
  for (const auto& [k, plain] : docs_records) put(k, plain);
  for (const auto& [key, m] : search_tail_.messages()) {
    batch.Delete(cfs_[kSearch], TailKey(key)).PermitUncheckedError();
  }
  if (!ranks.empty()) put(RanksKey(fold), ranks);
  for (const auto& [k, plain] : folded_records) put(k, plain);
  std::unique_lock<std::shared_mutex> tail_lock(search_tail_mu_);
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  rocksdb::WriteOptions wo;
  wo.sync = false;  // the next durable write syncs it; lost, the tail is still there
  if (db_->Write(wo, &batch).ok()) search_tail_.Clear();
}

}  // namespace tidings::engine
