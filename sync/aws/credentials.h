// Where AWS credentials, region and endpoints come from. Secrets are never
// logged or put in error messages.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "sync/aws_protocol/sigv4.h"

namespace tidings::aws {

class CredentialsProvider {
 public:
  virtual ~CredentialsProvider() = default;
  // Unauthenticated with a message saying what to configure when none.
  virtual Result<Credentials> Get() = 0;
};

// Moves AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN out of
// the environment (values zeroed in place, then unset) into process-wide
// locked memory (crypto::SecretBytes) that DefaultCredentialsChain reads
// first. Call before other threads start. ResourceExhausted without locked
// memory.
Status TakeEnvironmentCredentials();

// Fixed keys (tests, or an app that manages them itself).
std::shared_ptr<CredentialsProvider> StaticCredentials(Credentials c);
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, then the
// shared credentials file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials)
// for AWS_PROFILE (default "default").
std::shared_ptr<CredentialsProvider> DefaultCredentialsChain();
// An app supplies temporary credentials (e.g. from Cognito). They are cached
// and fetched again `refresh_before_ms` before they expire.
std::shared_ptr<CredentialsProvider> CallbackCredentials(std::function<Result<Credentials>()> fetch,
                                                         int64_t refresh_before_ms = 5 * 60'000);

// Region: AWS_REGION, AWS_DEFAULT_REGION, then the profile's config file.
std::string ResolveRegion(const std::string& configured);
// Endpoint: configured, else AWS_ENDPOINT_URL_<SERVICE> (e.g. _DYNAMODB),
// else AWS_ENDPOINT_URL, else https://<prefix>.<region>.amazonaws.com.
std::string ResolveEndpoint(const std::string& configured, const std::string& env_service,
                            const std::string& endpoint_prefix, const std::string& region);

// Requests carry credentials-derived signatures and message data: an
// endpoint must be https://, or http:// on loopback only (127.0.0.0/8, ::1,
// localhost; a local test server). InvalidArgument, saying so, otherwise.
// Every AwsTransport checks its endpoint with this before any request.
Status CheckEndpoint(std::string_view url);
// The same for the endpoint ResolveEndpoint would pick from `configured`
// and the environment, so a backend is refused when it is added.
Status CheckEndpointSetting(const std::string& configured, const std::string& env_service);

// Parses an INI-style AWS file section ("[default]" or "[profile x]"). The
// file's bytes are wiped after parsing; the caller wipes secret values.
std::map<std::string, std::string> ReadProfile(const std::string& path, const std::string& profile,
                                               bool config_file);

}  // namespace tidings::aws
