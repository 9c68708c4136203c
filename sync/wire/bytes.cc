#include "sync/wire/bytes.h"

namespace tidings::wire {

void ByteWriter::Varint(uint64_t v) {
  for (; v >= 0x80; v >>= 7) out_->push_back(static_cast<char>((v & 0x7f) | 0x80));
  out_->push_back(static_cast<char>(v));
}

void ByteWriter::Fixed64BE(uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out_->push_back(static_cast<char>(v >> shift));
}

void ByteWriter::Bytes(std::string_view s) {
  Varint(s.size());
  out_->append(s);
}

void ByteWriter::BytesList(const std::vector<std::string>& list) {
  Varint(list.size());
  for (const auto& s : list) Bytes(s);
}

Status ByteReader::Error(std::string_view field, std::string_view problem) const {
  return DataLoss(std::string(subject_) + ": " + std::string(field) + " " + std::string(problem) +
                  " at byte " + std::to_string(pos_) + " of " + std::to_string(in_.size()));
}

Status ByteReader::U8(std::string_view field, uint8_t* v) {
  if (pos_ == in_.size()) return Error(field, "is missing (input ends)");
  *v = static_cast<uint8_t>(in_[pos_++]);
  return Status::Ok();
}

Status ByteReader::Varint(std::string_view field, uint64_t* v) {
  uint64_t result = 0;
  for (size_t i = 0; i < 10; ++i) {
    if (pos_ + i == in_.size()) return Error(field, "is truncated (input ends in a varint)");
    const auto byte = static_cast<uint8_t>(in_[pos_ + i]);
    // The tenth byte holds bit 63 only.
    if (i == 9 && byte > 1) return Error(field, "overflows 64 bits");
    result |= static_cast<uint64_t>(byte & 0x7f) << (7 * i);
    if ((byte & 0x80) == 0) {
      // A zero last byte could have been left off: one value, one encoding.
      if (byte == 0 && i > 0) return Error(field, "is not minimal (a varint ends in 0x00)");
      pos_ += i + 1;
      *v = result;
      return Status::Ok();
    }
  }
  return Error(field, "overflows 64 bits");
}

Status ByteReader::Fixed64BE(std::string_view field, uint64_t* v) {
  if (in_.size() - pos_ < 8) return Error(field, "is truncated (needs 8 bytes)");
  uint64_t result = 0;
  for (size_t i = 0; i < 8; ++i) result = result << 8 | static_cast<uint8_t>(in_[pos_ + i]);
  pos_ += 8;
  *v = result;
  return Status::Ok();
}

Status ByteReader::Bytes(std::string_view field, std::string* s) {
  const size_t start = pos_;
  uint64_t n = 0;
  TIDINGS_RETURN_IF_ERROR(Varint(field, &n));
  if (n > in_.size() - pos_) {
    Status truncated = Error(field, "is truncated (its length runs past the input)");
    pos_ = start;
    return truncated;
  }
  s->assign(in_.substr(pos_, static_cast<size_t>(n)));
  pos_ += static_cast<size_t>(n);
  return Status::Ok();
}

Status ByteReader::BytesList(std::string_view field, size_t max_entries,
                             std::vector<std::string>* list) {
  const size_t start = pos_;
  uint64_t n = 0;
  TIDINGS_RETURN_IF_ERROR(Varint(field, &n));
  if (n > max_entries) {
    Status too_many = Error(field, "has too many entries");
    pos_ = start;
    return too_many;
  }
  std::vector<std::string> read(static_cast<size_t>(n));
  for (auto& s : read) {
    Status ok = Bytes(field, &s);
    if (!ok.ok()) {
      pos_ = start;
      return ok;
    }
  }
  *list = std::move(read);
  return Status::Ok();
}

}  // namespace tidings::wire
