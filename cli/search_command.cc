// `tidings search`: full-text search of the store (docs/cli.md, "search";
// docs/search.md for the query syntax), and `--rebuild` of its index.
//
// A search opens the store read-only, like `log`, so it works beside a
// daemon that holds it; `--rebuild` needs the store to itself.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/output.h"
#include "tidings/tidings_search.hpp"

namespace tidings::cli {
namespace {

struct SearchArgs {
  std::string query;
  std::string conversation;
  std::string sender;
  std::string from, to;
  bool newest = false;
  size_t limit = 20;
  size_t offset = 0;
  bool json = false;
  bool rebuild = false;
};

// Unix milliseconds from "1700000000000" (already ms), "2026-11-24" (UTC
// midnight) or "2026-11-24T14:03[:05][Z]" (UTC).
api::Result<uint64_t> ParseTime(const std::string& flag, const std::string& text) {
  uint64_t ms = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
  if (ec == std::errc() && end == text.data() + text.size() && !text.empty()) return ms;
  std::tm tm{};
  const char* rest = nullptr;
  for (const char* format : {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"}) {
    tm = std::tm{};
    rest = ::strptime(text.c_str(), format, &tm);
    if (rest != nullptr && (*rest == '\0' || std::string(rest) == "Z")) break;
    rest = nullptr;
  }
  const time_t secs = rest != nullptr ? ::timegm(&tm) : -1;
  if (secs < 0) {
    return Usage(flag + " takes a UTC date or time (2026-11-24, 2026-11-24T14:03:05Z) or Unix " +
                 "milliseconds");
  }
  return static_cast<uint64_t>(secs) * 1000;
}

// The snippet on one line, its marked ranges bold on a terminal (unless
// NO_COLOR is set) and in [brackets] elsewhere. Control bytes become spaces,
// so a message cannot move the cursor or recolour the terminal.
std::string Highlight(const api::SearchHit& h, bool ansi) {
  std::string text = h.snippet;
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  const char* open = ansi ? "\x1b[1m" : "[";
  const char* close = ansi ? "\x1b[0m" : "]";
  std::string out;
  size_t at = 0;
  for (const auto& [begin, end] : h.marks) {
    if (begin < at || end > text.size() || begin > end) continue;
    out.append(text, at, begin - at).append(open).append(text, begin, end - begin).append(close);
    at = end;
  }
  return out.append(text, at, std::string::npos);
}

std::string HitJson(const api::SearchHit& h) {
  std::string marks;
  for (const auto& [begin, end] : h.marks) {
    marks += (marks.empty() ? "[" : ",[") + std::to_string(begin) + "," + std::to_string(end) + "]";
  }
  char score[32];
  std::snprintf(score, sizeof(score), "%.6g", h.score);
  return "{\"message_id\":" + JsonString(h.message_id) +
         ",\"conversation\":" + JsonString(h.conversation_id) +
         ",\"sender\":" + JsonString(h.sender) + ",\"order\":" + JsonString(h.order.ToString()) +
         ",\"time\":" + JsonString(IsoTime(h.order.millis())) + ",\"score\":" + score +
         ",\"snippet\":" + JsonString(h.snippet) + ",\"marks\":[" + marks + "]}";
}

// Not handed to a daemon (it takes minutes on a large store, longer than a
// socket client waits): a held store is exit 6, saying what to do.
int Rebuild(const Globals& g, bool json) {
  auto store = OpenStore(g, Access::kWrite);
  if (!store.ok() && store.status().code() == TIDINGS_BUSY) {
    return Fail(api::Status(TIDINGS_BUSY,
                            "another process (a daemon, an app) holds the store for writing. "
                            "Stop it, run `tidings search --rebuild`, then start it again"));
  }
  if (!store.ok()) return Fail(store.status());
  Progress progress("search index");
  api::Status s =
      api::RebuildSearchIndex(*store, [&](uint64_t d, uint64_t t) { progress.Update(d, t); });
  if (!s.ok()) return Fail(s);
  std::printf(json ? "{\"rebuilt\":true}\n" : "rebuilt the search index\n");
  return kExitOk;
}

int Search(const Globals& g, const SearchArgs& a) {
  const bool json = g.json || a.json;
  if (a.rebuild) {
    if (!a.query.empty()) return Fail(Usage("--rebuild takes no query"));
    return Rebuild(g, json);
  }
  if (a.query.empty()) return Fail(Usage("give a query, e.g. tidings search 'ibuprofen dose'"));
  api::SearchRequest r;
  r.query = a.query;
  r.conversation_id = a.conversation;
  r.sender = a.sender;
  if (!a.from.empty()) {
    auto from = ParseTime("--from", a.from);
    if (!from.ok()) return Fail(from.status());
    r.from_ms = *from;
  }
  if (!a.to.empty()) {
    auto to = ParseTime("--to", a.to);
    if (!to.ok()) return Fail(to.status());
    r.to_ms = *to;
  }
  r.order = a.newest ? api::SearchOrder::kNewest : api::SearchOrder::kRelevance;
  r.offset = a.offset;
  r.limit = a.limit;
  auto store = OpenStore(g, Access::kRead);
  if (!store.ok()) return Fail(store.status());
  auto result = api::Search(*store, r);
  if (!result.ok()) return Fail(result.status());
  const char* no_color = std::getenv("NO_COLOR");
  const bool ansi = ::isatty(1) && (no_color == nullptr || *no_color == '\0');
  for (const api::SearchHit& h : result->hits) {
    if (json) {
      std::printf("%s\n", HitJson(h).c_str());
    } else {
      std::printf("%s  %s  %s: %s\n", IsoTime(h.order.millis()).c_str(), h.conversation_id.c_str(),
                  h.sender.c_str(), Highlight(h, ansi).c_str());
    }
  }
  if (!json) {
    std::fprintf(stderr, "%zu of %llu hits\n", result->hits.size(),
                 static_cast<unsigned long long>(result->total));
  }
  return kExitOk;
}

}  // namespace

void AddSearchCommand(CLI::App& app, Globals& g, int& rc) {
  auto a = std::make_shared<SearchArgs>();
  auto* cmd = app.add_subcommand(
      "search", "full-text search: words (all must match), \"a phrase\", prefix* (read-only)");
  cmd->add_option("query", a->query, "what to find (docs/search.md)");
  cmd->add_option("--conversation,-c", a->conversation, "only this conversation");
  cmd->add_option("--sender", a->sender, "only messages from this user");
  cmd->add_option("--from", a->from, "only messages at or after this UTC time (2026-11-24)");
  cmd->add_option("--to", a->to, "only messages before this UTC time");
  cmd->add_flag("--newest", a->newest, "newest first (default: best match first)");
  cmd->add_option("--limit", a->limit, "at most this many hits (default 20, at most 1000)");
  cmd->add_option("--offset", a->offset, "skip this many hits (paging)");
  cmd->add_flag("--json", a->json, "JSON Lines: one hit per line");
  cmd->add_flag("--rebuild", a->rebuild, "build the search index again from the messages");
  cmd->callback([&g, &rc, a] { rc = Search(g, *a); });
}

}  // namespace tidings::cli
