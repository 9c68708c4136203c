// Verify: decrypts and checks every record, then the indexes across them -
// the by-id index against the messages, each conversation record's counts
// against its messages, and outbox entries that refer to
// their message's body against that message, and that a purge left nothing
// at or below a conversation's purge watermark (engine/retention.cc), and
// that the search index holds exactly the postings the messages make.
#include <rocksdb/table.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <unordered_map>

#include "engine/search_index.h"
#include "engine/store_impl.h"

namespace tidings::engine {
namespace {

// The footer fields no block checksum covers: the checksum type (a flip to
// kNoChecksum turns every check of the table off) and the format version
// (5 -> 4 still reads). Tables are written with the defaults; 53 bytes is the
// footer of format versions 1 to 5. Returns one problem per table that
// differs, none for a table it cannot read (VerifyChecksum reports those).
std::vector<std::string> CheckFooters(rocksdb::DB* db, rocksdb::Env* env) {
  constexpr size_t kFooterBytes = 53;
  const rocksdb::BlockBasedTableOptions defaults;
  std::vector<std::string> problems;
  std::vector<rocksdb::LiveFileMetaData> live;
  db->GetLiveFilesMetaData(&live);
  for (const auto& f : live) {
    const std::string path = f.db_path + f.name;
    std::unique_ptr<rocksdb::RandomAccessFile> file;
    uint64_t size = 0;
    if (!env->GetFileSize(path, &size).ok() || size < kFooterBytes ||
        !env->NewRandomAccessFile(path, &file, rocksdb::EnvOptions()).ok()) {
      continue;
    }
    char scratch[kFooterBytes];
    rocksdb::Slice footer;
    if (!file->Read(size - kFooterBytes, kFooterBytes, &footer, scratch).ok() ||
        footer.size() != kFooterBytes) {
      continue;
    }
    uint32_t version = 0;
    std::memcpy(&version, footer.data() + kFooterBytes - 12, 4);  // little-endian, as written
    if (static_cast<uint8_t>(footer[0]) != defaults.checksum ||
        version != defaults.format_version) {
      problems.push_back("table " + f.name + ": footer names checksum type " +
                         std::to_string(static_cast<uint8_t>(footer[0])) + ", format version " +
                         std::to_string(version) + " (altered)");
    }
  }
  return problems;
}

}  // namespace

// What the scan of the records found, for the cross-checks after it.
struct StoreImpl::VerifyScan {
  VerifyReport report;
  std::map<std::string, std::string> indexed;            // by_id key -> message key, as stored
  std::map<std::string, std::string> expected;           // IdKey(message id) -> its message key
  std::map<std::string, uint64_t> message_keys;          // -> the send entry it may back
  std::vector<std::pair<std::string, uint64_t>> by_ref;  // (by_id key, seq) of such entries
  std::map<std::string, OrderKey> watermarks;            // ConvKey -> purge watermark
  // ConvKey -> what its record's counts cover (read before the scan) and
  // what its messages make.
  struct Counts {
    OrderKey last_order, marker;
    uint64_t visible = 0, unread = 0;
  };
  std::map<std::string, Counts> counts;
  std::set<std::string> purged;  // IdKey of purged messages
  // The search index, compared as order-independent digests of (key, value)
  // pairs: what the messages make against what the family holds.
  struct Digest {
    uint64_t count = 0, sum = 0, mixed = 0;
    void Add(const std::string& hash16) {
      count++;
      sum += GetFixed64BE(hash16.data());
      mixed ^= GetFixed64BE(hash16.data() + 8);
    }
    bool operator==(const Digest&) const = default;
  };
  bool check_search = false;
  Digest postings_expected, postings_found;
  uint64_t indexed_messages = 0, indexed_terms = 0;
  uint64_t index_messages_found = 0;         // tail and folded records: one per indexed message
  const rocksdb::ReadOptions* ro = nullptr;  // the scan's snapshot
  // Docs and ranks records that postings and folded records name, by key.
  static constexpr size_t kMaxIndexRecordBytes = 64 << 20;
  std::unordered_map<std::string, std::string> index_records;
  size_t index_record_bytes = 0;
  // Documents and ranks not zeroed, and folded records: equal in an index
  // whose removals left no key behind.
  uint64_t live_documents = 0, live_ranks = 0, folded_found = 0;
  // Attachments: references the messages make, by object, against the
  // objects' records (each with its content key, to check its file).
  std::map<std::string, uint64_t> attachment_refs;
  std::map<std::string, AttachmentRecord> attachments;

