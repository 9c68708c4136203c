// The attachment object (crypto/attachment_cipher.h). Each input makes an
// object - its plaintext, chunk size and the pieces it is fed in come from
// the input - then changes it as the input says (flipped bytes, a cut, a
// byte appended) and opens it in pieces of another size. An object left as
// it was opens to its plaintext; a changed one never opens, and no piece of
// plaintext is handed on that the writer did not write at that place.
#include <cstring>
#include <string>
#include <vector>

#include "crypto/attachment_cipher.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tidings;
  if (size < 6) return 0;
  static const crypto::SecretKey key = crypto::SecretKey::Random().value();
  const uint32_t chunk = 1 + data[0] % 64;
  const size_t write_piece = 1 + data[1] % 97, read_piece = 1 + data[2] % 131;
  const size_t flips = data[3] % 4;
  const bool cut = data[4] & 1, append = data[4] & 2;
  std::string_view rest(reinterpret_cast<const char*>(data) + 5, size - 5);
  // Flip positions (2 bytes each) come before the plaintext.
  std::vector<size_t> flip_at;
  for (size_t i = 0; i < flips && rest.size() >= 2; ++i) {
    flip_at.push_back(static_cast<uint8_t>(rest[0]) << 8 | static_cast<uint8_t>(rest[1]));
    rest.remove_prefix(2);
  }
  const std::string plain(rest);

  std::string object;
  auto e = crypto::AttachmentEncryptor::Start(key, &object, chunk);
  FUZZ_CHECK(e.ok());
  for (size_t at = 0; at < plain.size(); at += write_piece) {
    FUZZ_CHECK(e->Update(std::string_view(plain).substr(at, write_piece), &object).ok());
  }
  FUZZ_CHECK(e->Finish(&object).ok());
  FUZZ_CHECK(object.size() == crypto::AttachmentCipherSize(plain.size(), chunk));

  std::string changed = object;
  for (size_t at : flip_at) changed[at % changed.size()] ^= 0x01;
  if (cut) changed.resize(changed.size() - 1 - data[5] % changed.size());
  if (append) changed.push_back(static_cast<char>(data[5]));

  crypto::AttachmentDecryptor d(key);
  std::string out;
  Status s;
  for (size_t at = 0; at < changed.size() && s.ok(); at += read_piece) {
    s = d.Update(std::string_view(changed).substr(at, read_piece), &out);
    // Whatever came out so far is what was written there.
    FUZZ_CHECK(out.size() <= plain.size() && plain.compare(0, out.size(), out) == 0);
  }
  if (s.ok()) s = d.Finish(&out);
  FUZZ_CHECK(out.size() <= plain.size() && plain.compare(0, out.size(), out) == 0);
  if (changed == object) {
    FUZZ_CHECK(s.ok() && out == plain);
  } else {
    FUZZ_CHECK(!s.ok());
  }
  return 0;
}
