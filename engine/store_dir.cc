#include "engine/store_dir.h"

#include <filesystem>
#include <system_error>

#include "engine/store_header.h"
#include "engine/store_impl.h"

namespace tidings::engine {
namespace {

namespace fs = std::filesystem;

bool HasFiles(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
    if (e.is_regular_file(ec)) return true;
  }
  return false;
}

}  // namespace

Status CheckNewStoreDirectory(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status::Ok();
  if (!fs::is_directory(path, ec)) {
    return FailedPrecondition(path + " exists and is not a directory; choose a new path");
  }
  // What an interrupted creation leaves: the database, the marker, and the
  // temporary files of WriteFileAtomically (header or marker) killed mid-write.
  const std::string header_tmp = std::string(kHeaderFile) + kAtomicWriteSuffix;
  const std::string marker_tmp = std::string(kCreatingMarker) + kAtomicWriteSuffix;
  for (const auto& e : fs::directory_iterator(path, ec)) {
    const std::string name = e.path().filename().string();
    if (name == kDbDir || name == kCreatingMarker || name == header_tmp || name == marker_tmp)
      continue;
    return FailedPrecondition(path + " is not empty and is not a Tidings store (it holds " + name +
                              "); create the store in a new or empty directory");
  }
  const fs::path db = fs::path(path) / kDbDir;
  if (HasFiles(db) && !fs::exists(fs::path(path) / kCreatingMarker, ec)) {
    return FailedPrecondition(
        path + " holds a Tidings database but no header (" + kHeaderFile +
        "), so it cannot be opened and will not be overwritten; restore the header from a "
        "backup, or remove the directory yourself to start over");
  }
  return Status::Ok();
}

Status BeginCreation(const std::string& path) {
  const std::string marker = path + "/" + kCreatingMarker;
  std::error_code ec;
  if (fs::exists(marker, ec)) {
    fs::remove_all(fs::path(path) / kDbDir, ec);  // nothing in it was acknowledged
    if (ec)
      return IOError("cannot clear the interrupted creation at " + path + ": " + ec.message());
  }
  TIDINGS_RETURN_IF_ERROR(WriteFileAtomically(marker, ""));
  SyncDirectory(path);
  return Status::Ok();
}

void EndCreation(const std::string& path) {
  std::error_code ec;
  if (fs::remove(fs::path(path) / kCreatingMarker, ec)) SyncDirectory(path);
}

}  // namespace tidings::engine
