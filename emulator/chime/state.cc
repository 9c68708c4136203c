#include "emulator/chime/state.h"

#include <simdjson.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <initializer_list>

#include "crypto/hash.h"
#include "emulator/chime/json_out.h"

namespace chime_local {
namespace {

using tidings::InvalidArgument;
using tidings::NotFound;
using tidings::PermissionDenied;
using tidings::Result;
using tidings::Status;

constexpr size_t kMaxContent = 4096, kMaxControlContent = 30, kMaxMetadata = 1024;

std::string Ts(int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%lld.%03lld", static_cast<long long>(ms / 1000),
                static_cast<long long>(ms % 1000));
  return buf;
}

bool Lowercase(char c, std::string_view extra) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || extra.find(c) != std::string::npos;
}
bool Alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// The model's ChimeArn: arn:partition:service:region:account:resource.
bool IsArn(std::string_view a) {
  if (a.size() < 5 || a.size() > 1600 || a.substr(0, 4) != "arn:") return false;
  size_t pos = 4;
  for (int field = 0; field < 4; ++field) {
    size_t colon = a.find(':', pos);
    if (colon == std::string_view::npos) return false;
    std::string_view part = a.substr(pos, colon - pos);
    if ((field == 0 && part.empty()) || part.size() > 63) return false;
    for (char c : part)
      if (!Lowercase(c, "-.")) return false;
    pos = colon + 1;
  }
  return pos < a.size() && a[pos] != '/' && a.size() - pos <= 1024;
}

// "<app>/user/<id>" -> "<app>", "" if not an AppInstanceUser ARN.
std::string AppOfUser(std::string_view arn) {
  size_t k = arn.rfind("/user/");
  if (!IsArn(arn) || k == std::string_view::npos || k + 6 >= arn.size()) return "";
  if (arn.substr(0, k).find(":app-instance/") == std::string_view::npos) return "";
  return std::string(arn.substr(0, k));
}
Status Required(const Call& c, const std::string& k) {
  if (!c.Has(k)) return InvalidArgument("1 validation error: " + k + " is required");
  return Status::Ok();
}
Status CheckArn(const Call& c, const std::string& k, bool required = true) {
  if (!c.Has(k)) return required ? Required(c, k) : Status::Ok();
  if (!IsArn(c.Get(k)))
    return InvalidArgument(k +
                           " is not a valid ARN (arn:partition:service:region:account:resource)");
  return Status::Ok();
}
Status CheckLen(const Call& c, const std::string& k, size_t min, size_t max) {
  if (!c.Has(k)) return Status::Ok();
  size_t n = c.Get(k).size();
  if (n < min || n > max) {
    return InvalidArgument(k + " has " + std::to_string(n) + " bytes; it must have " +
                           std::to_string(min) + " to " + std::to_string(max));
  }
  return Status::Ok();
}
Status CheckEnum(const Call& c, const std::string& k, std::initializer_list<const char*> values) {
  if (!c.Has(k)) return Status::Ok();
  std::string list;
  for (const char* v : values) {
    if (c.Get(k) == v) return Status::Ok();
    list += std::string(list.empty() ? "" : ", ") + v;
  }
  return InvalidArgument(k + " must be one of " + list);
}
Status CheckToken(const Call& c, const std::string& k) {
  TIDINGS_RETURN_IF_ERROR(Required(c, k));
  TIDINGS_RETURN_IF_ERROR(CheckLen(c, k, 2, 64));
  for (char ch : c.Get(k))
    if (!Alnum(ch) && ch != '-' && ch != '_') return InvalidArgument(k + " allows [-_a-zA-Z0-9]");
  return Status::Ok();
}
Status CheckContent(const Call& c, const std::string& type) {
  TIDINGS_RETURN_IF_ERROR(Required(c, "Content"));
  size_t max = type == "CONTROL" ? kMaxControlContent : kMaxContent;
  if (c.Get("Content").empty() || c.Get("Content").size() > max) {
    return InvalidArgument("Content has " + std::to_string(c.Get("Content").size()) + " bytes; a " +
                           type + " message has 1 to " + std::to_string(max));
  }
  TIDINGS_RETURN_IF_ERROR(CheckLen(c, "Metadata", 0, kMaxMetadata));
  return CheckLen(c, "ContentType", 0, 45);
}
Result<size_t> MaxResults(const Call& c) {
  if (!c.Has("MaxResults")) return size_t{50};
  const std::string& v = c.Get("MaxResults");
  size_t n = 0;
  bool digits = !v.empty() && v.size() < 4;
  for (char ch : v) digits = digits && ch >= '0' && ch <= '9';
  if (digits) n = std::stoul(v);
  if (!digits || n < 1 || n > 50) return InvalidArgument("max-results must be 1 to 50, got " + v);
  return n;
}

