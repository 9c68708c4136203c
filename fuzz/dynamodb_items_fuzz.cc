// DynamoDB: the Query response parser (sync/aws/json.h) and the log item
// unpacker (sync/dynamodb/log_items.h). Any writer the IAM policy lets in can
// put any item, so neither may crash, and what unpacks re-packs to a run of
// entries that unpacks to the same entries.
#include <string>
#include <vector>

#include "crypto/hash.h"
#include "fuzz/fuzz_check.h"
#include "sync/aws/json.h"
#include "sync/dynamodb/log_items.h"

namespace {

using namespace tidings;

// Packs `entries` again into a copy of `item` (as attribute `b64` of format
// `format`) and checks that they unpack to themselves, none skipped.
template <typename Entry, typename Pack, typename Unpack>
void CheckRepack(const aws::DynamoItem& item, const std::vector<Entry>& entries,
                 std::string aws::DynamoItem::*b64, uint64_t format, Pack pack, Unpack unpack) {
  if (entries.empty()) return;  // an item holds at least one entry
  std::string packed;
  for (const auto& e : entries) packed += pack(e).encoded;
  aws::DynamoItem again = item;
  again.*b64 = crypto::Base64Encode(packed);
  again.format = format;
  auto reread = unpack(again);
  FUZZ_CHECK(reread.ok() && reread->skipped == 0);
  FUZZ_CHECK(reread->entries.size() == entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    auto a = entries[i], b = reread->entries[i];
    a.remote_id = b.remote_id = "";  // "<sk>/<index>": indices move past skipped entries
    FUZZ_CHECK(a == b);
  }
}

bool SameFrame(const sync::Frame& a, const sync::Frame& b) {
  return a.id == b.id && a.bytes == b.bytes && a.server_time_ms == b.server_time_ms;
}

void UnpackItem(const aws::DynamoItem& item) {
  auto ops = dynamodb::UnpackOperations(item);
  if (ops.ok()) {
    CheckRepack(item, ops->entries, &aws::DynamoItem::ops_b64, dynamodb::kOpsFormat,
                dynamodb::PackOperation, dynamodb::UnpackOperations);
  } else {
    FUZZ_CHECK(ops.status().code() == Code::kFailedPrecondition);
  }
  auto frames = dynamodb::UnpackFrames(item);
  if (frames.ok()) {
    for (const auto& f : frames->entries) {
      FUZZ_CHECK(dynamodb::ValidFrameId(f.id));
      FUZZ_CHECK(f.bytes.size() <= dynamodb::kMaxFrameBytes);
    }
    if (frames->entries.empty()) return;
    std::string packed;
    for (const auto& f : frames->entries) packed += dynamodb::PackFrame(f).encoded;
    aws::DynamoItem again = item;
    again.frames_b64 = crypto::Base64Encode(packed);
    auto reread = dynamodb::UnpackFrames(again);
    FUZZ_CHECK(reread.ok() && reread->skipped == 0);
    FUZZ_CHECK(reread->entries.size() == frames->entries.size());
    for (size_t i = 0; i < reread->entries.size(); ++i) {
      FUZZ_CHECK(SameFrame(reread->entries[i], frames->entries[i]));
    }
  } else {
    FUZZ_CHECK(frames.status().code() == Code::kFailedPrecondition);
  }
}

}  // namespace

// Choice 0: a Query response body. 1, 2: an item whose "o" (1) or "f" (2)
// attribute holds the rest of the input; the first byte after the choice is
// the format "v".
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto [choice, in] = fuzz::SplitInput(data, size, 3);
  if (choice == 0) {
    auto page = aws::ParseDynamoQuery(in);
    if (!page.ok()) {
      FUZZ_CHECK(page.status().code() == Code::kInvalidArgument);
      return 0;
    }
    for (const auto& item : page->items) UnpackItem(item);
    return 0;
  }
  if (in.empty()) return 0;
  aws::DynamoItem item;
  item.pk = choice == 1 ? "c#fuzz" : "l#fuzz";
  item.sk_number = "1";
  item.sk = 1;
  item.format = static_cast<uint8_t>(in[0]) % 4;
  (choice == 1 ? item.ops_b64 : item.frames_b64) = crypto::Base64Encode(in.substr(1));
  UnpackItem(item);
  return 0;
}
