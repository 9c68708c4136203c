// The socket's search requests (docs/daemon.md, "Search"): a kiosk UI beside
// the daemon searches the store the daemon holds.
//
// {op=search, query, conversation?, sender?, from_ms?, to_ms?,
//  order=relevance|newest?, offset?, limit?} ->
// {op=ok, total, then for each hit, in order: id, conversation, sender,
//  order ("hlc-replica" hex), score, snippet, marks ("begin-end ..." bytes of
//  the snippet)}: the hit fields repeat, the i-th of each name is hit i.
//
// One request cannot hog the daemon: at most kMaxSocketSearchLimit hits,
// and a search still running after kSearchDeadlineMs is cancelled
// (DEADLINE_EXCEEDED: narrow the query). An answer larger than a frame is
// TOO_LARGE (ask for fewer hits). There is no rebuild op: a rebuild takes
// minutes on a large store, longer than a client waits for an answer; stop
// the daemon and run `tidings search --rebuild`.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/status.h"
#include "daemon/protocol.h"
#include "tidings/tidings_search.hpp"

namespace tidings::daemon {

inline constexpr int64_t kSearchDeadlineMs = 2000;
inline constexpr size_t kMaxSocketSearchLimit = 200;

// Runs {op=search}; `deadline_ms` <= 0 is a deadline already passed.
Fields ExecuteSearch(api::Store& store, const Fields& request,
                     int64_t deadline_ms = kSearchDeadlineMs);

// The request frame for `r` (its cancel is not sent) and the hits of an
// answer frame: how a client speaks the op.
Fields SearchFields(const api::SearchRequest& r);
Result<api::SearchResult> SearchResultFromFields(const Fields& answer);

}  // namespace tidings::daemon
