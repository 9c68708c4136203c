// Binary encoding helpers for records: varints and length-prefixed strings.
// Readers are bounds-checked and never read past their input.
#pragma once

#include <endian.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "engine/types.h"

namespace tidings::engine {

class Writer {
 public:
  explicit Writer(std::string* out) : out_(out) {}
  void U8(uint8_t v) { out_->push_back(static_cast<char>(v)); }
  void Varint(uint64_t v);
  void Fixed64BE(uint64_t v);
  void Bytes(std::string_view s);  // length-prefixed
  void Key(const OrderKey& k) {
    Varint(k.hlc);
    Varint(k.replica);
  }
  void Map(const std::map<std::string, std::string>& m);
  void Attachments(const std::vector<Attachment>& list);

 private:
  std::string* out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool U8(uint8_t* v);
  bool Varint(uint64_t* v);
  bool Fixed64BE(uint64_t* v);
  bool Bytes(std::string* s);
  // The next `n` bytes as they are (no length prefix), viewing the input.
  bool Raw(size_t n, std::string_view* s);
  bool Key(OrderKey* k) { return Varint(&k->hlc) && Varint(&k->replica); }
  bool Map(std::map<std::string, std::string>* m);
  // At least one and at most kMaxAttachments, each within its limits.
  bool Attachments(std::vector<Attachment>* list);
  bool done() const { return in_.empty(); }
  size_t remaining() const { return in_.size(); }

 private:
  std::string_view in_;
};

// Big-endian 64- and 32-bit words (keys sort as their bytes). Inline: search
// queries convert every posting's key with them.
inline void EncodeFixed64BE(char* out, uint64_t v) {
  v = htobe64(v);
  std::memcpy(out, &v, 8);
}
inline void PutFixed64BE(std::string* out, uint64_t v) {
  char bytes[8];
  EncodeFixed64BE(bytes, v);
  out->append(bytes, 8);
}
inline uint64_t GetFixed64BE(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return be64toh(v);
}
inline void PutFixed32BE(std::string* out, uint32_t v) {
  v = htobe32(v);
  out->append(reinterpret_cast<const char*>(&v), 4);
}
inline uint32_t GetFixed32BE(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return be32toh(v);
}

}  // namespace tidings::engine
