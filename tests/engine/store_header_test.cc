// The store header (engine/store_header.cc): its encoding, and every format
// keeps working.
#include "engine/store_header.h"

#include <gtest/gtest.h>

#include <fstream>

#include "store_test_util.h"

namespace tidings::engine {
namespace {

Header SampleHeader(uint32_t format, crypto::RecordProtection records) {
  Header h;
  h.format = format;
  h.key_kind = static_cast<uint8_t>(crypto::KeySource::Kind::kPassphrase);
  h.params.ops_limit = 3;
  h.params.mem_limit = 1 << 20;
  h.params.salt.fill(0x5a);
  h.key_check = "sealed check";
  h.records = records;
  return h;
}

TEST(StoreHeader, RoundTripsAndRefusesWhatItCannotRead) {
  const Header h = SampleHeader(3, crypto::RecordProtection::kAuthenticatedSipHash);
  const std::string bytes = EncodeHeader(h);
  EXPECT_EQ(bytes.substr(0, 8), "TIDINGS1");
  Header back;
  ASSERT_TRUE(DecodeHeader(bytes, &back, "p").ok());
  EXPECT_EQ(back.format, 3u);
  EXPECT_EQ(back.key_kind, h.key_kind);
  EXPECT_EQ(back.params.ops_limit, 3u);
  EXPECT_EQ(back.params.mem_limit, uint64_t{1} << 20);
  EXPECT_EQ(back.params.salt, h.params.salt);
  EXPECT_EQ(back.key_check, "sealed check");
  EXPECT_EQ(back.records, crypto::RecordProtection::kAuthenticatedSipHash);

  // Format 1 has no record protection byte: it is sealed.
  ASSERT_TRUE(DecodeHeader(EncodeHeader(SampleHeader(1, crypto::RecordProtection::kAuthenticated)),
                           &back, "p")
                  .ok());
  EXPECT_EQ(back.records, crypto::RecordProtection::kSealed);

  std::string flipped = bytes;
  flipped[12] ^= 1;
  EXPECT_EQ(DecodeHeader(flipped, &back, "p").code(), Code::kDataLoss) << "checksum";
  // Format 2 knows BLAKE2b tags only: a SipHash byte there is corruption.
  EXPECT_EQ(
      DecodeHeader(EncodeHeader(SampleHeader(2, crypto::RecordProtection::kAuthenticatedSipHash)),
                   &back, "p")
          .code(),
      Code::kDataLoss);
  // A newer format asks for a newer Tidings instead of calling it corrupt.
  const Status newer = DecodeHeader(
      EncodeHeader(SampleHeader(4, crypto::RecordProtection::kAuthenticatedSipHash)), &back, "p");
  EXPECT_EQ(newer.code(), Code::kFailedPrecondition);
  EXPECT_NE(newer.message().find("upgrade Tidings"), std::string::npos);
}

// Stores made with earlier record protections - format 1 (every value
// sealed) and format 2 (BLAKE2b tags) - keep opening, reading and writing as
// they are; new stores get format 3 (SipHash tags).
TEST(Store, EarlierFormatStoresKeepWorking) {
  struct Case {
    crypto::RecordProtection protection;
    char format;
  };
  for (Case c : {Case{crypto::RecordProtection::kSealed, 1},
                 Case{crypto::RecordProtection::kAuthenticated, 2},
                 Case{crypto::RecordProtection::kAuthenticatedSipHash, 3}}) {
    SCOPED_TRACE(static_cast<int>(c.format));
    TempDir dir;
    StoreOptions old = CreateOptions("me");
    old.record_protection = c.protection;
    std::string id;
    {
      auto store = Store::Open(dir.path(), TestKey(), old);
      ASSERT_TRUE(store.ok()) << store.status().ToString();
      id = (*store)->Send(Msg("c", "first one"))->id;
      ASSERT_TRUE((*store)->Flush().ok());
    }
    auto store = Store::Open(dir.path(), TestKey(), StoreOptions{});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    EXPECT_EQ((*store)->Get(id)->body, "first one");
    ASSERT_TRUE((*store)->Send(Msg("c", "second one")).ok());
    EXPECT_EQ((*store)->Page({.conversation_id = "c"})->size(), 2u);
    auto report = (*store)->Verify(nullptr);
    ASSERT_TRUE(report.ok());
    EXPECT_EQ(report->problems, 0u);
    store->reset();
    // Still its own format on disk: the Tidings that made it can open it.
    std::ifstream f(dir / "TIDINGS", std::ios::binary);
    std::string header((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    ASSERT_GT(header.size(), 9u);
    EXPECT_EQ(header[8], c.format) << "format byte";
  }
  StoreOptions fresh = CreateOptions("me");
  EXPECT_EQ(fresh.record_protection, crypto::RecordProtection::kAuthenticatedSipHash);
}

}  // namespace
}  // namespace tidings::engine
