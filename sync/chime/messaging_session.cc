// The messaging WebSocket over Boost.Beast (TLS: Asio's OpenSSL stream).
// The only file of the client that includes Beast or Asio: one coroutine on
// the session's own io_context does everything, so no lock guards the socket.
#include "sync/chime/messaging_session.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>

#include "sync/aws/aws_client.h"
#include "sync/aws_protocol/sigv4.h"

namespace tidings::chime {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Socket = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;

constexpr int kAbnormalClose = 1006;  // closed without a close frame

// How one connection ended.
struct Outcome {
  bool reconnect = true;
  bool established = false;  // SESSION_ESTABLISHED was received on it
  std::string detail;        // for kLost: no URL, key or message text
};

std::string SessionId(uint64_t a, uint64_t b) {  // a version-4 UUID
  static const char* kHex = "0123456789abcdef";
  uint8_t bytes[16];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(a >> (8 * i));
  for (int i = 0; i < 8; ++i) bytes[8 + i] = static_cast<uint8_t>(b >> (8 * i));
  bytes[6] = static_cast<uint8_t>((bytes[6] & 0x0f) | 0x40);
  bytes[8] = static_cast<uint8_t>((bytes[8] & 0x3f) | 0x80);
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[bytes[i] >> 4];
    out += kHex[bytes[i] & 15];
  }
  return out;
}

// "host[:port]" (IPv6 in brackets) -> host and port.
bool SplitHostPort(const std::string& hostport, std::string* host, std::string* port) {
  *port = "443";
  if (!hostport.empty() && hostport[0] == '[') {
    size_t close = hostport.find(']');
    if (close == std::string::npos) return false;
    *host = hostport.substr(1, close - 1);
    if (close + 1 < hostport.size()) {
      if (hostport[close + 1] != ':') return false;
      *port = hostport.substr(close + 2);
    }
  } else {
    size_t colon = hostport.rfind(':');
    *host = hostport.substr(0, colon);
    if (colon != std::string::npos) *port = hostport.substr(colon + 1);
  }
  return !host->empty() && !port->empty() &&
         port->find_first_not_of("0123456789") == std::string::npos;
}

bool IsAddress(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// Why a TLS handshake failed, in words (the certificate error when the peer
// was not trusted).
std::string TlsFailure(const Socket& socket, const boost::system::error_code& ec) {
  SSL* ssl = const_cast<Socket&>(socket).next_layer().native_handle();
  long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) {
    return std::string("certificate verification failed (") +
           X509_verify_cert_error_string(verify) +
           "); for a private CA, name its PEM file in AWS_CA_BUNDLE";
  }
  if (ec.category() == asio::error::get_ssl_category()) {
    const char* reason = ERR_reason_error_string(static_cast<unsigned long>(ec.value()));
    if (reason != nullptr) return std::string("TLS handshake failed (") + reason + ")";
  }
  return "TLS handshake failed (" + ec.message() + ")";
}

// Printable, bounded text of a server's answer (an error message, never ours).
std::string Excerpt(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 200)) out += (c >= 0x20 && c < 0x7f) ? c : ' ';
  return out;
}

}  // namespace

class MessagingSession::Impl {
 public:
  Impl(MessagingSessionConfig config, sync::RealtimeListener listener)
      : config_(std::move(config)), listener_(std::move(listener)) {
    if (!config_.random) {
      auto rng = std::make_shared<std::mt19937_64>(std::random_device{}());
      config_.random = [rng] { return (*rng)(); };
    }
    if (config_.ca_file.empty()) {
      if (const char* env = std::getenv("AWS_CA_BUNDLE")) config_.ca_file = env;
    }
  }

  // The session's thread. Nothing may escape it: an exception inside the
  // loop (out of memory, a TLS library failure) is reported as kLost and the
  // loop starts again after the longest backoff.
  void Run() {
    bool pause_first = false;
    for (;;) {
      bool failed = false;
      asio::co_spawn(io_, Loop(pause_first), [&failed](std::exception_ptr e) {
        if (e) failed = true;
      });
      try {
        io_.run();
      } catch (...) {
        failed = true;
      }
      if (!failed || stopping()) return;
      established_ = false;
      live_ = nullptr;
      Emit({.kind = sync::RealtimeEvent::Kind::kLost,
            .detail = "the messaging session failed internally (out of memory or a TLS "
                      "library error); reconnecting"});
      pause_first = true;
      io_.restart();
    }
  }

