// A loopback HTTP proxy in front of moto_server that injects faults from a
// script: error statuses, throttling, dropped connections, a response lost
// after the server committed, truncated and garbled bodies, an HTML page.
// One request per connection ("Connection: close"). Test-only.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

namespace tidings::testing {

enum class Fault {
  kNone,
  k503,               // answer 503 without forwarding
  kThrottle,          // answer 400 ThrottlingException without forwarding
  kDropRequest,       // close without forwarding
  kLoseResponse,      // forward (the server commits), then close without answering
  kTruncateResponse,  // forward, answer with half the body
  kGarbleResponse,    // forward, answer with a corrupted body (same length)
  kHtmlPage,          // answer 502 with an HTML page, without forwarding
};

class FaultProxy {
 public:
  explicit FaultProxy(int upstream_port) : upstream_(upstream_port) {
    listen_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    ::getsockname(listen_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    ::listen(listen_, 16);
    thread_ = std::thread([this] { Loop(); });
  }
  ~FaultProxy() {
    stop_ = true;
    ::shutdown(listen_, SHUT_RDWR);
    ::close(listen_);
    thread_.join();
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void Script(std::deque<Fault> faults) {
    std::lock_guard<std::mutex> l(mu_);
    script_ = std::move(faults);
  }
  int forwarded() const { return forwarded_; }

 private:
  static bool ReadMessage(int fd, std::string* out) {
    char buf[65536];
    size_t header_end = std::string::npos, need = 0;
    while (true) {
      if (header_end == std::string::npos) {
        header_end = out->find("\r\n\r\n");
        if (header_end != std::string::npos) {
          std::string lower = out->substr(0, header_end);
          for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          size_t cl = lower.find("content-length:");
          need = header_end + 4 + (cl == std::string::npos ? 0 : std::stoul(lower.substr(cl + 15)));
        }
      }
      if (header_end != std::string::npos && out->size() >= need) return true;
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return header_end != std::string::npos;
      out->append(buf, static_cast<size_t>(n));
    }
  }
  static void SendAll(int fd, const std::string& s) {
    size_t done = 0;
    while (done < s.size()) {
      ssize_t n = ::send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return;
      done += static_cast<size_t>(n);
    }
  }
  static std::string Canned(int status, const std::string& type, const std::string& body) {
    return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: " + type +
           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
           body;
  }
  std::string Forward(std::string request) {
    // One request per upstream connection.
    size_t pos = request.find("\r\n");
    request.insert(pos + 2, "Connection: close\r\n");
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(upstream_));
    std::string response;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      SendAll(fd, request);
      ReadMessage(fd, &response);
      ++forwarded_;
    }
    ::close(fd);
    return response;
  }
  void Loop() {
    while (!stop_) {
      int fd = ::accept(listen_, nullptr, nullptr);
      if (fd < 0) continue;
      std::string request;
      if (ReadMessage(fd, &request)) {
        Fault f = Fault::kNone;
        {
          std::lock_guard<std::mutex> l(mu_);
          if (!script_.empty()) {
            f = script_.front();
            script_.pop_front();
          }
        }
        switch (f) {
          case Fault::k503:
            SendAll(fd,
                    Canned(503, "application/x-amz-json-1.0",
                           "{\"__type\":\"com.amazonaws.dynamodb.v20120810#ServiceUnavailable\"}"));
            break;
          case Fault::kThrottle:
            SendAll(fd,
                    Canned(400, "application/x-amz-json-1.0",
                           "{\"__type\":\"com.amazonaws.dynamodb.v20120810#ThrottlingException\","
                           "\"message\":\"Rate exceeded\"}"));
            break;
          case Fault::kDropRequest:
            break;
          case Fault::kLoseResponse:
            Forward(request);
            break;
          case Fault::kHtmlPage:
            SendAll(fd,
                    Canned(502, "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>"));
            break;
          case Fault::kTruncateResponse:
          case Fault::kGarbleResponse:
          case Fault::kNone: {
            std::string response = Forward(request);
            size_t body = response.find("\r\n\r\n");
            if (f == Fault::kTruncateResponse && body != std::string::npos) {
              response.resize(body + 4 + (response.size() - body - 4) / 2);
            } else if (f == Fault::kGarbleResponse && body != std::string::npos) {
              for (size_t i = body + 4; i < response.size(); i += 3) response[i] = '#';
            }
            SendAll(fd, response);
            break;
          }
        }
      }
      ::close(fd);
    }
  }

  int upstream_;
  int listen_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> forwarded_{0};
  std::mutex mu_;
  std::deque<Fault> script_;
  std::thread thread_;
};

}  // namespace tidings::testing
