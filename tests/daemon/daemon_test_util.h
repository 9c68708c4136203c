// Helpers shared by the daemon's C++ tests.
#pragma once

#include <gtest/gtest.h>

#include <span>
#include <string>

#include "tidings/tidings.hpp"

namespace tidings::daemon {

// A new store for alice at `path`, relaxed durability, unlocked by the raw
// key `key`.
inline api::Store NewStore(const std::string& path,
                           std::span<const uint8_t, TIDINGS_KEY_SIZE> key) {
  api::OpenOptions o;
  o.create_if_missing = true;
  o.user_id = "alice";
  o.durability = TIDINGS_DURABILITY_RELAXED;
  auto store = api::Store::Open(path, api::Key::Raw(key), o);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return std::move(store).value();
}

}  // namespace tidings::daemon
