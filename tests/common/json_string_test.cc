// The one JSON string escaper (common/json_string.h) that the AWS requests,
// the emulator, the CLI and the daemon's logs all use.
#include "common/json_string.h"

#include <gtest/gtest.h>

#include <string>

namespace tidings {
namespace {

TEST(JsonString, EscapesQuotesBackslashAndControls) {
  EXPECT_EQ(JsonString(""), "\"\"");
  EXPECT_EQ(JsonString("plain"), "\"plain\"");
  EXPECT_EQ(JsonString("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(JsonString("l1\nl2\r\tx"), "\"l1\\nl2\\r\\tx\"");
  EXPECT_EQ(JsonString(std::string("\0\x01\x1f", 3)), "\"\\u0000\\u0001\\u001f\"");
  EXPECT_EQ(JsonString("\x7f"), "\"\x7f\"");  // DEL needs no escape in JSON
}

TEST(JsonString, PassesUtf8Through) {
  EXPECT_EQ(JsonString("caf\xc3\xa9 \xf0\x9f\x91\x8b"), "\"caf\xc3\xa9 \xf0\x9f\x91\x8b\"");
}

TEST(JsonString, AppendsToWhatIsThere) {
  std::string out = "{\"k\":";
  AppendJsonString(&out, "v/\"");
  EXPECT_EQ(out, "{\"k\":\"v/\\\"\"");
}

}  // namespace
}  // namespace tidings
