#include "sync/chime/chime_json.h"

#include <simdjson.h>

#include <charconv>
#include <cmath>
#include <ctime>

#include "common/json_string.h"
#include "crypto/hash.h"

namespace tidings::chime {
namespace {

using simdjson::dom::element;
using simdjson::dom::object;

Status Malformed(std::string_view what) {
  return InvalidArgument("malformed Chime response: " + std::string(what));
}

// "" if absent or not a string.
std::string Str(const element& e, std::string_view key) {
  std::string_view v;
  if (e[key].get_string().get(v)) return "";
  return std::string(v);
}

// ISO 8601 "2026-11-24T18:00:00.123Z" (or with an offset of Z only) -> ms.
bool ParseIso8601(std::string_view s, int64_t* ms) {
  std::tm tm{};
  std::string str(s);
  const char* rest = strptime(str.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr) return false;
  int64_t frac_ms = 0;
  if (*rest == '.') {
    ++rest;
    int digits = 0;
    while (*rest >= '0' && *rest <= '9') {
      if (digits < 3) frac_ms = frac_ms * 10 + (*rest - '0');
      ++digits;
      ++rest;
    }
    for (; digits < 3; ++digits) frac_ms *= 10;
  }
  if (*rest != 'Z' && *rest != '\0' && std::string_view(rest) != "+00:00") return false;
  *ms = static_cast<int64_t>(timegm(&tm)) * 1000 + frac_ms;
  return true;
}

// rest-json timestamps are epoch seconds (with a fraction); accept ISO 8601
// strings too. False if absent or malformed.
bool Timestamp(const element& e, std::string_view key, int64_t* ms) {
  element v;
  if (e[key].get(v)) return false;
  double d;
  if (!v.get_double().get(d)) {
    if (!std::isfinite(d) || d < 0 || d > 1e11) return false;
    *ms = static_cast<int64_t>(std::llround(d * 1000.0));
    return true;
  }
  std::string_view s;
  if (!v.get_string().get(s)) {
    double secs = 0;
    auto r = std::from_chars(s.data(), s.data() + s.size(), secs);
    if (r.ec == std::errc() && r.ptr == s.data() + s.size() && secs >= 0 && secs < 1e11) {
      *ms = static_cast<int64_t>(std::llround(secs * 1000.0));
      return true;
    }
    return ParseIso8601(s, ms);
  }
  return false;
}

bool Parse(simdjson::dom::parser& parser, const simdjson::padded_string& padded, element* doc) {
  return !parser.parse(padded).get(*doc) && doc->is_object();
}

std::string Hex64(uint64_t v) {
  static const char* kHex = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[static_cast<size_t>(i)] = kHex[v & 15];
    v >>= 4;
  }
  return out;
}

bool ParseHex64(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 16) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out, 16);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

Status ReadMessage(const element& m, ChimeMessage* out) {
  if (!m.is_object()) return Malformed("a channel message is not an object");
  out->message_id = Str(m, "MessageId");
  if (out->message_id.empty()) return Malformed("a channel message without MessageId");
  if (!Timestamp(m, "CreatedTimestamp", &out->created_ms)) {
    return Malformed("a channel message without a valid CreatedTimestamp");
  }
  element edited;
  if (!m["LastEditedTimestamp"].get(edited) && !edited.is_null() &&
      !Timestamp(m, "LastEditedTimestamp", &out->edited_ms)) {
    return Malformed("a channel message with an invalid LastEditedTimestamp");
  }
  out->channel_arn = Str(m, "ChannelArn");
  out->content = Str(m, "Content");
  out->metadata = Str(m, "Metadata");
  out->content_type = Str(m, "ContentType");
  out->type = Str(m, "Type");
  out->persistence = Str(m, "Persistence");
  element sender;
  if (!m["Sender"].get(sender) && sender.is_object()) out->sender_arn = Str(sender, "Arn");
  element status;
  if (!m["Status"].get(status) && status.is_object()) out->status = Str(status, "Value");
  bool redacted = false;
  if (!m["Redacted"].get_bool().get(redacted)) out->redacted = redacted;
  return Status::Ok();
}

}  // namespace

Result<MessagesPage> ParseListChannelMessages(std::string_view body) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(body);
  element doc;
  if (!Parse(parser, padded, &doc)) return Malformed("ListChannelMessages is not a JSON object");
  MessagesPage page;
  page.next_token = Str(doc, "NextToken");
  simdjson::dom::array messages;
  element list;
  if (doc["ChannelMessages"].get(list)) return page;  // absent: no messages
  if (list.is_null()) return page;
  if (list.get_array().get(messages)) return Malformed("ChannelMessages is not an array");
  for (element m : messages) {
    ChimeMessage out;
    TIDINGS_RETURN_IF_ERROR(ReadMessage(m, &out));
    page.messages.push_back(std::move(out));
  }
  return page;
}

Result<ChimeMessage> ParseChannelMessage(std::string_view json, bool wrapped) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  element doc;
  if (!Parse(parser, padded, &doc)) return Malformed("a channel message is not a JSON object");
  if (wrapped && doc["ChannelMessage"].get(doc)) return Malformed("no ChannelMessage");
  ChimeMessage out;
  TIDINGS_RETURN_IF_ERROR(ReadMessage(doc, &out));
  return out;
}