// NextToken: the listing's position plus a check, so it stays valid while
// messages arrive and across restarts, and a foreign token is refused.
std::string Check(const std::string& scope, const std::string& value) {
  return tidings::crypto::Sha256Hex("tidings-chime-local\n" + scope + "\n" + value).substr(0, 16);
}
std::string MakeToken(const std::string& scope, const std::string& value) {
  return tidings::crypto::Base64Encode(value) + "." + Check(scope, value);
}
Result<std::string> ReadToken(const Call& c, const std::string& scope) {
  const std::string& t = c.Get("NextToken");
  size_t dot = t.rfind('.');
  std::string value;
  if (t.size() > 2048 || dot == std::string::npos ||
      !tidings::crypto::Base64Decode(t.substr(0, dot), &value) ||
      t.substr(dot + 1) != Check(scope, value)) {
    return InvalidArgument("next-token is not one this listing returned; start without it");
  }
  return value;
}

}  // namespace

const std::string& Call::Get(const std::string& key) const {
  static const std::string kEmpty;
  auto it = f.find(key);
  return it == f.end() ? kEmpty : it->second;
}

bool State::IsMutation(std::string_view op) {
  for (const char* m :
       {"CreateChannel", "CreateChannelMembership", "DeleteChannelMembership", "SendChannelMessage",
        "UpdateChannelMessage", "DeleteChannelMessage", "RedactChannelMessage",
        "UpdateChannelReadMarker", "UpdateChannel", "DeleteChannel", "BatchCreateChannelMembership",
        "PutChannelExpirationSettings", "_ExpireChannels"}) {
    if (op == m) return true;
  }
  return false;
}

std::string State::Encode(const Call& call) {
  std::string out = "{\"op\":" + Q(call.op);
  for (const auto& [k, v] : call.f) out += "," + Q(k) + ":" + Q(v);
  return out + "}";
}

Result<Call> State::Decode(std::string_view line) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(line);
  simdjson::dom::object obj;
  if (parser.parse(padded).get_object().get(obj)) return tidings::DataLoss("not a JSON object");
  Call call;
  for (auto field : obj) {
    std::string_view v;
    if (field.value.get_string().get(v)) return tidings::DataLoss("a field that is not a string");
    if (field.key == "op") {
      call.op = std::string(v);
    } else {
      call.f[std::string(field.key)] = std::string(v);
    }
  }
  if (!IsMutation(call.op)) return tidings::DataLoss("unknown operation '" + call.op + "'");
  return call;
}

bool State::ParseIso8601(std::string_view s, int64_t* ms) {
  // YYYY-MM-DDTHH:MM:SS[.fff...](Z|+00:00)
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
      s[13] != ':' || s[16] != ':') {
    return false;
  }
  auto num = [&](size_t at, size_t n, int* out) {
    *out = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      *out = *out * 10 + (s[i] - '0');
    }
    return true;
  };
  int y, mo, d, h, mi, se;
  if (!num(0, 4, &y) || !num(5, 2, &mo) || !num(8, 2, &d) || !num(11, 2, &h) || !num(14, 2, &mi) ||
      !num(17, 2, &se) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) {
    return false;
  }
  size_t i = 19;
  int frac_ms = 0, digits = 0;
  if (s[i] == '.') {
    for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, ++digits)
      if (digits < 3) frac_ms = frac_ms * 10 + (s[i] - '0');
    if (digits == 0) return false;
    for (int k = digits; k < 3; ++k) frac_ms *= 10;
  }
  std::string_view zone = s.substr(i);
  if (zone != "Z" && zone != "z" && zone != "+00:00") return false;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = se;
  *ms = static_cast<int64_t>(timegm(&tm)) * 1000 + frac_ms;
  return true;
}

Result<Reply> State::Handle(const Call& call) {
  if (call.op == "_ExpireChannels") return ExpireChannels(call);
  TIDINGS_RETURN_IF_ERROR(CheckArn(call, "ChimeBearer"));
  if (call.Has("ChannelArn")) TIDINGS_RETURN_IF_ERROR(CheckArn(call, "ChannelArn"));
  const std::string& op = call.op;
  if (op == "CreateChannel") return CreateChannel(call);
  if (op == "DescribeChannel") return DescribeChannel(call);
  if (op == "CreateChannelMembership") return CreateMembership(call);
  if (op == "DeleteChannelMembership") return DeleteMembership(call);
  if (op == "ListChannelMemberships") return ListMemberships(call);
  if (op == "ListChannelMembershipsForAppInstanceUser") return ListForUser(call);
  if (op == "DescribeChannelMembershipForAppInstanceUser") return DescribeForUser(call);
  if (op == "SendChannelMessage") return SendMessage(call);
  if (op == "ListChannelMessages") return ListMessages(call);
  if (op == "GetChannelMessage") return GetMessage(call);
  if (op == "UpdateChannelMessage") return UpdateMessage(call);
  if (op == "DeleteChannelMessage") return RemoveMessage(call, false);
  if (op == "RedactChannelMessage") return RemoveMessage(call, true);
  if (op == "UpdateChannelReadMarker") return UpdateReadMarker(call);
  if (op == "UpdateChannel") return UpdateChannel(call);
  if (op == "DeleteChannel") return DeleteChannel(call);
  if (op == "BatchCreateChannelMembership") return BatchCreateMembership(call);
  if (op == "GetChannelMessageStatus") return MessageStatus(call);
  if (op == "DescribeChannelModeratedByAppInstanceUser") return DescribeModerated(call);
  if (op == "PutChannelExpirationSettings") return PutExpiration(call);
  return InvalidArgument("operation " + op + " is not emulated");
}

