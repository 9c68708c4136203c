// `tidings daemon`: keeps one store in sync with the configured backends
// around the clock (docs/daemon.md, docs/operations.md).
//
// One process per store. It holds the store for writing, syncs it with one
// sync handle over the configured backends (tidings_sync.h), accepts writes
// from other processes on the local socket (socket_server.h), serves
// /healthz and /metrics when configured, reloads its configuration on SIGHUP and stops cleanly on
// SIGTERM / SIGINT.
#pragma once

#include <string>

#include "common/status.h"

namespace tidings::daemon {

struct DaemonOptions {
  std::string config_path;    // --config, else TIDINGS_DAEMON_CONFIG; "" = none
  std::string store_path;     // --store / TIDINGS_STORE: overrides store.path
  std::string key_file;       // --key-file / TIDINGS_KEY_FILE: overrides store.key_file
  std::string log_format;     // --log-format: overrides log.format
  std::string log_level;      // --log-level: overrides log.level
  bool check_config = false;  // validate everything, open the store read-only, exit
};

// Runs until SIGTERM or SIGINT (then OK), or returns why it could not start:
// InvalidArgument for configuration problems (bad or unknown keys, missing
// file, credentials or key: the CLI exits 2), the store's open errors
// (NotFound, WrongKey, Busy, DataLoss, PermissionDenied), IOError (socket or
// metrics address unusable). Messages name the file, line or key and what
// to do. Must be called before the process starts any thread: it blocks the
// handled signals in every thread and waits for them on the caller's.
Status RunDaemon(const DaemonOptions& options);

}  // namespace tidings::daemon
