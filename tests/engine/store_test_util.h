// Helpers shared by the engine's tests.
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <string>

#include "engine/store.h"
#include "engine/sync_log.h"
#include "test_util.h"

namespace tidings::engine {

using testing::CreateOptions;
using testing::TempDir;
using testing::TestKey;
namespace fs = std::filesystem;

inline std::unique_ptr<Store> MustOpen(const std::string& path, StoreOptions o = CreateOptions(),
                                       uint8_t key = 7) {
  auto s = Store::Open(path, TestKey(key), o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

// Sends by bob, one a millisecond: ids `id_prefix` + i, bodies "b" + i.
inline std::vector<Operation> SendsFromBob(const std::string& id_prefix, int n) {
  std::vector<Operation> ops;
  for (int i = 0; i < n; ++i) {
    Operation op;
    op.kind = OpKind::kSend;
    op.message_id = op.op_id = id_prefix + std::to_string(i);
    op.author = "bob";
    op.at = OrderKey{(uint64_t{1'700'000'000'000} + static_cast<uint64_t>(i)) << 16, 42};
    op.body = "b" + std::to_string(i);
    ops.push_back(op);
  }
  return ops;
}

inline SendRequest Msg(std::string conv, std::string body) {
  SendRequest r;
  r.conversation_id = std::move(conv);
  r.body = std::move(body);
  return r;
}

// Checks that `root` and everything under it is owner-only; returns the
// number of regular files.
inline size_t ExpectOwnerOnly(const fs::path& root) {
  size_t files = 0;
  struct stat st {};
  EXPECT_EQ(0, ::stat(root.c_str(), &st));
  EXPECT_EQ(st.st_mode & 077, 0u) << root << " is readable by others";
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    EXPECT_EQ(0, ::stat(e.path().c_str(), &st));
    EXPECT_EQ(st.st_mode & 077, 0u) << e.path() << " is readable by others";
    files += e.is_regular_file();
  }
  return files;
}

}  // namespace tidings::engine
