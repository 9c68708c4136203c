// Search's text processing (search/): any bytes as a message and as a
// query. Tokens are well formed and point into the text, query errors are
// INVALID_ARGUMENT, matches index real tokens, and a snippet is valid UTF-8
// with its marks in order inside it. The first byte picks the analyzer
// (plain or stemming); a NUL byte separates the query from the message.
#include <algorithm>
#include <string>

#include "fuzz/fuzz_check.h"
#include "search/analyzer.h"
#include "search/query.h"
#include "search/snippet.h"
#include "tests/search/text_test_util.h"

namespace {

using namespace tidings::search;

void CheckTokens(std::string_view text, const std::vector<Token>& tokens) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    const Token& t = tokens[i];
    FUZZ_CHECK(!t.term.empty() && t.term.size() <= kMaxTermBytes);
    FUZZ_CHECK(testing::IsValidUtf8(t.term) && testing::IsValidUtf8(t.unstemmed));
    FUZZ_CHECK(t.position == i);
    FUZZ_CHECK(t.begin < t.end && t.end <= text.size());
    FUZZ_CHECK(testing::IsValidUtf8(text.substr(t.begin, t.end - t.begin)));
  }
}

void CheckQuery(const Query& query) {
  FUZZ_CHECK(!query.clauses.empty() && query.clauses.size() <= kMaxQueryClauses);
  for (const QueryClause& clause : query.clauses) {
    FUZZ_CHECK(!clause.terms.empty());
    for (size_t k = 0; k < clause.terms.size(); ++k) {
      const QueryTerm& term = clause.terms[k];
      FUZZ_CHECK(!term.term.empty() && testing::IsValidUtf8(term.term));
      FUZZ_CHECK(!term.prefix ||
                 (k + 1 == clause.terms.size() && Analyzer::CodePoints(term.term) >= kPrefixChars));
    }
  }
}

void CheckSnippet(const Snippet& snippet) {
  FUZZ_CHECK(testing::IsValidUtf8(snippet.text));
  uint32_t after = 0;
  for (const auto& [begin, end] : snippet.marks) {
    FUZZ_CHECK(begin >= after && begin < end && end <= snippet.text.size());
    after = end;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Analyzer plain;
  static const Analyzer stemming(AnalyzerOptions{.stem_english = true});
  const auto in = tidings::fuzz::SplitInput(data, size, 2);
  const Analyzer& analyzer = in.choice == 0 ? plain : stemming;
  const size_t nul = in.rest.find('\0');
  const std::string_view query_text = in.rest.substr(0, nul);
  const std::string_view text = nul == std::string_view::npos ? in.rest : in.rest.substr(nul + 1);

  std::vector<Token> tokens;
  analyzer.Analyze(text, &tokens);
  CheckTokens(text, tokens);
  auto query = ParseQuery(query_text, analyzer);
  if (!query.ok()) {
    FUZZ_CHECK(query.status().code() == tidings::Code::kInvalidArgument);
    return 0;
  }
  CheckQuery(*query);
  const std::vector<size_t> matched = MatchTokens(*query, tokens);
  FUZZ_CHECK(std::is_sorted(matched.begin(), matched.end()));
  FUZZ_CHECK(matched.empty() || matched.back() < tokens.size());
  CheckSnippet(MakeSnippet(text, tokens, matched, 1 + size % 20));
  return 0;
}
