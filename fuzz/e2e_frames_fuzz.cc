// The end-to-end frames of sealed logs (sync/e2e/frame.h) and the plaintexts
// inside them. Frames come from any log member (and, on DynamoDB, from anyone
// the IAM policy lets write), before any signature is checked. The encoding
// is canonical, so a frame that decodes re-encodes to exactly its bytes, and
// the signed body is exactly what precedes the signature.
#include <string>

#include "fuzz/fuzz_check.h"
#include "sync/e2e/frame.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tidings;
  using namespace tidings::e2e;
  auto [choice, in] = fuzz::SplitInput(data, size, 3);
  if (choice == 1) {
    if (auto s = DecodeShareSecret(in); s.ok()) FUZZ_CHECK(EncodeShareSecret(s.value()) == in);
    return 0;
  }
  if (choice == 2) {
    if (auto info = DecodeEpochInfo(in); info.ok()) FUZZ_CHECK(EncodeEpochInfo(info.value()) == in);
    return 0;
  }
  auto type = PeekFrameType(in);
  if (!type.ok()) return 0;
  std::string body;
  switch (type.value()) {
    case FrameType::kAnnouncement:
      if (auto r = DecodeAnnouncement(in); r.ok()) FUZZ_CHECK(EncodeAnnouncement(r.value()) == in);
      break;
    case FrameType::kKeyShare:
      if (auto f = DecodeKeyShare(in, &body); f.ok()) {
        FUZZ_CHECK(EncodeKeyShare(f.value()) == in);
        FUZZ_CHECK(EncodeKeyShareBody(f.value()) == body);
      }
      break;
    case FrameType::kSealedOp:
      if (auto f = DecodeSealedOp(in, &body); f.ok()) {
        FUZZ_CHECK(EncodeSealedOp(f.value()) == in);
        FUZZ_CHECK(EncodeSealedOpBody(f.value()) == body);
      }
      break;
  }
  return 0;
}
