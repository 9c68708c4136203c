#include "sync/aws/credentials.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <map>

#include "common/clock.h"
#include "crypto/secret_key.h"

namespace tidings::aws {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string Home() { return Env("HOME"); }

// The environment's credentials once TakeEnvironmentCredentials moved them.
struct TakenEnvironment {
  std::mutex mu;
  bool taken = false;
  std::string access_key_id;  // not secret
  crypto::SharedSecret secret_access_key, session_token;
};

TakenEnvironment& Taken() {
  static TakenEnvironment* taken = new TakenEnvironment;  // used until exit
  return *taken;
}

// The value of `name`, zeroed where the environment holds it, then unset.
Result<crypto::SecretBytes> TakeVariable(const char* name) {
  char* value = std::getenv(name);
  if (value == nullptr) return crypto::SecretBytes();
  const size_t size = std::strlen(value);
  auto copy = crypto::SecretBytes::Copy(std::string_view(value, size));
  if (!copy.ok()) return copy.status();  // left where it was
  ::explicit_bzero(value, size);
  ::unsetenv(name);
  return copy;
}

class Static final : public CredentialsProvider {
 public:
  explicit Static(Credentials c) : c_(std::move(c)) {}
  Result<Credentials> Get() override { return c_; }

 private:
  Credentials c_;
};

std::string_view EnvView(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string_view(v) : std::string_view();
}

// Where the file's credentials were read from, to read them again only when
// the file changes (each read leaves the secret in the parser's buffers
// until they are wiped; reading once per change keeps that rare).
struct FileStamp {
  std::string path, profile;
  int64_t mtime_ns = -1;
  int64_t size = -1;
  bool operator==(const FileStamp&) const = default;
};

FileStamp StampOf(const std::string& path, const std::string& profile) {
  FileStamp stamp{path, profile};
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    stamp.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
    stamp.size = st.st_size;
  }
  return stamp;
}

// Every copy of the returned credentials shares the chain's one locked copy
// of each secret: nothing is copied per request.
class Chain final : public CredentialsProvider {
 public:
  Result<Credentials> Get() override {
    {
      TakenEnvironment& t = Taken();
      std::lock_guard<std::mutex> lock(t.mu);
      if (t.taken && !t.access_key_id.empty() && !t.secret_access_key.empty()) {
        return Credentials{t.access_key_id, t.secret_access_key, t.session_token, 0};
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    // The environment, when nobody took it (a library that never called
    // TakeEnvironmentCredentials): compared in place, copied on a change.
    const std::string_view key_id = EnvView("AWS_ACCESS_KEY_ID");
    const std::string_view secret = EnvView("AWS_SECRET_ACCESS_KEY");
    const std::string_view token = EnvView("AWS_SESSION_TOKEN");
    if (!key_id.empty() && !secret.empty()) {
      if (env_.access_key_id != key_id || env_.secret_access_key.view() != secret ||
          env_.session_token.view() != token) {
        env_ = Credentials{std::string(key_id), secret, token, 0};
      }
      return env_;
    }
    std::string file = Env("AWS_SHARED_CREDENTIALS_FILE");
    if (file.empty()) file = Home() + "/.aws/credentials";
    std::string profile = Env("AWS_PROFILE");
    if (profile.empty()) profile = "default";
    FileStamp stamp = StampOf(file, profile);
    if (!(stamp == file_stamp_)) {
      auto p = ReadProfile(file, profile, false);
      file_ = Credentials{p["aws_access_key_id"], p["aws_secret_access_key"],
                          p["aws_session_token"], 0};
      for (auto& [name, value] : p) crypto::Wipe(&value);
      file_stamp_ = std::move(stamp);
    }
    if (!file_.access_key_id.empty() && !file_.secret_access_key.empty()) return file_;
    return Unauthenticated(
        "no AWS credentials found: set AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, or a profile in " +
        file + " (AWS_PROFILE=" + profile + ")");
  }

 private:
  std::mutex mu_;
  Credentials env_;       // REQUIRES: mu_
  Credentials file_;      // REQUIRES: mu_
  FileStamp file_stamp_;  // REQUIRES: mu_
};

class Callback final : public CredentialsProvider {
 public:
  Callback(std::function<Result<Credentials>()> fetch, int64_t before)
      : fetch_(std::move(fetch)), before_(before) {}
  Result<Credentials> Get() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (cached_ && (cached_->expires_at_ms == 0 || cached_->expires_at_ms - before_ > WallMs())) {
      return *cached_;
    }
    auto fresh = fetch_();
    if (!fresh.ok()) return fresh.status().WithContext("the app's credentials callback failed");
    cached_ = *fresh;
    return *fresh;
  }

 private:
  std::function<Result<Credentials>()> fetch_;
  int64_t before_;
  std::mutex mu_;
  std::optional<Credentials> cached_;
};

}  // namespace

