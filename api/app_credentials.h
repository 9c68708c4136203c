// The app's credentials callback (tidings_sync_options.credentials) as the
// CredentialsProvider every backend of a sync handle signs with.
#pragma once

#include <memory>

#include "sync/aws/credentials.h"
#include "tidings/tidings_sync.h"

namespace tidings::capi {

// Calls `fn` at the first need and again kRefreshBeforeMs before the
// credentials expire (an unexpired set is kept if a refresh fails). Between
// calls the secret key and session token wait in locked, wiped memory
// (crypto::SecretBytes); the copies handed to the signer live for one
// request. Errors say what the callback returned, never what it gave.
// Thread-safe.
std::shared_ptr<aws::CredentialsProvider> AppCredentials(tidings_aws_credentials_fn fn,
                                                         void* context);
inline constexpr int64_t kRefreshBeforeMs = 5 * 60'000;

}  // namespace tidings::capi
