#pragma once

#include <cstdio>
#include <string>
#include <string_view>

#include "crypto/keys.h"
#include "engine/store.h"
#include "tests/common/temp_dir.h"
#include "tests/common/test_files.h"

namespace tidings::testing {

inline crypto::KeySource TestKey(uint8_t fill = 7) {
  uint8_t bytes[32];
  for (auto& b : bytes) b = fill;
  return crypto::KeySource::Raw(std::move(crypto::SecretKey::FromBytes(bytes).value()));
}

inline engine::StoreOptions CreateOptions(const std::string& user = "alice") {
  engine::StoreOptions o;
  o.create_if_missing = true;
  o.user_id = user;
  o.durability = engine::Durability::kRelaxed;
  return o;
}

// Sends `body` to `conversation` with one file, `name` holding `bytes`. The
// file is written in `dir` for the send and removed after it: the store
// keeps its own copy.
inline Result<engine::Message> SendWithFile(engine::Store& store, const std::string& dir,
                                            const std::string& conversation,
                                            const std::string& body,
                                            const std::string& name = "scan.pdf",
                                            std::string_view bytes = "%PDF scan") {
  const std::string path = dir + "/" + name;
  WriteWholeFile(path, bytes);
  engine::SendRequest request{.conversation_id = conversation, .body = body};
  request.attachments.push_back({.path = path, .name = name});
  auto sent = store.Send(request);
  std::remove(path.c_str());
  return sent;
}

}  // namespace tidings::testing
