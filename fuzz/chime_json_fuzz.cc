// Chime SDK Messaging JSON (sync/chime/chime_json.h): responses, channel
// messages and Tidings' envelopes and metadata, which any channel member can
// write. Nothing crashes; an envelope or frame metadata that parses is
// written back to JSON that parses to the same thing.
#include <string>

#include "fuzz/fuzz_check.h"
#include "sync/chime/chime_internal.h"
#include "sync/chime/chime_json.h"

namespace {

using namespace tidings;
using namespace tidings::chime;

void CheckEnvelope(std::string_view json) {
  Envelope e;
  if (!ParseEnvelope(json, &e)) return;
  for (bool with_payload : {false, true}) {
    std::string written = WriteEnvelope(e, with_payload);
    Envelope again;
    FUZZ_CHECK(ParseEnvelope(written, &again));
    FUZZ_CHECK(WriteEnvelope(again, with_payload) == written);
  }
}

void CheckMessage(const ChimeMessage& m) {
  Envelope e;
  (void)internal::ParseOpMessage(m, &e);
  std::string body;
  (void)internal::DecodeBody(m.content, "b64", &body);
  (void)internal::DecodeBody(m.content, "", &body);
  CheckEnvelope(m.metadata);
  CheckEnvelope(m.content);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto [choice, in] = fuzz::SplitInput(data, size, 9);
  switch (choice) {
    case 0:
      if (auto page = ParseListChannelMessages(in); page.ok()) {
        for (const auto& m : page->messages) CheckMessage(m);
      }
      break;
    case 1:
    case 2:
      if (auto m = ParseChannelMessage(in, choice == 2); m.ok()) CheckMessage(m.value());
      break;
    case 3:
      (void)ParseListChannelMemberships(in);
      (void)ParseChannelMemberships(in);
      break;
    case 4:
      (void)ParseChannelCreator(in);
      (void)ParseStringField(in, "ChannelArn");
      break;
    case 5:
      CheckEnvelope(in);
      break;
    case 6:
      if (auto id = ParseChannelMetadata(in)) {
        FUZZ_CHECK(ParseChannelMetadata(WriteChannelMetadata(*id)) == id);
      }
      (void)IsSealedChannelMetadata(in);
      break;
    case 7:
      if (auto id = ParseFrameMetadata(in)) {
        FUZZ_CHECK(ParseFrameMetadata(WriteFrameMetadata(*id)) == id);
      }
      break;
    case 8: {
      std::string body;
      if (internal::DecodeBody(std::string(in), "b64", &body)) {
        std::string content, encoding;
        internal::EncodeBody(body, &content, &encoding);
        std::string again;
        FUZZ_CHECK(internal::DecodeBody(content, encoding, &again) && again == body);
      }
      break;
    }
  }
  return 0;
}
