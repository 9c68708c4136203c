// What every fuzz target shares: a check that aborts (so libFuzzer records the
// input as a crash) and a byte that picks which decoder an input goes to.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

// A property that must hold for every input; a failure is a crash, with the
// input saved by libFuzzer.
#define FUZZ_CHECK(cond)                                                               \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)

namespace tidings::fuzz {

// The input's first byte chooses among `choices` decoders; the rest is the
// decoder's input. Seeds are written the same way (fuzz/make_seeds.cc).
struct Split {
  uint8_t choice = 0;
  std::string_view rest;
};
inline Split SplitInput(const uint8_t* data, size_t size, uint8_t choices) {
  if (size == 0) return {};
  return Split{static_cast<uint8_t>(data[0] % choices),
               std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1)};
}

}  // namespace tidings::fuzz