Result<State::Channel*> State::Find(const Call& call, bool member_only) {
  auto it = channels_.find(call.Get("ChannelArn"));
  if (it == channels_.end()) return NotFound("channel " + call.Get("ChannelArn") + " not found");
  const std::string& bearer = call.Get("ChimeBearer");
  // Chime: anyone in the app instance lists (reads) a PUBLIC channel's
  // messages; sending and everything else needs membership.
  const bool public_read = it->second.privacy == "PUBLIC" &&
                           (call.op == "ListChannelMessages" || call.op == "GetChannelMessage" ||
                            call.op == "DescribeChannel") &&
                           AppOfUser(bearer) == it->first.substr(0, it->first.rfind("/channel/"));
  if (member_only && !public_read && !it->second.members.count(bearer)) {
    return PermissionDenied("the bearer " + bearer + " is not a member of channel " + it->first);
  }
  return &it->second;
}

Result<State::Message*> State::FindMessage(Channel& c, const Call& call) {
  auto it = c.by_id.find(call.Get("MessageId"));
  if (it == c.by_id.end() || c.messages[it->second].deleted) {
    return NotFound("message " + call.Get("MessageId") + " not found in channel " + c.arn);
  }
  return &c.messages[it->second];
}

int64_t State::Tick(Channel& c, const Call& call) {
  int64_t at = 0;
  const std::string& text = call.Get("_at");
  for (char ch : text)
    if (ch >= '0' && ch <= '9') at = at * 10 + (ch - '0');
  c.last_at = std::max(at, c.last_at + 1);
  return c.last_at;
}

std::string State::Summary(const Channel& c) {
  std::string out = "{\"Name\":" + Q(c.name) + ",\"ChannelArn\":" + Q(c.arn) +
                    ",\"Mode\":" + Q(c.mode) + ",\"Privacy\":" + Q(c.privacy);
  if (!c.metadata.empty()) out += ",\"Metadata\":" + Q(c.metadata);
  if (c.last_message_ms >= 0) out += ",\"LastMessageTimestamp\":" + Ts(c.last_message_ms);
  return out;  // callers close or extend it
}

std::string State::MessageJson(const Channel& c, const Message& m, bool full) {
  std::string out = "{";
  if (full) out += "\"ChannelArn\":" + Q(c.arn) + ",";
  out += "\"MessageId\":" + Q(m.id) + ",\"Content\":" + Q(m.content);
  if (!m.metadata.empty()) out += ",\"Metadata\":" + Q(m.metadata);
  if (!m.content_type.empty()) out += ",\"ContentType\":" + Q(m.content_type);
  out += ",\"Type\":" + Q(m.type) + ",\"CreatedTimestamp\":" + Ts(m.created_ms) +
         ",\"LastUpdatedTimestamp\":" + Ts(m.updated_ms);
  if (m.edited_ms >= 0) out += ",\"LastEditedTimestamp\":" + Ts(m.edited_ms);
  out += ",\"Sender\":" + Identity(m.sender) + ",\"Redacted\":" + (m.redacted ? "true" : "false");
  if (full) out += ",\"Persistence\":" + Q(m.persistence);
  return out + ",\"Status\":{\"Value\":\"SENT\"}}";
}

