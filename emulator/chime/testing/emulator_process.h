// Runs the real tidings-chime-local binary for tests and benchmarks: on
// 127.0.0.1 with an ephemeral port (read from its "listening on" line), with
// fault injection through /_emulator/faults, restart over the same
// --data-dir, and no orphan process (the destructor stops it; the child
// also dies with its parent).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "common/status.h"

namespace chime_local::testing {

struct EmulatorFaults {
  double throttle = 0, error = 0, commit_then_fail = 0;
  int latency_ms = 0;
  uint64_t seed = 0;
};

// A throwaway CA and a certificate for 127.0.0.1 signed by it, made with the
// `openssl` command in `dir` (ca.pem, cert.pem, key.pem): clients trust
// ca_file (AWS_CA_BUNDLE, NODE_EXTRA_CA_CERTS), the emulator serves the rest.
struct TestTls {
  std::string ca_file, cert_file, key_file;
};
tidings::Result<TestTls> MakeTestTls(const std::string& dir);

// The messaging WebSocket's fault switches (POST /_emulator/realtime/faults).
struct RealtimeFaults {
  int delay_ms = 0;       // events wait this long (order kept)
  int refuse_status = 0;  // e.g. 503: upgrades refused with this HTTP status
  int refuse_close = 0;   // e.g. 1011: accepted, then closed before SESSION_ESTABLISHED
};

struct EmulatorOptions {
  std::string access_key = "AKIDTIDINGSLOCAL";
  std::string secret_key = "tidings-local-secret";
  std::string region = "us-east-1";
  std::string data_dir;   // empty: state in memory only
  EmulatorFaults faults;  // from the start (command-line flags)
  std::string binary;     // empty: the one built with this tree
  // Both set: the messaging WebSocket is on (wss://127.0.0.1:ws_port/connect).
  // Restart() keeps its port, so clients that cached the endpoint reconnect.
  std::string tls_cert, tls_key;
  int start_timeout_ms = 10000;
};

class EmulatorProcess {
 public:
  static tidings::Result<std::unique_ptr<EmulatorProcess>> Start(EmulatorOptions options);
  ~EmulatorProcess();
  EmulatorProcess(const EmulatorProcess&) = delete;
  EmulatorProcess& operator=(const EmulatorProcess&) = delete;

  const std::string& endpoint() const { return endpoint_; }  // http://127.0.0.1:PORT
  const EmulatorOptions& options() const { return options_; }
  pid_t pid() const { return pid_; }

  tidings::Status SetFaults(const EmulatorFaults& faults);  // POST /_emulator/faults
  // The WebSocket's port (0 when TLS is off) and its open sessions.
  int ws_port() const { return ws_port_; }
  tidings::Result<int> RealtimeSessions();
  // Closes the sessions of `user_arn` (empty: all): code 0 drops the TCP
  // connection (clients see 1006), else a close frame (1012, 4003 kick...).
  // Returns how many were closed.
  tidings::Result<int> DropSockets(const std::string& user_arn, int code);
  tidings::Status SetRealtimeFaults(const RealtimeFaults& faults);
  tidings::Status Restart();  // SIGTERM, wait, start again (the port may change)
  tidings::Status Stop();     // SIGTERM; OK if it exited 0

 private:
  explicit EmulatorProcess(EmulatorOptions options) : options_(std::move(options)) {}
  tidings::Status Launch();
  // One admin request on the HTTP port: the status line's code and the body.
  tidings::Result<std::pair<int, std::string>> Admin(const std::string& method,
                                                     const std::string& path,
                                                     const std::string& body);

  EmulatorOptions options_;
  std::string endpoint_;
  int port_ = 0;
  int ws_port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace chime_local::testing
