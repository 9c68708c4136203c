// The store's record codecs (engine/records.h, engine/types.h): messages,
// conversations, outbox entries, operations and order keys. A record that
// decodes re-encodes to bytes that decode to the same encoding again, and an
// operation round-trips exactly.
#include <string>

#include "engine/records.h"
#include "engine/types.h"
#include "fuzz/fuzz_check.h"

namespace {

using namespace tidings::engine;

// decode(x) succeeded: encode(decode(x)) must decode and encode to itself.
template <typename T, typename Encode, typename Decode>
void CheckStable(const T& first, Encode encode, Decode decode) {
  std::string bytes = encode(first);
  T second{};
  FUZZ_CHECK(decode(bytes, &second));
  FUZZ_CHECK(encode(second) == bytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto [choice, in] = tidings::fuzz::SplitInput(data, size, 5);
  switch (choice) {
    case 0: {
      MessageRecord r;
      if (DecodeMessage(in, &r)) CheckStable(r, EncodeMessage, DecodeMessage);
      break;
    }
    case 1: {
      Conversation c;
      if (DecodeConversation(in, &c)) CheckStable(c, EncodeConversation, DecodeConversation);
      break;
    }
    case 2: {
      OutboxRecord r;
      if (DecodeOutbox(in, &r)) CheckStable(r, EncodeOutbox, DecodeOutbox);
      break;
    }
    case 3: {
      Operation op;
      if (DecodeOperation(in, &op)) {
        Operation again;
        FUZZ_CHECK(DecodeOperation(EncodeOperation(op), &again));
        FUZZ_CHECK(again == op);
      }
      break;
    }
    case 4: {
      OrderKey k;
      if (OrderKey::Decode(in, &k)) FUZZ_CHECK(k.Encode() == in);
      break;
    }
  }
  return 0;
}
