// Reads a conversation from a backend from the beginning, page after page,
// as a fresh device would. A failed page is a test failure (and ends the
// read), so callers can use the result inside an expectation.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sync/backend.h"

namespace tidings::testing {

inline std::vector<engine::Operation> PullAll(sync::Backend& backend,
                                              const std::string& conversation_id,
                                              size_t page_size = 100) {
  std::vector<engine::Operation> all;
  std::string cursor;
  for (int i = 0; i < 1000; ++i) {
    auto page = backend.Pull(conversation_id, cursor, page_size);
    EXPECT_TRUE(page.ok()) << backend.name() << ": " << page.status().ToString();
    if (!page.ok()) break;
    all.insert(all.end(), page->ops.begin(), page->ops.end());
    cursor = page->next_cursor;
    if (!page->has_more) break;
  }
  return all;
}

}  // namespace tidings::testing
