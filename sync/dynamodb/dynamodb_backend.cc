#include "sync/dynamodb/dynamodb_backend.h"

#include <chrono>
#include <set>
#include <thread>

#include "common/json_string.h"
#include "crypto/hash.h"
#include "sync/aws/json.h"
#include "sync/wire/bytes.h"
#include "sync/wire/operation_codec.h"

namespace tidings::dynamodb {
namespace {

constexpr size_t kMaxItemPayload = 300 * 1024;  // well under DynamoDB's 400 KB

std::string N(uint64_t v) { return "{\"N\":\"" + std::to_string(v) + "\"}"; }
std::string S(std::string_view v) { return "{\"S\":" + JsonString(v) + "}"; }

// The item format, attribute "v": 1 = wire-codec operations, each
// length-prefixed, in "o". Items without "v" are format 0, written before the
// wire codec: the same framing around the store's own operation encoding,
// read as wire::DecodeLegacyOperation (docs/dynamodb.md).
constexpr uint64_t kItemFormat = 1;

std::string PackOps(std::span<const engine::Operation> ops) {
  std::string out;
  wire::ByteWriter w(&out);
  for (const engine::Operation& op : ops) w.Bytes(wire::EncodeOperation(op));
  return out;
}

Result<std::vector<engine::Operation>> UnpackOps(const aws::DynamoItem& item) {
  const std::string where = "DynamoDB item at sk " + std::to_string(item.sk);
  if (item.format > kItemFormat) {
    return FailedPrecondition(where + " has format " + std::to_string(item.format) +
                              ", newer than this build reads (" + std::to_string(kItemFormat) +
                              "): upgrade Tidings");
  }
  std::string raw;
  if (!crypto::Base64Decode(item.ops_b64, &raw)) return DataLoss(where + ": bad base64");
  const auto decode = item.format == 0 ? wire::DecodeLegacyOperation : wire::DecodeOperation;
  std::vector<engine::Operation> ops;
  wire::ByteReader r(raw, where);
  while (!r.done()) {
    std::string bytes;
    TIDINGS_RETURN_IF_ERROR(r.Bytes("operation", &bytes));
    Result<engine::Operation> op = decode(bytes);
    if (!op.ok()) return Status(op.status().code(), where + ": " + op.status().message());
    op->server_time_ms = item.time_ms;
    op->remote_id = std::to_string(item.sk) + "/" + std::to_string(ops.size());
    ops.push_back(std::move(*op));
  }
  return ops;
}

uint64_t Hash53(const std::string& s) {
  auto d = crypto::Sha256(s);
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | d[static_cast<size_t>(i)];
  return v >> 11;  // fits a DynamoDB number exactly
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

Result<aws::DynamoQueryResult> DynamoBackend::Query(const std::string& pk,
                                                    std::optional<uint64_t> after, bool descending,
                                                    size_t limit) {
  std::string body =
      "{\"TableName\":" + JsonString(config_.table) + ",\"KeyConditionExpression\":\"" +
      (after ? "pk = :p AND sk > :s" : "pk = :p") +
      "\",\"ExpressionAttributeValues\":{\":p\":" + S(pk) + (after ? ",\":s\":" + N(*after) : "") +
      "},\"ConsistentRead\":true" + (descending ? ",\"ScanIndexForward\":false" : "") +
      ",\"Limit\":" + std::to_string(limit) + "}";
  TIDINGS_ASSIGN_OR_RETURN(std::string resp, client_->Call("Query", body));
  return aws::ParseDynamoQuery(resp);
}

Result<std::string> DynamoBackend::EnsureConversation(const engine::Conversation& c) {
  std::set<std::string> members(c.members.begin(), c.members.end());
  if (!config_.user_id.empty()) members.insert(config_.user_id);
  for (const auto& m : members) {
    std::string body = "{\"TableName\":" + JsonString(config_.table) +
                       ",\"Item\":{\"pk\":" + S("m#" + m) + ",\"sk\":" + N(Hash53(c.id)) +
                       ",\"c\":" + S(c.id) + "}}";
    TIDINGS_RETURN_IF_ERROR(client_->Call("PutItem", body).status());
  }
  return "c#" + c.id;
}

Status DynamoBackend::AddMembers(const engine::Conversation& c, const std::string& /*remote_id*/) {
  return EnsureConversation(c).status();
}

Result<std::vector<sync::PushAck>> DynamoBackend::Push(const std::string& conv,
                                                       std::span<const engine::Operation> ops) {
  const std::string pk = "c#" + conv;
  std::vector<std::optional<sync::PushAck>> acks(ops.size());
  std::map<std::string, size_t> waiting;  // op id -> index
  for (size_t i = 0; i < ops.size(); ++i) waiting[ops[i].op_id] = i;

  auto absorb = [&](const aws::DynamoQueryResult& page, uint64_t* head) -> Status {
    for (const auto& item : page.items) {
      *head = std::max(*head, item.sk);
      TIDINGS_ASSIGN_OR_RETURN(auto stored, UnpackOps(item));
      for (const auto& op : stored) {
        auto it = waiting.find(op.op_id);
        if (it == waiting.end()) continue;
        sync::PushAck ack;  // already there: a retry after an ambiguous outcome
        ack.remote_id = op.remote_id;
        ack.server_time_ms = item.time_ms;
        acks[it->second] = ack;
        waiting.erase(it);
      }
    }
    return Status::Ok();
  };

  Status failure;
  for (int round = 0; round < 50 && !waiting.empty(); ++round) {
    // Read the tail: find the head, and ops that already made it.
    uint64_t head = 0;
    auto known = known_head_.find(conv);
    if (known == known_head_.end()) {
      auto tail = Query(pk, std::nullopt, /*descending=*/true, 25);
      if (!tail.ok()) {
        failure = tail.status();
        break;
      }
      if (Status s = absorb(*tail, &head); !s.ok()) return s;
    } else {
      head = known->second;
      bool more = true;
      while (more) {
        auto page = Query(pk, head, false, 100);
        if (!page.ok()) {
          failure = page.status();
          break;
        }
        if (Status s = absorb(*page, &head); !s.ok()) return s;
        more = page->has_last_evaluated_key && !page->items.empty();
      }
      if (!failure.ok()) break;
    }
    known_head_[conv] = head;
    if (waiting.empty()) break;

    // Pack the next operations, in order, into one item.
    std::vector<size_t> batch;
    size_t bytes = 0;
    for (size_t i = 0; i < ops.size(); ++i) {
      if (acks[i] || !waiting.count(ops[i].op_id)) continue;
      size_t size = ops[i].body.size() + 256;
      if (!batch.empty() && bytes + size > kMaxItemPayload) break;
      batch.push_back(i);
      bytes += size;
    }
    std::vector<engine::Operation> packed;
    for (size_t i : batch) packed.push_back(ops[i]);
    const uint64_t now = static_cast<uint64_t>(client_->ServerNowMs());
    std::string body = "{\"TableName\":" + JsonString(config_.table) +
                       ",\"Item\":{\"pk\":" + S(pk) + ",\"sk\":" + N(head + 1) +
                       ",\"t\":" + N(now) + ",\"v\":" + N(kItemFormat) + ",\"o\":{\"B\":\"" +
                       crypto::Base64Encode(PackOps(packed)) +
                       "\"}},\"ConditionExpression\":\"attribute_not_exists(sk)\"}";
    auto put = client_->Call("PutItem", body);
    if (put.ok()) {
      known_head_[conv] = head + 1;
      for (size_t k = 0; k < batch.size(); ++k) {
        sync::PushAck ack;
        ack.remote_id = std::to_string(head + 1) + "/" + std::to_string(k);
        ack.server_time_ms = now;
        acks[batch[k]] = ack;
        waiting.erase(ops[batch[k]].op_id);
      }
      continue;
    }
    if (put.status().code() == Code::kAborted) continue;  // lost the race: re-read the tail
    // Ambiguous or failed: forget the head so the next attempt re-reads the
    // tail and finds the item if the server did commit it.
    known_head_.erase(conv);
    failure = put.status();
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

Result<sync::PullPage> DynamoBackend::Pull(const std::string& conv, std::string_view cursor,
                                           size_t limit) {
  uint64_t after = 0;
  if (!cursor.empty()) after = std::strtoull(std::string(cursor).c_str(), nullptr, 10);
  TIDINGS_ASSIGN_OR_RETURN(auto page, Query("c#" + conv, after, false, std::max<size_t>(1, limit)));
  sync::PullPage out;
  uint64_t last = after;
  for (const auto& item : page.items) {
    TIDINGS_ASSIGN_OR_RETURN(auto ops, UnpackOps(item));
    for (auto& op : ops) out.ops.push_back(std::move(op));
    last = std::max(last, item.sk);
  }
  out.next_cursor = std::to_string(last);
  // moto omits LastEvaluatedKey on the last page; DynamoDB may send one with
  // an empty next page. Either way an empty page ends the round.
  out.has_more = page.has_last_evaluated_key && !page.items.empty();
  return out;
}

Result<std::vector<std::string>> DynamoBackend::ListConversations() {
  if (config_.user_id.empty()) return std::vector<std::string>{};
  std::vector<std::string> out;
  std::optional<uint64_t> after;
  for (int page = 0; page < 100; ++page) {
    TIDINGS_ASSIGN_OR_RETURN(auto result, Query("m#" + config_.user_id, after, false, 500));
    for (const auto& item : result.items) {
      if (!item.conversation.empty()) out.push_back(item.conversation);
      after = item.sk;
    }
    if (!result.has_last_evaluated_key || result.items.empty()) break;
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
    if (status == "ACTIVE") return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return DeadlineExceeded("table " + config_.table + " did not become ACTIVE within a minute");
}

}  // namespace tidings::dynamodb
