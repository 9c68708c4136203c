// Proof of key between local processes (tidings_sync.h): an auth secret
// sealed in the store, and MACs under it. The daemon's socket handshake
// (docs/daemon.md) rests on these two calls.
#include <cstring>
#include <string>

#include "api/internal.h"
#include "crypto/hash.h"
#include "crypto/secret_key.h"
#include "engine/sync_log.h"
#include "tidings/tidings_sync.h"

namespace {

// Sync state, so a read-only handle in another process can read it; the name
// is part of the daemon's socket protocol.
constexpr char kAuthSecretKey[] = "daemon/socket-secret";
constexpr size_t kAuthSecretBytes = 32;

}  // namespace

using tidings::Status;
using tidings::capi::Guard;

extern "C" {

tidings_code tidings_store_auth_rotate(tidings_store* store, tidings_error* error) {
  return Guard(error, store, [&](tidings::engine::Store& s) {
    static_assert(kAuthSecretBytes == tidings::crypto::SecretKey::size());
    TIDINGS_ASSIGN_OR_RETURN(auto secret, tidings::crypto::SecretKey::Random());
    return s.sync_log().PutSyncState(kAuthSecretKey,
                                     std::string_view(reinterpret_cast<const char*>(secret.data()),
                                                      tidings::crypto::SecretKey::size()));
  });
}

tidings_code tidings_store_auth_mac(tidings_store* store, const void* data, size_t size,
                                    uint8_t* mac, size_t mac_size, tidings_error* error) {
  return Guard(error, store, [&](tidings::engine::Store& s) -> Status {
    if (mac == nullptr || mac_size != TIDINGS_AUTH_MAC_SIZE) {
      return tidings::InvalidArgument("the MAC needs TIDINGS_AUTH_MAC_SIZE (32) bytes of room");
    }
    if (data == nullptr && size > 0) return tidings::InvalidArgument("no data given (NULL)");
    TIDINGS_ASSIGN_OR_RETURN(std::string secret, s.sync_log().GetSyncState(kAuthSecretKey));
    if (secret.empty()) {
      return tidings::Unavailable(
          "the store has no auth secret yet (its writer has not rotated one in): retry");
    }
    auto key = tidings::crypto::SecretKey::FromBytes(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(secret.data()), secret.size()));
    tidings::crypto::Wipe(&secret);
    if (!key.ok()) return tidings::DataLoss("the store's auth secret has the wrong size");
    auto digest =
        tidings::crypto::HmacSha256(std::span<const uint8_t>(key->data(), key->size()),
                                    std::string_view(static_cast<const char*>(data), size));
    std::memcpy(mac, digest.data(), digest.size());
    return Status::Ok();
  });
}

}  // extern "C"