Result<Reply> State::CreateChannel(const Call& call) {
  TIDINGS_RETURN_IF_ERROR(CheckArn(call, "AppInstanceArn"));
  TIDINGS_RETURN_IF_ERROR(Required(call, "Name"));
  TIDINGS_RETURN_IF_ERROR(CheckLen(call, "Name", 1, 256));
  TIDINGS_RETURN_IF_ERROR(CheckEnum(call, "Mode", {"UNRESTRICTED", "RESTRICTED"}));
  TIDINGS_RETURN_IF_ERROR(CheckEnum(call, "Privacy", {"PUBLIC", "PRIVATE"}));
  TIDINGS_RETURN_IF_ERROR(CheckLen(call, "Metadata", 0, kMaxMetadata));
  TIDINGS_RETURN_IF_ERROR(CheckToken(call, "ClientRequestToken"));
  TIDINGS_RETURN_IF_ERROR(CheckExpirationSettings(call));
  const std::string& app = call.Get("AppInstanceArn");
  const std::string& bearer = call.Get("ChimeBearer");
  if (app.find(":app-instance/") == std::string::npos) {
    return InvalidArgument("AppInstanceArn must be an app-instance ARN, got " + app);
  }
  std::string id = call.Get("ChannelId");
  if (call.Has("ChannelId")) {
    bool ok = !id.empty() && id.size() <= 64 && Alnum(id.front()) && Alnum(id.back());
    for (char ch : id)
      ok = ok && (Alnum(ch) || std::string_view(":-_.@").find(ch) != std::string::npos);
    if (!ok)
      return InvalidArgument(
          "ChannelId must be 1-64 of [A-Za-z0-9:-_.@], alphanumeric at both ends");
  } else {
    id = call.Get("_id");
  }
  std::vector<std::pair<std::string, bool>> members = {{bearer, true}};
  for (const char* list : {"MemberArns", "ModeratorArns"}) {
    if (!call.Has(list)) continue;
    std::string all = call.Get(list) + "\n";
    size_t n = 0;
    for (size_t p = 0, nl; (nl = all.find('\n', p)) != std::string::npos; p = nl + 1, ++n) {
      std::string arn = all.substr(p, nl - p);
      if (AppOfUser(arn) != app)
        return InvalidArgument(std::string(list) + " has " + arn + ", not a user of " + app);
      members.emplace_back(arn, std::string_view(list) == "ModeratorArns");
    }
    if (n < 1 || n > 10) return InvalidArgument(std::string(list) + " must list 1 to 10 ARNs");
  }
  if (AppOfUser(bearer) != app) {
    return PermissionDenied("the bearer " + bearer + " is not an AppInstanceUser of " + app);
  }
  const std::string token_key = app + "\n" + call.Get("ClientRequestToken");
  if (auto t = channel_tokens_.find(token_key); t != channel_tokens_.end()) {
    const Channel& existing = channels_[t->second];
    if (existing.created_by != bearer ||
        (call.Has("ChannelId") && existing.arn != app + "/channel/" + id)) {
      return tidings::AlreadyExists("ClientRequestToken was already used for another channel");
    }
    return Reply{201, "{\"ChannelArn\":" + Q(existing.arn) + "}", false};
  }
  const std::string arn = app + "/channel/" + id;
  if (channels_.count(arn)) return tidings::AlreadyExists("channel " + arn + " already exists");
  Channel& c = channels_[arn];
  c.arn = arn;
  c.name = call.Get("Name");
  c.mode = call.Has("Mode") ? call.Get("Mode") : "UNRESTRICTED";
  // The model names no default; PRIVATE is the safe reading (members only).
  c.privacy = call.Has("Privacy") ? call.Get("Privacy") : "PRIVATE";
  c.metadata = call.Get("Metadata");
  c.created_by = bearer;
  c.created_ms = c.updated_ms = Tick(c, call);
  if (call.Has("ExpirationSettings")) {
    c.expiration_days = std::stoll(call.Get("ExpirationDays"));
    c.expiration_criterion = call.Get("ExpirationCriterion");
  }
  for (const auto& [m, moderator] : members) {
    Member& mem = c.members[m];
    mem.created_ms = c.created_ms;
    mem.moderator = mem.moderator || moderator;
  }
  channel_tokens_[token_key] = arn;
  Reply reply{201, "{\"ChannelArn\":" + Q(arn) + "}", true, {}};
  reply.events.push_back(ChannelEvent(c, "CREATE_CHANNEL"));
  return reply;
}

Result<Reply> State::DescribeChannel(const Call& call) {
  TIDINGS_ASSIGN_OR_RETURN(Channel * c, Find(call));
  const std::string expiration =
      c->expiration_days == 0 ? "" : ",\"ExpirationSettings\":" + ExpirationJson(*c);
  return Reply{200,
               "{\"Channel\":" + Summary(*c) + ",\"CreatedBy\":" + Identity(c->created_by) +
                   ",\"CreatedTimestamp\":" + Ts(c->created_ms) +
                   ",\"LastUpdatedTimestamp\":" + Ts(c->updated_ms) + expiration + "}}",
               false};
}

