#include "sync/http/message.h"

namespace tidings::http {

std::string Response::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

}  // namespace tidings::http
