// A fresh directory for one test (or benchmark), removed with everything in
// it when the TempDir goes away. Standard library only, so the API tests can
// use it while seeing nothing but the public headers.
#pragma once

#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace tidings::testing {

class TempDir {
 public:
  // Makes `parent`/`prefix`-XXXXXX (parent: $TMPDIR, else /tmp). Aborts the
  // test binary if it cannot: nothing after it could run.
  explicit TempDir(std::string_view prefix = "tidings-test",
                   const std::filesystem::path& parent = std::filesystem::temp_directory_path()) {
    std::string tmpl = (parent / (std::string(prefix) + "-XXXXXX")).string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      std::perror(("cannot make a temporary directory " + tmpl).c_str());
      std::abort();
    }
    path_ = std::move(tmpl);
  }
  ~TempDir() {
    std::error_code ignored;  // a test that failed may have left it half removed
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace tidings::testing