Result<Reply> State::CreateMembership(const Call& call) {
  TIDINGS_RETURN_IF_ERROR(CheckArn(call, "MemberArn"));
  TIDINGS_RETURN_IF_ERROR(Required(call, "Type"));
  TIDINGS_RETURN_IF_ERROR(CheckEnum(call, "Type", {"DEFAULT", "HIDDEN"}));
  TIDINGS_ASSIGN_OR_RETURN(Channel * c, Find(call));
  const std::string& member = call.Get("MemberArn");
  const std::string app = c->arn.substr(0, c->arn.rfind("/channel/"));
  if (AppOfUser(member) != app) {
    return InvalidArgument("MemberArn " + member + " is not an AppInstanceUser of " + app);
  }
  if (c->mode == "RESTRICTED" && !c->members[call.Get("ChimeBearer")].moderator) {
    return PermissionDenied("only moderators add members to a RESTRICTED channel");
  }
  if (c->members.count(member)) {
    return tidings::AlreadyExists(member + " is already a member of " + c->arn);
  }
  Member& m = c->members[member];
  m.type = call.Get("Type");
  m.created_ms = Tick(*c, call);
  Reply reply{
      201, "{\"ChannelArn\":" + Q(c->arn) + ",\"Member\":" + Identity(member) + "}", true, {}};
  reply.events.push_back(
      MembershipEvent(*c, member, call.Get("ChimeBearer"), "CREATE_CHANNEL_MEMBERSHIP"));
  return reply;
}

Result<Reply> State::DeleteMembership(const Call& call) {
  TIDINGS_RETURN_IF_ERROR(CheckArn(call, "MemberArn"));
  TIDINGS_ASSIGN_OR_RETURN(Channel * c, Find(call));
  const std::string& member = call.Get("MemberArn");
  const std::string& bearer = call.Get("ChimeBearer");
  if (member != bearer && !c->members[bearer].moderator) {
    return PermissionDenied("only moderators remove other members");
  }
  if (!c->members.erase(member)) return NotFound(member + " is not a member of " + c->arn);
  Tick(*c, call);
  Reply reply{204, "", true, {}};
  reply.events.push_back(MembershipEvent(*c, member, bearer, "DELETE_CHANNEL_MEMBERSHIP"));
  return reply;
}

Result<Reply> State::ListMemberships(const Call& call) {
  TIDINGS_RETURN_IF_ERROR(CheckEnum(call, "Type", {"DEFAULT", "HIDDEN"}));
  TIDINGS_ASSIGN_OR_RETURN(size_t max, MaxResults(call));
  TIDINGS_ASSIGN_OR_RETURN(Channel * c, Find(call));
  std::string after;
  if (call.Has("NextToken")) {
    TIDINGS_ASSIGN_OR_RETURN(after, ReadToken(call, c->arn + "\nmembers"));
  }
  std::string out = "{\"ChannelArn\":" + Q(c->arn) + ",\"ChannelMemberships\":[";
  size_t n = 0;
  std::string last;
  bool more = false;
  for (auto it = c->members.upper_bound(after); it != c->members.end(); ++it) {
    // Like Chime: HIDDEN members only when asked for.
    if (it->second.type != (call.Has("Type") ? call.Get("Type") : "DEFAULT")) continue;
    if (n == max) {
      more = true;
      break;
    }
    out += std::string(n++ ? "," : "") + "{\"Member\":" + Identity(it->first) + "}";
    last = it->first;
  }
  out += "]";
  if (more) out += ",\"NextToken\":" + Q(MakeToken(c->arn + "\nmembers", last));
  return Reply{200, out + "}", false};
}

Result<Reply> State::ListForUser(const Call& call) {
  TIDINGS_RETURN_IF_ERROR(CheckArn(call, "AppInstanceUserArn", false));
  TIDINGS_ASSIGN_OR_RETURN(size_t max, MaxResults(call));
  const std::string& bearer = call.Get("ChimeBearer");
  const std::string& user =
      call.Has("AppInstanceUserArn") ? call.Get("AppInstanceUserArn") : bearer;
  if (user != bearer) return PermissionDenied("a bearer lists only its own memberships");
  std::string after;
  if (call.Has("NextToken")) {
    TIDINGS_ASSIGN_OR_RETURN(after, ReadToken(call, user + "\nchannels"));
  }
  std::string out = "{\"ChannelMemberships\":[", last;
  size_t n = 0;
  bool more = false;
  for (auto it = channels_.upper_bound(after); it != channels_.end(); ++it) {
    auto m = it->second.members.find(user);
    if (m == it->second.members.end()) continue;
    if (n == max) {
      more = true;
      break;
    }
    out += std::string(n++ ? "," : "") + "{\"ChannelSummary\":" + Summary(it->second) +
           "},\"AppInstanceUserMembershipSummary\":{\"Type\":" + Q(m->second.type) +
           (m->second.read_ms >= 0 ? ",\"ReadMarkerTimestamp\":" + Ts(m->second.read_ms) : "") +
           "}}";
    last = it->first;
  }
  out += "]";
  if (more) out += ",\"NextToken\":" + Q(MakeToken(user + "\nchannels", last));
  return Reply{200, out + "}", false};
}

