#include "emulator/chime/routes.h"

#include <httplib.h>
#include <simdjson.h>

#include <chrono>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/json_string.h"
#include "crypto/hash.h"
#include "emulator/chime/http_date.h"
#include "emulator/chime/journal.h"
#include "emulator/chime/realtime.h"

namespace chime_local {
namespace {

using tidings::InvalidArgument;
using tidings::Result;

// Query names of the model (querystring locationName) -> member names.
const char* QueryMember(const std::string& name) {
  static const std::pair<const char*, const char*> kNames[] = {
      {"sort-order", "SortOrder"},
      {"not-before", "NotBefore"},
      {"not-after", "NotAfter"},
      {"max-results", "MaxResults"},
      {"next-token", "NextToken"},
      {"type", "Type"},
      {"app-instance-user-arn", "AppInstanceUserArn"},
      {"sub-channel-id", "SubChannelId"}};
  for (const auto& [q, m] : kNames)
    if (name == q) return m;
  return nullptr;
}

// Every operation of the botocore model (chime-sdk-messaging 2021-05-15):
// method, path ("{}" is one label), the query that tells operations on the
// same path apart, and whether the emulator serves it. Routes with a query
// come first, so they win over the plain path.
struct Route {
  const char* method;
  const char* path;
  const char* query;  // "key=value" or ""
  const char* op;
  bool emulated;
};
constexpr Route kRoutes[] = {
    {"GET", "/channels", "scope=app-instance-user-memberships",
     "ListChannelMembershipsForAppInstanceUser", true},
    {"GET", "/channels", "scope=app-instance-user-moderated-channels",
     "ListChannelsModeratedByAppInstanceUser", false},
    {"GET", "/channels", "scope=channel-flow-associations", "ListChannelsAssociatedWithChannelFlow",
     false},
    {"POST", "/channels", "operation=search", "SearchChannels", false},
    {"GET", "/channels/{}", "scope=app-instance-user-membership",
     "DescribeChannelMembershipForAppInstanceUser", true},
    {"GET", "/channels/{}", "scope=app-instance-user-moderated-channel",
     "DescribeChannelModeratedByAppInstanceUser", true},
    {"POST", "/channels/{}", "operation=channel-flow-callback", "ChannelFlowCallback", false},
    {"POST", "/channels/{}/memberships", "operation=batch-create", "BatchCreateChannelMembership",
     true},
    {"GET", "/channels/{}/messages/{}", "scope=message-status", "GetChannelMessageStatus", true},
    {"POST", "/channels/{}/messages/{}", "operation=redact", "RedactChannelMessage", true},
    {"POST", "/tags", "operation=tag-resource", "TagResource", false},
    {"POST", "/tags", "operation=untag-resource", "UntagResource", false},
    {"DELETE", "/app-instances/{}/streaming-configurations", "",
     "DeleteMessagingStreamingConfigurations", false},
    {"GET", "/app-instances/{}/streaming-configurations", "", "GetMessagingStreamingConfigurations",
     false},
    {"PUT", "/app-instances/{}/streaming-configurations", "", "PutMessagingStreamingConfigurations",
     false},
    {"GET", "/channel-flows", "", "ListChannelFlows", false},
    {"POST", "/channel-flows", "", "CreateChannelFlow", false},
    {"DELETE", "/channel-flows/{}", "", "DeleteChannelFlow", false},
    {"GET", "/channel-flows/{}", "", "DescribeChannelFlow", false},
    {"PUT", "/channel-flows/{}", "", "UpdateChannelFlow", false},
    {"GET", "/channels", "", "ListChannels", false},
    {"POST", "/channels", "", "CreateChannel", true},
    {"DELETE", "/channels/{}", "", "DeleteChannel", true},
    {"GET", "/channels/{}", "", "DescribeChannel", true},
    {"PUT", "/channels/{}", "", "UpdateChannel", true},
    {"GET", "/channels/{}/bans", "", "ListChannelBans", false},
    {"POST", "/channels/{}/bans", "", "CreateChannelBan", false},
    {"DELETE", "/channels/{}/bans/{}", "", "DeleteChannelBan", false},
    {"GET", "/channels/{}/bans/{}", "", "DescribeChannelBan", false},
    {"PUT", "/channels/{}/channel-flow", "", "AssociateChannelFlow", false},
    {"DELETE", "/channels/{}/channel-flow/{}", "", "DisassociateChannelFlow", false},
    {"PUT", "/channels/{}/expiration-settings", "", "PutChannelExpirationSettings", true},
    {"GET", "/channels/{}/memberships", "", "ListChannelMemberships", true},
    {"POST", "/channels/{}/memberships", "", "CreateChannelMembership", true},
    {"DELETE", "/channels/{}/memberships/{}", "", "DeleteChannelMembership", true},
    {"GET", "/channels/{}/memberships/{}", "", "DescribeChannelMembership", false},
    {"GET", "/channels/{}/memberships/{}/preferences", "", "GetChannelMembershipPreferences",
     false},
    {"PUT", "/channels/{}/memberships/{}/preferences", "", "PutChannelMembershipPreferences",
     false},
    {"GET", "/channels/{}/messages", "", "ListChannelMessages", true},
    {"POST", "/channels/{}/messages", "", "SendChannelMessage", true},
    {"DELETE", "/channels/{}/messages/{}", "", "DeleteChannelMessage", true},
    {"GET", "/channels/{}/messages/{}", "", "GetChannelMessage", true},
    {"PUT", "/channels/{}/messages/{}", "", "UpdateChannelMessage", true},
    {"GET", "/channels/{}/moderators", "", "ListChannelModerators", false},
    {"POST", "/channels/{}/moderators", "", "CreateChannelModerator", false},
    {"DELETE", "/channels/{}/moderators/{}", "", "DeleteChannelModerator", false},
    {"GET", "/channels/{}/moderators/{}", "", "DescribeChannelModerator", false},
    {"PUT", "/channels/{}/readMarker", "", "UpdateChannelReadMarker", true},
    {"GET", "/channels/{}/subchannels", "", "ListSubChannels", false},
    {"GET", "/endpoints/messaging-session", "", "GetMessagingSessionEndpoint", true},
    {"GET", "/tags", "", "ListTagsForResource", false},
};

bool PathMatches(std::string_view pattern, const std::vector<std::string>& seg) {
  size_t i = 0, start = 1;
  for (;;) {
    size_t slash = pattern.find('/', start);
    std::string_view part = pattern.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (i >= seg.size() || (part == "{}" ? seg[i].empty() : seg[i] != part)) return false;
    ++i;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return i == seg.size();
}

const Route* Match(const std::string& method, const std::vector<std::string>& seg,
                   const std::map<std::string, std::string>& query) {
  for (const Route& r : kRoutes) {
    if (method != r.method || !PathMatches(r.path, seg)) continue;
    std::string_view q = r.query;
    if (q.empty()) return &r;
    const size_t eq = q.find('=');
    auto it = query.find(std::string(q.substr(0, eq)));
    if (it != query.end() && it->second == q.substr(eq + 1)) return &r;
  }
  return nullptr;
}

// A UUID-shaped id per request, as AWS sends (boto3: ResponseMetadata.RequestId).
std::string RequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t a = rng(), b = rng();
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%08llx-%04llx-4%03llx-%04llx-%012llx",
                static_cast<unsigned long long>(a >> 32),
                static_cast<unsigned long long>((a >> 16) & 0xffff),
                static_cast<unsigned long long>(a & 0xfff),
                static_cast<unsigned long long>(0x8000 | ((b >> 48) & 0x3fff)),
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return buf;
}

void SendError(httplib::Response& res, int status, const std::string& code,
               const std::string& message) {
  res.status = status;
  res.set_header("x-amzn-ErrorType", code);
  res.set_content("{\"Code\":" + tidings::JsonString(code) +
                      ",\"Message\":" + tidings::JsonString(message) + "}",
                  "application/json");
}

void SendStatus(httplib::Response& res, const tidings::Status& s) {
  switch (s.code()) {
    case tidings::Code::kInvalidArgument:
      return SendError(res, 400, "BadRequestException", s.message());
    case tidings::Code::kPermissionDenied:
      return SendError(res, 403, "ForbiddenException", s.message());
    case tidings::Code::kNotFound:
      return SendError(res, 404, "NotFoundException", s.message());
    case tidings::Code::kAlreadyExists:
      return SendError(res, 409, "ConflictException", s.message());
    case tidings::Code::kUnimplemented:
      // Not NotFoundException: that is a modeled error cleanup code acts on.
      return SendError(res, 400, "UnsupportedOperation", s.message());
    default:
      return SendError(res, 500, "ServiceFailureException", s.message());
  }
}

// cpp-httplib holds a worker for as long as a keep-alive connection is open,
// so a fixed pool lets idle clients (devices, test helpers) stall the next
// one for the keep-alive timeout: one thread per connection instead.
class ThreadPerConnection final : public httplib::TaskQueue {
 public:
  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++active_;
    }
    std::thread([this, fn = std::move(fn)] {
      fn();
      std::lock_guard<std::mutex> lock(mu_);
      if (--active_ == 0) idle_.notify_all();
    }).detach();
  }
  void shutdown() override {
    std::unique_lock<std::mutex> lock(mu_);
    idle_.wait(lock, [this] { return active_ == 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable idle_;
  size_t active_ = 0;
};

}  // namespace

Result<Call> ParseRequest(const std::string& method, const std::string& target,
                          const std::string& body) {
  Call call;
  const size_t q = target.find('?');
  const std::string path = target.substr(0, q);
  std::map<std::string, std::string> query;
  if (q != std::string::npos) {
    std::string text = target.substr(q + 1) + "&";
    for (size_t start = 0, amp; (amp = text.find('&', start)) != std::string::npos;
         start = amp + 1) {
      std::string part = text.substr(start, amp - start), k, v;
      if (part.empty()) continue;
      size_t eq = part.find('=');
      if (!PercentDecode(part.substr(0, eq), &k) ||
          !PercentDecode(eq == std::string::npos ? "" : part.substr(eq + 1), &v)) {
        return InvalidArgument("malformed percent-encoding in the query string");
      }
      query[k] = v;
    }
  }
  std::vector<std::string> seg;
  for (size_t start = 1; start <= path.size();) {
    size_t slash = path.find('/', start);
    std::string s;
    if (!PercentDecode(
            path.substr(start, slash == std::string::npos ? std::string::npos : slash - start),
            &s)) {
      return InvalidArgument("malformed percent-encoding in the path");
    }
    seg.push_back(s);
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  const Route* route = Match(method, seg, query);
  if (route == nullptr) {
    return tidings::Unimplemented("no Chime SDK Messaging operation at " + method + " " + path +
                                  " (botocore model chime-sdk-messaging 2021-05-15)");
  }
  if (!route->emulated) {
    return tidings::Unimplemented(std::string("tidings-chime-local does not emulate ") + route->op +
                                  " (" + method + " " + route->path +
                                  (route->query[0] ? std::string("?") + route->query : "") +
                                  "); emulator/chime/README.md lists what it does");
  }
  const size_t n = seg.size();
  call.op = route->op;
  if (!body.empty()) {
    simdjson::dom::parser parser;
    simdjson::padded_string padded(body);
    simdjson::dom::object obj;
    if (auto err = parser.parse(padded).get_object().get(obj)) {
      return InvalidArgument(std::string("the request body is not a JSON object: ") +
                             simdjson::error_message(err));
    }
    for (auto field : obj) {
      const std::string key(field.key);
      // Path, header and server-assigned fields never come from the body.
      if (key.empty() || key[0] == '_' || key == "ChimeBearer" || key == "ChannelArn" ||
          key == "MessageId") {
        continue;
      }
      std::string_view v;
      simdjson::dom::array list;
      if (!field.value.get_string().get(v)) {
        call.f[key] = std::string(v);
      } else if (!field.value.get_array().get(list)) {
        std::string joined;
        for (auto item : list) {
          if (item.get_string().get(v)) {
            if (item.is_object()) break;  // Tags, Target: accepted, not emulated
            return InvalidArgument(key + " must be a list of strings");
          }
          joined += (joined.empty() ? "" : "\n") + std::string(v);
        }
        if (!joined.empty()) call.f[key] = joined;
      } else if (key == "ExpirationSettings" && field.value.is_object()) {
        // Flattened: ExpirationDays (a number) and ExpirationCriterion.
        for (auto setting : field.value.get_object()) {
          int64_t days = 0;
          if (setting.key == "ExpirationDays" && !setting.value.get_int64().get(days)) {
            call.f["ExpirationDays"] = std::to_string(days);
          } else if (setting.key == "ExpirationCriterion" && !setting.value.get_string().get(v)) {
            call.f["ExpirationCriterion"] = std::string(v);
          } else {
            return InvalidArgument(
                "ExpirationSettings holds ExpirationDays (a number) and "
                "ExpirationCriterion (a string)");
          }
        }
        call.f["ExpirationSettings"] = "";
      } else if (!field.value.is_object()) {
        return InvalidArgument(key + " must be a string");
      }
    }
  }
  if (n >= 2 && seg[0] == "channels") call.f["ChannelArn"] = seg[1];
  if (n == 4 && seg[2] == "messages") call.f["MessageId"] = seg[3];
  if (n == 4 && seg[2] == "memberships") call.f["MemberArn"] = seg[3];
  for (const auto& [k, v] : query)
    if (const char* member = QueryMember(k)) call.f[member] = v;
  return call;
}

struct Server::Impl {
  ServerOptions options;
  httplib::Server http;
  std::mutex mu;  // state, journal, rng, faults
  State state;
  std::unique_ptr<Journal> journal;
  std::unique_ptr<Realtime> realtime;  // the messaging WebSocket; null without TLS
  Faults faults;
  std::mt19937_64 rng;
  std::mt19937_64 ids{std::random_device{}()};

  bool Roll(double p) { return p > 0 && std::uniform_real_distribution<double>(0, 1)(rng) < p; }

  // Server time: the wall clock plus what POST /_emulator/clock moved it on
  // (not persisted), so tests see channels expire without waiting days.
  int64_t clock_offset_ms = 0;  // REQUIRES: mu
  int64_t NowMs() const { return tidings::WallMs() + clock_offset_ms; }

  // Channels whose expiration time has passed go before the next call sees
  // them, as one journaled call, with DELETE_CHANNEL events. REQUIRES: mu.
  tidings::Status ExpireChannels() {
    const int64_t now = NowMs();
    if (!state.AnyExpired(now)) return tidings::Status::Ok();
    Call expire{"_ExpireChannels", {{"_at", std::to_string(now)}}};
    auto reply = state.Handle(expire);
    if (!reply.ok()) return reply.status();
    if (journal) TIDINGS_RETURN_IF_ERROR(journal->Append(State::Encode(expire)));
    if (realtime) {
      for (const Event& e : reply->events) realtime->Publish(e);
    }
    return tidings::Status::Ok();
  }

  void Clock(const httplib::Request& req, httplib::Response& res) {
    simdjson::dom::parser parser;
    simdjson::padded_string padded(req.body.empty() ? std::string("{}") : req.body);
    simdjson::dom::object obj;
    int64_t advance = 0;
    if (req.method == "POST" && (parser.parse(padded).get_object().get(obj) ||
                                 obj["advance_ms"].get_int64().get(advance) || advance < 0)) {
      return SendError(res, 400, "BadRequestException",
                       "clock: POST {\"advance_ms\": N} with N >= 0, or GET");
    }
    std::lock_guard<std::mutex> lock(mu);
    clock_offset_ms += advance;
    res.set_content("{\"now_ms\":" + std::to_string(NowMs()) +
                        ",\"offset_ms\":" + std::to_string(clock_offset_ms) + "}",
                    "application/json");
  }

  // The WebSocket's state and fault switches (README.md, "Admin endpoints").
  void RealtimeAdmin(const httplib::Request& req, httplib::Response& res) {
    if (!realtime) {
      return SendError(res, 400, "BadRequestException",
                       "the messaging WebSocket is off (start with --tls-cert and --tls-key)");
    }
    if (req.path == "/_emulator/realtime" && req.method == "GET") {
      res.set_content("{\"port\":" + std::to_string(realtime->port()) +
                          ",\"sessions\":" + std::to_string(realtime->sessions()) + "}",
                      "application/json");
      return;
    }
    simdjson::dom::parser parser;
    simdjson::padded_string padded(req.body.empty() ? std::string("{}") : req.body);
    simdjson::dom::object obj;
    if (req.method != "POST" || parser.parse(padded).get_object().get(obj)) {
      return SendError(res, 400, "BadRequestException",
                       "realtime: POST a JSON object to realtime/drop or realtime/faults");
    }
    std::string user;
    int64_t code = 0, delay_ms = 0, refuse_status = 0, refuse_close = 0;
    for (auto field : obj) {
      std::string_view text;
      int64_t* number = field.key == "code"            ? &code
                        : field.key == "delay_ms"      ? &delay_ms
                        : field.key == "refuse_status" ? &refuse_status
                        : field.key == "refuse_close"  ? &refuse_close
                                                       : nullptr;
      if (field.key == "user" && !field.value.get_string().get(text)) {
        user = std::string(text);
      } else if (number == nullptr || field.value.get_int64().get(*number) || *number < 0 ||
                 *number > 600000) {
        return SendError(
            res, 400, "BadRequestException",
            "realtime: unknown field or not a number 0-600000: " + std::string(field.key));
      }
    }
    if (req.path == "/_emulator/realtime/drop") {
      if (code != 0 && (code < 1000 || code > 4999 || code == 1005 || code == 1006)) {
        return SendError(res, 400, "BadRequestException",
                         "realtime/drop: code 0 (abrupt, seen as 1006) or a close code 1000-4999");
      }
      const size_t n = realtime->Drop(user, static_cast<int>(code));
      res.set_content("{\"dropped\":" + std::to_string(n) + "}", "application/json");
      return;
    }
    if (req.path == "/_emulator/realtime/faults") {
      if ((refuse_status != 0 && (refuse_status < 400 || refuse_status > 599)) ||
          (refuse_close != 0 && (refuse_close < 1000 || refuse_close > 4999))) {
        return SendError(res, 400, "BadRequestException",
                         "realtime/faults: refuse_status 400-599, refuse_close 1000-4999");
      }
      realtime->SetDelayMs(static_cast<int>(delay_ms));
      realtime->SetRefuse(static_cast<int>(refuse_status), static_cast<int>(refuse_close));
      res.status = 204;
      return;
    }
    return SendError(res, 404, "NotFoundException", "realtime: GET realtime, POST drop, faults");
  }

  void Admin(const httplib::Request& req, httplib::Response& res) {
    if (req.remote_addr != "127.0.0.1" && req.remote_addr != "::1") {
      return SendError(res, 403, "ForbiddenException", "/_emulator/ is for loopback clients only");
    }
    if (req.path == "/_emulator/healthz" && req.method == "GET") {
      res.set_content("ok", "text/plain");
      return;
    }
    if (req.path.rfind("/_emulator/realtime", 0) == 0) return RealtimeAdmin(req, res);
    if (req.path == "/_emulator/clock") return Clock(req, res);
    if (req.path != "/_emulator/faults" || req.method != "POST") {
      return SendError(res, 404, "NotFoundException",
                       "admin: POST faults, GET healthz, GET realtime, POST realtime/drop, "
                       "POST realtime/faults, GET or POST clock");
    }
    simdjson::dom::parser parser;
    simdjson::padded_string padded(req.body);
    simdjson::dom::object obj;
    Faults f;
    if (parser.parse(padded).get_object().get(obj)) {
      return SendError(res, 400, "BadRequestException", "faults: a JSON object");
    }
    for (auto field : obj) {
      double v = 0;
      if (field.value.get_double().get(v) || v < 0) {
        return SendError(res, 400, "BadRequestException", "faults: non-negative numbers only");
      }
      if (field.key == "throttle")
        f.throttle = v;
      else if (field.key == "error")
        f.error = v;
      else if (field.key == "commit_then_fail")
        f.commit_then_fail = v;
      else if (field.key == "latency_ms")
        f.latency_ms = static_cast<int>(v);
      else if (field.key == "seed")
        f.seed = static_cast<uint64_t>(v);
      else
        return SendError(res, 400, "BadRequestException", "faults: unknown field");
    }
    std::lock_guard<std::mutex> lock(mu);
    faults = f;
    rng.seed(f.seed);
    res.status = 204;
  }

  // {"Endpoint":{"Url":"host:port"}}: where the Chime SDK opens wss://.../connect.
  void SessionEndpoint(const httplib::Request& req, httplib::Response& res) {
    if (!realtime) {
      return SendError(res, 400, "UnsupportedOperation",
                       "the messaging WebSocket is off: start tidings-chime-local with "
                       "--tls-cert and --tls-key");
    }
    std::string host = options.host;
    if (host == "0.0.0.0" || host == "::") {  // the address the client reached us on
      host = req.get_header_value("Host");
      if (size_t colon = host.rfind(':'); colon != std::string::npos) host.resize(colon);
    }
    res.set_content("{\"Endpoint\":{\"Url\":" +
                        tidings::JsonString(host + ":" + std::to_string(realtime->port())) + "}}",
                    "application/json");
  }

  void Handle(const httplib::Request& req, httplib::Response& res) {
    res.set_header("Date", HttpDate());
    res.set_header("x-amzn-RequestId", RequestId());
    if (req.path.rfind("/_emulator/", 0) == 0) return Admin(req, res);
    int latency;
    {
      std::lock_guard<std::mutex> lock(mu);
      latency = faults.latency_ms;
    }
    if (latency > 0) std::this_thread::sleep_for(std::chrono::milliseconds(latency));
    tidings::http::Request signed_req{
        req.method, "http://" + req.get_header_value("Host") + req.target, {}, req.body};
    for (const auto& [k, v] : req.headers) signed_req.headers.emplace_back(k, v);
    if (auto err = VerifySigV4(options.auth, signed_req, tidings::WallMs() / 1000)) {
      return SendError(res, err->status, err->code, err->message);
    }
    auto call = ParseRequest(req.method, req.target, req.body);
    if (!call.ok()) return SendStatus(res, call.status());
    if (call->op == "GetMessagingSessionEndpoint") return SessionEndpoint(req, res);
    if (auto bearer = req.get_header_value("x-amz-chime-bearer"); !bearer.empty()) {
      call->f["ChimeBearer"] = bearer;
    }
    const bool mutation = State::IsMutation(call->op);
    Result<Reply> reply = Reply{};
    bool fail_after = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (Roll(faults.throttle)) {
        return SendError(res, 429, "ThrottledClientException", "injected: rate exceeded");
      }
      if (Roll(faults.error)) {
        bool unavailable = Roll(0.5);
        return SendError(res, unavailable ? 503 : 500,
                         unavailable ? "ServiceUnavailableException" : "ServiceFailureException",
                         "injected: server error, nothing applied");
      }
      if (mutation) {
        call->f["_at"] = std::to_string(NowMs());
        char id[40];
        std::snprintf(id, sizeof(id), "%016llx%016llx", static_cast<unsigned long long>(ids()),
                      static_cast<unsigned long long>(ids()));
        call->f["_id"] = id;
      }
      if (auto s = ExpireChannels(); !s.ok()) {
        return SendError(res, 500, "ServiceFailureException", "journal write failed");
      }
      reply = state.Handle(*call);
      if (reply.ok() && reply->mutated && journal) {
        if (auto s = journal->Append(State::Encode(*call)); !s.ok()) {
          std::fprintf(stderr, "tidings-chime-local: %s\n", s.ToString().c_str());
          return SendError(res, 500, "ServiceFailureException", "journal write failed");
        }
      }
      // Under the lock, so every socket sees events in commit order.
      if (reply.ok() && realtime) {
        for (const Event& e : reply->events) realtime->Publish(e);
      }
      fail_after = mutation && reply.ok() && Roll(faults.commit_then_fail);
    }
    if (!reply.ok()) return SendStatus(res, reply.status());
    if (fail_after) {
      return SendError(res, 500, "ServiceFailureException", "injected: applied, then failed");
    }
    res.status = reply->status;
    if (reply->status != 204) res.set_content(reply->body, "application/json");
  }
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;

Result<std::unique_ptr<Server>> Server::Create(const ServerOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->faults = options.faults;
  impl->rng.seed(options.faults.seed);
  if (!options.tls_cert.empty() || !options.tls_key.empty()) {
    if (options.tls_cert.empty() || options.tls_key.empty()) {
      return InvalidArgument("--tls-cert and --tls-key go together (PEM files)");
    }
    auto realtime = Realtime::Start(
        {options.host, options.ws_port, options.tls_cert, options.tls_key, options.auth});
    if (!realtime.ok()) return realtime.status();
    impl->realtime = std::move(*realtime);
  }
  if (!options.data_dir.empty()) {
    State* state = &impl->state;
    auto journal = Journal::Open(options.data_dir, [state](std::string_view line) {
      TIDINGS_ASSIGN_OR_RETURN(Call call, State::Decode(line));
      return state->Handle(call).status();
    });
    if (!journal.ok()) return journal.status();
    impl->journal = std::move(*journal);
  }
  Impl* p = impl.get();
  auto& http = impl->http;
  http.set_tcp_nodelay(true);  // without it every response waits ~40 ms (Nagle + delayed ACK)
  http.set_keep_alive_max_count(1u << 30);
  http.new_task_queue = [] { return new ThreadPerConnection(); };
  http.set_payload_max_length(1 << 20);
  // Every route goes through Impl::Handle (the pre-routing hook would run
  // before the body is read).
  auto handler = [p](const httplib::Request& req, httplib::Response& res) { p->Handle(req, res); };
  http.Get(".*", handler).Post(".*", handler).Put(".*", handler).Delete(".*", handler);
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Result<int> Server::Bind() {
  int port = impl_->options.port == 0
                 ? impl_->http.bind_to_any_port(impl_->options.host)
                 : (impl_->http.bind_to_port(impl_->options.host, impl_->options.port)
                        ? impl_->options.port
                        : -1);
  if (port <= 0) {
    return tidings::Unavailable("cannot listen on " + impl_->options.host + ":" +
                                std::to_string(impl_->options.port) + " (in use, or a bad host)");
  }
  return port;
}

void Server::Run() { impl_->http.listen_after_bind(); }
void Server::Stop() { impl_->http.stop(); }
void Server::Quiesce() { impl_->mu.lock(); }  // never unlocked: the process exits

}  // namespace chime_local
