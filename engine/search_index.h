// The full-text index's records, in the store's "search" family:
//
//   posting   key   T(term) || message key          (8 + 32 bytes)
//             value varint message terms || fixed32 U(sender) ||
//                   varint count || count varint position deltas
//
// T is the store's keyed hash (SipHash-128 under the naming key, cut to 8
// bytes) over a domain byte and the folded term: 't' for a whole term, 'x'
// for the first search::kPrefixChars characters of a longer one (prefix
// queries). U is the same hash of the sender, 4 bytes. The message key is
// the message record's own key (H(conversation) || order key), so postings
// of one term sort by conversation, then time, and a conversation filter is
// a key range. No term, prefix or sender appears in clear: the index adds
// no readable text and no dictionary to the disk. Values are tagged like
// every record (crypto/sealer.h), bound to their key.
//
// Totals (meta "search_totals": indexed messages, their terms) feed BM25's
// average length; the state record (meta "search_state") says whether the
// index is complete and with which settings (engine/search_build.cc).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tidings::engine::search_index {

inline constexpr size_t kTermHashBytes = 8;
inline constexpr size_t kMessageKeyBytes = 32;
inline constexpr size_t kPostingKeyBytes = kTermHashBytes + kMessageKeyBytes;
inline constexpr char kTermDomain = 't';
inline constexpr char kPrefixDomain = 'x';
inline constexpr char kSenderDomain = 'u';
inline constexpr char kTotalsKey[] = "search_totals";
inline constexpr char kStateKey[] = "search_state";

struct PostingValue {
  uint32_t message_terms = 0;       // the message's token count (BM25's length)
  uint32_t sender = 0;              // U(sender)
  std::vector<uint32_t> positions;  // ascending; its size is the term frequency
};

void EncodePosting(const PostingValue& v, std::string* out);
bool DecodePosting(std::string_view in, PostingValue* v);

}  // namespace tidings::engine::search_index
