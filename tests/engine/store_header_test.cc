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
  auto mac_key = crypto::SecretKey::Random();
  Header future = SampleHeader(kNewestFormat + 1, crypto::RecordProtection::kAuthenticatedSipHash);
  future.store_id.assign(kStoreIdBytes, 's');
  const Status newer = DecodeHeader(EncodeHeader(future, *mac_key), &back, "p");
  EXPECT_EQ(newer.code(), Code::kFailedPrecondition);
  EXPECT_NE(newer.message().find("upgrade Tidings"), std::string::npos);
}

Header SampleFormat4() {
  Header h = SampleHeader(4, crypto::RecordProtection::kAuthenticatedSipHash);
  h.key_check.clear();
  h.wrapped_keys = "wrapped";
  h.store_id.assign(kStoreIdBytes, 'i');
  h.db_dir = "db-12";
  h.generation = 12;
  h.store_id_in_ad = true;
  return h;
}

TEST(StoreHeader, Format4IsAuthenticatedByItsMac) {
  auto mac_key = crypto::SecretKey::Random();
  auto other_key = crypto::SecretKey::Random();
  const std::string bytes = EncodeHeader(SampleFormat4(), *mac_key);
  Header back;
  ASSERT_TRUE(DecodeHeader(bytes, &back, "p").ok());
  EXPECT_EQ(back.format, 4u);
  EXPECT_EQ(back.wrapped_keys, "wrapped");
  EXPECT_EQ(back.store_id, std::string(kStoreIdBytes, 'i'));
  EXPECT_EQ(back.db_dir, "db-12");
  EXPECT_EQ(back.generation, 12u);
  EXPECT_TRUE(back.store_id_in_ad);
  EXPECT_TRUE(VerifyHeaderMac(back, *mac_key, "p").ok());
  EXPECT_EQ(VerifyHeaderMac(back, *other_key, "p").code(), Code::kDataLoss);

  // Someone without the key changes a field and fixes the checksum: it
  // decodes, and the MAC refuses it.
  Header forged = SampleFormat4();
  forged.db_dir = "db-11";
  ASSERT_TRUE(DecodeHeader(EncodeHeader(forged, *other_key), &back, "p").ok());
  const Status tampered = VerifyHeaderMac(back, *mac_key, "p");
  EXPECT_EQ(tampered.code(), Code::kDataLoss);
  EXPECT_NE(tampered.message().find("tampered"), std::string::npos);

  // The database directory never leaves the store.
  forged.db_dir = "../elsewhere";
  EXPECT_EQ(DecodeHeader(EncodeHeader(forged, *mac_key), &back, "p").code(), Code::kDataLoss);
}

// An unauthenticated header cannot make unlock hang: absurd Argon2id limits
// are refused before anything is derived.
TEST(StoreHeader, AbsurdPassphraseLimitsAreRefusedOnDecode) {
  auto mac_key = crypto::SecretKey::Random();
  Header back;
  for (uint32_t format : {2u, 4u}) {
    Header h = format == 4 ? SampleFormat4() : SampleHeader(2, crypto::RecordProtection::kSealed);
    h.params.ops_limit = 0xffffffffu;
    Status s = DecodeHeader(EncodeHeader(h, *mac_key), &back, "p");
    EXPECT_EQ(s.code(), Code::kDataLoss) << format;
    EXPECT_NE(s.message().find("Argon2id passes 4294967295"), std::string::npos) << s.message();
    h.params.ops_limit = 3;
    h.params.mem_limit = uint64_t{64} << 30;
    EXPECT_EQ(DecodeHeader(EncodeHeader(h, *mac_key), &back, "p").code(), Code::kDataLoss);
    h.params.mem_limit = crypto::kMaxMemLimit;
    h.params.ops_limit = crypto::kMaxOpsLimit;
    EXPECT_TRUE(DecodeHeader(EncodeHeader(h, *mac_key), &back, "p").ok()) << format;
  }
  // Key-file stores carry no limits.
  Header key_file = SampleFormat4();
  key_file.key_kind = static_cast<uint8_t>(crypto::KeySource::Kind::kKeyFile);
  key_file.params.ops_limit = 0;
  key_file.params.mem_limit = 0;
  EXPECT_TRUE(DecodeHeader(EncodeHeader(key_file, *mac_key), &back, "p").ok());
}

TEST(PassphraseProfiles, NameLibsodiumsLimits) {
  EXPECT_EQ(*crypto::ParsePassphraseProfile("moderate"), crypto::PassphraseProfile::kModerate);
  EXPECT_EQ(crypto::ParsePassphraseProfile("fast").status().code(), Code::kInvalidArgument);
  const auto phone = crypto::PassphraseParams::New(crypto::PassphraseProfile::kInteractive);
  const auto kiosk = crypto::PassphraseParams::New(crypto::PassphraseProfile::kModerate);
  const auto server = crypto::PassphraseParams::New(crypto::PassphraseProfile::kSensitive);
  EXPECT_EQ(phone.mem_limit, uint64_t{64} << 20);
  EXPECT_EQ(kiosk.mem_limit, uint64_t{256} << 20);
  EXPECT_EQ(server.mem_limit, uint64_t{1} << 30);
  EXPECT_LT(phone.ops_limit, kiosk.ops_limit);
  EXPECT_LT(kiosk.ops_limit, server.ops_limit);
  EXPECT_NE(phone.salt, kiosk.salt);
  for (const auto& p : {phone, kiosk, server}) EXPECT_TRUE(crypto::CheckPassphraseParams(p).ok());
}

// Stores made with earlier formats - format 1 (every value sealed), format 2
// (BLAKE2b tags), format 3 (SipHash tags, no wrapped keys) - keep opening,
// reading and writing as they are; new stores get format 4.
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
    old.create_format = static_cast<uint32_t>(c.format);
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
  TempDir dir;
  ASSERT_NE(MustOpen(dir.path(), fresh), nullptr);
  auto raw = ReadFile(dir / "TIDINGS");
  Header h;
  ASSERT_TRUE(DecodeHeader(*raw, &h, "p").ok());
  EXPECT_EQ(h.format, 4u);
  EXPECT_TRUE(h.store_id_in_ad);
  EXPECT_EQ(h.db_dir, "db");
}

}  // namespace
}  // namespace tidings::engine
