// The messaging WebSocket client against a small TLS WebSocket server made
// here with Beast on 127.0.0.1 (a throwaway CA and certificate made with the
// `openssl` command, trusted through AWS_CA_BUNDLE or the config's CA file):
// the presigned URL, SESSION_ESTABLISHED gating, the close-code reconnect
// rules, re-resolving endpoint and credentials, certificate verification,
// dead-socket detection by ping, Poke skipping the backoff, prompt Stop.
#include "sync/chime/messaging_session.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "common/json_string.h"
#include "sync/aws_protocol/sigv4.h"
#include "sync/chime/chime_backend.h"
#include "tests/common/eventually.h"

namespace tidings::chime {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
namespace websocket = beast::websocket;
using tidings::testing::Eventually;
using tcp = asio::ip::tcp;
using Ws = websocket::stream<ssl::stream<tcp::socket>>;
using namespace std::chrono_literals;
using Kind = sync::RealtimeEvent::Kind;

constexpr char kUser[] = "arn:aws:chime:us-east-1:111122223333:app-instance/app/user/alice";
constexpr int64_t kNowMs = 1'800'000'000'000;  // the presign time (the config's clock)

// A throwaway CA and a certificate for 127.0.0.1 it signed, made with the
// openssl command in a fresh directory; `other_ca` signs nothing we trust.
struct Pki {
  std::filesystem::path dir;
  std::string ca, cert, key, untrusted_cert, untrusted_key;
  std::string wrong_host_cert, wrong_host_key;  // the trusted CA's, for 127.0.0.2

  Pki() = default;
  Pki(const Pki&) = delete;
  Pki& operator=(const Pki&) = delete;

  static std::unique_ptr<Pki> Make() {
    auto owned = std::make_unique<Pki>();
    Pki& p = *owned;
    p.dir = std::filesystem::temp_directory_path() /
            ("tidings-ws-pki-" + std::to_string(::getpid()) + "-" +
             std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    std::filesystem::create_directories(p.dir);
    const std::string d = p.dir.string();
    std::ofstream(d + "/ext.cnf") << "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n";
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    const std::string quiet = " >/dev/null 2>&1";
    const std::string script =
        "cd '" + d + "' && openssl req -x509" + ec +
        " -keyout ca.key -out ca.pem -days 2 -subj /CN=tidings-test-ca" + quiet +
        " && openssl req" + ec + " -keyout srv.key -out srv.csr -subj /CN=127.0.0.1" + quiet +
        " && openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem"
        " -days 2 -extfile ext.cnf" +
        quiet + " && openssl req -x509" + ec +
        " -keyout other.key -out other.pem -days 2 -subj /CN=127.0.0.1"
        " -addext subjectAltName=IP:127.0.0.1" +
        quiet + " && printf 'subjectAltName=IP:127.0.0.2\\n' > ext2.cnf && openssl req" + ec +
        " -keyout wrong.key -out wrong.csr -subj /CN=127.0.0.2" + quiet +
        " && openssl x509 -req -in wrong.csr -CA ca.pem -CAkey ca.key -CAcreateserial"
        " -out wrong.pem -days 2 -extfile ext2.cnf" +
        quiet;
    if (std::system(script.c_str()) != 0) return owned;
    p.ca = d + "/ca.pem";
    p.cert = d + "/srv.pem";
    p.key = d + "/srv.key";
    p.untrusted_cert = d + "/other.pem";
    p.untrusted_key = d + "/other.key";
    p.wrong_host_cert = d + "/wrong.pem";
    p.wrong_host_key = d + "/wrong.key";
    return owned;
  }
  ~Pki() {
    std::error_code ignored;
    if (!dir.empty()) std::filesystem::remove_all(dir, ignored);
  }
};

// A server frame as Chime sends it.
std::string Frame(const std::string& type, const std::string& payload) {
  return R"({"Headers":{"x-amz-chime-event-type":")" + type +
         R"(","x-amz-chime-message-type":"SYSTEM"},"Payload":)" + JsonString(payload) + "}";
}

