// Test helper for cli_keys_test.py, over the store's internals (a sync round
// is what pins other users' devices; no server runs here):
//   e2e_keys_helper pin STORE KEY_FILE USER   pins a new device of USER as a
//                                             round would; prints its id
//   e2e_keys_helper keys STORE KEY_FILE       prints this device's key bytes
//                                             (public and secret), one form
//                                             a line (hex, base64), so the
//                                             test can prove the CLI never
//                                             shows any of them
#include <cstdio>
#include <string>
#include <vector>

#include "crypto/hash.h"
#include "crypto/keys.h"
#include "engine/store.h"
#include "sync/e2e/directory.h"
#include "sync/e2e/session.h"

namespace {

using namespace tidings;

std::string Hex(std::string_view bytes) { return crypto::HexEncode(bytes); }

int Run(const std::vector<std::string>& args) {
  if (args.size() < 3) return 2;
  auto store = engine::Store::Open(args[1], crypto::KeySource::KeyFile(args[2]), {});
  if (!store.ok()) {
    std::fprintf(stderr, "e2e_keys_helper: %s\n", store.status().message().c_str());
    return 1;
  }
  engine::SyncLog& log = (*store)->sync_log();
  if (args[0] == "pin" && args.size() == 4) {
    auto device = e2e::DeviceKeys::Generate(args[3], 1'000);
    if (!device.ok()) return 1;
    e2e::Directory dir(&log);
    std::vector<engine::SyncStateWrite> writes;
    if (!dir.Pin(device->record(), 2'000, &writes).ok() || !log.PutSyncStates(writes).ok())
      return 1;
    std::printf("%s\n", device->device_id().c_str());
    return 0;
  }
  if (args[0] == "keys") {
    auto keys = e2e::LoadOrCreateDeviceKeys(log, (*store)->user_id(), 1'000);
    if (!keys.ok()) return 1;
    const std::string secret = keys->Serialize();
    const auto& r = keys->record();
    const std::vector<std::string> forms = {
        secret.substr(1, 32), secret.substr(33, 32),
        std::string(reinterpret_cast<const char*>(r.sign_pk.data()), r.sign_pk.size()),
        std::string(reinterpret_cast<const char*>(r.box_pk.data()), r.box_pk.size())};
    for (const auto& k : forms)
      std::printf("%s\n%s\n", Hex(k).c_str(), crypto::Base64Encode(k).c_str());
    return 0;
  }
  return 2;
}

}  // namespace

int main(int argc, char** argv) { return Run(std::vector<std::string>(argv + 1, argv + argc)); }
