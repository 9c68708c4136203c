// The only translation unit of the emulator that includes Boost.Beast/Asio
// (they compile slowly). One I/O thread owns every session and the hub's
// state; other threads reach it with asio::post, so nothing here locks.
#include "emulator/chime/realtime.h"

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <chrono>
#include <ctime>
#include <deque>
#include <future>
#include <thread>
#include <unordered_set>
#include <vector>

#include "common/clock.h"
#include "common/json_string.h"
#include "emulator/chime/http_date.h"

namespace chime_local {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ws = beast::websocket;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// {"Headers":{...},"Payload":"<the object as a JSON string>"}, as the Chime
// SDK's DefaultMessagingSession parses it.
std::string Frame(const std::string& type, const std::string& message_type,
                  const std::string& payload) {
  std::string headers = "{\"x-amz-chime-event-type\":" + tidings::JsonString(type) +
                        ",\"x-amz-chime-message-type\":" + tidings::JsonString(message_type);
  return "{\"Headers\":" + headers + "},\"Payload\":" + tidings::JsonString(payload) + "}";
}

// "<arn>/user/<id>" of an app instance: the only userArn /connect accepts.
bool IsAppInstanceUser(const std::string& arn) {
  const size_t user = arn.rfind("/user/");
  return arn.rfind("arn:aws", 0) == 0 && arn.find(":chime:") != std::string::npos &&
         arn.find(":app-instance/") != std::string::npos && user != std::string::npos &&
         user + 6 < arn.size() && arn.find('/', user + 6) == std::string::npos;
}

}  // namespace

class Session;

struct Realtime::Impl : std::enable_shared_from_this<Realtime::Impl> {
  RealtimeOptions options;
  asio::io_context io{1};
  ssl::context tls{ssl::context::tls_server};
  tcp::acceptor acceptor{io};
  std::thread thread;
  int port = 0;

  // Touched on the I/O thread only.
  std::vector<std::shared_ptr<Session>> sessions;
  std::deque<std::pair<Clock::time_point, Event>> pending;  // delayed events, in order
  asio::steady_timer pending_timer{io};
  Clock::time_point last_due{};
  int delay_ms = 0, refuse_status = 0, refuse_close = 0;
  std::atomic<size_t> open_sessions{0};

