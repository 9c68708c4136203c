// What the CLI's commands share: global options, exit codes, error output,
// and how a store is found and unlocked.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "tidings/tidings.hpp"
#include "tidings/tidings_sync.hpp"

namespace CLI {
class App;
}

namespace tidings::cli {

// Documented in docs/cli.md and `tidings --help`; scripts branch on them.
enum Exit : int {
  kExitOk = 0,
  kExitFailure = 1,
  kExitUsage = 2,        // bad arguments or input
  kExitNotFound = 3,     // no such store, key file, conversation, message
  kExitKey = 4,          // wrong key or passphrase, key file problems, permission
  kExitCorrupt = 5,      // corrupt or tampered data; verify found problems
  kExitBusy = 6,         // the store is held for writing by another process
  kExitUnavailable = 7,  // network or service unavailable (retry later)
};

int ExitCodeFor(tidings_code code);

// Prints "tidings: <message>. <what to do>" to stderr and returns the exit
// code for `s`.
int Fail(const api::Status& s);

inline api::Status Usage(std::string message) {
  return api::Status(TIDINGS_INVALID_ARGUMENT, std::move(message));
}

struct Globals {
  std::string store;
  std::string key_file;
  bool json = false;
};

// --store, else TIDINGS_STORE; INVALID_ARGUMENT if neither.
api::Result<std::string> StorePath(const Globals& g);
// --key-file, else TIDINGS_KEY_FILE, else "".
std::string KeyFilePath(const Globals& g);
// "<store>.key": beside the store directory, in its parent.
std::string DefaultKeyFile(const std::string& store_path);

// The key to open an existing store, first found of: --key-file,
// TIDINGS_KEY_FILE, TIDINGS_PASSPHRASE, the file `init` creates
// (DefaultKeyFile), a prompt on the terminal (echo off). Secrets never come
// from argv.
api::Result<api::Key> ResolveKey(const Globals& g);
// A new passphrase: the environment variable `env`, else asked twice.
api::Result<api::Key> NewPassphrase(const char* env = "TIDINGS_PASSPHRASE");

enum class Access { kRead, kWrite };
// kRead opens without the writer lock, so it works while a daemon syncs.
api::Result<api::Store> OpenStore(const Globals& g, Access access);

// `status`, `sync` and backend commands (cli/sync_commands.cc).
void AddSyncCommands(CLI::App& app, Globals& g, int& rc);

// `tidings keys` and its subcommands (cli/keys_commands.cc).
void AddKeysCommands(CLI::App& app, Globals& g, int& rc);
// `tidings conversation create` and `upgrade`, under `conversation`.
void AddConversationCommands(CLI::App& conversation, Globals& g, int& rc);

// `tidings backup` and `tidings restore` (cli/backup_commands.cc).
void AddBackupCommands(CLI::App& app, Globals& g, int& rc);
// `tidings rekey` (cli/rekey_command.cc).
void AddRekeyCommand(CLI::App& app, Globals& g, int& rc);
// "interactive", "moderate", "sensitive"; "" is the default.
api::Result<tidings_passphrase_profile> ParseProfile(const std::string& name);
// `tidings retention` (cli/retention_commands.cc).
void AddRetentionCommand(CLI::App& app, Globals& g, int& rc);

// `tidings attachments` and `tidings fetch` (cli/attachment_commands.cc),
// and the S3 flags `sync` takes too.
void AddAttachmentCommands(CLI::App& app, Globals& g, int& rc);
struct S3Flags {
  std::string bucket;  // else TIDINGS_S3_BUCKET
  std::string endpoint;
  std::string region;
  bool path_style = false;
  uint64_t auto_fetch = 0;
};
void AddS3Flags(CLI::App* cmd, S3Flags& flags);
// Sets the sync handle's attachment store from the flags; with no bucket,
// nothing (or, when `required`, a usage error saying how to give one).
api::Status ApplyS3(api::Sync& sync, const S3Flags& flags, bool required);

// `tidings search` (cli/search_command.cc).
void AddSearchCommand(CLI::App& app, Globals& g, int& rc);

// `tidings daemon` (cli/daemon_commands.cc).
void AddDaemonCommand(CLI::App& app, Globals& g, int& rc);
// A write command whose store open failed: if it failed with BUSY because a
// daemon holds the store, runs `request` (daemon/protocol.h fields) through
// the daemon's socket and returns true with *rc (and *id from the answer);
// otherwise returns false and the caller reports `open_error` as usual.
bool TryDaemon(const Globals& g, const api::Status& open_error,
               const std::vector<std::pair<std::string, std::string>>& request, std::string* id,
               int* rc);
// TryDaemon's exit code, or `open_error` reported when no daemon holds the
// store.
int ViaDaemonOrFail(const Globals& g, const api::Status& open_error,
                    const std::vector<std::pair<std::string, std::string>>& request);

}  // namespace tidings::cli
