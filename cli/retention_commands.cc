// `tidings retention`: shows and sets how long the store keeps messages, and
// purges on demand (docs/cli.md, docs/engine.md "Retention").
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "cli/output.h"

namespace tidings::cli {
namespace {

struct RetentionArgs {
  std::string conversation;
  uint32_t keep_days = 0;
  uint64_t keep_last = 0;
  bool clear = false;
  bool purge_now = false;
};

std::string Describe(const api::RetentionPolicy& p) {
  if (p.empty()) return "keep everything";
  std::string out;
  if (p.keep_days != 0) out = "keep " + std::to_string(p.keep_days) + " days";
  if (p.keep_last != 0) {
    if (!out.empty()) out += ", ";
    out += "keep the last " + std::to_string(p.keep_last) + " messages";
  }
  return out;
}

std::string Json(const std::string& scope, const api::RetentionPolicy& p) {
  return "{\"conversation\":" + JsonString(scope) +
         ",\"keep_days\":" + std::to_string(p.keep_days) +
         ",\"keep_last\":" + std::to_string(p.keep_last) + "}";
}

int Show(const Globals& g, const RetentionArgs& a) {
  auto store = OpenStore(g, Access::kRead);
  if (!store.ok()) return Fail(store.status());
  std::vector<api::ConversationRetention> rows;
  if (a.conversation.empty()) {
    auto all = store->GetRetention("");
    if (!all.ok()) return Fail(all.status());
    rows.push_back({"", *all});
    auto each = store->RetentionPolicies();
    if (!each.ok()) return Fail(each.status());
    rows.insert(rows.end(), each->begin(), each->end());
  } else {
    auto p = store->GetRetention(a.conversation, /*effective=*/true);
    if (!p.ok()) return Fail(p.status());
    rows.push_back({a.conversation, *p});
  }
  for (const auto& r : rows) {
    if (g.json) {
      std::printf("%s\n", Json(r.conversation_id, r.policy).c_str());
    } else {
      std::printf("%s: %s\n", r.conversation_id.empty() ? "store-wide" : r.conversation_id.c_str(),
                  Describe(r.policy).c_str());
    }
  }
  return kExitOk;
}

int Change(const Globals& g, const RetentionArgs& a, bool set) {
  auto store = OpenStore(g, Access::kWrite);
  if (!store.ok()) return Fail(store.status());
  if (set) {
    api::RetentionPolicy p;
    if (!a.clear) p = api::RetentionPolicy{a.keep_days, a.keep_last};
    auto s = store->SetRetention(a.conversation, p);
    if (!s.ok()) return Fail(s);
  }
  if (!a.purge_now) return kExitOk;
  auto report = store->PurgeExpired();
  if (!report.ok()) return Fail(report.status());
  if (g.json) {
    std::printf("{\"purged\":%llu,\"conversations\":%llu,\"outbox_dropped\":%llu}\n",
                static_cast<unsigned long long>(report->messages_purged),
                static_cast<unsigned long long>(report->conversations),
                static_cast<unsigned long long>(report->outbox_dropped));
  } else if (report->messages_purged == 0) {
    // Opening the store for writing ran a purge already.
    std::printf("nothing left to purge\n");
  } else {
    std::printf("purged %llu messages from %llu conversations\n",
                static_cast<unsigned long long>(report->messages_purged),
                static_cast<unsigned long long>(report->conversations));
  }
  return kExitOk;
}

}  // namespace

void AddRetentionCommand(CLI::App& app, Globals& g, int& rc) {
  auto args = std::make_shared<RetentionArgs>();
  auto* cmd = app.add_subcommand(
      "retention",
      "show or set how long messages are kept (store-wide or per conversation); purge now");
  cmd->add_option("--conversation,-c", args->conversation,
                  "a conversation's own policy (default: the store-wide one)");
  auto* days = cmd->add_option("--keep-days", args->keep_days,
                               "keep messages from the last N days (0: no time limit)");
  auto* last = cmd->add_option("--keep-last", args->keep_last,
                               "keep the newest N messages of each conversation (0: no limit)");
  auto* clear = cmd->add_flag("--clear", args->clear,
                              "remove the policy (a conversation then follows the store-wide one)");
  clear->excludes(days)->excludes(last);
  cmd->add_flag("--purge-now", args->purge_now,
                "purge what the policies no longer keep, now (also runs at every writable open)");
  cmd->callback([&g, &rc, args, days, last, clear] {
    const bool set = days->count() + last->count() + clear->count() != 0;
    rc = set || args->purge_now ? Change(g, *args, set) : Show(g, *args);
  });
}

}  // namespace tidings::cli
