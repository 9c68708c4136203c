#include "api/app_credentials.h"

#include <mutex>
#include <string>

#include "api/internal.h"
#include "common/clock.h"
#include "crypto/secret_key.h"

// What one call of the app's callback handed over.
struct tidings_aws_credentials_sink {
  bool set = false;
  std::string key_id;  // not a secret
  tidings::crypto::SharedSecret secret;
  tidings::crypto::SharedSecret token;
  int64_t expires_at_ms = 0;
};

namespace tidings::capi {
namespace {

class AppCredentialsProvider final : public aws::CredentialsProvider {
 public:
  AppCredentialsProvider(tidings_aws_credentials_fn fn, void* context)
      : fn_(fn), context_(context) {}

  Result<aws::Credentials> Get() override {
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t now = WallMs();
    const bool usable =
        current_.set && (current_.expires_at_ms == 0 || now < current_.expires_at_ms);
    if (!usable ||
        (current_.expires_at_ms != 0 && now >= current_.expires_at_ms - kRefreshBeforeMs)) {
      Status fetched = Fetch();
      if (!fetched.ok() && !usable) return fetched;
    }
    aws::Credentials out;
    out.access_key_id = current_.key_id;
    out.secret_access_key = current_.secret;
    out.session_token = current_.token;
    out.expires_at_ms = current_.expires_at_ms;
    return out;
  }

 private:
  // REQUIRES: mu_
  Status Fetch() {
    tidings_aws_credentials_sink sink;
    const tidings_code code = fn_(context_, &sink);
    if (code != TIDINGS_OK) {
      const Code as = code == TIDINGS_UNAUTHENTICATED ? Code::kUnauthenticated : Code::kUnavailable;
      return Status(as, std::string("the app's AWS credentials callback returned ") +
                            tidings_code_name(code) + ": no credentials to sign with now");
    }
    if (!sink.set) {
      return Unauthenticated(
          "the app's AWS credentials callback returned OK without calling "
          "tidings_aws_credentials_set");
    }
    current_ = std::move(sink);
    return Status::Ok();
  }

  const tidings_aws_credentials_fn fn_;
  void* const context_;
  std::mutex mu_;
  tidings_aws_credentials_sink current_;  // REQUIRES: mu_
};

}  // namespace

std::shared_ptr<aws::CredentialsProvider> AppCredentials(tidings_aws_credentials_fn fn,
                                                         void* context) {
  return std::make_shared<AppCredentialsProvider>(fn, context);
}

}  // namespace tidings::capi

extern "C" tidings_code tidings_aws_credentials_set(tidings_aws_credentials_sink* sink,
                                                    const char* access_key_id,
                                                    const char* secret_access_key,
                                                    const char* session_token,
                                                    int64_t expires_at_ms, tidings_error* error) {
  return tidings::capi::Guard(error, [&]() -> tidings::Status {
    if (sink == nullptr) {
      return tidings::InvalidArgument(
          "no credentials sink given (NULL): call this inside the credentials callback");
    }
    if (access_key_id == nullptr || *access_key_id == '\0' || secret_access_key == nullptr ||
        *secret_access_key == '\0') {
      return tidings::InvalidArgument(
          "AWS credentials need an access key id and a secret access key");
    }
    TIDINGS_ASSIGN_OR_RETURN(auto secret, tidings::crypto::SecretBytes::Copy(secret_access_key));
    TIDINGS_ASSIGN_OR_RETURN(auto token, tidings::crypto::SecretBytes::Copy(
                                             session_token == nullptr ? "" : session_token));
    sink->key_id = access_key_id;
    sink->secret = tidings::crypto::SharedSecret(std::move(secret));
    sink->token = tidings::crypto::SharedSecret(std::move(token));
    sink->expires_at_ms = expires_at_ms > 0 ? expires_at_ms : 0;
    sink->set = true;
    return tidings::Status::Ok();
  });
}
