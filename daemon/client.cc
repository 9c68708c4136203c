#include "daemon/client.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

#include "common/clock.h"
#include "common/lines.h"

namespace tidings::daemon {
namespace {

Result<api::Store> OpenStore(const std::string& path, const api::Key& key, bool read_only) {
  api::OpenOptions o;
  o.read_only = read_only;
  auto store = api::Store::Open(path, key, o);
  if (!store.ok()) return FromApi(store.status());
  return std::move(store).value();
}

constexpr int64_t kAnswerWaitMs = 30'000;
constexpr uint64_t kSlowestEncryptBytesPerMs = 5'000;  // 5 MB/s

// A UUIDv7 (48-bit Unix ms, then random bits) chosen before the first
// attempt, so a send retried after a lost answer is recognised.
std::string NewMessageId() {
  const auto ms = static_cast<uint64_t>(WallMs());
  std::string random = NewNonce();
  unsigned char b[16];
  for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  std::memcpy(b + 6, random.data(), 10);
  b[6] = static_cast<unsigned char>(0x70 | (b[6] & 0x0f));  // version 7
  b[8] = static_cast<unsigned char>(0x80 | (b[8] & 0x3f));  // RFC 9562 variant
  static const char kHex[] = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) id += '-';
    id += kHex[b[i] >> 4];
    id += kHex[b[i] & 0xf];
  }
  return id;
}

// fd >= 0 connected; -1 no daemon listening (ENOENT / ECONNREFUSED).
int Connect(const std::string& socket_path, int64_t wait_ms) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path)) return -1;
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(wait_ms / 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return fd;
}

// Kinds of outcome of one attempt through the socket.
enum class Attempt { kAnswered, kRetry, kRefused };

Attempt TrySocket(int fd, api::Store& store, const Fields& request, Fields* answer, Status* error) {
  auto hello = ReadFrame(fd);
  if (!hello.ok()) return Attempt::kRetry;
  if (hello->Get("op") == "error") {
    *error = StatusFromFields(*hello);
    return error->code() == Code::kUnavailable ? Attempt::kRetry : Attempt::kRefused;
  }
  const std::string server_nonce = hello->Get("nonce");
  if (hello->Get("op") != "hello" || server_nonce.size() != kNonceBytes) {
    *error = FailedPrecondition("the daemon speaks another protocol version; upgrade tidings");
    return Attempt::kRefused;
  }
  const std::string nonce = NewNonce();
  auto mac = AuthMac(store, "client", server_nonce, nonce);
  if (!mac.ok()) {
    *error = mac.status();
    return mac.status().code() == Code::kUnavailable ? Attempt::kRetry : Attempt::kRefused;
  }
  if (!WriteFrame(fd, Fields{{"op", "auth"}, {"nonce", nonce}, {"mac", *mac}}).ok()) {
    return Attempt::kRetry;
  }
  auto ok = ReadFrame(fd);
  if (!ok.ok()) return Attempt::kRetry;
  if (ok->Get("op") != "ok") {
    *error = StatusFromFields(*ok);
    // Unavailable: every client slot is taken for now.
    return error->code() == Code::kUnavailable ? Attempt::kRetry : Attempt::kRefused;
  }
  auto expected = AuthMac(store, "server", nonce, server_nonce);
  if (!expected.ok() || !SameMac(ok->Get("mac"), *expected)) {
    *error = Unauthenticated("the process on the daemon socket did not prove it holds the store");
    return Attempt::kRefused;
  }
  if (!WriteFrame(fd, request).ok()) return Attempt::kRetry;
  auto reply = ReadFrame(fd);
  if (!reply.ok()) return Attempt::kRetry;  // lost answer: the retry is deduplicated
  if (reply->Get("op") == "error" && reply->Get("code") == CodeName(Code::kUnavailable)) {
    return Attempt::kRetry;
  }
  *answer = std::move(reply).value();
  return Attempt::kAnswered;
}

}  // namespace

int64_t AnswerWaitMs(const Fields& request) {
  uint64_t bytes = 0;
  if (request.Get("op") == "send") {
    for (const auto& path : SplitLines(request.Get("attach"))) {
      struct stat st {};
      if (::stat(path.c_str(), &st) == 0 && st.st_size > 0)
        bytes += static_cast<uint64_t>(st.st_size);
    }
  }
  return kAnswerWaitMs + static_cast<int64_t>(bytes / kSlowestEncryptBytesPerMs);
}

bool DaemonSocketPresent(const std::string& store_path) {
  struct stat st {};
  return ::lstat((store_path + "/" + kSocketName).c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

Result<Fields> CallDaemon(const std::string& store_path, const api::Key& key, Fields request,
                          int64_t deadline_ms) {
  if (request.Get("op") == "send" && request.Get("id").empty()) request.Add("id", NewMessageId());
  const std::string socket_path = store_path + "/" + kSocketName;
  const int64_t wait_ms = AnswerWaitMs(request);
  const int64_t deadline = MonotonicMs() + deadline_ms + (wait_ms - kAnswerWaitMs);
  // A read-only handle, for the MACs under the daemon's current secret; a
  // daemon that restarted has a new one, so it is reopened after failures.
  std::optional<api::Store> reader;
  int auth_refusals = 0;
  Status last = Busy("the store stayed busy and no daemon answered on " + socket_path +
                     "; check that the daemon runs (`systemctl status tidings-daemon`)");
  for (int attempt = 0; MonotonicMs() < deadline; ++attempt) {
    if (attempt > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(attempt < 10 ? 20 : 100));
    int fd = Connect(socket_path, wait_ms);
    if (fd < 0) {
      // No daemon listening: write directly once the lock is free.
      reader.reset();
      auto store = OpenStore(store_path, key, /*read_only=*/false);
      if (store.ok()) return Execute(*store, request, {});
      if (store.status().code() != Code::kBusy) return store.status();
      last = store.status();
      continue;
    }
    if (!reader) {
      auto opened = OpenStore(store_path, key, /*read_only=*/true);
      if (!opened.ok()) {
        ::close(fd);
        const Code code = opened.status().code();
        if (code == Code::kWrongKey || code == Code::kNotFound || code == Code::kPermissionDenied) {
          return opened.status();
        }
        last = opened.status();
        continue;
      }
      reader = std::move(opened).value();
    }
    Fields answer;
    Status error;
    Attempt a = TrySocket(fd, *reader, request, &answer, &error);
    ::close(fd);
    if (a == Attempt::kAnswered) return answer;
    if (a == Attempt::kRefused) {
      // The daemon may have restarted with a new secret: read it once more.
      if (error.code() == Code::kUnauthenticated && ++auth_refusals < 2) {
        reader.reset();
        last = error;
        continue;
      }
      return error;
    }
    if (!error.ok()) last = error;
    reader.reset();  // a restart makes a new secret
  }
  return last;
}

}  // namespace tidings::daemon
