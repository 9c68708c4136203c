// An in-process fake of the Chime SDK Messaging routes the backend uses,
// behind the http::HttpClient seam: request shapes are recorded for checks,
// and faults are scripted per request. Not a conformance reference (the
// emulator and botocore's model are); it follows the model's shapes.
#pragma once

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/json_string.h"
#include "sync/aws_protocol/sigv4.h"
#include "sync/http/http_client.h"

namespace tidings::chime::testing {

inline std::string UrlDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

struct FakeMessage {
  std::string id, content, metadata, content_type, sender, token;
  int64_t created_ms = 0;
  int64_t edited_ms = 0;
  bool redacted = false;
};

struct FakeChannel {
  std::string arn, name, metadata, created_by;
  std::set<std::string> members;
  std::vector<FakeMessage> messages;
};

class FakeChime {
 public:
  struct Fault {
    long status;
    std::string type;
    std::string body;         // raw body instead of the JSON error (malformed tests)
    std::string retry_after;  // ms
    std::string match;        // only requests whose "METHOD url" contains this ("" = any)
  };

  // Every request, as received (after signing).
  std::vector<http::Request> requests;
  std::map<std::string, FakeChannel> channels;  // by ARN
  std::deque<Fault> faults;                     // consumed one per request
  int64_t now_ms = 1'700'000'000'000;
  int64_t step_ms = 1;                 // server time passing per request
  bool redact_keeps_metadata = false;  // the emulator strips it, like Chime
  bool support_channel_id = true;
  int next_id = 1;

