// `tidings status`, `tidings sync` and `tidings dynamodb create-table`, over
// the sync part of the public API.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "cli/commands.h"
#include "cli/output.h"
#include "tidings/tidings_sync.hpp"

namespace tidings::cli {
namespace {

std::string TimeOrEmpty(int64_t ms) { return ms > 0 ? IsoTime(static_cast<uint64_t>(ms)) : ""; }

int CmdStatus(const Globals& g, const std::vector<std::string>& backends) {
  auto store = OpenStore(g, Access::kRead);
  if (!store.ok()) return Fail(store.status());
  auto outbox = store->CountOutbox();
  if (!outbox.ok()) return Fail(outbox.status());
  if (!g.json) {
    std::printf("outbox: %llu pending, %llu failed\n",
                static_cast<unsigned long long>(outbox->pending),
                static_cast<unsigned long long>(outbox->failed));
  }
  // Key changes are never silent: how many, and the newest.
  auto changes = api::GetKeyEvents(*store);
  if (!changes.ok()) return Fail(changes.status());
  if (!g.json && !changes->empty()) {
    const api::KeyEvent& e = changes->back();
    std::printf("key changes: %zu, newest %s: %s %s %s. Compare fingerprints: `tidings keys`\n",
                changes->size(), IsoTime(e.at_ms).c_str(), e.user.c_str(), e.kind_name(),
                e.device_id.c_str());
  }
  // Each conversation's mode (end-to-end, pending first sync, plaintext).
  auto convs = store->Conversations(0);
  if (!convs.ok()) return Fail(convs.status());
  std::map<std::string, std::string> modes;
  for (const auto& c : *convs) {
    auto mode = api::GetConversationMode(*store, c.id);
    if (!mode.ok()) return Fail(mode.status());
    modes[c.id] = tidings_conversation_mode_name(*mode);
    if (!g.json) std::printf("conversation %-24s %s\n", c.id.c_str(), modes[c.id].c_str());
  }
  std::vector<api::SyncStatus> rows;
  for (const auto& backend : backends.empty() ? std::vector<std::string>{""} : backends) {
    auto statuses = api::GetSyncStatus(*store, backend);
    if (!statuses.ok()) return Fail(statuses.status());
    rows.insert(rows.end(), statuses->begin(), statuses->end());
  }
  for (const auto& st : rows) {
    if (g.json) {
      std::printf(
          "{\"backend\":%s,\"conversation\":%s,\"cursor\":%s,\"outbox_depth\":%llu,"
          "\"last_success\":%s,\"last_error\":%s,\"next_attempt\":%s,\"failures\":%u,"
          "\"stopped\":%s,\"mode\":%s,\"skipped\":%llu,\"rejected_frames\":%llu,"
          "\"pending_frames\":%llu,\"last_rejection\":%s,\"waiting_for_upgrade\":%llu,"
          "\"filling_history\":%s}\n",
          JsonString(st.backend).c_str(), JsonString(st.conversation_id).c_str(),
          JsonString(st.cursor).c_str(), static_cast<unsigned long long>(st.outbox_depth),
          JsonString(TimeOrEmpty(st.last_success_ms)).c_str(), JsonString(st.last_error).c_str(),
          JsonString(TimeOrEmpty(st.next_attempt_ms)).c_str(), st.consecutive_failures,
          st.stopped ? "true" : "false", JsonString(modes[st.conversation_id]).c_str(),
          static_cast<unsigned long long>(st.skipped_ops),
          static_cast<unsigned long long>(st.rejected_frames),
          static_cast<unsigned long long>(st.pending_frames), JsonString(st.last_rejection).c_str(),
          static_cast<unsigned long long>(st.waiting_for_upgrade),
          st.filling_history ? "true" : "false");
    } else {
      std::string ok = st.last_success_ms ? TimeOrEmpty(st.last_success_ms) : "never";
      // Cursors are opaque and can be long (Chime's carries the ids seen in
      // its overlap window); --json has them whole.
      std::string cursor = st.cursor.size() > 24 ? st.cursor.substr(0, 21) + "..." : st.cursor;
      std::printf("%-9s %-24s cursor=%-10s outbox=%llu last_ok=%s%s%s%s%s\n", st.backend.c_str(),
                  st.conversation_id.c_str(), cursor.c_str(),
                  static_cast<unsigned long long>(st.outbox_depth), ok.c_str(),
                  st.last_error.empty() ? "" : "  error: ", st.last_error.c_str(),
                  st.next_attempt_ms ? ("  next=" + TimeOrEmpty(st.next_attempt_ms)).c_str() : "",
                  st.stopped ? "  STOPPED (permission lost)" : "");
      if (st.rejected_frames || st.pending_frames || st.skipped_ops) {
        std::printf(
            "          refused %llu forged or broken frames (newest: %s), %llu waiting for "
            "their key, %llu malformed operations skipped\n",
            static_cast<unsigned long long>(st.rejected_frames),
            st.last_rejection.empty() ? "-" : st.last_rejection.c_str(),
            static_cast<unsigned long long>(st.pending_frames),
            static_cast<unsigned long long>(st.skipped_ops));
      }
      if (st.waiting_for_upgrade) {
        std::printf(
            "          %llu operations were written by a newer Tidings: kept until this "
            "device is upgraded\n",
            static_cast<unsigned long long>(st.waiting_for_upgrade));
      }
      if (st.filling_history) {
        std::printf("          older history is still being fetched (newest first)\n");
      }
    }
  }
  return kExitOk;
}

api::DynamoDbConfig DynamoConfig(const api::DynamoDbConfig& flags) {
  api::DynamoDbConfig c = flags;
  if (c.table.empty()) {
    const char* t = std::getenv("TIDINGS_DYNAMODB_TABLE");
    c.table = t && *t ? t : "tidings";
  }
  return c;
}

std::string EnvOr(const std::string& flag, const char* env) {
  if (!flag.empty()) return flag;
  const char* v = std::getenv(env);
  return v ? v : "";
}

// Flags, then TIDINGS_CHIME_*; the user defaults to the store's own user
// under the app instance (the ARN every member gets, see docs/chime.md).
api::Result<api::ChimeConfig> ChimeConfig(api::Store& store, const api::ChimeConfig& flags) {
  api::ChimeConfig c = flags;
  c.app_instance_arn = EnvOr(c.app_instance_arn, "TIDINGS_CHIME_APP_INSTANCE_ARN");
  c.user_arn = EnvOr(c.user_arn, "TIDINGS_CHIME_USER_ARN");
  if (c.app_instance_arn.empty()) {
    return api::Status(TIDINGS_INVALID_ARGUMENT,
                       "syncing with Chime needs the app instance: give --chime-app-instance ARN "
                       "or set TIDINGS_CHIME_APP_INSTANCE_ARN");
  }
  if (c.user_arn.empty()) {
    auto stats = store.GetStats();
    if (!stats.ok()) return stats.status();
    c.user_arn = c.app_instance_arn + "/user/" + stats->user_id;
  }
  return c;
}

int CmdSync(const Globals& g, const std::string& backend, const api::DynamoDbConfig& dynamo,
            const api::ChimeConfig& chime, const S3Flags& s3, int rounds) {
  auto store = OpenStore(g, Access::kWrite);
  if (!store.ok()) return Fail(store.status());
  auto open = [&]() -> api::Result<api::Sync> {
    if (backend != "chime") return api::Sync::OpenDynamoDb(*store, DynamoConfig(dynamo));
    auto config = ChimeConfig(*store, chime);
    if (!config.ok()) return config.status();
    return api::Sync::OpenChime(*store, *config);
  };
  auto sync = open();
  if (!sync.ok()) return Fail(sync.status());
  if (api::Status s = ApplyS3(*sync, s3, /*required=*/false); !s.ok()) return Fail(s);
  for (int i = 0; i < rounds; ++i) {
    api::Status s = sync->Once();
    if (!s.ok()) return Fail(s);
  }
  auto statuses = sync->GetStatus();
  if (!statuses.ok()) return Fail(statuses.status());
  int errors = 0;
  for (const auto& st : *statuses) {
    if (st.last_error.empty()) continue;
    ++errors;
    std::fprintf(stderr, "tidings: %s: %s\n", st.conversation_id.c_str(), st.last_error.c_str());
  }
  auto outbox = store->CountOutbox();
  const auto left = static_cast<size_t>(outbox.ok() ? outbox->total() : 0);
  if (g.json) {
    std::printf("{\"conversations\":%zu,\"outbox\":%zu,\"errors\":%d}\n", statuses->size(), left,
                errors);
  } else {
    std::printf("synced %zu conversations; %zu operations still in the outbox\n", statuses->size(),
                left);
  }
  if (errors) {
    std::fprintf(stderr,
                 "tidings: %d conversations did not sync. They are retried on the next sync; "
                 "see `tidings status`.\n",
                 errors);
    return kExitUnavailable;
  }
  return kExitOk;
}

int CmdCreateTable(const Globals& g, const api::DynamoDbConfig& flags) {
  api::DynamoDbConfig c = DynamoConfig(flags);
  api::Status s = api::CreateDynamoDbTable(c);
  if (!s.ok()) return Fail(s);
  if (g.json) {
    std::printf("{\"table\":%s,\"ready\":true}\n", JsonString(c.table).c_str());
  } else {
    std::printf("table %s is ready\n", c.table.c_str());
  }
  return kExitOk;
}

}  // namespace

void AddSyncCommands(CLI::App& app, Globals& g, int& rc) {
  // Owned by the app's lifetime: main() keeps `app` until it returns.
  static std::vector<std::string> backends;
  static api::DynamoDbConfig dynamo;
  static api::ChimeConfig chime;
  static std::string backend = "dynamodb";
  static int rounds = 2;
  static S3Flags s3;

  auto* status = app.add_subcommand(
      "status", "sync status per conversation (read-only: works while a daemon syncs)");
  status->add_option("--backend", backends, "only this backend (repeat; default: all)");
  status->callback([&] { rc = CmdStatus(g, backends); });

  auto add_dynamo_flags = [&](CLI::App* cmd) {
    cmd->add_option("--table", dynamo.table,
                    "DynamoDB table (or TIDINGS_DYNAMODB_TABLE; default tidings)");
    cmd->add_option("--endpoint", dynamo.endpoint,
                    "endpoint URL (or AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL)");
    cmd->add_option("--region", dynamo.region, "AWS region (or AWS_REGION)");
  };
  auto* sync = app.add_subcommand(
      "sync",
      "push the outbox and pull new messages, then exit (DynamoDB or Chime SDK Messaging; "
      "credentials from the AWS environment)");
  sync->add_option("--backend", backend, "dynamodb (default) or chime")
      ->check(CLI::IsMember({"dynamodb", "chime"}));
  add_dynamo_flags(sync);
  sync->add_option("--chime-app-instance", chime.app_instance_arn,
                   "Chime app instance ARN (or TIDINGS_CHIME_APP_INSTANCE_ARN)");
  sync->add_option("--chime-user", chime.user_arn,
                   "AppInstanceUser ARN to act as (or TIDINGS_CHIME_USER_ARN; default: "
                   "<app instance>/user/<the store's user>)");
  sync->add_option("--chime-endpoint", chime.endpoint,
                   "Chime messaging endpoint URL (or AWS_ENDPOINT_URL_CHIME_SDK_MESSAGING)");
  sync->add_option("--rounds", rounds, "push/pull rounds (default 2)")->check(CLI::Range(1, 100));
  AddS3Flags(sync, s3);
  sync->add_option("--s3-auto-fetch", s3.auto_fetch,
                   "download received attachments up to this many bytes during the sync "
                   "(default 0: on demand, `tidings fetch`)");
  sync->callback([&] {
    if (backend == "chime") chime.region = dynamo.region;
    s3.region = dynamo.region;
    rc = CmdSync(g, backend, dynamo, chime, s3, rounds);
  });

  auto* ddb = app.add_subcommand("dynamodb", "DynamoDB administration");
  auto* create_table =
      ddb->add_subcommand("create-table", "create the table if missing (idempotent)");
  add_dynamo_flags(create_table);
  create_table->callback([&] { rc = CmdCreateTable(g, dynamo); });
  ddb->require_subcommand(1);
}

}  // namespace tidings::cli