  void Problem(std::string detail) {
    report.problems++;
    if (report.details.size() < 100) report.details.push_back(std::move(detail));
  }
};

Result<VerifyReport> StoreImpl::Verify(std::function<void(uint64_t, uint64_t)> progress) {
  VerifyScan scan;
  VerifyReport& report = scan.report;
  std::shared_lock<std::shared_mutex> lock(db_mu_);
  uint64_t total = 0;
  scan.check_search = search_ready_ && search_enabled_ && cfs_[kSearch] != nullptr;
  for (int cf = 1; cf < kNumCf; ++cf) {
    if (cfs_[static_cast<size_t>(cf)] == nullptr) continue;
    uint64_t n = 0;
    db_->GetIntProperty(cfs_[static_cast<size_t>(cf)], "rocksdb.estimate-num-keys", &n);
    total += n;
  }
  // Every block of every table against its checksum, meta blocks included:
  // the record scan below reads data blocks only, and RocksDB opens a table
  // whose properties block is damaged with a warning.
  if (auto s = db_->VerifyChecksum(); !s.ok()) scan.Problem("table checksums: " + s.ToString());
  for (auto& problem : CheckFooters(db_, env_.get())) scan.Problem(std::move(problem));
  // One snapshot, so records written while verifying do not look inconsistent.
  auto snapshot = ConsistentView();
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot ? snapshot->snapshot() : nullptr;
  ro.verify_checksums = true;
  ro.fill_cache = false;
  scan.ro = &ro;
  // What each conversation record's counts cover, for the messages to be
  // counted against as they are read.
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[kConversations]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto plain =
          sealer_->Open(Ad(kConversations, it->key().ToString()), it->value().ToStringView());
      Conversation c;
      if (!plain.ok() || !DecodeConversation(*plain, &c)) continue;  // reported by the scan
      auto& counts = scan.counts[it->key().ToString()];
      counts.last_order = c.last_order;
      if (auto m = c.read_markers.find(user_id_); m != c.read_markers.end()) {
        counts.marker = m->second;
      }
    }
  }
  for (int cf = 1; cf < kNumCf; ++cf) {
    if (cfs_[static_cast<size_t>(cf)] == nullptr) continue;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cfs_[static_cast<size_t>(cf)]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      report.records_checked++;
      if (progress && report.records_checked % 1024 == 0) progress(report.records_checked, total);
      const std::string key = it->key().ToString();
      auto plain = sealer_->Open(Ad(cf, key), it->value().ToStringView());
      const std::string where =
          std::string(kCfNames[cf]) + " record " +
          crypto::HexEncode(std::string_view(key).substr(0, std::min<size_t>(key.size(), 32)));
      if (!plain.ok()) {
        scan.Problem(where + ": failed authentication");
        continue;
      }
      if (!VerifyRecord(cf, key, *plain, scan)) {
        scan.Problem(where + ": undecodable or misplaced record");
      }
    }
    if (!it->status().ok()) {
      scan.Problem(std::string(kCfNames[cf]) + ": " + it->status().ToString());
    }
  }
  if (auto damaged = watch_.status(); !damaged.ok()) scan.Problem(damaged.message());
  CrossCheck(scan);
  CheckAttachments(scan);
  if (scan.check_search) CheckSearchIndex(scan, ro);
  if (progress) progress(report.records_checked, std::max(total, report.records_checked));
  return std::move(scan.report);
}

