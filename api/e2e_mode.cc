#include "api/e2e_mode.h"

#include "sync/core/reconciler.h"
#include "sync/e2e/log_state.h"

namespace tidings::capi {

Result<Mode> ModeOf(engine::Store& store, const std::string& conversation_id) {
  engine::SyncLog& log = store.sync_log();
  TIDINGS_ASSIGN_OR_RETURN(std::string mode, log.GetSyncState(e2e::ModeKey(conversation_id)));
  if (mode == "plain") return Mode::kPlaintext;
  TIDINGS_ASSIGN_OR_RETURN(auto backends, sync::SyncedBackends(log));
  bool history = false;
  for (const auto& b : backends) {
    TIDINGS_ASSIGN_OR_RETURN(std::string bound,
                             log.GetSyncState(e2e::BindingKey(b, conversation_id)));
    if (!bound.empty()) return Mode::kEndToEnd;
    TIDINGS_ASSIGN_OR_RETURN(std::string cursor, log.GetCursor(b, conversation_id));
    history = history || !cursor.empty();
  }
  if (mode == "e2e") return Mode::kEndToEndPending;
  auto c = store.GetConversation(conversation_id);
  if (!c.ok() && c.status().code() != Code::kNotFound) return c.status();
  history = history || (c.ok() && !c->remote_ids.empty());
  return history ? Mode::kPlaintext : Mode::kEndToEndPending;
}

}  // namespace tidings::capi
