// What a DynamoDB log item holds, in both kinds of log (docs/dynamodb.md):
//
//   plaintext log  pk "c#<conversation>", "o": operations, format "v" = 1
//                  (no "v": format 0, the store's own encoding from before
//                  the wire codec, still read)
//   sealed log     pk "l#<log id>", "f": opaque frames, format "v" = 2
//
// Both are a run of length-prefixed entries packed by the appender. Anyone
// the IAM policy lets write a log can write anything into it, so reading is
// lenient: an item or entry that does not decode is skipped and counted, and
// only an item of a newer format than this build reads is an error.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/types.h"
#include "sync/aws/json.h"
#include "sync/backend.h"

namespace tidings::dynamodb {

constexpr uint64_t kOpsFormat = 1;     // "o" in "c#" items
constexpr uint64_t kFramesFormat = 2;  // "f" in "l#" items

// Largest Frame::bytes a sealed log takes: several frames share one item,
// which stays far under DynamoDB's 400 KB item limit.
constexpr size_t kMaxFrameBytes = 64 * 1024;

// One entry ready to pack: the id it is deduplicated by, and its encoding
// (the appender concatenates encodings into one item).
struct PackedEntry {
  std::string id;
  std::string encoded;
};
PackedEntry PackOperation(const engine::Operation& op);
PackedEntry PackFrame(const sync::Frame& frame);

// A log item read back. Entries carry remote_id "<sk>/<index in the item>"
// and the item's acceptance time.
template <typename Entry>
struct Unpacked {
  std::vector<Entry> entries;
  uint64_t skipped = 0;  // entries (or the whole item, as one) that did not decode
  // Operations only: those of a wire version newer than this build reads.
  std::vector<sync::HeldOperation> too_new;
};
// FailedPrecondition only for an item of a newer format ("upgrade Tidings").
Result<Unpacked<engine::Operation>> UnpackOperations(const aws::DynamoItem& item);
Result<Unpacked<sync::Frame>> UnpackFrames(const aws::DynamoItem& item);

// True for a frame id this backend stores: 1 to 64 of [A-Za-z0-9._-].
bool ValidFrameId(std::string_view id);

}  // namespace tidings::dynamodb