// What the server does with one accepted connection (on its own thread):
// `n` counts connections from 1; `target` is the request's path and query.
using Script = std::function<void(Ws& ws, int n, const std::string& target)>;

// Reads until the client goes away (answering pings meanwhile).
void HoldOpen(Ws& ws) {
  beast::flat_buffer buffer;
  beast::error_code ec;
  while (!ec) ws.read(buffer, ec);
}

class TlsWsServer {
 public:
  TlsWsServer(const std::string& cert, const std::string& key) : tls_(ssl::context::tls_server) {
    tls_.use_certificate_chain_file(cert);
    tls_.use_private_key_file(key, ssl::context::pem);
    acceptor_.open(tcp::v4());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    accepting_ = std::thread([this] { Accept(); });
  }
  ~TlsWsServer() {
    stopping_ = true;
    {  // wake the blocking accept
      asio::io_context io;
      tcp::socket poke(io);
      beast::error_code ec;
      poke.connect({asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port_)}, ec);
    }
    accepting_.join();
    for (auto& t : connections_) t.join();
  }
  int port() const { return port_; }
  void SetScript(Script script) {
    std::lock_guard<std::mutex> lock(mu_);
    script_ = std::move(script);
  }
  int connections() {
    std::lock_guard<std::mutex> lock(mu_);
    return count_;
  }
  std::vector<std::string> targets() {
    std::lock_guard<std::mutex> lock(mu_);
    return targets_;
  }
  // Closes every open socket from the server side (for tests' end).
  void CloseAll() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto* s : open_) {
      beast::error_code ec;
      s->shutdown(tcp::socket::shutdown_both, ec);
    }
  }

 private:
  void Accept() {
    for (;;) {
      tcp::socket socket(io_);
      beast::error_code ec;
      acceptor_.accept(socket, ec);
      if (stopping_) return;
      if (ec) continue;
      connections_.emplace_back([this, s = std::move(socket)]() mutable { Serve(std::move(s)); });
    }
  }
  void Serve(tcp::socket socket) {
    Ws ws(std::move(socket), tls_);
    beast::error_code ec;
    ws.next_layer().handshake(ssl::stream_base::server, ec);
    if (ec) return;  // the client refused our certificate, say
    beast::flat_buffer buffer;
    beast::http::request<beast::http::string_body> request;
    beast::http::read(ws.next_layer(), buffer, request, ec);
    if (ec) return;
    if (!websocket::is_upgrade(request)) {  // a plain HTTPS request: answer "ok"
      beast::http::response<beast::http::string_body> ok{beast::http::status::ok, 11};
      ok.body() = "ok";
      ok.prepare_payload();
      beast::http::write(ws.next_layer(), ok, ec);
      return;
    }
    ws.accept(request, ec);
    if (ec) return;
    Script script;
    int n;
    {
      std::lock_guard<std::mutex> lock(mu_);
      n = ++count_;
      targets_.emplace_back(request.target());
      script = script_;
      open_.push_back(&ws.next_layer().next_layer());
    }
    if (script) script(ws, n, std::string(request.target()));
    std::lock_guard<std::mutex> lock(mu_);
    open_.erase(std::find(open_.begin(), open_.end(), &ws.next_layer().next_layer()));
  }

  asio::io_context io_;
  ssl::context tls_;
  tcp::acceptor acceptor_{io_};
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread accepting_;
  std::vector<std::thread> connections_;  // accept thread only, then the destructor
  std::mutex mu_;
  Script script_;                     // REQUIRES: mu_
  int count_ = 0;                     // REQUIRES: mu_
  std::vector<std::string> targets_;  // REQUIRES: mu_
  std::vector<tcp::socket*> open_;    // REQUIRES: mu_
};

// GetMessagingSessionEndpoint, answered in process; counts the calls.
class EndpointHttp final : public http::HttpClient {
 public:
  EndpointHttp(std::string url, std::shared_ptr<std::atomic<int>> calls,
               std::shared_ptr<std::string> last_url, std::string date = "")
      : url_(std::move(url)),
        calls_(std::move(calls)),
        last_url_(std::move(last_url)),
        date_(std::move(date)) {}
  Result<http::Response> Send(const http::Request& request) override {
    ++*calls_;
    *last_url_ = request.method + " " + request.url;
    http::Response r;
    r.status = 200;
    if (!date_.empty()) r.headers.push_back({"date", date_});
    r.body = R"({"Endpoint":{"Url":")" + url_ + R"("}})";
    return r;
  }
  void Cancel() override {}