Result<ChannelsPage> ParseListChannelMemberships(std::string_view body) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(body);
  element doc;
  if (!Parse(parser, padded, &doc)) {
    return Malformed("ListChannelMembershipsForAppInstanceUser is not a JSON object");
  }
  ChannelsPage page;
  page.next_token = Str(doc, "NextToken");
  element list;
  if (doc["ChannelMemberships"].get(list) || list.is_null()) return page;
  simdjson::dom::array memberships;
  if (list.get_array().get(memberships)) return Malformed("ChannelMemberships is not an array");
  for (element m : memberships) {
    element summary;
    if (!m.is_object() || m["ChannelSummary"].get(summary) || !summary.is_object()) {
      return Malformed("a channel membership without ChannelSummary");
    }
    ChannelInfo c;
    c.arn = Str(summary, "ChannelArn");
    if (c.arn.empty()) return Malformed("a channel summary without ChannelArn");
    c.name = Str(summary, "Name");
    c.metadata = Str(summary, "Metadata");
    page.channels.push_back(std::move(c));
  }
  return page;
}

Result<std::string> ParseChannelCreator(std::string_view body) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(body);
  element doc, channel, creator;
  if (!Parse(parser, padded, &doc) || doc["Channel"].get(channel) || !channel.is_object() ||
      channel["CreatedBy"].get(creator) || !creator.is_object()) {
    return Malformed("DescribeChannel without Channel.CreatedBy");
  }
  std::string arn = Str(creator, "Arn");
  if (arn.empty()) return Malformed("DescribeChannel without Channel.CreatedBy.Arn");
  return arn;
}

Result<MembersPage> ParseChannelMemberships(std::string_view body) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(body);
  element doc;
  if (!Parse(parser, padded, &doc)) return Malformed("ListChannelMemberships is not a JSON object");
  MembersPage page;
  page.next_token = Str(doc, "NextToken");
  element list;
  if (doc["ChannelMemberships"].get(list) || list.is_null()) return page;
  simdjson::dom::array memberships;
  if (list.get_array().get(memberships)) return Malformed("ChannelMemberships is not an array");
  for (element m : memberships) {
    element member;
    if (!m.is_object() || m["Member"].get(member) || !member.is_object()) {
      return Malformed("a channel membership without Member");
    }
    std::string arn = Str(member, "Arn");
    if (arn.empty()) return Malformed("a channel member without Arn");
    page.member_arns.push_back(std::move(arn));
  }
  return page;
}

Result<std::string> ParseStringField(std::string_view body, std::string_view field) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(body);
  element doc;
  std::string_view v;
  if (!Parse(parser, padded, &doc) || doc[field].get_string().get(v) || v.empty()) {
    return Malformed("no " + std::string(field));
  }
  return std::string(v);
}

std::string ContentHash(std::string_view content) {
  return crypto::Sha256Hex(content).substr(0, 16);
}

bool IsUtf8(std::string_view s) { return simdjson::validate_utf8(s.data(), s.size()); }

std::string WriteEnvelope(const Envelope& e, bool with_payload) {
  std::string out = "{\"tidings\":1,\"k\":" + JsonString(e.kind);
  if (e.op_id != e.message_id || e.kind != "send") out += ",\"op\":" + JsonString(e.op_id);
  if (!e.message_id.empty()) out += ",\"id\":" + JsonString(e.message_id);
  out += ",\"a\":" + JsonString(e.author);
  out += ",\"h\":\"" + Hex64(e.hlc) + "\",\"r\":\"" + Hex64(e.replica) + "\"";
  if (!e.content_type.empty()) out += ",\"ct\":" + JsonString(e.content_type);
  if (!e.encoding.empty()) out += ",\"enc\":" + JsonString(e.encoding);
  if (!e.metadata.empty()) {
    out += ",\"md\":{";
    bool first = true;
    for (const auto& [k, v] : e.metadata) {
      if (!first) out += ",";
      first = false;
      out += JsonString(k) + ":" + JsonString(v);
    }
    out += "}";
  }
  if (with_payload) {
    if (!e.body.empty()) out += ",\"b\":" + JsonString(e.body);
    if (!e.reaction.empty()) out += ",\"re\":" + JsonString(e.reaction);
    if (e.target_hlc != 0 || e.target_replica != 0) {
      out += ",\"t\":\"" + Hex64(e.target_hlc) + ":" + Hex64(e.target_replica) + "\"";
      if (!e.target_content_type.empty()) out += ",\"tct\":" + JsonString(e.target_content_type);
    }
    if (e.read_hlc != 0 || e.read_replica != 0) {
      out += ",\"ru\":\"" + Hex64(e.read_hlc) + ":" + Hex64(e.read_replica) + "\"";
    }
  }
  if (!e.target_chime_id.empty()) {
    out += ",\"tm\":" + JsonString(e.target_chime_id) +
           ",\"tc\":" + std::to_string(e.target_created_ms);
  }
  if (!e.edit_op_id.empty()) {
    out += ",\"eo\":" + JsonString(e.edit_op_id) + ",\"eh\":\"" + Hex64(e.edit_hlc) + ":" +
           Hex64(e.edit_replica) + "\",\"ch\":" + JsonString(e.content_hash);
    if (!e.edit_content_type.empty()) out += ",\"ect\":" + JsonString(e.edit_content_type);
  }
  out += "}";
  return out;
}

