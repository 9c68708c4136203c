// The C API's retention calls (include/tidings/tidings.h, "Retention") over
// engine::Store's.
#include <cstring>
#include <string>

#include "api/internal.h"
#include "common/status.h"
#include "engine/store.h"
#include "tidings/tidings.h"

using tidings::Status;
using tidings::capi::Guard;
using tidings::capi::OrEmpty;

extern "C" {

tidings_code tidings_store_set_retention(tidings_store* store, const char* conversation_id,
                                         uint32_t keep_days, uint64_t keep_last,
                                         tidings_error* error) {
  return Guard(error, store, [&](tidings::engine::Store& s) -> Status {
    return s.SetRetention(OrEmpty(conversation_id),
                          tidings::engine::RetentionPolicy{keep_days, keep_last});
  });
}

tidings_code tidings_store_get_retention(tidings_store* store, const char* conversation_id,
                                         bool effective, uint32_t* keep_days, uint64_t* keep_last,
                                         tidings_error* error) {
  return Guard(error, store, [&](tidings::engine::Store& s) -> Status {
    if (keep_days == nullptr || keep_last == nullptr) {
      return tidings::InvalidArgument("no place for the policy (NULL)");
    }
    const std::string id = OrEmpty(conversation_id);
    TIDINGS_ASSIGN_OR_RETURN(
        auto p, effective && !id.empty() ? s.EffectiveRetention(id) : s.GetRetention(id));
    *keep_days = p.keep_days;
    *keep_last = p.keep_last;
    return Status::Ok();
  });
}

tidings_code tidings_store_for_each_retention(tidings_store* store, tidings_retention_fn visit,
                                              void* context, tidings_error* error) {
  return Guard(error, store, [&](tidings::engine::Store& s) -> Status {
    if (visit == nullptr) return tidings::InvalidArgument("no visitor given (NULL)");
    TIDINGS_ASSIGN_OR_RETURN(auto all, s.RetentionPolicies());
    for (const auto& c : all) {
      if (!visit(context, c.conversation_id.c_str(), c.policy.keep_days, c.policy.keep_last)) {
        return tidings::Cancelled("stopped by the visitor");
      }
    }
    return Status::Ok();
  });
}

void tidings_purge_report_init(tidings_purge_report* report) {
  if (report == nullptr) return;
  std::memset(report, 0, sizeof(*report));
  report->struct_size = sizeof(*report);
}

tidings_code tidings_store_purge_expired(tidings_store* store, tidings_purge_report* report,
                                         tidings_error* error) {
  return Guard(error, store, [&](tidings::engine::Store& s) -> Status {
    if (report != nullptr &&
        report->struct_size < TIDINGS_END_OF(tidings_purge_report, messages_purged)) {
      return tidings::InvalidArgument(
          "tidings_purge_report.struct_size is too small; initialise it with "
          "tidings_purge_report_init()");
    }
    TIDINGS_ASSIGN_OR_RETURN(auto r, s.PurgeExpired());
    if (report == nullptr) return Status::Ok();
    // Only the fields the caller's struct has.
    const size_t size = report->struct_size;
    auto fill = [&](size_t end, uint64_t* field, uint64_t value) {
      if (size >= end) *field = value;
    };
    fill(TIDINGS_END_OF(tidings_purge_report, messages_purged), &report->messages_purged,
         r.messages_purged);
    fill(TIDINGS_END_OF(tidings_purge_report, conversations), &report->conversations,
         r.conversations);
    fill(TIDINGS_END_OF(tidings_purge_report, outbox_dropped), &report->outbox_dropped,
         r.outbox_dropped);
    fill(TIDINGS_END_OF(tidings_purge_report, remote_skipped), &report->remote_skipped,
         r.remote_skipped);
    return Status::Ok();
  });
}

}  // extern "C"
