// Helpers for the API tests: only public headers and the standard library.
#pragma once

#include <cstdint>

#include "tests/common/temp_dir.h"
#include "tidings/tidings.h"
#include "tidings/tidings.hpp"

namespace tidings::apitest {

using TempDir = tidings::testing::TempDir;

// The stores' raw key.
inline constexpr uint8_t kKey[TIDINGS_KEY_SIZE] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                                   12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                                   23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
// The same key for the C++ API.
inline api::Key TestKey() { return api::Key::Raw(kKey); }

// A Chime app instance, and an endpoint where nothing listens.
inline constexpr const char kAppArn[] = "arn:aws:chime:us-east-1:123456789012:app-instance/app";
inline constexpr const char kRefused[] = "http://127.0.0.1:1";

}  // namespace tidings::apitest
