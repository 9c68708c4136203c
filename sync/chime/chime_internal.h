// Helpers shared by the files that implement ChimeBackend; not part of its
// interface.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "engine/types.h"
#include "sync/aws/aws_client.h"
#include "sync/aws_protocol/sigv4.h"
#include "sync/chime/chime_backend.h"
#include "sync/chime/chime_json.h"

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

// ClientRequestToken: 2-64 of [-_a-zA-Z0-9]; other ids are hashed,
// deterministically, so retries agree.
std::string Token(std::string_view id);
// 64 bits of SHA-256(s): a stable replica id for another client's sender.
uint64_t Hash64(std::string_view s);
// "send", "edit", ... and back.
const char* KindName(engine::OpKind k);
std::optional<engine::OpKind> KindOf(std::string_view k);
// A body as Chime Content: UTF-8 text as is, anything else base64 (encoding
// "b64"); Content may not be empty, so an empty body is a marked single
// space (encoding "empty").
void EncodeBody(const std::string& body, std::string* content, std::string* encoding);
bool DecodeBody(const std::string& content, const std::string& encoding, std::string* body);

// An operation message's Content when its envelope is in Metadata: what
// other clients show ("reacted 👍"); an edit's is kEditPrefix + its new
// body as encoded.
inline constexpr char kEditPrefix[] = "\u270f\ufe0f edited: ";
std::string OpText(engine::OpKind kind, const std::string& reaction,
                   const std::string& encoded_body);
// The envelope of an operation message, in either form (JSON Content, or
// Metadata plus OpText Content); an edit's body as encoded. False if it is
// neither.
bool ParseOpMessage(const ChimeMessage& m, Envelope* e);

}  // namespace tidings::chime::internal