bool StoreImpl::VerifyRecord(int cf, const std::string& key, std::string_view plain,
                             VerifyScan& scan) {
  switch (cf) {
    case kMessages: {
      MessageRecord rec;
      bool ok = DecodeMessage(plain, &rec) && key == MsgKey(rec.m.conversation_id, rec.m.order);
      if (ok && rec.m.id.empty()) ok = false;
      if (ok) {
        scan.message_keys.emplace(key, rec.send_seq);
        scan.expected.emplace(IdKey(rec.m.id), key);
        auto counts = scan.counts.find(key.substr(0, key.size() - 16));
        if (counts != scan.counts.end() && !rec.m.deleted &&
            !(counts->second.last_order < rec.m.order)) {
          counts->second.visible++;
          counts->second.unread += rec.m.sender != user_id_ && counts->second.marker < rec.m.order;
        }
        for (const auto& a : rec.m.attachments) scan.attachment_refs[a.object]++;
      }
      if (ok && scan.check_search) {
        const size_t terms =
            ForEachPosting(key, rec, [&](const std::string& k, const std::string& v) {
              scan.postings_expected.Add(Hash16('v', k + v));
            });
        if (terms != 0) {
          scan.indexed_messages++;
          scan.indexed_terms += terms;
        }
      }
      return ok;
    }
    case kById:
      scan.indexed[key] = std::string(plain);
      return true;
    case kOutbox: {
      OutboxRecord r;
      bool ok = key.size() == 8 && DecodeOutbox(plain, &r);
      if (ok && r.body_by_ref) {
        scan.by_ref.emplace_back(IdKey(r.e.op.message_id), GetFixed64BE(key.data()));
      }
      return ok;
    }
    case kConversations: {
      Conversation c;
      bool counted = false;
      if (!DecodeConversation(plain, &c, &counted) || key != ConvKey(c.id)) return false;
      CheckCounts(key, c, counted, scan);
      return true;
    }
    case kPending: {
      Operation op;
      return DecodeOperation(plain, &op);
    }
    case kSearch: {
      using namespace search_index;
      const auto found = [&](std::string_view term, std::string_view message_key,
                             std::string_view value) {
        std::string posting(term);
        posting.append(message_key).append(value);
        scan.postings_found.Add(Hash16('v', posting));
      };
      // A docs or ranks record, read once at the scan's snapshot. The cache
      // is emptied between postings only, so what one posting reads stays
      // valid while it is checked.
      auto record = [&](std::string record_key) -> const std::string& {
        auto it = scan.index_records.find(record_key);
        if (it == scan.index_records.end()) {
          auto read = ReadSealedLocked(kSearch, record_key, *scan.ro);
          it = scan.index_records
                   .emplace(std::move(record_key),
                            read.ok() && read->has_value() ? std::move(**read) : std::string())
                   .first;
          scan.index_record_bytes += it->second.size();
        }
        return it->second;
      };
      auto bound_records = [&] {
        if (scan.index_record_bytes < VerifyScan::kMaxIndexRecordBytes) return;
        scan.index_records.clear();
        scan.index_record_bytes = 0;
      };
      // The live entries of a docs or ranks record.
      auto live = [](std::string_view entries, size_t bytes) {
        uint64_t n = 0;
        for (size_t at = 0; at + bytes <= entries.size(); at += bytes) {
          n += entries.substr(at, bytes).find_first_not_of('\0') != std::string_view::npos;
        }
        return n;
      };
      switch (key.empty() ? '\0' : key[0]) {
        case kTailTag: {
          MessagePostings m;
          if (key.size() != kTailKeyBytes || !DecodeTail(plain, &m)) return false;
          for (const auto& [term, value] : m.postings) found(term, key.substr(1), value);
          scan.index_messages_found++;
          return true;
        }
        case kBlockTag: {
          if (key.size() != kBlockKeyBytes) return false;
          const uint64_t fold = GetFixed64BE(key.data() + 1 + kTermHashBytes);
          BlockReader reader(plain);
          uint32_t doc = 0;
          std::string_view positions;
          std::string value;
          Doc d;
          while (reader.Next(&doc, &positions)) {
            bound_records();
            // Its document, and its rank, which must say what the document says.
            Rank rank;
            if (!DocAt(record(DocsKey(fold, doc / kDocsPerChunk)), doc, &d) ||
                !DecodePositions(positions, nullptr) ||
                !RankAt(record(RanksKey(fold)), doc, &rank) ||
                rank.message_terms != d.message_terms ||
                rank.order != d.message_key.substr(kMessageKeyBytes - kOrderKeyBytes)) {
              return false;
            }
            value.clear();
            EncodePosting(d.message_terms, d.sender, positions, &value);
            found(std::string_view(key).substr(1, kTermHashBytes), d.message_key, value);
          }
          return reader.ok();
        }
        case kDocsTag:
          if (key.size() != kDocsKeyBytes || !ValidDocs(plain)) return false;
          scan.live_documents += live(plain, kDocBytes);
          return true;
        case kRanksTag:
          if (key.size() != kRanksKeyBytes || !ValidRanks(plain)) return false;
          scan.live_ranks += live(plain, kRankBytes);
          return true;
        case kFoldedTag: {
          if (key.size() != kTailKeyBytes || plain.size() != kFoldedValueBytes) return false;
          // It names a document of its fold that is this message's.
          bound_records();
          const uint64_t fold = GetFixed64BE(plain.data());
          const uint32_t doc = GetFixed32BE(plain.data() + kFoldIdBytes);
          Doc d;
          if (!DocAt(record(DocsKey(fold, doc / kDocsPerChunk)), doc, &d) ||
              d.message_key != std::string_view(key).substr(1)) {
            return false;
          }
          scan.index_messages_found++;
          scan.folded_found++;
          return true;
        }
        default:
          return false;
      }
    }
    case kAttachments: {
      if (key.size() == 33 && key[0] == kFingerprintPrefix) return plain.size() == 32;
      AttachmentRecord r;
      if (key.size() != 33 || key[0] != kObjectPrefix || !DecodeAttachment(plain, &r) ||
          r.info.object != std::string_view(key).substr(1)) {
        return false;
      }
      scan.attachments.emplace(r.info.object, std::move(r));
      return true;
    }
    case kCursors:
      if (key.size() == 17 && key[0] == kGapPrefix) {
        std::string before;
        return DecodeGap(plain, &before);
      }
      return true;
    case kMeta:
      if (key.starts_with(kWatermarkPrefix)) {
        return OrderKey::Decode(plain, &scan.watermarks[key.substr(sizeof(kWatermarkPrefix) - 1)]);
      }
      if (key.starts_with(kPurgedPrefix)) scan.purged.insert(key.substr(sizeof(kPurgedPrefix) - 1));
      return true;
    default:
      return true;
  }
}