 private:
  std::string url_;
  std::shared_ptr<std::atomic<int>> calls_;
  std::shared_ptr<std::string> last_url_;
  std::string date_;  // the Date header to answer with, if any
};

// Counts the credential look-ups (one per connect: a provider may refresh).
class CountingCredentials final : public aws::CredentialsProvider {
 public:
  Result<aws::Credentials> Get() override {
    ++calls;
    return aws::Credentials{.access_key_id = "AKIDEXAMPLE",
                            .secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                            .session_token = "token/with+chars"};
  }
  std::atomic<int> calls{0};
};

class MessagingSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = Pki::Make();
    ASSERT_FALSE(pki_->ca.empty()) << "the openssl command could not make the test certificates";
  }
  void TearDown() override {
    session_.reset();
    server_.reset();
    unsetenv("AWS_CA_BUNDLE");
  }

  void Serve(bool trusted = true) {
    server_ = std::make_unique<TlsWsServer>(trusted ? pki_->cert : pki_->untrusted_cert,
                                            trusted ? pki_->key : pki_->untrusted_key);
  }
  void ServeAs(const std::string& cert, const std::string& key) {
    server_ = std::make_unique<TlsWsServer>(cert, key);
  }
  MessagingSessionConfig Config() {
    MessagingSessionConfig c;
    c.user_arn = kUser;
    c.region = "us-east-1";
    c.rest_endpoint = "https://messaging-chime.us-east-1.amazonaws.com";
    c.credentials = credentials_;
    const std::string url = "127.0.0.1:" + std::to_string(server_->port());
    c.make_http = [url, calls = endpoint_calls_, last = endpoint_request_] {
      return std::make_unique<EndpointHttp>(url, calls, last);
    };
    c.ca_file = pki_->ca;
    c.ping_interval_ms = 30'000;
    c.connect_timeout_ms = 2'000;
    c.base_backoff_ms = 10;
    c.max_backoff_ms = 40;
    c.random = [n = std::make_shared<std::atomic<uint64_t>>(12345)] { return (*n)++; };
    c.wall_clock_ms = [] { return kNowMs; };
    return c;
  }
  void Start(MessagingSessionConfig config) {
    session_ = std::make_unique<MessagingSession>(config);
    ASSERT_TRUE(session_
                    ->Start([this](sync::RealtimeEvent e) {
                      std::lock_guard<std::mutex> lock(mu_);
                      events_.push_back(std::move(e));
                      cv_.notify_all();
                    })
                    .ok());
  }
  // Waits until `n` events arrived; returns them.
  std::vector<sync::RealtimeEvent> AwaitEvents(size_t n, std::chrono::milliseconds limit = 5s) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, limit, [&] { return events_.size() >= n; });
    return events_;
  }
  std::vector<sync::RealtimeEvent> Events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }

  std::unique_ptr<Pki> pki_;
  std::unique_ptr<TlsWsServer> server_;
  std::shared_ptr<CountingCredentials> credentials_ = std::make_shared<CountingCredentials>();
  std::shared_ptr<std::atomic<int>> endpoint_calls_ = std::make_shared<std::atomic<int>>(0);
  std::shared_ptr<std::string> endpoint_request_ = std::make_shared<std::string>();
  std::unique_ptr<MessagingSession> session_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<sync::RealtimeEvent> events_;
};

TEST(MessagingProtocol, CloseCodesThatReconnect) {
  for (int code : {1001, 1006, 1011, 1012, 1013, 1014, 4001, 4400, 4500}) {
    EXPECT_TRUE(ShouldReconnect(code)) << code;
  }
  for (int code : {1000, 1002, 1003, 1008, 1015, 4000, 4002, 4003, 4401}) {
    EXPECT_FALSE(ShouldReconnect(code)) << code;
  }
}

