// Query: the search box's text, parsed. Words are ANDed; "quoted words" are
// a phrase (the words adjacent, in order); a word ending in * is a prefix
// (search-as-you-type: "ibu*"). A bare word the analyzer splits into several
// terms (CJK bigrams, "e-mail", "400mg") is a phrase of them, as in FTS5.
// Curly quotes work as '"' does. A prefix on CJK is searched as the bigram
// itself (a bigram already matches inside longer runs). docs/search.md has
// the rules.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "search/analyzer.h"

namespace tidings::search {

struct QueryTerm {
  std::string term;     // as the analyzer makes it (folded, stemmed if on)
  bool prefix = false;  // matches every term that starts with `term`
                        // (folded, never stemmed; >= kPrefixChars code points)
};

// One clause: a single term, or a phrase (terms at consecutive positions).
// Only a phrase's last term may be a prefix.
struct QueryClause {
  std::vector<QueryTerm> terms;
  bool phrase() const { return terms.size() > 1; }
};

struct Query {
  std::vector<QueryClause> clauses;  // every clause must match
};

// InvalidArgument, saying what to type instead, for a query with no words
// ("type a word to search for"), a prefix shorter than kPrefixChars
// characters, more than kMaxQueryClauses clauses or more than kMaxQueryTerms
// terms in all. The message never repeats the query. An unclosed quote
// closes at the end.
inline constexpr size_t kMaxQueryClauses = 16;
inline constexpr size_t kMaxQueryTerms = 4 * kMaxQueryClauses;
Result<Query> ParseQuery(std::string_view text, const Analyzer& analyzer);

// Where a query matches in a message's tokens (from Analyzer::Analyze of its
// text): the indexes into `tokens` of every token a clause matched. Empty
// if some clause does not match (the message is not a hit).
std::vector<size_t> MatchTokens(const Query& query, const std::vector<Token>& tokens);

}  // namespace tidings::search
