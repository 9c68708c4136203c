// Snippets: the window, the cuts, the marks and valid UTF-8.
#include "search/snippet.h"

#include <gtest/gtest.h>

#include "search/query.h"
#include "tests/search/text_test_util.h"

namespace tidings::search {
namespace {

using testing::IsValidUtf8;
using testing::Tokens;
using Strings = std::vector<std::string>;

Snippet SnippetFor(std::string_view query_text, std::string_view text, size_t max_words = 16) {
  const Analyzer a;
  auto query = ParseQuery(query_text, a);
  EXPECT_TRUE(query.ok());
  const auto tokens = Tokens(a, text);
  return MakeSnippet(text, tokens, MatchTokens(*query, tokens), max_words);
}

Strings Marked(const Snippet& s) {
  Strings marked;
  for (const auto& [begin, end] : s.marks) {
    EXPECT_LT(begin, end);
    EXPECT_LE(end, s.text.size());
    marked.push_back(s.text.substr(begin, end - begin));
  }
  return marked;
}

// Filler words "wa", "wb", ..., one term each (w<digits> would be two).
std::string Word(int i) { return std::string("w") + char('a' + i / 26) + char('a' + i % 26); }

std::string Words(int from, int to) {
  std::string text;
  for (int i = from; i < to; ++i) text += (text.empty() ? "" : " ") + Word(i);
  return text;
}

TEST(SnippetTest, AShortTextIsShownWholeWithItsMatchesMarked) {
  const std::string text = "Take 400 mg of Ibuprofen, twice!";
  const Snippet s = SnippetFor("ibuprofen 400mg", text);
  EXPECT_EQ(s.text, text);
  EXPECT_EQ(Marked(s), (Strings{"400", "mg", "Ibuprofen"}));
}

TEST(SnippetTest, TouchingAndOverlappingMatchesAreOneMark) {
  EXPECT_EQ(Marked(SnippetFor("400mg", "take 400mg now")), Strings{"400mg"});
  EXPECT_EQ(Marked(SnippetFor("東京都", "私は東京都に住む")), Strings{"東京都"});
}

TEST(SnippetTest, ALongTextIsCutAroundTheMatches) {
  const std::string text = Words(0, 100) + " ibuprofen " + Words(100, 200);
  const Snippet s = SnippetFor("ibuprofen", text, 10);
  EXPECT_EQ(Marked(s), Strings{"ibuprofen"});
  EXPECT_TRUE(s.text.starts_with("\u2026" + Word(96)));
  EXPECT_TRUE(s.text.ends_with("\u2026"));
  const auto words = Tokens(Analyzer(), s.text);
  EXPECT_EQ(words.size(), 10u);
  // The match sits in the middle.
  EXPECT_EQ(s.text, "\u2026" + Words(96, 100) + " ibuprofen " + Words(100, 105) + "\u2026");
}

TEST(SnippetTest, TheWindowWithTheMostMatchesWins) {
  const std::string text =
      "pain " + Words(0, 40) + " pain relief pain " + Words(40, 80) + " relief";
  const Snippet s = SnippetFor("pain relief", text, 8);
  EXPECT_EQ(Marked(s), (Strings{"pain", "relief", "pain"}));
}

TEST(SnippetTest, NoCutMarkAtAnEndThatIsNotCut) {
  const std::string text = "ibuprofen " + Words(0, 50);
  const Snippet s = SnippetFor("ibuprofen", text, 5);
  EXPECT_EQ(s.text, "ibuprofen " + Words(0, 4) + "\u2026");
  EXPECT_TRUE(s.text.ends_with("\u2026"));
  const Snippet end = SnippetFor("ibuprofen", Words(0, 50) + " ibuprofen.", 5);
  EXPECT_TRUE(end.text.starts_with("\u2026"));
  EXPECT_TRUE(end.text.ends_with("ibuprofen.")) << end.text;
}

TEST(SnippetTest, InvalidUtf8IsReplacedAndMarksStillPointAtTheMatch) {
  const std::string text = "bad \xFF\xC3 bytes \xE2\x82 then ibuprofen \xF0\x9F";
  const Snippet s = SnippetFor("ibuprofen bytes", text);
  EXPECT_TRUE(IsValidUtf8(s.text));
  EXPECT_EQ(Marked(s), (Strings{"bytes", "ibuprofen"}));
  const std::string cut = Words(0, 30) + " \xFF ibuprofen \xFF " + Words(30, 60);
  const Snippet c = SnippetFor("ibuprofen", cut, 6);
  EXPECT_TRUE(IsValidUtf8(c.text));
  EXPECT_EQ(Marked(c), Strings{"ibuprofen"});
}

TEST(SnippetTest, NoMatchesOrBadIndexesStillGiveAValidSnippet) {
  const Analyzer a;
  const std::string text = Words(0, 40);
  const auto tokens = Tokens(a, text);
  const Snippet none = MakeSnippet(text, tokens, {}, 5);
  EXPECT_TRUE(none.marks.empty());
  EXPECT_EQ(none.text, Words(0, 5) + "\u2026");
  const Snippet bad = MakeSnippet(text, tokens, {1000, 3}, 5);
  EXPECT_EQ(Marked(bad), Strings{Word(3)});
  EXPECT_EQ(MakeSnippet("", {}, {}).text, "");
}

}  // namespace
}  // namespace tidings::search
