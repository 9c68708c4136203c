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

struct Response;
// Takes a 2xx response's body as it arrives, in order: `bytes` from
// `offset` in the body, with `head` the response's status and headers (its
// body empty). An error stops the request with that error. Called on the
// sending thread, from offset 0 again if the request is sent again.
using BodyWriter =
    std::function<Status(const Response& head, uint64_t offset, std::string_view bytes)>;

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
  // Where a 2xx response's body goes instead of Response::body (then empty),
  // so a large answer (an S3 range, to its file) need not be held in memory
  // and is not capped by HttpOptions::max_response_bytes. Other statuses'
  // bodies (errors) are read into Response::body as usual.
  BodyWriter body_writer;
};

struct Response {
  long status = 0;
  Headers headers;  // names lowercased
  std::string body;
  uint64_t body_written = 0;  // bytes handed to Request::body_writer instead
  // First value of a header (name lowercase), or "".
  std::string Header(std::string_view name) const;
};

}  // namespace tidings::http
