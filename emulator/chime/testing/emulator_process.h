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

#include "common/status.h"

namespace chime_local::testing {

struct EmulatorFaults {
  double throttle = 0, error = 0, commit_then_fail = 0;
  int latency_ms = 0;
  uint64_t seed = 0;
};

struct EmulatorOptions {
  std::string access_key = "AKIDTIDINGSLOCAL";
  std::string secret_key = "tidings-local-secret";
  std::string region = "us-east-1";
  std::string data_dir;   // empty: state in memory only
  EmulatorFaults faults;  // from the start (command-line flags)
  std::string binary;     // empty: the one built with this tree
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
  tidings::Status Restart();  // SIGTERM, wait, start again (the port may change)
  tidings::Status Stop();     // SIGTERM; OK if it exited 0

 private:
  explicit EmulatorProcess(EmulatorOptions options) : options_(std::move(options)) {}
  tidings::Status Launch();

  EmulatorOptions options_;
  std::string endpoint_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace chime_local::testing
