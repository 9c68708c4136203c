// Held operations: pulled plaintext operations that a newer Tidings wrote (a
// wire version newer than this build reads). The cursor moves past them, so
// the store keeps their bytes, in one sync-state record per conversation and
// backend written in the batch of the page that brought them, until a build
// that reads them merges them. Sealed conversations keep such frames among
// their pending frames instead (e2e::PendingFrame::too_new).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "sync/backend.h"

namespace tidings::sync {

struct HeldOperations {
  // The newest operation version (wire::kOperationVersion) of the build that
  // wrote the record: a build that reads newer ones decodes the ops again.
  uint8_t reader = 0;
  std::vector<HeldOperation> ops;  // in pull order
};

// Most operations held per conversation, and most bytes (one operation, and
// all of a conversation's); beyond them the oldest are dropped, and an
// operation over its bound is not kept, each counted as skipped. (The
// largest valid operation today is under 1.2 MiB: a 64 KiB body and 16
// attachments with 64 KiB previews.)
inline constexpr size_t kMaxHeldOperations = 5'000;
inline constexpr size_t kMaxHeldOperationBytes = 2 << 20;
inline constexpr size_t kMaxHeldBytes = 16 << 20;

// Adds `incoming` to `held`, within the bounds; returns how many operations
// were dropped or refused.
uint64_t HoldWithinBounds(HeldOperations* held, const std::vector<HeldOperation>& incoming);

// "held/<backend>/<conversation id>".
std::string HeldKey(std::string_view backend, std::string_view conversation_id);
// An empty string for no operations (which deletes the record).
std::string EncodeHeld(const HeldOperations& held);
// DataLoss for a damaged record.
Result<HeldOperations> DecodeHeld(std::string_view bytes);

}  // namespace tidings::sync
