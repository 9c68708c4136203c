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

// A private directory holding the one key file, removed at exit.
struct KeyDir {
  KeyDir() {
    // tmpfs where there is one: ext4 flushes a file rewritten through
    // O_TRUNC on close, which held runs to about 60 inputs a second.
    dir = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    dir += "/tidings-key-fuzz-XXXXXX";
    FUZZ_CHECK(::mkdtemp(dir.data()) != nullptr);
    path = dir + "/key";
  }
  ~KeyDir() {
    ::unlink(path.c_str());
    ::rmdir(dir.c_str());
  }
  std::string dir, path;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tidings;
  static const KeyDir key_dir;
  const std::string& path = key_dir.path;
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
