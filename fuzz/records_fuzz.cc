// The store's record codecs (engine/records.h, engine/types.h,
// engine/search_index.h): messages, conversations, outbox entries,
// operations, order keys, and the search index's postings, tail records and
// blocks. A record that decodes re-encodes to bytes that decode to the same
// encoding again, an operation round-trips exactly, and a block's message
// keys are whole and strictly ascending.
#include <string>

#include "engine/records.h"
#include "engine/search_index.h"
#include "engine/types.h"
#include "fuzz/fuzz_check.h"

namespace {

using namespace tidings::engine;
using namespace tidings::engine::search_index;

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
  auto [choice, in] = tidings::fuzz::SplitInput(data, size, 8);
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
    case 5: {
      PostingValue v;
      if (DecodePosting(in, &v)) {
        CheckStable(
            v,
            [](const PostingValue& p) {
              std::string out;
              EncodePosting(p, &out);
              return out;
            },
            DecodePosting);
      }
      break;
    }
    case 6: {
      MessagePostings m;
      if (DecodeTail(in, &m)) {
        std::string bytes;
        EncodeTail(m, &bytes);
        MessagePostings again;
        FUZZ_CHECK(DecodeTail(bytes, &again) && again.postings == m.postings);
      }
      break;
    }
    case 7: {
      std::vector<BlockEntry> entries;
      if (DecodeBlock(in, &entries)) {
        FUZZ_CHECK(!entries.empty());
        std::vector<std::pair<std::string_view, std::string_view>> views;
        for (const auto& e : entries) {
          FUZZ_CHECK(e.message_key.size() == kMessageKeyBytes);
          FUZZ_CHECK(views.empty() || views.back().first < e.message_key);
          views.emplace_back(e.message_key, e.value);
        }
        std::string bytes;
        EncodeBlock(views, &bytes);
        std::vector<BlockEntry> again;
        FUZZ_CHECK(DecodeBlock(bytes, &again) && again.size() == entries.size());
        for (size_t i = 0; i < again.size(); ++i) {
          FUZZ_CHECK(again[i].message_key == entries[i].message_key &&
                     again[i].value == entries[i].value);
        }
      }
      break;
    }
  }
  return 0;
}
