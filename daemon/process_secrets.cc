#include "daemon/process_secrets.h"

#include <sys/prctl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "daemon/protocol.h"
#include "tidings/tidings_sync.hpp"

namespace tidings::daemon {
namespace {

// The variables that may carry a passphrase: the store's, and a new one for
// `tidings rekey`.
constexpr const char* kPassphraseVars[] = {"TIDINGS_PASSPHRASE", "TIDINGS_NEW_PASSPHRASE"};
constexpr size_t kVars = sizeof(kPassphraseVars) / sizeof(kPassphraseVars[0]);
// Freed bytes become 0xa5; tcache_count=0 sends every free through it.
constexpr char kWipeTunables[] = "glibc.malloc.perturb=165:glibc.malloc.tcache_count=0";

// True when the first word that is not an option (or a global option's
// value) is "daemon".
bool IsDaemonCommand(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--store" || arg == "--key-file") {
      ++i;
    } else if (arg.empty() || arg[0] != '-') {
      return arg == "daemon";
    }
  }
  return false;
}

// The one copy of each passphrase; api::Key wipes it when destroyed.
std::optional<api::Key>& Held(size_t var) {
  static std::optional<api::Key> held[kVars];
  return held[var];
}

}  // namespace

void DisableCoreDumps() { ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); }

void TakeEnvPassphrase() {
  for (size_t i = 0; i < kVars; ++i) {
    char* value = std::getenv(kPassphraseVars[i]);
    if (value == nullptr) continue;
    const size_t size = std::strlen(value);
    Held(i) = api::Key::Passphrase(std::string_view(value, size));
    // getenv points into the environment block itself: zero it there, where
    // /proc/PID/environ would show it, before the entry is dropped.
    ::explicit_bzero(value, size);
    ::unsetenv(kPassphraseVars[i]);
  }
}

Status TakeEnvAwsSecrets() { return FromApi(api::TakeAwsEnvironment()); }

void WipeFreedMemoryInDaemon(int argc, char** argv) {
  if (!IsDaemonCommand(argc, argv)) return;
  const char* now = std::getenv("GLIBC_TUNABLES");
  const std::string current = now == nullptr ? "" : now;
  if (current.find(kWipeTunables) != std::string::npos) return;  // we are the re-executed one
  const std::string wanted = current.empty() ? kWipeTunables : current + ":" + kWipeTunables;
  if (::setenv("GLIBC_TUNABLES", wanted.c_str(), 1) != 0) return;
  ::execv("/proc/self/exe", argv);
  // Not re-executed (no /proc?): run on without it; docs/security.md says what that costs.
  if (current.empty()) {
    ::unsetenv("GLIBC_TUNABLES");
  } else {
    ::setenv("GLIBC_TUNABLES", current.c_str(), 1);
  }
}

std::optional<std::string_view> EnvPassphrase(std::string_view var) {
  size_t i = 0;
  while (i < kVars && var != kPassphraseVars[i]) ++i;
  if (i == kVars || !Held(i)) return std::nullopt;
  const tidings_key_source s = Held(i)->source();
  return std::string_view(static_cast<const char*>(s.data), s.size);
}

}  // namespace tidings::daemon
