// A conversation's mode as sync decides it (sync/core's Reconciler::Sealed):
// "plain" or bound to a sealed log once decided; until then a conversation
// with plaintext history on a backend stays plaintext (upgrade it
// explicitly), and any other becomes end-to-end at its first sync. The API's
// mode read and the send-time limits both ask here, so they agree with sync.
#pragma once

#include <string>

#include "common/status.h"
#include "engine/store.h"

namespace tidings::capi {

enum class Mode {
  kEndToEndPending,  // end-to-end from its first sync on
  kEndToEnd,         // bound to a sealed log
  kPlaintext,
};

// `conversation_id` need not exist yet (a send makes it).
Result<Mode> ModeOf(engine::Store& store, const std::string& conversation_id);

}  // namespace tidings::capi
