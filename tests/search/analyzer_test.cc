// The analyzer: folding, segmentation, positions, offsets, stemming, limits
// and robustness against any bytes.
#include "search/analyzer.h"

#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "tests/search/text_test_util.h"

namespace tidings::search {
namespace {

using testing::IsValidUtf8;
using testing::Terms;
using testing::Tokens;
using Strings = std::vector<std::string>;

TEST(AnalyzerTest, FoldsCaseDiacriticsAndCompatibilityForms) {
  const Analyzer a;
  EXPECT_EQ(Terms(a, "Müller"), Strings{"muller"});
  EXPECT_EQ(Terms(a, "MÜLLER"), Strings{"muller"});
  EXPECT_EQ(Terms(a, "Mu\u0308ller"), Strings{"muller"});  // decomposed ü
  EXPECT_EQ(Terms(a, "Straße"), Strings{"strasse"});
  EXPECT_EQ(Terms(a, "\uFB01le"), Strings{"file"});  // ﬁ ligature
  EXPECT_EQ(Terms(a, "ＡＢＣ"), Strings{"abc"});     // full width
  EXPECT_EQ(Terms(a, "Ångström Crème"), (Strings{"angstrom", "creme"}));
  EXPECT_EQ(Terms(a, "ΣΟΦΌΣ σοφός"), (Strings{"σοφοσ", "σοφοσ"}));
  EXPECT_EQ(Terms(a, "İstanbul"), Strings{"istanbul"});
}

TEST(AnalyzerTest, KeepsMarksThatArePartOfTheSpelling) {
  const Analyzer a;
  // Devanagari vowel signs are combining marks but not accents.
  EXPECT_EQ(Terms(a, "नमस्ते"), Strings{"नमस्ते"});
  // Kept marks are composed (NFKC): ऩ written as न + nukta is U+0929.
  EXPECT_EQ(Terms(a, "\u0928\u093C"), Strings{"\u0929"});
  EXPECT_EQ(Terms(a, "\u0929"), Strings{"\u0929"});
  EXPECT_EQ(Terms(a, "\u304B\u3099"), Strings{"\u304C"});  // か + voiced mark = が
  // Half-width katakana with its voiced mark composes to full-width ガ.
  EXPECT_EQ(Terms(a, "\uFF76\uFF9E"), Strings{"ガ"});
}

TEST(AnalyzerTest, SplitsWordsOnPunctuationAndSpaces) {
  const Analyzer a;
  EXPECT_EQ(Terms(a, "Hello, world!  How's\tit going?"),
            (Strings{"hello", "world", "how", "s", "it", "going"}));
  // A curly apostrophe splits as the straight one does.
  EXPECT_EQ(Terms(a, "don\u2019t"), (Strings{"don", "t"}));
  EXPECT_EQ(Terms(a, "e-mail snake_case a/b"), (Strings{"e", "mail", "snake", "case", "a", "b"}));
  // A soft hyphen inside a word does not split it; a zero width space does.
  EXPECT_EQ(Terms(a, "hy\u00ADphen zero\u200Bwidth"), (Strings{"hyphen", "zero", "width"}));
  EXPECT_TRUE(Terms(a, "").empty());
  EXPECT_TRUE(Terms(a, " ... !!! ").empty());
}

TEST(AnalyzerTest, EmojiSeparateAndAreNotTerms) {
  const Analyzer a;
  EXPECT_EQ(Terms(a, "I \u2764\uFE0F NY \U0001F44D\U0001F3FD ok\U0001F600ok"),
            (Strings{"i", "ny", "ok", "ok"}));
  EXPECT_TRUE(Terms(a, "\U0001F468\u200D\U0001F469\u200D\U0001F467").empty());
}

TEST(AnalyzerTest, CjkMakesOverlappingBigramsWithConsecutivePositions) {
  const Analyzer a;
  const auto tokens = Tokens(a, "東京都");
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0].term, "東京");
  EXPECT_EQ(tokens[1].term, "京都");
  EXPECT_EQ(tokens[0].position, 0u);
  EXPECT_EQ(tokens[1].position, 1u);
  EXPECT_EQ(Terms(a, "東"), Strings{"東"});
  EXPECT_EQ(Terms(a, "안녕하세요"), (Strings{"안녕", "녕하", "하세", "세요"}));
  EXPECT_EQ(Terms(a, "食べる"), (Strings{"食べ", "べる"}));
  EXPECT_EQ(Terms(a, "สวัสดี"), (Strings{"สวั", "วัส", "สดี"}));  // Thai: marks stay on their letter
}

TEST(AnalyzerTest, MixedScriptsSplitAtTheScriptChange) {
  const Analyzer a;
  EXPECT_EQ(Terms(a, "I love 東京タワー!"), (Strings{"i", "love", "東京", "京タ", "タワ", "ワー"}));
  EXPECT_EQ(Terms(a, "iPhone15を買った"), (Strings{"iphone", "15", "を買", "買っ", "った"}));
  EXPECT_EQ(Terms(a, "Привет мир"), (Strings{"привет", "мир"}));
}

