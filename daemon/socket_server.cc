#include "daemon/socket_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "crypto/hash.h"
#include "daemon/log.h"
#include "engine/sync_log.h"

namespace tidings::daemon {
namespace {

constexpr int kIdleTimeoutS = 30;  // a silent client is dropped after this

void SetTimeouts(int fd) {
  timeval tv{};
  tv.tv_sec = kIdleTimeoutS;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

}  // namespace

SocketServer::SocketServer(engine::Store* store, ExecuteHooks hooks,
                           std::function<void(const std::string&, const std::string&)> count)
    : store_(store), hooks_(std::move(hooks)), count_(std::move(count)) {
  path_ = store_->path() + "/" + kSocketName;
}

SocketServer::~SocketServer() { Stop(); }

Status SocketServer::Start() {
  std::string secret(32, '\0');
  crypto::RandomBytes(reinterpret_cast<uint8_t*>(secret.data()), secret.size());
  TIDINGS_RETURN_IF_ERROR(store_->sync_log().PutSyncState(kSocketSecretKey, secret));
  secret_ = std::move(secret);

  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof(addr.sun_path)) {
    return InvalidArgument("the socket path " + path_ + " is longer than " +
                           std::to_string(sizeof(addr.sun_path) - 1) +
                           " bytes; use a shorter store path or set socket.enabled = false");
  }
  std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
  // We hold the store's writer lock, so a socket file here is a leftover of a
  // daemon that was killed: replace it.
  ::unlink(path_.c_str());
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return IOError(std::string("cannot create a socket: ") + std::strerror(errno));
  mode_t old = ::umask(0177);  // created 0600, never briefly wider
  int rc = ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int bind_errno = errno;
  ::umask(old);
  if (rc != 0 || ::chmod(path_.c_str(), 0600) != 0 || ::listen(listen_fd_, 64) != 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    return IOError("cannot listen on " + path_ + ": " + std::strerror(rc != 0 ? bind_errno : errno));
  }
  if (::pipe2(wake_, O_CLOEXEC) != 0) return IOError("cannot create a pipe");
  stopping_ = false;
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return Status::Ok();
}

void SocketServer::Stop() {
  if (listen_fd_ < 0) return;
  stopping_ = true;
  char b = 1;
  ssize_t ignored = ::write(wake_[1], &b, 1);
  (void)ignored;
  if (acceptor_.joinable()) acceptor_.join();
  std::map<int, std::thread> clients;
  std::list<std::thread> finished;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Ends reads only: a request being executed still commits and answers.
    for (auto& [fd, t] : clients_) ::shutdown(fd, SHUT_RD);
  }
  for (;;) {
    std::thread t;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!finished_.empty()) {
        t = std::move(finished_.front());
        finished_.pop_front();
      } else if (clients_.empty()) {
        break;
      }
    }
    if (t.joinable()) {
      t.join();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  ::unlink(path_.c_str());
  ::close(listen_fd_);
  listen_fd_ = -1;
  ::close(wake_[0]);
  ::close(wake_[1]);
  wake_[0] = wake_[1] = -1;
}

void SocketServer::AcceptLoop() {
  while (!stopping_) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    int n = ::poll(fds, 2, 1000);
    {
      std::list<std::thread> done;
      {
        std::lock_guard<std::mutex> lock(mu_);
        done.swap(finished_);
      }
      for (auto& t : done) t.join();
    }
    if (n <= 0 || stopping_) continue;
    if (!(fds[0].revents & POLLIN)) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    SetTimeouts(fd);
    std::lock_guard<std::mutex> lock(mu_);
    if (clients_.size() >= kMaxClients) {
      WriteFrame(fd, ErrorFields(Unavailable("the daemon is serving too many clients; retry")))
          .IgnoreError();
      ::close(fd);
      continue;
    }
    clients_.emplace(fd, std::thread([this, fd] { Serve(fd); }));
  }
}

bool SocketServer::Authenticate(int fd) {
  std::string nonce(kNonceBytes, '\0');
  crypto::RandomBytes(reinterpret_cast<uint8_t*>(nonce.data()), nonce.size());
  if (!WriteFrame(fd, Fields{{"op", "hello"}, {"version", "1"}, {"nonce", nonce}}).ok()) {
    return false;
  }
  auto auth = ReadFrame(fd);
  if (!auth.ok()) return false;
  const std::string client_nonce = auth->Get("nonce");
  const bool good = auth->Get("op") == "auth" && client_nonce.size() == kNonceBytes &&
                    crypto::ConstantTimeEquals(auth->Get("mac"),
                                               AuthMac(secret_, "client", nonce, client_nonce));
  if (!good) {
    Log(LogLevel::kWarn, "socket.auth_refused",
        {{"reason", "the client did not prove it holds the store key"}});
    count_("auth", "UNAUTHENTICATED");
    WriteFrame(fd, ErrorFields(Unauthenticated(
                       "the daemon refused the connection: the key does not match this store")))
        .IgnoreError();
    return false;
  }
  return WriteFrame(fd, Fields{{"op", "ok"},
                               {"mac", AuthMac(secret_, "server", client_nonce, nonce)}})
      .ok();
}

void SocketServer::Serve(int fd) {
  if (Authenticate(fd)) {
    for (;;) {
      auto request = ReadFrame(fd);
      if (!request.ok()) break;
      const std::string op = request->Get("op");
      Fields answer = Execute(*store_, *request, hooks_);
      const std::string result = answer.Get("op") == "ok" ? "ok" : answer.Get("code");
      count_(op, result);
      Log(LogLevel::kDebug, "socket.request", {{"op", op}, {"result", result}});
      if (!WriteFrame(fd, answer).ok()) break;
    }
  }
  // Closed under the lock, after leaving the map: the fd number may be
  // reused by the next accept at once.
  std::lock_guard<std::mutex> lock(mu_);
  auto it = clients_.find(fd);
  if (it != clients_.end()) {
    finished_.push_back(std::move(it->second));
    clients_.erase(it);
  }
  ::close(fd);
}

}  // namespace tidings::daemon
