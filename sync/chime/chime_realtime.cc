// ChimeBackend's real-time delivery: a thin owner of a MessagingSession.
// What an event means (AcceptEvent) is decided on the sync thread elsewhere.
#include "sync/chime/chime_backend.h"
#include "sync/chime/chime_internal.h"

namespace tidings::chime {

MessagingSessionConfig internal::RealtimeConfigFor(
    const ChimeConfig& config, const aws::ServiceConfig& service,
    std::shared_ptr<aws::CredentialsProvider> credentials) {
  MessagingSessionConfig out;
  out.user_arn = config.user_arn;
  out.region = service.region;
  out.rest_endpoint = service.endpoint;
  out.credentials = std::move(credentials);
  return out;
}

Status ChimeBackend::StartRealtime(sync::RealtimeListener listener) {
  std::lock_guard<std::mutex> lock(realtime_mu_);
  if (session_) return FailedPrecondition("the Chime messaging session is already started");
  auto session = std::make_unique<MessagingSession>(realtime_config_);
  // Events may have been missed before a session is established: the next
  // pulls rescan recent history for other clients' edits and redactions.
  auto relay = [this, listener = std::move(listener)](sync::RealtimeEvent e) {
    if (e.kind == sync::RealtimeEvent::Kind::kEstablished) RequestRescan();
    listener(std::move(e));
  };
  TIDINGS_RETURN_IF_ERROR(session->Start(std::move(relay)));
  session_ = std::move(session);
  return Status::Ok();
}

void ChimeBackend::StopRealtime() {
  std::unique_ptr<MessagingSession> session;
  {
    std::lock_guard<std::mutex> lock(realtime_mu_);
    session.swap(session_);
  }
  if (session) session->Stop();
}

void ChimeBackend::PokeRealtime() {
  std::lock_guard<std::mutex> lock(realtime_mu_);
  if (session_) session_->Poke();
}

}  // namespace tidings::chime
