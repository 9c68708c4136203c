// The full-text index's records, in the store's "search" family. A posting
// says that message M holds term t (with M's token count, its sender's hash
// and t's positions in it); the index keeps postings in two forms:
//
//   tail     'f' || message key            -> the message's postings: one
//            record per message, written in the batch that writes the
//            message (recent messages, up to StoreOptions::search_fold_every)
//   block    'b' || T(term) || fold id     -> the postings of one term from
//            one fold: per message its document number and the positions
//   docs     'd' || fold id || chunk       -> the fold's documents, numbered
//            in message-key order, kDocsPerChunk a record: message key,
//            token count and U(sender)
//   ranks    'r' || fold id                -> what ranking needs of each of
//            the fold's documents, in one record: token count, order key
//   folded   'w' || message key            -> its fold id and document number
//
// A fold (engine/search_index.cc) turns the tail into blocks in one batch:
// a message costs one index record when it is written instead of one per
// term (a chat message has ~66 postings; writing each as its own record
// made a send 10x slower), and a term's postings are read as a few blocks.
// In a block a posting names its message by document number (a byte or two,
// delta-coded), so the 32-byte key, the length and the sender are stored once
// per message, in the docs records, not once per term. Document order is key
// order, so (fold, document) orders postings as (fold, key) does. Ranking
// reads every candidate's length and time: the ranks record keeps those
// (20 bytes a document) apart from the docs (40), so that a query reads one
// small record per fold and the docs only for filters and its page.
// The writer keeps the tail in memory too (TailIndex); a reader decodes the
// tail records at its snapshot.
//
// T is the store's keyed hash (SipHash-128 under the naming key, cut to 8
// bytes) over a domain byte and the folded term: 't' for a whole term, 'x'
// for the first search::kPrefixChars characters of a longer one (prefix
// queries). U is the same hash of the sender, 4 bytes. The message key is
// the message record's own key (H(conversation) || order key). No term,
// prefix or sender appears in clear: the index adds no readable text and no
// dictionary to the disk. Values are tagged like every record
// (crypto/sealer.h), bound to their key.
//
// Totals (meta "search_totals": indexed messages, their terms) feed BM25's
// average length; the state record (meta "search_state") says whether the
// index is complete and with which settings (engine/search_build.cc).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tidings::engine::search_index {

inline constexpr size_t kTermHashBytes = 8;
inline constexpr size_t kMessageKeyBytes = 32;
inline constexpr size_t kFoldIdBytes = 8;
inline constexpr size_t kChunkBytes = 4;  // a docs record's chunk number, big-endian
inline constexpr size_t kDocsPerChunk = 64;
// A document: message key, token count (4, big-endian), U(sender) (4).
inline constexpr size_t kDocBytes = kMessageKeyBytes + 8;
inline constexpr char kTermDomain = 't';
inline constexpr char kPrefixDomain = 'x';
inline constexpr char kSenderDomain = 'u';
inline constexpr char kTailTag = 'f';
inline constexpr char kBlockTag = 'b';
inline constexpr char kDocsTag = 'd';
inline constexpr char kRanksTag = 'r';
inline constexpr char kFoldedTag = 'w';
inline constexpr size_t kTailKeyBytes = 1 + kMessageKeyBytes;
inline constexpr size_t kBlockKeyBytes = 1 + kTermHashBytes + kFoldIdBytes;
inline constexpr size_t kDocsKeyBytes = 1 + kFoldIdBytes + kChunkBytes;
inline constexpr size_t kRanksKeyBytes = 1 + kFoldIdBytes;
// A document's rank: token count (4, big-endian), order key (16).
inline constexpr size_t kOrderKeyBytes = 16;
inline constexpr size_t kRankBytes = 4 + kOrderKeyBytes;
inline constexpr size_t kFoldedValueBytes = kFoldIdBytes + 4;  // fold id, document number
inline constexpr char kTotalsKey[] = "search_totals";
inline constexpr char kStateKey[] = "search_state";

struct PostingValue {
  uint32_t message_terms = 0;       // the message's token count (BM25's length)
  uint32_t sender = 0;              // U(sender)
  std::vector<uint32_t> positions;  // ascending; its size is the term frequency
};

void EncodePosting(const PostingValue& v, std::string* out);
// An encoded PostingValue from its parts, its positions already encoded (as
// a block holds them): what SplitPosting takes apart.
void EncodePosting(uint32_t message_terms, uint32_t sender, std::string_view positions,
                   std::string* out);
bool DecodePosting(std::string_view in, PostingValue* v);

// A message's postings, (term hash, encoded PostingValue), packed: the
// hashes in one string, the values in another with their ends. The writer
// holds up to StoreOptions::search_fold_every messages' postings in memory
// (TailIndex): as a vector of string pairs each value was an allocation of
// its own, ~6.6 KB a chat message where this is ~1.7 KB.
class PostingList {
 public:
  struct Entry {
    std::string_view first;   // the term hash, kTermHashBytes
    std::string_view second;  // the encoded PostingValue
  };
  class Iterator {
   public:
    Iterator(const PostingList* list, size_t i) : list_(list), i_(i) {}
    Entry operator*() const { return (*list_)[i_]; }
    Iterator& operator++() {
      ++i_;
      return *this;
    }
    bool operator!=(const Iterator& o) const { return i_ != o.i_; }

   private:
    const PostingList* list_;
    size_t i_;
  };

