#include "sync/dynamodb/log_items.h"

#include <optional>

#include "sync/aws/base64.h"
#include "sync/wire/bytes.h"
#include "sync/wire/operation_codec.h"

namespace tidings::dynamodb {
namespace {

// The newest item format this build reads; an item with a larger "v" was
// written by a newer Tidings and is an error, never skipped.
constexpr uint64_t kNewestFormat = kFramesFormat;

std::string Where(const aws::DynamoItem& item) { return "DynamoDB item at sk " + item.sk_number; }

// The item's packed entries, or nullopt (and the reason is dropped: the item
// is skipped and counted) when it is not an item of `format` at all.
// `format_ok` says which "v" values hold this kind of entries.
Result<std::optional<std::string>> ItemPayload(const aws::DynamoItem& item, bool format_ok,
                                               const std::string& b64) {
  if (item.format > kNewestFormat) {
    return FailedPrecondition(Where(item) + " has format " + std::to_string(item.format) +
                              ", newer than this build reads (" + std::to_string(kNewestFormat) +
                              "): upgrade Tidings");
  }
  std::string raw;
  if (!item.malformed.empty() || !format_ok || b64.empty() || !aws::Base64Decode(b64, &raw)) {
    return std::optional<std::string>();
  }
  return std::optional<std::string>(std::move(raw));
}

}  // namespace

PackedEntry PackOperation(const engine::Operation& op) {
  PackedEntry out{op.op_id, {}};
  wire::ByteWriter(&out.encoded).Bytes(wire::EncodeOperation(op));
  return out;
}

PackedEntry PackFrame(const sync::Frame& frame) {
  PackedEntry out{frame.id, {}};
  wire::ByteWriter w(&out.encoded);
  w.Bytes(frame.id);
  w.Bytes(frame.bytes);
  return out;
}

bool ValidFrameId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<Unpacked<engine::Operation>> UnpackOperations(const aws::DynamoItem& item) {
  Unpacked<engine::Operation> out;
  TIDINGS_ASSIGN_OR_RETURN(
      auto raw, ItemPayload(item, item.format == 0 || item.format == kOpsFormat, item.ops_b64));
  if (!raw) {
    out.skipped = 1;
    return out;
  }
  const auto decode = [legacy = item.format == 0](std::string_view bytes) {
    return legacy ? wire::DecodeLegacyOperation(bytes) : wire::DecodeOperation(bytes);
  };
  const std::string where = Where(item);  // the reader keeps a view of it
  wire::ByteReader r(*raw, where);
  for (size_t index = 0; !r.done(); ++index) {
    std::string bytes;
    if (!r.Bytes("operation", &bytes).ok()) {
      ++out.skipped;  // the framing is broken: nothing after this point can be found
      break;
    }
    Result<engine::Operation> op = decode(bytes);
    if (op.status().code() == Code::kFailedPrecondition) {
      out.too_new.push_back(
          {std::move(bytes), item.time_ms, std::to_string(item.sk) + "/" + std::to_string(index)});
      continue;
    }
    if (!op.ok()) {
      ++out.skipped;  // this one does not decode; the ones after it may
      continue;
    }
    op->server_time_ms = item.time_ms;
    op->remote_id = std::to_string(item.sk) + "/" + std::to_string(index);
    out.entries.push_back(std::move(*op));
  }
  return out;
}

Result<Unpacked<sync::Frame>> UnpackFrames(const aws::DynamoItem& item) {
  Unpacked<sync::Frame> out;
  TIDINGS_ASSIGN_OR_RETURN(auto raw,
                           ItemPayload(item, item.format == kFramesFormat, item.frames_b64));
  if (!raw) {
    out.skipped = 1;
    return out;
  }
  const std::string where = Where(item);  // the reader keeps a view of it
  wire::ByteReader r(*raw, where);
  for (size_t index = 0; !r.done(); ++index) {
    sync::Frame frame;
    if (!r.Bytes("frame id", &frame.id).ok() || !r.Bytes("frame", &frame.bytes).ok()) {
      ++out.skipped;  // the framing is broken: nothing after this point can be found
      break;
    }
    if (!ValidFrameId(frame.id) || frame.bytes.size() > kMaxFrameBytes) {
      ++out.skipped;  // no Tidings writer makes such a frame
      continue;
    }
    frame.server_time_ms = item.time_ms;
    frame.remote_id = std::to_string(item.sk) + "/" + std::to_string(index);
    out.entries.push_back(std::move(frame));
  }
  return out;
}

}  // namespace tidings::dynamodb