Result<Reply> State::DescribeForUser(const Call& call) {
  TIDINGS_RETURN_IF_ERROR(CheckArn(call, "AppInstanceUserArn"));
  const std::string& user = call.Get("AppInstanceUserArn");
  TIDINGS_ASSIGN_OR_RETURN(Channel * c, Find(call, /*member_only=*/false));
  if (user != call.Get("ChimeBearer") && !c->members.count(call.Get("ChimeBearer"))) {
    return PermissionDenied("the bearer is not a member of channel " + c->arn);
  }
  auto m = c->members.find(user);
  if (m == c->members.end()) return NotFound(user + " is not a member of " + c->arn);
  return Reply{
      200,
      "{\"ChannelMembership\":{\"ChannelSummary\":" + Summary(*c) +
          "},\"AppInstanceUserMembershipSummary\":{\"Type\":" + Q(m->second.type) +
          (m->second.read_ms >= 0 ? ",\"ReadMarkerTimestamp\":" + Ts(m->second.read_ms) : "") +
          "}}}",
      false};
}

Result<Reply> State::SendMessage(const Call& call) {
  TIDINGS_RETURN_IF_ERROR(Required(call, "Type"));
  TIDINGS_RETURN_IF_ERROR(CheckEnum(call, "Type", {"STANDARD", "CONTROL"}));
  TIDINGS_RETURN_IF_ERROR(Required(call, "Persistence"));
  TIDINGS_RETURN_IF_ERROR(CheckEnum(call, "Persistence", {"PERSISTENT", "NON_PERSISTENT"}));
  TIDINGS_RETURN_IF_ERROR(CheckContent(call, call.Get("Type")));
  TIDINGS_RETURN_IF_ERROR(CheckToken(call, "ClientRequestToken"));
  TIDINGS_ASSIGN_OR_RETURN(Channel * c, Find(call));
  const std::string& bearer = call.Get("ChimeBearer");
  auto reply = [&](const std::string& id, bool mutated) {
    return Reply{201,
                 "{\"ChannelArn\":" + Q(c->arn) + ",\"MessageId\":" + Q(id) +
                     ",\"Status\":{\"Value\":\"SENT\"}}",
                 mutated};
  };
  const std::string key = bearer + "\n" + call.Get("ClientRequestToken");
  if (auto t = c->tokens.find(key); t != c->tokens.end()) return reply(t->second, false);
  Message m;
  m.id = call.Get("_id");
  m.content = call.Get("Content");
  m.metadata = call.Get("Metadata");
  m.content_type = call.Get("ContentType");
  m.type = call.Get("Type");
  m.persistence = call.Get("Persistence");
  m.sender = bearer;
  if (m.persistence == "NON_PERSISTENT") {
    // Fanned out to the members' sockets, never stored or listed.
    int64_t at = 0;
    for (char ch : call.Get("_at"))
      if (ch >= '0' && ch <= '9') at = at * 10 + (ch - '0');
    m.created_ms = m.updated_ms = at;
    Reply r = reply(m.id, false);
    r.events.push_back(MessageEvent(*c, m, "CREATE_CHANNEL_MESSAGE"));
    return r;
  }
  m.created_ms = m.updated_ms = c->last_message_ms = Tick(*c, call);
  c->by_id[m.id] = c->messages.size();
  c->tokens[key] = m.id;
  c->messages.push_back(std::move(m));
  Reply r = reply(c->messages.back().id, true);
  r.events.push_back(MessageEvent(*c, c->messages.back(), "CREATE_CHANNEL_MESSAGE"));
  return r;
}

Result<Reply> State::ListMessages(const Call& call) {
  TIDINGS_RETURN_IF_ERROR(CheckEnum(call, "SortOrder", {"ASCENDING", "DESCENDING"}));
  TIDINGS_ASSIGN_OR_RETURN(size_t max, MaxResults(call));
  int64_t not_before = INT64_MIN, not_after = INT64_MAX;
  for (auto [k, v] : {std::pair{"NotBefore", &not_before}, std::pair{"NotAfter", &not_after}}) {
    if (call.Has(k) && !ParseIso8601(call.Get(k), v)) {
      return InvalidArgument(std::string(k) + " is not an ISO-8601 UTC timestamp like " +
                             "2023-11-14T22:13:20.123Z: " + call.Get(k));
    }
  }
  TIDINGS_ASSIGN_OR_RETURN(Channel * c, Find(call));
  const bool desc = call.Get("SortOrder") != "ASCENDING";  // Chime: newest first by default
  const std::string scope = c->arn + (desc ? "\nD" : "\nA");
  if (call.Has("NextToken")) {
    TIDINGS_ASSIGN_OR_RETURN(std::string pos, ReadToken(call, scope));
    int64_t last = std::stoll(pos);  // digits: it passed the check
    if (desc) {
      not_after = std::min(not_after, last - 1);
    } else {
      not_before = std::max(not_before, last + 1);
    }
  }
  auto by_time = [](const Message& m, int64_t t) { return m.created_ms < t; };
  auto lo = std::lower_bound(c->messages.begin(), c->messages.end(), not_before, by_time);
  auto hi = not_after == INT64_MAX
                ? c->messages.end()
                : std::lower_bound(lo, c->messages.end(), not_after + 1, by_time);
  std::vector<const Message*> page;
  bool more = false;
  auto take = [&](const Message& m) {
    if (m.deleted || m.persistence != "PERSISTENT") return true;
    if (page.size() == max) {
      more = true;
      return false;
    }
    page.push_back(&m);
    return true;
  };
  if (desc) {
    for (auto it = hi; it != lo && take(*(it - 1)); --it) {
    }
  } else {
    for (auto it = lo; it != hi && take(*it); ++it) {
    }
  }
  std::string out = "{\"ChannelArn\":" + Q(c->arn) + ",\"ChannelMessages\":[";
  for (size_t i = 0; i < page.size(); ++i) out += (i ? "," : "") + MessageJson(*c, *page[i], false);
  out += "]";
  if (more) {
    out += ",\"NextToken\":" + Q(MakeToken(scope, std::to_string(page.back()->created_ms)));
  }
  return Reply{200, out + "}", false};
}

