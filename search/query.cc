#include "search/query.h"

#include <utf8proc.h>

#include <algorithm>

#include "search/fold.h"
#include "search/utf8.h"

namespace tidings::search {
namespace {

bool IsSpace(int32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= '\t' && cp <= '\r');
  const auto category = utf8proc_get_property(cp)->category;
  return category == UTF8PROC_CATEGORY_ZS || category == UTF8PROC_CATEGORY_ZL ||
         category == UTF8PROC_CATEGORY_ZP;
}

// '"' and the curly quotes a phone keyboard types instead.
bool IsQuote(int32_t cp) { return cp == '"' || cp == 0x201C || cp == 0x201D || cp == 0x201E; }

bool IsBigramTerm(std::string_view term) {
  const internal::Decoded d = internal::DecodeAt(term, 0);
  return d.cp >= 0 && internal::Classify(d.cp) == internal::CharClass::kBigram;
}

// One piece of the query text: a bare word or the inside of quotes.
struct Chunk {
  std::string_view text;
  bool prefix = false;  // ended in '*'
};

// Cuts `text` into chunks: quoted pieces (an unclosed quote closes at the
// end) and runs of anything else between spaces.
std::vector<Chunk> SplitChunks(std::string_view text) {
  std::vector<Chunk> chunks;
  size_t i = 0;
  while (i < text.size()) {
    const internal::Decoded d = internal::DecodeAt(text, i);
    if (d.cp >= 0 && IsSpace(d.cp)) {
      i += d.len;
      continue;
    }
    const bool quoted = d.cp >= 0 && IsQuote(d.cp);
    const size_t begin = quoted ? i + d.len : i;
    size_t end = begin;
    while (end < text.size()) {
      const internal::Decoded e = internal::DecodeAt(text, end);
      if (e.cp >= 0 && (IsQuote(e.cp) || (!quoted && IsSpace(e.cp)))) break;
      end += e.len;
    }
    Chunk chunk{text.substr(begin, end - begin)};
    i = end;
    if (quoted && i < text.size()) i += internal::DecodeAt(text, i).len;        // the closing quote
    if (quoted && i < text.size() && text[i] == '*') ++i, chunk.prefix = true;  // "two wo"*
    const size_t last = chunk.text.find_last_not_of(" \t\r\n");
    if (last != std::string_view::npos && chunk.text[last] == '*') chunk.prefix = true;
    chunks.push_back(chunk);
  }
  return chunks;
}

Status PrefixTooShort() {
  return InvalidArgument("type at least " + std::to_string(kPrefixChars) +
                         " letters before * to search by the start of a word");
}

// The clause of one chunk; no terms if it has no letters or digits.
Result<QueryClause> MakeClause(const Chunk& chunk, const Analyzer& analyzer) {
  std::vector<Token> tokens;
  analyzer.Analyze(chunk.text, &tokens);
  QueryClause clause;
  for (Token& token : tokens) clause.terms.push_back({std::move(token.term), false});
  // Bigrams already match inside longer runs of CJK: a prefix adds nothing.
  if (!chunk.prefix || tokens.empty() || IsBigramTerm(clause.terms.back().term)) return clause;
  QueryTerm& last = clause.terms.back();
  if (!tokens.back().unstemmed.empty()) last.term = std::move(tokens.back().unstemmed);
  if (Analyzer::CodePoints(last.term) < kPrefixChars) return PrefixTooShort();
  last.prefix = true;
  return clause;
}

}  // namespace

Result<Query> ParseQuery(std::string_view text, const Analyzer& analyzer) {
  Query query;
  size_t terms = 0;
  for (const Chunk& chunk : SplitChunks(text)) {
    TIDINGS_ASSIGN_OR_RETURN(QueryClause clause, MakeClause(chunk, analyzer));
    if (clause.terms.empty()) continue;
    terms += clause.terms.size();
    query.clauses.push_back(std::move(clause));
    if (query.clauses.size() > kMaxQueryClauses) {
      return InvalidArgument("a search takes at most " + std::to_string(kMaxQueryClauses) +
                             " words or quoted phrases: remove some");
    }
    if (terms > kMaxQueryTerms) {
      return InvalidArgument("a search takes at most " + std::to_string(kMaxQueryTerms) +
                             " words: shorten it");
    }
  }
  if (query.clauses.empty()) return InvalidArgument("type a word to search for");
  return query;
}

namespace {

bool TermMatches(const QueryTerm& q, const Token& token) {
  if (!q.prefix) return token.term == q.term;
  return token.folded().starts_with(q.term);
}

// Whether `clause` matches the tokens starting at tokens[i]. Tokens come
// from Analyze: in position order, one per position.
bool MatchesAt(const QueryClause& clause, const std::vector<Token>& tokens, size_t i) {
  if (i + clause.terms.size() > tokens.size()) return false;
  for (size_t k = 0; k < clause.terms.size(); ++k) {
    const Token& token = tokens[i + k];
    if (token.position != tokens[i].position + k) return false;
    if (!TermMatches(clause.terms[k], token)) return false;
  }
  return true;
}

}  // namespace

std::vector<size_t> MatchTokens(const Query& query, const std::vector<Token>& tokens) {
  std::vector<size_t> matched;
  for (const QueryClause& clause : query.clauses) {
    bool found = false;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (clause.terms.empty() || !MatchesAt(clause, tokens, i)) continue;
      found = true;
      for (size_t k = 0; k < clause.terms.size(); ++k) matched.push_back(i + k);
    }
    if (!found) return {};
  }
  std::sort(matched.begin(), matched.end());
  matched.erase(std::unique(matched.begin(), matched.end()), matched.end());
  return matched;
}

}  // namespace tidings::search