void StoreImpl::CheckSearchIndex(VerifyScan& scan, const rocksdb::ReadOptions& ro) {
  const auto& want = scan.postings_expected;
  const auto& have = scan.postings_found;
  if (!(want == have)) {
    scan.Problem("search index: " + std::to_string(have.count) + " postings differ from the " +
                 std::to_string(want.count) +
                 " the messages make; rebuild it with `tidings search --rebuild`");
  }
  std::string totals;
  auto s = db_->Get(ro, cfs_[kMeta], search_index::kTotalsKey, &totals);
  uint64_t messages = 0, terms = 0;
  if (s.ok()) {
    auto plain = sealer_->Open(Ad(kMeta, search_index::kTotalsKey), totals);
    if (plain.ok() && plain->size() == 16) {
      messages = GetFixed64BE(plain->data());
      terms = GetFixed64BE(plain->data() + 8);
    }
  }
  if (scan.index_messages_found != scan.indexed_messages) {
    scan.Problem("search index: " + std::to_string(scan.index_messages_found) +
                 " messages have postings, " + std::to_string(scan.indexed_messages) +
                 " should; rebuild it with `tidings search --rebuild`");
  }
  if (messages != scan.indexed_messages || terms != scan.indexed_terms) {
    scan.Problem("search index: its totals (" + std::to_string(messages) +
                 " messages) differ from " + std::to_string(scan.indexed_messages) +
                 " indexed; rebuild it with `tidings search --rebuild`");
  }
  // A document or rank no folded record names is a key left behind.
  if (scan.live_documents != scan.folded_found || scan.live_ranks != scan.folded_found) {
    scan.Problem("search index: " + std::to_string(scan.live_documents) + " documents and " +
                 std::to_string(scan.live_ranks) + " ranks for " +
                 std::to_string(scan.folded_found) +
                 " folded messages; rebuild it with `tidings search --rebuild`");
  }
}