TEST(AnalyzerTest, NumbersStayWholeAndUnitsSplitOff) {
  const Analyzer a;
  EXPECT_EQ(Terms(a, "400mg"), (Strings{"400", "mg"}));
  EXPECT_EQ(Terms(a, "400 mg"), (Strings{"400", "mg"}));
  EXPECT_EQ(Terms(a, "take 1.5 tablets, 1,000 times."),
            (Strings{"take", "1.5", "tablets", "1,000", "times"}));
  EXPECT_EQ(Terms(a, "it was 3. Then 4,"), (Strings{"it", "was", "3", "then", "4"}));
  EXPECT_EQ(Terms(a, "v2.0.1 mp3"), (Strings{"v", "2.0.1", "mp", "3"}));
  EXPECT_EQ(Terms(a, "2024-01-05"), (Strings{"2024", "01", "05"}));
  EXPECT_EQ(Terms(a, "５０ｍｇ"), (Strings{"50", "mg"}));  // full-width digits
}

TEST(AnalyzerTest, PositionsAreConsecutiveFromZero) {
  const Analyzer a;
  const auto tokens = Tokens(a, "Take 400mg, then 東京都!");
  ASSERT_EQ(tokens.size(), 6u);
  for (size_t i = 0; i < tokens.size(); ++i) EXPECT_EQ(tokens[i].position, i);
  std::vector<Token> appended = {Token{"x", 9, 0, 1, ""}};
  a.Analyze("again", &appended);
  ASSERT_EQ(appended.size(), 2u);
  EXPECT_EQ(appended[1].position, 0u);  // every call starts at 0
}

TEST(AnalyzerTest, OffsetsAreBytesOfTheOriginalText) {
  const Analyzer a;
  const std::string text = "Grüße aus 東京, ＡＢＣ und Mu\u0308ller!";
  const auto tokens = Tokens(a, text);
  Strings pieces;
  for (const Token& t : tokens) pieces.push_back(text.substr(t.begin, t.end - t.begin));
  EXPECT_EQ(pieces, (Strings{"Grüße", "aus", "東京", "ＡＢＣ", "und", "Mu\u0308ller"}));
}

TEST(AnalyzerTest, StemsEnglishWordsOnlyWhenAskedAndOnlyLatinLetters) {
  const Analyzer plain;
  const Analyzer stemming(AnalyzerOptions{.stem_english = true});
  EXPECT_EQ(Terms(plain, "running doctors"), (Strings{"running", "doctors"}));
  EXPECT_EQ(Terms(stemming, "running doctors"), (Strings{"run", "doctor"}));
  const auto tokens = Tokens(stemming, "running the 400s 東京");
  ASSERT_EQ(tokens.size(), 5u);
  EXPECT_EQ(tokens[0].unstemmed, "running");
  EXPECT_EQ(tokens[0].folded(), "running");
  EXPECT_TRUE(tokens[1].unstemmed.empty());  // "the" is its own stem
  EXPECT_EQ(tokens[1].folded(), "the");
  EXPECT_EQ(tokens[2].term, "400");
  EXPECT_EQ(tokens[3].term, "s");
  EXPECT_EQ(tokens[4].term, "東京");
  EXPECT_TRUE(stemming.options().stem_english);
}

TEST(AnalyzerTest, StemmingIsSafeFromManyThreads) {
  const Analyzer a(AnalyzerOptions{.stem_english = true});
  const std::string text = "the runners were running and jumping over sleeping dogs";
  const Strings expected = Terms(a, text);
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) mismatches[t] += Terms(a, text) != expected;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches, (std::vector<int>{0, 0, 0, 0}));
}

TEST(AnalyzerTest, StemsTheSameWithAWarmCacheAsWithACold) {
  // More distinct words than the stemmer's cache has entries, so entries
  // are replaced; every word's stem must not depend on what came before.
  std::string text;
  for (int i = 0; i < 5000; ++i) {
    text += i % 3 == 0 ? " running" : i % 3 == 1 ? " cats" : " jumped";
    for (int k = i; k > 0; k /= 26) text += static_cast<char>('a' + k % 26);
  }
  const Analyzer warm(AnalyzerOptions{.stem_english = true});
  const auto first = Terms(warm, text);
  EXPECT_EQ(Terms(warm, text), first);
  const Analyzer cold(AnalyzerOptions{.stem_english = true});
  Strings one_by_one;
  for (const Token& t : Tokens(Analyzer(), text)) {
    const auto stemmed = Terms(Analyzer(AnalyzerOptions{.stem_english = true}), t.term);
    one_by_one.insert(one_by_one.end(), stemmed.begin(), stemmed.end());
  }
  EXPECT_EQ(first, one_by_one);
  EXPECT_EQ(Terms(cold, "running cats jumped"), (Strings{"run", "cat", "jump"}));
}

