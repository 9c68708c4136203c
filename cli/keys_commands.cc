// `tidings keys` (this device, every known user's devices, trust, key
// changes), `tidings keys verify|remove`, and the conversation modes:
// `tidings conversation create --plaintext` and `tidings conversation
// upgrade`. Keys never appear in the output: only ids and fingerprints.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/commands.h"
#include "cli/output.h"
#include "tidings/tidings_sync.hpp"

namespace tidings::cli {
namespace {

using Request = std::vector<std::pair<std::string, std::string>>;

// A store made before device keys existed gets them on its first writable
// open; `keys` makes that happen when nothing else holds the store.
api::Result<api::Identity> IdentityOf(const Globals& g, api::Store& reader) {
  auto id = api::GetIdentity(reader);
  if (id.ok() || id.status().code() != TIDINGS_NOT_FOUND) return id;
  auto writer = OpenStore(g, Access::kWrite);
  if (!writer.ok()) return id;
  return api::GetIdentity(*writer);
}

void PrintJson(const api::Identity& me, const std::vector<api::Device>& devices,
               const std::vector<api::KeyEvent>& events) {
  std::printf(
      "{\"kind\":\"identity\",\"user\":%s,\"device\":%s,\"fingerprint\":%s,"
      "\"user_fingerprint\":%s}\n",
      JsonString(me.user).c_str(), JsonString(me.device_id).c_str(),
      JsonString(me.fingerprint).c_str(), JsonString(me.user_fingerprint).c_str());
  for (const auto& d : devices) {
    std::printf(
        "{\"kind\":\"device\",\"user\":%s,\"device\":%s,\"fingerprint\":%s,\"trust\":%s,"
        "\"first_seen\":%s,\"this_device\":%s}\n",
        JsonString(d.user).c_str(), JsonString(d.device_id).c_str(),
        JsonString(d.fingerprint).c_str(), JsonString(d.trust_name()).c_str(),
        JsonString(IsoTime(d.first_seen_ms)).c_str(), d.this_device ? "true" : "false");
  }
  for (const auto& e : events) {
    std::printf(
        "{\"kind\":\"key-change\",\"seq\":%llu,\"change\":%s,\"user\":%s,\"device\":%s,"
        "\"at\":%s}\n",
        static_cast<unsigned long long>(e.seq), JsonString(e.kind_name()).c_str(),
        JsonString(e.user).c_str(), JsonString(e.device_id).c_str(),
        JsonString(IsoTime(e.at_ms)).c_str());
  }
}

void PrintHuman(const api::Identity& me, const std::vector<api::Device>& devices,
                const std::vector<api::KeyEvent>& events) {
  std::printf(
      "this device (user %s)\n  device            %s\n  fingerprint       %s\n"
      "  user fingerprint  %s\n\n",
      me.user.c_str(), me.device_id.c_str(), me.fingerprint.c_str(), me.user_fingerprint.c_str());
  std::printf(
      "devices (compare fingerprints out of band, then `tidings keys verify USER "
      "DEVICE`)\n");
  for (const auto& d : devices) {
    std::printf("  %-16s %s  %s  %-10s%s\n", d.user.c_str(), d.device_id.c_str(),
                d.fingerprint.c_str(), d.trust_name(), d.this_device ? "  (this device)" : "");
  }
  if (events.empty()) return;
  std::printf("\nkey changes\n");
  for (const auto& e : events) {
    std::printf("  %s  %s: %s %s\n", IsoTime(e.at_ms).c_str(), e.user.c_str(), e.kind_name(),
                e.device_id.c_str());
  }
}

int CmdKeys(const Globals& g) {
  auto store = OpenStore(g, Access::kRead);
  if (!store.ok()) return Fail(store.status());
  auto me = IdentityOf(g, *store);
  if (!me.ok()) return Fail(me.status());
  auto devices = api::GetDevices(*store);
  if (!devices.ok()) return Fail(devices.status());
  auto events = api::GetKeyEvents(*store);
  if (!events.ok()) return Fail(events.status());
  if (g.json) {
    PrintJson(*me, *devices, *events);
  } else {
    PrintHuman(*me, *devices, *events);
  }
  return kExitOk;
}

int CmdTrust(const Globals& g, const std::string& user, const std::string& device,
             tidings_trust trust) {
  auto store = OpenStore(g, Access::kWrite);
  api::Status s;
  if (store.ok()) {
    s = api::SetDeviceTrust(*store, user, device, trust);
  } else {
    int rc = ViaDaemonOrFail(g, store.status(),
                             {{"op", "keys-trust"},
                              {"user", user},
                              {"device", device},
                              {"trust", tidings_trust_name(trust)}});
    if (rc != kExitOk) return rc;
  }
  if (!s.ok()) return Fail(s);
  if (!g.json) {
    std::printf("device %s of %s is now %s\n", device.c_str(), user.c_str(),
                tidings_trust_name(trust));
  }
  return kExitOk;
}

int CmdCreate(const Globals& g, const std::string& id, const std::string& title,
              const std::vector<std::string>& members, bool plaintext) {
  auto store = OpenStore(g, Access::kWrite);
  if (!store.ok()) {
    Request req = {{"op", "conversation-create"},
                   {"id", id},
                   {"title", title},
                   {"plaintext", plaintext ? "1" : "0"}};
    for (const auto& m : members) req.emplace_back("member", m);
    return ViaDaemonOrFail(g, store.status(), req);
  }
  api::Status s = api::CreateConversation(*store, id, title, members, plaintext);
  return s.ok() ? kExitOk : Fail(s);
}

int CmdUpgrade(const Globals& g, const std::string& id) {
  auto store = OpenStore(g, Access::kWrite);
  api::Status s;
  if (store.ok()) {
    s = api::UpgradeConversation(*store, id);
  } else {
    int rc = ViaDaemonOrFail(g, store.status(), {{"op", "conversation-upgrade"}, {"id", id}});
    if (rc != kExitOk) return rc;
  }
  if (!s.ok()) return Fail(s);
  if (!g.json) {
    std::printf("conversation %s is end-to-end encrypted from its next sync on\n", id.c_str());
  }
  return kExitOk;
}

}  // namespace

void AddKeysCommands(CLI::App& app, Globals& g, int& rc) {
  static std::string user, device;
  auto* keys = app.add_subcommand(
      "keys", "this device's fingerprint, and every known user's devices with their trust");
  auto* verify = keys->add_subcommand(
      "verify", "mark a device verified, after comparing its fingerprint out of band");
  auto* remove =
      keys->add_subcommand("remove", "remove a device: it gets no key from this device any more");
  for (auto* cmd : {verify, remove}) {
    cmd->add_option("user", user, "the device's user")->required();
    cmd->add_option("device", device, "device id (from `tidings keys`)")->required();
  }
  verify->callback([&] { rc = CmdTrust(g, user, device, TIDINGS_TRUST_VERIFIED); });
  remove->callback([&] { rc = CmdTrust(g, user, device, TIDINGS_TRUST_REMOVED); });
  keys->callback([&g, &rc, keys] {
    if (keys->get_subcommands().empty()) rc = CmdKeys(g);
  });
}

void AddConversationCommands(CLI::App& conversation, Globals& g, int& rc) {
  static std::string id, title;
  static std::vector<std::string> members;
  static bool plaintext = false;
  auto* create = conversation.add_subcommand(
      "create", "create a conversation: end-to-end encrypted, or with --plaintext not");
  create->add_option("id", id, "conversation id")->required();
  create->add_option("--title", title, "title");
  create->add_option("--member", members, "member user id (repeat)");
  create->add_flag("--plaintext", plaintext,
                   "readable on the servers, for Chime clients that are not Tidings");
  create->callback([&] { rc = CmdCreate(g, id, title, members, plaintext); });
  auto* upgrade = conversation.add_subcommand(
      "upgrade", "make a plaintext conversation end-to-end encrypted from its next sync on");
  upgrade->add_option("id", id, "conversation id")->required();
  upgrade->callback([&] { rc = CmdUpgrade(g, id); });
}

}  // namespace tidings::cli
