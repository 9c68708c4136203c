// What the `tidings` process does with its own secrets before it touches
// any: no core dumps, and the passphrase out of the environment
// (docs/security.md, "Secrets in memory").
//
// Thread safety: call DisableCoreDumps and TakeEnvPassphrase first thing in
// main, before any thread starts; EnvPassphrase may then be called from any
// thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tidings::daemon {

// prctl(PR_SET_DUMPABLE, 0): a crash writes no core file, and another
// process of the same user can neither ptrace this one nor read
// /proc/PID/mem (root, with CAP_SYS_PTRACE, still can).
void DisableCoreDumps();

// Moves TIDINGS_PASSPHRASE (and TIDINGS_NEW_PASSPHRASE, for `tidings rekey`)
// out of the environment: each value is copied into
// memory this process keeps (wiped at exit), overwritten with zeros where
// the environment held it (so /proc/PID/environ shows no trace) and unset,
// so child processes never inherit it. A no-op when it is not set.
void TakeEnvPassphrase();

// Moves the AWS secrets out of the environment the same way, into the
// library's locked memory (api::TakeAwsEnvironment). Errors: as that.
Status TakeEnvAwsSecrets();

// For `tidings daemon` (the args of main): message text passes through the
// daemon's heap for as long as it runs, so freed heap memory is overwritten
// (glibc's malloc perturb, with the per-thread cache off so that every free
// is overwritten). glibc reads these settings only when a program starts:
// unless GLIBC_TUNABLES already has them, this re-executes /proc/self/exe
// with them added, and returns only when that is not needed or failed.
// Call first thing in main, before the environment is touched. Other
// commands return at once.
void WipeFreedMemoryInDaemon(int argc, char** argv);

// The passphrase TakeEnvPassphrase took from `var`, or nullopt when there
// was none. The view lives until the process exits.
std::optional<std::string_view> EnvPassphrase(std::string_view var = "TIDINGS_PASSPHRASE");

}  // namespace tidings::daemon