TEST(AnalyzerTest, LongWordsAreCutOnACodePointBoundary) {
  const Analyzer a;
  EXPECT_EQ(Terms(a, std::string(200, 'a')), Strings{std::string(kMaxTermBytes, 'a')});
  std::string cyrillic;
  for (int i = 0; i < 100; ++i) cyrillic += "ж";
  std::string devanagari;
  for (int i = 0; i < 100; ++i) devanagari += "क";  // 3 bytes each
  for (const std::string& word : {cyrillic, devanagari}) {
    const auto terms = Terms(a, word + " next");
    ASSERT_EQ(terms.size(), 2u);
    EXPECT_LE(terms[0].size(), kMaxTermBytes);
    EXPECT_GT(terms[0].size(), kMaxTermBytes - 4);
    EXPECT_TRUE(IsValidUtf8(terms[0]));
    EXPECT_EQ(terms[1], "next");
  }
  const auto tokens = Tokens(a, std::string(200, 'b'));
  ASSERT_EQ(tokens.size(), 1u);
  EXPECT_EQ(tokens[0].end, 200u);  // the token covers the whole word
}

TEST(AnalyzerTest, InvalidUtf8SeparatesWords) {
  const Analyzer a;
  EXPECT_EQ(Terms(a,
                  "abc\xFF"
                  "def"),
            (Strings{"abc", "def"}));
  EXPECT_EQ(Terms(a,
                  "abc\xC0\xAF"
                  "def"),
            (Strings{"abc", "def"}));  // overlong '/'
  EXPECT_EQ(Terms(a,
                  "abc\xED\xA0\x80"
                  "def"),
            (Strings{"abc", "def"}));  // surrogate
  EXPECT_EQ(Terms(a,
                  "abc\xF4\x90\x80\x80"
                  "def"),
            (Strings{"abc", "def"}));                  // > U+10FFFF
  EXPECT_EQ(Terms(a, "abc\xE2\x82"), Strings{"abc"});  // truncated at the end
  EXPECT_EQ(Terms(a, "\x80\x80x\xC3"), Strings{"x"});
  const auto tokens = Tokens(a, "\xFF\xFEhi");
  ASSERT_EQ(tokens.size(), 1u);
  EXPECT_EQ(tokens[0].begin, 2u);
}

// Every token of any input is well formed.
void ExpectWellFormed(std::string_view text, const std::vector<Token>& tokens) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    const Token& t = tokens[i];
    ASSERT_FALSE(t.term.empty());
    ASSERT_LE(t.term.size(), kMaxTermBytes);
    ASSERT_TRUE(IsValidUtf8(t.term));
    ASSERT_EQ(t.position, i);
    ASSERT_LT(t.begin, t.end);
    ASSERT_LE(t.end, text.size());
    ASSERT_TRUE(IsValidUtf8(text.substr(t.begin, t.end - t.begin)));
  }
}

TEST(AnalyzerTest, RandomBytesTerminateWithWellFormedTokens) {
  const Analyzer a(AnalyzerOptions{.stem_english = true});
  std::mt19937 rng(18);
  std::string text(1 << 20, '\0');
  for (char& c : text) c = static_cast<char>(rng());
  std::vector<Token> tokens;
  a.Analyze(text, &tokens);
  ExpectWellFormed(text, tokens);
  EXPECT_GT(tokens.size(), 1000u);
  // Random code points, valid UTF-8, from every plane.
  std::string valid;
  for (int i = 0; i < 100000; ++i) {
    uint32_t cp = rng() % 0x110000;
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    char buf[4];
    const int n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    buf[0] = static_cast<char>(n == 1 ? cp : (0xF00 >> n) | (cp >> (6 * (n - 1))));
    for (int k = 1; k < n; ++k)
      buf[k] = static_cast<char>(0x80 | ((cp >> (6 * (n - 1 - k))) & 0x3F));
    valid.append(buf, n);
  }
  tokens.clear();
  a.Analyze(valid, &tokens);
  ExpectWellFormed(valid, tokens);
}

TEST(AnalyzerTest, PrefixHelpers) {
  const Analyzer a(AnalyzerOptions{.stem_english = true});
  EXPECT_EQ(a.FoldPrefix("Ibu"), "ibu");
  EXPECT_EQ(a.FoldPrefix("Runnin"), "runnin");  // never stemmed
  EXPECT_EQ(a.FoldPrefix("MÜL"), "mul");
  EXPECT_EQ(a.FoldPrefix("e-ma"), "ma");
  EXPECT_EQ(a.FoldPrefix("!!"), "");
  EXPECT_EQ(Analyzer::IndexedPrefix("ibuprofen"), "ibu");
  EXPECT_EQ(Analyzer::IndexedPrefix("ibu"), "");  // not longer than the prefix
  EXPECT_EQ(Analyzer::IndexedPrefix("straße"), "str");
  EXPECT_EQ(Analyzer::IndexedPrefix("日本語です"), "日本語");
  EXPECT_EQ(Analyzer::CodePoints("日本語"), 3u);
  EXPECT_EQ(Analyzer::CodePoints("muller"), 6u);
}

}  // namespace
}  // namespace tidings::search
