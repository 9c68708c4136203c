#include "daemon/client.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "crypto/hash.h"
#include "crypto/keys.h"
#include "engine/sync_log.h"

namespace tidings::daemon {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Result<crypto::KeySource> MakeKey(const ClientKey& key) {
  switch (key.kind) {
    case ClientKey::Kind::kFile:
      return crypto::KeySource::KeyFile(key.data);
    case ClientKey::Kind::kPassphrase:
      return crypto::KeySource::Passphrase(key.data);
    case ClientKey::Kind::kRaw: {
      TIDINGS_ASSIGN_OR_RETURN(
          auto k, crypto::SecretKey::FromBytes(std::span<const uint8_t>(
                      reinterpret_cast<const uint8_t*>(key.data.data()), key.data.size())));
      return crypto::KeySource::Raw(std::move(k));
    }
  }
  return InvalidArgument("no key");
}

Result<std::unique_ptr<engine::Store>> OpenStore(const std::string& path, const ClientKey& key,
                                                 bool read_only) {
  TIDINGS_ASSIGN_OR_RETURN(auto source, MakeKey(key));
  engine::StoreOptions o;
  o.read_only = read_only;
  return engine::Store::Open(path, std::move(source), o);
}

// The daemon's current socket secret, read from the sealed store: proves we
// hold the key without ever sending it.
Result<std::string> ReadSecret(const std::string& path, const ClientKey& key) {
  TIDINGS_ASSIGN_OR_RETURN(auto store, OpenStore(path, key, /*read_only=*/true));
  TIDINGS_ASSIGN_OR_RETURN(std::string secret, store->sync_log().GetSyncState(kSocketSecretKey));
  if (secret.empty()) return Unavailable("the daemon has not published its socket secret yet");
  return secret;
}

// fd >= 0 connected; -1 no daemon listening (ENOENT / ECONNREFUSED).
int Connect(const std::string& socket_path) {
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
  tv.tv_sec = 30;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return fd;
}

// Kinds of outcome of one attempt through the socket.
enum class Attempt { kAnswered, kRetry, kRefused };

Attempt TrySocket(int fd, const std::string& secret, const Fields& request, Fields* answer,
                  Status* error) {
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
  std::string nonce(kNonceBytes, '\0');
  crypto::RandomBytes(reinterpret_cast<uint8_t*>(nonce.data()), nonce.size());
  if (!WriteFrame(fd, Fields{{"op", "auth"},
                             {"nonce", nonce},
                             {"mac", AuthMac(secret, "client", server_nonce, nonce)}})
           .ok()) {
    return Attempt::kRetry;
  }
  auto ok = ReadFrame(fd);
  if (!ok.ok()) return Attempt::kRetry;
  if (ok->Get("op") != "ok") {
    *error = StatusFromFields(*ok);
    return Attempt::kRefused;
  }
  if (!crypto::ConstantTimeEquals(ok->Get("mac"), AuthMac(secret, "server", nonce, server_nonce))) {
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

bool DaemonSocketPresent(const std::string& store_path) {
  struct stat st {};
  return ::lstat((store_path + "/" + kSocketName).c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

Result<Fields> CallDaemon(const std::string& store_path, const ClientKey& key, Fields request,
                          int64_t deadline_ms) {
  if (request.Get("op") == "send" && request.Get("id").empty()) {
    request.Add("id", engine::NewMessageId(static_cast<uint64_t>(
                          std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count())));
  }
  const std::string socket_path = store_path + "/" + kSocketName;
  const int64_t deadline = NowMs() + deadline_ms;
  std::string secret;
  bool secret_fresh = false;
  int auth_refusals = 0;
  Status last = Busy("the store stayed busy and no daemon answered on " + socket_path +
                     "; check that the daemon runs (`systemctl status tidings-daemon`)");
  for (int attempt = 0; NowMs() < deadline; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(attempt < 10 ? 20 : 100));
    int fd = Connect(socket_path);
    if (fd < 0) {
      // No daemon listening: write directly once the lock is free.
      auto store = OpenStore(store_path, key, /*read_only=*/false);
      if (store.ok()) return Execute(**store, request, {});
      if (store.status().code() != Code::kBusy) return store.status();
      last = store.status();
      continue;
    }
    if (secret.empty() || !secret_fresh) {
      auto s = ReadSecret(store_path, key);
      if (!s.ok()) {
        ::close(fd);
        if (s.status().code() == Code::kWrongKey || s.status().code() == Code::kNotFound ||
            s.status().code() == Code::kPermissionDenied) {
          return s.status();
        }
        last = s.status();
        continue;
      }
      secret = std::move(s).value();
      secret_fresh = true;
    }
    Fields answer;
    Status error;
    Attempt a = TrySocket(fd, secret, request, &answer, &error);
    ::close(fd);
    if (a == Attempt::kAnswered) return answer;
    if (a == Attempt::kRefused) {
      // The daemon may have restarted with a new secret: read it once more.
      if (error.code() == Code::kUnauthenticated && ++auth_refusals < 2) {
        secret_fresh = false;
        last = error;
        continue;
      }
      return error;
    }
    secret_fresh = false;  // a restart makes a new secret
  }
  return last;
}

}  // namespace tidings::daemon
