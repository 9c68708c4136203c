// The full-text index's records, in the store's "search" family. A posting
// says that message M holds term t (with M's token count, its sender's hash
// and t's positions in it); the index keeps postings in two forms:
//
//   tail     'f' || message key            -> the message's postings: one
//            record per message, written in the batch that writes the
//            message (recent messages, up to StoreOptions::search_fold_every)
//   block    'b' || T(term) || fold id     -> the postings of one term from
//            one fold, sorted by message key (key prefix-compressed)
//   folded   'w' || message key            -> the fold id holding its postings
//
// A fold (engine/search_index.cc) turns the tail into blocks in one batch:
// a message costs one index record when it is written instead of one per
// term (a chat message has ~66 postings; writing each as its own record
// made a send 10x slower), and a term's postings are read as a few blocks.
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
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tidings::engine::search_index {

inline constexpr size_t kTermHashBytes = 8;
inline constexpr size_t kMessageKeyBytes = 32;
inline constexpr size_t kFoldIdBytes = 8;
inline constexpr char kTermDomain = 't';
inline constexpr char kPrefixDomain = 'x';
inline constexpr char kSenderDomain = 'u';
inline constexpr char kTailTag = 'f';
inline constexpr char kBlockTag = 'b';
inline constexpr char kFoldedTag = 'w';
inline constexpr size_t kTailKeyBytes = 1 + kMessageKeyBytes;
inline constexpr size_t kBlockKeyBytes = 1 + kTermHashBytes + kFoldIdBytes;
inline constexpr char kTotalsKey[] = "search_totals";
inline constexpr char kStateKey[] = "search_state";

struct PostingValue {
  uint32_t message_terms = 0;       // the message's token count (BM25's length)
  uint32_t sender = 0;              // U(sender)
  std::vector<uint32_t> positions;  // ascending; its size is the term frequency
};

void EncodePosting(const PostingValue& v, std::string* out);
bool DecodePosting(std::string_view in, PostingValue* v);

// One message's postings: (term hash, encoded PostingValue), sorted by hash.
struct MessagePostings {
  std::vector<std::pair<std::string, std::string>> postings;
};
// A tail record's value: varint count, then per posting the 8 hash bytes,
// a varint length and the encoded PostingValue.
void EncodeTail(const MessagePostings& m, std::string* out);
bool DecodeTail(std::string_view in, MessagePostings* m);

// A block's value: varint count, then per posting (in message-key order) a
// varint count of bytes shared with the previous message key, the rest of
// the key (kMessageKeyBytes in all), a varint length and the encoded
// PostingValue.
struct BlockEntry {
  std::string message_key;
  std::string value;  // an encoded PostingValue
};
// Entries are (message key, encoded PostingValue), in ascending key order.
void EncodeBlock(const std::vector<std::pair<std::string_view, std::string_view>>& entries,
                 std::string* out);
bool DecodeBlock(std::string_view in, std::vector<BlockEntry>* entries);

// Reads a block's entries in order without copying them (queries read
// blocks of thousands of postings).
class BlockReader {
 public:
  explicit BlockReader(std::string_view block);
  // The next entry: its message key (valid until the next call) and its
  // encoded PostingValue (a view of the block). False at the end, or at a
  // malformed entry; then ok() says which.
  bool Next(std::string_view* message_key, std::string_view* value);
  // Every entry was read and the block held nothing else.
  bool ok() const { return ok_ && left_ == 0 && in_.empty(); }

 private:
  std::string_view in_;
  uint64_t left_ = 0;
  bool first_ = true, ok_ = true;
  char key_[kMessageKeyBytes] = {};
};

std::string TailKey(std::string_view message_key);
std::string FoldedKey(std::string_view message_key);
std::string BlockKey(std::string_view term_hash, uint64_t fold);

// The writer's copy of the tail records, for queries: term hash -> the
// messages holding it. Changed only at commit (engine/txn.cc).
class TailIndex {
 public:
  void Put(const std::string& message_key, MessagePostings m);
  void Erase(const std::string& message_key);
  void Clear();
  size_t size() const { return messages_.size(); }
  bool contains(const std::string& message_key) const { return messages_.count(message_key); }
  // Appends the postings of `term_hash` of messages whose key starts with
  // `scope`, unsorted.
  void Collect(const std::string& term_hash, std::string_view scope,
               std::vector<BlockEntry>* out) const;
  const std::map<std::string, MessagePostings>& messages() const { return messages_; }

 private:
  std::map<std::string, MessagePostings> messages_;  // by message key
  // term hash (its 8 bytes as a number) -> keys of the messages holding it
  // (pointers into messages_, whose nodes do not move).
  std::unordered_map<uint64_t, std::vector<const std::string*>> terms_;
};

}  // namespace tidings::engine::search_index
