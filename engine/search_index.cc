// The full-text index kept with the messages (engine/search_index.h): the
// postings of a message record, added or removed in the batch that changes
// the record.
#include "engine/search_index.h"

#include <functional>
#include <map>

#include "engine/codec.h"
#include "engine/store_impl.h"

namespace tidings::engine {
namespace search_index {

void EncodePosting(const PostingValue& v, std::string* out) {
  Writer w(out);
  w.Varint(v.message_terms);
  for (int shift = 24; shift >= 0; shift -= 8) w.U8(static_cast<uint8_t>(v.sender >> shift));
  w.Varint(v.positions.size());
  uint32_t last = 0;
  for (uint32_t p : v.positions) {
    w.Varint(p - last);
    last = p;
  }
}

bool DecodePosting(std::string_view in, PostingValue* v) {
  Reader r(in);
  uint64_t terms = 0, count = 0;
  if (!r.Varint(&terms) || terms > UINT32_MAX) return false;
  v->message_terms = static_cast<uint32_t>(terms);
  v->sender = 0;
  for (int i = 0; i < 4; ++i) {
    uint8_t b = 0;
    if (!r.U8(&b)) return false;
    v->sender = v->sender << 8 | b;
  }
  // Every position costs at least a byte: a count beyond the bytes left is
  // corrupt, and is refused before it sizes anything.
  if (!r.Varint(&count) || count == 0 || count > in.size()) return false;
  v->positions.clear();
  v->positions.reserve(count);
  uint64_t at = 0;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t delta = 0;
    if (!r.Varint(&delta) || (i > 0 && delta == 0)) return false;
    at += delta;
    if (at > UINT32_MAX) return false;
    v->positions.push_back(static_cast<uint32_t>(at));
  }
  return r.done();
}

}  // namespace search_index

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

size_t StoreImpl::MessagePostings(
    const std::string& key, const MessageRecord& r,
    const std::function<void(const std::string&, const std::string&)>& visit) const {
  using namespace search_index;
  if (!Indexed(r)) return 0;
  thread_local std::vector<search::Token> tokens;
  tokens.clear();
  analyzer_.Analyze(r.m.body, &tokens);
  if (tokens.empty()) return 0;
  // Positions per distinct key: whole terms, and the prefixes of long ones.
  std::map<std::string, std::vector<uint32_t>> postings;
  const bool stem = analyzer_.options().stem_english;
  for (const auto& t : tokens) {
    postings[kTermDomain + t.term].push_back(t.position);
    std::string_view prefix = search::Analyzer::IndexedPrefix(t.folded());
    // Stemmed, a 3-letter word's term may not be itself ("try" is "tri"):
    // its own x posting is what a 3-letter prefix query reads (search.cc).
    if (prefix.empty() && stem &&
        search::Analyzer::CodePoints(t.folded()) == search::kPrefixChars) {
      prefix = t.folded();
    }
    if (!prefix.empty()) postings[kPrefixDomain + std::string(prefix)].push_back(t.position);
  }
  PostingValue v;
  v.message_terms = static_cast<uint32_t>(tokens.size());
  v.sender = SenderHash(r.m.sender);
  std::string pkey, value;
  for (auto& [term, positions] : postings) {
    pkey = TermHash(term[0], std::string_view(term).substr(1)) + key;
    v.positions = std::move(positions);
    value.clear();
    EncodePosting(v, &value);
    visit(pkey, value);
  }
  return tokens.size();
}

void StoreImpl::IndexMessage(Txn& txn, const std::string& key, const MessageRecord& r, bool add) {
  if (!search_enabled_ || cfs_[kSearch] == nullptr) return;
  if (building_ && key > build_cursor_) return;  // the build indexes it when it gets there
  std::string sealed, ad;
  const size_t terms =
      MessagePostings(key, r, [&](const std::string& pkey, const std::string& value) {
        if (!add) {
          txn.batch.Delete(cfs_[kSearch], pkey).PermitUncheckedError();
          return;
        }
        sealed.clear();
        AdInto(&ad, kSearch, pkey);
        sealer_->SealTo(ad, value, &sealed);
        txn.batch.Put(cfs_[kSearch], pkey, sealed).PermitUncheckedError();
      });
  if (terms == 0) return;
  const int64_t sign = add ? 1 : -1;
  txn.indexed_messages += sign;
  txn.indexed_terms += sign * static_cast<int64_t>(terms);
}

}  // namespace tidings::engine
