// The wire codec (sync/wire): what backends store and send for an operation.
// Links tidings_wire alone: no store, no RocksDB.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "sync/wire/bytes.h"
#include "sync/wire/operation_codec.h"

namespace tidings::wire {
namespace {

using engine::Operation;
using engine::OpKind;

Operation Base(OpKind kind) {
  Operation op;
  op.kind = kind;
  op.op_id = "op-" + std::to_string(static_cast<int>(kind));
  op.conversation_id = "visit-42";
  op.author = "dr-lee";
  op.at = {(uint64_t{1764800000000} << 16) | 7, 0xfedcba9876543210};
  op.message_id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
  return op;
}

// One operation of every kind, each with the fields that kind uses.
std::vector<Operation> EveryKind() {
  std::vector<Operation> ops;
  Operation send = Base(OpKind::kSend);
  send.op_id = send.message_id;
  send.body = std::string("See you\0Wednesday \xf0\x9f\x91\x8b", 22);
  send.content_type = "text/plain";
  send.metadata = {{"a", ""}, {"priority", "high"}, {"z\x01", std::string(300, 'v')}};
  ops.push_back(send);
  Operation edit = Base(OpKind::kEdit);
  edit.body = "See you Thursday";
  edit.content_type = "text/markdown";
  ops.push_back(edit);
  ops.push_back(Base(OpKind::kDelete));
  Operation react = Base(OpKind::kReact);
  react.reaction = "\xf0\x9f\x91\x8d";
  ops.push_back(react);
  Operation unreact = react;
  unreact.kind = OpKind::kUnreact;
  ops.push_back(unreact);
  Operation read = Base(OpKind::kReadMarker);
  read.read_up_to = {~uint64_t{0}, 1};
  ops.push_back(read);
  Operation photo = send;
  photo.message_id = photo.op_id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c";
  photo.attachments.push_back({.name = "rash.jpg",
                               .content_type = "image/jpeg",
                               .size = 2'000'000,
                               .object = std::string(32, '\x11'),
                               .object_size = 2'000'550,
                               .content_key = std::string(32, '\x22'),
                               .location = "clinic-media",
                               .preview = std::string(100, '\x33')});
  photo.attachments.push_back({.name = "",
                               .content_type = "application/pdf",
                               .size = 0,
                               .object = std::string(32, '\x44'),
                               .object_size = 49,
                               .content_key = std::string(32, '\x55'),
                               .body = true});
  ops.push_back(photo);
  return ops;
}

TEST(WireCodec, RoundTripsEveryKind) {
  for (const Operation& op : EveryKind()) {
    const std::string bytes = wire::EncodeOperation(op);
    ASSERT_EQ(static_cast<uint8_t>(bytes[0]),
              op.attachments.empty() ? kFirstOperationVersion : kOperationVersion);
    auto back = wire::DecodeOperation(bytes);
    ASSERT_TRUE(back.ok()) << static_cast<int>(op.kind) << ": " << back.status().ToString();
    EXPECT_EQ(*back, op) << static_cast<int>(op.kind);
  }
}

TEST(WireCodec, RefusesAttachmentsOutsideTheirLimits) {
  const Operation photo = EveryKind().back();
  ASSERT_FALSE(photo.attachments.empty());
  auto refused = [](const Operation& op) {
    return wire::DecodeOperation(wire::EncodeOperation(op)).status().code();
  };
  Operation short_key = photo;
  short_key.attachments[0].content_key.resize(16);
  EXPECT_EQ(refused(short_key), Code::kDataLoss);
  Operation long_object = photo;
  long_object.attachments[1].object.push_back('x');
  EXPECT_EQ(refused(long_object), Code::kDataLoss);
  Operation big_preview = photo;
  big_preview.attachments[0].preview.assign(engine::kMaxPreviewBytes + 1, 'p');
  EXPECT_EQ(refused(big_preview), Code::kDataLoss);
  Operation many = photo;
  many.attachments.assign(engine::kMaxAttachments + 1, photo.attachments[0]);
  EXPECT_EQ(refused(many), Code::kDataLoss);
  Operation on_edit = photo;
  on_edit.kind = OpKind::kEdit;
  EXPECT_EQ(refused(on_edit), Code::kDataLoss);
  Operation fine = photo;
  fine.attachments.assign(engine::kMaxAttachments, photo.attachments[0]);
  EXPECT_EQ(refused(fine), Code::kOk);
}

TEST(WireCodec, LeavesOutWhatTheBackendSets) {
  Operation op = EveryKind()[0];
  const std::string plain = wire::EncodeOperation(op);
  op.server_time_ms = 1764800000123;
  op.remote_id = "17/0";
  EXPECT_EQ(wire::EncodeOperation(op), plain);
  auto back = wire::DecodeOperation(plain);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->server_time_ms, 0u);
  EXPECT_EQ(back->remote_id, "");
}

// The layout is the format: a change to it must be a new version, so the
// bytes of one operation are pinned here.
TEST(WireCodec, VersionTwoLayoutIsPinned) {
  Operation op;
  op.kind = OpKind::kReact;
  op.op_id = "o";
  op.conversation_id = "c";
  op.author = "a";
  op.at = {0x0102, 0x03};
  op.message_id = "m";
  op.metadata = {{"k", "v"}};
  op.reaction = "r";
  op.read_up_to = {0, 0x04};
  const std::string expected =
      std::string("\x02\x04", 2) +
      "\x01o\x01"
      "c\x01"
      "a" +
      std::string("\0\0\0\0\0\0\x01\x02", 8) + std::string("\0\0\0\0\0\0\0\x03", 8) + "\x01m" +
      std::string("\0\0\x01\x01k\x01v\x01r", 9) + std::string(15, '\0') + "\x04";
  EXPECT_EQ(wire::EncodeOperation(op), expected);
}

TEST(WireCodec, EveryTruncationIsDataLoss) {
  for (const Operation& op : EveryKind()) {
    const std::string bytes = wire::EncodeOperation(op);
    for (size_t n = 0; n < bytes.size(); ++n) {
      auto cut = wire::DecodeOperation(std::string_view(bytes).substr(0, n));
      ASSERT_FALSE(cut.ok()) << static_cast<int>(op.kind) << " cut to " << n << " bytes";
      EXPECT_EQ(cut.status().code(), Code::kDataLoss) << cut.status().ToString();
      EXPECT_NE(cut.status().message().find("malformed wire operation"), std::string::npos);
    }
  }
}

TEST(WireCodec, TrailingBytesAreDataLoss) {
  auto extra = wire::DecodeOperation(wire::EncodeOperation(EveryKind()[1]) + "x");
  ASSERT_FALSE(extra.ok());
  EXPECT_EQ(extra.status().code(), Code::kDataLoss);
  EXPECT_NE(extra.status().message().find("left over"), std::string::npos);
}

TEST(WireCodec, UnknownKindIsDataLoss) {
  for (uint8_t kind : {0, 7, 255}) {
    std::string bytes = wire::EncodeOperation(EveryKind()[2]);
    bytes[1] = static_cast<char>(kind);
    auto bad = wire::DecodeOperation(bytes);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.status().code(), Code::kDataLoss);
    EXPECT_NE(bad.status().message().find("kind is unknown"), std::string::npos);
  }
}