bool ParseEnvelope(std::string_view json, Envelope* out) {
  if (json.empty() || json.front() != '{') return false;
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  element doc;
  if (!Parse(parser, padded, &doc)) return false;
  int64_t version = 0;
  if (doc["tidings"].get_int64().get(version) || version != 1) return false;
  Envelope e;
  // Every present field must have the right type; absent ones stay empty.
  auto field = [&](std::string_view key, std::string* to) {
    element v;
    if (doc[key].get(v)) return true;
    std::string_view s;
    if (v.get_string().get(s)) return false;
    *to = std::string(s);
    return true;
  };
  std::string h, r, ru, t, eh;
  bool has_op = false;
  {
    element v;
    has_op = !doc["op"].get(v);
  }
  if (!field("k", &e.kind) || !field("op", &e.op_id) || !field("id", &e.message_id) ||
      !field("a", &e.author) || !field("h", &h) || !field("r", &r) ||
      !field("ct", &e.content_type) || !field("enc", &e.encoding) || !field("b", &e.body) ||
      !field("re", &e.reaction) || !field("ru", &ru) || !field("t", &t) ||
      !field("tct", &e.target_content_type) || !field("tm", &e.target_chime_id) ||
      !field("eo", &e.edit_op_id) || !field("eh", &eh) || !field("ch", &e.content_hash) ||
      !field("ect", &e.edit_content_type)) {
    return false;
  }
  if (!e.target_chime_id.empty() &&
      (doc["tc"].get_int64().get(e.target_created_ms) || e.target_created_ms <= 0)) {
    return false;
  }
  if (!e.edit_op_id.empty()) {
    size_t colon = eh.find(':');
    if (colon == std::string::npos || !ParseHex64(eh.substr(0, colon), &e.edit_hlc) ||
        !ParseHex64(eh.substr(colon + 1), &e.edit_replica)) {
      return false;
    }
  }
  if (e.kind.empty() || e.author.empty() || !ParseHex64(h, &e.hlc) || !ParseHex64(r, &e.replica)) {
    return false;
  }
  if (!has_op) e.op_id = e.message_id;
  if (e.op_id.empty()) return false;
  if (!ru.empty()) {
    size_t colon = ru.find(':');
    if (colon == std::string::npos || !ParseHex64(ru.substr(0, colon), &e.read_hlc) ||
        !ParseHex64(ru.substr(colon + 1), &e.read_replica)) {
      return false;
    }
  }
  if (!t.empty()) {
    size_t colon = t.find(':');
    if (colon == std::string::npos || !ParseHex64(t.substr(0, colon), &e.target_hlc) ||
        !ParseHex64(t.substr(colon + 1), &e.target_replica)) {
      return false;
    }
  }
  element md;
  if (!doc["md"].get(md)) {
    object obj;
    if (md.get_object().get(obj)) return false;
    for (auto [k, v] : obj) {
      std::string_view s;
      if (v.get_string().get(s)) return false;
      e.metadata[std::string(k)] = std::string(s);
    }
  }
  *out = std::move(e);
  return true;
}

std::string WriteChannelMetadata(std::string_view conversation_id) {
  return "{\"tidings\":1,\"conversation\":" + JsonString(conversation_id) + "}";
}

std::optional<std::string> ParseChannelMetadata(std::string_view json) {
  if (json.empty() || json.front() != '{') return std::nullopt;
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  element doc;
  if (!Parse(parser, padded, &doc)) return std::nullopt;
  int64_t version = 0;
  std::string_view id;
  if (doc["tidings"].get_int64().get(version) || version != 1 ||
      doc["conversation"].get_string().get(id) || id.empty()) {
    return std::nullopt;
  }
  return std::string(id);
}

bool IsSealedChannelMetadata(std::string_view json) {
  if (json.empty() || json.front() != '{') return false;
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  element doc;
  std::string_view version;
  return Parse(parser, padded, &doc) && !doc["tidings"].get_string().get(version) &&
         version == "e2e1";
}

std::string WriteFrameMetadata(std::string_view frame_id) {
  return "{\"tidings\":\"f1\",\"id\":" + JsonString(frame_id) + "}";
}

std::optional<std::string> ParseFrameMetadata(std::string_view json) {
  if (json.empty() || json.front() != '{') return std::nullopt;
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  element doc;
  std::string_view version, id;
  if (!Parse(parser, padded, &doc) || doc["tidings"].get_string().get(version) || version != "f1" ||
      doc["id"].get_string().get(id) || id.empty()) {
    return std::nullopt;
  }
  return std::string(id);
}

}  // namespace tidings::chime
