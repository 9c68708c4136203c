// The messaging WebSocket of tidings-chime-local: a TLS listener serving
// `/connect` (a SigV4 query-presigned URL naming `userArn` and `sessionId`),
// SESSION_ESTABLISHED, and the fan-out of Events to every session of their
// recipients, framed as the Chime SDK's DefaultMessagingSession reads them.
// Plain C++ here; Boost.Beast/Asio/OpenSSL stay inside realtime.cc.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "emulator/chime/auth.h"
#include "emulator/chime/state.h"

namespace chime_local {

struct RealtimeOptions {
  std::string host = "127.0.0.1";
  int port = 0;                     // 0: ephemeral
  std::string cert_file, key_file;  // PEM
  AuthConfig auth;
};

class Realtime {
 public:
  // Loads the certificate, binds and starts serving on its own threads.
  static tidings::Result<std::unique_ptr<Realtime>> Start(const RealtimeOptions& options);
  ~Realtime();
  Realtime(const Realtime&) = delete;
  Realtime& operator=(const Realtime&) = delete;

  int port() const;

  // Queues `event` for every open session of its recipients, in call order.
  void Publish(const Event& event);

  // Fault switches (routes.cc's /_emulator/ endpoints). `user` empty: all.
  // code 0 drops the TCP connection without a close frame (the client sees
  // 1006); otherwise a close frame with that code (1012, 4003, ...).
  // Returns how many sessions were closed.
  size_t Drop(const std::string& user, int code);
  // Events wait this long before they are sent (order kept).
  void SetDelayMs(int delay_ms);
  // refuse_status > 0: upgrades are answered with that HTTP status (503);
  // refuse_close > 0: accepted, then closed with that code (1011) before
  // SESSION_ESTABLISHED. Both 0: connects work.
  void SetRefuse(int refuse_status, int refuse_close);
  size_t sessions() const;

  struct Impl;  // realtime.cc

 private:
  explicit Realtime(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace chime_local
