// What the attachment benchmarks share: a moto server (started here on
// 127.0.0.1, SigV4 and IAM on) with one bucket, and files of seeded random
// bytes. Needs MOTO_SERVER and MOTO_SETUP defined (bench/attachments/
// CMakeLists.txt), as tests/dynamodb/moto_fixture.h does.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>

#include "sync/s3/s3_client.h"
#include "tests/dynamodb/moto_fixture.h"

namespace bench::attachments {

constexpr char kBucket[] = "tidings-bench";

// The environment variable `name` as a number, or `fallback`.
inline size_t EnvMb(const char* name, size_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::strtoull(v, nullptr, 10) : fallback;
}

// `bytes` of seeded random bytes at `path`, written a MiB at a time.
inline void WriteRandomFile(const std::string& path, size_t bytes) {
  std::ofstream out(path, std::ios::binary);
  std::mt19937_64 rng(42);
  std::string block(1 << 20, '\0');
  for (size_t done = 0; done < bytes; done += block.size()) {
    for (size_t i = 0; i < block.size(); i += 8) {
      const uint64_t v = rng();
      std::memcpy(block.data() + i, &v, 8);
    }
    out.write(block.data(), static_cast<std::streamsize>(std::min(block.size(), bytes - done)));
  }
}

// moto_server with kBucket made by its admin; the app's credentials are
// moto.credentials().
struct MotoS3 {
  tidings::testing::MotoServer moto;

  bool Start() {
    std::string why;
    if (!moto.Start(kBucket, &why)) {
      std::fprintf(stderr, "moto: %s\n", why.c_str());
      return false;
    }
    auto admin = tidings::s3::S3Client::Create(
        Config(), tidings::aws::StaticCredentials(moto.admin_credentials()));
    if (!admin.ok() || !(*admin)->CreateBucket(kBucket).ok()) {
      std::fprintf(stderr, "moto: the bucket %s could not be made\n", kBucket);
      return false;
    }
    return true;
  }
  tidings::s3::S3Config Config() const {
    tidings::s3::S3Config config;
    config.endpoint = moto.endpoint();
    config.region = "us-east-1";
    return config;
  }
};

}  // namespace bench::attachments
