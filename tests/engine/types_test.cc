// Operations and ids (engine/types.cc).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <set>
#include <thread>

#include "store_test_util.h"

namespace tidings::engine {
namespace {

TEST(Codec, OperationRoundTripAndGarbage) {
  Operation op;
  op.kind = OpKind::kReact;
  op.op_id = "o";
  op.conversation_id = "c";
  op.author = "a";
  op.at = {123, 456};
  op.message_id = "m";
  op.reaction = "+1";
  op.metadata["x"] = "y";
  op.server_time_ms = 77;
  std::string bytes = EncodeOperation(op);
  Operation back;
  ASSERT_TRUE(DecodeOperation(bytes, &back));
  EXPECT_EQ(back, op);
  std::mt19937 rng(1);
  for (int i = 0; i < 2000; ++i) {
    std::string g = bytes;
    g[rng() % g.size()] = static_cast<char>(rng());
    if (rng() % 2) g.resize(rng() % g.size());
    Operation out;
    DecodeOperation(g, &out);  // must not crash or read out of bounds (ASan)
  }
  EXPECT_FALSE(DecodeOperation("", &back));
}

TEST(Ids, UuidV7IsTimeOrderedAndWellFormed) {
  std::string a = NewMessageId(1000), b = NewMessageId(2000);
  EXPECT_EQ(a.size(), 36u);
  EXPECT_EQ(a[14], '7');
  EXPECT_LT(a, b);
  EXPECT_NE(NewMessageId(1000), NewMessageId(1000));
  EXPECT_EQ(UuidV7Millis(NewMessageId(1'700'000'000'123)), 1'700'000'000'123u);
  EXPECT_EQ(UuidV7Millis("chime:4a1d-not-a-uuid"), 0u);
  EXPECT_EQ(UuidV7Millis("0189a7f2-3c4d-4e5f-8a9b-0123456789ab"), 0u);  // v4
  EXPECT_EQ(UuidV7Millis("0189a7f2-3c4d-7e5f-8a9b-0123456789AB"), 0x0189a7f23c4du);
  EXPECT_EQ(UuidV7Millis("0189a7g2-3c4d-7e5f-8a9b-0123456789ab"), 0u);
}

// Ids draw their random bits from a per-thread pool: still unique across
// threads, across many refills, and between a parent and a forked child that
// inherited the pool.
TEST(Ids, UniqueAcrossThreadsRefillsAndFork) {
  // 8-4-4-4-12 lowercase hex, version 7, RFC 4122 variant.
  auto well_formed = [](const std::string& id) {
    if (id.size() != 36 || id[14] != '7' || std::string("89ab").find(id[19]) == std::string::npos)
      return false;
    for (size_t i = 0; i < id.size(); ++i) {
      const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
      const char c = id[i];
      if (dash != (c == '-')) return false;
      if (!dash && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
  };
  std::vector<std::vector<std::string>> per_thread(4);
  std::vector<std::thread> threads;
  for (auto& ids : per_thread) {
    threads.emplace_back([&ids] {
      for (int i = 0; i < 5000; ++i) ids.push_back(NewMessageId(1'700'000'000'000));
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (const auto& ids : per_thread) {
    for (const auto& id : ids) {
      ASSERT_TRUE(well_formed(id)) << id;
      all.insert(id);
    }
  }
  EXPECT_EQ(all.size(), 20000u);

  NewMessageId(1);  // the pool is filled before the fork
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::string id = NewMessageId(1'700'000'000'000);
    ssize_t n = ::write(fds[1], id.data(), id.size());
    ::_exit(n == static_cast<ssize_t>(id.size()) ? 0 : 1);
  }
  std::string mine = NewMessageId(1'700'000'000'000);
  std::string theirs(36, '\0');
  ASSERT_EQ(::read(fds[0], theirs.data(), theirs.size()), 36);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(fds[0]);
  ::close(fds[1]);
  EXPECT_NE(mine, theirs);
}

}  // namespace
}  // namespace tidings::engine
