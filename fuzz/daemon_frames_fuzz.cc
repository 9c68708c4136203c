// The daemon's socket frames (daemon/protocol.h): what any process of the
// store's user can write to daemon.sock before and after the handshake.
// Choice 0 decodes a payload (fields that decode re-encode to exactly the
// payload); choice 1 reads a whole frame, length prefix included, from a
// socket; choice 2 turns fields into a Status as the client does.
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "daemon/protocol.h"
#include "fuzz/fuzz_check.h"

namespace {

using namespace tidings;

void ReadFromSocket(std::string_view in) {
  int fds[2];
  FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  // The socket's buffer holds far more than libFuzzer's default inputs.
  FUZZ_CHECK(::write(fds[0], in.data(), in.size()) == static_cast<ssize_t>(in.size()));
  ::shutdown(fds[0], SHUT_WR);
  auto frame = daemon::ReadFrame(fds[1]);
  if (frame.ok()) {
    std::string payload = daemon::EncodeFields(frame.value());
    FUZZ_CHECK(in.size() >= 4 && in.substr(4, payload.size()) == payload);
  } else {
    FUZZ_CHECK(frame.status().code() == Code::kInvalidArgument ||
               frame.status().code() == Code::kUnavailable);
  }
  ::close(fds[0]);
  ::close(fds[1]);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  auto [choice, in] = fuzz::SplitInput(data, size, 3);
  daemon::Fields fields;
  switch (choice) {
    case 0:
      if (daemon::DecodeFields(in, &fields)) FUZZ_CHECK(daemon::EncodeFields(fields) == in);
      break;
    case 1:
      ReadFromSocket(in);
      break;
    case 2:
      if (daemon::DecodeFields(in, &fields)) {
        Status s = daemon::StatusFromFields(fields);
        (void)daemon::ErrorFields(s);
      }
      break;
  }
  return 0;
}
