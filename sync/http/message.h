// HTTP messages as Tidings builds, signs and sends them. No transport here:
// the SigV4 signer (sync/aws_protocol) and the Chime emulator use these
// types without linking libcurl (http_client.h is the transport).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace tidings::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

// Fills `buf` with up to `cap` bytes of a request body from `offset` and
// returns how many, at least 1 before the body's end (0 there is an error:
// the body is shorter than announced). An error fails the request with
// that error. Called on the sending thread.
using BodyReader = std::function<Result<size_t>(uint64_t offset, char* buf, size_t cap)>;

struct Request {
  std::string method = "POST";
  std::string url;  // scheme://host[:port]/path?query, path already encoded
  Headers headers;
  std::string body;
  // A body read as it is sent, instead of `body` (then empty): `body_size`
  // bytes from `body_reader`, read from offset 0 again on every attempt, so
  // a large body (an S3 part from its file) need not be held in memory.
  // The signer cannot hash it: a request with a reader carries its payload
  // hash (x-amz-content-sha256).
  BodyReader body_reader;
  uint64_t body_size = 0;
};

struct Response {
  long status = 0;
  Headers headers;  // names lowercased
  std::string body;
  // First value of a header (name lowercase), or "".
  std::string Header(std::string_view name) const;
};

}  // namespace tidings::http
