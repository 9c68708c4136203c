#include "emulator/chime/testing/emulator_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "common/clock.h"

namespace chime_local::testing {
namespace {

using tidings::Status;

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

// Waits up to `timeout_ms` for `pid`; true if it exited (status in *wstatus).
bool WaitFor(pid_t pid, int timeout_ms, int* wstatus) {
  const int64_t deadline = tidings::MonotonicMs() + timeout_ms;
  for (;;) {
    pid_t r = ::waitpid(pid, wstatus, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return true;
    if (tidings::MonotonicMs() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace

tidings::Result<std::unique_ptr<EmulatorProcess>> EmulatorProcess::Start(EmulatorOptions options) {
  std::unique_ptr<EmulatorProcess> p(new EmulatorProcess(std::move(options)));
  TIDINGS_RETURN_IF_ERROR(p->Launch());
  return p;
}

EmulatorProcess::~EmulatorProcess() { Stop().IgnoreError(); }

Status EmulatorProcess::Launch() {
  std::string binary = options_.binary.empty() ? TIDINGS_CHIME_LOCAL_BINARY : options_.binary;
  std::vector<std::string> args = {binary,
                                   "--host",
                                   "127.0.0.1",
                                   "--port",
                                   "0",
                                   "--access-key",
                                   options_.access_key,
                                   "--region",
                                   options_.region,
                                   "--throttle-rate",
                                   Num(options_.faults.throttle),
                                   "--error-rate",
                                   Num(options_.faults.error),
                                   "--latency-ms",
                                   std::to_string(options_.faults.latency_ms),
                                   "--seed",
                                   std::to_string(options_.faults.seed)};
  if (!options_.data_dir.empty()) {
    args.push_back("--data-dir");
    args.push_back(options_.data_dir);
  }
  if (!options_.tls_cert.empty()) {
    for (const std::string& a :
         {std::string("--tls-cert"), options_.tls_cert, std::string("--tls-key"), options_.tls_key,
          std::string("--ws-port"), std::to_string(ws_port_)}) {
      args.push_back(a);
    }
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The secret goes in the environment, not argv (which `ps` shows anyone).
  std::string secret = "TIDINGS_CHIME_LOCAL_SECRET_KEY=" + options_.secret_key;
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "TIDINGS_CHIME_LOCAL_", 20) != 0) envp.push_back(*e);
  }
  envp.push_back(secret.data());
  envp.push_back(nullptr);
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0)
    return tidings::IOError("pipe: " + std::string(strerror(errno)));
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(out[0]);
    ::close(out[1]);
    return tidings::IOError("fork: " + std::string(strerror(errno)));
  }
  if (pid == 0) {
    // No orphans: the emulator gets SIGTERM when the test process dies.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) _exit(1);
    ::dup2(out[1], STDOUT_FILENO);
    ::close_range(3, ~0u, 0);  // the test's sockets and files are not the emulator's
    ::execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  ::close(out[1]);
  pid_ = pid;
  // Read its one line: "tidings-chime-local listening on http://127.0.0.1:PORT".
  std::string line;
  const int64_t deadline = tidings::MonotonicMs() + options_.start_timeout_ms;
  bool eof = false;
  while (line.find('\n') == std::string::npos && !eof) {
    int64_t left = deadline - tidings::MonotonicMs();
    if (left <= 0) break;
    pollfd pfd{out[0], POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left)) <= 0) continue;
    char buf[256];
    ssize_t n = ::read(out[0], buf, sizeof(buf));
    if (n > 0) line.append(buf, static_cast<size_t>(n));
    eof = n == 0 || (n < 0 && errno != EINTR);
  }
  ::close(out[0]);
  const std::string kPrefix = "listening on http://127.0.0.1:";
  size_t at = line.find(kPrefix);
  if (at == std::string::npos || line.find('\n') == std::string::npos) {
    ::kill(pid_, SIGKILL);
    int ws = 0;
    WaitFor(pid_, 5000, &ws);
    pid_ = -1;
    return tidings::Unavailable(
        "tidings-chime-local (" + binary + ") did not report listening within " +
        std::to_string(options_.start_timeout_ms) + " ms" +
        (eof ? " (it exited; see its stderr above)" : "") + ": '" + line + "'");
  }
  port_ = std::atoi(line.c_str() + at + kPrefix.size());
  endpoint_ = "http://127.0.0.1:" + std::to_string(port_);
  if (!options_.tls_cert.empty()) {
    auto r = Admin("GET", "/_emulator/realtime", "");
    const size_t key = r.ok() ? r->second.find("\"port\":") : std::string::npos;
    if (!r.ok() || r->first != 200 || key == std::string::npos) {
      return tidings::Unavailable("tidings-chime-local: GET /_emulator/realtime failed");
    }
    ws_port_ = std::atoi(r->second.c_str() + key + 7);
  }
  return Status::Ok();
}

Status EmulatorProcess::Stop() {
  if (pid_ <= 0) return Status::Ok();
  ::kill(pid_, SIGTERM);
  int ws = 0;
  if (!WaitFor(pid_, 10000, &ws)) {
    ::kill(pid_, SIGKILL);
    WaitFor(pid_, 5000, &ws);
    pid_ = -1;
    return tidings::DeadlineExceeded("tidings-chime-local did not stop within 10 s; killed it");
  }
  pid_ = -1;
  if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
    return tidings::Internal("tidings-chime-local exited with status " + std::to_string(ws));
  }
  return Status::Ok();
}

Status EmulatorProcess::Restart() {
  TIDINGS_RETURN_IF_ERROR(Stop());
  return Launch();
}

