// `tidings rekey`: a new passphrase or key file (the data keys are wrapped
// again: seconds, no data rewritten), new Argon2id limits, or with
// --rotate-data-key a new data key (every record re-encrypted; crash-safe).
// The current key comes from the usual places (ResolveKey); the new
// passphrase from TIDINGS_NEW_PASSPHRASE or a prompt, never from argv.
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <optional>

#include "cli/commands.h"
#include "cli/output.h"

namespace tidings::cli {
namespace {

struct RekeyArgs {
  std::string new_key_file;
  bool new_passphrase = false;
  std::string profile;
  bool rotate = false;
};

int CmdRekey(const Globals& g, const RekeyArgs& a) {
  if (!a.new_key_file.empty() && a.new_passphrase) {
    return Fail(Usage("give --new-key-file or --new-passphrase, not both"));
  }
  if (a.new_key_file.empty() && !a.new_passphrase && a.profile.empty() && !a.rotate) {
    return Fail(
        Usage("nothing to change: give --new-passphrase, --new-key-file FILE, --passphrase-profile "
              "or --rotate-data-key"));
  }
  auto path = StorePath(g);
  if (!path.ok()) return Fail(path.status());
  auto profile = ParseProfile(a.profile);
  if (!profile.ok()) return Fail(profile.status());
  auto current = ResolveKey(g);
  if (!current.ok()) return Fail(current.status());

  std::optional<api::Key> next;
  std::string created_key;
  if (a.new_passphrase) {
    auto k = NewPassphrase("TIDINGS_NEW_PASSPHRASE");
    if (!k.ok()) return Fail(k.status());
    next.emplace(std::move(k).value());
  } else if (!a.new_key_file.empty()) {
    if (struct stat st{}; ::stat(a.new_key_file.c_str(), &st) != 0) {
      api::Status s = api::CreateKeyFile(a.new_key_file);
      if (!s.ok()) return Fail(s);
      created_key = a.new_key_file;
    }
    next.emplace(api::Key::File(a.new_key_file));
  }

  api::RekeyOptions o;
  o.new_key = next ? &*next : nullptr;
  o.passphrase_profile = *profile;
  o.rotate_data_key = a.rotate;
  const bool show = a.rotate && ::isatty(2);
  if (show) {
    o.progress = [](uint64_t done, uint64_t total) {
      std::fprintf(stderr, "\rre-encrypting: %llu of ~%llu records",
                   static_cast<unsigned long long>(done), static_cast<unsigned long long>(total));
    };
  }
  api::Status s = api::Store::Rekey(*path, *current, o);
  if (show) std::fprintf(stderr, "\n");
  if (!s.ok()) {
    if (!created_key.empty()) ::unlink(created_key.c_str());
    return Fail(s);
  }
  const char* unlock = next ? (a.new_passphrase ? "passphrase" : "key file") : "unchanged";
  if (g.json) {
    std::printf("{\"store\":%s,\"key\":%s,\"data_key_rotated\":%s%s}\n", JsonString(*path).c_str(),
                JsonString(unlock).c_str(), a.rotate ? "true" : "false",
                created_key.empty() ? "" : (",\"key_file\":" + JsonString(created_key)).c_str());
    return kExitOk;
  }
  std::printf("rekeyed store %s: key %s%s\n", path->c_str(),
              next ? (std::string("now a ") + unlock).c_str() : "unchanged",
              a.rotate ? ", data re-encrypted under a new data key" : "");
  if (!created_key.empty()) {
    std::printf(
        "created key file %s (mode 0600): keep it safe, without it the store cannot be opened\n",
        created_key.c_str());
  }
  return kExitOk;
}

}  // namespace

api::Result<tidings_passphrase_profile> ParseProfile(const std::string& name) {
  if (name.empty()) return TIDINGS_PASSPHRASE_DEFAULT;
  if (name == "interactive") return TIDINGS_PASSPHRASE_INTERACTIVE;
  if (name == "moderate") return TIDINGS_PASSPHRASE_MODERATE;
  if (name == "sensitive") return TIDINGS_PASSPHRASE_SENSITIVE;
  return Usage("unknown passphrase profile '" + name +
               "'. Use interactive (phones), moderate (kiosks) or sensitive (servers)");
}

void AddRekeyCommand(CLI::App& app, Globals& g, int& rc) {
  auto args = std::make_shared<RekeyArgs>();
  auto* cmd = app.add_subcommand(
      "rekey",
      "change the store's passphrase or key file (no data rewritten), or re-encrypt it under "
      "a new data key (--rotate-data-key); the store must not be open elsewhere");
  cmd->add_option("--new-key-file", args->new_key_file,
                  "unlock with this key file from now on (created, mode 0600, if missing)");
  cmd->add_flag("--new-passphrase", args->new_passphrase,
                "unlock with a new passphrase (TIDINGS_NEW_PASSPHRASE, or asked twice)");
  cmd->add_option("--passphrase-profile", args->profile,
                  "Argon2id limits: interactive, moderate or sensitive");
  cmd->add_flag("--rotate-data-key", args->rotate,
                "re-encrypt every record and file under a new data key (crash-safe)");
  cmd->callback([&g, &rc, args] { rc = CmdRekey(g, *args); });
}

}  // namespace tidings::cli
