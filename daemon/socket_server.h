// The daemon's side of the local socket (protocol.h): accepts clients,
// authenticates them by challenge-response, and runs their writes through the
// daemon's store, answering only after the commit.
//
// Thread safety: Start and Stop from one thread; connections are served on
// their own threads (at most kMaxClients at once; more wait in the backlog).
#pragma once

#include <atomic>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "daemon/protocol.h"

namespace tidings::daemon {

class SocketServer {
 public:
  // `store` (open for writing, in directory `store_path`) must outlive the
  // server. `count` is told each request's op and result ("ok" or the error
  // code name), for metrics.
  SocketServer(api::Store* store, const std::string& store_path, ExecuteHooks hooks,
               std::function<void(const std::string& op, const std::string& result)> count);
  ~SocketServer();  // Stop()s

  // Rotates the store's auth secret (protocol.h), replaces a stale socket
  // left by a killed daemon, binds `<store>/daemon.sock` with mode 0600 and
  // starts accepting. Errors: IOError (cannot bind), store errors.
  Status Start();
  // Stops accepting, lets requests being executed finish (a write already
  // started is committed and answered), closes idle clients, removes the
  // socket file. Idempotent.
  void Stop();
  const std::string& path() const { return path_; }

 private:
  static constexpr int kMaxClients = 16;
  void AcceptLoop();
  void Serve(int fd);
  bool Authenticate(int fd);

  api::Store* store_;
  ExecuteHooks hooks_;
  std::function<void(const std::string&, const std::string&)> count_;
  std::string path_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};  // self-pipe: Stop() wakes the accept loop
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;

  std::mutex mu_;
  std::map<int, std::thread> clients_;  // fd -> thread; REQUIRES: mu_
  std::list<std::thread> finished_;     // to join; REQUIRES: mu_
};

}  // namespace tidings::daemon