TEST(MessagingProtocol, FullJitterGrowsToItsCap) {
  EXPECT_EQ(FullJitterMs(0, 1000, 30'000, 0), 0);
  EXPECT_EQ(FullJitterMs(0, 1000, 30'000, 1000), 1000);
  EXPECT_EQ(FullJitterMs(0, 1000, 30'000, 1001), 0) << "uniform in [0, 1000]";
  EXPECT_EQ(FullJitterMs(3, 1000, 30'000, 8000), 8000);
  EXPECT_EQ(FullJitterMs(40, 1000, 30'000, ~uint64_t{0} - 7), (~uint64_t{0} - 7) % 30'001);
  int64_t largest = 0;
  for (uint64_t r = 0; r < 100'000; ++r)
    largest = std::max(largest, FullJitterMs(9, 1000, 30'000, r));
  EXPECT_EQ(largest, 30'000) << "capped";
}

TEST(MessagingProtocol, FramesAndEndpoint) {
  auto f = ParseSessionFrame(Frame("CREATE_CHANNEL_MESSAGE", R"({"ChannelArn":"x"})"));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->type, "CREATE_CHANNEL_MESSAGE");
  EXPECT_EQ(f->message_type, "SYSTEM");
  EXPECT_EQ(f->payload, R"({"ChannelArn":"x"})");
  auto empty = ParseSessionFrame(R"({"Headers":{"x-amz-chime-event-type":"SESSION_ESTABLISHED"}})");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->payload, "");
  EXPECT_FALSE(ParseSessionFrame("not json").ok());
  EXPECT_FALSE(ParseSessionFrame(R"({"Headers":{}})").ok());
  EXPECT_FALSE(
      ParseSessionFrame(R"({"Headers":{"x-amz-chime-event-type":"X"},"Payload":{}})").ok());
  EXPECT_EQ(*ParseSessionEndpoint(R"({"Endpoint":{"Url":"h.example:443"}})"), "h.example:443");
  EXPECT_FALSE(ParseSessionEndpoint(R"({"Endpoint":{}})").ok());
}

TEST_F(MessagingSessionTest, ConnectsWithAPresignedUrlAndDropsEventsBeforeEstablished) {
  Serve();
  server_->SetScript([](Ws& ws, int, const std::string&) {
    ws.text(true);
    ws.write(asio::buffer(Frame("CREATE_CHANNEL_MESSAGE", R"({"MessageId":"early"})")));
    ws.write(asio::buffer(Frame("SESSION_ESTABLISHED", "")));
    ws.write(asio::buffer(Frame("CREATE_CHANNEL_MESSAGE", R"({"MessageId":"late"})")));
    HoldOpen(ws);
  });
  Start(Config());
  auto events = AwaitEvents(2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, Kind::kEstablished);
  EXPECT_EQ(events[1].kind, Kind::kEvent);
  EXPECT_EQ(events[1].type, "CREATE_CHANNEL_MESSAGE");
  EXPECT_EQ(events[1].payload, R"({"MessageId":"late"})") << "the event before it was dropped";
  EXPECT_TRUE(session_->established());

  // The endpoint came from GetMessagingSessionEndpoint, the URL is the
  // presigned /connect for this user, exactly as SigV4 query signing makes it.
  EXPECT_EQ(*endpoint_request_,
            "GET https://messaging-chime.us-east-1.amazonaws.com/endpoints/messaging-session");
  const std::string target = server_->targets().at(0);
  ASSERT_TRUE(target.starts_with("/connect?sessionId=")) << target;
  const size_t sid = target.find("sessionId=") + 10;
  const std::string session_id = target.substr(sid, target.find('&', sid) - sid);
  EXPECT_EQ(session_id.size(), 36u);
  EXPECT_EQ(session_id[14], '4') << "a version-4 UUID";
  const std::string host = "127.0.0.1:" + std::to_string(server_->port());
  auto expected = aws::PresignUrl(
      "GET",
      "wss://" + host + "/connect?sessionId=" + session_id +
          "&userArn=" + aws::UriEncode(kUser, true),
      *credentials_->Get(),
      {.region = "us-east-1", .service = "chime", .unix_seconds = kNowMs / 1000}, 60);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ("wss://" + host + target, *expected);
  EXPECT_NE(
      target.find("X-Amz-Credential=AKIDEXAMPLE%2F20270115%2Fus-east-1%2Fchime%2Faws4_request"),
      std::string::npos)
      << target;
  EXPECT_NE(target.find("X-Amz-Security-Token=token%2Fwith%2Bchars"), std::string::npos);
  EXPECT_NE(target.find("X-Amz-Signature="), std::string::npos);

  const auto stop_at = std::chrono::steady_clock::now();
  session_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - stop_at, 1s) << "Stop() is prompt";
  EXPECT_FALSE(session_->established());
}

TEST_F(MessagingSessionTest, ReconnectsAfter1012And1006ResolvingAgain) {
  Serve();
  server_->SetScript([](Ws& ws, int n, const std::string&) {
    ws.text(true);
    ws.write(asio::buffer(Frame("SESSION_ESTABLISHED", "")));
    if (n == 1) {
      ws.close(websocket::close_code::service_restart);  // 1012
    } else if (n == 2) {
      ws.next_layer().next_layer().close();  // no close frame: 1006
    } else {
      HoldOpen(ws);
    }
  });
  Start(Config());
  auto events = AwaitEvents(5);
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].kind, Kind::kEstablished);
  EXPECT_EQ(events[1].kind, Kind::kLost);
  EXPECT_NE(events[1].detail.find("code 1012"), std::string::npos) << events[1].detail;
  EXPECT_EQ(events[2].kind, Kind::kEstablished);
  EXPECT_EQ(events[3].kind, Kind::kLost);
  EXPECT_EQ(events[4].kind, Kind::kEstablished);
  EXPECT_EQ(server_->connections(), 3);
  EXPECT_EQ(endpoint_calls_->load(), 3) << "the endpoint is resolved again on every connect";
  EXPECT_EQ(credentials_->calls.load(), 6)
      << "and the credentials, on every connect (to sign the REST call, then to presign)";
  auto targets = server_->targets();
  EXPECT_NE(targets[0], targets[1]) << "a new session id each time";
  for (const auto& e : events) {
    EXPECT_EQ(e.detail.find("X-Amz-Signature"), std::string::npos) << "no URL in a reason";
  }
}

TEST_F(MessagingSessionTest, KickedOrUnauthorizedDoesNotReconnectUntilPoked) {
  for (int code : {4002, 4003, 4401}) {
    SCOPED_TRACE(code);
    Serve();
    server_->SetScript([code](Ws& ws, int n, const std::string&) {
      ws.text(true);
      ws.write(asio::buffer(Frame("SESSION_ESTABLISHED", "")));
      if (n == 1) {
        ws.close(websocket::close_reason(static_cast<std::uint16_t>(code)));
      } else {
        HoldOpen(ws);
      }
    });
    {
      std::lock_guard<std::mutex> lock(mu_);
      events_.clear();
    }
    Start(Config());
    auto events = AwaitEvents(2);
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[1].kind, Kind::kLost);
    EXPECT_NE(events[1].detail.find("not reconnecting"), std::string::npos) << events[1].detail;
    std::this_thread::sleep_for(300ms);  // many backoff windows (at most 40 ms)
    EXPECT_EQ(server_->connections(), 1) << "no reconnect after " << code;
    session_->Poke();
    EXPECT_EQ(AwaitEvents(3).size(), 3u) << "Poke retries a session ended for good";
    EXPECT_EQ(server_->connections(), 2);
    session_.reset();
    server_.reset();
  }
}

TEST_F(MessagingSessionTest, PokeSkipsTheBackoff) {
  Serve();
  server_->SetScript([](Ws& ws, int n, const std::string&) {
    ws.text(true);
    ws.write(asio::buffer(Frame("SESSION_ESTABLISHED", "")));
    if (n == 1) {
      ws.close(websocket::close_code::try_again_later);  // 1013
    } else {
      HoldOpen(ws);
    }
  });
  auto config = Config();
  config.base_backoff_ms = config.max_backoff_ms = 3'600'000;
  config.random = [] { return uint64_t{3'000'000}; };  // 50 minutes of backoff
  Start(config);
  ASSERT_EQ(AwaitEvents(2).size(), 2u);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(server_->connections(), 1) << "waiting out the backoff";
  const auto poked = std::chrono::steady_clock::now();
  session_->Poke();
  auto events = AwaitEvents(3, 2s);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].kind, Kind::kEstablished);
  EXPECT_LT(std::chrono::steady_clock::now() - poked, 1s);
  const auto stop_at = std::chrono::steady_clock::now();
  session_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - stop_at, 1s);
}

TEST_F(MessagingSessionTest, AnUntrustedCertificateIsRefused) {
  Serve(/*trusted=*/false);
  server_->SetScript([](Ws& ws, int, const std::string&) {
    ws.text(true);
    ws.write(asio::buffer(Frame("SESSION_ESTABLISHED", "")));
    HoldOpen(ws);
  });
  Start(Config());
  auto events = AwaitEvents(2);
  ASSERT_GE(events.size(), 2u);
  for (const auto& e : events) {
    EXPECT_EQ(e.kind, Kind::kLost);
    EXPECT_NE(e.detail.find("certificate verification failed"), std::string::npos) << e.detail;
  }
  EXPECT_EQ(server_->connections(), 0) << "no WebSocket over an unverified TLS session";
  EXPECT_FALSE(session_->established());
}

TEST_F(MessagingSessionTest, ACertificateForAnotherHostIsRefused) {
  ServeAs(pki_->wrong_host_cert, pki_->wrong_host_key);  // trusted CA, 127.0.0.2
  server_->SetScript([](Ws& ws, int, const std::string&) {
    ws.text(true);
    ws.write(asio::buffer(Frame("SESSION_ESTABLISHED", "")));
    HoldOpen(ws);
  });
  Start(Config());
  auto events = AwaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kLost);
  EXPECT_NE(events[0].detail.find("certificate verification failed"), std::string::npos)
      << events[0].detail;
  EXPECT_EQ(server_->connections(), 0);
}

TEST_F(MessagingSessionTest, TheCaComesFromAwsCaBundle) {
  Serve();
  server_->SetScript([](Ws& ws, int, const std::string&) {
    ws.text(true);
    ws.write(asio::buffer(Frame("SESSION_ESTABLISHED", "")));
    HoldOpen(ws);
  });
  setenv("AWS_CA_BUNDLE", pki_->ca.c_str(), 1);
  auto config = Config();
  config.ca_file.clear();
  Start(config);
  auto events = AwaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kEstablished) << events[0].detail;

  // Without it, the system store does not know the test CA.
  session_.reset();
  unsetenv("AWS_CA_BUNDLE");
  {
    std::lock_guard<std::mutex> lock(mu_);
    events_.clear();
  }
  Start(config);
  events = AwaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::kLost);
}

// A device clock far off: the URL is signed at the server's time, as the
// GetMessagingSessionEndpoint answer's Date header showed it.
TEST_F(MessagingSessionTest, TheUrlIsSignedAtTheServersTime) {
  Serve();
  server_->SetScript([](Ws& ws, int, const std::string&) {
    ws.text(true);
    ws.write(asio::buffer(Frame("SESSION_ESTABLISHED", "")));
    HoldOpen(ws);
  });
  auto config = Config();
  config.wall_clock_ms = nullptr;  // production: the server's time
  const std::string url = "127.0.0.1:" + std::to_string(server_->port());
  // The server's clock reads 2031-05-06 07:08:09 (this machine's does not).
  config.make_http = [url, calls = endpoint_calls_, last = endpoint_request_] {
    return std::make_unique<EndpointHttp>(url, calls, last, "Tue, 06 May 2031 07:08:09 GMT");
  };
  Start(config);
  auto events = AwaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  const std::string target = server_->targets().at(0);
  EXPECT_NE(target.find("X-Amz-Date=20310506T0708"), std::string::npos) << target;
}

// ChimeBackend's push channel: a thin owner of a session made from the
// backend's configuration (user, region, REST endpoint, credentials).
TEST_F(MessagingSessionTest, TheChimeBackendOwnsASessionMadeFromItsConfig) {
  Serve();
  server_->SetScript([](Ws& ws, int, const std::string&) {
    ws.text(true);
    ws.write(asio::buffer(Frame("SESSION_ESTABLISHED", "")));
    ws.write(asio::buffer(Frame("CREATE_CHANNEL_MESSAGE", R"({"MessageId":"m"})")));
    HoldOpen(ws);
  });
  ChimeConfig config;
  config.app_instance_arn = "arn:aws:chime:eu-west-1:111122223333:app-instance/app";
  config.user_arn = kUser;
  config.region = "eu-west-1";
  config.endpoint = "http://127.0.0.1:1";  // REST: only the endpoint call, answered below
  auto backend = ChimeBackend::Create(config, credentials_);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  auto& rt = (*backend)->realtime_config();
  EXPECT_EQ(rt.user_arn, kUser);
  EXPECT_EQ(rt.region, "eu-west-1");
  EXPECT_EQ(rt.rest_endpoint, "http://127.0.0.1:1");
  rt.make_http = Config().make_http;
  rt.ca_file = pki_->ca;
  std::mutex mu;
  std::vector<sync::RealtimeEvent> got;
  ASSERT_TRUE((*backend)
                  ->StartRealtime([&](sync::RealtimeEvent e) {
                    std::lock_guard<std::mutex> lock(mu);
                    got.push_back(std::move(e));
                  })
                  .ok());
  EXPECT_EQ((*backend)->StartRealtime(nullptr).code(), Code::kFailedPrecondition);
  Eventually([&] {
    std::lock_guard<std::mutex> lock(mu);
    return got.size() >= 2;
  });
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].kind, Kind::kEstablished);
    EXPECT_EQ(got[1].payload, R"({"MessageId":"m"})");
  }
  EXPECT_EQ(*endpoint_request_, "GET http://127.0.0.1:1/endpoints/messaging-session");
  EXPECT_NE(server_->targets().at(0).find("%2Fchime%2Faws4_request"), std::string::npos);
  EXPECT_NE(server_->targets().at(0).find("eu-west-1"), std::string::npos);
  (*backend)->PokeRealtime();  // connected: nothing to do
  (*backend)->StopRealtime();
  (*backend)->StopRealtime();  // idempotent
  EXPECT_EQ(server_->connections(), 1);
}

