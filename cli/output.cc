#include "cli/output.h"

#include <unistd.h>

#include <algorithm>

namespace tidings::cli {

// Drawn only on a terminal, so scripts and logs get clean stderr.
Progress::Progress(const char* label) : label_(label), enabled_(::isatty(2) != 0) {}

Progress::~Progress() {
  if (enabled_ && last_percent_ >= 0) std::fputc('\n', stderr);
}

void Progress::Update(uint64_t done, uint64_t total) {
  if (!enabled_ || total == 0) return;
  int percent = static_cast<int>(std::min<uint64_t>(100, done * 100 / total));
  if (percent == last_percent_) return;
  last_percent_ = percent;
  int filled = percent / 5;
  std::fprintf(stderr, "\r%s [%.*s%*s] %3d%% (%llu)", label_, filled, "####################",
               20 - filled, "", percent, static_cast<unsigned long long>(done));
  std::fflush(stderr);
}

}  // namespace tidings::cli
