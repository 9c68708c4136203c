// Child process for the crash-safety test: appends with durability sync and
// prints each message id to stdout after Send returned OK. The parent kills it
// with SIGKILL at a random moment.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "engine/store.h"

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  uint8_t bytes[32];
  for (auto& b : bytes) b = 7;
  auto key = tidings::crypto::SecretKey::FromBytes(bytes);
  tidings::engine::StoreOptions o;
  o.create_if_missing = true;
  o.user_id = "writer";
  o.durability = tidings::engine::Durability::kSync;
  auto store =
      tidings::engine::Store::Open(argv[1], tidings::crypto::KeySource::Raw(std::move(*key)), o);
  if (!store.ok()) {
    std::fprintf(stderr, "open: %s\n", store.status().ToString().c_str());
    return 1;
  }
  std::string prefix = argv[2];
  for (int i = 0;; ++i) {
    tidings::engine::SendRequest r;
    r.conversation_id = "c" + std::to_string(i % 4);
    r.body = prefix + "-" + std::to_string(i) + std::string(100, 'x');
    auto m = (*store)->Send(r);
    if (!m.ok()) {
      std::fprintf(stderr, "send: %s\n", m.status().ToString().c_str());
      return 1;
    }
    std::string line = m->id + "\n";
    if (::write(1, line.data(), line.size()) < 0) return 1;
  }
}
