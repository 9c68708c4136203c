// Bounds-checked bytes for the wire: varints, big-endian fixed64 and
// length-prefixed strings. The reader never reads past its input, and every
// failure is a DataLoss that names what was being read and where, so a
// corrupt or hostile input is a clear error, never a crash.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tidings::wire {

class ByteWriter {
 public:
  explicit ByteWriter(std::string* out) : out_(out) {}
  void U8(uint8_t v) { out_->push_back(static_cast<char>(v)); }
  void Varint(uint64_t v);                               // LEB128, 1 to 10 bytes
  void Fixed64BE(uint64_t v);                            // 8 bytes, big-endian
  void Bytes(std::string_view s);                        // varint length, then the bytes
  void BytesList(const std::vector<std::string>& list);  // varint count, then each as Bytes

 private:
  std::string* out_;
};

class ByteReader {
 public:
  // `subject` names the input in errors ("wire operation"). Both are views:
  // the caller keeps `in` and `subject` alive while the reader is used.
  ByteReader(std::string_view in, std::string_view subject) : in_(in), subject_(subject) {}

  // Each reads one value or returns DataLoss("<subject>: <field> ...") and
  // leaves the reader where it was; `field` names the value in that error.
  Status U8(std::string_view field, uint8_t* v);
  Status Varint(std::string_view field, uint64_t* v);  // minimal, at most 64 bits
  Status Fixed64BE(std::string_view field, uint64_t* v);
  Status Bytes(std::string_view field, std::string* s);
  // A BytesList of at most `max_entries` (a bound on what a hostile count
  // makes the reader allocate).
  Status BytesList(std::string_view field, size_t max_entries, std::vector<std::string>* list);

  bool done() const { return pos_ == in_.size(); }
  size_t remaining() const { return in_.size() - pos_; }
  size_t position() const { return pos_; }
  // DataLoss for `problem` at the current position.
  Status Error(std::string_view field, std::string_view problem) const;

 private:
  std::string_view in_;
  std::string_view subject_;
  size_t pos_ = 0;
};

}  // namespace tidings::wire