TEST(WireCodec, MetadataMustBeCanonical) {
  // Two keys, the second equal to the first: one map, two encodings otherwise.
  Operation op = Base(OpKind::kSend);
  op.metadata = {{"k", "1"}, {"l", "2"}};
  std::string bytes = wire::EncodeOperation(op);
  const size_t second = bytes.find(
      "\x01l\x01"
      "2");
  ASSERT_NE(second, std::string::npos);
  bytes[second + 1] = 'k';
  auto dup = wire::DecodeOperation(bytes);
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().code(), Code::kDataLoss);
  EXPECT_NE(dup.status().message().find("out of order"), std::string::npos);
}

TEST(WireCodec, VersionMismatch) {
  std::string bytes = wire::EncodeOperation(EveryKind()[0]);
  bytes[0] = static_cast<char>(kOperationVersion + 1);
  auto newer = wire::DecodeOperation(bytes);
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(newer.status().message().find("upgrade"), std::string::npos);
  bytes[0] = 0;
  auto zero = wire::DecodeOperation(bytes);
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.status().code(), Code::kDataLoss);
}

TEST(WireCodec, NonMinimalVarintIsDataLoss) {
  // op_id's length 1 written in two bytes: one operation, one encoding.
  std::string bytes = wire::EncodeOperation(EveryKind()[2]);
  ASSERT_EQ(bytes[2], '\x04');  // "op-3"
  bytes.replace(2, 1, std::string("\x84\x00", 2));
  auto bad = wire::DecodeOperation(bytes);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kDataLoss);
  EXPECT_NE(bad.status().message().find("not minimal"), std::string::npos);
}

TEST(WireCodec, OverlongVarintIsDataLoss) {
  std::string bytes =
      std::string({static_cast<char>(kOperationVersion), 1}) + std::string(10, '\xff') + "\x01";
  auto bad = wire::DecodeOperation(bytes);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kDataLoss);
  EXPECT_NE(bad.status().message().find("overflows 64 bits"), std::string::npos);
}