  void RequestStop() {
    {
      std::lock_guard<std::mutex> lock(rest_mu_);
      stopping_ = true;
      if (rest_http_ != nullptr) rest_http_->Cancel();
    }
    asio::post(io_, [this] {
      boost::system::error_code ignored;
      if (live_ != nullptr) live_->close(ignored);
      CancelWake();
    });
  }

  void Poke() {
    poked_ = true;
    asio::post(io_, [this] { CancelWake(); });
  }

  std::atomic<bool> established_{false};

 private:
  // Connects, serves and reconnects until stopped; `pause_first`: wait the
  // longest backoff before the first attempt (after an internal failure).
  asio::awaitable<void> Loop(bool pause_first);
  // Ends a backoff wait. Never throws (it runs inside posted handlers).
  void CancelWake() {
    try {
      wake_.cancel();
    } catch (...) {  // a timer cancel fails only if the OS refuses: the wait ends at its time
    }
  }
  asio::awaitable<Outcome> Connect();
  // Reads frames until the socket ends. REQUIRES: the session's thread.
  asio::awaitable<Outcome> Serve(Socket& socket);
  // The socket's host[:port]; *server_now_ms: the server's time as the
  // REST call's Date header showed it (a skewed local clock corrected).
  Result<std::string> ResolveEndpoint(int64_t* server_now_ms);
  void Emit(sync::RealtimeEvent e) {
    if (listener_) listener_(std::move(e));
  }
  bool stopping() {
    std::lock_guard<std::mutex> lock(rest_mu_);
    return stopping_;
  }

  MessagingSessionConfig config_;
  sync::RealtimeListener listener_;
  asio::io_context io_;
  asio::steady_timer wake_{io_};  // backoff; cancelled by Poke and Stop
  std::atomic<bool> poked_{false};
  tcp::socket* live_ = nullptr;  // the open socket; session thread only

  std::mutex rest_mu_;
  bool stopping_ = false;                  // REQUIRES: rest_mu_
  http::HttpClient* rest_http_ = nullptr;  // the REST call in flight; REQUIRES: rest_mu_
};

asio::awaitable<void> MessagingSession::Impl::Loop(bool pause_first) {
  uint32_t failures = 0;  // since the last SESSION_ESTABLISHED
  bool for_good = false;
  while (!stopping()) {
    if (pause_first) {
      pause_first = false;
      wake_.expires_after(std::chrono::milliseconds(config_.max_backoff_ms));
    } else if (!for_good) {
      Outcome out = co_await Connect();
      established_ = false;
      if (stopping()) break;
      if (out.established) failures = 0;
      for_good = !out.reconnect;
      Emit({.kind = sync::RealtimeEvent::Kind::kLost,
            .detail = for_good ? out.detail + " (not reconnecting)" : out.detail});
      if (for_good) continue;
      if (poked_.exchange(false)) continue;
      const int64_t wait = FullJitterMs(failures++, config_.base_backoff_ms, config_.max_backoff_ms,
                                        config_.random());
      wake_.expires_after(std::chrono::milliseconds(wait));
    } else if (poked_.exchange(false)) {  // poked while the last connection ran
      for_good = false;
      failures = 0;
      continue;
    } else {
      wake_.expires_at(asio::steady_timer::time_point::max());
    }
    boost::system::error_code ec;
    co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (poked_.exchange(false)) {
      for_good = false;
      failures = 0;
    }
  }
}

