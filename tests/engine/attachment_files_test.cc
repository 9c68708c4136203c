// The attachments' object files (engine/attachment_files.h): import, read
// back, export, resumable downloads, and that damage anywhere is DATA_LOSS
// and never plaintext under the name the app asked for.
#include "engine/attachment_files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>

#include "crypto/attachment_cipher.h"
#include "tests/common/temp_dir.h"
#include "tests/common/test_files.h"

namespace tidings::engine {
namespace {

using testing::RandomBytes;
using testing::ReadWholeFile;
using testing::WriteWholeFile;

namespace fs = std::filesystem;

struct FilesFixture {
  testing::TempDir dir;
  AttachmentFiles files{dir.path() + "/attachments"};
  crypto::SecretKey key = crypto::SecretKey::Random().value();
  crypto::SecretKey hash_key = crypto::SecretKey::Random().value();
  FilesFixture() { EXPECT_TRUE(files.Open().ok()); }

  // Imports `data` from memory, in pieces of `piece` bytes.
  ImportedObject Import(const std::string& data, size_t piece = 1000) {
    size_t at = 0;
    auto source = [&](char* buf, size_t cap) -> Result<size_t> {
      const size_t n = std::min({cap, piece, data.size() - at});
      std::memcpy(buf, data.data() + at, n);
      at += n;
      return n;
    };
    auto got = files.Import(source, key, hash_key);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    return got.ok() ? *got : ImportedObject{};
  }
  std::string ReadBack(const std::string& id, Status* status = nullptr) {
    std::string out;
    Status s = files.Read(id, key, [&](std::string_view p) {
      out.append(p);
      return Status::Ok();
    });
    if (status != nullptr) *status = s;
    EXPECT_TRUE(status != nullptr || s.ok()) << s.ToString();
    return out;
  }
};

TEST(AttachmentFiles, ImportsReadsAndExportsWithPrivateModes) {
  FilesFixture f;
  const std::string data = RandomBytes(3 << 20, 7);  // 3 MiB: several I/O pieces
  const ImportedObject o = f.Import(data, 333'333);
  EXPECT_EQ(o.plain_bytes, data.size());
  EXPECT_EQ(o.cipher_bytes, crypto::AttachmentCipherSize(data.size()));
  EXPECT_EQ(*f.files.Size(o.id), o.cipher_bytes);
  EXPECT_EQ(f.ReadBack(o.id), data);
  EXPECT_TRUE(f.files.Check(o.id, f.key).ok());
  // The object's name is its SHA-256, and nothing in it is the plaintext.
  const std::string object = ReadWholeFile(f.files.ObjectPath(o.id));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(crypto::Sha256(object).data()), 32), o.id);
  EXPECT_EQ(object.find(data.substr(1000, 64)), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat(f.files.ObjectPath(o.id).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((f.dir.path() + "/attachments/objects").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  const std::string out = f.dir.path() + "/photo.jpg";
  ASSERT_TRUE(f.files.Export(o.id, f.key, out).ok());
  EXPECT_EQ(ReadWholeFile(out), data);
  ASSERT_EQ(::stat(out.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  // The same bytes give the same keyed fingerprint (another key, another
  // one), and an empty file is an object too.
  EXPECT_EQ(f.Import(data, 4096).plain_hash, o.plain_hash);
  const ImportedObject empty = f.Import("");
  EXPECT_EQ(empty.plain_bytes, 0u);
  EXPECT_EQ(f.ReadBack(empty.id), "");
  EXPECT_NE(empty.plain_hash, o.plain_hash);
}

TEST(AttachmentFiles, ImportsAFileAndReportsProgress) {
  FilesFixture f;
  const std::string data = RandomBytes(2'500'000, 3);
  const std::string path = f.dir.path() + "/scan.pdf";
  WriteWholeFile(path, data);
  std::vector<std::pair<uint64_t, uint64_t>> seen;
  auto o = f.files.ImportFile(path, f.key, f.hash_key, [&](uint64_t done, uint64_t total) {
    seen.emplace_back(done, total);
  });
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(f.ReadBack(o->id), data);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), std::make_pair(uint64_t{data.size()}, uint64_t{data.size()}));

  // Errors do not name the file (its name may say what it is).
  auto missing = f.files.ImportFile(f.dir.path() + "/rash-of-jdoe123.jpg", f.key, f.hash_key);
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_EQ(missing.status().message().find("jdoe123"), std::string::npos);
  EXPECT_EQ(f.files.ImportFile(f.dir.path(), f.key, f.hash_key).status().code(),
            Code::kInvalidArgument);
}

TEST(AttachmentFiles, ACancelledOrFailedImportLeavesNothing) {
  FilesFixture f;
  std::atomic<bool> cancel{false};
  size_t calls = 0;
  auto source = [&](char* buf, size_t cap) -> Result<size_t> {
    if (++calls == 3) cancel = true;
    std::memset(buf, 'x', cap);
    return cap;
  };
  EXPECT_EQ(f.files.Import(source, f.key, f.hash_key, nullptr, &cancel).status().code(),
            Code::kCancelled);
  auto failing = [&](char*, size_t) -> Result<size_t> { return IOError("the camera went away"); };
  EXPECT_EQ(f.files.Import(failing, f.key, f.hash_key).status().code(), Code::kIOError);
  for (const char* sub : {"/objects", "/tmp", "/partial"}) {
    EXPECT_TRUE(fs::is_empty(f.dir.path() + "/attachments" + sub)) << sub;
  }
  // No import without both keys: an empty fingerprint key would make the
  // fingerprint a plain hash of the file.
  auto one = [](char*, size_t) -> Result<size_t> { return size_t{0}; };
  EXPECT_EQ(f.files.Import(one, f.key, crypto::SecretKey()).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(f.files.Import(one, crypto::SecretKey(), f.hash_key).status().code(),
            Code::kInvalidArgument);
  // What a crash left in tmp/ goes at the next open.
  WriteWholeFile(f.dir.path() + "/attachments/tmp/leftover", "half an import");
  ASSERT_TRUE(f.files.Open().ok());
  EXPECT_TRUE(fs::is_empty(f.dir.path() + "/attachments/tmp"));
}

TEST(AttachmentFiles, DamageIsDataLossAndNeverAnExportedFile) {
  FilesFixture f;
  const std::string data = RandomBytes(300'000, 5);
  const ImportedObject o = f.Import(data);
  const std::string path = f.files.ObjectPath(o.id);
  std::string object = ReadWholeFile(path);
  object[200'000] ^= 0x01;
  WriteWholeFile(path, object);
  Status s;
  f.ReadBack(o.id, &s);
  EXPECT_EQ(s.code(), Code::kDataLoss);
  EXPECT_EQ(f.files.Check(o.id, f.key).code(), Code::kDataLoss);
  const std::string out = f.dir.path() + "/lab.pdf";
  EXPECT_EQ(f.files.Export(o.id, f.key, out).code(), Code::kDataLoss);
  EXPECT_FALSE(fs::exists(out));
  for (const auto& e : fs::directory_iterator(f.dir.path())) {
    EXPECT_EQ(e.path().filename().string().find("lab.pdf"), std::string::npos) << e.path();
  }
  // Cut short, or read under another key: DATA_LOSS too.
  WriteWholeFile(path, ReadWholeFile(path).substr(0, 100'000));
  f.ReadBack(o.id, &s);
  EXPECT_EQ(s.code(), Code::kDataLoss);
  const ImportedObject good = f.Import(data);
  auto other = crypto::SecretKey::Random();
  EXPECT_EQ(f.files.Check(good.id, *other).code(), Code::kDataLoss);
  // One that is not here.
  const std::string absent(32, 'z');
  f.ReadBack(absent, &s);
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(f.files.Read("short", f.key, nullptr).code(), Code::kInvalidArgument);
}

TEST(AttachmentFiles, DownloadsResumeAndAreCheckedWhole) {
  FilesFixture sender, receiver;
  const std::string data = RandomBytes(1'000'000, 9);
  const ImportedObject o = sender.Import(data);
  const std::string object = ReadWholeFile(sender.files.ObjectPath(o.id));
  // The receiver gets the object in ranges, as S3 serves them, with a
  // "crash" (a new AttachmentFiles) in between.
  ASSERT_EQ(*receiver.files.PartialBytes(o.id), 0u);
  ASSERT_TRUE(receiver.files.AppendPartial(o.id, *sender.files.ReadRange(o.id, 0, 400'000)).ok());
  AttachmentFiles again(receiver.dir.path() + "/attachments");
  ASSERT_TRUE(again.Open().ok());
  const uint64_t have = *again.PartialBytes(o.id);
  EXPECT_EQ(have, 400'000u);
  ASSERT_TRUE(
      again.AppendPartial(o.id, *sender.files.ReadRange(o.id, have, object.size() - have)).ok());
  EXPECT_FALSE(again.Has(o.id));
  ASSERT_TRUE(again.FinishPartial(o.id, sender.key).ok());
  EXPECT_TRUE(again.Has(o.id));
  std::string back;
  ASSERT_TRUE(again
                  .Read(o.id, sender.key,
                        [&](std::string_view p) {
                          back.append(p);
                          return Status::Ok();
                        })
                  .ok());
  EXPECT_EQ(back, data);
  EXPECT_EQ(*again.PartialBytes(o.id), 0u);

  // A range past the end is refused; a tampered download never becomes an
  // object, and its partial file goes (the next fetch starts over).
  EXPECT_EQ(sender.files.ReadRange(o.id, object.size() - 10, 20).status().code(), Code::kDataLoss);
  std::string bad = object;
  bad[500'000] ^= 0x40;
  FilesFixture third;
  ASSERT_TRUE(third.files.AppendPartial(o.id, bad).ok());
  EXPECT_EQ(third.files.FinishPartial(o.id, sender.key).code(), Code::kDataLoss);
  EXPECT_FALSE(third.files.Has(o.id));
  EXPECT_EQ(*third.files.PartialBytes(o.id), 0u);

  // Another encryption of the same file under the same key: every chunk
  // opens, the size is the same, only the SHA-256 tells it from the object
  // the reference names; it never becomes that object.
  FilesFixture fourth;
  fourth.key = std::move(sender.key);
  const ImportedObject twin = fourth.Import(data);
  ASSERT_NE(twin.id, o.id);
  ASSERT_EQ(twin.cipher_bytes, o.cipher_bytes);
  const std::string twin_bytes = ReadWholeFile(fourth.files.ObjectPath(twin.id));
  ASSERT_TRUE(fourth.files.AppendPartial(o.id, twin_bytes).ok());
  EXPECT_EQ(fourth.files.FinishPartial(o.id, fourth.key).code(), Code::kDataLoss);
  EXPECT_FALSE(fourth.files.Has(o.id));
  WriteWholeFile(fourth.files.ObjectPath(o.id), twin_bytes);  // the same, found by verify
  EXPECT_EQ(fourth.files.Check(o.id, fourth.key).code(), Code::kDataLoss);
  EXPECT_TRUE(fourth.files.Check(twin.id, fourth.key).ok());

  // AdoptPartial is for a caller that checked the bytes as it appended
  // them: it checks only the length, and a file of another length goes.
  FilesFixture fifth;
  ASSERT_TRUE(fifth.files.AppendPartial(o.id, object.substr(0, 1000)).ok());
  EXPECT_EQ(fifth.files.AdoptPartial(o.id, object.size()).code(), Code::kDataLoss);
  EXPECT_FALSE(fifth.files.Has(o.id));
  EXPECT_EQ(*fifth.files.PartialBytes(o.id), 0u);
  EXPECT_EQ(fifth.files.AdoptPartial(o.id, object.size()).code(), Code::kNotFound);
  ASSERT_TRUE(fifth.files.AppendPartial(o.id, object).ok());
  ASSERT_TRUE(fifth.files.AdoptPartial(o.id, object.size()).ok());
  EXPECT_TRUE(fifth.files.Has(o.id));
  EXPECT_EQ(*fifth.files.PartialBytes(o.id), 0u);

  ASSERT_TRUE(again.Remove(o.id).ok());
  EXPECT_FALSE(again.Has(o.id));
  EXPECT_TRUE(again.Remove(o.id).ok());
}

}  // namespace
}  // namespace tidings::engine
