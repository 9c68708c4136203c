// Verify (engine/verify.cc).
#include <gtest/gtest.h>

#include "store_test_util.h"

namespace tidings::engine {
namespace {

// verify reads binary keys and values: no byte value may be taken for a
// marker. (It once was: 1 conversation in 256, the ones whose hashed key began
// with '?', made every message of theirs "missing from the by-id index".)
// 2,000 conversations cover every leading byte with near certainty; read-only
// and writable opens after an unclean stop both verify clean.
TEST(Store, VerifyIsCleanForEveryConversationKey) {
  TempDir dir;
  {
    auto store = MustOpen(dir.path());
    std::vector<SendRequest> batch;
    for (int i = 0; i < 2000; ++i) batch.push_back(Msg("conversation-" + std::to_string(i), "x"));
    ASSERT_TRUE(store->SendMany(batch).ok());
    ASSERT_TRUE(store->Send(Msg("conversation-7", "y")).ok());
  }
  for (bool read_only : {true, false}) {
    StoreOptions o;
    o.read_only = read_only;
    auto store = MustOpen(dir.path(), o);
    auto report = store->Verify(nullptr);
    ASSERT_TRUE(report.ok());
    EXPECT_GE(report->records_checked, 3u * 2001 + 2000) << "messages, index, outbox, summaries";
    EXPECT_EQ(report->problems, 0u) << read_only << " " << report->details.front();
  }
}

}  // namespace
}  // namespace tidings::engine
