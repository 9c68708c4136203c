#include "daemon/config.h"

#include <arpa/inet.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <variant>

namespace tidings::daemon {
namespace {

using Value = std::variant<std::string, int64_t, bool, std::vector<std::string>>;
enum class Type { kString, kInt, kBool, kList };

const char* TypeName(Type t) {
  switch (t) {
    case Type::kString:
      return "a string";
    case Type::kInt:
      return "an integer";
    case Type::kBool:
      return "true or false";
    case Type::kList:
      return "a list of strings";
  }
  return "";
}

// One configuration key: where it lives, its type, and how it is checked and
// stored. The setter returns a problem ("must be ...") or "" when fine.
struct Field {
  const char* section;
  const char* key;
  Type type;
  std::function<std::string(DaemonConfig&, const Value&)> set;
  bool from_env = true;
};

std::string OneOf(const std::string& v, std::initializer_list<const char*> allowed,
                  std::string* out) {
  for (const char* a : allowed) {
    if (v == a) {
      *out = v;
      return "";
    }
  }
  std::string list;
  for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + "\"" + a + "\"";
  return "must be one of " + list;
}

auto Str(std::string DaemonConfig::*member) {
  return [member](DaemonConfig& c, const Value& v) -> std::string {
    c.*member = std::get<std::string>(v);
    return "";
  };
}

auto Millis(int64_t DaemonConfig::*member, int64_t min, int64_t max) {
  return [member, min, max](DaemonConfig& c, const Value& v) -> std::string {
    int64_t n = std::get<int64_t>(v);
    if (n < min || n > max) {
      return "must be between " + std::to_string(min) + " and " + std::to_string(max) +
             " (milliseconds)";
    }
    c.*member = n;
    return "";
  };
}

// Long, and on purpose: one row per configuration key, the table that
// parsing, validation and `--check-config` all read.
const std::vector<Field>& ConfigFields() {
  static const std::vector<Field> fields = {
      {"store", "path", Type::kString, Str(&DaemonConfig::store_path), false},
      {"store", "key_file", Type::kString, Str(&DaemonConfig::key_file), false},
      {"store", "durability", Type::kString,
       [](DaemonConfig& c, const Value& v) {
         return OneOf(std::get<std::string>(v), {"sync", "relaxed"}, &c.durability);
       }},
      {"store", "attachment_quota_mb", Type::kInt,
       [](DaemonConfig& c, const Value& v) -> std::string {
         const int64_t n = std::get<int64_t>(v);
         if (n < 0 || n > (int64_t{1} << 40)) return "must be 0 (no limit) or a size in MiB";
         c.attachment_quota_mb = n;
         return "";
       }},
      {"sync", "backends", Type::kList,
       [](DaemonConfig& c, const Value& v) -> std::string {
         auto list = std::get<std::vector<std::string>>(v);
         if (list.empty()) return "must name at least one backend (\"dynamodb\", \"chime\")";
         std::vector<std::string> seen;
         for (const auto& b : list) {
           if (b != "dynamodb" && b != "chime") {
             return "has \"" + b + "\"; the backends are \"dynamodb\" and \"chime\"";
           }
           if (std::find(seen.begin(), seen.end(), b) != seen.end()) {
             return "names \"" + b + "\" twice";
           }
           seen.push_back(b);
         }
         c.backends = list;
         return "";
       }},
      {"sync", "active_poll_ms", Type::kInt, Millis(&DaemonConfig::active_poll_ms, 50, 3'600'000)},
      {"sync", "idle_poll_ms", Type::kInt, Millis(&DaemonConfig::idle_poll_ms, 50, 86'400'000)},
      {"sync", "base_backoff_ms", Type::kInt, Millis(&DaemonConfig::base_backoff_ms, 10, 600'000)},
      {"sync", "max_backoff_ms", Type::kInt, Millis(&DaemonConfig::max_backoff_ms, 10, 3'600'000)},
      {"sync", "connect_timeout_ms", Type::kInt,
       Millis(&DaemonConfig::connect_timeout_ms, 100, 600'000)},
      {"sync", "request_timeout_ms", Type::kInt,
       Millis(&DaemonConfig::request_timeout_ms, 100, 600'000)},
      {"sync", "restart_after_error_ms", Type::kInt,
       Millis(&DaemonConfig::restart_after_error_ms, 100, 86'400'000)},
      {"dynamodb", "table", Type::kString,
       [](DaemonConfig& c, const Value& v) -> std::string {
         const auto& t = std::get<std::string>(v);
         if (t.size() < 3 || t.size() > 255) return "must be 3 to 255 characters";
         for (char ch : t) {
           if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '-' &&
               ch != '.') {
             return "may only contain letters, digits, '_', '-' and '.'";
           }
         }
         c.dynamodb_table = t;
         return "";
       }},
      {"dynamodb", "region", Type::kString, Str(&DaemonConfig::dynamodb_region)},
      {"dynamodb", "endpoint", Type::kString,
       [](DaemonConfig& c, const Value& v) -> std::string {
         const auto& e = std::get<std::string>(v);
         if (!e.empty() && e.rfind("http://", 0) != 0 && e.rfind("https://", 0) != 0) {
           return "must start with https:// (http:// only for a test server on loopback)";
         }
         c.dynamodb_endpoint = e;
         return "";
       }},
      {"chime", "app_instance_arn", Type::kString,
       [](DaemonConfig& c, const Value& v) -> std::string {
         const auto& a = std::get<std::string>(v);
         if (!a.empty() && a.rfind("arn:", 0) != 0) return "must be an ARN (arn:aws:chime:...)";
         c.chime_app_instance_arn = a;
         return "";
       }},
      {"chime", "user_arn", Type::kString,
       [](DaemonConfig& c, const Value& v) -> std::string {
         const auto& a = std::get<std::string>(v);
         if (!a.empty() && a.rfind("arn:", 0) != 0) return "must be an ARN (arn:aws:chime:...)";
         c.chime_user_arn = a;
         return "";
       }},
      {"chime", "region", Type::kString, Str(&DaemonConfig::chime_region)},
      {"chime", "endpoint", Type::kString,
       [](DaemonConfig& c, const Value& v) -> std::string {
         const auto& e = std::get<std::string>(v);
         if (!e.empty() && e.rfind("http://", 0) != 0 && e.rfind("https://", 0) != 0) {
           return "must start with https:// (http:// only for a test server on loopback)";
         }
         c.chime_endpoint = e;
         return "";
       }},
      {"s3", "bucket", Type::kString, Str(&DaemonConfig::s3_bucket)},
      {"s3", "region", Type::kString, Str(&DaemonConfig::s3_region)},
      {"s3", "endpoint", Type::kString,
       [](DaemonConfig& c, const Value& v) -> std::string {
         const auto& e = std::get<std::string>(v);
         if (!e.empty() && e.rfind("http://", 0) != 0 && e.rfind("https://", 0) != 0) {
           return "must start with https:// (http:// only for a test server on loopback)";
         }
         c.s3_endpoint = e;
         return "";
       }},
      {"s3", "auto_fetch_max_bytes", Type::kInt,
       [](DaemonConfig& c, const Value& v) -> std::string {
         const int64_t n = std::get<int64_t>(v);
         if (n < 0) return "must be 0 (on demand) or more bytes";
         c.s3_auto_fetch_max_bytes = n;
         return "";
       }},
      {"s3", "path_style", Type::kBool,
       [](DaemonConfig& c, const Value& v) -> std::string {
         c.s3_path_style = std::get<bool>(v);
         return "";
       }},
      {"log", "level", Type::kString,
       [](DaemonConfig& c, const Value& v) {
         return OneOf(std::get<std::string>(v), {"debug", "info", "warn", "error"}, &c.log_level);
       }},
      {"log", "format", Type::kString,
       [](DaemonConfig& c, const Value& v) {
         return OneOf(std::get<std::string>(v), {"text", "json"}, &c.log_format);
       }},
      {"metrics", "listen", Type::kString,
       [](DaemonConfig& c, const Value& v) -> std::string {
         const auto& l = std::get<std::string>(v);
         if (!l.empty()) {
           auto parsed = ParseListen(l);
           if (!parsed.ok()) return parsed.status().message();
         }
         c.metrics_listen = l;
         return "";
       }},
      {"metrics", "allow_non_loopback", Type::kBool,
       [](DaemonConfig& c, const Value& v) -> std::string {
         c.metrics_allow_non_loopback = std::get<bool>(v);
         return "";
       }},
      {"socket", "enabled", Type::kBool,
       [](DaemonConfig& c, const Value& v) -> std::string {
         c.socket_enabled = std::get<bool>(v);
         return "";
       }},
  };
  return fields;
}

const Field* Find(const std::string& section, const std::string& key) {
  for (const auto& f : ConfigFields()) {
    if (section == f.section && key == f.key) return &f;
  }
  return nullptr;
}

std::string KnownKeys(const std::string& section) {
  std::string out;
  for (const auto& f : ConfigFields()) {
    if (section == f.section) out += std::string(out.empty() ? "" : ", ") + f.key;
  }
  return out;
}

std::string KnownSections() {
  std::string out;
  std::vector<std::string> seen;
  for (const auto& f : ConfigFields()) {
    if (std::find(seen.begin(), seen.end(), f.section) != seen.end()) continue;
    seen.push_back(f.section);
    out += std::string(out.empty() ? "" : ", ") + "[" + f.section + "]";
  }
  return out;
}

// Converts a TOML node to the field's type, or says why not.
bool FromToml(const toml::node& node, Type type, Value* out) {
  switch (type) {
    case Type::kString:
      if (auto s = node.value<std::string>(); s && node.is_string()) {
        *out = *s;
        return true;
      }
      return false;
    case Type::kInt:
      if (node.is_integer()) {
        *out = *node.value<int64_t>();
        return true;
      }
      return false;
    case Type::kBool:
      if (node.is_boolean()) {
        *out = *node.value<bool>();
        return true;
      }
      return false;
    case Type::kList: {
      const toml::array* arr = node.as_array();
      if (arr == nullptr) return false;
      std::vector<std::string> list;
      for (const auto& item : *arr) {
        if (!item.is_string()) return false;
        list.push_back(*item.value<std::string>());
      }
      *out = list;
      return true;
    }
  }
  return false;
}

bool FromEnv(const std::string& text, Type type, Value* out) {
  switch (type) {
    case Type::kString:
      *out = text;
      return true;
    case Type::kInt: {
      if (text.empty()) return false;
      char* end = nullptr;
      errno = 0;
      long long n = std::strtoll(text.c_str(), &end, 10);
      if (errno != 0 || *end != '\0') return false;
      *out = static_cast<int64_t>(n);
      return true;
    }
    case Type::kBool:
      if (text == "true" || text == "1") {
        *out = true;
        return true;
      }
      if (text == "false" || text == "0") {
        *out = false;
        return true;
      }
      return false;
    case Type::kList: {
      std::vector<std::string> list;
      std::stringstream ss(text);
      std::string item;
      while (std::getline(ss, item, ',')) {
        item.erase(0, item.find_first_not_of(" \t"));
        item.erase(item.find_last_not_of(" \t") + 1);
        if (!item.empty()) list.push_back(item);
      }
      *out = list;
      return true;
    }
  }
  return false;
}

// Checks that need several keys at once.
Status CheckCombination(const DaemonConfig& c) {
  const std::string where = c.source.empty() ? "the configuration" : c.source;
  if (c.idle_poll_ms < c.active_poll_ms) {
    return InvalidArgument(where + ": sync.idle_poll_ms (" + std::to_string(c.idle_poll_ms) +
                           ") is shorter than sync.active_poll_ms (" +
                           std::to_string(c.active_poll_ms) +
                           "). Make idle_poll_ms >= " + "active_poll_ms");
  }
  if (c.max_backoff_ms < c.base_backoff_ms) {
    return InvalidArgument(where + ": sync.max_backoff_ms is shorter than sync.base_backoff_ms. " +
                           "Make max_backoff_ms >= base_backoff_ms");
  }
  if (c.Uses("chime") && (c.chime_app_instance_arn.empty() || c.chime_user_arn.empty())) {
    return InvalidArgument(where +
                           ": sync.backends has \"chime\" but chime.app_instance_arn or "
                           "chime.user_arn is missing. Set both in the [chime] section");
  }
  if (!c.metrics_listen.empty()) {
    auto l = ParseListen(c.metrics_listen);
    if (!l.ok()) return InvalidArgument(where + ": metrics.listen: " + l.status().message());
    if (!l->loopback && !c.metrics_allow_non_loopback) {
      return InvalidArgument(where + ": metrics.listen \"" + c.metrics_listen +
                             "\" is not a loopback address; the metrics and health endpoints "
                             "have no authentication. Use 127.0.0.1 or [::1], or set "
                             "metrics.allow_non_loopback = true if a firewall protects it");
    }
  }
  return Status::Ok();
}

}  // namespace

bool DaemonConfig::Uses(const std::string& backend) const {
  return std::find(backends.begin(), backends.end(), backend) != backends.end();
}

EnvLookup ProcessEnv() {
  return [](const std::string& name, std::string* value) {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return false;
    *value = v;
    return true;
  };
}

std::string EnvName(const std::string& section, const std::string& key) {
  std::string out = "TIDINGS_DAEMON_" + section + "_" + key;
  for (auto& ch : out) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return out;
}

Result<ListenAddress> ParseListen(const std::string& listen) {
  ListenAddress out;
  std::string host, port;
  if (!listen.empty() && listen[0] == '[') {
    size_t close = listen.find(']');
    if (close == std::string::npos || close + 1 >= listen.size() || listen[close + 1] != ':') {
      return InvalidArgument("\"" + listen + "\" is not HOST:PORT (e.g. \"127.0.0.1:9464\")");
    }
    host = listen.substr(1, close - 1);
    port = listen.substr(close + 2);
  } else {
    size_t colon = listen.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      return InvalidArgument("\"" + listen + "\" is not HOST:PORT (e.g. \"127.0.0.1:9464\")");
    }
    host = listen.substr(0, colon);
    port = listen.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char ch) { return ch >= '0' && ch <= '9'; }) ||
      std::stoi(port) > 65535) {
    return InvalidArgument("\"" + listen + "\" has no valid port (0 to 65535; 0 picks a free one)");
  }
  in_addr v4{};
  in6_addr v6{};
  if (host == "localhost") {
    out.loopback = true;
    host = "127.0.0.1";
  } else if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    out.loopback = (ntohl(v4.s_addr) >> 24) == 127;
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    out.loopback = IN6_IS_ADDR_LOOPBACK(&v6);
  } else {
    return InvalidArgument("\"" + listen + "\": \"" + host +
                           "\" is not an IP address (use 127.0.0.1 or [::1])");
  }
  out.host = host;
  out.port = std::stoi(port);
  return out;
}

Result<DaemonConfig> ParseConfig(const std::string& text, const std::string& source,
                                 const EnvLookup& env) {
  DaemonConfig c;
  c.source = source;
  const std::string where = source.empty() ? "<config>" : source;
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return InvalidArgument(where + ":" + std::to_string(e.source().begin.line) + ": " +
                           std::string(e.description()) + ". Fix the TOML syntax there");
  }
  for (const auto& [section_key, section_node] : root) {
    const std::string section(section_key.str());
    const auto line = std::to_string(section_node.source().begin.line);
    const toml::table* table = section_node.as_table();
    if (KnownKeys(section).empty()) {
      return InvalidArgument(where + ":" + line + ": unknown section [" + section +
                             "]. The sections are " + KnownSections());
    }
    if (table == nullptr) {
      return InvalidArgument(where + ":" + line + ": \"" + section + "\" must be a section ([" +
                             section + "]), not a value");
    }
    for (const auto& [key_node, value] : *table) {
      const std::string key(key_node.str());
      const auto kline = std::to_string(value.source().begin.line);
      const Field* f = Find(section, key);
      if (f == nullptr) {
        return InvalidArgument(where + ":" + kline + ": unknown key " + section + "." + key +
                               ". The keys of [" + section + "] are " + KnownKeys(section));
      }
      Value v;
      if (!FromToml(value, f->type, &v)) {
        return InvalidArgument(where + ":" + kline + ": " + section + "." + key + " must be " +
                               TypeName(f->type));
      }
      if (std::string problem = f->set(c, v); !problem.empty()) {
        return InvalidArgument(where + ":" + kline + ": " + section + "." + key + " " + problem);
      }
    }
  }
  for (const auto& f : ConfigFields()) {
    if (!f.from_env) continue;
    const std::string name = EnvName(f.section, f.key);
    std::string text_value;
    if (!env(name, &text_value)) continue;
    Value v;
    if (!FromEnv(text_value, f.type, &v)) {
      return InvalidArgument("environment variable " + name + " must be " + TypeName(f.type) +
                             " (it overrides " + f.section + "." + f.key + ")");
    }
    if (std::string problem = f.set(c, v); !problem.empty()) {
      return InvalidArgument("environment variable " + name + " (" + f.section + "." + f.key +
                             ") " + problem);
    }
  }
  TIDINGS_RETURN_IF_ERROR(CheckCombination(c));
  return c;
}

Result<DaemonConfig> LoadConfig(const std::string& path, const EnvLookup& env) {
  if (path.empty()) return ParseConfig("", "", env);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return InvalidArgument("cannot read the configuration file " + path +
                           ". Check the path given with --config or TIDINGS_DAEMON_CONFIG "
                           "(packaging/tidings-daemon.example.toml is a starting point)");
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str(), path, env);
}

std::string KeyFileBesideStore(const std::string& store_path) {
  std::string p = store_path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p + ".key";
}

}  // namespace tidings::daemon
