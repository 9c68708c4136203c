// Limits at the door: the largest body a conversation's backends can carry,
// checked when a message is sent or edited rather than found at push time.
//
// A sync handle records what each of its backends carries in the store's
// sync state ("e2e/limits"), so a send in any process that shares the store
// (the CLI beside a daemon, an app) checks against them. An end-to-end
// conversation is limited by the backend's largest sealed frame (less the
// sealing overhead, e2e::MaxSealedBody); a plaintext one by Chime's 4096
// bytes of message Content, with Tidings' JSON envelope for edits.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/status.h"
#include "engine/store.h"
#include "sync/backend.h"

namespace tidings::capi {

inline constexpr std::string_view kLimitsKey = "e2e/limits";

// What one backend carries: the largest sealed frame (0: none) and the
// largest plaintext message Content (0: no limit beyond the engine's).
struct BackendLimits {
  size_t sealed_frame_bytes = 0;
  size_t plain_content_bytes = 0;
};

// The limits of backend `name` (Backend::name()).
BackendLimits LimitsOf(const std::string& name, const sync::Backend& backend);

// Records `limits` for backend `name` in the store (kept per backend; the
// smallest of all recorded applies).
Status RecordLimits(engine::SyncLog& store, const std::string& name, const BackendLimits& limits);

// TooLarge, giving the conversation's limit in bytes, if the backends this
// store syncs with could not carry the send or the edit.
Status CheckSend(engine::Store& store, const engine::SendRequest& request);
Status CheckEdit(engine::Store& store, const std::string& message_id, std::string_view body);

}  // namespace tidings::capi
