// Structured logs on stderr: one line per event, text ("ts LEVEL event k=v")
// or JSON Lines. Callers pass only ids, counts and Status messages (which by
// contract carry no message text, keys or credentials); never bodies.
//
// Thread safety: every function may be called from any thread; lines are
// written whole.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace tidings::daemon {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

using LogFields = std::vector<std::pair<std::string, std::string>>;

// "debug" | "info" | "warn" | "error"; "text" | "json". Unknown values keep
// the current setting (the config validated them already).
void SetLogLevel(const std::string& level);
void SetLogFormat(const std::string& format);
bool LogEnabled(LogLevel level);
void Log(LogLevel level, const std::string& event, const LogFields& fields = {});

}  // namespace tidings::daemon
