// Changing a store's keys (docs/engine.md, "Key lifecycle").
//
//   rewrap   a new passphrase, key file or raw key (or new Argon2id limits):
//            the data keys are wrapped again under the new key source and
//            the header replaced. Seconds; no data is rewritten. A store in
//            format 1-3 becomes format 4 on the way, its old key becoming
//            the data key.
//   rotate   a new data key: every record of every column family is opened
//            with the old keys and re-tagged (or re-sealed) with the new,
//            into a new database directory under a new file cipher key;
//            then the header that names the new directory replaces the old
//            one - the commit point - and the old directory is removed.
//            Killed at any moment, the store opens with the old keys (the
//            next writer's open removes the half-written directory) or with
//            the new ones. Records gain the store id binding.
//
// The store must be closed everywhere: a rekey takes the writer lock (Busy
// if a daemon or another writer holds it). Read-only opens racing a
// rotation may fail once with NotFound and succeed when retried.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "common/status.h"
#include "crypto/keys.h"

namespace tidings::engine {

struct RekeyOptions {
  // The key source that unlocks the store afterwards; kind kNone keeps the
  // current one.
  crypto::KeySource new_key;
  // Argon2id limits for the (new) passphrase. Unset: the store's current
  // limits if it stays a passphrase store, else interactive.
  std::optional<crypto::PassphraseProfile> profile;
  // Re-encrypt the store under a new data key (see above).
  bool rotate_data_key = false;
  // Called during a rotation with records copied and an estimate of the
  // total (never below `done`), from the calling thread.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

struct RekeyReport {
  uint32_t format = 0;      // the header format now (4)
  uint64_t generation = 0;  // data-key generation now
  uint64_t records = 0;     // records re-tagged (rotation only)
};

// Rekeys the store at `path`, unlocked with `current`.
// Errors: WrongKey (current does not open it; nothing changed), Busy (open
// for writing elsewhere), DataLoss (a corrupt record or header: nothing
// changed; run `tidings verify`), NotFound / PermissionDenied /
// InvalidArgument for the new key source, IOError, ResourceExhausted.
Result<RekeyReport> Rekey(const std::string& path, crypto::KeySource current, RekeyOptions options);

}  // namespace tidings::engine
