#include "daemon/socket_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "daemon/log.h"

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

SocketServer::SocketServer(api::Store* store, const std::string& store_path, ExecuteHooks hooks,
                           std::function<void(const std::string&, const std::string&)> count)
    : store_(store), hooks_(std::move(hooks)), count_(std::move(count)) {
  path_ = store_path + "/" + kSocketName;
}

SocketServer::~SocketServer() { Stop(); }

Status SocketServer::Start() {
  TIDINGS_RETURN_IF_ERROR(FromApi(api::RotateAuthSecret(*store_)));

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
  if (listen_fd_ < 0)
    return IOError(std::string("cannot create a socket: ") + std::strerror(errno));
  mode_t old = ::umask(0177);  // created 0600, never briefly wider
  int rc = ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int bind_errno = errno;
  ::umask(old);
  if (rc != 0 || ::chmod(path_.c_str(), 0600) != 0 || ::listen(listen_fd_, 64) != 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    return IOError("cannot listen on " + path_ + ": " +
                   std::strerror(rc != 0 ? bind_errno : errno));
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
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Ends reads only: a request being executed still commits and answers.
    for (auto& [fd, c] : clients_) ::shutdown(fd, SHUT_RD);
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
  auto wait = std::chrono::milliseconds(1000);
  while (!stopping_) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    int n = ::poll(fds, 2, static_cast<int>(wait.count()));
    {
      std::list<std::thread> done;
      {
        std::lock_guard<std::mutex> lock(mu_);
        done.swap(finished_);
        wait = ExpireHandshakes();
      }
      for (auto& t : done) t.join();
    }
    if (n <= 0 || stopping_) continue;
    if (!(fds[0].revents & POLLIN)) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    SetTimeouts(fd);
    std::lock_guard<std::mutex> lock(mu_);
    EvictOldestHandshake();
    Client& c = clients_[fd];
    c.accepted = std::chrono::steady_clock::now();
    c.thread = std::thread([this, fd] { Serve(fd); });
    wait = std::min(wait, std::chrono::milliseconds(kHandshakeDeadline));
  }
}

std::chrono::milliseconds SocketServer::ExpireHandshakes() {
  const auto now = std::chrono::steady_clock::now();
  auto next = std::chrono::milliseconds(1000);
  for (auto& [fd, c] : clients_) {
    if (c.authenticated || c.closing) continue;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        c.accepted + kHandshakeDeadline - now);
    if (left.count() <= 0) {
      // The fd stays open (its thread closes it), so it cannot be reused yet.
      ::shutdown(fd, SHUT_RDWR);
      c.closing = true;
      count_("handshake", "DEADLINE_EXCEEDED");
    } else {
      next = std::min(next, left + std::chrono::milliseconds(1));
    }
  }
  return next;
}

void SocketServer::EvictOldestHandshake() {
  size_t pending = 0;
  std::map<int, Client>::iterator oldest = clients_.end();
  for (auto it = clients_.begin(); it != clients_.end(); ++it) {
    if (it->second.authenticated || it->second.closing) continue;
    ++pending;
    if (oldest == clients_.end() || it->second.accepted < oldest->second.accepted) oldest = it;
  }
  if (pending < kMaxHandshakes) return;
  ::shutdown(oldest->first, SHUT_RDWR);
  oldest->second.closing = true;
  count_("handshake", "RESOURCE_EXHAUSTED");
}

bool SocketServer::Promote(int fd) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t serving = 0;
  for (const auto& [other, c] : clients_) serving += c.authenticated && !c.closing ? 1 : 0;
  auto it = clients_.find(fd);
  if (it == clients_.end() || it->second.closing || serving >= kMaxClients) return false;
  it->second.authenticated = true;
  return true;
}

bool SocketServer::Authenticate(int fd) {
  const std::string nonce = NewNonce();
  if (!WriteFrame(fd, Fields{{"op", "hello"}, {"version", "1"}, {"nonce", nonce}}).ok()) {
    return false;
  }
  auto auth = ReadFrame(fd);
  if (!auth.ok()) return false;
  const std::string client_nonce = auth->Get("nonce");
  auto expected = AuthMac(*store_, "client", nonce, client_nonce);
  if (!expected.ok()) {
    WriteFrame(fd, ErrorFields(expected.status())).IgnoreError();
    return false;
  }
  const bool good = auth->Get("op") == "auth" && client_nonce.size() == kNonceBytes &&
                    SameMac(auth->Get("mac"), *expected);
  if (!good) {
    Log(LogLevel::kWarn, "socket.auth_refused",
        {{"reason", "the client did not prove it holds the store key"}});
    count_("auth", "UNAUTHENTICATED");
    WriteFrame(fd, ErrorFields(Unauthenticated(
                       "the daemon refused the connection: the key does not match this store")))
        .IgnoreError();
    return false;
  }
  auto answer = AuthMac(*store_, "server", client_nonce, nonce);
  if (!answer.ok()) {
    WriteFrame(fd, ErrorFields(answer.status())).IgnoreError();
    return false;
  }
  if (!Promote(fd)) {
    WriteFrame(fd, ErrorFields(Unavailable("the daemon is serving too many clients; retry")))
        .IgnoreError();
    return false;
  }
  return WriteFrame(fd, Fields{{"op", "ok"}, {"mac", *answer}}).ok();
}

void SocketServer::Serve(int fd) {
  if (Authenticate(fd)) {
    for (;;) {
      auto request = ReadFrame(fd);
      if (!request.ok()) break;
      const std::string op = request->Get("op");
      Fields answer = Execute(*store_, *request, hooks_);
      const std::string result = answer.Get("op") == "ok" ? "ok" : answer.Get("code");
      // A client names the op: unknown names share one series, so they
      // cannot grow the metrics page without bound.
      count_(IsRequestOp(op) ? op : "other", result);
      Log(LogLevel::kDebug, "socket.request", {{"op", op}, {"result", result}});
      if (!WriteFrame(fd, answer).ok()) break;
    }
  }
  // Closed under the lock, after leaving the map: the fd number may be
  // reused by the next accept at once.
  std::lock_guard<std::mutex> lock(mu_);
  auto it = clients_.find(fd);
  if (it != clients_.end()) {
    finished_.push_back(std::move(it->second.thread));
    clients_.erase(it);
  }
  ::close(fd);
}

}  // namespace tidings::daemon