Result<Reply> State::GetMessage(const Call& call) {
  TIDINGS_ASSIGN_OR_RETURN(Channel * c, Find(call));
  TIDINGS_ASSIGN_OR_RETURN(Message * m, FindMessage(*c, call));
  return Reply{200, "{\"ChannelMessage\":" + MessageJson(*c, *m, true) + "}", false};
}

Result<Reply> State::UpdateMessage(const Call& call) {
  TIDINGS_ASSIGN_OR_RETURN(Channel * c, Find(call));
  TIDINGS_ASSIGN_OR_RETURN(Message * m, FindMessage(*c, call));
  TIDINGS_RETURN_IF_ERROR(CheckContent(call, m->type));
  if (m->sender != call.Get("ChimeBearer")) {
    return PermissionDenied("only the sender updates a message");
  }
  if (m->redacted) return InvalidArgument("message " + m->id + " was redacted");
  m->content = call.Get("Content");
  if (call.Has("Metadata")) m->metadata = call.Get("Metadata");
  if (call.Has("ContentType")) m->content_type = call.Get("ContentType");
  m->edited_ms = m->updated_ms = Tick(*c, call);
  Reply reply{200,
              "{\"ChannelArn\":" + Q(c->arn) + ",\"MessageId\":" + Q(m->id) +
                  ",\"Status\":{\"Value\":\"SENT\"}}",
              true,
              {}};
  reply.events.push_back(MessageEvent(*c, *m, "UPDATE_CHANNEL_MESSAGE"));
  return reply;
}

Result<Reply> State::RemoveMessage(const Call& call, bool redact) {
  TIDINGS_ASSIGN_OR_RETURN(Channel * c, Find(call));
  TIDINGS_ASSIGN_OR_RETURN(Message * m, FindMessage(*c, call));
  if (m->sender != call.Get("ChimeBearer") && !c->members[call.Get("ChimeBearer")].moderator) {
    return PermissionDenied("only the sender or a moderator " +
                            std::string(redact ? "redacts" : "deletes") + " a message");
  }
  m->updated_ms = Tick(*c, call);
  if (!redact) {
    m->deleted = true;
    Reply reply{204, "", true, {}};
    reply.events.push_back(MessageEvent(*c, *m, "DELETE_CHANNEL_MESSAGE"));
    return reply;
  }
  // Like Chime: a redacted message keeps its place, without content or metadata.
  m->redacted = true;
  m->content.clear();
  m->metadata.clear();
  Reply reply{200, "{\"ChannelArn\":" + Q(c->arn) + ",\"MessageId\":" + Q(m->id) + "}", true, {}};
  reply.events.push_back(MessageEvent(*c, *m, "REDACT_CHANNEL_MESSAGE"));
  return reply;
}

Result<Reply> State::UpdateReadMarker(const Call& call) {
  TIDINGS_ASSIGN_OR_RETURN(Channel * c, Find(call));
  c->members[call.Get("ChimeBearer")].read_ms = Tick(*c, call);
  return Reply{200, "{\"ChannelArn\":" + Q(c->arn) + "}", true, {}};
}

