// `tidings status` and `tidings sync`: wired to the sync core once it lands.
#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace tidings::cli {

void AddSyncCommands(CLI::App& app, Globals& g, int& rc) {
  (void)app;
  (void)g;
  (void)rc;
}

}  // namespace tidings::cli
