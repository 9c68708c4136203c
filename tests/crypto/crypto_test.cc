#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <vector>

#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/sealer.h"
#include "crypto/secret_stream.h"
#include "crypto/stream_cipher.h"
#include "tests/common/temp_dir.h"

namespace tidings::crypto {
namespace {

namespace fs = std::filesystem;

using tidings::testing::TempDir;

std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(Hash, Sha256KnownAnswer) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256Hasher h;
  h.Update("a");
  h.Update("bc");
  EXPECT_EQ(HexEncode(h.Finish()), Sha256Hex("abc"));
}

TEST(Hash, HmacSha256Rfc4231Case2) {
  auto mac = HmacSha256(AsBytes("Jefe"), "what do ya want for nothing?");
  EXPECT_EQ(HexEncode(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Hash, HexRoundTripAndRejects) {
  std::string out;
  ASSERT_TRUE(HexDecode("00ff10Ab", &out));
  EXPECT_EQ(HexEncode(AsBytes(out)), "00ff10ab");
  EXPECT_FALSE(HexDecode("abc", &out));
  EXPECT_FALSE(HexDecode("zz", &out));
}

TEST(Keys, SubkeysDifferPerPurposeAndAreDeterministic) {
  auto master = SecretKey::Random();
  ASSERT_TRUE(master.ok());
  auto a = DeriveSubkey(*master, Purpose::kFileCipher);
  auto b = DeriveSubkey(*master, Purpose::kRecordSeal);
  auto a2 = DeriveSubkey(*master, Purpose::kFileCipher);
  ASSERT_TRUE(a.ok() && b.ok() && a2.ok());
  EXPECT_NE(0, std::memcmp(a->data(), b->data(), kKeyBytes));
  EXPECT_EQ(0, std::memcmp(a->data(), a2->data(), kKeyBytes));
}

TEST(Keys, FromBytesRejectsWrongSize) {
  std::vector<uint8_t> v(31, 1);
  auto k = SecretKey::FromBytes(v);
  EXPECT_EQ(k.status().code(), Code::kInvalidArgument);
}

TEST(Keys, PassphraseIsDeterministicForSaltAndDiffersOtherwise) {
  PassphraseParams p = PassphraseParams::NewInteractive();
  p.ops_limit = 1 + 1;  // keep the test fast; production uses interactive limits
  p.mem_limit = 8 << 20;
  auto k1 = DeriveFromPassphrase("correct horse", p);
  auto k2 = DeriveFromPassphrase("correct horse", p);
  auto k3 = DeriveFromPassphrase("wrong horse", p);
  ASSERT_TRUE(k1.ok() && k2.ok() && k3.ok()) << k1.status().ToString();
  EXPECT_EQ(0, std::memcmp(k1->data(), k2->data(), kKeyBytes));
  EXPECT_NE(0, std::memcmp(k1->data(), k3->data(), kKeyBytes));
  EXPECT_EQ(DeriveFromPassphrase("", p).status().code(), Code::kInvalidArgument);
}

TEST(Keys, KeyFileRoundTripAndChecks) {
  TempDir dir;
  auto key = SecretKey::Random();
  ASSERT_TRUE(key.ok());
  const std::string path = dir / "store.key";
  ASSERT_TRUE(WriteKeyFile(path, *key).ok());
  struct stat st {};
  ASSERT_EQ(0, ::stat(path.c_str(), &st));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(WriteKeyFile(path, *key).code(), Code::kAlreadyExists);

  auto loaded = LoadKeyFile(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(0, std::memcmp(loaded->data(), key->data(), kKeyBytes));

  ASSERT_EQ(0, ::chmod(path.c_str(), 0644));
  auto loose = LoadKeyFile(path);
  EXPECT_EQ(loose.status().code(), Code::kPermissionDenied);
  EXPECT_NE(loose.status().message().find("chmod 600"), std::string::npos);

  EXPECT_EQ(LoadKeyFile(dir / "missing.key").status().code(), Code::kNotFound);

  const std::string bad = dir / "bad.key";
  { std::ofstream(bad) << "not a key"; }
  ASSERT_EQ(0, ::chmod(bad.c_str(), 0600));
  EXPECT_EQ(LoadKeyFile(bad).status().code(), Code::kInvalidArgument);

  // A hex key whose line ends fill the read limit, followed by more bytes: the
  // file is refused whole, never read as the key its first 129 bytes spell
  // (found by the key file fuzzer).
  const std::string padded = dir / "padded.key";
  {
    std::ofstream out(padded, std::ios::binary);
    out << std::string(64, 'a') << std::string(70, '\r') << std::string("junk\n", 5);
  }
  ASSERT_EQ(0, ::chmod(padded.c_str(), 0600));
  auto long_file = LoadKeyFile(padded);
  EXPECT_EQ(long_file.status().code(), Code::kInvalidArgument);
  EXPECT_NE(long_file.status().message().find("longer than 128 bytes"), std::string::npos)
      << long_file.status().ToString();
}

TEST(Sealer, RoundTripAndTamperDetection) {
  auto key = SecretKey::Random();
  ASSERT_TRUE(key.ok());
  RecordSealer sealer(std::move(*key));
  std::string sealed = sealer.Seal("key-1", "hello");
  EXPECT_EQ(sealed.size(), 5 + kSealOverhead);
  auto opened = sealer.Open("key-1", sealed);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, "hello");

  // Moved to another key: refused.
  EXPECT_EQ(sealer.Open("key-2", sealed).status().code(), Code::kDataLoss);
  // Any flipped bit: refused.
  for (size_t i = 0; i < sealed.size(); ++i) {
    std::string t = sealed;
    t[i] ^= 0x01;
    EXPECT_EQ(sealer.Open("key-1", t).status().code(), Code::kDataLoss) << "byte " << i;
  }
  EXPECT_EQ(sealer.Open("key-1", sealed.substr(0, 10)).status().code(), Code::kDataLoss);
}

TEST(Sealer, NoncesAreUnique) {
  auto key = SecretKey::Random();
  ASSERT_TRUE(key.ok());
  RecordSealer sealer(std::move(*key));
  std::set<std::string> nonces;
  for (int i = 0; i < 1000; ++i) nonces.insert(sealer.Seal("k", "v").substr(0, kSealNonceBytes));
  EXPECT_EQ(nonces.size(), 1000u);
}

TEST(Sealer, OtherKeyCannotOpen) {
  auto k1 = SecretKey::Random();
  auto k2 = SecretKey::Random();
  ASSERT_TRUE(k1.ok() && k2.ok());
  RecordSealer a(std::move(*k1)), b(std::move(*k2));
  EXPECT_EQ(b.Open("k", a.Seal("k", "secret")).status().code(), Code::kDataLoss);
}

TEST(Sealer, AuthenticatedModesTagWithoutEncryptingAndRefuseTampering) {
  for (auto mode : {RecordProtection::kAuthenticated, RecordProtection::kAuthenticatedSipHash}) {
    SCOPED_TRACE(static_cast<int>(mode));
    auto key = SecretKey::Random();
    ASSERT_TRUE(key.ok());
    auto copy = key->Clone();
    auto copy2 = key->Clone();
    ASSERT_TRUE(copy.ok() && copy2.ok());
    RecordSealer mac(std::move(*key), mode);
    RecordSealer sealed_mode(std::move(*copy), RecordProtection::kSealed);
    RecordSealer other_mac(std::move(*copy2), mode == RecordProtection::kAuthenticated
                                                  ? RecordProtection::kAuthenticatedSipHash
                                                  : RecordProtection::kAuthenticated);
    std::string tagged = mac.Seal("key-1", "hello");
    EXPECT_EQ(tagged.size(), 5 + kMacTagBytes);
    EXPECT_EQ(tagged.substr(0, 5), "hello") << "the file cipher encrypts; the tag authenticates";
    EXPECT_EQ(mac.Seal("key-1", "hello"), tagged) << "deterministic: no nonce to store";
    EXPECT_EQ(*mac.Open("key-1", tagged), "hello");
    EXPECT_EQ(*mac.Open("k", mac.Seal("k", "")), "");
    std::string big(70000, 'b');
    EXPECT_EQ(*mac.Open("k", mac.Seal("k", big)), big);
    EXPECT_EQ(mac.Open("key-2", tagged).status().code(), Code::kDataLoss);
    // The associated data is length-prefixed: moving bytes between it and the
    // value does not keep the tag valid.
    EXPECT_EQ(mac.Open("key-1h", mac.Seal("key-1", "hello").substr(1)).status().code(),
              Code::kDataLoss);
    for (size_t i = 0; i < tagged.size(); ++i) {
      std::string t = tagged;
      t[i] ^= 0x01;
      EXPECT_EQ(mac.Open("key-1", t).status().code(), Code::kDataLoss) << "byte " << i;
    }
    EXPECT_EQ(mac.Open("key-1", tagged.substr(0, 10)).status().code(), Code::kDataLoss);
    EXPECT_EQ(mac.Open("key-1", "short").status().code(), Code::kDataLoss);
    // Same key bytes, other mode: neither opens the other's records.
    EXPECT_EQ(sealed_mode.Open("key-1", tagged).status().code(), Code::kDataLoss);
    EXPECT_EQ(mac.Open("key-1", sealed_mode.Seal("key-1", "hello")).status().code(),
              Code::kDataLoss);
    EXPECT_EQ(other_mac.Open("key-1", tagged).status().code(), Code::kDataLoss);
  }
}

TEST(StreamCipher, RandomAccessMatchesLibsodiumXChaCha20) {
  auto key = SecretKey::Random();
  ASSERT_TRUE(key.ok());
  uint8_t nonce[kStreamNonceBytes];
  RandomBytes(nonce, sizeof(nonce));
  auto stream = XChaCha20Stream::Create(*key, nonce);
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  std::vector<uint8_t> plain(1000);
  for (size_t i = 0; i < plain.size(); ++i) plain[i] = static_cast<uint8_t>(i * 7);
  // The reference: libsodium's one-shot XChaCha20, which earlier stores'
  // files were written with.
  std::vector<uint8_t> reference(plain.size());
  crypto_stream_xchacha20_xor(reference.data(), plain.data(), plain.size(), nonce, key->data());
  std::vector<uint8_t> whole = plain;
  stream->XorAt(0, whole.data(), whole.size());
  EXPECT_EQ(whole, reference);
  // Encrypt in odd-sized pieces at odd offsets: same ciphertext.
  std::vector<uint8_t> pieces = plain;
  size_t cuts[] = {0, 1, 63, 64, 65, 130, 511, 777, 1000};
  for (size_t i = 0; i + 1 < std::size(cuts); ++i) {
    stream->XorAt(cuts[i], pieces.data() + cuts[i], cuts[i + 1] - cuts[i]);
  }
  EXPECT_EQ(pieces, reference);
  // And decrypts back.
  stream->XorAt(0, whole.data(), whole.size());
  EXPECT_EQ(whole, plain);
}

TEST(SecretStream, RoundTripsAndDetectsEveryChange) {
  auto key = SecretKey::Random();
  ASSERT_TRUE(key.ok());
  std::string header, c1, c2;
  auto w = SecretStreamWriter::Start(*key, &header);
  ASSERT_TRUE(w.ok());
  w->Push("first", "ad", false, &c1);
  w->Push("second", "", true, &c2);
  EXPECT_EQ(c1.size(), 5 + kSecretStreamOverhead);

  auto open = [&](std::string_view a, std::string_view b, std::string_view ad) {
    auto r = SecretStreamReader::Start(*key, header);
    EXPECT_TRUE(r.ok());
    std::string p1, p2;
    bool f1 = true, f2 = false;
    if (!r->Pull(a, ad, &p1, &f1).ok() || !r->Pull(b, "", &p2, &f2).ok()) return std::string("x");
    return p1 + "/" + p2 + (f1 ? "F" : "") + (f2 ? "F" : "");
  };
  EXPECT_EQ(open(c1, c2, "ad"), "first/secondF");
  EXPECT_EQ(open(c1, c2, "other ad"), "x");
  EXPECT_EQ(open(c2, c1, ""), "x");    // reordered
  EXPECT_EQ(open(c1, c1, "ad"), "x");  // replayed
  std::string bad = c2;
  bad[3] = static_cast<char>(bad[3] ^ 1);
  EXPECT_EQ(open(c1, bad, "ad"), "x");
  EXPECT_FALSE(SecretStreamReader::Start(*key, "short").ok());
}

}  // namespace
}  // namespace tidings::crypto
