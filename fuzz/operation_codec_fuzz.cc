// The wire codec of operations (sync/wire/operation_codec.h), current and
// legacy: what any writer of a shared log can hand us. An operation that
// decodes round-trips exactly through the current encoding.
#include "fuzz/fuzz_check.h"
#include "sync/wire/operation_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tidings;
  auto [choice, in] = fuzz::SplitInput(data, size, 2);
  auto op = choice == 0 ? wire::DecodeOperation(in) : wire::DecodeLegacyOperation(in);
  if (!op.ok()) {
    FUZZ_CHECK(op.status().code() == Code::kDataLoss ||
               op.status().code() == Code::kFailedPrecondition);
    return 0;
  }
  FUZZ_CHECK(op->server_time_ms == 0 && op->remote_id.empty());
  std::string bytes = wire::EncodeOperation(op.value());
  if (choice == 0) FUZZ_CHECK(bytes == in);  // the current encoding is canonical
  auto again = wire::DecodeOperation(bytes);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again.value() == op.value());
  return 0;
}
