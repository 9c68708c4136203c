// The transfer's ObjectStore (sync/attachments/transfer.h) over S3: one
// bucket, through s3::S3Clients (sync/s3) kept in a pool. An S3Client (its
// libcurl handle, its retry and clock state) serves one thread at a time,
// so each call takes an idle client from the pool, or makes one, and gives
// it back when it returns: a transfer with N parts in flight uses N clients
// and N connections, which stay open for the next calls.
//
// Thread safety: every method may be called from any number of threads at
// once.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sync/attachments/transfer.h"
#include "sync/aws/credentials.h"
#include "sync/s3/s3_client.h"

namespace tidings::attachments {

class S3ObjectStore : public ObjectStore {
 public:
  // Clients are made from `config` and share `credentials`, one for each
  // call in flight. One is made here: InvalidArgument, as
  // S3Client::Create, for a config it refuses.
  static Result<std::unique_ptr<S3ObjectStore>> Create(
      s3::S3Config config, std::shared_ptr<aws::CredentialsProvider> credentials,
      std::string bucket);
  // Over the caller's one client, which must outlive this store: calls take
  // turns, so a transfer sends one request at a time whatever its
  // `parallel`. Create is the one to use for parts side by side.
  S3ObjectStore(s3::S3Client& s3, std::string bucket);

  Status PutObject(const std::string& key, std::string body) override;
  Result<uint64_t> HeadObject(const std::string& key) override;
  Result<std::string> GetRange(const std::string& key, uint64_t offset, uint64_t length) override;
  Status GetRangeTo(const std::string& key, uint64_t offset, uint64_t length,
                    const RangeWriter& write) override;
  Result<std::string> CreateMultipartUpload(const std::string& key) override;
  Result<std::string> UploadPart(const std::string& key, const std::string& upload_id, int number,
                                 std::string body) override;
  Result<std::string> UploadPartFrom(const std::string& key, const std::string& upload_id,
                                     int number, uint64_t size, const PartReader& read) override;
  Result<std::vector<UploadedPart>> ListParts(const std::string& key,
                                              const std::string& upload_id) override;
  Status CompleteMultipartUpload(const std::string& key, const std::string& upload_id,
                                 const std::vector<UploadedPart>& parts) override;
  Status AbortMultipartUpload(const std::string& key, const std::string& upload_id) override;
  Result<std::vector<std::string>> ListUploads(const std::string& key) override;

  // Whether UploadPartFrom signs each part's payload hash (read and hashed
  // before it is sent) or sends it as S3's UNSIGNED-PAYLOAD. Unsigned by
  // default: an attachment's object is sealed chunk by chunk and named by
  // its SHA-256, and every download checks both, so a part changed on the
  // way or at rest is refused by every receiver; TLS covers the way.
  // docs/attachments.md weighs it. Set before the store is used.
  void set_sign_parts(bool sign) { sign_parts_ = sign; }

  // HTTP requests sent (every attempt) by the calls that have returned.
  uint64_t requests() const { return requests_.load(); }
  // Clients in the pool: the most calls that were in flight at once (1 over
  // the caller's client).
  size_t clients() const;

 private:
  // A client taken from the pool, given back when destroyed.
  class Lease {
   public:
    Lease(S3ObjectStore* store, s3::S3Client* client);
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    s3::S3Client* operator->() const { return client_; }

   private:
    S3ObjectStore* store_;
    s3::S3Client* client_;
    uint64_t requests_before_ = 0;
  };

  S3ObjectStore(s3::S3Config config, std::shared_ptr<aws::CredentialsProvider> credentials,
                std::string bucket)
      : config_(std::move(config)),
        credentials_(std::move(credentials)),
        bucket_(std::move(bucket)) {}
  // An idle client; a new one if there is none and this store makes them,
  // else the next one given back.
  Result<Lease> Take();

  const s3::S3Config config_;
  const std::shared_ptr<aws::CredentialsProvider> credentials_;  // null: no new clients
  const std::string bucket_;
  mutable std::mutex mu_;
  std::condition_variable given_back_;
  std::vector<s3::S3Client*> idle_;                  // GUARDED_BY(mu_)
  std::vector<std::unique_ptr<s3::S3Client>> made_;  // GUARDED_BY(mu_); those this store made
  size_t clients_ = 0;                               // GUARDED_BY(mu_)
  std::atomic<uint64_t> requests_{0};
  bool sign_parts_ = false;
};

}  // namespace tidings::attachments
