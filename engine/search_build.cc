// The search index's life outside single writes: the state record, building
// the index of a store made before it (or after its settings changed),
// rebuilding on request, and verify's check that the postings are exactly
// what the messages make.
//
// State (meta "search_state", sealed like every record): "complete S",
// "building S CURSOR" or "off", where S is the stemming setting (0/1) and
// CURSOR the hex message key the build reached. A build commits its
// postings, the totals and the cursor together every kBuildChunk messages,
// so a build killed at any point goes on from its last chunk.
#include <rocksdb/db.h>

#include <functional>

#include "engine/search_index.h"
#include "engine/store_impl.h"

namespace tidings::engine {
namespace {

constexpr size_t kBuildChunk = 1000;

struct SearchState {
  enum Kind { kMissing, kOff, kBuilding, kComplete } kind = kMissing;
  bool stem = false;
  std::string cursor;  // kBuilding: the last message key indexed
};

std::string Hex(std::string_view in) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : in) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

bool Unhex(std::string_view in, std::string* out) {
  if (in.size() % 2 != 0) return false;
  auto nibble = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  out->clear();
  for (size_t i = 0; i < in.size(); i += 2) {
    int hi = nibble(in[i]), lo = nibble(in[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi << 4 | lo));
  }
  return true;
}

std::string EncodeState(const SearchState& s) {
  switch (s.kind) {
    case SearchState::kComplete:
      return std::string("complete ") + (s.stem ? "1" : "0");
    case SearchState::kBuilding:
      return std::string("building ") + (s.stem ? "1 " : "0 ") + Hex(s.cursor);
    default:
      return "off";
  }
}

bool DecodeState(std::string_view in, SearchState* s) {
  if (in == "off") {
    s->kind = SearchState::kOff;
    return true;
  }
  auto stem = [&](std::string_view rest) {
    if (rest.empty() || (rest[0] != '0' && rest[0] != '1')) return false;
    s->stem = rest[0] == '1';
    return true;
  };
  if (in.starts_with("complete ")) {
    s->kind = SearchState::kComplete;
    return stem(in.substr(9)) && in.size() == 10;
  }
  if (in.starts_with("building ")) {
    s->kind = SearchState::kBuilding;
    return stem(in.substr(9)) && in.size() >= 11 && in[10] == ' ' &&
           Unhex(in.substr(11), &s->cursor);
  }
  return false;
}

}  // namespace

Status StoreImpl::LoadSearchTotals() {
  Txn txn;
  TIDINGS_ASSIGN_OR_RETURN(auto v, TxnRead(txn, kMeta, search_index::kTotalsKey));
  search_totals_ = {};
  if (!v.has_value()) return Status::Ok();
  if (v->size() != 16)
    return DataLoss("the search index's totals record is corrupt; run `tidings verify`");
  search_totals_.messages = GetFixed64BE(v->data());
  search_totals_.terms = GetFixed64BE(v->data() + 8);
  return Status::Ok();
}

Status StoreImpl::PrepareSearchIndex() {
  Txn txn;
  TIDINGS_ASSIGN_OR_RETURN(auto raw, TxnRead(txn, kMeta, search_index::kStateKey));
  SearchState state;
  if (raw.has_value() && !DecodeState(*raw, &state)) {
    if (options_.read_only) return DataLoss("the search index's state record is corrupt");
    state = {};  // a writer rebuilds it
  }
  if (options_.read_only) {
    // The index as the writer made it, with the writer's settings.
    search_ready_ = state.kind == SearchState::kComplete && cfs_[kSearch] != nullptr;
    if (search_ready_ && state.stem != analyzer_.options().stem_english) {
      analyzer_ = search::Analyzer(search::AnalyzerOptions{.stem_english = state.stem});
    }
    return LoadSearchTotals();
  }
  if (!search_enabled_) {
    if (state.kind == SearchState::kOff) return Status::Ok();
    Txn off;
    TxnPut(off, kMeta, search_index::kStateKey, "off");
    std::unique_lock<std::mutex> lock(write_mu_);
    return Commit(off, lock);
  }
  const bool same = state.stem == options_.search_stem_english;
  if (state.kind == SearchState::kComplete && same) {
    search_ready_ = true;
    return LoadSearchTotals();
  }
  const bool resume = state.kind == SearchState::kBuilding && same;
  TIDINGS_RETURN_IF_ERROR(LoadSearchTotals());
  return BuildSearchIndex(!resume, resume ? state.cursor : "", options_.open_progress);
}

Status StoreImpl::RebuildSearchIndex(std::function<void(uint64_t, uint64_t)> progress) {
  TIDINGS_RETURN_IF_ERROR(CheckWritable());
  if (!search_enabled_) {
    return FailedPrecondition("the search index is off for this store; open it with the index on");
  }
  return BuildSearchIndex(/*from_scratch=*/true, "", progress);
}

Status StoreImpl::BuildSearchIndex(bool from_scratch, std::string cursor,
                                   const std::function<void(uint64_t, uint64_t)>& progress) {
  search_ready_ = false;
  const bool stem = analyzer_.options().stem_english;
  if (from_scratch) {
    std::unique_lock<std::mutex> lock(write_mu_);
    const std::string end(search_index::kPostingKeyBytes + 1, '\xff');
    Txn clear;
    clear.batch.DeleteRange(cfs_[kSearch], "", end).PermitUncheckedError();
    TxnDelete(clear, kMeta, search_index::kTotalsKey);
    TxnPut(clear, kMeta, search_index::kStateKey, EncodeState({SearchState::kBuilding, stem, ""}));
    TIDINGS_RETURN_IF_ERROR(Commit(clear, lock));
    search_totals_ = {};
    cursor.clear();
  }
  uint64_t total = 0, done = 0;
  db_->GetIntProperty(cfs_[kMessages], "rocksdb.estimate-num-keys", &total);
  for (bool more = true; more;) {
    std::unique_lock<std::mutex> lock(write_mu_);
    Txn txn;
    size_t n = 0;
    {
      std::shared_lock<std::shared_mutex> db_lock(db_mu_);
      std::unique_ptr<rocksdb::Iterator> it(
          db_->NewIterator(rocksdb::ReadOptions(), cfs_[kMessages]));
      it->Seek(cursor);
      if (it->Valid() && !cursor.empty() && it->key() == cursor) it->Next();
      std::string ad;
      for (; it->Valid() && n < kBuildChunk; it->Next(), ++n) {
        AdInto(&ad, kMessages, it->key().ToStringView());
        auto plain = sealer_->Open(ad, it->value().ToStringView());
        MessageRecord rec;
        if (!plain.ok() || !DecodeMessage(*plain, &rec)) {
          return DataLoss("a message record failed authentication; run `tidings verify`");
        }
        cursor = it->key().ToString();
        IndexMessage(txn, cursor, rec, /*add=*/true);
      }
      TIDINGS_RETURN_IF_ERROR(ReadDone(*it));
      more = n == kBuildChunk;
    }
    done += n;
    const SearchState next = more ? SearchState{SearchState::kBuilding, stem, cursor}
                                  : SearchState{SearchState::kComplete, stem, ""};
    TxnPut(txn, kMeta, search_index::kStateKey, EncodeState(next));
    TIDINGS_RETURN_IF_ERROR(Commit(txn, lock));
    if (progress) progress(done, std::max(total, done));
  }
  search_ready_ = true;
  return Status::Ok();
}

}  // namespace tidings::engine
