// The key file parser (crypto/keys.h LoadKeyFile): 32 raw bytes or 64 hex
// digits, from a file the user points at. Each input is written to a 0600
// file in a private directory and loaded; a key that loads is the bytes the
// file spells.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "crypto/hash.h"
#include "crypto/keys.h"
#include "fuzz/fuzz_check.h"

namespace {

std::string KeyPath() {
  static const std::string path = [] {
    std::string dir = "/tmp/tidings-key-fuzz-XXXXXX";
    FUZZ_CHECK(::mkdtemp(dir.data()) != nullptr);
    return dir + "/key";
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tidings;
  const std::string path = KeyPath();
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    FUZZ_CHECK(out.good());
  }
  FUZZ_CHECK(::chmod(path.c_str(), 0600) == 0);
  auto key = crypto::LoadKeyFile(path);
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (key.ok()) {
    if (size == 32) {
      FUZZ_CHECK(key->view() == text);
    } else {
      while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
      std::string raw;
      FUZZ_CHECK(crypto::HexDecode(text, &raw) && key->view() == raw);
    }
  } else {
    FUZZ_CHECK(key.status().code() == Code::kInvalidArgument);
  }
  return 0;
}
