// A canned HTTP response for the S3 client's tests.
#pragma once

#include <string>
#include <utility>

#include "sync/http/message.h"

namespace tidings::s3 {

inline http::Response Answer(long status, std::string body = "", http::Headers headers = {}) {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

}  // namespace tidings::s3
