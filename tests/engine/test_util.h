#pragma once

#include <string>

#include "crypto/keys.h"
#include "engine/store.h"
#include "tests/common/temp_dir.h"

namespace tidings::testing {

inline crypto::KeySource TestKey(uint8_t fill = 7) {
  uint8_t bytes[32];
  for (auto& b : bytes) b = fill;
  return crypto::KeySource::Raw(std::move(crypto::SecretKey::FromBytes(bytes).value()));
}

inline engine::StoreOptions CreateOptions(const std::string& user = "alice") {
  engine::StoreOptions o;
  o.create_if_missing = true;
  o.user_id = user;
  o.durability = engine::Durability::kRelaxed;
  return o;
}

}  // namespace tidings::testing
