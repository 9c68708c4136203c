// The events State attaches to a change for the messaging WebSocket
// (realtime.h): the model's shapes with ISO-8601 timestamps, as the Chime
// SDK's messaging session delivers them, addressed to the members of the
// moment.
#include <cstdio>
#include <ctime>

#include "emulator/chime/json_out.h"
#include "emulator/chime/state.h"

namespace chime_local {
namespace {

template <typename M>
std::vector<std::string> MemberArns(const std::map<std::string, M>& members) {
  std::vector<std::string> out;
  for (const auto& [arn, m] : members) out.push_back(arn);
  return out;
}

}  // namespace

std::string State::Iso8601(int64_t ms) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

Event State::MessageEvent(const Channel& c, const Message& m, const std::string& type) {
  std::string p = "{\"ChannelArn\":" + Q(c.arn) + ",\"MessageId\":" + Q(m.id);
  if (type != "DELETE_CHANNEL_MESSAGE") {
    if (!m.redacted) p += ",\"Content\":" + Q(m.content);
    if (!m.metadata.empty()) p += ",\"Metadata\":" + Q(m.metadata);
    if (!m.content_type.empty()) p += ",\"ContentType\":" + Q(m.content_type);
  }
  p += ",\"Type\":" + Q(m.type) + ",\"Persistence\":" + Q(m.persistence) +
       ",\"CreatedTimestamp\":" + Q(Iso8601(m.created_ms)) +
       ",\"LastUpdatedTimestamp\":" + Q(Iso8601(m.updated_ms));
  if (m.edited_ms >= 0) p += ",\"LastEditedTimestamp\":" + Q(Iso8601(m.edited_ms));
  p += ",\"Sender\":" + Identity(m.sender) + ",\"Redacted\":" + (m.redacted ? "true" : "false") +
       ",\"Status\":{\"Value\":\"SENT\"}}";
  return Event{type, m.type, c.arn, std::move(p), MemberArns(c.members)};
}

Event State::ChannelEvent(const Channel& c, const std::string& type) {
  std::string p = "{\"Name\":" + Q(c.name) + ",\"ChannelArn\":" + Q(c.arn) +
                  ",\"Mode\":" + Q(c.mode) + ",\"Privacy\":" + Q(c.privacy);
  if (!c.metadata.empty()) p += ",\"Metadata\":" + Q(c.metadata);
  p += ",\"CreatedBy\":" + Identity(c.created_by) +
       ",\"CreatedTimestamp\":" + Q(Iso8601(c.created_ms)) +
       ",\"LastUpdatedTimestamp\":" + Q(Iso8601(c.updated_ms));
  if (c.last_message_ms >= 0) p += ",\"LastMessageTimestamp\":" + Q(Iso8601(c.last_message_ms));
  return Event{type, "SYSTEM", c.arn, p + "}", MemberArns(c.members)};
}

Event State::MembershipEvent(const Channel& c, const std::string& member,
                             const std::string& invoked_by, const std::string& type) {
  auto it = c.members.find(member);
  const Member m = it == c.members.end() ? Member{} : it->second;
  std::string p = "{\"ChannelArn\":" + Q(c.arn) + ",\"Member\":" + Identity(member) +
                  ",\"InvitedBy\":" + Identity(invoked_by) + ",\"Type\":" + Q(m.type) +
                  ",\"CreatedTimestamp\":" + Q(Iso8601(m.created_ms)) +
                  ",\"LastUpdatedTimestamp\":" + Q(Iso8601(c.last_at)) + "}";
  Event e{type, "SYSTEM", c.arn, std::move(p), MemberArns(c.members)};
  if (it == c.members.end()) e.recipients.push_back(member);  // the one removed hears it too
  return e;
}

}  // namespace chime_local
