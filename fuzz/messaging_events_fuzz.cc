// The Chime messaging WebSocket (sync/chime/messaging_session.h): the server
// frames and the endpoint response, then a frame's payload as the channel
// message an event carries. Nothing the socket delivers may crash.
#include "fuzz/fuzz_check.h"
#include "sync/chime/chime_internal.h"
#include "sync/chime/chime_json.h"
#include "sync/chime/messaging_session.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tidings;
  using namespace tidings::chime;
  auto [choice, in] = fuzz::SplitInput(data, size, 2);
  if (choice == 1) {
    auto url = ParseSessionEndpoint(in);
    FUZZ_CHECK(url.ok() || url.status().code() == Code::kInvalidArgument);
    return 0;
  }
  auto frame = ParseSessionFrame(in);
  if (!frame.ok()) {
    FUZZ_CHECK(frame.status().code() == Code::kInvalidArgument);
    return 0;
  }
  if (auto m = ParseChannelMessage(frame->payload, /*wrapped=*/false); m.ok()) {
    Envelope e;
    (void)internal::ParseOpMessage(m.value(), &e);
  }
  return 0;
}
