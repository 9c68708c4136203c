// One conformance suite for every sync::Backend (backend_conformance_test.cc)
// runs over these harnesses: each starts its server once per test process and
// hands out backends that act for a user, as a device (or a new process of
// one) would open them.
//
//   sim         the simulator's in-memory server (tests/sync/sim_backend.h),
//               no faults; sealed logs as DynamoDB (no authenticated senders,
//               a device directory)
//   sim_auth    the same, with sealed logs as Chime (authenticated senders,
//               members-only logs, no directory)
//   fake_chime  ChimeBackend over the in-process fake (tests/chime/fake_chime.h)
//   emulator    ChimeBackend over tidings-chime-local on 127.0.0.1 (SigV4 on)
//   moto        DynamoBackend over moto_server on 127.0.0.1 (SigV4 and IAM on)
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "sync/backend.h"

namespace tidings::conformance {

class BackendHarness {
 public:
  virtual ~BackendHarness() = default;

  // A new backend for `user` that shares nothing with earlier ones but the
  // server.
  virtual std::unique_ptr<sync::Backend> Connect(const std::string& user) = 0;
  // The server lists a conversation only to its members (ListConversations
  // is per user). The simulator lists every conversation to everyone.
  virtual bool lists_by_member() const = 0;
};

// The names Harness() knows, in the order the suite runs them.
const std::vector<std::string>& HarnessNames();

// The harness of that name, started on first use and kept (with its server)
// until the process exits. An error says why the server could not start.
Result<BackendHarness*> Harness(std::string_view name);

// Whether a listing holds `x`.
inline bool Contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace tidings::conformance
