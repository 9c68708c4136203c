// Helpers for the API tests: only public headers and the standard library.
#pragma once

#include "tests/common/temp_dir.h"

namespace tidings::apitest {

using TempDir = tidings::testing::TempDir;

}  // namespace tidings::apitest
