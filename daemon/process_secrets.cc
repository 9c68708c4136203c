#include "daemon/process_secrets.h"

#include <sys/prctl.h>

#include <cstdlib>
#include <cstring>

#include "tidings/tidings.hpp"

namespace tidings::daemon {
namespace {

constexpr char kPassphraseVar[] = "TIDINGS_PASSPHRASE";

// The one copy of the passphrase; api::Key wipes it when destroyed.
std::optional<api::Key>& Held() {
  static std::optional<api::Key> held;
  return held;
}

}  // namespace

void DisableCoreDumps() { ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); }

void TakeEnvPassphrase() {
  char* value = std::getenv(kPassphraseVar);
  if (value == nullptr) return;
  const size_t size = std::strlen(value);
  Held() = api::Key::Passphrase(std::string_view(value, size));
  // getenv points into the environment block itself: zero it there, where
  // /proc/PID/environ would show it, before the entry is dropped.
  ::explicit_bzero(value, size);
  ::unsetenv(kPassphraseVar);
}

std::optional<std::string_view> EnvPassphrase() {
  if (!Held()) return std::nullopt;
  const tidings_key_source s = Held()->source();
  return std::string_view(static_cast<const char*>(s.data), s.size);
}

}  // namespace tidings::daemon
