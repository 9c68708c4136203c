// Unit tests of tidings-chime-local's pieces: the model (state.h), request
// routing, the SigV4 verifier against the client's signer, the journal.
#include <gtest/gtest.h>

#include "emulator/chime/state.h"

namespace chime_local {
namespace {

TEST(State, ParsesIso8601) {
  int64_t ms = 0;
  ASSERT_TRUE(State::ParseIso8601("2023-11-14T22:13:20.123Z", &ms));
  EXPECT_EQ(ms, 1700000000123);
  EXPECT_FALSE(State::ParseIso8601("yesterday", &ms));
}

}  // namespace
}  // namespace chime_local