void StoreImpl::CrossCheck(VerifyScan& scan) {
  // The by-id index against the messages.
  for (const auto& [id_key, msg_key] : scan.expected) {
    auto entry = scan.indexed.find(id_key);
    if (entry == scan.indexed.end()) {
      scan.Problem("message " + crypto::HexEncode(id_key) + ": missing from the by-id index");
    } else if (entry->second != msg_key) {
      scan.Problem("by-id entry " + crypto::HexEncode(id_key) +
                   ": points to another message's key");
    }
  }
  for (const auto& [id_key, msg_key] : scan.indexed) {
    if (scan.message_keys.count(msg_key) == 0) {
      scan.Problem("by-id entry " + crypto::HexEncode(id_key) + ": points to a missing message");
    }
  }
  // A purge leaves nothing at or below a conversation's watermark, and no
  // message it marked purged.
  for (const auto& [msg_key, seq] : scan.message_keys) {
    OrderKey order;
    auto wm = scan.watermarks.find(msg_key.substr(0, 16));
    if (wm != scan.watermarks.end() && OrderKey::Decode(msg_key.substr(16), &order) &&
        !(wm->second < order)) {
      scan.Problem("message " + crypto::HexEncode(msg_key) +
                   ": at or below its conversation's purge watermark");
    }
  }
  for (const auto& [id_key, msg_key] : scan.expected) {
    if (scan.purged.count(id_key) != 0) {
      scan.Problem("message " + crypto::HexEncode(msg_key) + ": purged, yet still stored");
    }
  }
  // An outbox entry that refers to its message's body needs that message,
  // still marked as backing it.
  for (const auto& [id_key, seq] : scan.by_ref) {
    auto loc = scan.expected.find(id_key);
    auto msg =
        loc == scan.expected.end() ? scan.message_keys.end() : scan.message_keys.find(loc->second);
    if (msg == scan.message_keys.end() || msg->second != seq) {
      scan.Problem("outbox entry " + std::to_string(seq) +
                   ": refers to the body of a message that is missing or was changed");
    }
  }
}

// A record (a checkpoint, engine/store_impl.h) counts the visible and the
// unread messages up to its last order.
void StoreImpl::CheckCounts(const std::string& key, const Conversation& c, bool counted,
                            VerifyScan& scan) {
  uint64_t visible = 0, unread = 0;
  if (auto it = scan.counts.find(key); it != scan.counts.end()) {
    visible = it->second.visible;
    unread = it->second.unread;
  }
  if (visible != c.message_count || (counted && unread != c.unread_count)) {
    scan.Problem("conversation record " + crypto::HexEncode(key) + ": counts " +
                 std::to_string(c.message_count) + " messages, " + std::to_string(c.unread_count) +
                 " unread; its messages make " + std::to_string(visible) + " and " +
                 std::to_string(unread) + " (the counts are shown only; no message is affected)");
  }
}

// Each object's record counts the messages that hold it, and an object the
// device holds opens whole under its key (name and every chunk).
void StoreImpl::CheckAttachments(VerifyScan& scan) {
  for (const auto& [object, refs] : scan.attachment_refs) {
    if (!scan.attachments.contains(object)) {
      scan.Problem("attachment object " + crypto::HexEncode(object) +
                   ": messages hold it but it has no record");
    }
  }
  for (auto& [object, r] : scan.attachments) {
    auto counted = scan.attachment_refs.find(object);
    const uint64_t refs = counted == scan.attachment_refs.end() ? 0 : counted->second;
    if (refs != r.info.references && !(refs == 0 && r.info.references == 0)) {
      scan.Problem("attachment object " + crypto::HexEncode(object) + ": its record counts " +
                   std::to_string(r.info.references) + " references, messages hold " +
                   std::to_string(refs));
    }
    if (!r.info.held()) continue;
    auto key = crypto::SecretKey::FromBytes(r.content_key);
    crypto::Wipe(&r.content_key);
    if (!key.ok()) continue;
    scan.report.records_checked++;
    if (!attachment_files_.Has(object)) {
      scan.Problem("attachment object " + crypto::HexEncode(object) +
                   ": held by its record, but the file is "
                   "missing");
    } else if (auto s = attachment_files_.Check(object, *key); !s.ok()) {
      scan.Problem("attachment object " + crypto::HexEncode(object) + ": " + s.message());
    }
  }
}

}  // namespace tidings::engine
