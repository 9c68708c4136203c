#include "daemon/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "common/json_string.h"

namespace tidings::daemon {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<bool> g_json{false};
std::mutex g_mu;

const char* LevelName(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

std::string Now() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof(out), "%s.%03dZ", buf, static_cast<int>(ms % 1000));
  return out;
}

// Text values with spaces or quotes are quoted so lines stay parseable.
void AppendTextValue(std::string* out, const std::string& v) {
  bool plain = !v.empty();
  for (unsigned char ch : v) {
    if (ch <= ' ' || ch == '"' || ch == '=') plain = false;
  }
  if (plain) {
    *out += v;
  } else {
    AppendJsonString(out, v, InvalidUtf8::kReplace);
  }
}

}  // namespace

void SetLogLevel(const std::string& level) {
  for (int l = 0; l <= 3; ++l) {
    if (level == LevelName(static_cast<LogLevel>(l))) g_level = l;
  }
}

void SetLogFormat(const std::string& format) {
  if (format == "json") g_json = true;
  if (format == "text") g_json = false;
}

bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

void Log(LogLevel level, const std::string& event, const LogFields& fields) {
  if (!LogEnabled(level)) return;
  std::string line;
  if (g_json) {
    line = "{\"ts\":\"" + Now() + "\",\"level\":\"" + LevelName(level) + "\",\"event\":";
    AppendJsonString(&line, event, InvalidUtf8::kReplace);
    for (const auto& [k, v] : fields) {
      line.push_back(',');
      AppendJsonString(&line, k, InvalidUtf8::kReplace);
      line.push_back(':');
      AppendJsonString(&line, v, InvalidUtf8::kReplace);
    }
    line += "}\n";
  } else {
    std::string lvl = LevelName(level);
    for (auto& ch : lvl) ch = static_cast<char>(ch - 'a' + 'A');
    line = Now() + " " + lvl + " " + event;
    for (const auto& [k, v] : fields) {
      line += " " + k + "=";
      AppendTextValue(&line, v);
    }
    line += "\n";
  }
  std::lock_guard<std::mutex> lock(g_mu);
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
}

}  // namespace tidings::daemon
