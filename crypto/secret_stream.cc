#include "crypto/secret_stream.h"

#include <sodium.h>

namespace tidings::crypto {

struct SecretStreamState {
  crypto_secretstream_xchacha20poly1305_state state;
};

namespace {

void FreeState(SecretStreamState* s) { sodium_free(s); }  // wipes before freeing

Result<std::unique_ptr<SecretStreamState, void (*)(SecretStreamState*)>> NewState(
    const SecretKey& key) {
  static_assert(kSecretStreamHeaderBytes == crypto_secretstream_xchacha20poly1305_HEADERBYTES);
  static_assert(kSecretStreamOverhead == crypto_secretstream_xchacha20poly1305_ABYTES);
  static_assert(kKeyBytes == crypto_secretstream_xchacha20poly1305_KEYBYTES);
  TIDINGS_RETURN_IF_ERROR(Init());
  if (!key.valid()) return InvalidArgument("no stream key");
  auto* raw = static_cast<SecretStreamState*>(sodium_malloc(sizeof(SecretStreamState)));
  if (raw == nullptr) return ResourceExhausted("cannot allocate locked memory for a stream key");
  return std::unique_ptr<SecretStreamState, void (*)(SecretStreamState*)>(raw, FreeState);
}

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

Result<SecretStreamWriter> SecretStreamWriter::Start(const SecretKey& key, std::string* header) {
  TIDINGS_ASSIGN_OR_RETURN(auto state, NewState(key));
  header->resize(kSecretStreamHeaderBytes);
  crypto_secretstream_xchacha20poly1305_init_push(
      &state->state, reinterpret_cast<unsigned char*>(header->data()), key.data());
  SecretStreamWriter w;
  w.state_ = std::move(state);
  return w;
}

void SecretStreamWriter::Push(std::string_view plain, std::string_view ad, bool final,
                              std::string* out) {
  const size_t at = out->size();
  out->resize(at + plain.size() + kSecretStreamOverhead);
  crypto_secretstream_xchacha20poly1305_push(
      &state_->state, reinterpret_cast<unsigned char*>(out->data() + at), nullptr, Bytes(plain),
      plain.size(), Bytes(ad), ad.size(),
      final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0);
}

Result<SecretStreamReader> SecretStreamReader::Start(const SecretKey& key,
                                                     std::string_view header) {
  if (header.size() != kSecretStreamHeaderBytes) {
    return InvalidArgument("a stream header is " + std::to_string(kSecretStreamHeaderBytes) +
                           " bytes");
  }
  TIDINGS_ASSIGN_OR_RETURN(auto state, NewState(key));
  if (crypto_secretstream_xchacha20poly1305_init_pull(&state->state, Bytes(header), key.data()) !=
      0) {
    return DataLoss("the stream header is invalid");
  }
  SecretStreamReader r;
  r.state_ = std::move(state);
  return r;
}

Status SecretStreamReader::Pull(std::string_view chunk, std::string_view ad, std::string* plain,
                                bool* final) {
  if (chunk.size() < kSecretStreamOverhead) return DataLoss("a stream chunk is cut short");
  plain->resize(chunk.size() - kSecretStreamOverhead);
  unsigned char tag = 0;
  if (crypto_secretstream_xchacha20poly1305_pull(
          &state_->state, reinterpret_cast<unsigned char*>(plain->data()), nullptr, &tag,
          Bytes(chunk), chunk.size(), Bytes(ad), ad.size()) != 0) {
    Wipe(plain);
    return DataLoss("a stream chunk failed authentication");
  }
  *final = tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;
  return Status::Ok();
}

}  // namespace tidings::crypto