  http::Response Handle(const http::Request& req) {
    std::lock_guard<std::mutex> lock(mu_);
    requests.push_back(req);
    auto fault = std::find_if(faults.begin(), faults.end(), [&](const Fault& f) {
      return f.match.empty() || (req.method + " " + req.url).find(f.match) != std::string::npos;
    });
    if (fault != faults.end()) {
      Fault f = *fault;
      faults.erase(fault);
      http::Response r;
      r.status = f.status;
      if (!f.type.empty()) r.headers.push_back({"x-amzn-errortype", f.type});
      if (!f.retry_after.empty()) r.headers.push_back({"x-amz-retry-after", f.retry_after});
      r.body = !f.body.empty() ? f.body : "{\"Code\":\"" + f.type + "\",\"Message\":\"injected\"}";
      return r;
    }
    now_ms += step_ms;
    std::string bearer;
    for (auto& [k, v] : req.headers)
      if (k == "x-amz-chime-bearer") bearer = v;
    std::string url = req.url.substr(req.url.find('/', 8));
    std::string path = url.substr(0, url.find('?'));
    std::map<std::string, std::string> query;
    if (url.find('?') != std::string::npos) {
      std::string q = url.substr(url.find('?') + 1);
      size_t start = 0;
      while (start <= q.size()) {
        size_t amp = q.find('&', start);
        std::string kv =
            q.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
        size_t eq = kv.find('=');
        query[UrlDecode(kv.substr(0, eq))] =
            eq == std::string::npos ? "" : UrlDecode(kv.substr(eq + 1));
        if (amp == std::string::npos) break;
        start = amp + 1;
      }
    }
    std::vector<std::string> seg;
    for (size_t p = 1; p <= path.size();) {
      size_t slash = path.find('/', p);
      seg.push_back(
          UrlDecode(path.substr(p, slash == std::string::npos ? std::string::npos : slash - p)));
      if (slash == std::string::npos) break;
      p = slash + 1;
    }
    simdjson::dom::parser parser;
    simdjson::dom::element body;
    simdjson::padded_string padded(req.body);
    if (!req.body.empty() && parser.parse(padded).get(body))
      return Error(400, "BadRequestException");
    auto field = [&](const char* name) -> std::string {
      std::string_view v;
      if (req.body.empty() || body[name].get_string().get(v)) return "";
      return std::string(v);
    };

    if (seg.size() == 1 && seg[0] == "channels" && req.method == "GET") {
      std::string out = "{\"ChannelMemberships\":[";
      bool first = true;
      for (auto& [arn, c] : channels) {
        if (!c.members.count(bearer)) continue;
        if (!first) out += ",";
        first = false;
        out += "{\"ChannelSummary\":{\"ChannelArn\":" + JsonString(arn) +
               ",\"Name\":" + JsonString(c.name) +
               (c.metadata.empty() ? "" : ",\"Metadata\":" + JsonString(c.metadata)) + "}}";
      }
      return Ok(200, out + "]}");
    }
    if (seg.size() == 1 && seg[0] == "channels" && req.method == "POST") {
      std::string id = support_channel_id && !field("ChannelId").empty()
                           ? field("ChannelId")
                           : "gen" + std::to_string(next_id++);
      std::string arn = field("AppInstanceArn") + "/channel/" + id;
      if (channels.count(arn)) return Error(409, "ConflictException");
      FakeChannel& c = channels[arn];
      c.arn = arn;
      c.name = field("Name");
      c.metadata = field("Metadata");
      c.created_by = bearer;
      c.members.insert(bearer);
      simdjson::dom::array initial;
      if (!req.body.empty() && !body["MemberArns"].get_array().get(initial)) {
        for (auto m : initial) {
          std::string_view v;
          if (!m.get_string().get(v)) c.members.insert(std::string(v));
        }
      }
      return Ok(201, "{\"ChannelArn\":" + JsonString(arn) + "}");
    }
    if (seg.size() < 2 || seg[0] != "channels") return Error(404, "NotFoundException");
    auto it = channels.find(seg[1]);
    if (it == channels.end()) return Error(404, "NotFoundException");
    FakeChannel& c = it->second;
    if (!c.members.count(bearer)) return Error(403, "ForbiddenException");
    if (seg.size() == 2 && req.method == "GET") {  // DescribeChannel
      return Ok(200, "{\"Channel\":{\"ChannelArn\":" + JsonString(c.arn) +
                         ",\"Name\":" + JsonString(c.name) + ",\"CreatedBy\":{\"Arn\":" +
                         JsonString(c.created_by) + ",\"Name\":\"x\"}}}");
    }
    if (seg.size() == 3 && seg[2] == "memberships" && req.method == "GET") {
      // Every member is DEFAULT here; one page.
      std::string out = "{\"ChannelArn\":" + JsonString(c.arn) + ",\"ChannelMemberships\":[";
      bool first = true;
      for (const auto& m : c.members) {
        if (query["type"] == "HIDDEN") break;
        out += std::string(first ? "" : ",") + "{\"Member\":{\"Arn\":" + JsonString(m) + "}}";
        first = false;
      }
      return Ok(200, out + "]}");
    }
    if (seg.size() == 3 && seg[2] == "memberships" && req.method == "POST") {
      if (c.members.count(field("MemberArn"))) return Error(409, "ConflictException");
      c.members.insert(field("MemberArn"));
      return Ok(201, "{\"ChannelArn\":" + JsonString(c.arn) + "}");
    }
    if (seg.size() == 3 && seg[2] == "messages" && req.method == "POST") {
      for (auto& m : c.messages) {
        if (m.sender == bearer && m.token == field("ClientRequestToken")) {
          return Ok(201, "{\"MessageId\":\"" + m.id + "\"}");
        }
      }
      FakeMessage m;
      m.id = "msg" + std::to_string(next_id++);
      m.content = field("Content");
      m.metadata = field("Metadata");
      m.content_type = field("ContentType");
      m.token = field("ClientRequestToken");
      m.sender = bearer;
      m.created_ms = now_ms;
      c.messages.push_back(m);
      return Ok(201, "{\"ChannelArn\":" + JsonString(c.arn) + ",\"MessageId\":\"" + m.id + "\"}");
    }
    if (seg.size() == 3 && seg[2] == "messages" && req.method == "GET") {
      int64_t not_before = 0, not_after = INT64_MAX;
      if (query.count("not-before")) not_before = ParseIso(query["not-before"]);
      if (query.count("not-after")) not_after = ParseIso(query["not-after"]);
      const bool desc = query["sort-order"] == "DESCENDING";
      // Ascending tokens are offsets; descending ones name the creation
      // index the page stopped at, as Chime's stay put while newer messages
      // are added.
      const std::string token = query.count("next-token") ? query["next-token"] : "";
      size_t offset = 0, below = SIZE_MAX;
      if (!token.empty()) {
        size_t n = 0;
        auto r = std::from_chars(token.data() + 1, token.data() + token.size(), n);
        if (token[0] != (desc ? 'd' : 'o') || r.ec != std::errc() ||
            r.ptr != token.data() + token.size()) {
          return Error(400, "BadRequestException");
        }
        (desc ? below : offset) = n;
      }
      size_t max = query.count("max-results") ? std::stoul(query["max-results"]) : 50;
      std::vector<std::pair<size_t, const FakeMessage*>> all;
      for (size_t i = 0; i < c.messages.size() && i < below; ++i) {
        const FakeMessage& m = c.messages[i];
        if (m.created_ms >= not_before && m.created_ms <= not_after) all.push_back({i, &m});
      }
      std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
        return a.second->created_ms < b.second->created_ms;
      });
      if (desc) std::reverse(all.begin(), all.end());
      std::string out = "{\"ChannelArn\":" + JsonString(c.arn) + ",\"ChannelMessages\":[";
      size_t end = std::min(all.size(), offset + max);
      for (size_t i = offset; i < end; ++i) {
        if (i > offset) out += ",";
        out += MessageJson(*all[i].second);
      }
      out += "]";
      if (end < all.size()) {
        out += ",\"NextToken\":\"" +
               (desc ? "d" + std::to_string(all[end - 1].first) : "o" + std::to_string(end)) + "\"";
      }
      return Ok(200, out + "}");
    }
    if (seg.size() == 4 && seg[2] == "messages") {
      for (auto& m : c.messages) {
        if (m.id != seg[3]) continue;
        if (req.method == "GET") return Ok(200, "{\"ChannelMessage\":" + MessageJson(m) + "}");
        if (m.sender != bearer) return Error(403, "ForbiddenException");
        if (req.method == "POST" && query.count("operation")) {
          m.redacted = true;
          m.content.clear();
          if (!redact_keeps_metadata) m.metadata.clear();
        } else if (req.method == "PUT") {
          m.content = field("Content");
          m.metadata = field("Metadata");
          m.content_type = field("ContentType");
          m.edited_ms = now_ms;
        }
        return Ok(200, "{\"ChannelArn\":" + JsonString(c.arn) + "}");
      }
      return Error(404, "NotFoundException");
    }
    if (seg.size() == 3 && seg[2] == "readMarker" && req.method == "PUT") {
      read_markers[c.arn + " " + bearer] = now_ms;
      return Ok(200, "{}");
    }
    return Error(400, "BadRequestException");
  }

  std::map<std::string, int64_t> read_markers;

  // Creates a channel and message as another Chime client would.
  void ForeignMessage(const std::string& arn, const std::string& sender, const std::string& text) {
    std::lock_guard<std::mutex> lock(mu_);
    FakeMessage m;
    m.id = "foreign" + std::to_string(next_id++);
    m.content = text;
    m.sender = sender;
    m.created_ms = ++now_ms;
    channels[arn].messages.push_back(m);
  }
  std::mutex mu_;

 private:
  static std::string Seconds(int64_t ms) {
    char ts[64];
    std::snprintf(ts, sizeof(ts), "%lld.%03lld", static_cast<long long>(ms / 1000),
                  static_cast<long long>(ms % 1000));
    return ts;
  }
  static std::string MessageJson(const FakeMessage& m) {
    return "{\"MessageId\":\"" + m.id + "\",\"Content\":" + JsonString(m.content) +
           (m.metadata.empty() ? "" : ",\"Metadata\":" + JsonString(m.metadata)) +
           ",\"ContentType\":" + JsonString(m.content_type) +
           ",\"Type\":\"STANDARD\",\"CreatedTimestamp\":" + Seconds(m.created_ms) +
           (m.edited_ms > 0 ? ",\"LastEditedTimestamp\":" + Seconds(m.edited_ms) : "") +
           ",\"Sender\":{\"Arn\":" + JsonString(m.sender) +
           "},\"Redacted\":" + (m.redacted ? "true" : "false") + "}";
  }
  static int64_t ParseIso(const std::string& s) {
    std::tm tm{};
    const char* rest = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    int64_t ms = static_cast<int64_t>(timegm(&tm)) * 1000;
    if (rest && *rest == '.') ms += std::stoi(std::string(rest + 1, 3));
    return ms;
  }
  static http::Response Ok(long status, std::string body) {
    http::Response r;
    r.status = status;
    r.body = std::move(body);
    return r;
  }
  static http::Response Error(long status, const std::string& type) {
    http::Response r;
    r.status = status;
    r.headers.push_back({"x-amzn-errortype", type + ":http://internal.amazon.com/"});
    r.body = "{\"Code\":\"" + type + "\",\"Message\":\"fake " + type + "\"}";
    return r;
  }
};

// The HttpClient the backend owns; the FakeChime is shared with the test.
class FakeHttp final : public http::HttpClient {
 public:
  explicit FakeHttp(std::shared_ptr<FakeChime> server) : server_(std::move(server)) {}
  Result<http::Response> Send(const http::Request& request) override {
    return server_->Handle(request);
  }
  void Cancel() override {}

 private:
  std::shared_ptr<FakeChime> server_;
};

}  // namespace tidings::chime::testing
