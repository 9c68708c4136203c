#include "sync/aws/json.h"

#include <simdjson.h>

#include <charconv>

namespace tidings::aws {

bool ParseErrorJson(std::string_view body, AwsErrorBody* out) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(body);
  simdjson::dom::element doc;
  if (parser.parse(padded).get(doc) || !doc.is_object()) return false;
  std::string_view v;
  for (const char* key : {"__type", "code", "Code"}) {
    if (!doc[key].get_string().get(v)) {
      out->type =
          std::string(v.substr(v.find('#') == std::string_view::npos ? 0 : v.find('#') + 1));
      break;
    }
  }
  for (const char* key : {"message", "Message"}) {
    if (!doc[key].get_string().get(v)) {
      out->message = std::string(v);
      break;
    }
  }
  return true;
}

namespace {

bool ParseU64(std::string_view s, uint64_t* out) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

Status Malformed(std::string_view what) {
  return InvalidArgument("malformed DynamoDB response: " + std::string(what));
}

}  // namespace

Result<DynamoQueryResult> ParseDynamoQuery(std::string_view body) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(body);
  simdjson::dom::element doc;
  if (parser.parse(padded).get(doc) || !doc.is_object()) return Malformed("not a JSON object");
  DynamoQueryResult result;
  simdjson::dom::element last;
  result.has_last_evaluated_key = !doc["LastEvaluatedKey"].get(last) && last.is_object();
  simdjson::dom::array items;
  if (doc["Items"].get_array().get(items)) return Malformed("no Items array");
  for (simdjson::dom::element item : items) {
    DynamoItem out;
    std::string_view s;
    if (item["pk"]["S"].get_string().get(s)) return Malformed("item without pk");
    out.pk = std::string(s);
    if (item["sk"]["N"].get_string().get(s)) return Malformed("item without numeric sk");
    out.sk_number = std::string(s);
    if (!ParseU64(s, &out.sk)) out.malformed = "sk " + out.sk_number + " is not a whole number";
    auto text = [&](const char* name, const char* type, std::string* to) {
      if (!item[name][type].get_string().get(s)) *to = std::string(s);
    };
    auto number = [&](const char* name, uint64_t* to) {
      if (!item[name]["N"].get_string().get(s) && !ParseU64(s, to) && out.malformed.empty())
        out.malformed = std::string("attribute ") + name + " is not a whole number";
    };
    text("o", "B", &out.ops_b64);
    text("f", "B", &out.frames_b64);
    text("r", "B", &out.record_b64);
    text("c", "S", &out.conversation);
    text("l", "S", &out.log_id);
    number("t", &out.time_ms);
    number("v", &out.format);
    result.items.push_back(std::move(out));
  }
  return result;
}

Result<std::string> ParseTableStatus(std::string_view body) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(body);
  simdjson::dom::element doc;
  std::string_view s;
  if (parser.parse(padded).get(doc) || doc["Table"]["TableStatus"].get_string().get(s)) {
    return Malformed("no Table.TableStatus");
  }
  return std::string(s);
}

}  // namespace tidings::aws
