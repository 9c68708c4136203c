// Convergence, as the sync tests check it: two stores show the same
// conversation.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "engine/store.h"

namespace tidings::testing {

// Both stores hold `expected` messages in `conv`, in the same order, with the
// same ids, order keys, bodies, deletions and reactions, and the
// conversation has the same read markers on both.
inline void ExpectSameConversation(engine::Store& a, engine::Store& b, const std::string& conv,
                                   size_t expected) {
  auto pa = a.Page({.conversation_id = conv, .limit = 1000});
  auto pb = b.Page({.conversation_id = conv, .limit = 1000});
  ASSERT_TRUE(pa.ok() && pb.ok());
  ASSERT_EQ(pa->size(), expected);
  ASSERT_EQ(pb->size(), expected);
  for (size_t i = 0; i < expected; ++i) {
    EXPECT_EQ((*pa)[i].id, (*pb)[i].id) << i;
    EXPECT_EQ((*pa)[i].order, (*pb)[i].order) << i;
    EXPECT_EQ((*pa)[i].body, (*pb)[i].body) << i;
    EXPECT_EQ((*pa)[i].deleted, (*pb)[i].deleted) << i;
    EXPECT_EQ((*pa)[i].reactions, (*pb)[i].reactions) << i;
  }
  auto ca = a.GetConversation(conv), cb = b.GetConversation(conv);
  ASSERT_TRUE(ca.ok() && cb.ok());
  EXPECT_EQ(ca->read_markers, cb->read_markers);
}

}  // namespace tidings::testing
