// `tidings backup FILE` and `tidings restore FILE`: encrypted, authenticated
// snapshots of a store (docs/engine.md "Backups"). A backup opens the store
// read-only, so it runs beside a daemon; a restore makes a new store.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/commands.h"
#include "cli/output.h"

namespace tidings::cli {
namespace {

int CmdBackup(const Globals& g, const std::string& file) {
  auto store = OpenStore(g, Access::kRead);
  if (!store.ok()) return Fail(store.status());
  Progress progress("backup");
  api::Status s = store->Backup(file, [&](uint64_t d, uint64_t t) { progress.Update(d, t); });
  if (!s.ok()) return Fail(s);
  if (g.json) {
    std::printf("{\"backup\":%s}\n", JsonString(file).c_str());
  } else {
    std::printf("backed up to %s (only this store's key opens it)\n", file.c_str());
  }
  return kExitOk;
}

int CmdRestore(const Globals& g, const std::string& file) {
  auto path = StorePath(g);
  if (!path.ok()) return Fail(path.status());
  auto key = ResolveKey(g);
  if (!key.ok()) return Fail(key.status());
  Progress progress("restore");
  api::Status s = api::Store::Restore(file, *path, *key,
                                      [&](uint64_t d, uint64_t t) { progress.Update(d, t); });
  if (!s.ok()) return Fail(s);
  if (g.json) {
    std::printf("{\"restored\":%s}\n", JsonString(*path).c_str());
  } else {
    std::printf("restored into %s; unlock it with the same key as the store backed up\n",
                path->c_str());
  }
  return kExitOk;
}

}  // namespace

void AddBackupCommands(CLI::App& app, Globals& g, int& rc) {
  static std::string backup_file, restore_file;
  auto* backup = app.add_subcommand(
      "backup", "write an encrypted snapshot of the store to a new file (only its key opens it)");
  backup->add_option("file", backup_file, "the new backup file (mode 0600; never overwritten)")
      ->required();
  backup->callback([&] { rc = CmdBackup(g, backup_file); });
  auto* restore = app.add_subcommand(
      "restore", "make the store at --store (new or empty) from a backup, with the same key");
  restore->add_option("file", restore_file, "a file made by `tidings backup`")->required();
  restore->callback([&] { rc = CmdRestore(g, restore_file); });
}

}  // namespace tidings::cli