Status EmulatorProcess::SetFaults(const EmulatorFaults& f) {
  const std::string body = "{\"throttle\":" + Num(f.throttle) + ",\"error\":" + Num(f.error) +
                           ",\"commit_then_fail\":" + Num(f.commit_then_fail) +
                           ",\"latency_ms\":" + std::to_string(f.latency_ms) +
                           ",\"seed\":" + std::to_string(f.seed) + "}";
  TIDINGS_ASSIGN_OR_RETURN(auto r, Admin("POST", "/_emulator/faults", body));
  if (r.first != 204) {
    return tidings::Unavailable("POST /_emulator/faults failed: " + std::to_string(r.first) + " " +
                                r.second.substr(0, 200));
  }
  return Status::Ok();
}

tidings::Result<int> EmulatorProcess::RealtimeSessions() {
  TIDINGS_ASSIGN_OR_RETURN(auto r, Admin("GET", "/_emulator/realtime", ""));
  const size_t key = r.second.find("\"sessions\":");
  if (r.first != 200 || key == std::string::npos) {
    return tidings::Unavailable("GET /_emulator/realtime failed: " + std::to_string(r.first) + " " +
                                r.second.substr(0, 200));
  }
  return std::atoi(r.second.c_str() + key + 11);
}

tidings::Result<int> EmulatorProcess::DropSockets(const std::string& user_arn, int code) {
  std::string body = "{\"code\":" + std::to_string(code);
  if (!user_arn.empty()) body += ",\"user\":\"" + user_arn + "\"";  // ARNs need no escaping
  TIDINGS_ASSIGN_OR_RETURN(auto r, Admin("POST", "/_emulator/realtime/drop", body + "}"));
  const size_t key = r.second.find("\"dropped\":");
  if (r.first != 200 || key == std::string::npos) {
    return tidings::Unavailable("POST /_emulator/realtime/drop failed: " + std::to_string(r.first) +
                                " " + r.second.substr(0, 200));
  }
  return std::atoi(r.second.c_str() + key + 10);
}

Status EmulatorProcess::SetRealtimeFaults(const RealtimeFaults& f) {
  const std::string body = "{\"delay_ms\":" + std::to_string(f.delay_ms) +
                           ",\"refuse_status\":" + std::to_string(f.refuse_status) +
                           ",\"refuse_close\":" + std::to_string(f.refuse_close) + "}";
  TIDINGS_ASSIGN_OR_RETURN(auto r, Admin("POST", "/_emulator/realtime/faults", body));
  if (r.first != 204) {
    return tidings::Unavailable("POST /_emulator/realtime/faults failed: " +
                                std::to_string(r.first) + " " + r.second.substr(0, 200));
  }
  return Status::Ok();
}

tidings::Result<std::pair<int, std::string>> EmulatorProcess::Admin(const std::string& method,
                                                                    const std::string& path,
                                                                    const std::string& body) {
  if (pid_ <= 0) return tidings::FailedPrecondition("the emulator is not running");
  const std::string request =
      method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n\r\n" + body;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return tidings::IOError("socket: " + std::string(strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size())) {
    char buf[512];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;)
      response.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (response.rfind("HTTP/1.1 ", 0) != 0) {
    return tidings::Unavailable(method + " " + path + ": no HTTP response from the emulator");
  }
  const size_t blank = response.find("\r\n\r\n");
  return std::make_pair(std::atoi(response.c_str() + 9),
                        blank == std::string::npos ? std::string() : response.substr(blank + 4));
}

namespace {

// Runs `openssl args...` quietly; OK if it exits 0.
Status RunOpenssl(std::vector<std::string> args) {
  args.insert(args.begin(), "openssl");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return tidings::IOError("fork: " + std::string(strerror(errno)));
  if (pid == 0) {
    int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, STDOUT_FILENO);
    ::dup2(null, STDERR_FILENO);
    ::execvp("openssl", argv.data());
    _exit(127);
  }
  int ws = 0;
  if (!WaitFor(pid, 60000, &ws) || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
    return tidings::Unavailable("`openssl " + args[1] +
                                "` failed: is the openssl command installed (scripts/setup.sh)?");
  }
  return Status::Ok();
}

}  // namespace

tidings::Result<TestTls> MakeTestTls(const std::string& dir) {
  TestTls t{dir + "/ca.pem", dir + "/cert.pem", dir + "/key.pem"};
  const std::string ca_key = dir + "/ca.key", csr = dir + "/req.csr", ext = dir + "/ext.cnf";
  TIDINGS_RETURN_IF_ERROR(
      RunOpenssl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out",
                  t.ca_file, "-days", "2", "-subj", "/CN=tidings throwaway test CA"}));
  TIDINGS_RETURN_IF_ERROR(RunOpenssl({"req", "-newkey", "rsa:2048", "-nodes", "-keyout", t.key_file,
                                      "-out", csr, "-subj", "/CN=127.0.0.1"}));
  FILE* f = std::fopen(ext.c_str(), "w");
  if (f == nullptr) return tidings::IOError("cannot write " + ext);
  std::fputs(
      "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
      "extendedKeyUsage=serverAuth\n",
      f);
  std::fclose(f);
  TIDINGS_RETURN_IF_ERROR(
      RunOpenssl({"x509", "-req", "-in", csr, "-CA", t.ca_file, "-CAkey", ca_key, "-CAcreateserial",
                  "-out", t.cert_file, "-days", "2", "-extfile", ext}));
  return t;
}

}  // namespace chime_local::testing
