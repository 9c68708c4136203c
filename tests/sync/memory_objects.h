// An in-process object store for unit tests of attachment sync: small
// objects in memory, with hooks that run before each request (a Gate's,
// tests/common/gate.h, to hold them).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "sync/attachments/transfer.h"
#include "tests/common/gate.h"

namespace tidings::testing {

// Small objects only: PutObject / HeadObject / GetRange.
class MemoryObjects final : public attachments::ObjectStore {
 public:
  std::map<std::string, std::string> objects;
  Status put_error;              // e.g. NoSuchBucket (404)
  std::function<void()> on_get;  // runs before each GetRange
  std::function<void()> on_put;  // runs before each PutObject
  Status PutObject(const std::string& key, std::string body) override {
    if (on_put) on_put();
    if (!put_error.ok()) return put_error;
    objects[key] = std::move(body);
    return Status::Ok();
  }
  Result<uint64_t> HeadObject(const std::string& key) override {
    auto it = objects.find(key);
    if (it == objects.end()) return NotFound("no such key");
    return uint64_t{it->second.size()};
  }
  Result<std::string> GetRange(const std::string& key, uint64_t offset, uint64_t length) override {
    if (on_get) on_get();
    auto it = objects.find(key);
    if (it == objects.end()) return NotFound("no such key");
    return it->second.substr(offset, length);
  }
  Result<std::string> CreateMultipartUpload(const std::string&) override {
    return Unimplemented("small objects only");
  }
  Result<std::string> UploadPart(const std::string&, const std::string&, int,
                                 std::string) override {
    return Unimplemented("small objects only");
  }
  Result<std::vector<attachments::UploadedPart>> ListParts(const std::string&,
                                                           const std::string&) override {
    return Unimplemented("small objects only");
  }
  Status CompleteMultipartUpload(const std::string&, const std::string&,
                                 const std::vector<attachments::UploadedPart>&) override {
    return Unimplemented("small objects only");
  }
  Status AbortMultipartUpload(const std::string&, const std::string&) override {
    return Status::Ok();
  }
  Result<std::vector<std::string>> ListUploads(const std::string&) override {
    return std::vector<std::string>{};
  }
};

}  // namespace tidings::testing
