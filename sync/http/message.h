// HTTP messages as Tidings builds, signs and sends them. No transport here:
// the SigV4 signer (sync/aws_protocol) and the Chime emulator use these
// types without linking libcurl (http_client.h is the transport).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tidings::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method = "POST";
  std::string url;  // scheme://host[:port]/path?query, path already encoded
  Headers headers;
  std::string body;
};

struct Response {
  long status = 0;
  Headers headers;  // names lowercased
  std::string body;
  // First value of a header (name lowercase), or "".
  std::string Header(std::string_view name) const;
};

}  // namespace tidings::http
