// ChimeBackend's channels: finding a conversation's channel, making it with
// its members, adding members, and refusing a channel someone outside the
// conversation made or joined (squatting).
#include <algorithm>
#include <set>

#include "common/clock.h"
#include "common/json_string.h"
#include "sync/chime/chime_backend.h"
#include "sync/chime/chime_internal.h"

namespace tidings::chime {
namespace {

using internal::Enc;
using internal::StartsWith;

constexpr int64_t kListingMaxAgeMs = 30'000;  // refresh for unknown conversations
// A channel's creator and members are checked again after this long: any
// member of an UNRESTRICTED channel may add someone.
constexpr int64_t kVerifiedMaxAgeMs = 30'000;

// Channel names: 1-256 printable characters; cut on a UTF-8 boundary.
std::string ChannelName(const engine::Conversation& c) {
  std::string name = c.title.empty() ? c.id : c.title;
  for (char& ch : name) {
    if (static_cast<unsigned char>(ch) < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') ch = ' ';
  }
  if (name.size() > 256) {
    size_t cut = 256;
    while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;
    name.resize(cut);
  }
  if (name.empty() || !IsUtf8(name)) name = c.id;
  return name;
}

// A retention policy of `days` as channel expiration: Chime deletes the
// channel, with its messages, that long after its last message - when every
// message is older than the policy keeps.
std::string ExpirationSettings(uint32_t days) {
  return "{\"ExpirationDays\":" + std::to_string(std::min<uint32_t>(days, 5475)) +
         ",\"ExpirationCriterion\":\"LAST_MESSAGE_TIMESTAMP\"}";
}

}  // namespace

Result<std::vector<ChannelInfo>> ChimeBackend::ListMyChannels() {
  std::vector<ChannelInfo> out;
  std::string token;
  for (int page = 0; page < 1000; ++page) {
    std::string path = "/channels?scope=app-instance-user-memberships&app-instance-user-arn=" +
                       Enc(config_.user_arn) + "&max-results=50";
    if (!token.empty()) path += "&next-token=" + Enc(token);
    TIDINGS_ASSIGN_OR_RETURN(std::string body, Call("GET", path));
    TIDINGS_ASSIGN_OR_RETURN(ChannelsPage channels, ParseListChannelMemberships(body));
    for (auto& c : channels.channels) out.push_back(std::move(c));
    token = channels.next_token;
    if (token.empty()) break;
  }
  return out;
}

Result<std::vector<std::string>> ChimeBackend::ListConversations() {
  std::map<std::string, std::string> found;  // conversation -> channel
  TIDINGS_ASSIGN_OR_RETURN(std::vector<ChannelInfo> channels, ListMyChannels());
  for (const auto& c : channels) {
    if (LogIdOf(c)) continue;  // a sealed log: ListLogs
    std::string id = ConversationIdFor(c.arn, c.metadata);
    // Two channels claiming one conversation (made by clients that did not
    // use the deterministic ChannelId): every device picks the same one.
    auto it = found.find(id);
    if (it == found.end()) {
      found[id] = c.arn;
    } else if (it->second != DefaultChannelArn(id) &&
               (c.arn == DefaultChannelArn(id) || c.arn < it->second)) {
      it->second = c.arn;
    }
  }
  std::vector<std::string> out;
  for (const auto& [id, arn] : found) {
    channels_[id] = arn;
    out.push_back(id);
  }
  listed_at_ms_ = MonotonicMs();
  return out;
}

Result<std::string> ChimeBackend::ResolveChannel(const std::string& conversation_id,
                                                 bool* guessed) {
  *guessed = false;
  if (auto it = channels_.find(conversation_id); it != channels_.end()) return it->second;
  if (StartsWith(conversation_id, "chime:")) {
    return config_.app_instance_arn + "/channel/" + conversation_id.substr(6);
  }
  if (listed_at_ms_ < 0 || MonotonicMs() - listed_at_ms_ > kListingMaxAgeMs) {
    TIDINGS_RETURN_IF_ERROR(ListConversations().status());
    if (auto it = channels_.find(conversation_id); it != channels_.end()) return it->second;
  }
  *guessed = true;
  return DefaultChannelArn(conversation_id);
}

Status ChimeBackend::AddMember(const std::string& channel_arn, const std::string& member_arn) {
  auto added = Call("POST", "/channels/" + Enc(channel_arn) + "/memberships",
                    "{\"MemberArn\":" + JsonString(member_arn) + ",\"Type\":\"DEFAULT\"}");
  if (added.ok()) return Status::Ok();
  // Already a member (Conflict), or a member Tidings may not add (unknown
  // user, restricted channel): the conversation goes on without them.
  if (sync::Classify(added.status()) == sync::ErrorClass::kPermanent) return Status::Ok();
  return added.status();
}

Result<std::string> ChimeBackend::CreateChannel(const std::string& channel_id,
                                                const std::string& name,
                                                const std::string& metadata,
                                                const std::vector<std::string>& members,
                                                size_t* joined, bool* made, uint32_t keep_days) {
  *joined = 0;
  *made = false;
  std::string body =
      "{\"AppInstanceArn\":" + JsonString(config_.app_instance_arn) +
      ",\"Name\":" + JsonString(name) +
      ",\"Mode\":\"UNRESTRICTED\",\"Privacy\":\"PRIVATE\",\"Metadata\":" + JsonString(metadata) +
      ",\"ClientRequestToken\":" + JsonString(channel_id) +
      ",\"ChannelId\":" + JsonString(channel_id);
  // The first members join with the channel, atomically: a member's device
  // that finds the channel made (Conflict) must already be in it, or its
  // first push would be refused as if it had been removed.
  const size_t with_channel = std::min(members.size(), kMaxCreateMembers);
  if (with_channel > 0) {
    body += ",\"MemberArns\":[";
    for (size_t i = 0; i < with_channel; ++i) body += (i ? "," : "") + JsonString(members[i]);
    body += "]";
  }
  if (keep_days != 0) body += ",\"ExpirationSettings\":" + ExpirationSettings(keep_days);
  body += "}";
  auto created = Call("POST", "/channels", body);
  if (created.ok()) {
    TIDINGS_ASSIGN_OR_RETURN(std::string arn, ParseStringField(*created, "ChannelArn"));
    *joined = with_channel;
    *made = true;
    return arn;
  }
  if (client_->last_error_type() == "ConflictException") {
    return config_.app_instance_arn + "/channel/" + channel_id;  // made by another device first
  }
  return created.status();
}

Result<std::string> ChimeBackend::EnsureConversation(const engine::Conversation& c) {
  LearnMembers(c);
  if (auto it = refused_.find(c.id); it != refused_.end()) return it->second;
  if (auto it = channels_.find(c.id); it != channels_.end()) {
    TIDINGS_RETURN_IF_ERROR(VerifyChannel(c.id, it->second));
    return it->second;
  }
  // The first `joined` of the other members are in the channel already
  // because they joined with it (the creator, or a listed member, already is).
  const std::vector<std::string> members = OtherMemberArns(c);
  size_t joined = 0;
  bool made = false;
  std::string arn;
  if (StartsWith(c.id, "chime:")) {
    arn = config_.app_instance_arn + "/channel/" + c.id.substr(6);
  } else {
    // Another device (ours or a member's) may have made it already.
    TIDINGS_RETURN_IF_ERROR(ListConversations().status());
    if (auto it = channels_.find(c.id); it != channels_.end()) {
      arn = it->second;
    } else {
      std::string channel_id = DefaultChannelArn(c.id).substr(config_.app_instance_arn.size() + 9);
      TIDINGS_ASSIGN_OR_RETURN(
          arn, CreateChannel(channel_id, ChannelName(c), WriteChannelMetadata(c.id), members,
                             &joined, &made, config_.keep_days ? config_.keep_days(c.id) : 0));
      if (made && config_.keep_days) expiration_days_[c.id] = config_.keep_days(c.id);
    }
  }
  // Made here and now: ours. Otherwise make sure nobody outside the
  // conversation made or joined it, before anything is posted into it.
  if (made) {
    verified_[c.id + "\n" + arn] = MonotonicMs();
  } else if (Status verified = VerifyChannel(c.id, arn); !verified.ok()) {
    // Not a member (yet: the creator adds the members past the first ten
    // after creating it) cannot be checked now; Push and Pull check it
    // before using it.
    const bool unreadable =
        verified.code() == Code::kPermissionDenied || verified.code() == Code::kNotFound;
    if (refused_.count(c.id) || !unreadable) return verified;
  }
  // The rest; idempotent (an existing member is a Conflict, ignored).
  for (size_t i = joined; i < members.size(); ++i) {
    TIDINGS_RETURN_IF_ERROR(AddMember(arn, members[i]));
  }
  TIDINGS_RETURN_IF_ERROR(SyncExpiration(c.id, arn));
  channels_[c.id] = arn;
  return arn;
}

Status ChimeBackend::SyncExpiration(const std::string& conversation_id,
                                    const std::string& channel_arn) {
  if (!config_.keep_days) return Status::Ok();
  const uint32_t days = config_.keep_days(conversation_id);
  auto known = expiration_days_.find(conversation_id);
  // Unknown and no policy: nothing to set (and no call per conversation).
  if (known == expiration_days_.end() ? days == 0 : known->second == days) return Status::Ok();
  const std::string body =
      days == 0 ? "{}" : "{\"ExpirationSettings\":" + ExpirationSettings(days) + "}";
  auto put = Call("PUT", "/channels/" + Enc(channel_arn) + "/expiration-settings", body);
  if (!put.ok() && sync::Classify(put.status()) != sync::ErrorClass::kPermanent) {
    return put.status();
  }
  expiration_days_[conversation_id] = days;
  return Status::Ok();
}

std::vector<std::string> ChimeBackend::OtherMemberArns(const engine::Conversation& c) const {
  std::set<std::string> others;
  for (const auto& m : c.members) others.insert(MemberArn(m));
  others.erase(config_.user_arn);
  return {others.begin(), others.end()};
}

Status ChimeBackend::AddMembers(const engine::Conversation& c, const std::string& channel_arn) {
  LearnMembers(c);
  // Idempotent: an existing member is a Conflict, ignored by AddMember.
  for (const auto& member : OtherMemberArns(c)) {
    TIDINGS_RETURN_IF_ERROR(AddMember(channel_arn, member));
  }
  return Status::Ok();
}

void ChimeBackend::LearnMembers(const engine::Conversation& c) {
  // An invitation this device has no member list for (found in the
  // listing), and another client's channel ("chime:"), are taken as they are.
  if (c.members.empty() || StartsWith(c.id, "chime:")) return;
  std::set<std::string> allowed = {config_.user_arn};
  for (const auto& m : c.members) allowed.insert(MemberArn(m));
  auto& known = allowed_[c.id];
  if (known != allowed) refused_.erase(c.id);  // a new list: check the channel again
  known = std::move(allowed);
}

Result<ChimeBackend::ChannelPeople> ChimeBackend::DescribePeople(const std::string& channel_arn) {
  const std::string channel = "/channels/" + Enc(channel_arn);
  ChannelPeople people;
  TIDINGS_ASSIGN_OR_RETURN(std::string described, Call("GET", channel));
  TIDINGS_ASSIGN_OR_RETURN(people.creator, ParseChannelCreator(described));
  // HIDDEN members are listed only when asked for by type.
  for (const char* type : {"DEFAULT", "HIDDEN"}) {
    std::string token;
    for (int page = 0; page < 1000; ++page) {
      std::string path = channel + "/memberships?max-results=50&type=" + type;
      if (!token.empty()) path += "&next-token=" + Enc(token);
      TIDINGS_ASSIGN_OR_RETURN(std::string body, Call("GET", path));
      TIDINGS_ASSIGN_OR_RETURN(MembersPage members, ParseChannelMemberships(body));
      for (auto& m : members.member_arns) people.members.push_back(std::move(m));
      token = members.next_token;
      if (token.empty()) break;
    }
  }
  return people;
}

Status ChimeBackend::VerifyChannel(const std::string& conversation_id,
                                   const std::string& channel_arn) {
  auto allowed = allowed_.find(conversation_id);
  const std::string key = conversation_id + "\n" + channel_arn;
  if (allowed == allowed_.end()) return Status::Ok();
  if (auto at = verified_.find(key);
      at != verified_.end() && MonotonicMs() - at->second <= kVerifiedMaxAgeMs) {
    return Status::Ok();
  }
  TIDINGS_ASSIGN_OR_RETURN(ChannelPeople people, DescribePeople(channel_arn));
  std::string why;
  if (!allowed->second.count(people.creator)) {
    why = "was created by a user outside the conversation";
  } else {
    for (const auto& m : people.members) {
      if (!allowed->second.count(m)) why = "has members outside the conversation";
    }
  }
  if (why.empty()) {
    verified_[key] = MonotonicMs();
    return Status::Ok();
  }
  Status refused = PermissionDenied(
      "channel " + ChannelIdOf(channel_arn).value_or(channel_arn) + " " + why +
      "; refusing it (someone may have made it to read this conversation: nothing was posted "
      "into it; use an end-to-end encrypted conversation, whose channel name cannot be guessed)");
  refused_[conversation_id] = refused;
  return refused;
}

std::string ChimeBackend::UserOf(const std::string& arn) const {
  const std::string prefix = config_.app_instance_arn + "/user/";
  return StartsWith(arn, prefix) ? arn.substr(prefix.size()) : arn;
}

}  // namespace tidings::chime
