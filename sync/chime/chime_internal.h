// Helpers shared by the files that implement ChimeBackend; not part of its
// interface.
#pragma once

#include <string>
#include <string_view>

#include "sync/aws_protocol/sigv4.h"

namespace tidings::chime::internal {

// A path segment or query value (ARNs hold ':' and '/').
inline std::string Enc(std::string_view s) { return aws::UriEncode(s, /*encode_slash=*/true); }

inline bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace tidings::chime::internal
