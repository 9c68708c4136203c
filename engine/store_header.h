// The store header: the file TIDINGS beside the database, plaintext and
// checksummed (SHA-256), holding nothing secret - the format number, how the
// key is given, passphrase parameters and salt, a sealed key check, and how
// records are protected. Its presence means "created": it is written last,
// atomically. Layout in docs/engine.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "crypto/keys.h"
#include "crypto/sealer.h"

namespace tidings::engine {

inline constexpr char kHeaderFile[] = "TIDINGS";
inline constexpr char kHeaderMagic[8] = {'T', 'I', 'D', 'I', 'N', 'G', 'S', '1'};
// The key check: kKeyCheckPlain sealed with the key-check sub-key, bound to
// kKeyCheckAd. A key that opens it is the store's key.
inline constexpr char kKeyCheckAd[] = "tidings-key-check";
inline constexpr char kKeyCheckPlain[] = "tidings key check v1";

// Format 1: sealed records. Format 2 adds the record protection byte
// (BLAKE2b tags). Format 3: SipHash tags - older Tidings refuses it with
// "upgrade Tidings" instead of reading the byte as corruption.
struct Header {
  uint32_t format = 2;
  uint8_t key_kind = 0;  // crypto::KeySource::Kind
  crypto::PassphraseParams params;
  std::string key_check;  // sealed kKeyCheckPlain
  crypto::RecordProtection records = crypto::RecordProtection::kSealed;
};

std::string EncodeHeader(const Header& h);
// DataLoss (naming `path`) for a corrupt header; FailedPrecondition for a
// format newer than this code reads.
Status DecodeHeader(std::string_view in, Header* h, const std::string& path);

// Replaces `path` with `data`: written to a temporary file, fsynced, renamed
// over `path`, and the rename made durable.
Status WriteFileAtomically(const std::string& path, std::string_view data);
// The first MiB or so of `path`; NotFound if it does not exist.
Result<std::string> ReadFile(const std::string& path);

}  // namespace tidings::engine
