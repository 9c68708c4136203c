#include "emulator/chime/journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace chime_local {
namespace {

tidings::Status Errno(const std::string& what, const std::string& path) {
  return tidings::IOError(what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

tidings::Result<std::unique_ptr<Journal>> Journal::Open(
    const std::string& dir, const std::function<tidings::Status(std::string_view)>& replay) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return Errno("cannot create", dir);
  const std::string path = dir + "/journal.jsonl";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("cannot open", path);
  std::unique_ptr<Journal> journal(new Journal(fd, path));
  ::fchmod(fd, 0600);
  std::string data;
  char buf[1 << 16];
  for (ssize_t n; (n = ::pread(fd, buf, sizeof(buf), static_cast<off_t>(data.size()))) != 0;) {
    if (n < 0) return Errno("cannot read", path);
    data.append(buf, static_cast<size_t>(n));
  }
  size_t start = 0, line_no = 1;
  for (size_t nl; (nl = data.find('\n', start)) != std::string::npos; start = nl + 1, ++line_no) {
    if (nl == start) continue;
    tidings::Status s = replay(std::string_view(data).substr(start, nl - start));
    if (!s.ok()) {
      return tidings::DataLoss("journal " + path + " line " + std::to_string(line_no) +
                               " cannot be replayed (" + s.message() +
                               "); move the data directory away to start empty");
    }
    ++journal->replayed_;
  }
  if (start < data.size()) {
    std::fprintf(stderr,
                 "tidings-chime-local: warning: ignoring a torn last record in %s (%zu bytes, "
                 "never acknowledged)\n",
                 path.c_str(), data.size() - start);
    if (::ftruncate(fd, static_cast<off_t>(start)) != 0) return Errno("cannot truncate", path);
  }
  return journal;
}

Journal::~Journal() { ::close(fd_); }

tidings::Status Journal::Append(std::string_view record) {
  std::string line(record);
  line.push_back('\n');
  const off_t before = ::lseek(fd_, 0, SEEK_END);
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      tidings::Status s = Errno("cannot write", path_);
      if (before >= 0 && ::ftruncate(fd_, before) != 0) {  // keep the file replayable
        return Errno("cannot write nor truncate", path_);
      }
      return s;
    }
    done += static_cast<size_t>(n);
  }
  if (::fdatasync(fd_) != 0) return Errno("cannot sync", path_);
  return tidings::Status::Ok();
}

}  // namespace chime_local
