#include "sync/core/held_operations.h"

#include "sync/wire/bytes.h"

namespace tidings::sync {
namespace {

constexpr uint8_t kVersion = 1;

}  // namespace

uint64_t HoldWithinBounds(HeldOperations* held, const std::vector<HeldOperation>& incoming) {
  uint64_t dropped = 0;
  size_t bytes = 0;
  for (const auto& op : held->ops) bytes += op.bytes.size();
  for (const auto& op : incoming) {
    if (op.bytes.size() > kMaxHeldOperationBytes) {
      ++dropped;
      continue;
    }
    held->ops.push_back(op);
    bytes += op.bytes.size();
  }
  size_t drop = 0;
  while (drop < held->ops.size() &&
         (held->ops.size() - drop > kMaxHeldOperations || bytes > kMaxHeldBytes)) {
    bytes -= held->ops[drop].bytes.size();
    ++drop;
  }
  held->ops.erase(held->ops.begin(), held->ops.begin() + static_cast<ptrdiff_t>(drop));
  return dropped + drop;
}

std::string HeldKey(std::string_view backend, std::string_view conversation_id) {
  return "held/" + std::string(backend) + "/" + std::string(conversation_id);
}

std::string EncodeHeld(const HeldOperations& held) {
  std::string out;
  if (held.ops.empty()) return out;
  wire::ByteWriter w(&out);
  w.U8(kVersion);
  w.U8(held.reader);
  w.Varint(held.ops.size());
  for (const auto& op : held.ops) {
    w.Bytes(op.bytes);
    w.Varint(op.server_time_ms);
    w.Bytes(op.remote_id);
  }
  return out;
}

Result<HeldOperations> DecodeHeld(std::string_view bytes) {
  HeldOperations held;
  if (bytes.empty()) return held;
  wire::ByteReader r(bytes, "held operations");
  uint8_t version = 0;
  uint64_t n = 0;
  TIDINGS_RETURN_IF_ERROR(r.U8("version", &version));
  if (version != kVersion) return r.Error("version", "is not 1");
  TIDINGS_RETURN_IF_ERROR(r.U8("reader", &held.reader));
  TIDINGS_RETURN_IF_ERROR(r.Varint("count", &n));
  if (n > kMaxHeldOperations) return r.Error("count", "is over the bound");
  held.ops.resize(n);
  for (auto& op : held.ops) {
    TIDINGS_RETURN_IF_ERROR(r.Bytes("operation", &op.bytes));
    TIDINGS_RETURN_IF_ERROR(r.Varint("time", &op.server_time_ms));
    TIDINGS_RETURN_IF_ERROR(r.Bytes("remote id", &op.remote_id));
  }
  if (!r.done()) return r.Error("end", "expected, but bytes are left over");
  return held;
}

}  // namespace tidings::sync
