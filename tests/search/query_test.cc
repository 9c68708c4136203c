// Query parsing and matching a parsed query against a message's tokens.
#include "search/query.h"

#include <gtest/gtest.h>

#include "tests/search/text_test_util.h"

namespace tidings::search {
namespace {

using testing::Tokens;
using Strings = std::vector<std::string>;

Strings ClauseTerms(const QueryClause& clause) {
  Strings terms;
  for (const QueryTerm& t : clause.terms) terms.push_back(t.term + (t.prefix ? "*" : ""));
  return terms;
}

std::vector<Strings> Parse(std::string_view text, const Analyzer& a = Analyzer()) {
  auto query = ParseQuery(text, a);
  EXPECT_TRUE(query.ok()) << query.status().ToString();
  std::vector<Strings> clauses;
  if (query.ok()) {
    for (const QueryClause& c : query->clauses) clauses.push_back(ClauseTerms(c));
  }
  return clauses;
}

// The matched words of `text`, as written there.
Strings Match(std::string_view query_text, std::string_view text, const Analyzer& a = Analyzer()) {
  auto query = ParseQuery(query_text, a);
  EXPECT_TRUE(query.ok()) << query.status().ToString();
  if (!query.ok()) return {};
  const auto tokens = Tokens(a, text);
  Strings words;
  for (const size_t i : MatchTokens(*query, tokens)) {
    words.emplace_back(text.substr(tokens[i].begin, tokens[i].end - tokens[i].begin));
  }
  return words;
}

TEST(ParseQueryTest, WordsPhrasesAndPrefixes) {
  EXPECT_EQ(Parse("Ibuprofen DOCTOR"), (std::vector<Strings>{{"ibuprofen"}, {"doctor"}}));
  EXPECT_EQ(Parse("\"take two tablets\" daily"),
            (std::vector<Strings>{{"take", "two", "tablets"}, {"daily"}}));
  EXPECT_EQ(Parse("ibu*"), (std::vector<Strings>{{"ibu*"}}));
  EXPECT_EQ(Parse("MÜL*"), (std::vector<Strings>{{"mul*"}}));
  EXPECT_EQ(Parse("\"two tab*\""), (std::vector<Strings>{{"two", "tab*"}}));
  EXPECT_EQ(Parse("\"two tab\"*"), (std::vector<Strings>{{"two", "tab*"}}));
}

TEST(ParseQueryTest, AWordTheAnalyzerSplitsIsAPhrase) {
  EXPECT_EQ(Parse("400mg e-mail"), (std::vector<Strings>{{"400", "mg"}, {"e", "mail"}}));
  EXPECT_EQ(Parse("東京都"), (std::vector<Strings>{{"東京", "京都"}}));
  // A CJK bigram already matches inside longer runs: no prefix.
  EXPECT_EQ(Parse("東京*"), (std::vector<Strings>{{"東京"}}));
}

TEST(ParseQueryTest, QuotesAndSpacesOfEveryKind) {
  EXPECT_EQ(Parse("\u201Ctwo tablets\u201D"), (std::vector<Strings>{{"two", "tablets"}}));
  EXPECT_EQ(Parse("\"unclosed quote"), (std::vector<Strings>{{"unclosed", "quote"}}));
  EXPECT_EQ(Parse("one\u3000two\ttwo"), (std::vector<Strings>{{"one"}, {"two"}, {"two"}}));
  EXPECT_EQ(Parse("!!! ok \"\""), (std::vector<Strings>{{"ok"}}));
}

TEST(ParseQueryTest, StemsWordsButNotPrefixes) {
  const Analyzer a(AnalyzerOptions{.stem_english = true});
  EXPECT_EQ(Parse("running", a), (std::vector<Strings>{{"run"}}));
  EXPECT_EQ(Parse("running*", a), (std::vector<Strings>{{"running*"}}));
}

void ExpectInvalid(std::string_view text, std::string_view says) {
  const Analyzer a;
  auto query = ParseQuery(text, a);
  ASSERT_FALSE(query.ok());
  EXPECT_EQ(query.status().code(), Code::kInvalidArgument);
  EXPECT_NE(query.status().message().find(says), std::string::npos) << query.status().message();
  // The message never repeats the query's words.
  EXPECT_EQ(query.status().message().find("zebracorn"), std::string::npos);
}

TEST(ParseQueryTest, ErrorsSayWhatToTypeWithoutTheQuery) {
  ExpectInvalid("", "type a word");
  ExpectInvalid("   \t ", "type a word");
  ExpectInvalid("?! \U0001F600 \"\"", "type a word");
  ExpectInvalid("zebracorn ib*", "at least 3 letters");
  ExpectInvalid("zebracorn 12*", "at least 3 letters");
  std::string many = "zebracorn";
  for (int i = 0; i < 15; ++i) many += " w" + std::to_string(i);
  const Analyzer a;
  EXPECT_TRUE(ParseQuery(many, a).ok());  // 16 clauses
  ExpectInvalid(many + " one", "at most 16");
  std::string long_phrase = "\"zebracorn";
  for (int i = 0; i < 64; ++i) long_phrase += " w";
  ExpectInvalid(long_phrase + "\"", "at most 64 words");
}

TEST(MatchTokensTest, EveryClauseMustMatch) {
  const std::string text = "The doctor said: take 400 mg of Ibuprofen twice.";
  EXPECT_EQ(Match("ibuprofen 400mg", text), (Strings{"400", "mg", "Ibuprofen"}));
  EXPECT_EQ(Match("doctor", text), Strings{"doctor"});
  EXPECT_TRUE(Match("doctor nurse", text).empty());
  EXPECT_EQ(Match("muller", "Frau Müller"), Strings{"Müller"});
  EXPECT_EQ(Match("MÜLLER", "herr muller"), Strings{"muller"});
}

TEST(MatchTokensTest, PhrasesNeedAdjacentWordsInOrder) {
  const std::string text = "take two tablets, not two small tablets";
  EXPECT_EQ(Match("\"two tablets\"", text), (Strings{"two", "tablets"}));
  EXPECT_TRUE(Match("\"tablets two\"", "two tablets").empty());
  EXPECT_TRUE(Match("\"take tablets\"", text).empty());
  EXPECT_EQ(Match("400mg", "400 mg"), (Strings{"400", "mg"}));
  EXPECT_EQ(Match("\"400 mg\"", "400mg"), (Strings{"400", "mg"}));
  EXPECT_EQ(Match("東京都", "私は東京都に住む"), (Strings{"東京", "京都"}));
  EXPECT_TRUE(Match("東京都", "東京の京都").empty());
}

TEST(MatchTokensTest, PrefixesMatchTheStartOfWords) {
  EXPECT_EQ(Match("ibu*", "IBUPROFEN or ibu, not fibula"), (Strings{"IBUPROFEN", "ibu"}));
  EXPECT_EQ(Match("\"take ibu*\"", "take ibuprofen, ibuprofen"), (Strings{"take", "ibuprofen"}));
  // With stemming, a prefix is compared with the word as written ("running"
  // is stored as "run").
  const Analyzer a(AnalyzerOptions{.stem_english = true});
  EXPECT_EQ(Match("runn*", "I was running late", a), Strings{"running"});
  EXPECT_EQ(Match("runs", "I was running late", a), Strings{"running"});
}

TEST(MatchTokensTest, EmptyClauseOrQueryMatchesNothingHarmfully) {
  const Analyzer a;
  const auto tokens = Tokens(a, "some words");
  Query query;
  query.clauses.push_back(QueryClause{});
  EXPECT_TRUE(MatchTokens(query, tokens).empty());
  EXPECT_TRUE(MatchTokens(*ParseQuery("words", a), {}).empty());
}

}  // namespace
}  // namespace tidings::search
