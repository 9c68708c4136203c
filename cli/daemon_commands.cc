// `tidings daemon` and the write commands' hand-over to a running daemon:
// the daemon (daemon/daemon.h) stands on the public API like the rest of the
// CLI, and a write refused with BUSY goes through its socket
// (daemon/client.h).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

#include "cli/commands.h"
#include "daemon/client.h"
#include "daemon/daemon.h"

namespace tidings::cli {
namespace {

api::Status ToApi(const tidings::Status& s) {
  return api::Status(static_cast<tidings_code>(s.code()), s.message());
}

}  // namespace

bool TryDaemon(const Globals& g, const api::Status& open_error,
               const std::vector<std::pair<std::string, std::string>>& request, std::string* id,
               int* rc) {
  if (open_error.code() != TIDINGS_BUSY) return false;
  auto path = StorePath(g);
  if (!path.ok()) return false;
  // No socket yet: a daemon may be starting (it binds the socket just after
  // taking the store), or an app holds the store; wait a moment for either.
  const int64_t deadline_ms = daemon::DaemonSocketPresent(*path) ? 20'000 : 1'000;
  auto key = ResolveKey(g);
  if (!key.ok()) {
    *rc = Fail(key.status());
    return true;
  }
  daemon::Fields fields;
  for (const auto& [k, v] : request) fields.Add(k, v);
  auto answer = daemon::CallDaemon(*path, *key, std::move(fields), deadline_ms);
  if (!answer.ok()) {
    *rc = Fail(ToApi(answer.status()));
    return true;
  }
  tidings::Status s = daemon::StatusFromFields(*answer);
  if (!s.ok()) {
    *rc = Fail(ToApi(s));
    return true;
  }
  if (id != nullptr) *id = answer->Get("id");
  *rc = kExitOk;
  return true;
}

int ViaDaemonOrFail(const Globals& g, const api::Status& open_error,
                    const std::vector<std::pair<std::string, std::string>>& request) {
  int rc;
  return TryDaemon(g, open_error, request, nullptr, &rc) ? rc : Fail(open_error);
}

int Poke(const Globals& g) {
  auto path = StorePath(g);
  if (!path.ok()) return Fail(path.status());
  if (!daemon::DaemonSocketPresent(*path)) {
    return Fail(api::Status(TIDINGS_NOT_FOUND, "no daemon runs for the store at " + *path +
                                                   ". Start one with `tidings daemon`"));
  }
  int rc = kExitOk;
  TryDaemon(g, api::Status(TIDINGS_BUSY, ""), {{"op", "poke"}}, nullptr, &rc);
  return rc;
}

void AddDaemonCommand(CLI::App& app, Globals& g, int& rc) {
  static daemon::DaemonOptions o;
  auto* cmd = app.add_subcommand(
      "daemon",
      "keep the store in sync with the configured backends until SIGTERM (see docs/daemon.md)");
  cmd->add_option("--config", o.config_path,
                  "TOML configuration file (or TIDINGS_DAEMON_CONFIG); see "
                  "packaging/tidings-daemon.example.toml");
  cmd->add_flag("--check-config", o.check_config,
                "validate the configuration, credentials and key, then exit (0 if fine)");
  cmd->add_option("--log-format", o.log_format, "text (default) or json");
  cmd->add_option("--log-level", o.log_level, "debug, info (default), warn or error");
  static bool poke = false;
  cmd->add_flag("--poke", poke,
                "ask the daemon running on --store to push and pull every conversation now, "
                "then exit");
  cmd->callback([&] {
    if (poke) {
      rc = Poke(g);
      return;
    }
    o.store_path =
        g.store.empty() && std::getenv("TIDINGS_STORE") ? std::getenv("TIDINGS_STORE") : g.store;
    o.key_file = KeyFilePath(g);
    tidings::Status s = daemon::RunDaemon(o);
    rc = s.ok() ? kExitOk
                : (s.code() == tidings::Code::kInvalidArgument ? kExitUsage
                                                               : ExitCodeFor(ToApi(s).code()));
    if (!s.ok()) Fail(ToApi(s));
  });
}

}  // namespace tidings::cli
