// JSON reading for the AWS protocols (writing escapes strings with
// common/json_string.h). simdjson is included only by json.cc, and its
// types never leave it (they dangle after the next parse).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tidings::aws {

struct AwsErrorBody {
  std::string type;     // "ConditionalCheckFailedException" (namespace stripped)
  std::string message;  // the service's message
};
// False if `body` is not a JSON object.
bool ParseErrorJson(std::string_view body, AwsErrorBody* out);

// DynamoDB items as Tidings stores them (see docs/dynamodb.md).
struct DynamoItem {
  std::string pk;
  uint64_t sk = 0;
  std::string ops_b64;       // attribute "o" (B)
  uint64_t format = 0;       // attribute "v" (N); absent: 0 (docs/dynamodb.md)
  uint64_t time_ms = 0;      // attribute "t" (N)
  std::string conversation;  // attribute "c" (S), membership items only
};
struct DynamoQueryResult {
  std::vector<DynamoItem> items;
  bool has_last_evaluated_key = false;
};
// DataLoss-free: InvalidArgument ("malformed DynamoDB response ...") on bad
// JSON or missing attributes, never a crash.
Result<DynamoQueryResult> ParseDynamoQuery(std::string_view body);
// For DescribeTable: the TableStatus string.
Result<std::string> ParseTableStatus(std::string_view body);

}  // namespace tidings::aws