// The REST transport (libcurl) trusts AWS_CA_BUNDLE too.
TEST_F(MessagingSessionTest, LibcurlTrustsAwsCaBundleToo) {
  Serve();
  http::Request get;
  get.method = "GET";
  get.url = "https://127.0.0.1:" + std::to_string(server_->port()) + "/";
  auto refused = http::NewCurlHttpClient()->Send(get);
  EXPECT_FALSE(refused.ok()) << "the test CA is not in the system store";
  setenv("AWS_CA_BUNDLE", pki_->ca.c_str(), 1);
  auto answered = http::NewCurlHttpClient()->Send(get);
  ASSERT_TRUE(answered.ok()) << answered.status().ToString();
  EXPECT_EQ(answered->status, 200);
  EXPECT_EQ(answered->body, "ok");
}

TEST_F(MessagingSessionTest, AMissedPongIsADeadSocket) {
  Serve();
  server_->SetScript([](Ws& ws, int n, const std::string&) {
    ws.text(true);
    ws.write(asio::buffer(Frame("SESSION_ESTABLISHED", "")));
    if (n == 1) {
      std::this_thread::sleep_for(1500ms);  // reads nothing: no pong
    } else {
      HoldOpen(ws);
    }
  });
  auto config = Config();
  config.ping_interval_ms = 150;
  Start(config);
  auto events = AwaitEvents(2, 3s);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].kind, Kind::kLost);
  EXPECT_NE(events[1].detail.find("ping"), std::string::npos) << events[1].detail;
  EXPECT_EQ(AwaitEvents(3, 5s).size(), 3u) << "and reconnects";
}

}  // namespace
}  // namespace tidings::chime
