// Newline-joined lists: how small sets of ids (conversations, logs, users)
// are kept in one sync-state value.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tidings {

// The non-empty lines of `joined`, in order.
std::vector<std::string> SplitLines(std::string_view joined);

}  // namespace tidings
