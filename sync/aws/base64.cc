#include "sync/aws/base64.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>

namespace tidings::aws {
namespace {

// The value of a base64 character, or -1.
int Sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// EVP's lengths are ints: longer input goes through in pieces of this many
// bytes (a multiple of 3, so the pieces' encodings join with no padding).
constexpr size_t kChunkBytes = size_t{3} << 28;

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out((bytes.size() + 2) / 3 * 4 + 1, '\0');  // EVP writes a NUL
  size_t written = 0;
  for (size_t at = 0; at < bytes.size(); at += kChunkBytes) {
    const size_t n = std::min(kChunkBytes, bytes.size() - at);
    written += static_cast<size_t>(EVP_EncodeBlock(
        reinterpret_cast<unsigned char*>(out.data() + written),
        reinterpret_cast<const unsigned char*>(bytes.data() + at), static_cast<int>(n)));
  }
  out.resize(written);
  return out;
}

bool Base64Decode(std::string_view text, std::string* out) {
  if (text.size() % 4 != 0) return false;
  if (text.empty()) {
    out->clear();
    return true;
  }
  // EVP_DecodeBlock reads "=" as a zero sextet anywhere and skips white
  // space at either end: only the last one or two may be padding here, and
  // the length check below catches a trimmed end.
  size_t pad = 0;
  while (pad < 2 && text[text.size() - 1 - pad] == '=') ++pad;
  const size_t data = text.size() - pad;
  if (std::memchr(text.data(), '=', data) != nullptr) return false;
  // Canonical: the bits left over in a padded quartet are zero.
  if (pad == 1 && (Sextet(text[data - 1]) & 0x3) != 0) return false;
  if (pad == 2 && (Sextet(text[data - 1]) & 0xf) != 0) return false;
  out->resize(text.size() / 4 * 3);
  const size_t chunk_chars = kChunkBytes / 3 * 4;
  for (size_t at = 0; at < text.size(); at += chunk_chars) {
    const size_t n = std::min(chunk_chars, text.size() - at);
    const int decoded = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out->data() + at / 4 * 3),
                                        reinterpret_cast<const unsigned char*>(text.data() + at),
                                        static_cast<int>(n));
    if (decoded < 0 || static_cast<size_t>(decoded) != n / 4 * 3) return false;
  }
  out->resize(out->size() - pad);
  return true;
}

}  // namespace tidings::aws
