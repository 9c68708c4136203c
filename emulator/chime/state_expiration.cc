// Channel expiration (ExpirationSettings): the settings, and the deletion of
// channels whose time has passed, on the server's clock (routes.cc moves it
// for tests and applies _ExpireChannels before serving a request).
#include <string>

#include "emulator/chime/json_out.h"
#include "emulator/chime/state.h"

namespace chime_local {
namespace {

using tidings::InvalidArgument;
using tidings::PermissionDenied;
using tidings::Result;
using tidings::Status;

}  // namespace

// ExpirationSettings (flattened by the router): both fields, in the model's
// bounds. Absent: no settings.
Status State::CheckExpirationSettings(const Call& c) {
  if (!c.Has("ExpirationSettings")) return Status::Ok();
  const std::string& days = c.Get("ExpirationDays");
  const bool number = !days.empty() && days.size() <= 5 &&
                      days.find_first_not_of("0123456789") == std::string::npos;
  if (!number || std::stoll(days) < 1 || std::stoll(days) > 5475) {
    return InvalidArgument("ExpirationSettings.ExpirationDays must be 1 to 5475");
  }
  if (!c.Has("ExpirationCriterion")) {
    return InvalidArgument("ExpirationSettings.ExpirationCriterion is required");
  }
  const std::string& criterion = c.Get("ExpirationCriterion");
  if (criterion != "CREATED_TIMESTAMP" && criterion != "LAST_MESSAGE_TIMESTAMP") {
    return InvalidArgument(
        "ExpirationSettings.ExpirationCriterion must be CREATED_TIMESTAMP or "
        "LAST_MESSAGE_TIMESTAMP");
  }
  return Status::Ok();
}

int64_t State::ExpiresAt(const Channel& c) {
  if (c.expiration_days == 0) return -1;
  const int64_t from = c.expiration_criterion == "LAST_MESSAGE_TIMESTAMP" && c.last_message_ms >= 0
                           ? c.last_message_ms
                           : c.created_ms;
  return from + c.expiration_days * 86'400'000;
}

std::string State::ExpirationJson(const Channel& c) {
  return "{\"ExpirationDays\":" + std::to_string(c.expiration_days) +
         ",\"ExpirationCriterion\":" + Q(c.expiration_criterion) + "}";
}

bool State::AnyExpired(int64_t now_ms) const {
  for (const auto& [arn, c] : channels_) {
    const int64_t at = ExpiresAt(c);
    if (at >= 0 && at <= now_ms) return true;
  }
  return false;
}

// PutChannelExpirationSettings: sets (or, without ExpirationSettings,
// removes) when the channel and its messages are deleted. Moderators only.
Result<Reply> State::PutExpiration(const Call& call) {
  TIDINGS_RETURN_IF_ERROR(CheckExpirationSettings(call));
  TIDINGS_ASSIGN_OR_RETURN(Channel * c, Find(call));
  if (!c->members[call.Get("ChimeBearer")].moderator) {
    return PermissionDenied("only moderators change a channel's expiration settings");
  }
  c->expiration_days = call.Has("ExpirationSettings") ? std::stoll(call.Get("ExpirationDays")) : 0;
  c->expiration_criterion = call.Has("ExpirationSettings") ? call.Get("ExpirationCriterion") : "";
  c->updated_ms = Tick(*c, call);
  std::string out = "{\"ChannelArn\":" + Q(c->arn);
  if (c->expiration_days != 0) out += ",\"ExpirationSettings\":" + ExpirationJson(*c);
  return Reply{200, out + "}", true, {}};
}

Result<Reply> State::ExpireChannels(const Call& call) {
  int64_t now = 0;
  for (char ch : call.Get("_at")) now = now * 10 + (ch - '0');
  Reply reply{200, "", true, {}};
  for (auto it = channels_.begin(); it != channels_.end();) {
    const int64_t at = ExpiresAt(it->second);
    if (at < 0 || at > now) {
      ++it;
      continue;
    }
    reply.events.push_back(ChannelEvent(it->second, "DELETE_CHANNEL"));
    for (auto t = channel_tokens_.begin(); t != channel_tokens_.end();) {
      t = t->second == it->first ? channel_tokens_.erase(t) : std::next(t);
    }
    it = channels_.erase(it);
  }
  return reply;
}

}  // namespace chime_local