  void Accept();
  void Deliver(const Event& event);
  void Enqueue(Event event);
  void FlushDue();
  void Added(const std::shared_ptr<Session>& s);
  void Removed(Session* s);
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<Realtime::Impl> hub, tcp::socket socket)
      : hub_(std::move(hub)), ws_(std::move(socket), hub_->tls) {}

  const std::string& user() const { return user_; }
  const std::string& session_id() const { return session_id_; }
  bool established() const { return established_; }

  void Start() {
    beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(10));
    ws_.next_layer().async_handshake(ssl::stream_base::server,
                                     [self = shared_from_this()](beast::error_code ec) {
                                       if (!ec) self->ReadUpgrade();
                                     });
  }

  void Send(std::string frame) {
    if (closing_) return;
    out_.push_back(std::move(frame));
    if (out_.size() == 1) WriteNext();
  }

  // code 0: drop the TCP connection (the client sees 1006).
  void Close(int code, const std::string& reason) {
    if (closing_) return;
    Gone();  // no more events, and no longer counted, whether the peer answers or not
    if (code == 0) {
      beast::error_code ignored;
      beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
      beast::get_lowest_layer(ws_).socket().close(ignored);
      return;
    }
    ws_.async_close(ws::close_reason(static_cast<ws::close_code>(code), reason),
                    [self = shared_from_this()](beast::error_code) {});
  }

 private:
  void ReadUpgrade() {
    http::async_read(ws_.next_layer(), buffer_, request_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (!ec) self->Authorize();
                     });
  }

  void Refuse(http::status status, const std::string& code, const std::string& message) {
    auto res = std::make_shared<http::response<http::string_body>>(status, request_.version());
    res->set(http::field::content_type, "application/json");
    res->set("x-amzn-ErrorType", code);
    res->set(http::field::date, HttpDate());  // a client with a wrong clock corrects it from this
    res->keep_alive(false);
    res->body() = "{\"Code\":" + tidings::JsonString(code) +
                  ",\"Message\":" + tidings::JsonString(message) + "}";
    res->prepare_payload();
    http::async_write(ws_.next_layer(), *res,
                      [self = shared_from_this(), res](beast::error_code, size_t) {
                        beast::error_code ignored;
                        self->ws_.next_layer().shutdown(ignored);
                      });
  }

  void Authorize() {
    const std::string target(request_.target());
    if (target.substr(0, target.find('?')) != "/connect") {
      return Refuse(http::status::not_found, "NotFound", "the messaging WebSocket is at /connect");
    }
    if (!ws::is_upgrade(request_)) {
      return Refuse(http::status::bad_request, "BadRequestException",
                    "/connect is a WebSocket: send an HTTP Upgrade request");
    }
    if (hub_->refuse_status > 0) {
      return Refuse(static_cast<http::status>(hub_->refuse_status), "ServiceUnavailableException",
                    "injected: connects are refused (/_emulator/realtime)");
    }
    const std::string host(request_[http::field::host]);
    tidings::http::Request signed_req{"GET", "https://" + host + target, {{"host", host}}, ""};
    std::map<std::string, std::string> params;
    if (auto err =
            VerifyPresigned(hub_->options.auth, signed_req, tidings::WallMs() / 1000, &params)) {
      return Refuse(http::status::forbidden, err->code, err->message);
    }
    user_ = params["userArn"];
    session_id_ = params["sessionId"];
    if (!IsAppInstanceUser(user_)) {
      return Refuse(http::status::forbidden, "ForbiddenException",
                    "userArn must be an AppInstanceUser ARN (<app-instance-arn>/user/<id>)");
    }
    beast::get_lowest_layer(ws_).expires_never();
    // No idle timeout: a quiet client (the JS SDK sends no pings) stays.
    ws_.set_option(
        ws::stream_base::timeout{std::chrono::seconds(10), ws::stream_base::none(), false});
    ws_.text(true);
    ws_.async_accept(request_, [self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->Established();
    });
  }

  void Established() {
    hub_->Added(shared_from_this());
    if (hub_->refuse_close > 0) {
      return Close(hub_->refuse_close, "injected: connect refused");
    }
    established_ = true;
    Send(Frame("SESSION_ESTABLISHED", "SYSTEM", ""));
    Read();
  }

  // Reading runs Beast's control-frame handling: pings are answered, a
  // close is acknowledged. Text from the client is ignored.
  void Read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->buffer_.clear();
      if (ec) return self->Gone();
      self->Read();
    });
  }

  void WriteNext() {
    ws_.async_write(asio::buffer(out_.front()),
                    [self = shared_from_this()](beast::error_code ec, size_t) {
                      if (!self->out_.empty()) self->out_.pop_front();
                      if (ec) return self->Gone();
                      if (!self->out_.empty() && !self->closing_) self->WriteNext();
                    });
  }

  // Frames not yet written are dropped; the one being written stays alive
  // until its write completes.
  void DropQueued() {
    if (out_.size() > 1) out_.erase(out_.begin() + 1, out_.end());
  }

  void Gone() {
    if (gone_) return;
    gone_ = true;
    closing_ = true;
    DropQueued();
    hub_->Removed(this);
  }

  std::shared_ptr<Realtime::Impl> hub_;
  ws::stream<beast::ssl_stream<beast::tcp_stream>> ws_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  std::deque<std::string> out_;
  std::string user_, session_id_;
  bool established_ = false, closing_ = false, gone_ = false;
};

void Realtime::Impl::Accept() {
  acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      std::make_shared<Session>(self, std::move(socket))->Start();
    }
    self->Accept();
  });
}

void Realtime::Impl::Added(const std::shared_ptr<Session>& s) {
  // Kicked: the same user connecting again with the same session id.
  for (const auto& other : std::vector<std::shared_ptr<Session>>(sessions)) {
    if (!s->session_id().empty() && other->user() == s->user() &&
        other->session_id() == s->session_id()) {
      other->Close(4003, "kicked: the same session connected again");
    }
  }
  sessions.push_back(s);
  open_sessions = sessions.size();
}