  void clear() {
    hashes_.clear();
    values_.clear();
    ends_.clear();
  }
  void reserve(size_t n) {
    hashes_.reserve(n * kTermHashBytes);
    values_.reserve(n * 8);  // a chat message's posting value is 6-9 bytes
    ends_.reserve(n);
  }
  // `term` is kTermHashBytes long; terms are added in ascending order.
  void emplace_back(std::string_view term, std::string_view value) {
    hashes_.append(term);
    values_.append(value);
    ends_.push_back(static_cast<uint32_t>(values_.size()));
  }
  size_t size() const { return ends_.size(); }
  bool empty() const { return ends_.empty(); }
  Entry operator[](size_t i) const {
    const size_t from = i == 0 ? 0 : ends_[i - 1];
    return {std::string_view(hashes_).substr(i * kTermHashBytes, kTermHashBytes),
            std::string_view(values_).substr(from, ends_[i] - from)};
  }
  Entry back() const { return (*this)[size() - 1]; }
  Iterator begin() const { return {this, 0}; }
  Iterator end() const { return {this, size()}; }
  // The value of `term_hash`, if the message has it (binary search).
  std::optional<std::string_view> Find(std::string_view term_hash) const;
  bool operator==(const PostingList&) const = default;

 private:
  std::string hashes_;
  std::string values_;
  std::vector<uint32_t> ends_;
};

// One message's postings, sorted by hash.
struct MessagePostings {
  PostingList postings;
};
// A tail record's value: varint count, then per posting the 8 hash bytes,
// a varint length and the encoded PostingValue.
void EncodeTail(const MessagePostings& m, std::string* out);
bool DecodeTail(std::string_view in, MessagePostings* m);

// Positions: a varint count, then the ascending positions delta-coded (the
// first from 0). Decoding checks that they ascend and that nothing follows.
void EncodePositions(const std::vector<uint32_t>& positions, std::string* out);
bool DecodePositions(std::string_view in, std::vector<uint32_t>* out);
// An encoded PostingValue's token count and sender, and a view of its
// encoded positions, without decoding them.
bool SplitPosting(std::string_view in, uint32_t* message_terms, uint32_t* sender,
                  std::string_view* positions);

// A fold's document: what the docs records keep of each message.
struct Doc {
  std::string_view message_key;
  uint32_t message_terms = 0;
  uint32_t sender = 0;
};
void EncodeDoc(const Doc& d, std::string* out);  // appends kDocBytes
// Document `i` of a docs record's plaintext `chunk` (its i % kDocsPerChunk
// entry). False when the record holds no such document, or when it was
// removed (its entry is zeroed when its message leaves the index).
bool DocAt(std::string_view chunk, uint32_t i, Doc* out);
bool ValidDocs(std::string_view chunk);

// A fold's ranks: per document, its token count and its order key (the
// message key's last kOrderKeyBytes).
struct Rank {
  uint32_t message_terms = 0;
  std::string_view order;  // an encoded OrderKey
};
void EncodeRank(const Rank& r, std::string* out);  // appends kRankBytes
// Document `i`'s rank in a ranks record's plaintext; false when the record
// holds no such document or it was removed (zeroed, as in the docs).
bool RankAt(std::string_view ranks, uint32_t i, Rank* out);
bool ValidRanks(std::string_view ranks);

// A block's value: varint count, then per posting (in document order) the
// document number as a varint delta from the previous one (the first as
// itself) and the encoded positions.
struct BlockEntry {
  uint32_t doc = 0;
  std::string positions;  // encoded
};
// Entries are (document, encoded positions), in ascending document order.
void EncodeBlock(const std::vector<std::pair<uint32_t, std::string_view>>& entries,
                 std::string* out);
bool DecodeBlock(std::string_view in, std::vector<BlockEntry>* entries);

// Reads a block's entries in order without copying them (queries read
// blocks of thousands of postings).
class BlockReader {
 public:
  explicit BlockReader(std::string_view block);
  // The next entry: its document number and its encoded positions (a view
  // of the block, checked by DecodePositions). False at the end, or at a
  // malformed entry; then ok() says which.
  bool Next(uint32_t* doc, std::string_view* positions);
  // Every entry was read and the block held nothing else.
  bool ok() const { return ok_ && left_ == 0 && in_.empty(); }

 private:
  std::string_view in_;
  uint64_t left_ = 0;
  uint64_t doc_ = 0;
  bool first_ = true, ok_ = true;
};

std::string TailKey(std::string_view message_key);
std::string FoldedKey(std::string_view message_key);
std::string BlockKey(std::string_view term_hash, uint64_t fold);
std::string DocsKey(uint64_t fold, uint32_t chunk);
std::string RanksKey(uint64_t fold);
// A docs or ranks record's key in the store's block cache (whose own keys
// are of another length): a fixed prefix, then the record's key.
inline constexpr std::string_view kCachePrefix = "tidings.search/";
inline std::string CacheKey(std::string_view record_key) {
  return std::string(kCachePrefix).append(record_key);
}

// The writer's copy of the tail records, for queries: term hash -> the
// messages holding it. Changed only at commit (engine/txn.cc).
class TailIndex {
 public:
  void Put(const std::string& message_key, MessagePostings m);
  void Erase(const std::string& message_key);
  void Clear();
  size_t size() const { return messages_.size(); }
  bool contains(const std::string& message_key) const { return messages_.count(message_key); }
  // Appends the postings of `term_hash`, unsorted: (message key, encoded
  // PostingValue), copied.
  void Collect(const std::string& term_hash,
               std::vector<std::pair<std::string, std::string>>* out) const;
  const std::map<std::string, MessagePostings>& messages() const { return messages_; }

 private:
  std::map<std::string, MessagePostings> messages_;  // by message key
  // term hash (its 8 bytes as a number) -> the messages holding it
  // (pointers into messages_, whose nodes do not move).
  using Entry = std::map<std::string, MessagePostings>::value_type;
  std::unordered_map<uint64_t, std::vector<const Entry*>> terms_;
};

}  // namespace tidings::engine::search_index
