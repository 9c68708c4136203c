// MessagingSession: the client of Chime's messaging WebSocket, the push
// channel behind ChimeBackend::StartRealtime. It runs its own thread:
//
//   resolve   GetMessagingSessionEndpoint (REST, its own AwsRestClient: the
//             backend's client belongs to the sync thread) -> "host[:port]"
//   connect   wss://<host>/connect?userArn=..&sessionId=.. presigned with
//             SigV4 (service "chime") and the credentials as they are now
//             (a provider may have refreshed them), at the server's time (a
//             skewed device clock still connects), over TLS verified against
//             the system's CAs plus AWS_CA_BUNDLE, host name checked
//   run       every text frame {"Headers":{"x-amz-chime-event-type":T,..},
//             "Payload":P} is handed on as a RealtimeEvent; frames before
//             SESSION_ESTABLISHED are dropped (not trusted to be complete);
//             a ping after ping_interval_ms of silence, and no answer within
//             another ping_interval_ms is a dead socket
//   reconnect on close codes 1001, 1006 (also: any transport failure, a
//             refused handshake, a failed resolve), 1011-1014 and > 4000
//             except 4002/4003 (kicked) and 4401 (unauthorized), after a
//             full-jitter backoff: uniform in [0, min(max, base * 2^n)], n
//             failures since the last SESSION_ESTABLISHED; any other close
//             code ends the session for good (until Poke or a new Start)
//
// The listener gets kEstablished, kLost (with a reason: never a URL, a key
// or message text) and kEvent on the session's thread; it must only queue.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "common/status.h"
#include "sync/aws/credentials.h"
#include "sync/backend.h"
#include "sync/http/http_client.h"

namespace tidings::chime {

struct MessagingSessionConfig {
  std::string user_arn;       // the AppInstanceUser (userArn, and the bearer)
  std::string region;         // SigV4 region of the presigned URL
  std::string rest_endpoint;  // scheme://host[:port] of the REST API
  // Shared with the backend's REST client: Get() is called from both
  // threads (every provider in sync/aws and the API's is thread-safe).
  std::shared_ptr<aws::CredentialsProvider> credentials;
  // A fresh transport for GetMessagingSessionEndpoint (one per connect).
  // Empty: libcurl.
  std::function<std::unique_ptr<http::HttpClient>()> make_http;
  // CA file trusted besides the system's; empty: AWS_CA_BUNDLE if set.
  std::string ca_file;
  int64_t ping_interval_ms = 30'000;
  int64_t connect_timeout_ms = 10'000;  // TCP + TLS + upgrade + SESSION_ESTABLISHED
  int64_t base_backoff_ms = 1'000;
  int64_t max_backoff_ms = 30'000;
  int presign_expires_s = 60;
  // Seams for tests: uniform 64-bit randomness (backoff jitter, session id)
  // and Unix ms (the presign time). Empty: random_device, and the server's
  // time as the GetMessagingSessionEndpoint answer's Date header showed it
  // (the system clock corrected by the REST client when it is over a minute
  // off).
  std::function<uint64_t()> random;
  std::function<int64_t()> wall_clock_ms;
};

class MessagingSession {
 public:
  explicit MessagingSession(MessagingSessionConfig config);
  ~MessagingSession();  // Stop()s
  MessagingSession(const MessagingSession&) = delete;
  MessagingSession& operator=(const MessagingSession&) = delete;

  // Starts the thread, which connects at once. FailedPrecondition if
  // started.
  Status Start(sync::RealtimeListener listener);
  // Closes the socket and joins the thread; prompt (a REST call in flight is
  // cancelled). Idempotent.
  void Stop();
  // Connect now: ends a backoff wait, and retries a session ended for good.
  // A no-op while connected or not started.
  void Poke();
  // SESSION_ESTABLISHED was received on the socket that is open now.
  bool established() const;

  class Impl;  // the thread's state (messaging_session.cc)

 private:
  const MessagingSessionConfig config_;
  mutable std::mutex mu_;       // serialises Start, Stop, Poke
  std::unique_ptr<Impl> impl_;  // REQUIRES: mu_
  std::thread thread_;          // REQUIRES: mu_
};

// ---- The protocol's rules, exposed for tests ----

// Whether a socket closed with `code` (1006: closed without a close frame)
// may be reconnected.
bool ShouldReconnect(int close_code);
// Full jitter: uniform in [0, min(max_ms, base_ms * 2^failures)], from `r`.
int64_t FullJitterMs(uint32_t failures, int64_t base_ms, int64_t max_ms, uint64_t r);
// The unsigned connect URL: wss://<endpoint>/connect?sessionId=..&userArn=..
std::string ConnectUrl(const std::string& endpoint, const std::string& user_arn,
                       const std::string& session_id);

// One server frame: the event type and the payload string.
struct SessionFrame {
  std::string type;          // x-amz-chime-event-type
  std::string message_type;  // x-amz-chime-message-type
  std::string payload;       // the Payload string as is
};
// InvalidArgument for anything that is not such a frame.
Result<SessionFrame> ParseSessionFrame(std::string_view text);
// GetMessagingSessionEndpoint's Endpoint.Url. InvalidArgument if absent.
Result<std::string> ParseSessionEndpoint(std::string_view body);

}  // namespace tidings::chime
