// The daemon's local socket protocol (docs/daemon.md has the full spec).
//
// A Unix-domain stream socket `<store>/daemon.sock` (mode 0600 in the 0700
// store directory). Frames: a 4-byte big-endian length (at most kMaxFrame)
// and a payload of fields, each a 2-byte big-endian name length, the name, a
// 4-byte big-endian value length and the value. Field "op" names the frame.
//
// Handshake: the daemon sends {op=hello, version=1, nonce=32 random bytes};
// the client answers {op=auth, nonce=32 random bytes, mac=HMAC-SHA256(K,
// "tidings-daemon-v1 client" || server nonce || client nonce)}; the daemon
// checks it (constant time) and answers {op=ok, mac=HMAC-SHA256(K,
// "tidings-daemon-v1 server" || client nonce || server nonce)} so the client
// knows it reached the daemon, or {op=error} and closes. K is the store's
// auth secret (tidings_store_auth_rotate): 32 random bytes the daemon makes
// at every start and the library keeps sealed in the store, so only a
// holder of the store key can open the store and MAC with it
// (tidings_store_auth_mac). Neither key nor secret crosses the socket.
//
// Then requests and answers, one at a time: {op=send|edit|delete|react|
// mark-read|conversation|conversation-create|conversation-upgrade|
// keys-trust|outbox-retry|outbox-discard|poke|typing, ...} ->
// {op=ok, ...} after the write is committed, or {op=error, code, message}.
// Search: {op=search, ...} (daemon/search_op.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "tidings/tidings_sync.hpp"

namespace tidings::daemon {

inline constexpr uint32_t kMaxFrame = 1 << 20;
inline constexpr size_t kNonceBytes = 32;
inline constexpr char kSocketName[] = "daemon.sock";

// A public API status as the daemon's own.
inline Status FromApi(const api::Status& s) {
  return s.ok() ? Status::Ok() : Status(static_cast<Code>(s.code()), s.message());
}

class Fields {
 public:
  Fields() = default;
  Fields(std::initializer_list<std::pair<std::string, std::string>> init) : items_(init) {}
  void Add(std::string name, std::string value) {
    items_.emplace_back(std::move(name), std::move(value));
  }
  // The first value of `name`, or "".
  std::string Get(std::string_view name) const;
  bool Has(std::string_view name) const;
  std::vector<std::string> All(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

std::string EncodeFields(const Fields& f);
// False on malformed input.
bool DecodeFields(std::string_view bytes, Fields* out);

// Blocking frame I/O on a connected socket. Unavailable when the peer closed
// or the socket failed (timeouts included), InvalidArgument for a bad frame.
Status WriteFrame(int fd, const Fields& f);
Result<Fields> ReadFrame(int fd);

// The handshake's MAC for `role` ("client", "server") under the store's auth
// secret; Unavailable until the daemon rotated one in.
Result<std::string> AuthMac(api::Store& store, std::string_view role, std::string_view first_nonce,
                            std::string_view second_nonce);
// Compares MACs in constant time.
bool SameMac(std::string_view a, std::string_view b);
// kNonceBytes fresh random bytes.
std::string NewNonce();

// A Status as an error frame and back.
Fields ErrorFields(const Status& s);
Status StatusFromFields(const Fields& f);

// What the daemon's sync engines offer to requests (poke, retry with
// bookkeeping). Any hook may be empty (the client's direct fallback).
struct ExecuteHooks {
  std::function<void()> poke;
  std::function<Status(uint64_t)> retry_failed;
  std::function<Status(uint64_t)> discard_failed;
  // This user is typing in a conversation (rate-limited, never stored).
  std::function<Status(const std::string&)> typing;
};

// Runs one request against a writable store and returns the answer frame.
// Shared by the daemon (socket requests) and the client (direct writes when
// no daemon runs), so both behave the same. A send with an `id` whose
// message already exists with the same conversation and sender answers ok:
// it is the retry of a send whose answer was lost.
Fields Execute(api::Store& store, const Fields& request, const ExecuteHooks& hooks);

// True for the ops Execute knows (a new request kind is added to both), so
// metrics give each its own series and fold anything else into one.
bool IsRequestOp(std::string_view op);

}  // namespace tidings::daemon
