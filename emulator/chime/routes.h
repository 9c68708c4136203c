// HTTP <-> State for tidings-chime-local: routing of the botocore
// chime-sdk-messaging request shapes (rest-json) into Calls, SigV4, fault
// injection, the journal, and the admin endpoints under /_emulator/.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "emulator/chime/auth.h"
#include "emulator/chime/state.h"

namespace chime_local {

struct Faults {
  double throttle = 0, error = 0, commit_then_fail = 0;  // probabilities per request
  int latency_ms = 0;
  uint64_t seed = 0;
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string data_dir;  // empty: in memory
  // The messaging WebSocket (wss://host:ws_port/connect), on only with both.
  std::string tls_cert, tls_key;  // PEM files
  int ws_port = 0;                // 0: ephemeral
  AuthConfig auth;
  Faults faults;
};

// METHOD + raw target (path still percent-encoded, query) + body -> Call.
// NotFound for a route the emulator does not serve, InvalidArgument for a
// malformed body or encoding.
tidings::Result<Call> ParseRequest(const std::string& method, const std::string& target,
                                   const std::string& body);

class Server {
 public:
  // Replays --data-dir's journal; does not listen yet.
  static tidings::Result<std::unique_ptr<Server>> Create(const ServerOptions& options);
  ~Server();
  tidings::Result<int> Bind();  // the port (ephemeral with port 0)
  void Run();                   // serves until Stop()
  void Stop();
  // Waits for the mutation in progress (if any) and blocks all others, so
  // the process may exit at once: every acknowledged mutation is already in
  // the journal, and idle keep-alive connections need not time out first.
  void Quiesce();

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace chime_local
