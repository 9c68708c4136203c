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

// DynamoDB items as Tidings stores them (see docs/dynamodb.md). Any writer
// the IAM policy lets in can put any item, so an attribute of the wrong type
// or value marks the item `malformed` instead of failing the whole response.
struct DynamoItem {
  std::string pk;
  std::string sk_number;     // sk as the server sent it (a cursor resumes after it)
  uint64_t sk = 0;           // sk as a whole number; 0 and `malformed` if it is not one
  std::string ops_b64;       // attribute "o" (B), plaintext log items
  std::string frames_b64;    // attribute "f" (B), sealed log items
  std::string record_b64;    // attribute "r" (B), device records
  uint64_t format = 0;       // attribute "v" (N); absent: 0 (docs/dynamodb.md)
  uint64_t time_ms = 0;      // attribute "t" (N)
  std::string conversation;  // attribute "c" (S), membership items only
  std::string log_id;        // attribute "l" (S), invitation items only
  std::string malformed;     // why the item is not as Tidings writes it; empty if fine
};
struct DynamoQueryResult {
  std::vector<DynamoItem> items;
  bool has_last_evaluated_key = false;
};
// InvalidArgument ("malformed DynamoDB response ...") on bad JSON or an item
// without its key, never a crash; a bad attribute marks only its item.
Result<DynamoQueryResult> ParseDynamoQuery(std::string_view body);
// For DescribeTable: the TableStatus string.
Result<std::string> ParseTableStatus(std::string_view body);

}  // namespace tidings::aws
