#include "sync/dynamodb/dynamodb_backend.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <optional>
#include <set>
#include <thread>

#include "common/json_string.h"
#include "crypto/hash.h"
#include "crypto/public_key.h"
#include "sync/aws/base64.h"
#include "sync/aws/json.h"

namespace tidings::dynamodb {
namespace {

constexpr size_t kMaxItemPayload = 300 * 1024;  // well under DynamoDB's 400 KB

std::string N(uint64_t v) { return "{\"N\":\"" + std::to_string(v) + "\"}"; }
std::string S(std::string_view v) { return "{\"S\":" + JsonString(v) + "}"; }
std::string B(std::string_view bytes) { return "{\"B\":\"" + aws::Base64Encode(bytes) + "\"}"; }

uint64_t Hash53(const std::string& s) {
  auto d = crypto::Sha256(s);
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | d[static_cast<size_t>(i)];
  return v >> 11;  // fits a DynamoDB number exactly
}

// A cursor is the sk of the last item pulled, as DynamoDB wrote it: a whole
// number for every item Tidings writes, but any number a foreign writer put
// there, so the next page starts after that item too.
bool ValidCursor(std::string_view cursor) {
  if (cursor.size() > 64) return false;
  for (char c : cursor) {
    if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E'))
      return false;
  }
  return true;
}

// A log id as the reconciler makes them: "e" + 32 lowercase hex digits.
bool ValidLogId(std::string_view id) {
  if (id.size() != 33 || id[0] != 'e') return false;
  for (char c : id.substr(1)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

using IdsResult = Result<std::vector<std::pair<std::string, std::string>>>;

template <typename Entry>
std::vector<std::pair<std::string, std::string>> IdsOf(const std::vector<Entry>& entries,
                                                       std::string Entry::*id) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Entry& e : entries) out.emplace_back(e.*id, e.remote_id);
  return out;
}

}  // namespace

std::unique_ptr<DynamoBackend> DynamoBackend::Create(
    DynamoConfig config, std::shared_ptr<aws::CredentialsProvider> credentials,
    std::unique_ptr<http::HttpClient> http) {
  aws::ServiceConfig service;
  service.signing_name = "dynamodb";
  service.region = aws::ResolveRegion(config.region);
  service.endpoint = aws::ResolveEndpoint(config.endpoint, "DYNAMODB", "dynamodb", service.region);
  service.target_prefix = "DynamoDB_20120810";
  if (!credentials) credentials = aws::DefaultCredentialsChain();
  if (!http) http = http::NewCurlHttpClient();
  auto client =
      std::make_unique<aws::AwsJsonClient>(service, std::move(credentials), std::move(http));
  return std::unique_ptr<DynamoBackend>(new DynamoBackend(std::move(config), std::move(client)));
}

std::string DynamoBackend::UserTag(std::string_view user) {
  std::string hash = crypto::Blake2b("tidings-user-v1" + std::string(user), 16);
  return crypto::HexEncode(hash);
}

Result<aws::DynamoQueryResult> DynamoBackend::Query(const std::string& pk, std::string_view after,
                                                    bool descending, size_t limit) {
  const bool from_start = after.empty();
  std::string body =
      "{\"TableName\":" + JsonString(config_.table) + ",\"KeyConditionExpression\":\"" +
      (from_start   ? "pk = :p"
       : descending ? "pk = :p AND sk < :s"
                    : "pk = :p AND sk > :s") +
      "\",\"ExpressionAttributeValues\":{\":p\":" + S(pk) +
      (from_start ? "" : ",\":s\":{\"N\":" + JsonString(after) + "}") +
      "},\"ConsistentRead\":true" + (descending ? ",\"ScanIndexForward\":false" : "") +
      ",\"Limit\":" + std::to_string(limit) + "}";
  TIDINGS_ASSIGN_OR_RETURN(std::string resp, client_->Call("Query", body));
  return aws::ParseDynamoQuery(resp);
}

Status DynamoBackend::PutItem(const std::string& item_json, bool if_new) {
  std::string body = "{\"TableName\":" + JsonString(config_.table) + ",\"Item\":" + item_json +
                     (if_new ? ",\"ConditionExpression\":\"attribute_not_exists(sk)\"" : "") + "}";
  return client_->Call("PutItem", body).status();
}

Result<std::vector<aws::DynamoItem>> DynamoBackend::QueryAll(const std::string& pk) {
  std::vector<aws::DynamoItem> out;
  std::string after;
  for (int page = 0; page < 100; ++page) {
    TIDINGS_ASSIGN_OR_RETURN(auto result, Query(pk, after, false, 500));
    if (result.items.empty()) break;
    after = result.items.back().sk_number;
    for (auto& item : result.items) out.push_back(std::move(item));
    if (!result.has_last_evaluated_key) break;
  }
  return out;
}

Result<std::string> DynamoBackend::EnsureConversation(const engine::Conversation& c) {
  std::set<std::string> members(c.members.begin(), c.members.end());
  if (!config_.user_id.empty()) members.insert(config_.user_id);
  for (const auto& m : members) {
    TIDINGS_RETURN_IF_ERROR(PutItem("{\"pk\":" + S("m#" + UserTag(m)) +
                                    ",\"sk\":" + N(Hash53(c.id)) + ",\"c\":" + S(c.id) + "}"));
  }
  return "c#" + c.id;
}

Status DynamoBackend::AddMembers(const engine::Conversation& c, const std::string& /*remote_id*/) {
  return EnsureConversation(c).status();
}

Result<std::vector<sync::PushAck>> DynamoBackend::Append(const std::string& pk, const LogKind& kind,
                                                         std::span<const PackedEntry> entries,
                                                         uint32_t keep_days) {
  std::vector<std::optional<sync::PushAck>> acks(entries.size());
  std::map<std::string, size_t> waiting;  // entry id -> index
  for (size_t i = 0; i < entries.size(); ++i) waiting[entries[i].id] = i;

  // Takes in stored items: moves the head, acknowledges entries already there.
  auto absorb = [&](const aws::DynamoQueryResult& page, uint64_t* head) {
    for (const auto& item : page.items) {
      if (!item.malformed.empty()) continue;  // not a Tidings item (a foreign sk): no entry of ours
      *head = std::max(*head, item.sk);
      // An item this build cannot read (a newer format) holds none of the
      // entries this build writes: appending after it is safe, and a reader
      // that cannot read it says so.
      auto stored = kind.ids(item);
      if (!stored.ok()) continue;
      for (const auto& [id, remote_id] : *stored) {
        auto it = waiting.find(id);
        if (it == waiting.end()) continue;
        sync::PushAck ack;  // already there: a retry after an ambiguous outcome
        ack.remote_id = remote_id;
        ack.server_time_ms = item.time_ms;
        acks[it->second] = ack;
        waiting.erase(it);
      }
    }
  };

  Status failure;
  for (int round = 0; round < 50 && !waiting.empty(); ++round) {
    // Read the tail: find the head, and entries that already made it.
    uint64_t head = 0;
    auto known = known_head_.find(pk);
    if (known == known_head_.end()) {
      auto tail = Query(pk, "", /*descending=*/true, 25);
      if (!tail.ok()) {
        failure = tail.status();
        break;
      }
      absorb(*tail, &head);
    } else {
      head = known->second;
      bool more = true;
      while (more) {
        auto page = Query(pk, std::to_string(head), false, 100);
        if (!page.ok()) {
          failure = page.status();
          break;
        }
        absorb(*page, &head);
        more = page->has_last_evaluated_key && !page->items.empty();
      }
      if (!failure.ok()) break;
    }
    // Under a TTL an empty log may be one whose items all expired: readers'
    // cursors are past sk 1, so the log goes on above every earlier sk.
    if (head == 0 && keep_days != 0) {
      head = static_cast<uint64_t>(client_->ServerNowMs()) - 1;
    }
    known_head_[pk] = head;
    if (waiting.empty()) break;

    // Pack the next entries, in order, into one item.
    std::vector<size_t> batch;
    std::string packed;
    for (size_t i = 0; i < entries.size(); ++i) {
      if (acks[i] || !waiting.count(entries[i].id)) continue;
      if (!batch.empty() && packed.size() + entries[i].encoded.size() > kMaxItemPayload) break;
      batch.push_back(i);
      packed += entries[i].encoded;
    }
    const uint64_t now = static_cast<uint64_t>(client_->ServerNowMs());
    const std::string ttl =
        keep_days == 0 ? "" : ",\"ttl\":" + N(now / 1000 + uint64_t{keep_days} * 86400);
    Status put = PutItem("{\"pk\":" + S(pk) + ",\"sk\":" + N(head + 1) + ",\"t\":" + N(now) +
                             ",\"v\":" + N(kind.format) + ",\"" + kind.attribute +
                             "\":" + B(packed) + ttl + "}",
                         /*if_new=*/true);
    if (put.ok()) {
      known_head_[pk] = head + 1;
      for (size_t k = 0; k < batch.size(); ++k) {
        sync::PushAck ack;
        ack.remote_id = std::to_string(head + 1) + "/" + std::to_string(k);
        ack.server_time_ms = now;
        acks[batch[k]] = ack;
        waiting.erase(entries[batch[k]].id);
      }
      continue;
    }
    if (put.code() == Code::kAborted) continue;  // lost the race: re-read the tail
    // Ambiguous or failed: forget the head so the next attempt re-reads the
    // tail and finds the item if the server did commit it.
    known_head_.erase(pk);
    failure = put;
    break;
  }
  if (!waiting.empty() && failure.ok())
    failure = Unavailable("too many lost races appending to DynamoDB");
  bool any = false;
  for (const auto& a : acks) any = any || a.has_value();
  if (!any && !failure.ok()) return failure;
  std::vector<sync::PushAck> out;
  for (auto& a : acks) {
    if (a) {
      out.push_back(std::move(*a));
    } else {
      sync::PushAck pending;
      pending.status = failure;
      out.push_back(std::move(pending));
    }
  }
  return out;
}

Result<std::string> DynamoBackend::PullLog(
    const std::string& pk, std::string_view cursor, size_t limit,
    const std::function<Status(const aws::DynamoItem&)>& take, bool* has_more) {
  if (!ValidCursor(cursor)) {
    return InvalidArgument(
        "DynamoDB cursor is not a number; pull from the start (an empty cursor)");
  }
  TIDINGS_ASSIGN_OR_RETURN(auto page, Query(pk, cursor, false, std::max<size_t>(1, limit)));
  for (const auto& item : page.items) TIDINGS_RETURN_IF_ERROR(take(item));
  // moto omits LastEvaluatedKey on the last page; DynamoDB may send one with
  // an empty next page. Either way an empty page ends the round.
  *has_more = page.has_last_evaluated_key && !page.items.empty();
  return page.items.empty() ? std::string(cursor) : page.items.back().sk_number;
}

Result<std::vector<sync::PushAck>> DynamoBackend::Push(const std::string& conv,
                                                       std::span<const engine::Operation> ops) {
  std::vector<PackedEntry> entries;
  for (const auto& op : ops) entries.push_back(PackOperation(op));
  static const LogKind kOps{"o", kOpsFormat, [](const aws::DynamoItem& item) -> IdsResult {
                              TIDINGS_ASSIGN_OR_RETURN(auto u, UnpackOperations(item));
                              return IdsOf(u.entries, &engine::Operation::op_id);
                            }};
  return Append("c#" + conv, kOps, entries, config_.keep_days ? config_.keep_days(conv) : 0);
}

Result<sync::PullPage> DynamoBackend::Pull(const std::string& conv, std::string_view cursor,
                                           size_t limit) {
  sync::PullPage out;
  auto next = PullLog(
      "c#" + conv, cursor, limit,
      [&](const aws::DynamoItem& item) -> Status {
        TIDINGS_ASSIGN_OR_RETURN(auto unpacked, UnpackOperations(item));
        for (auto& op : unpacked.entries) out.ops.push_back(std::move(op));
        for (auto& op : unpacked.too_new) out.too_new.push_back(std::move(op));
        out.skipped += unpacked.skipped;
        return Status::Ok();
      },
      &out.has_more);
  TIDINGS_RETURN_IF_ERROR(next.status());
  out.next_cursor = std::move(*next);
  return out;
}

Result<DynamoBackend::Backward> DynamoBackend::PullBackward(
    const std::string& pk, std::string_view before, size_t limit,
    const std::function<Result<size_t>(const aws::DynamoItem&)>& take) {
  // A position is "<sk>/<items>": the lowest sk read, and how many items the
  // next Query asks for (the page's entries per item, so that a page of
  // packed items is one request for about `limit` entries). A bare sk is
  // read as asking for `limit` items.
  const size_t most = std::max<size_t>(1, limit);
  std::string_view sk = before;
  size_t items = most;
  bool valid = true;
  if (size_t slash = before.find('/'); slash != std::string_view::npos) {
    sk = before.substr(0, slash);
    const std::string_view n = before.substr(slash + 1);
    auto r = std::from_chars(n.data(), n.data() + n.size(), items);
    valid = r.ec == std::errc() && r.ptr == n.data() + n.size() && items > 0;
  }
  if (!valid || !ValidCursor(sk)) {
    return InvalidArgument(
        "DynamoDB history position is not <number>/<items>; start from the newest");
  }
  // Newest first: the items below `sk` (all of them for the newest page),
  // highest sk first. The newest page's forward cursor is its highest sk.
  TIDINGS_ASSIGN_OR_RETURN(auto page, Query(pk, sk, /*descending=*/true, std::min(items, most)));
  // An item packs a push's batch: the page stops at the first item that
  // brings it to `limit` entries (a fresh device's first screen merges about
  // one screen, not `limit` packed items), and the items read past it are
  // read again by the next page.
  Backward out;
  size_t taken = 0, counted = 0;
  while (taken < page.items.size() && counted < most) {
    TIDINGS_ASSIGN_OR_RETURN(size_t entries, take(page.items[taken++]));
    counted += entries;
  }
  if (taken > 0) {
    if (sk.empty()) out.forward_cursor = page.items.front().sk_number;
    // moto omits LastEvaluatedKey on the last page; DynamoDB may send one
    // with an empty page after it, which then ends the history.
    if (taken < page.items.size() || page.has_last_evaluated_key) {
      const size_t per_item = std::max<size_t>(1, counted / taken);
      out.before = page.items[taken - 1].sk_number + "/" +
                   std::to_string(std::clamp<size_t>((most + per_item - 1) / per_item, 1, most));
    }
  }
  return out;
}

Result<sync::HistoryPage> DynamoBackend::PullHistory(const std::string& conv,
                                                     std::string_view before, size_t limit) {
  sync::HistoryPage out;
  auto take = [&](const aws::DynamoItem& item) -> Result<size_t> {
    TIDINGS_ASSIGN_OR_RETURN(auto unpacked, UnpackOperations(item));
    for (auto& op : unpacked.entries) out.ops.push_back(std::move(op));
    for (auto& op : unpacked.too_new) out.too_new.push_back(std::move(op));
    out.skipped += unpacked.skipped;
    return unpacked.entries.size() + unpacked.too_new.size() + unpacked.skipped;
  };
  TIDINGS_ASSIGN_OR_RETURN(auto read, PullBackward("c#" + conv, before, limit, take));
  out.before = std::move(read.before);
  out.forward_cursor = std::move(read.forward_cursor);
  return out;
}

Result<std::vector<std::string>> DynamoBackend::ListConversations() {
  if (config_.user_id.empty()) return std::vector<std::string>{};
  TIDINGS_ASSIGN_OR_RETURN(auto items, QueryAll("m#" + UserTag(config_.user_id)));
  std::vector<std::string> out;
  for (const auto& item : items) {
    if (!item.conversation.empty()) out.push_back(item.conversation);
  }
  return out;
}

Result<std::string> DynamoBackend::EnsureLog(const sync::SealedLog& log) {
  if (!ValidLogId(log.log_id)) return InvalidArgument("a sealed log id is \"e\" + 32 hex digits");
  std::set<std::string> members(log.members.begin(), log.members.end());
  if (!config_.user_id.empty()) members.insert(config_.user_id);
  for (const auto& m : members) {
    TIDINGS_RETURN_IF_ERROR(PutItem("{\"pk\":" + S("i#" + UserTag(m)) + ",\"sk\":" +
                                    N(Hash53(log.log_id)) + ",\"l\":" + S(log.log_id) + "}"));
  }
  return "l#" + log.log_id;
}

Result<std::vector<sync::PushAck>> DynamoBackend::PushFrames(const std::string& log_id,
                                                             std::span<const sync::Frame> frames) {
  if (!ValidLogId(log_id)) return InvalidArgument("a sealed log id is \"e\" + 32 hex digits");
  // Frames this backend cannot store get their own permanent ack; the rest go up.
  std::vector<std::optional<sync::PushAck>> refused(frames.size());
  std::vector<PackedEntry> entries;
  for (size_t i = 0; i < frames.size(); ++i) {
    sync::PushAck ack;
    if (!ValidFrameId(frames[i].id)) {
      ack.status = InvalidArgument("a frame id is 1 to 64 of [A-Za-z0-9._-]");
    } else if (frames[i].bytes.size() > kMaxFrameBytes) {
      ack.status =
          TooLarge("a frame is " + std::to_string(frames[i].bytes.size()) +
                   " bytes; DynamoDB frames are at most " + std::to_string(kMaxFrameBytes));
    } else {
      entries.push_back(PackFrame(frames[i]));
      continue;
    }
    refused[i] = std::move(ack);
  }
  static const LogKind kFrames{"f", kFramesFormat, [](const aws::DynamoItem& item) -> IdsResult {
                                 TIDINGS_ASSIGN_OR_RETURN(auto u, UnpackFrames(item));
                                 return IdsOf(u.entries, &sync::Frame::id);
                               }};
  std::vector<sync::PushAck> appended;
  if (!entries.empty()) {
    TIDINGS_ASSIGN_OR_RETURN(appended, Append("l#" + log_id, kFrames, entries));
  }
  std::vector<sync::PushAck> out;
  size_t next = 0;
  for (auto& r : refused) out.push_back(r ? std::move(*r) : std::move(appended[next++]));
  return out;
}

Result<sync::FramePage> DynamoBackend::PullFrames(const std::string& log_id,
                                                  std::string_view cursor, size_t limit) {
  if (!ValidLogId(log_id)) return InvalidArgument("a sealed log id is \"e\" + 32 hex digits");
  sync::FramePage out;
  auto next = PullLog(
      "l#" + log_id, cursor, limit,
      [&](const aws::DynamoItem& item) -> Status {
        TIDINGS_ASSIGN_OR_RETURN(auto unpacked, UnpackFrames(item));
        for (auto& frame : unpacked.entries) out.frames.push_back(std::move(frame));
        out.skipped += unpacked.skipped;
        return Status::Ok();
      },
      &out.has_more);
  TIDINGS_RETURN_IF_ERROR(next.status());
  out.next_cursor = std::move(*next);
  return out;
}

Result<sync::FramePage> DynamoBackend::PullFrameHistory(const std::string& log_id,
                                                        std::string_view before, size_t limit) {
  if (!ValidLogId(log_id)) return InvalidArgument("a sealed log id is \"e\" + 32 hex digits");
  // Items come newest first, each with its frames in log order: the page is
  // put in log order item by item.
  sync::FramePage out;
  std::vector<std::vector<sync::Frame>> items;
  auto take = [&](const aws::DynamoItem& item) -> Result<size_t> {
    TIDINGS_ASSIGN_OR_RETURN(auto unpacked, UnpackFrames(item));
    out.skipped += unpacked.skipped;
    items.push_back(std::move(unpacked.entries));
    return items.back().size() + unpacked.skipped;
  };
  TIDINGS_ASSIGN_OR_RETURN(auto read, PullBackward("l#" + log_id, before, limit, take));
  for (auto it = items.rbegin(); it != items.rend(); ++it) {
    for (auto& frame : *it) out.frames.push_back(std::move(frame));
  }
  out.has_more = !read.before.empty();
  out.next_cursor = std::move(read.before);
  return out;
}

Result<std::vector<std::string>> DynamoBackend::ListLogs() {
  if (config_.user_id.empty()) return std::vector<std::string>{};
  TIDINGS_ASSIGN_OR_RETURN(auto items, QueryAll("i#" + UserTag(config_.user_id)));
  std::set<std::string> logs;  // anyone may invite anyone: keep only well-formed ids
  for (const auto& item : items) {
    if (ValidLogId(item.log_id)) logs.insert(item.log_id);
  }
  return std::vector<std::string>(logs.begin(), logs.end());
}

Status DynamoBackend::PublishDevice(std::string_view record) {
  if (config_.user_id.empty()) {
    return FailedPrecondition("publishing a device record needs the DynamoDB user id (user_id)");
  }
  // sk = hash of the whole record: publishing the same record again
  // rewrites the same item.
  return PutItem("{\"pk\":" + S("d#" + UserTag(config_.user_id)) +
                 ",\"sk\":" + N(Hash53(std::string(record))) + ",\"r\":" + B(record) + "}");
}

Result<std::vector<std::string>> DynamoBackend::FetchDevices(const std::string& user) {
  TIDINGS_ASSIGN_OR_RETURN(auto items, QueryAll("d#" + UserTag(user)));
  std::vector<std::string> out;
  for (const auto& item : items) {
    std::string record;
    if (item.malformed.empty() && !item.record_b64.empty() &&
        aws::Base64Decode(item.record_b64, &record)) {
      out.push_back(std::move(record));
    }
  }
  return out;
}

Status DynamoBackend::CreateTable() {
  std::string body =
      "{\"TableName\":" + JsonString(config_.table) +
      ",\"AttributeDefinitions\":[{\"AttributeName\":\"pk\",\"AttributeType\":\"S\"},"
      "{\"AttributeName\":\"sk\",\"AttributeType\":\"N\"}],\"KeySchema\":[{\"AttributeName\":"
      "\"pk\",\"KeyType\":\"HASH\"},{\"AttributeName\":\"sk\",\"KeyType\":\"RANGE\"}],"
      "\"BillingMode\":\"PAY_PER_REQUEST\"}";
  auto created = client_->Call("CreateTable", body);
  if (!created.ok() &&
      created.status().message().find("ResourceInUseException") == std::string::npos) {
    return created.status();
  }
  for (int i = 0; i < 120; ++i) {
    TIDINGS_ASSIGN_OR_RETURN(
        std::string resp,
        client_->Call("DescribeTable", "{\"TableName\":" + JsonString(config_.table) + "}"));
    TIDINGS_ASSIGN_OR_RETURN(std::string status, aws::ParseTableStatus(resp));
    if (status == "ACTIVE") return EnableTimeToLive();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return DeadlineExceeded("table " + config_.table + " did not become ACTIVE within a minute");
}

// DynamoDB deletes items whose "ttl" (epoch seconds) has passed only once TTL
// is on for that attribute; turning it on again is an error, so ask first.
Status DynamoBackend::EnableTimeToLive() {
  const std::string table = "{\"TableName\":" + JsonString(config_.table);
  TIDINGS_ASSIGN_OR_RETURN(std::string ttl, client_->Call("DescribeTimeToLive", table + "}"));
  if (ttl.find("\"ENABLED\"") != std::string::npos ||
      ttl.find("\"ENABLING\"") != std::string::npos) {
    return Status::Ok();
  }
  return client_
      ->Call("UpdateTimeToLive",
             table + ",\"TimeToLiveSpecification\":{\"Enabled\":true,\"AttributeName\":\"ttl\"}}")
      .status();
}

}  // namespace tidings::dynamodb
