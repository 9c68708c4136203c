// JSON pieces the State's handlers write into responses and events.
#pragma once

#include <string>
#include <string_view>

#include "common/json_string.h"

namespace chime_local {

// A JSON string literal.
inline std::string Q(std::string_view s) { return tidings::JsonString(s); }

// The model's Identity: the ARN and its last path part as the name.
inline std::string Identity(const std::string& arn) {
  size_t k = arn.rfind('/');
  return "{\"Arn\":" + Q(arn) + ",\"Name\":" + Q(k == std::string::npos ? arn : arn.substr(k + 1)) +
         "}";
}

}  // namespace chime_local
