// An app in C++ against the installed package (tidings.hpp over the C API):
// creates a store, sends, reads the message back after reopening, closes.
// Usage: app DIR
#include <array>
#include <cstdio>
#include <string>
#include <tidings/tidings.hpp>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  using tidings::api::Key;
  using tidings::api::Store;
  const std::string path = std::string(argv[1]) + "/store";
  const std::string body = "hello from an installed C++ app";
  std::array<uint8_t, TIDINGS_KEY_SIZE> raw{};
  tidings_error err{};
  if (tidings_key_generate(raw.data(), raw.size(), &err) != TIDINGS_OK) return 1;
  const Key key = Key::Raw(raw);

  std::string id;
  {
    auto store = Store::Create(path, key, "cpp-app");
    if (!store.ok()) {
      std::fprintf(stderr, "app.cc: create: %s\n", store.status().ToString().c_str());
      return 1;
    }
    auto sent = store->Send("conv", body);
    if (!sent.ok()) {
      std::fprintf(stderr, "app.cc: send: %s\n", sent.status().ToString().c_str());
      return 1;
    }
    id = sent->id;
  }  // closes
  auto store = Store::Open(path, key);
  if (!store.ok()) {
    std::fprintf(stderr, "app.cc: open: %s\n", store.status().ToString().c_str());
    return 1;
  }
  auto got = store->Get(id);
  if (!got.ok() || got->body != body) {
    std::fprintf(stderr, "app.cc: the message read back differs from the one sent\n");
    return 1;
  }
  store->Close();
  std::printf("app.cc: ok (libtidings %s)\n", tidings_version());
  return 0;
}