Result<Reply> State::UpdateChannel(const Call& call) {
  TIDINGS_RETURN_IF_ERROR(CheckLen(call, "Name", 1, 256));
  TIDINGS_RETURN_IF_ERROR(CheckEnum(call, "Mode", {"UNRESTRICTED", "RESTRICTED"}));
  TIDINGS_RETURN_IF_ERROR(CheckLen(call, "Metadata", 0, kMaxMetadata));
  TIDINGS_ASSIGN_OR_RETURN(Channel * c, Find(call));
  if (!c->members[call.Get("ChimeBearer")].moderator) {
    return PermissionDenied("only moderators update a channel");
  }
  if (call.Has("Name")) c->name = call.Get("Name");
  if (call.Has("Mode")) c->mode = call.Get("Mode");
  if (call.Has("Metadata")) c->metadata = call.Get("Metadata");
  c->updated_ms = Tick(*c, call);
  Reply reply{200, "{\"ChannelArn\":" + Q(c->arn) + "}", true, {}};
  reply.events.push_back(ChannelEvent(*c, "UPDATE_CHANNEL"));
  return reply;
}

Result<Reply> State::DeleteChannel(const Call& call) {
  TIDINGS_ASSIGN_OR_RETURN(Channel * c, Find(call));
  if (!c->members[call.Get("ChimeBearer")].moderator) {
    return PermissionDenied("only moderators delete a channel");
  }
  c->updated_ms = Tick(*c, call);
  Reply reply{204, "", true, {}};
  reply.events.push_back(ChannelEvent(*c, "DELETE_CHANNEL"));
  for (auto t = channel_tokens_.begin(); t != channel_tokens_.end();) {
    t = t->second == c->arn ? channel_tokens_.erase(t) : std::next(t);
  }
  channels_.erase(c->arn);
  return reply;
}

Result<Reply> State::BatchCreateMembership(const Call& call) {
  TIDINGS_RETURN_IF_ERROR(Required(call, "MemberArns"));
  TIDINGS_RETURN_IF_ERROR(CheckEnum(call, "Type", {"DEFAULT", "HIDDEN"}));
  TIDINGS_ASSIGN_OR_RETURN(Channel * c, Find(call));
  const std::string& bearer = call.Get("ChimeBearer");
  if (c->mode == "RESTRICTED" && !c->members[bearer].moderator) {
    return PermissionDenied("only moderators add members to a RESTRICTED channel");
  }
  const std::string app = c->arn.substr(0, c->arn.rfind("/channel/"));
  const std::string type = call.Has("Type") ? call.Get("Type") : "DEFAULT";
  std::vector<std::string> arns;
  std::string all = call.Get("MemberArns") + "\n";
  for (size_t p = 0, nl; (nl = all.find('\n', p)) != std::string::npos; p = nl + 1)
    arns.push_back(all.substr(p, nl - p));
  if (arns.size() > 100) return InvalidArgument("MemberArns must list 1 to 100 ARNs");
  Reply reply{200, "", false, {}};
  std::string added, errors;
  for (const std::string& arn : arns) {
    const char* code = AppOfUser(arn) != app        ? "BadRequest"
                       : c->members.count(arn) != 0 ? "Conflict"
                                                    : nullptr;
    if (code != nullptr) {
      errors += std::string(errors.empty() ? "" : ",") + "{\"MemberArn\":" + Q(arn) +
                ",\"ErrorCode\":" + Q(code) + ",\"ErrorMessage\":" +
                Q(*code == 'B' ? "not an AppInstanceUser of " + app : "already a member") + "}";
      continue;
    }
    Member& m = c->members[arn];
    m.type = type;
    m.created_ms = Tick(*c, call);
    reply.mutated = true;
    added += std::string(added.empty() ? "" : ",") + Identity(arn);
    reply.events.push_back(MembershipEvent(*c, arn, bearer, "CREATE_CHANNEL_MEMBERSHIP"));
  }
  reply.body = "{\"BatchChannelMemberships\":{\"InvitedBy\":" + Identity(bearer) +
               ",\"Type\":" + Q(type) + ",\"Members\":[" + added + "],\"ChannelArn\":" + Q(c->arn) +
               "},\"Errors\":[" + errors + "]}";
  return reply;
}

Result<Reply> State::MessageStatus(const Call& call) {
  TIDINGS_ASSIGN_OR_RETURN(Channel * c, Find(call));
  TIDINGS_RETURN_IF_ERROR(FindMessage(*c, call).status());
  return Reply{200, "{\"Status\":{\"Value\":\"SENT\"}}", false, {}};  // no channel flows
}

Result<Reply> State::DescribeModerated(const Call& call) {
  TIDINGS_RETURN_IF_ERROR(CheckArn(call, "AppInstanceUserArn"));
  TIDINGS_ASSIGN_OR_RETURN(Channel * c, Find(call));
  const std::string& user = call.Get("AppInstanceUserArn");
  auto m = c->members.find(user);
  if (m == c->members.end() || !m->second.moderator) {
    return NotFound(user + " does not moderate channel " + c->arn);
  }
  return Reply{200, "{\"Channel\":{\"ChannelSummary\":" + Summary(*c) + "}}}", false, {}};
}

}  // namespace chime_local
