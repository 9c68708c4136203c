// Starts a real moto_server on 127.0.0.1 with an ephemeral port and signature
// verification on (after the setup actions), and stops it afterwards.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "sync/aws/credentials.h"

namespace tidings::testing {

inline int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

inline bool PortOpen(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

class MotoServer {
 public:
  // Returns false (with a reason) if moto_server cannot be started.
  bool Start(const std::string& table, std::string* why) {
    port_ = FreePort();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setenv("INITIAL_NO_AUTH_ACTION_COUNT", "5", 1);
      ::freopen("/dev/null", "w", stdout);
      ::freopen("/dev/null", "w", stderr);
      std::string port = std::to_string(port_);
      ::execlp("moto_server", "moto_server", "-H", "127.0.0.1", "-p", port.c_str(), nullptr);
      ::_exit(127);
    }
    for (int i = 0; i < 300 && !PortOpen(port_); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!PortOpen(port_)) {
      *why = "moto_server did not start (is it installed? scripts/setup.sh installs it)";
      return false;
    }
    std::string cmd = std::string("python3 ") + MOTO_SETUP + " " + endpoint() + " " + table;
    FILE* p = ::popen(cmd.c_str(), "r");
    char buf[512] = {0};
    std::string out;
    while (std::fgets(buf, sizeof(buf), p)) out += buf;
    if (::pclose(p) != 0) {
      *why = "moto setup failed: " + out;
      return false;
    }
    auto field = [&](const std::string& name) {
      size_t k = out.find("\"" + name + "\": \"");
      size_t start = k + name.size() + 5;
      return out.substr(start, out.find('"', start) - start);
    };
    creds_.access_key_id = field("access_key");
    creds_.secret_access_key = field("secret");
    return true;
  }
  void Stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  ~MotoServer() { Stop(); }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  const aws::Credentials& credentials() const { return creds_; }

 private:
  int port_ = 0;
  pid_t pid_ = -1;
  aws::Credentials creds_;
};

}  // namespace tidings::testing
