// Corruption never hides: one flipped bit anywhere in a table - data, index,
// filter, properties, metaindex, footer - is a DATA_LOSS on the open or the
// read that meets it and a problem `verify` reports, never a shorter history
// with OK. The tables are found through their own structure (footer, then
// metaindex), read in plaintext through the file cipher's keystream; a bit
// flipped in the ciphertext flips the same plaintext bit (XChaCha20).
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <random>

#include "crypto/keys.h"
#include "crypto/stream_cipher.h"
#include "engine/corruption_watch.h"
#include "store_test_util.h"
#include "tests/common/test_files.h"

namespace tidings::engine {
namespace {

using testing::ReadWholeFile;

constexpr size_t kPrefixBytes = 64;  // engine/encrypted_env.cc: marker + nonce
constexpr size_t kNonceAt = 8;
constexpr int kMessages = 40;

// The plaintext of an encrypted file (without its prefix).
std::string Decrypt(const std::string& file) {
  std::string raw = ReadWholeFile(file);
  uint8_t bytes[32];
  for (auto& b : bytes) b = 7;  // TestKey()
  auto master = crypto::SecretKey::FromBytes(bytes);
  auto key = crypto::DeriveSubkey(*master, crypto::Purpose::kFileCipher);
  auto stream = crypto::XChaCha20Stream::Create(
      *key, reinterpret_cast<const uint8_t*>(raw.data()) + kNonceAt);
  std::string plain = raw.substr(kPrefixBytes);
  stream->XorAt(kPrefixBytes, reinterpret_cast<uint8_t*>(plain.data()), plain.size());
  return plain;
}

bool GetVarint(std::string_view* in, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift <= 63 && !in->empty(); shift += 7) {
    uint8_t b = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    *v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

struct Handle {
  uint64_t offset = 0, size = 0;
};

bool GetHandle(std::string_view* in, Handle* h) {
  return GetVarint(in, &h->offset) && GetVarint(in, &h->size);
}

// The entries of an uncompressed block written with restart interval 1 (the
// metaindex and properties blocks): key -> value.
std::map<std::string, std::string> BlockEntries(std::string_view block) {
  std::map<std::string, std::string> out;
  if (block.size() < 4) return out;
  uint32_t restarts = 0;
  std::memcpy(&restarts, block.data() + block.size() - 4, 4);  // little-endian host
  restarts &= 0x7fffffff;
  std::string_view in = block.substr(0, block.size() - 4 - 4 * static_cast<size_t>(restarts));
  std::string key;
  while (!in.empty()) {
    uint64_t shared, non_shared, value_len;
    if (!GetVarint(&in, &shared) || !GetVarint(&in, &non_shared) || !GetVarint(&in, &value_len) ||
        in.size() < non_shared + value_len || shared > key.size()) {
      break;
    }
    key = key.substr(0, shared) + std::string(in.substr(0, non_shared));
    out[key] = std::string(in.substr(non_shared, value_len));
    in.remove_prefix(non_shared + value_len);
  }
  return out;
}

// A byte range [begin, end) of the plaintext table.
struct Region {
  size_t begin = 0, end = 0;
};

struct Table {
  std::string path;    // the SST file
  std::string family;  // its column family
  std::map<std::string, Region> regions;
};

// A block-based table's regions by block type, from its footer (format
// version 1-5: checksum type, two handles, padding, version, magic; 53 bytes)
// and metaindex. Blocks include their 5-byte trailer; the footer's zero
// padding, which nothing reads, is left out.
Table Layout(const std::string& path) {
  Table t;
  t.path = path;
  const std::string plain = Decrypt(path);
  constexpr size_t kFooter = 53, kTrailer = 5;
  EXPECT_GT(plain.size(), kFooter);
  std::string_view footer = std::string_view(plain).substr(plain.size() - kFooter);
  std::string_view handles = footer.substr(1);
  Handle metaindex, index;
  EXPECT_TRUE(GetHandle(&handles, &metaindex) && GetHandle(&handles, &index));
  const size_t handle_end = plain.size() - handles.size();
  const auto block = [&](Handle h) { return Region{h.offset, h.offset + h.size + kTrailer}; };
  t.regions["footer"] = {plain.size() - kFooter, handle_end};
  t.regions["footer "] = {plain.size() - 12, plain.size()};  // version + magic
  t.regions["index"] = block(index);
  t.regions["metaindex"] = block(metaindex);
  size_t first_meta = index.offset;
  for (const auto& [name, value] :
       BlockEntries(std::string_view(plain).substr(metaindex.offset, metaindex.size))) {
    std::string_view v = value;
    Handle h;
    if (!GetHandle(&v, &h)) continue;
    first_meta = std::min<size_t>(first_meta, h.offset);
    if (name == "rocksdb.properties") {
      t.regions["properties"] = block(h);
      for (const auto& [prop, pv] :
           BlockEntries(std::string_view(plain).substr(h.offset, h.size))) {
        if (prop == "rocksdb.column.family.name") t.family = pv;
      }
    } else if (name.find("filter.") != std::string::npos) {
      t.regions["filter"] = block(h);
    }
  }
  t.regions["data"] = {0, first_meta};
  return t;
}

std::vector<Table> Tables(const std::string& store) {
  std::vector<Table> out;
  for (const auto& e : fs::directory_iterator(fs::path(store) / "db")) {
    if (e.path().extension() == ".sst") out.push_back(Layout(e.path().string()));
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.path < b.path; });
  return out;
}

void FlipBit(const std::string& file, size_t plain_offset, int bit) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  const auto at = static_cast<std::streamoff>(kPrefixBytes + plain_offset);
  f.seekg(at);
  char c = 0;
  f.get(c);
  f.seekp(at);
  f.put(static_cast<char>(c ^ (1 << bit)));
}

std::string Body(int i) { return "message " + std::to_string(i) + std::string(300, 'x'); }

// How the 40 messages of conversation "c" were written.
enum class Made {
  kFlushed,    // one writer, then a flush: level-0 tables
  kCompacted,  // the same, compacted to the last level
  kOneShot,    // one open/send/close each, as `tidings send` does
};

// Header format 3: its file key derives from the test key, so Decrypt can
// find the blocks (format 4 wraps a random data key). RocksDB's tables, and
// how a damaged one is caught, are the same in every format.
StoreOptions DecryptableOptions() {
  StoreOptions o = CreateOptions();
  o.create_format = 3;
  return o;
}

void MakeStore(const std::string& path, Made how) {
  if (how == Made::kOneShot) {
    for (int i = 0; i < kMessages; ++i) {
      auto store = MustOpen(path, DecryptableOptions());
      ASSERT_TRUE(store->Send(Msg("c", Body(i))).ok());
    }
    return;
  }
  auto store = MustOpen(path, DecryptableOptions());
  for (int i = 0; i < kMessages; ++i) ASSERT_TRUE(store->Send(Msg("c", Body(i))).ok());
  ASSERT_TRUE(store->Flush().ok());
  if (how == Made::kCompacted) {
    ASSERT_TRUE(store->Compact().ok());
  }
}

const char* Name(Made how) {
  return how == Made::kFlushed ? "flushed" : how == Made::kCompacted ? "compacted" : "one-shot";
}

struct Outcome {
  bool detected = false;   // some open or read said DATA_LOSS
  bool verified = false;   // verify reported it (or could not open)
  bool shortened = false;  // a read returned a wrong history with OK
};

// Opens the store as `tidings log`/`export`/`verify` do and reads everything.
Outcome ReadBack(const std::string& path, bool read_only) {
  Outcome out;
  StoreOptions o;
  o.read_only = read_only;
  auto store = Store::Open(path, TestKey(), o);
  if (!store.ok()) {
    EXPECT_EQ(store.status().code(), Code::kDataLoss) << store.status().ToString();
    out.detected = out.verified = true;
    return out;
  }
  const auto loss = [&](const Status& s) {
    EXPECT_EQ(s.code(), Code::kDataLoss) << s.ToString();
    out.detected = true;
  };
  auto page = (*store)->Page({.conversation_id = "c", .limit = 1000});
  if (!page.ok()) {
    loss(page.status());
  } else {
    out.shortened = page->size() != kMessages;
    for (size_t i = 0; i < page->size() && !out.shortened; ++i) {
      out.shortened = (*page)[i].body != Body(static_cast<int>(i));
    }
  }
  for (size_t newest : {1, 10}) {
    auto p = (*store)->Page({.conversation_id = "c", .limit = newest});
    if (!p.ok()) {
      loss(p.status());
    } else if (p->size() != newest || p->back().body != Body(kMessages - 1)) {
      out.shortened = true;
    }
  }
  int seen = 0;
  Status each = (*store)->ForEachMessage([&](const Message&) {
    ++seen;
    return Status::Ok();
  });
  if (!each.ok()) {
    loss(each);
  } else if (seen != kMessages) {
    out.shortened = true;
  }
  auto convs = (*store)->Conversations(0);
  if (!convs.ok()) loss(convs.status());
  auto report = (*store)->Verify(nullptr);
  out.verified = !report.ok() || report->problems > 0;
  return out;
}

// Whether flipping `bit` at `offset` of table `plain` leaves its footer's
// handles decoding to the same values: the continuation bit of a handle's
// last varint byte, followed by a zero padding byte, only lengthens the
// encoding. Such a flip changes nothing anyone reads, so nothing can see it.
bool FooterValuesUnchanged(std::string plain, size_t offset, int bit) {
  constexpr size_t kFooter = 53;
  const auto handles = [&] {
    std::string_view in = std::string_view(plain).substr(plain.size() - kFooter + 1);
    Handle a, b;
    GetHandle(&in, &a);
    GetHandle(&in, &b);
    return std::vector<uint64_t>{a.offset, a.size, b.offset, b.size};
  };
  const auto before = handles();
  plain[offset] = static_cast<char>(plain[offset] ^ (1 << bit));
  return handles() == before;
}

struct Tally {
  int tried = 0, detected = 0, verified = 0, shortened = 0, no_op = 0;
};

// Flips `per_region` bits at random places of every region of every table
// of a pristine store, one at a time, on a copy. Returns the tally by block
// type; every trial must be detected by verify and none may shorten history.
std::map<std::string, Tally> Sweep(Made how, int per_region, uint32_t seed,
                                   const std::string& only_family = "",
                                   const std::string& only_region = "") {
  TempDir pristine, work;
  MakeStore(pristine.path(), how);
  std::map<std::string, Tally> tally;
  std::mt19937 rng(seed);
  for (const Table& table : Tables(pristine.path())) {
    if (!only_family.empty() && table.family != only_family) continue;
    const std::string plain = Decrypt(table.path);
    for (const auto& [type, region] : table.regions) {
      if (!only_region.empty() && type != only_region) continue;
      const std::string name = type == "footer " ? "footer" : type;
      for (int n = 0; n < per_region && region.end > region.begin; ++n) {
        const size_t size = region.end - region.begin;
        // Spread evenly, jittered: every part of small blocks is hit.
        size_t offset = region.begin + (size * static_cast<size_t>(n)) / per_region +
                        rng() % std::max<size_t>(1, size / per_region);
        offset = std::min(offset, region.end - 1);
        const int bit = static_cast<int>(rng() % 8);
        const std::string trial = work / "trial";
        fs::remove_all(trial);
        fs::copy(pristine.path(), trial, fs::copy_options::recursive);
        FlipBit(trial + "/db/" + fs::path(table.path).filename().string(), offset, bit);
        Outcome o = ReadBack(trial, /*read_only=*/n % 2 == 0);
        Tally& t = tally[name];
        t.tried++;
        t.detected += o.detected;
        t.verified += o.verified;
        t.shortened += o.shortened;
        EXPECT_FALSE(o.shortened && !o.detected)
            << "a shorter or wrong history with OK: " << table.family << " table, " << name
            << " block, offset " << offset << " bit " << bit;
        const bool no_op = !o.verified && type == "footer" && offset != region.begin &&
                           FooterValuesUnchanged(plain, offset, bit);
        t.no_op += no_op;
        EXPECT_TRUE(o.verified || no_op) << "verify found nothing: " << table.family << " table, "
                                         << name << " block, offset " << offset << " bit " << bit;
      }
    }
  }
  return tally;
}

void Print(const std::string& what, const std::map<std::string, Tally>& tally) {
  for (const auto& [type, t] : tally) {
    std::cout << what << " " << type << ": tried " << t.tried << ", DATA_LOSS on open or read "
              << t.detected << ", verify " << t.verified << ", shorter history " << t.shortened
              << (t.no_op != 0 ? ", no-op encodings " + std::to_string(t.no_op) : "") << "\n";
  }
}

bool Soak() { return std::getenv("TIDINGS_SOAK") != nullptr; }

TEST(Corruption, LayoutFindsEveryBlockType) {
  TempDir dir;
  MakeStore(dir.path(), Made::kFlushed);
  auto tables = Tables(dir.path());
  bool messages = false;
  for (const auto& t : tables) {
    messages = messages || t.family == "messages";
    for (const char* type : {"data", "index", "filter", "properties", "metaindex", "footer"}) {
      ASSERT_EQ(t.regions.count(type), 1u) << type << " in " << t.path;
      EXPECT_LT(t.regions.at(type).begin, t.regions.at(type).end) << type;
    }
  }
  EXPECT_TRUE(messages);
}

// The reported case: a bit of a messages table's properties block. A store
// written by one-shot writers had more tables than RocksDB opens up front,
// and a table opened by a read despite a bad properties block hid records.
TEST(Corruption, PropertiesBlockFlipIsNeverAShorterHistory) {
  for (Made how : {Made::kOneShot, Made::kFlushed, Made::kCompacted}) {
    const int flips = how == Made::kOneShot ? (Soak() ? 8 : 1) : (Soak() ? 80 : 12);
    auto tally = Sweep(how, flips, 17, "messages", "properties");
    Print(std::string(Name(how)) + " properties", tally);
    ASSERT_EQ(tally.size(), 1u);
    EXPECT_EQ(tally.begin()->second.detected, tally.begin()->second.tried);
  }
}

TEST(Corruption, FlipsInEveryBlockTypeAreDetected) {
  const int per_region = Soak() ? 24 : 2;
  for (Made how : {Made::kFlushed, Made::kCompacted}) {
    auto tally = Sweep(how, per_region, how == Made::kCompacted ? 5 : 6);
    Print(Name(how), tally);
    for (const char* type : {"data", "index", "filter", "properties", "metaindex", "footer"}) {
      EXPECT_GT(tally[type].tried, 0) << type;
      EXPECT_EQ(tally[type].verified + tally[type].no_op, tally[type].tried) << type;
    }
  }
}

TEST(Corruption, WatchTellsCorruptionLinesFromOthers) {
  EXPECT_TRUE(CorruptionWatch::IsCorruptionLine(
      "Encountered error while reading data from properties block Corruption: block checksum "
      "mismatch: stored = 1, computed = 2 in /s/db/000012.sst offset 4000 size 300"));
  EXPECT_TRUE(CorruptionWatch::IsCorruptionLine("Cannot find Properties block from file."));
  EXPECT_FALSE(CorruptionWatch::IsCorruptionLine(
      "(ignoring error) /s/db/000004.log: dropping 32 bytes; Corruption: truncated record"));
  EXPECT_FALSE(CorruptionWatch::IsCorruptionLine("Deleting obsolete file 000012.sst failed"));
}

// No block checksum covers the footer's checksum type (kXXH3 = 4; bit 2
// flipped is kNoChecksum, which turns the table's checks off) or its format
// version (5; bit 0 flipped is 4, which still reads): verify compares them.
TEST(Corruption, FooterFieldsNoChecksumCoversFailVerify) {
  TempDir pristine, work;
  MakeStore(pristine.path(), Made::kFlushed);
  for (const Table& table : Tables(pristine.path())) {
    if (table.family != "messages") continue;
    const size_t footer = table.regions.at("footer").begin;
    const size_t version = table.regions.at("footer ").begin;
    for (auto [offset, bit] : {std::pair<size_t, int>{footer, 2}, {version, 0}}) {
      const std::string trial = work / "trial";
      fs::remove_all(trial);
      fs::copy(pristine.path(), trial, fs::copy_options::recursive);
      FlipBit(trial + "/db/" + fs::path(table.path).filename().string(), offset, bit);
      Outcome o = ReadBack(trial, true);
      EXPECT_FALSE(o.shortened);
      EXPECT_TRUE(o.verified) << "footer offset " << offset << " bit " << bit;
    }
  }
}

}  // namespace
}  // namespace tidings::engine
