// Child process for the rekey crash test: rotates the data key of the store
// at argv[1] again and again, alternating its raw key between 0x0a.. and
// 0x0b.. bytes, and prints "rotated" after each rekey returned OK. The
// parent kills it with SIGKILL at a random moment.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "engine/rekey.h"

namespace {

tidings::crypto::KeySource Key(uint8_t fill) {
  uint8_t bytes[32];
  for (auto& b : bytes) b = fill;
  return tidings::crypto::KeySource::Raw(
      std::move(tidings::crypto::SecretKey::FromBytes(bytes)).value());
}

void Say(const char* line) {
  if (::write(1, line, std::char_traits<char>::length(line)) < 0) ::_exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  Say("started\n");
  for (;;) {
    bool done = false;
    for (uint8_t from : {uint8_t{0x0a}, uint8_t{0x0b}}) {
      tidings::engine::RekeyOptions o;
      o.rotate_data_key = true;
      o.new_key = Key(from == 0x0a ? 0x0b : 0x0a);
      auto r = tidings::engine::Rekey(argv[1], Key(from), std::move(o));
      if (r.ok()) {
        Say("rotated\n");
        done = true;
        break;
      }
      if (r.status().code() != tidings::Code::kWrongKey) {
        std::fprintf(stderr, "rekey: %s\n", r.status().ToString().c_str());
        return 1;
      }
    }
    if (!done) {
      std::fprintf(stderr, "neither key opens the store\n");
      return 1;
    }
  }
}
