// The store directory before its header exists. The header is written last,
// so a directory without one is either a creation that never finished
// (nothing in it was acknowledged: safe to start over) or a store whose
// header was lost (its data must never be wiped). A creation marker tells
// them apart: written before the database, removed once the header landed.
//
//   no header, no db/ (or an empty one)  -> create
//   no header, db/ and the marker         -> interrupted creation: remove db/, create
//   no header, db/ with files, no marker  -> refused: restore the header
//   anything else in the directory        -> refused: not a Tidings directory
#pragma once

#include <string>

#include "common/status.h"

namespace tidings::engine {

inline constexpr char kCreatingMarker[] = "TIDINGS.creating";

// Whether a new store may be made at `path` (which has no header).
// FailedPrecondition, saying what to do, for a directory holding a database
// without the marker, or files that are not a store's.
Status CheckNewStoreDirectory(const std::string& path);

// Clears what an interrupted creation left (only with the marker) and writes
// the marker (synced), before the database is created.
Status BeginCreation(const std::string& path);

// Removes the marker once the header is durable; also at every writable
// open, so a marker left by a crash after the header never outlives it.
void EndCreation(const std::string& path);

}  // namespace tidings::engine
