// Reading a caller-filled C struct that starts with `uint32_t struct_size`
// (tidings_open_options, tidings_send_request, ...), whatever header version
// the caller compiled against. Not installed, not part of the ABI.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "common/status.h"

namespace tidings::capi {

// Where a struct's last field ends: the bytes this library knows. Bytes past
// it (tail padding, or fields of a newer header) are "unknown".
#define TIDINGS_END_OF(type, last_field) \
  (offsetof(type, last_field) + sizeof(static_cast<type*>(nullptr)->last_field))

// A copy of the caller's struct as this library's T: the fields the caller's
// struct_size covers are copied, the rest stay zero (their defaults).
// `first_size` is the struct's size in its first published version, `known`
// its end in this library (TIDINGS_END_OF). INVALID_ARGUMENT, saying how to
// fix it, when struct_size is 0, smaller than `first_size`, or larger than
// `known` with any unknown byte non-zero (the caller's header is newer than
// this library and uses a field it cannot honour).
template <typename T>
Result<T> ReadCallerStruct(const T* in, size_t first_size, size_t known, const char* name) {
  static_assert(offsetof(T, struct_size) == 0, "struct_size must come first");
  const size_t size = in->struct_size;
  const std::string init = std::string(name) + "_init()";
  if (size == 0) {
    return InvalidArgument(std::string(name) + ".struct_size is 0. Initialise the struct with " +
                           init + ", or set struct_size = sizeof(" + name + ")");
  }
  if (size < first_size) {
    return InvalidArgument(std::string(name) + ".struct_size is " + std::to_string(size) +
                           ", smaller than any version of the struct (" +
                           std::to_string(first_size) + " bytes). Initialise it with " + init);
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(in);
  for (size_t i = known; i < size; ++i) {
    if (bytes[i] != 0) {
      return InvalidArgument(std::string(name) + " sets a field this library does not know (" +
                             "struct_size " + std::to_string(size) + ", this library reads " +
                             std::to_string(known) +
                             " bytes): the library is older than the header you compiled "
                             "against. Link the matching library");
    }
  }
  T out;
  std::memset(&out, 0, sizeof(out));
  std::memcpy(&out, in, size < known ? size : known);
  out.struct_size = static_cast<uint32_t>(sizeof(T));
  return out;
}

}  // namespace tidings::capi