std::map<std::string, std::string> ReadProfile(const std::string& path, const std::string& profile,
                                               bool config_file) {
  // The file holds secrets: read whole into one buffer, parsed in place and
  // wiped, so no stream or line buffer is freed holding them.
  std::string content;
  if (int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC); fd >= 0) {
    constexpr size_t kMaxFile = (1 << 20) - 1;
    // Unreadable or too long: no credentials from it, as a missing file.
    if (!crypto::ReadSecretFile(fd, path, kMaxFile, &content).ok()) {
      crypto::Wipe(&content);
    }
    ::close(fd);
  }
  auto strip = [](std::string_view v) {
    const size_t a = v.find_first_not_of(" \t\r");
    const size_t b = v.find_last_not_of(" \t\r");
    return a == std::string_view::npos ? std::string_view() : v.substr(a, b - a + 1);
  };
  std::map<std::string, std::string> out;
  const std::string want = config_file && profile != "default" ? "profile " + profile : profile;
  std::string_view rest = content;
  bool in_section = false;
  while (!rest.empty()) {
    const size_t eol = rest.find('\n');
    std::string_view line = strip(rest.substr(0, eol));
    rest.remove_prefix(eol == std::string_view::npos ? rest.size() : eol + 1);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      in_section = strip(line.substr(1, line.size() - 2)) == want;
      continue;
    }
    if (!in_section) continue;
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    out[std::string(strip(line.substr(0, eq)))] = std::string(strip(line.substr(eq + 1)));
  }
  crypto::Wipe(&content);
  return out;
}

Status TakeEnvironmentCredentials() {
  TakenEnvironment& t = Taken();
  std::lock_guard<std::mutex> lock(t.mu);
  if (t.taken) return Status::Ok();
  TIDINGS_ASSIGN_OR_RETURN(auto secret, TakeVariable("AWS_SECRET_ACCESS_KEY"));
  TIDINGS_ASSIGN_OR_RETURN(auto token, TakeVariable("AWS_SESSION_TOKEN"));
  t.access_key_id = Env("AWS_ACCESS_KEY_ID");
  ::unsetenv("AWS_ACCESS_KEY_ID");
  t.secret_access_key = crypto::SharedSecret(std::move(secret));
  t.session_token = crypto::SharedSecret(std::move(token));
  t.taken = true;
  return Status::Ok();
}

std::shared_ptr<CredentialsProvider> StaticCredentials(Credentials c) {
  return std::make_shared<Static>(std::move(c));
}

std::shared_ptr<CredentialsProvider> DefaultCredentialsChain() { return std::make_shared<Chain>(); }

std::shared_ptr<CredentialsProvider> CallbackCredentials(std::function<Result<Credentials>()> fetch,
                                                         int64_t refresh_before_ms) {
  return std::make_shared<Callback>(std::move(fetch), refresh_before_ms);
}

std::string ResolveRegion(const std::string& configured) {
  if (!configured.empty()) return configured;
  for (const char* name : {"AWS_REGION", "AWS_DEFAULT_REGION"}) {
    if (std::string v = Env(name); !v.empty()) return v;
  }
  std::string file = Env("AWS_CONFIG_FILE");
  if (file.empty()) file = Home() + "/.aws/config";
  std::string profile = Env("AWS_PROFILE");
  auto p = ReadProfile(file, profile.empty() ? "default" : profile, true);
  return p.count("region") ? p["region"] : "us-east-1";
}

std::string ResolveEndpoint(const std::string& configured, const std::string& env_service,
                            const std::string& endpoint_prefix, const std::string& region) {
  if (!configured.empty()) return configured;
  if (std::string v = Env(("AWS_ENDPOINT_URL_" + env_service).c_str()); !v.empty()) return v;
  if (std::string v = Env("AWS_ENDPOINT_URL"); !v.empty()) return v;
  return "https://" + endpoint_prefix + "." + region + ".amazonaws.com";
}

namespace {

bool IsLoopbackHost(std::string_view host) {
  if (host == "[::1]") return true;
  std::string lower(host);
  for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (lower == "localhost") return true;
  // 127.a.b.c, each part a decimal number up to 255.
  if (lower.rfind("127.", 0) != 0) return false;
  int parts = 0;
  size_t i = 0;
  while (i <= lower.size()) {
    size_t dot = lower.find('.', i);
    if (dot == std::string::npos) dot = lower.size();
    const std::string part = lower.substr(i, dot - i);
    if (part.empty() || part.size() > 3 ||
        part.find_first_not_of("0123456789") != std::string::npos || std::stoi(part) > 255) {
      return false;
    }
    ++parts;
    i = dot + 1;
  }
  return parts == 4;
}

// The host of scheme://host[:port][/path], IPv6 literals with brackets.
std::string_view HostOf(std::string_view rest) {
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (const size_t at = rest.rfind('@'); at != std::string_view::npos) rest.remove_prefix(at + 1);
  if (!rest.empty() && rest.front() == '[') return rest.substr(0, rest.find(']') + 1);
  return rest.substr(0, rest.find(':'));
}

}  // namespace

Status CheckEndpoint(std::string_view url) {
  constexpr std::string_view kHttps = "https://", kHttp = "http://";
  if (url.substr(0, kHttps.size()) == kHttps && !HostOf(url.substr(kHttps.size())).empty()) {
    return Status::Ok();
  }
  const std::string shown(url.substr(0, 200));
  if (url.substr(0, kHttp.size()) != kHttp) {
    return InvalidArgument("the endpoint " + shown + " is not an https:// URL; use https://host");
  }
  if (!IsLoopbackHost(HostOf(url.substr(kHttp.size())))) {
    return InvalidArgument("the endpoint " + shown +
                           " is plain http:// to a host other than this machine; use https:// "
                           "(http:// is allowed only on loopback: 127.0.0.0/8, ::1, localhost)");
  }
  return Status::Ok();
}

Status CheckEndpointSetting(const std::string& configured, const std::string& env_service) {
  // The region only shapes the default (https) URL.
  return CheckEndpoint(ResolveEndpoint(configured, env_service, "x", "us-east-1"));
}

}  // namespace tidings::aws
