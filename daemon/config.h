// The daemon's configuration: a TOML file, then TIDINGS_DAEMON_<SECTION>_<KEY>
// environment overrides, then command-line flags. Every key, its default and
// its environment name are listed in docs/daemon.md and
// packaging/tidings-daemon.example.toml.
//
// Errors are values: InvalidArgument whose message names the file and line
// (or the environment variable), the key, what is wrong and what to do. The
// daemon prints it and exits 2 before starting anything.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace tidings::daemon {

struct DaemonConfig {
  std::string source;  // the file it came from ("" if none), for messages

  // [store]
  std::string store_path;
  std::string key_file;
  std::string durability = "sync";  // sync | relaxed
  // Downloaded attachments kept before the least recently used are evicted
  // (MiB); 0: no limit.
  int64_t attachment_quota_mb = 1024;

  // [sync]
  std::vector<std::string> backends = {"dynamodb"};  // dynamodb, chime
  int64_t active_poll_ms = 2'000;
  int64_t idle_poll_ms = 60'000;
  int64_t base_backoff_ms = 500;
  int64_t max_backoff_ms = 60'000;
  int64_t connect_timeout_ms = 5'000;
  int64_t request_timeout_ms = 30'000;
  int64_t restart_after_error_ms = 300'000;  // auth/store error: try again after

  // [dynamodb]
  std::string dynamodb_table = "tidings";
  std::string dynamodb_region;
  std::string dynamodb_endpoint;

  // [chime]
  std::string chime_app_instance_arn;
  std::string chime_user_arn;
  std::string chime_region;
  std::string chime_endpoint;

  // [s3]: where attachments go (docs/attachments.md); no bucket, none.
  std::string s3_bucket;
  std::string s3_region;
  std::string s3_endpoint;
  bool s3_path_style = false;
  int64_t s3_auto_fetch_max_bytes = 0;

  // [log]
  std::string log_level = "info";   // debug | info | warn | error
  std::string log_format = "text";  // text | json

  // [metrics]
  std::string metrics_listen;  // "" = off; "127.0.0.1:9464", port 0 = any
  bool metrics_allow_non_loopback = false;

  // [socket]
  bool socket_enabled = true;

  bool Uses(const std::string& backend) const;
};

// Looks up an environment variable; a seam for tests. Returns false if unset.
using EnvLookup = std::function<bool(const std::string& name, std::string* value)>;
EnvLookup ProcessEnv();

// Parses TOML text (`source` names it in messages), applies the environment
// overrides and checks every value and the combination. `path` "" means no
// file: defaults plus environment.
Result<DaemonConfig> ParseConfig(const std::string& text, const std::string& source,
                                 const EnvLookup& env);
// Reads `path` and parses it. NotFound-style problems are InvalidArgument too
// (exit 2) with a message saying which file.
Result<DaemonConfig> LoadConfig(const std::string& path, const EnvLookup& env);

// host and port of metrics.listen; InvalidArgument if malformed.
struct ListenAddress {
  std::string host;
  int port = 0;
  bool loopback = false;
};
Result<ListenAddress> ParseListen(const std::string& listen);

// The environment variable that overrides `section.key`.
std::string EnvName(const std::string& section, const std::string& key);

// Where `tidings init` puts a store's key file: `<store>.key`, beside the
// store directory (trailing slashes ignored).
std::string KeyFileBesideStore(const std::string& store_path);

}  // namespace tidings::daemon
