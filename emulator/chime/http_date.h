// The Date header's value (RFC 9110 IMF-fixdate) for the emulator's answers.
#pragma once

#include <ctime>
#include <string>

namespace chime_local {

// Now, as "Sun, 06 Nov 1994 08:49:37 GMT": a client with a wrong clock
// corrects it from this.
inline std::string HttpDate() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

}  // namespace chime_local
