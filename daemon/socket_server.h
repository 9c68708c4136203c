// The daemon's side of the local socket (protocol.h): accepts clients,
// authenticates them by challenge-response, and runs their writes through the
// daemon's store, answering only after the commit.
//
// Thread safety: Start and Stop from one thread; connections are served on
// their own threads.
//
// Idle connections cannot starve clients: a connection must finish the
// handshake within kHandshakeDeadline or it is closed, and at most
// kMaxHandshakes may be in the handshake at once (a new one closes the
// oldest). Authenticated clients have their own kMaxClients slots.
#pragma once

#include <atomic>
#include <chrono>
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
  static constexpr size_t kMaxClients = 16;     // authenticated
  static constexpr size_t kMaxHandshakes = 16;  // not yet authenticated
  static constexpr std::chrono::milliseconds kHandshakeDeadline{3000};

  struct Client {
    std::thread thread;
    std::chrono::steady_clock::time_point accepted;
    bool authenticated = false;
    bool closing = false;  // shut down by the server; the thread is ending
  };

  void AcceptLoop();
  // Shuts down handshakes past their deadline; returns the time until the
  // next deadline. REQUIRES: mu_ held
  std::chrono::milliseconds ExpireHandshakes();
  // Makes room for a new handshake by closing the oldest. REQUIRES: mu_ held
  void EvictOldestHandshake();
  // A client that just authenticated takes a client slot; false when all
  // are taken.
  bool Promote(int fd);
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
  std::map<int, Client> clients_;    // by fd; REQUIRES: mu_
  std::list<std::thread> finished_;  // to join; REQUIRES: mu_
};

}  // namespace tidings::daemon
