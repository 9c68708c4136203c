// `tidings attachments` and `tidings fetch`, and the S3 flags `sync` shares,
// over tidings_attachments.hpp.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

#include "cli/commands.h"
#include "cli/output.h"
#include "tidings/tidings_attachments.hpp"

namespace tidings::cli {
namespace {

std::string Or(const std::string& flag, const char* env) {
  if (!flag.empty()) return flag;
  const char* v = std::getenv(env);
  return v ? v : "";
}

std::string Bytes(uint64_t n) {
  char buf[32];
  if (n >= 10'000'000) {
    std::snprintf(buf, sizeof(buf), "%.1f MB", static_cast<double>(n) / 1e6);
  } else if (n >= 10'000) {
    std::snprintf(buf, sizeof(buf), "%.1f kB", static_cast<double>(n) / 1e3);
  } else {
    std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(n));
  }
  return buf;
}

int CmdAttachments(const Globals& g, const std::string& object) {
  auto store = OpenStore(g, Access::kRead);
  if (!store.ok()) return Fail(store.status());
  auto list = api::Attachments(*store, object);
  if (!list.ok()) return Fail(list.status());
  for (const auto& a : *list) {
    if (g.json) {
      std::printf(
          "{\"object\":%s,\"state\":%s,\"size\":%llu,\"object_size\":%llu,\"references\":%llu,"
          "\"location\":%s,\"failure_reason\":%s}\n",
          JsonString(a.object).c_str(), JsonString(api::AttachmentStateName(a.state)).c_str(),
          static_cast<unsigned long long>(a.size), static_cast<unsigned long long>(a.object_size),
          static_cast<unsigned long long>(a.references), JsonString(a.location).c_str(),
          JsonString(a.failure_reason).c_str());
    } else {
      std::printf("%s  %-11s %10s  refs=%llu%s%s%s%s\n", a.object.c_str(),
                  api::AttachmentStateName(a.state), Bytes(a.size).c_str(),
                  static_cast<unsigned long long>(a.references),
                  a.location.empty() ? "" : "  s3:", a.location.c_str(),
                  a.failure_reason.empty() ? "" : "  error: ", a.failure_reason.c_str());
    }
  }
  if (!g.json && list->empty()) std::printf("no attachments\n");
  return kExitOk;
}

int CmdFetch(const Globals& g, const std::string& object, const std::string& to,
             const S3Flags& s3) {
  auto store = OpenStore(g, Access::kWrite);
  if (!store.ok()) return Fail(store.status());
  auto sync = api::Sync::Open(*store);
  if (!sync.ok()) return Fail(sync.status());
  if (api::Status s = ApplyS3(*sync, s3, /*required=*/true); !s.ok()) return Fail(s);
  {
    Progress progress("fetching");
    api::Status s = api::FetchAttachment(*sync, object, [&](uint64_t done, uint64_t total) {
      progress.Update(done, total);
      return true;
    });
    if (!s.ok()) return Fail(s);
  }
  if (!to.empty()) {
    Progress progress("decrypting");
    api::Status s = api::ExportAttachment(*store, object, to, [&](uint64_t done, uint64_t total) {
      progress.Update(done, total);
      return true;
    });
    if (!s.ok()) return Fail(s);
  }
  if (g.json) {
    std::printf("{\"object\":%s,\"path\":%s}\n", JsonString(object).c_str(),
                JsonString(to).c_str());
  } else if (!to.empty()) {
    std::printf("saved to %s\n", to.c_str());
  } else {
    std::printf("fetched %s\n", object.c_str());
  }
  return kExitOk;
}

}  // namespace

void AddS3Flags(CLI::App* cmd, S3Flags& flags) {
  cmd->add_option("--s3-bucket", flags.bucket,
                  "S3 bucket for attachments (or TIDINGS_S3_BUCKET; docs/attachments.md)");
  cmd->add_option("--s3-endpoint", flags.endpoint,
                  "S3 endpoint URL (or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL)");
  cmd->add_flag("--s3-path-style", flags.path_style,
                "address the bucket in the path (local S3 servers)");
}

api::Status ApplyS3(api::Sync& sync, const S3Flags& flags, bool required) {
  api::S3Config c;
  c.bucket = Or(flags.bucket, "TIDINGS_S3_BUCKET");
  c.endpoint = flags.endpoint;
  c.region = flags.region;
  c.path_style = flags.path_style;
  c.auto_fetch_max_bytes = flags.auto_fetch;
  if (c.bucket.empty()) {
    if (!required) return api::Status();
    return Usage("attachments need an S3 bucket: give --s3-bucket or set TIDINGS_S3_BUCKET");
  }
  return api::SetAttachmentStore(sync, c);
}

void AddAttachmentCommands(CLI::App& app, Globals& g, int& rc) {
  static std::string object, to;
  static S3Flags s3;
  auto* list = app.add_subcommand(
      "attachments", "list attachments with their state (read-only: works while a daemon syncs)");
  list->add_option("object", object, "only this one (64 hex digits)");
  list->callback([&] { rc = CmdAttachments(g, object); });

  auto* fetch = app.add_subcommand(
      "fetch", "download an attachment from S3 (resuming) and save it to a file");
  fetch
      ->add_option("object", object,
                   "the attachment (64 hex digits, from `tidings attachments` "
                   "or the message)")
      ->required();
  fetch->add_option("--to,-o", to, "save the file here (new file, mode 0600)");
  fetch->add_option("--region", s3.region, "AWS region (or AWS_REGION)");
  AddS3Flags(fetch, s3);
  fetch->callback([&] { rc = CmdFetch(g, object, to, s3); });
}

}  // namespace tidings::cli
