// The store's record codecs (engine/records.h, engine/types.h,
// engine/search_index.h): messages, conversations, outbox entries,
// operations, order keys, and the search index's postings, tail records,
// blocks, docs and ranks records. A record that decodes re-encodes to bytes
// that decode to the same encoding again, an operation round-trips exactly,
// a block's documents strictly ascend, and a document or rank is read back as
// written.
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
  auto [choice, in] = tidings::fuzz::SplitInput(data, size, 9);
  switch (choice) {
    case 0: {
      MessageRecord r;
      if (DecodeMessage(in, &r)) CheckStable(r, EncodeMessage, DecodeMessage);
      break;
    }
    case 1: {
      Conversation c;
      const auto decode = [](std::string_view b, Conversation* out) {
        return DecodeConversation(b, out);
      };
      if (decode(in, &c)) CheckStable(c, EncodeConversation, decode);
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
        std::vector<std::pair<uint32_t, std::string_view>> views;
        for (const auto& e : entries) {
          FUZZ_CHECK(views.empty() || views.back().first < e.doc);
          FUZZ_CHECK(DecodePositions(e.positions, nullptr));
          views.emplace_back(e.doc, e.positions);
        }
        std::string bytes;
        EncodeBlock(views, &bytes);
        std::vector<BlockEntry> again;
        FUZZ_CHECK(DecodeBlock(bytes, &again) && again.size() == entries.size());
        for (size_t i = 0; i < again.size(); ++i) {
          FUZZ_CHECK(again[i].doc == entries[i].doc && again[i].positions == entries[i].positions);
        }
      }
      break;
    }
    case 8: {
      if (ValidRanks(in)) {
        Rank r;
        for (uint32_t i = 0; i < in.size() / kRankBytes; ++i) {
          if (RankAt(in, i, &r)) {
            FUZZ_CHECK(r.message_terms != 0 && r.order.size() == kOrderKeyBytes);
            std::string again;
            EncodeRank(r, &again);
            FUZZ_CHECK(again == in.substr(i * kRankBytes, kRankBytes));
          }
        }
      }
      if (ValidDocs(in)) {
        Doc d;
        for (uint32_t i = 0; i < kDocsPerChunk; ++i) {
          const bool held = (i + 1) * kDocBytes <= in.size();
          if (DocAt(in, i, &d)) {
            FUZZ_CHECK(held && d.message_key.size() == kMessageKeyBytes);
            std::string again;
            EncodeDoc(d, &again);
            FUZZ_CHECK(again == in.substr(i * kDocBytes, kDocBytes));
          }
        }
      }
      break;
    }
  }
  return 0;
}
