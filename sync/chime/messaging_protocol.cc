// The messaging WebSocket's rules and JSON (messaging_session.h), apart from
// the I/O so they are tested alone and the Beast file stays free of simdjson.
#include <simdjson.h>

#include <algorithm>

#include "sync/chime/chime_internal.h"
#include "sync/chime/messaging_session.h"

namespace tidings::chime {

bool ShouldReconnect(int close_code) {
  if (close_code == 4002 || close_code == 4003 || close_code == 4401) return false;
  return close_code == 1001 || close_code == 1006 || (close_code >= 1011 && close_code <= 1014) ||
         close_code > 4000;
}

int64_t FullJitterMs(uint32_t failures, int64_t base_ms, int64_t max_ms, uint64_t r) {
  int64_t window = std::max<int64_t>(base_ms, 1);
  for (uint32_t i = 0; i < failures && window < max_ms; ++i) window *= 2;
  window = std::min(window, std::max<int64_t>(max_ms, 1));
  return static_cast<int64_t>(r % static_cast<uint64_t>(window + 1));
}

std::string ConnectUrl(const std::string& endpoint, const std::string& user_arn,
                       const std::string& session_id) {
  // Parameters in canonical (sorted) order, as PresignUrl signs them.
  return "wss://" + endpoint + "/connect?sessionId=" + internal::Enc(session_id) +
         "&userArn=" + internal::Enc(user_arn);
}

Result<SessionFrame> ParseSessionFrame(std::string_view text) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(text);
  simdjson::dom::element doc;
  if (parser.parse(padded).get(doc) || !doc.is_object()) {
    return InvalidArgument("malformed messaging frame: not a JSON object");
  }
  SessionFrame out;
  simdjson::dom::object headers;
  if (doc["Headers"].get_object().get(headers)) {
    return InvalidArgument("malformed messaging frame: no Headers");
  }
  std::string_view v;
  if (headers["x-amz-chime-event-type"].get_string().get(v) || v.empty()) {
    return InvalidArgument("malformed messaging frame: no x-amz-chime-event-type");
  }
  out.type = std::string(v);
  if (!headers["x-amz-chime-message-type"].get_string().get(v)) out.message_type = std::string(v);
  simdjson::dom::element payload;
  if (!doc["Payload"].get(payload)) {
    if (payload.get_string().get(v)) {
      if (!payload.is_null()) return InvalidArgument("malformed messaging frame: Payload");
    } else {
      out.payload = std::string(v);
    }
  }
  return out;
}

Result<std::string> ParseSessionEndpoint(std::string_view body) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(body);
  simdjson::dom::element doc;
  std::string_view url;
  if (parser.parse(padded).get(doc) || doc["Endpoint"]["Url"].get_string().get(url) ||
      url.empty()) {
    return InvalidArgument(
        "malformed Chime response: GetMessagingSessionEndpoint has no Endpoint.Url");
  }
  return std::string(url);
}

}  // namespace tidings::chime
