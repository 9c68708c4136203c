// The attachment object (crypto/attachment_cipher.h): round trips in any
// pieces, its size is what AttachmentCipherSize says, and no change to the
// bytes - flipped, cut, extended, reordered, another key - yields plaintext
// that was not written.
#include "crypto/attachment_cipher.h"

#include <gtest/gtest.h>

#include "tests/common/test_files.h"

namespace tidings::crypto {
namespace {

using testing::RandomBytes;

// Encrypts `plain` fed in pieces of `piece` bytes.
std::string Encrypt(const SecretKey& key, std::string_view plain, size_t piece, uint32_t chunk) {
  std::string out;
  auto e = AttachmentEncryptor::Start(key, &out, chunk);
  EXPECT_TRUE(e.ok());
  for (size_t at = 0; at < plain.size(); at += piece) {
    EXPECT_TRUE(e->Update(plain.substr(at, piece), &out).ok());
  }
  EXPECT_TRUE(e->Finish(&out).ok());
  // Nothing after the final chunk.
  EXPECT_EQ(e->Update("more", &out).code(), Code::kFailedPrecondition);
  EXPECT_EQ(e->Finish(&out).code(), Code::kFailedPrecondition);
  EXPECT_EQ(e->plain_bytes(), plain.size());
  return out;
}

// Decrypts `cipher` fed in pieces of `piece` bytes; the status of the
// first failure (or of Finish).
Status Decrypt(const SecretKey& key, std::string_view cipher, size_t piece, std::string* plain) {
  AttachmentDecryptor d(key);
  plain->clear();
  for (size_t at = 0; at < cipher.size(); at += piece) {
    TIDINGS_RETURN_IF_ERROR(d.Update(cipher.substr(at, piece), plain));
  }
  return d.Finish(plain);
}

TEST(AttachmentCipher, RoundTripsInAnyPiecesAndHasTheSizeItPromises) {
  auto key = SecretKey::Random();
  ASSERT_TRUE(key.ok());
  constexpr uint32_t kChunk = 1000;
  for (size_t n : {0, 1, 999, 1000, 1001, 2000, 5432}) {
    const std::string plain = RandomBytes(n, static_cast<uint32_t>(n));
    for (size_t in : {1, 7, 1000, 4096}) {
      const std::string cipher = Encrypt(*key, plain, in, kChunk);
      ASSERT_EQ(cipher.size(), AttachmentCipherSize(n, kChunk)) << n << " " << in;
      EXPECT_EQ(cipher.substr(0, 4), "TDA1");
      for (size_t out : {1, 13, 1017, 1 << 20}) {
        std::string back;
        ASSERT_TRUE(Decrypt(*key, cipher, out, &back).ok()) << n << " " << in << " " << out;
        EXPECT_EQ(back, plain);
      }
    }
  }
  // The default chunk: a 1 MiB file is 16 full chunks and an empty final one.
  EXPECT_EQ(AttachmentCipherSize(1 << 20), kAttachmentHeaderBytes + (1 << 20) + 17 * 17);
}

TEST(AttachmentCipher, NoChangedObjectOpens) {
  auto key = SecretKey::Random(), other = SecretKey::Random();
  ASSERT_TRUE(key.ok() && other.ok());
  constexpr uint32_t kChunk = 100;
  const std::string plain = RandomBytes(450, 1);
  const std::string cipher = Encrypt(*key, plain, 450, kChunk);
  std::string back;
  // Every single flipped byte, header included.
  for (size_t i = 0; i < cipher.size(); ++i) {
    std::string bad = cipher;
    bad[i] ^= 0x20;
    EXPECT_EQ(Decrypt(*key, bad, 64, &back).code(), Code::kDataLoss) << i;
  }
  // Cut at every length: cut short, never plaintext that looks whole.
  for (size_t n = 0; n < cipher.size(); ++n) {
    EXPECT_EQ(Decrypt(*key, cipher.substr(0, n), 64, &back).code(), Code::kDataLoss) << n;
  }
  // An object of whole chunks, its empty final chunk cut off.
  const std::string whole = Encrypt(*key, plain.substr(0, 400), 400, kChunk);
  ASSERT_EQ(whole.size(), AttachmentCipherSize(400, kChunk));
  EXPECT_TRUE(Decrypt(*key, whole, 64, &back).ok());
  EXPECT_EQ(Decrypt(*key, whole.substr(0, whole.size() - kSecretStreamOverhead), 64, &back).code(),
            Code::kDataLoss);
  // Bytes after the end, two chunks swapped, a chunk dropped, another key.
  EXPECT_EQ(Decrypt(*key, cipher + "x", 64, &back).code(), Code::kDataLoss);
  const size_t sealed = kChunk + kSecretStreamOverhead, first = kAttachmentHeaderBytes;
  std::string swapped = cipher;
  swapped.replace(first, sealed, cipher.substr(first + sealed, sealed));
  swapped.replace(first + sealed, sealed, cipher.substr(first, sealed));
  EXPECT_EQ(Decrypt(*key, swapped, 64, &back).code(), Code::kDataLoss);
  std::string dropped = cipher;
  dropped.erase(first + sealed, sealed);
  EXPECT_EQ(Decrypt(*key, dropped, 64, &back).code(), Code::kDataLoss);
  EXPECT_EQ(Decrypt(*other, cipher, 64, &back).code(), Code::kDataLoss);
  // A failed decryptor stays failed.
  AttachmentDecryptor d(*key);
  std::string bad = cipher;
  bad[first + 3] ^= 1;
  EXPECT_FALSE(d.Update(bad, &back).ok());
  EXPECT_FALSE(d.Update(cipher.substr(bad.size()), &back).ok());
  EXPECT_FALSE(d.Finish(&back).ok());
  // Plaintext is handed on only once its chunk is authenticated.
  AttachmentDecryptor partial(*key);
  back.clear();
  ASSERT_TRUE(partial.Update(cipher.substr(0, first + sealed - 1), &back).ok());
  EXPECT_TRUE(back.empty());
  ASSERT_TRUE(partial.Update(cipher.substr(first + sealed - 1, 1), &back).ok());
  EXPECT_EQ(back, plain.substr(0, kChunk));
}

TEST(AttachmentCipher, RefusesBadChunkSizes) {
  auto key = SecretKey::Random();
  ASSERT_TRUE(key.ok());
  std::string out;
  EXPECT_EQ(AttachmentEncryptor::Start(*key, &out, 0).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(AttachmentEncryptor::Start(*key, &out, kMaxAttachmentChunkBytes + 1).status().code(),
            Code::kInvalidArgument);
  // A header claiming a huge chunk is refused before anything is buffered.
  std::string cipher = Encrypt(*key, "hello", 5, 64);
  cipher[4] = '\x7f';
  std::string back;
  EXPECT_EQ(Decrypt(*key, cipher, 1, &back).code(), Code::kDataLoss);
}

}  // namespace
}  // namespace tidings::crypto
