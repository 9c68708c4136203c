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

TEST(JsonString, ReplacesBytesThatAreNotUtf8SoTheOutputIsAlwaysJson) {
  EXPECT_EQ(JsonText("caf\xe9"), "\"caf\xEF\xBF\xBD\"");            // Latin-1
  EXPECT_EQ(JsonText("\xc0\xaf"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");  // overlong '/'
  EXPECT_EQ(JsonText("\xed\xa0\x80"),                               // a surrogate
            "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
  EXPECT_EQ(JsonText("\xf0\x9f\x91"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");  // cut
}

TEST(JsonString, CopiesBytesThatAreNotUtf8ForRequestsByDefault) {
  // A server refuses the request rather than storing other bytes than sent.
  EXPECT_EQ(JsonString("caf\xe9"), "\"caf\xe9\"");
  std::string out;
  AppendJsonString(&out, "\xff\n", InvalidUtf8::kReplace);
  EXPECT_EQ(out, "\"\xEF\xBF\xBD\\n\"");
}

TEST(IsValidUtf8, AcceptsUtf8AndRefusesEverythingElse) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9 \xf0\x9f\x91\x8b"));
  EXPECT_FALSE(IsValidUtf8("caf\xe9"));
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xf0\x9f\x91"));
}

}  // namespace
}  // namespace tidings