Result<std::string> MessagingSession::Impl::ResolveEndpoint(int64_t* server_now_ms) {
  auto http = config_.make_http ? config_.make_http() : http::NewCurlHttpClient();
  http::HttpClient* raw = http.get();
  {
    std::lock_guard<std::mutex> lock(rest_mu_);
    if (stopping_) return Cancelled("messaging session stopped");
    rest_http_ = raw;
  }
  aws::ServiceConfig service;
  service.signing_name = "chime";
  service.region = config_.region;
  service.endpoint = config_.rest_endpoint;
  service.content_type = "application/json";
  service.verify_crc32 = false;
  aws::AwsRestClient client(service, config_.credentials, std::move(http));
  auto body = client.Call("GET", "/endpoints/messaging-session", {}, "");
  *server_now_ms = client.ServerNowMs();
  {
    std::lock_guard<std::mutex> lock(rest_mu_);
    rest_http_ = nullptr;
  }
  if (!body.ok()) return body.status();
  TIDINGS_ASSIGN_OR_RETURN(std::string url, ParseSessionEndpoint(*body));
  // The service answers host[:port]; tolerate a scheme.
  for (std::string_view scheme : {"wss://", "https://"}) {
    if (url.starts_with(scheme)) url.erase(0, scheme.size());
  }
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

asio::awaitable<Outcome> MessagingSession::Impl::Connect() {
  Outcome out;
  int64_t server_now_ms = 0;
  auto endpoint = ResolveEndpoint(&server_now_ms);
  if (!endpoint.ok()) {
    out.detail = "GetMessagingSessionEndpoint failed: " + endpoint.status().ToString();
    co_return out;
  }
  std::string host, port;
  if (!SplitHostPort(*endpoint, &host, &port)) {
    out.detail = "GetMessagingSessionEndpoint answered a malformed endpoint";
    co_return out;
  }
  auto credentials = config_.credentials->Get();
  if (!credentials.ok()) {
    out.detail = "no credentials for the messaging session: " + credentials.status().ToString();
    co_return out;
  }
  const std::string session_id = SessionId(config_.random(), config_.random());
  // Signed at the server's time: a device clock minutes off still connects.
  const int64_t now_ms = config_.wall_clock_ms ? config_.wall_clock_ms() : server_now_ms;
  aws::SigningParams signing{
      .region = config_.region, .service = "chime", .unix_seconds = now_ms / 1000};
  auto url = aws::PresignUrl("GET", ConnectUrl(*endpoint, config_.user_arn, session_id),
                             *credentials, signing, config_.presign_expires_s);
  if (!url.ok()) {
    out.detail = "could not sign the messaging URL: " + url.status().ToString();
    co_return out;
  }
  const std::string host_header = aws::UrlHost(*url);
  const std::string target = url->substr(url->find('/', 6));  // after "wss://"

  ssl::context tls(ssl::context::tls_client);
  boost::system::error_code ec;
  tls.set_default_verify_paths(ec);
  if (!config_.ca_file.empty()) {
    tls.load_verify_file(config_.ca_file, ec);
    if (ec) {
      out.detail = "cannot read the CA file named by AWS_CA_BUNDLE (" + ec.message() + ")";
      co_return out;
    }
  }
  tls.set_verify_mode(ssl::verify_peer);

  tcp::resolver resolver(io_);
  auto addresses =
      co_await resolver.async_resolve(host, port, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    out.detail = "cannot resolve the messaging endpoint " + host + " (" + ec.message() + ")";
    co_return out;
  }
  Socket socket(io_, tls);
  auto& lowest = beast::get_lowest_layer(socket);
  live_ = &lowest.socket();
  struct Unlive {
    tcp::socket** live;
    ~Unlive() { *live = nullptr; }
  } unlive{&live_};
  if (stopping()) co_return out;

  lowest.expires_after(std::chrono::milliseconds(config_.connect_timeout_ms));
  co_await lowest.async_connect(addresses, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    out.detail =
        "cannot connect to the messaging endpoint " + *endpoint + " (" + ec.message() + ")";
    co_return out;
  }
  if (!IsAddress(host)) SSL_set_tlsext_host_name(socket.next_layer().native_handle(), host.c_str());
  socket.next_layer().set_verify_callback(ssl::host_name_verification(host));
  co_await socket.next_layer().async_handshake(ssl::stream_base::client,
                                               asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    out.detail = TlsFailure(socket, ec) + " with " + *endpoint;
    co_return out;
  }
  lowest.expires_never();  // the WebSocket's own timeouts from here on
  websocket::stream_base::timeout timeouts;
  timeouts.handshake_timeout = std::chrono::milliseconds(config_.connect_timeout_ms);
  // A ping after ping_interval_ms of silence; no answer within another
  // interval closes the socket.
  timeouts.idle_timeout = std::chrono::milliseconds(2 * config_.ping_interval_ms);
  timeouts.keep_alive_pings = true;
  socket.set_option(timeouts);
  socket.set_option(websocket::stream_base::decorator([](websocket::request_type& request) {
    request.set(beast::http::field::user_agent, "tidings");
  }));
  websocket::response_type response;
  co_await socket.async_handshake(response, host_header, target,
                                  asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    if (response.result_int() != 0 && response.result_int() != 101) {
      out.detail = "the messaging endpoint refused the connection: HTTP " +
                   std::to_string(response.result_int()) + " " + Excerpt(response.body());
    } else {
      out.detail = "WebSocket upgrade failed (" + ec.message() + ")";
    }
    co_return out;
  }
  co_return co_await Serve(socket);
}

asio::awaitable<Outcome> MessagingSession::Impl::Serve(Socket& socket) {
  Outcome out;
  // SESSION_ESTABLISHED must come within connect_timeout_ms.
  asio::steady_timer deadline(io_);
  deadline.expires_after(std::chrono::milliseconds(config_.connect_timeout_ms));
  // Shared with the handler: its completion may already be queued when the
  // read fails, and then it runs after this frame is gone.
  auto late = std::make_shared<bool>(false);
  deadline.async_wait([this, late](const boost::system::error_code& ec) {
    if (ec || established_) return;  // cancelled: in time, or the frame is gone
    *late = true;
    boost::system::error_code ignored;
    if (live_ != nullptr) live_->close(ignored);
  });
  beast::flat_buffer buffer;
  for (;;) {
    boost::system::error_code ec;
    buffer.clear();
    co_await socket.async_read(buffer, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      deadline.cancel();
      if (ec == websocket::error::closed) {
        const auto& reason = socket.reason();
        const int code = static_cast<int>(reason.code);
        out.reconnect = ShouldReconnect(code);
        out.detail =
            "the server closed the socket (code " + std::to_string(code) +
            (reason.reason.empty() ? ""
                                   : ": " + Excerpt({reason.reason.data(), reason.reason.size()})) +
            ")";
      } else {
        out.reconnect = ShouldReconnect(kAbnormalClose);
        out.detail =
            *late ? "no SESSION_ESTABLISHED within " + std::to_string(config_.connect_timeout_ms) +
                        " ms"
            : ec == beast::error::timeout
                ? "no answer to a ping within " + std::to_string(config_.ping_interval_ms) + " ms"
                : "socket lost (" + ec.message() + ")";
      }
      co_return out;
    }
    if (!socket.got_text()) continue;
    auto frame = ParseSessionFrame(beast::buffers_to_string(buffer.data()));
    if (!frame.ok()) continue;  // not an event: nothing to hand on
    if (frame->type == "SESSION_ESTABLISHED") {
      if (out.established) continue;
      deadline.cancel();
      out.established = true;
      established_ = true;
      poked_ = false;
      Emit({.kind = sync::RealtimeEvent::Kind::kEstablished, .type = frame->type});
      continue;
    }
    if (!out.established) continue;  // not trusted to be complete: dropped
    Emit({.kind = sync::RealtimeEvent::Kind::kEvent,
          .type = std::move(frame->type),
          .payload = std::move(frame->payload)});
  }
}

MessagingSession::MessagingSession(MessagingSessionConfig config) : config_(std::move(config)) {}

MessagingSession::~MessagingSession() { Stop(); }

Status MessagingSession::Start(sync::RealtimeListener listener) {
  std::lock_guard<std::mutex> lock(mu_);
  if (impl_) return FailedPrecondition("the messaging session is already started");
  if (!config_.credentials) return InvalidArgument("the messaging session needs credentials");
  try {
    impl_ = std::make_unique<Impl>(config_, std::move(listener));
    thread_ = std::thread([impl = impl_.get()] { impl->Run(); });
  } catch (const std::exception& e) {  // no thread, no random device, no memory
    impl_.reset();
    return Internal(std::string("cannot start the messaging session: ") + e.what());
  }
  return Status::Ok();
}

void MessagingSession::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!impl_) return;
  impl_->RequestStop();
  thread_.join();
  impl_.reset();
}

void MessagingSession::Poke() {
  std::lock_guard<std::mutex> lock(mu_);
  if (impl_) impl_->Poke();
}

bool MessagingSession::established() const {
  std::lock_guard<std::mutex> lock(mu_);
  return impl_ && impl_->established_.load();
}

}  // namespace tidings::chime
