#include "cli/commands.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "daemon/config.h"
#include "daemon/process_secrets.h"

namespace tidings::cli {

int ExitCodeFor(tidings_code code) {
  switch (code) {
    case TIDINGS_OK:
      return kExitOk;
    case TIDINGS_INVALID_ARGUMENT:
    case TIDINGS_TOO_LARGE:
    case TIDINGS_ALREADY_EXISTS:
      return kExitUsage;
    case TIDINGS_NOT_FOUND:
      return kExitNotFound;
    case TIDINGS_WRONG_KEY:
    case TIDINGS_PERMISSION_DENIED:
    case TIDINGS_UNAUTHENTICATED:
      return kExitKey;
    case TIDINGS_DATA_LOSS:
      return kExitCorrupt;
    case TIDINGS_BUSY:
      return kExitBusy;
    case TIDINGS_UNAVAILABLE:
    case TIDINGS_DEADLINE_EXCEEDED:
    case TIDINGS_RESOURCE_EXHAUSTED:
      return kExitUnavailable;
    default:
      return kExitFailure;
  }
}

namespace {

// What to do, for codes whose message from the library may not say it.
const char* Advice(tidings_code code) {
  switch (code) {
    case TIDINGS_WRONG_KEY:
      return "Check --key-file, TIDINGS_KEY_FILE or TIDINGS_PASSPHRASE";
    case TIDINGS_BUSY:
      return "Another process holds the store for writing; stop it, or use a read-only command";
    case TIDINGS_DATA_LOSS:
      return "Run `tidings verify`; restore the store from a backup or re-sync it";
    case TIDINGS_INTERNAL:
      return "This is a bug in Tidings; please report it";
    default:
      return nullptr;
  }
}

}  // namespace

int Fail(const api::Status& s) {
  std::string m = s.message().empty() ? s.code_name() : s.message();
  while (!m.empty() && (m.back() == '.' || m.back() == ' ')) m.pop_back();
  m += '.';
  if (const char* advice = Advice(s.code()); advice && m.find(advice) == std::string::npos) {
    m += ' ';
    m += advice;
    m += '.';
  }
  std::fprintf(stderr, "tidings: %s\n", m.c_str());
  return ExitCodeFor(s.code());
}

api::Result<std::string> StorePath(const Globals& g) {
  if (!g.store.empty()) return g.store;
  if (const char* s = std::getenv("TIDINGS_STORE"); s && *s) return std::string(s);
  return Usage("no store given. Pass --store DIR or set TIDINGS_STORE");
}

std::string KeyFilePath(const Globals& g) {
  if (!g.key_file.empty()) return g.key_file;
  if (const char* f = std::getenv("TIDINGS_KEY_FILE"); f && *f) return f;
  return "";
}

std::string DefaultKeyFile(const std::string& store_path) {
  return daemon::KeyFileBesideStore(store_path);
}

namespace {

// The terminal's settings while echo is off, restored on Ctrl-C too.
int g_tty_fd = -1;
termios g_tty_saved{};

void RestoreTty(int sig) {
  if (g_tty_fd >= 0) ::tcsetattr(g_tty_fd, TCSAFLUSH, &g_tty_saved);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

// A passphrase typed at the prompt, read byte by byte into one page that is
// locked in RAM, left out of core dumps and zeroed before it is unmapped: no
// growing string leaves copies of it in freed memory.
class PromptBuffer {
 public:
  static constexpr size_t kCapacity = 4096;
  PromptBuffer() {
    void* m =
        ::mmap(nullptr, kCapacity, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return;
    data_ = static_cast<char*>(m);
    ::mlock(data_, kCapacity);  // best effort: RLIMIT_MEMLOCK may refuse
    ::madvise(data_, kCapacity, MADV_DONTDUMP);
  }
  ~PromptBuffer() {
    if (data_ == nullptr) return;
    ::explicit_bzero(data_, kCapacity);
    ::munlock(data_, kCapacity);
    ::munmap(data_, kCapacity);
  }
  PromptBuffer(const PromptBuffer&) = delete;
  PromptBuffer& operator=(const PromptBuffer&) = delete;

  // False when the buffer is full (or could not be mapped).
  bool Push(char c) {
    if (data_ == nullptr || size_ == kCapacity) return false;
    data_[size_++] = c;
    return true;
  }
  std::string_view view() const { return {data_ == nullptr ? "" : data_, size_}; }
  bool overflowed() const { return overflowed_; }
  void set_overflowed() { overflowed_ = true; }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
  bool overflowed_ = false;
};

// Reads a line from the controlling terminal with echo off. Uses /dev/tty,
// not stdin, so `send` can still read a body from stdin. Returns false when
// there is no terminal.
bool PromptSecret(const char* prompt, PromptBuffer* out) {
  int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  termios old{};
  if (::tcgetattr(fd, &old) != 0) {
    ::close(fd);
    return false;
  }
  g_tty_saved = old;
  g_tty_fd = fd;
  auto previous = ::signal(SIGINT, RestoreTty);
  termios quiet = old;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  ::tcsetattr(fd, TCSAFLUSH, &quiet);
  ssize_t ignored = ::write(fd, prompt, std::strlen(prompt));
  char c;
  while (::read(fd, &c, 1) == 1 && c != '\n') {
    if (!out->Push(c)) out->set_overflowed();
  }
  c = 0;
  ::tcsetattr(fd, TCSAFLUSH, &old);
  ignored = ::write(fd, "\n", 1);
  (void)ignored;
  ::signal(SIGINT, previous);
  g_tty_fd = -1;
  ::close(fd);
  return true;
}

}  // namespace

api::Result<api::Key> ResolveKey(const Globals& g) {
  if (std::string file = KeyFilePath(g); !file.empty()) return api::Key::File(file);
  if (auto p = daemon::EnvPassphrase()) return api::Key::Passphrase(*p);
  // Where `init` put the key. Its mode is checked when the store opens.
  std::string beside;
  if (auto path = StorePath(g); path.ok()) {
    beside = DefaultKeyFile(*path);
    if (struct stat st{}; ::stat(beside.c_str(), &st) == 0) return api::Key::File(beside);
  }
  PromptBuffer phrase;
  if (PromptSecret("Passphrase: ", &phrase)) {
    if (phrase.overflowed()) return Usage("the passphrase is longer than 4096 bytes");
    return api::Key::Passphrase(phrase.view());
  }
  return Usage("no key given" + (beside.empty() ? "" : " and no key file at " + beside) +
               ". Pass --key-file FILE (or set TIDINGS_KEY_FILE), or set TIDINGS_PASSPHRASE, or "
               "run on a terminal to be asked");
}

api::Result<api::Key> NewPassphrase(const char* env) {
  if (auto p = daemon::EnvPassphrase(env)) {
    if (p->empty()) return Usage(std::string(env) + " is empty. Set a passphrase");
    return api::Key::Passphrase(*p);
  }
  PromptBuffer first, second;
  if (!PromptSecret("New passphrase: ", &first)) {
    return Usage(std::string("no terminal to ask for a passphrase. Set ") + env);
  }
  if (!PromptSecret("Repeat it: ", &second) || first.view() != second.view()) {
    return Usage("the passphrases differ. Run the command again");
  }
  if (first.overflowed())
    return Usage("the passphrase is longer than 4096 bytes. Choose a shorter one");
  if (first.view().empty()) return Usage("the passphrase is empty. Choose one");
  return api::Key::Passphrase(first.view());
}

api::Result<api::Store> OpenStore(const Globals& g, Access access) {
  auto path = StorePath(g);
  if (!path.ok()) return path.status();
  auto key = ResolveKey(g);
  if (!key.ok()) return key.status();
  api::OpenOptions o;
  o.read_only = access == Access::kRead;
  return api::Store::Open(*path, *key, o);
}

}  // namespace tidings::cli
