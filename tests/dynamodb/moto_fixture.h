// Starts a real moto server on 127.0.0.1 with an ephemeral port, through
// tests/common/moto_server.py (moto plus the IAM conditions of the documented
// policy, docs/dynamodb-policy.json), with signature verification and IAM on
// after the setup actions, and stops it afterwards.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

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
  // `setup` prepares it (MOTO_SETUP: the test's own script).
  bool Start(const std::string& table, std::string* why, const char* setup = MOTO_SETUP) {
    port_ = FreePort();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setenv("INITIAL_NO_AUTH_ACTION_COUNT", "5", 1);
      ::freopen("/dev/null", "w", stdout);
      ::freopen("/dev/null", "w", stderr);
      std::string port = std::to_string(port_);
      ::execlp("python3", "python3", MOTO_SERVER, "-H", "127.0.0.1", "-p", port.c_str(), nullptr);
      ::_exit(127);
    }
    for (int i = 0; i < 300 && !PortOpen(port_); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!PortOpen(port_)) {
      *why =
          "moto server (tests/common/moto_server.py) did not start (is moto installed? "
          "scripts/setup.sh installs it)";
      return false;
    }
    std::string out;
    if (!RunPython({setup, endpoint(), table}, nullptr, &out)) {
      *why = "moto setup failed: " + out;
      return false;
    }
    creds_.access_key_id = Field(out, "access_key");
    creds_.secret_access_key = Field(out, "secret");
    admin_.access_key_id = Field(out, "admin_access_key");
    admin_.secret_access_key = Field(out, "admin_secret");
    return true;
  }
  // Keys of an IAM user for Tidings user `user`: tagged tidings-user-tag =
  // T(user) and holding only the device policy, so it may write the "d#"
  // partition of `user` and read the "i#" partition of `user`, and no other.
  // Empty keys (and `why`) if moto refused.
  aws::Credentials CredentialsFor(const std::string& user, std::string* why = nullptr) {
    std::lock_guard<std::mutex> lock(mu_);
    auto known = users_.find(user);
    if (known != users_.end()) return known->second;
    std::string out;
    if (!RunPython({MOTO_SETUP, "--add-user", endpoint(), user}, &admin_, &out)) {
      if (why) *why = "moto add-user failed: " + out;
      return {};
    }
    aws::Credentials creds;
    creds.access_key_id = Field(out, "access_key");
    creds.secret_access_key = Field(out, "secret");
    return users_[user] = creds;
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
  // Runs python3 with `args`, `env`'s keys (if any) in its environment,
  // never in argv; its stdout in `out`. False if it failed.
  static bool RunPython(const std::vector<std::string>& args, const aws::Credentials* env,
                        std::string* out) {
    // Everything the child needs is built before fork (the test may have threads).
    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e) {
      std::string_view var(*e);
      if (env &&
          (var.starts_with("AWS_ACCESS_KEY_ID=") || var.starts_with("AWS_SECRET_ACCESS_KEY=")))
        continue;
      env_strings.emplace_back(var);
    }
    if (env) {
      env_strings.push_back("AWS_ACCESS_KEY_ID=" + env->access_key_id);
      env_strings.push_back("AWS_SECRET_ACCESS_KEY=" + std::string(env->secret_access_key.view()));
    }
    std::vector<char*> envp;
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<std::string> arg_strings = {"python3"};
    arg_strings.insert(arg_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : arg_strings) argv.push_back(a.data());
    argv.push_back(nullptr);
    int fds[2];
    if (::pipe(fds) != 0) return false;
    pid_t pid = ::fork();
    if (pid == 0) {
      ::dup2(fds[1], 1);
      ::close(fds[0]);
      ::close(fds[1]);
      ::execvpe("python3", argv.data(), envp.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    char buf[512];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof(buf))) > 0) out->append(buf, static_cast<size_t>(n));
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  // The IAM user every test uses unless it asks for CredentialsFor(user);
  // tagged as Tidings user "tidings-device".
  const aws::Credentials& credentials() const { return creds_; }
  // The bootstrap administrator (every action): table setup such as TTL.
  const aws::Credentials& admin_credentials() const { return admin_; }

 private:
  static std::string Field(const std::string& json, const std::string& name) {
    size_t k = json.find("\"" + name + "\": \"");
    if (k == std::string::npos) return "";
    size_t start = k + name.size() + 5;
    return json.substr(start, json.find('"', start) - start);
  }

  int port_ = 0;
  pid_t pid_ = -1;
  aws::Credentials creds_;
  aws::Credentials admin_;
  std::mutex mu_;
  std::map<std::string, aws::Credentials> users_;
};

}  // namespace tidings::testing