// Random bytes, and encodings with random bytes changed: each decodes to an
// operation or to a clear error, never a crash or a read out of bounds (the
// sanitizer build checks the latter).
TEST(WireCodec, RandomInputNeverCrashes) {
  std::mt19937_64 rng(14);
  const std::vector<Operation> kinds = EveryKind();
  size_t errors = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes;
    if (i % 2 == 0) {
      bytes.resize(rng() % 64);
      for (char& c : bytes) c = static_cast<char>(rng());
      if (!bytes.empty() && i % 4 == 0) bytes[0] = static_cast<char>(kOperationVersion);
    } else {
      bytes = wire::EncodeOperation(kinds[rng() % kinds.size()]);
      for (int flips = 1 + static_cast<int>(rng() % 3); flips > 0; --flips) {
        bytes[rng() % bytes.size()] = static_cast<char>(rng());
      }
    }
    auto decoded = wire::DecodeOperation(bytes);
    if (decoded.ok()) {
      EXPECT_EQ(wire::EncodeOperation(*decoded), bytes)
          << "a decoded operation re-encodes the same";
      continue;
    }
    ++errors;
    const Code code = decoded.status().code();
    EXPECT_TRUE(code == Code::kDataLoss || code == Code::kFailedPrecondition)
        << decoded.status().ToString();
    EXPECT_FALSE(decoded.status().message().empty());
  }
  EXPECT_GT(errors, 10000u);
}

// Version 0: the bytes DynamoDB items held before the wire codec (the store's
// encoding, engine op version 1), written out by hand so this test needs no
// engine code.
std::string LegacyBytes(const Operation& op) {
  std::string out;
  ByteWriter w(&out);
  w.U8(1);
  w.U8(static_cast<uint8_t>(op.kind));
  w.Bytes(op.op_id);
  w.Bytes(op.conversation_id);
  w.Bytes(op.author);
  w.Varint(op.at.hlc);
  w.Varint(op.at.replica);
  w.Bytes(op.message_id);
  w.Bytes(op.body);
  w.Bytes(op.content_type);
  w.Varint(op.metadata.size());
  for (const auto& [k, v] : op.metadata) {
    w.Bytes(k);
    w.Bytes(v);
  }
  w.Bytes(op.reaction);
  w.Varint(op.read_up_to.hlc);
  w.Varint(op.read_up_to.replica);
  w.Varint(0);  // server_time_ms
  w.Bytes("");  // remote_id
  return out;
}

TEST(WireCodec, ReadsLegacyVersionZero) {
  for (const Operation& op : EveryKind()) {
    if (!op.attachments.empty()) continue;  // legacy items predate attachments
    const std::string bytes = LegacyBytes(op);
    auto back = DecodeLegacyOperation(bytes);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, op);
    for (size_t n = 0; n < bytes.size(); ++n) {
      auto cut = DecodeLegacyOperation(std::string_view(bytes).substr(0, n));
      ASSERT_FALSE(cut.ok()) << "cut to " << n;
      EXPECT_EQ(cut.status().code(), Code::kDataLoss);
    }
  }
  // A wire operation is not a legacy one, nor a legacy one a wire one.
  EXPECT_FALSE(DecodeLegacyOperation(wire::EncodeOperation(EveryKind()[3])).ok());
  std::string legacy_first = wire::EncodeOperation(EveryKind()[3]);
  legacy_first[0] = '\x01';
  auto misread = wire::DecodeOperation(legacy_first);
  ASSERT_FALSE(misread.ok());
  EXPECT_EQ(misread.status().code(), Code::kDataLoss);
}

TEST(WireBytes, ReaderNamesTheFieldAndStaysInBounds) {
  std::string in;
  ByteWriter w(&in);
  w.Bytes("hello");
  ByteReader r(std::string_view(in).substr(0, 4), "test input");
  std::string s;
  Status st = r.Bytes("greeting", &s);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kDataLoss);
  EXPECT_NE(st.message().find("test input: greeting is truncated"), std::string::npos)
      << st.message();
  EXPECT_EQ(r.position(), 0u) << "a failed read leaves the reader where it was";
}

TEST(WireBytes, AListRoundTripsAndAFailedOneLeavesTheReaderWhereItWas) {
  const std::vector<std::string> members = {"alice", "", "bob"};
  std::string in;
  ByteWriter w(&in);
  w.BytesList(members);
  std::vector<std::string> read;
  ByteReader whole(in, "test input");
  ASSERT_TRUE(whole.BytesList("members", 3, &read).ok());
  EXPECT_EQ(read, members);
  EXPECT_TRUE(whole.done());

  // More entries than the bound: refused before anything is allocated.
  std::vector<std::string> untouched = {"kept"};
  ByteReader bounded(in, "test input");
  Status too_many = bounded.BytesList("members", 2, &untouched);
  EXPECT_EQ(too_many.code(), Code::kDataLoss);
  EXPECT_NE(too_many.message().find("members has too many entries"), std::string::npos)
      << too_many.message();
  EXPECT_EQ(bounded.position(), 0u);
  EXPECT_EQ(untouched, std::vector<std::string>{"kept"});

  // An entry cut short: the list is not half read.
  ByteReader cut(std::string_view(in).substr(0, in.size() - 1), "test input");
  Status truncated = cut.BytesList("members", 3, &untouched);
  EXPECT_EQ(truncated.code(), Code::kDataLoss);
  EXPECT_EQ(cut.position(), 0u);
  EXPECT_EQ(untouched, std::vector<std::string>{"kept"});
}

}  // namespace
}  // namespace tidings::wire
