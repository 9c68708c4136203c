// What the attachment transfer tests share: a device's object files in a
// temporary directory, random file contents, and importing and reading back
// an object.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>

#include "crypto/secret_key.h"
#include "engine/attachment_files.h"
#include "tests/common/temp_dir.h"
#include "tests/common/test_files.h"

namespace tidings::attachments::testing_util {

inline std::string Bytes(size_t n, uint32_t seed) { return tidings::testing::RandomBytes(n, seed); }

struct Device {
  tidings::testing::TempDir dir;
  engine::AttachmentFiles files{dir.path() + "/attachments"};
  Device() { EXPECT_TRUE(files.Open().ok()); }
};

struct Sent {
  engine::ImportedObject object;
  crypto::SecretKey key;
};

// Imports `data` into `d` under `key` (a new random key if none).
inline Sent Import(Device& d, const std::string& data, const crypto::SecretKey* key = nullptr) {
  Sent s{{}, key != nullptr ? key->Clone().value() : crypto::SecretKey::Random().value()};
  auto hash_key = crypto::SecretKey::Random();
  size_t at = 0;
  auto got = d.files.Import(
      [&](char* buf, size_t cap) -> Result<size_t> {
        const size_t n = std::min(cap, data.size() - at);
        std::memcpy(buf, data.data() + at, n);
        at += n;
        return n;
      },
      s.key, *hash_key);
  EXPECT_TRUE(got.ok()) << got.status().ToString();
  if (got.ok()) s.object = *got;
  return s;
}

inline std::string ReadAll(Device& d, const Sent& s) {
  std::string out;
  EXPECT_TRUE(d.files
                  .Read(s.object.id, s.key,
                        [&](std::string_view p) {
                          out.append(p);
                          return Status::Ok();
                        })
                  .ok());
  return out;
}

}  // namespace tidings::attachments::testing_util
