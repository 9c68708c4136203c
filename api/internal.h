// Shared by the api/ translation units; not installed, not part of the ABI.
#pragma once

#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "api/struct_size.h"
#include "common/status.h"
#include "engine/store.h"
#include "tidings/tidings.h"

namespace tidings::capi {

// The integer a C caller put in an enum-typed parameter or field, read
// without an enum load: a C app may pass any int, and reading one outside
// the enum's values as the enum type is undefined in C++ (clang's UBSan
// stops there).
template <typename Enum>
int RawEnum(const Enum& e) {
  static_assert(sizeof(Enum) == sizeof(int));
  int v;
  std::memcpy(&v, &e, sizeof v);
  return v;
}

// A C string argument that may be NULL (read as empty).
inline std::string OrEmpty(const char* s) { return s == nullptr ? std::string() : std::string(s); }

// Structs a returned object points to, and the arrays of pointers to them
// that it exposes (so each struct may grow): `ptrs[i]` is `&items[i]`.
template <typename T>
struct PointedArray {
  std::vector<T> items;
  std::vector<const T*> ptrs;
  void Set(std::vector<T> v) {
    items = std::move(v);
    ptrs.clear();
    for (const T& t : items) ptrs.push_back(&t);
  }
};

// The arrays a tidings_message points into, besides the engine::Message's own
// strings.
struct MessageArrays {
  PointedArray<tidings_reaction> reactions;
  PointedArray<tidings_pair> metadata;
  PointedArray<tidings_pair> remote_ids;
  PointedArray<tidings_attachment> attachments;
  std::vector<std::string> object_hex;  // attachments' object names
};

// An attachment object's name as the C API shows it (64 hex digits), and
// back (InvalidArgument if it is not one).
std::string ObjectHex(std::string_view object);
Result<std::string> ObjectFromHex(const char* hex);

// Points *out at `m`'s strings and `a`'s arrays: valid while both live
// unmoved.
void FillMessage(const engine::Message& m, MessageArrays* a, tidings_message* out);

// Fills `error` (if not NULL) with `code` and `message`, cut to fit at a
// UTF-8 boundary.
void SetError(tidings_error* error, tidings_code code, const std::string& message);

// The C code of `s`; fills or clears `error`.
tidings_code ToCode(const Status& s, tidings_error* error);

engine::Store* EngineOf(tidings_store* store);

// This device's end-to-end keys, made and saved if the store has none: a
// writable open calls it, so `tidings init` makes them (api/e2e_api.cc).
Status EnsureDeviceKeys(engine::Store& store);

// Runs `f` (returning Status) so that nothing escapes into C: any exception
// becomes RESOURCE_EXHAUSTED (out of memory) or INTERNAL. The exception's text
// is not copied into the error, as it could hold data we do not control.
template <typename F>
tidings_code Guard(tidings_error* error, F&& f) {
  try {
    return ToCode(f(), error);
  } catch (const std::bad_alloc&) {
    return ToCode(ResourceExhausted("out of memory"), error);
  } catch (...) {
    return ToCode(Internal("an unexpected exception inside Tidings; please report it"), error);
  }
}

// As above for a store call: INVALID_ARGUMENT for a NULL store.
template <typename F>
tidings_code Guard(tidings_error* error, tidings_store* store, F&& f) {
  return Guard(error, [&]() -> Status {
    if (store == nullptr) return InvalidArgument("no store given (NULL)");
    return f(*EngineOf(store));
  });
}

}  // namespace tidings::capi
