// Helpers shared by the files that implement ChimeBackend; not part of its
// interface.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "sync/aws/aws_client.h"
#include "sync/aws_protocol/sigv4.h"
#include "sync/chime/chime_backend.h"

namespace tidings::chime::internal {

// A path segment or query value (ARNs hold ':' and '/').
inline std::string Enc(std::string_view s) { return aws::UriEncode(s, /*encode_slash=*/true); }

inline bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// The messaging session of a backend made with `config` over the REST
// `service` (chime_realtime.cc).
MessagingSessionConfig RealtimeConfigFor(const ChimeConfig& config,
                                         const aws::ServiceConfig& service,
                                         std::shared_ptr<aws::CredentialsProvider> credentials);

}  // namespace tidings::chime::internal
