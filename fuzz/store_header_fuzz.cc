// The store header (engine/store_header.h): the plaintext file TIDINGS, read
// before any key is known, so whoever can write the store's directory writes
// it. A header that decodes re-encodes to bytes that decode to the same
// header.
#include <string>

#include "engine/store_header.h"
#include "fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tidings;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  engine::Header h;
  Status s = engine::DecodeHeader(in, &h, "TIDINGS");
  if (!s.ok()) {
    FUZZ_CHECK(s.code() == Code::kDataLoss || s.code() == Code::kFailedPrecondition);
    return 0;
  }
  std::string bytes = engine::EncodeHeader(h);
  engine::Header again;
  FUZZ_CHECK(engine::DecodeHeader(bytes, &again, "TIDINGS").ok());
  FUZZ_CHECK(engine::EncodeHeader(again) == bytes);
  return 0;
}
