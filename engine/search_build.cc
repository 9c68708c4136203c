// The search index's life outside single writes: the state record, building
// the index of a store made before it (or after its settings changed),
// rebuilding on request, and verify's check that the postings are exactly
// what the messages make.
//
// State (meta "search_state", sealed like every record): "ranks complete
// S", "ranks building S CURSOR" or "off", where S is the stemming setting
// (0/1) and CURSOR the hex message key the build reached; "ranks" names the
// layout of engine/search_index.h (a state without it is an index of an
// older layout, built again: "docs", without ranks records; "blocks", whose
// blocks spelled every posting's message key; or no name, one record per
// posting). A build commits its postings, the totals and
// the cursor together every kBuildChunk messages, so a build killed at any
// point goes on from its last chunk.
#include <rocksdb/db.h>

#include <functional>
#include <span>

#include "engine/search_index.h"
#include "engine/store_impl.h"

namespace tidings::engine {
namespace {

constexpr size_t kBuildChunk = 1000;

struct SearchState {
  enum Kind { kMissing, kOff, kBuilding, kComplete } kind = kMissing;
  bool stem = false;
  std::string cursor;       // kBuilding: the last message key indexed
  bool old_layout = false;  // postings one record each: built again
};

constexpr std::string_view kLayout = "ranks ";
constexpr std::string_view kOlderLayouts[] = {"docs ", "blocks "};

std::string EncodeState(const SearchState& s) {
  switch (s.kind) {
    case SearchState::kComplete:
      return std::string(kLayout) + "complete " + (s.stem ? "1" : "0");
    case SearchState::kBuilding:
      return std::string(kLayout) + "building " + (s.stem ? "1 " : "0 ") +
             crypto::HexEncode(s.cursor);
    default:
      return "off";
  }
}

bool DecodeState(std::string_view in, SearchState* s) {
  if (in == "off") {
    s->kind = SearchState::kOff;
    return true;
  }
  if (in.starts_with(kLayout)) {
    in.remove_prefix(kLayout.size());
  } else {
    s->old_layout = true;
    for (std::string_view older : kOlderLayouts) {
      if (in.starts_with(older)) in.remove_prefix(older.size());
    }
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
           crypto::HexDecode(in.substr(11), &s->cursor);
  }
  return false;
}

}  // namespace

Status StoreImpl::LoadSearchTotals() {
  Txn txn;
  TIDINGS_ASSIGN_OR_RETURN(auto v, TxnRead(txn, kMeta, search_index::kTotalsKey));
  search_totals_ = {};
  if (!v.has_value()) return Status::Ok();
  if (v->size() != 16) {
    return DataLoss(
        "the search index's totals record is corrupt; rebuild it with `tidings search --rebuild`");
  }
  search_totals_.messages = GetFixed64BE(v->data());
  search_totals_.terms = GetFixed64BE(v->data() + 8);
  return Status::Ok();
}

Status StoreImpl::PrepareSearchIndex() {
  // The index is derived data: a damaged state or totals record never keeps
  // the store from opening. A reader cannot search (Search and verify say
  // so); a writer builds the index again.
  Txn txn;
  SearchState state;
  bool damaged = false;
  auto raw = TxnRead(txn, kMeta, search_index::kStateKey);
  if (!raw.ok() || (raw->has_value() && !DecodeState(**raw, &state))) {
    state = {};
    damaged = true;
  }
  const bool totals_ok = LoadSearchTotals().ok();
  damaged = damaged || !totals_ok;
  const bool stem = options_.search_stem_english.value_or(
      state.kind == SearchState::kMissing ? false : state.stem);
  if (options_.read_only) {
    // The index as the writer made it, with the writer's settings.
    search_ready_ = !damaged && !state.old_layout && state.kind == SearchState::kComplete &&
                    cfs_[kSearch] != nullptr;
    if (state.stem != analyzer_.options().stem_english) {
      analyzer_ = search::Analyzer(search::AnalyzerOptions{.stem_english = state.stem});
    }
    return Status::Ok();
  }
  if (stem != analyzer_.options().stem_english) {
    analyzer_ = search::Analyzer(search::AnalyzerOptions{.stem_english = stem});
  }
  if (!search_enabled_) {
    if (state.kind == SearchState::kOff && !damaged) return Status::Ok();
    Txn off;
    TxnPut(off, kMeta, search_index::kStateKey, "off");
    std::unique_lock<std::mutex> lock(write_mu_);
    return Commit(off, lock);
  }
  const bool same = !damaged && !state.old_layout && state.stem == stem;
  if (same) TIDINGS_RETURN_IF_ERROR(LoadSearchTail());  // else the build clears it
  if (state.kind == SearchState::kComplete && same) {
    search_ready_ = true;
    return Status::Ok();
  }
  const bool resume = state.kind == SearchState::kBuilding && same;
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
  const bool stem = analyzer_.options().stem_english;
  {
    // From here writers index only what the build has passed (IndexMessage
    // skips keys beyond build_cursor_), so nothing is counted twice.
    std::unique_lock<std::mutex> lock(write_mu_);
    search_ready_ = false;
    building_ = true;
    build_cursor_ = from_scratch ? std::string() : cursor;
    if (from_scratch) {
      const std::string end(search_index::kTailKeyBytes + 1, '\xff');  // past every key
      Txn clear;
      clear.batch.DeleteRange(cfs_[kSearch], "", end).PermitUncheckedError();
      clear.search_tail_clear = true;
      // Commit zeroes the totals under the lock, with the state.
      clear.indexed_messages = -static_cast<int64_t>(search_totals_.messages);
      clear.indexed_terms = -static_cast<int64_t>(search_totals_.terms);
      TxnPut(clear, kMeta, search_index::kStateKey,
             EncodeState({SearchState::kBuilding, stem, ""}));
      Status s = Commit(clear, lock);
      if (!s.ok()) {
        if (!lock.owns_lock()) lock.lock();
        building_ = false;
        return s;
      }
      cursor.clear();
    }
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
        cursor = it->key().ToString();
        build_cursor_ = cursor;
        AdInto(&ad, kMessages, it->key().ToStringView());
        auto plain = sealer_->Open(ad, it->value().ToStringView());
        MessageRecord rec;
        // A record that fails authentication is left out: verify reports
        // it, and the store opens all the same.
        if (!plain.ok() || !DecodeMessage(*plain, &rec)) continue;
        IndexMessage(txn, cursor, rec, /*add=*/true);
      }
      if (Status read = ReadDone(*it); !read.ok()) {
        building_ = false;
        return read;
      }
      more = n == kBuildChunk;
    }
    if (!more) building_ = false;  // under write_mu_: writers index everything again
    done += n;
    const SearchState next = more ? SearchState{SearchState::kBuilding, stem, cursor}
                                  : SearchState{SearchState::kComplete, stem, ""};
    TxnPut(txn, kMeta, search_index::kStateKey, EncodeState(next));
    Status s = Commit(txn, lock);
    if (!s.ok()) {
      if (!lock.owns_lock()) lock.lock();
      building_ = false;
      return s;
    }
    if (progress) progress(done, std::max(total, done));
  }
  search_ready_ = true;
  return Status::Ok();
}

}  // namespace tidings::engine
