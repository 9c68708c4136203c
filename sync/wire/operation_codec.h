// The wire encoding of one engine::Operation: the bytes a backend stores or
// sends for an operation, versioned apart from the store's own record
// encoding (engine/) so that either can change without the other.
//
// This is the operation only, with no framing: a backend frames several
// (DynamoDB: length-prefixed inside one item, docs/dynamodb.md), and an
// envelope (signing, encryption) wraps these bytes as they are.
//
// Version 2 (the first: byte 1 starts the store's own encoding, which legacy
// items hold, so an older reader refuses these bytes rather than misreading
// them), every integer as written by wire::ByteWriter:
//   u8 version (2) | u8 kind (engine::OpKind, 1..6)
//   bytes op_id | bytes conversation_id | bytes author
//   fixed64 at.hlc | fixed64 at.replica
//   bytes message_id | bytes body | bytes content_type
//   varint n | n x (bytes key, bytes value)   metadata, keys strictly ascending
//   bytes reaction
//   fixed64 read_up_to.hlc | fixed64 read_up_to.replica
// and nothing after. server_time_ms and remote_id are not encoded: the
// backend that delivers an operation sets them.
//
// Version 3, written only for a send with attachments: version 2's fields,
// then
//   varint n (1..16) | n x (bytes name | bytes content_type | varint size |
//     bytes object (32) | varint object_size | bytes content_key (32) |
//     bytes location | bytes preview | u8 flags (bit 0: the message's body))
// and nothing after.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "engine/types.h"

namespace tidings::wire {

inline constexpr uint8_t kFirstOperationVersion = 2;
inline constexpr uint8_t kOperationVersion = 3;

// Never fails: every Operation has an encoding.
std::string EncodeOperation(const engine::Operation& op);

// The operation in `bytes`, with server_time_ms 0 and remote_id empty.
// DataLoss for anything malformed (empty, truncated, an unknown kind, a
// varint over 64 bits, metadata keys out of order, bytes left over);
// FailedPrecondition for a version this build does not read (written by a
// newer Tidings: upgrade). Never reads outside `bytes`. `newest` is the
// newest version read; tests pass an older one to play an older build.
Result<engine::Operation> DecodeOperation(std::string_view bytes,
                                          uint8_t newest = kOperationVersion);

// Version 0: the encoding DynamoDB items held before this codec existed (the
// store's record encoding of an operation, engine encoding version 1).
// Read-only, so that tables written by earlier builds still sync; nothing
// writes it. Same errors as DecodeOperation.
Result<engine::Operation> DecodeLegacyOperation(std::string_view bytes);

}  // namespace tidings::wire
