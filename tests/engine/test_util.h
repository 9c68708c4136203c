#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>

#include "crypto/keys.h"
#include "engine/store.h"

namespace tidings::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "tidings-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

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
