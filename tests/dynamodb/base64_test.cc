// sync/aws/base64.h against libsodium's codec (crypto/hash.h), which accepts
// canonical, padded base64 of the standard alphabet (and, in 1.0.18, bytes
// from 0x80 up, which this codec refuses).
#include "sync/aws/base64.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "crypto/hash.h"

namespace tidings::aws {
namespace {

std::string RandomBytes(std::mt19937& rng, size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

TEST(Base64, EncodesAndDecodesAsLibsodiumDoes) {
  std::mt19937 rng(7);
  for (size_t n = 0; n < 300; ++n) {
    const std::string bytes = RandomBytes(rng, n);
    const std::string text = Base64Encode(bytes);
    ASSERT_EQ(text, crypto::Base64Encode(bytes)) << n;
    std::string back;
    ASSERT_TRUE(Base64Decode(text, &back)) << n;
    EXPECT_EQ(back, bytes) << n;
  }
  const std::string big = RandomBytes(rng, 400 * 1024);  // a DynamoDB item's most
  std::string back;
  ASSERT_TRUE(Base64Decode(Base64Encode(big), &back));
  EXPECT_EQ(back, big);
}

TEST(Base64, KnownVectors) {
  // RFC 4648, section 10.
  const char* vectors[][2] = {{"", ""},
                              {"f", "Zg=="},
                              {"fo", "Zm8="},
                              {"foo", "Zm9v"},
                              {"foob", "Zm9vYg=="},
                              {"fooba", "Zm9vYmE="},
                              {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(Base64Encode(plain), encoded);
    std::string out = "stale";
    ASSERT_TRUE(Base64Decode(encoded, &out)) << encoded;
    EXPECT_EQ(out, plain);
  }
}

TEST(Base64, RefusesWhatLibsodiumRefuses) {
  for (const char* bad : {
           "Zg",        // unpadded
           "Zg=",       // short padding
           "Zm9vY",     // not a multiple of four
           "Z===",      // three padding characters
           "====",      // padding only
           "Zg==Zm8=",  // padding inside
           "Z=g=",      // padding inside a quartet
           "Zh==",      // leftover bits set (Zg== is canonical)
           "Zm9=",      // leftover bits set (Zm8= is canonical)
           " Zm9v",     // white space at either end
           "Zm9v ",     //
           "Zm9v\n",    //
           "Zm 9v",     // or inside
           "Zm9-",      // the URL-safe alphabet
           "Zm9_",      //
       }) {
    std::string out, reference;
    EXPECT_FALSE(Base64Decode(bad, &out)) << '"' << bad << '"';
    EXPECT_FALSE(crypto::Base64Decode(bad, &reference)) << "the reference took \"" << bad << '"';
  }
  std::string with_nul("Zm9v\0\0\0\0", 8);
  std::string out;
  EXPECT_FALSE(Base64Decode(with_nul, &out));
  // libsodium 1.0.18 decodes bytes from 0x80 up as if they were '/'
  // ("Zm9v\xff\xff\xff\xff" -> "foo\xff\xff\xff"); they are not base64.
  EXPECT_FALSE(Base64Decode("Zm9v\xff\xff\xff\xff", &out));
  EXPECT_FALSE(
      Base64Decode("Zm9v\x80"
                   "AA=",
                   &out));
}

TEST(Base64, AgreesWithLibsodiumOnEveryQuartet) {
  // Every last quartet over a small alphabet with each padding: the two
  // decoders take and refuse the same ones and decode them alike.
  const std::string alphabet = "AZaz09+/=-gh \x01";
  for (char a : alphabet) {
    for (char b : alphabet) {
      for (char c : alphabet) {
        for (char d : alphabet) {
          const std::string text = std::string("Zm9v") + a + b + c + d;
          std::string ours, reference;
          const bool ok = Base64Decode(text, &ours);
          ASSERT_EQ(ok, crypto::Base64Decode(text, &reference)) << '"' << text << '"';
          if (ok) {
            ASSERT_EQ(ours, reference) << text;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace tidings::aws