void Realtime::Impl::Removed(Session* s) {
  std::erase_if(sessions, [s](const auto& p) { return p.get() == s; });
  open_sessions = sessions.size();
}

void Realtime::Impl::Deliver(const Event& e) {
  const std::unordered_set<std::string> to(e.recipients.begin(), e.recipients.end());
  const std::string frame = Frame(e.type, e.message_type, e.payload);
  for (const auto& s : sessions)
    if (s->established() && to.count(s->user())) s->Send(frame);
}

void Realtime::Impl::Enqueue(Event event) {
  if (delay_ms <= 0 && pending.empty()) return Deliver(event);
  // Never before an earlier event, whatever the delay was then.
  last_due = std::max(last_due, Clock::now() + std::chrono::milliseconds(delay_ms));
  pending.emplace_back(last_due, std::move(event));
  if (pending.size() == 1) FlushDue();
}

void Realtime::Impl::FlushDue() {
  while (!pending.empty() && pending.front().first <= Clock::now()) {
    Deliver(pending.front().second);
    pending.pop_front();
  }
  if (pending.empty()) return;
  pending_timer.expires_at(pending.front().first);
  pending_timer.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (!ec) self->FlushDue();
  });
}

Realtime::Realtime(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Realtime::~Realtime() {
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

tidings::Result<std::unique_ptr<Realtime>> Realtime::Start(const RealtimeOptions& options) {
  auto impl = std::make_shared<Impl>();
  impl->options = options;
  beast::error_code ec;
  impl->tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                        ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  impl->tls.use_certificate_chain_file(options.cert_file, ec);
  if (ec) {
    return tidings::InvalidArgument("--tls-cert " + options.cert_file +
                                    ": not a readable PEM certificate (" + ec.message() + ")");
  }
  impl->tls.use_private_key_file(options.key_file, ssl::context::pem, ec);
  if (ec) {
    return tidings::InvalidArgument("--tls-key " + options.key_file +
                                    ": not a readable PEM private key matching --tls-cert (" +
                                    ec.message() + ")");
  }
  auto address = asio::ip::make_address(options.host, ec);
  if (ec) return tidings::InvalidArgument("--host " + options.host + ": not an IP address");
  const tcp::endpoint endpoint(address, static_cast<uint16_t>(options.port));
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return tidings::Unavailable("cannot listen for the WebSocket on " + options.host + ":" +
                                std::to_string(options.port) + " (" + ec.message() + ")");
  }
  impl->port = impl->acceptor.local_endpoint().port();
  impl->Accept();
  impl->thread = std::thread([raw = impl.get()] { raw->io.run(); });
  return std::unique_ptr<Realtime>(new Realtime(std::move(impl)));
}

int Realtime::port() const { return impl_->port; }
size_t Realtime::sessions() const { return impl_->open_sessions; }

void Realtime::Publish(const Event& event) {
  asio::post(impl_->io, [impl = impl_, event] { impl->Enqueue(event); });
}

size_t Realtime::Drop(const std::string& user, int code) {
  auto done = std::make_shared<std::promise<size_t>>();
  auto result = done->get_future();
  asio::post(impl_->io, [impl = impl_, user, code, done] {
    size_t n = 0;
    for (const auto& s : std::vector<std::shared_ptr<Session>>(impl->sessions)) {
      if (!user.empty() && s->user() != user) continue;
      s->Close(code, code == 4003 ? "kicked" : "dropped by /_emulator/realtime");
      ++n;
    }
    done->set_value(n);
  });
  return result.get();
}

void Realtime::SetDelayMs(int delay_ms) {
  asio::post(impl_->io, [impl = impl_, delay_ms] { impl->delay_ms = delay_ms; });
}

void Realtime::SetRefuse(int refuse_status, int refuse_close) {
  asio::post(impl_->io, [impl = impl_, refuse_status, refuse_close] {
    impl->refuse_status = refuse_status;
    impl->refuse_close = refuse_close;
  });
}

}  // namespace chime_local
