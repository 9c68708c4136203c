// The C API over engine::Store. Every entry point goes through Guard(), which
// turns a Status into a tidings_code plus a cleared-or-filled tidings_error
// and catches any exception (bad_alloc included) at the boundary.
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "api/e2e_limits.h"
#include "api/internal.h"
#include "common/status.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "engine/rekey.h"
#include "engine/store.h"
#include "sync/core/reconciler.h"
#include "tidings/tidings.h"

#ifndef TIDINGS_VERSION_STRING
#define TIDINGS_VERSION_STRING "0.0.0"
#endif

namespace tidings::capi {
namespace {

// The C enum mirrors tidings::Code value for value; this is checked here so
// neither can drift.
#define TIDINGS_MIRROR(c, k) \
  static_assert(static_cast<int>(c) == static_cast<int>(Code::k), #c " must equal Code::" #k)
TIDINGS_MIRROR(TIDINGS_OK, kOk);
TIDINGS_MIRROR(TIDINGS_INVALID_ARGUMENT, kInvalidArgument);
TIDINGS_MIRROR(TIDINGS_NOT_FOUND, kNotFound);
TIDINGS_MIRROR(TIDINGS_ALREADY_EXISTS, kAlreadyExists);
TIDINGS_MIRROR(TIDINGS_FAILED_PRECONDITION, kFailedPrecondition);
TIDINGS_MIRROR(TIDINGS_ABORTED, kAborted);
TIDINGS_MIRROR(TIDINGS_UNAVAILABLE, kUnavailable);
TIDINGS_MIRROR(TIDINGS_DEADLINE_EXCEEDED, kDeadlineExceeded);
TIDINGS_MIRROR(TIDINGS_PERMISSION_DENIED, kPermissionDenied);
TIDINGS_MIRROR(TIDINGS_UNAUTHENTICATED, kUnauthenticated);
TIDINGS_MIRROR(TIDINGS_RESOURCE_EXHAUSTED, kResourceExhausted);
TIDINGS_MIRROR(TIDINGS_DATA_LOSS, kDataLoss);
TIDINGS_MIRROR(TIDINGS_WRONG_KEY, kWrongKey);
TIDINGS_MIRROR(TIDINGS_TOO_LARGE, kTooLarge);
TIDINGS_MIRROR(TIDINGS_BUSY, kBusy);
TIDINGS_MIRROR(TIDINGS_CANCELLED, kCancelled);
TIDINGS_MIRROR(TIDINGS_IO_ERROR, kIOError);
TIDINGS_MIRROR(TIDINGS_INTERNAL, kInternal);
TIDINGS_MIRROR(TIDINGS_UNIMPLEMENTED, kUnimplemented);
#undef TIDINGS_MIRROR

constexpr int kLastCode = TIDINGS_UNIMPLEMENTED;

// ---- Owned results: the public struct first, the storage it points into
// behind it. Box is standard-layout, so a pointer to `pub` converts back to
// the Box (they are pointer-interconvertible).

template <typename Pub, typename Backing>
struct Box {
  Pub pub;
  Backing* backing;
};
template <typename Pub, typename Backing>
Pub* NewBox(std::unique_ptr<Backing> backing, const Pub& pub) {
  auto* box = new Box<Pub, Backing>{pub, backing.release()};
  return &box->pub;
}
template <typename Pub, typename Backing>
void FreeBox(Pub* pub) {
  if (pub == nullptr) return;
  auto* box = reinterpret_cast<Box<Pub, Backing>*>(pub);
  delete box->backing;
  delete box;
}

struct MessageBacking {
  engine::Message m;
  MessageArrays arrays;
};
struct ConversationArrays {
  std::vector<const char*> members;
  PointedArray<tidings_read_marker> markers;
  PointedArray<tidings_pair> remote_ids;
};
struct ConversationBacking {
  engine::Conversation c;
  ConversationArrays arrays;
};
struct StatsBacking {
  engine::StoreStats stats;
};
struct VerifyBacking {
  engine::VerifyReport report;
  std::vector<const char*> details;
};

tidings_order ToC(const engine::OrderKey& k) { return tidings_order{k.hlc, k.replica}; }
engine::OrderKey FromC(tidings_order o) {
  engine::OrderKey k;
  k.hlc = o.hlc;
  k.replica = o.replica;
  return k;
}

void PairsOf(const std::map<std::string, std::string>& map, PointedArray<tidings_pair>* out) {
  std::vector<tidings_pair> pairs;
  pairs.reserve(map.size());
  for (const auto& [k, v] : map) pairs.push_back(tidings_pair{k.c_str(), v.c_str()});
  out->Set(std::move(pairs));
}

tidings_message* NewMessage(engine::Message m) {
  auto b = std::make_unique<MessageBacking>();
  b->m = std::move(m);
  tidings_message pub;
  FillMessage(b->m, &b->arrays, &pub);
  return NewBox<tidings_message, MessageBacking>(std::move(b), pub);
}

void FillConversation(const engine::Conversation& c, ConversationArrays* a,
                      tidings_conversation* out) {
  a->members.clear();
  for (const auto& m : c.members) a->members.push_back(m.c_str());
  std::vector<tidings_read_marker> markers;
  for (const auto& [user, order] : c.read_markers) {
    markers.push_back(tidings_read_marker{user.c_str(), ToC(order)});
  }
  a->markers.Set(std::move(markers));
  PairsOf(c.remote_ids, &a->remote_ids);
  *out = tidings_conversation{};
  out->id = c.id.c_str();
  out->title = c.title.c_str();
  out->members = a->members.data();
  out->member_count = a->members.size();
  out->last_order = ToC(c.last_order);
  out->last_message_id = c.last_message_id.c_str();
  out->message_count = c.message_count;
  out->unread_count = c.unread_count;
  out->read_markers = a->markers.ptrs.data();
  out->read_marker_count = a->markers.ptrs.size();
  out->remote_ids = a->remote_ids.ptrs.data();
  out->remote_id_count = a->remote_ids.ptrs.size();
}

// ---- Subscriptions: the engine may still run a listener it copied before
// Unsubscribe, so the C contract ("after unsubscribe returns, no more calls")
// is kept here with an in-flight count.

struct Subscription {
  tidings_change_fn fn = nullptr;
  void* context = nullptr;
  uint64_t engine_token = 0;
  std::mutex mu;
  std::condition_variable idle;
  bool active = true;
  int in_flight = 0;
};

// Subscriptions whose callback this thread is running, so an unsubscribe
// from inside a callback does not wait for itself.
thread_local std::vector<const Subscription*> t_running;

void Deliver(const std::shared_ptr<Subscription>& sub, const engine::ChangeEvent& e) {
  {
    std::lock_guard<std::mutex> lock(sub->mu);
    if (!sub->active) return;
    ++sub->in_flight;
  }
  t_running.push_back(sub.get());
  tidings_change change;
  switch (e.kind) {
    case engine::ChangeEvent::Kind::kMessageAdded:
      change.kind = TIDINGS_CHANGE_MESSAGE_ADDED;
      break;
    case engine::ChangeEvent::Kind::kMessageChanged:
      change.kind = TIDINGS_CHANGE_MESSAGE_CHANGED;
      break;
    case engine::ChangeEvent::Kind::kMessageStateChanged:
      change.kind = TIDINGS_CHANGE_MESSAGE_STATE_CHANGED;
      break;
    case engine::ChangeEvent::Kind::kConversationChanged:
      change.kind = TIDINGS_CHANGE_CONVERSATION_CHANGED;
      break;
    case engine::ChangeEvent::Kind::kOutboxChanged:
    default:
      change.kind = TIDINGS_CHANGE_OUTBOX_CHANGED;
      break;
  }
  change.conversation_id = e.conversation_id.c_str();
  change.message_id = e.message_id.c_str();
  sub->fn(sub->context, &change);
  t_running.pop_back();
  std::lock_guard<std::mutex> lock(sub->mu);
  --sub->in_flight;
  sub->idle.notify_all();
}

void Deactivate(engine::Store* store, const std::shared_ptr<Subscription>& sub) {
  store->Unsubscribe(sub->engine_token);
  bool inside = false;
  for (const Subscription* s : t_running) inside = inside || s == sub.get();
  std::unique_lock<std::mutex> lock(sub->mu);
  sub->active = false;
  sub->idle.wait(lock, [&] { return sub->in_flight == (inside ? 1 : 0); });
}

Result<crypto::KeySource> KeyFrom(const tidings_key_source* key) {
  if (key == nullptr) return InvalidArgument("no key given");
  switch (key->kind) {
    case TIDINGS_KEY_RAW: {
      if (key->data == nullptr || key->size != TIDINGS_KEY_SIZE) {
        return InvalidArgument("a raw key must be exactly 32 bytes");
      }
      TIDINGS_ASSIGN_OR_RETURN(
          crypto::SecretKey k,
          crypto::SecretKey::FromBytes({static_cast<const uint8_t*>(key->data), key->size}));
      return crypto::KeySource::Raw(std::move(k));
    }
    case TIDINGS_KEY_PASSPHRASE:
      if (key->data == nullptr || key->size == 0) {
        return InvalidArgument("the passphrase is empty; give a passphrase");
      }
      return crypto::KeySource::Passphrase(
          std::string_view(static_cast<const char*>(key->data), key->size));
    case TIDINGS_KEY_FILE:
      if (key->data == nullptr || *static_cast<const char*>(key->data) == '\0') {
        return InvalidArgument("no key file path given");
      }
      return crypto::KeySource::KeyFile(static_cast<const char*>(key->data));
  }
  return InvalidArgument("unknown key kind; use tidings_key_raw, _passphrase or _file");
}

// The first published version of each caller-filled struct ends with this
// field. Never change these: fields appended later are read only when the
// caller's struct_size covers them (ReadCallerStruct).
constexpr size_t kOpenOptionsV1 = TIDINGS_END_OF(tidings_open_options, max_clock_drift_ms);
constexpr size_t kSendRequestV1 = TIDINGS_END_OF(tidings_send_request, message_id);
// Where each ends in this library.
constexpr size_t kOpenOptionsKnown = TIDINGS_END_OF(tidings_open_options, attachment_quota_bytes);
constexpr size_t kRekeyOptionsV1 = TIDINGS_END_OF(tidings_rekey_options, progress_context);
constexpr size_t kRekeyOptionsKnown = TIDINGS_END_OF(tidings_rekey_options, progress_context);

// DEFAULT: nullopt (the caller's default applies).
Result<std::optional<crypto::PassphraseProfile>> ProfileFrom(
    const tidings_passphrase_profile& profile) {
  switch (RawEnum(profile)) {
    case TIDINGS_PASSPHRASE_DEFAULT:
      return std::optional<crypto::PassphraseProfile>();
    case TIDINGS_PASSPHRASE_INTERACTIVE:
      return std::optional(crypto::PassphraseProfile::kInteractive);
    case TIDINGS_PASSPHRASE_MODERATE:
      return std::optional(crypto::PassphraseProfile::kModerate);
    case TIDINGS_PASSPHRASE_SENSITIVE:
      return std::optional(crypto::PassphraseProfile::kSensitive);
  }
  return InvalidArgument(
      "unknown passphrase profile; use TIDINGS_PASSPHRASE_INTERACTIVE, "
      "_MODERATE or _SENSITIVE");
}
constexpr size_t kSendRequestKnown = TIDINGS_END_OF(tidings_send_request, progress_context);
constexpr size_t kAttachmentInputV1 = TIDINGS_END_OF(tidings_attachment_input, preview_size);

// The request's attachments as the store takes them. The read callbacks and
// progress are the caller's, called during the send.
Status AttachmentsFrom(const tidings_send_request& req, engine::SendRequest* r) {
  if (req.attachment_count == 0) return Status::Ok();
  if (req.attachments == nullptr) {
    return InvalidArgument("attachments is NULL but attachment_count is not 0");
  }
  if (req.attachment_count > engine::kMaxAttachments) {
    return TooLarge("a message has at most 16 attachments");
  }
  for (size_t i = 0; i < req.attachment_count; ++i) {
    if (req.attachments[i] == nullptr) return InvalidArgument("an attachment is NULL");
    TIDINGS_ASSIGN_OR_RETURN(tidings_attachment_input in,
                             ReadCallerStruct(req.attachments[i], kAttachmentInputV1,
                                              kAttachmentInputV1, "tidings_attachment_input"));
    engine::AttachmentInput a;
    if (in.path != nullptr) {
      a.path = in.path;
    } else if (in.read != nullptr) {
      a.read = [read = in.read, context = in.read_context](char* buf,
                                                           size_t cap) -> Result<size_t> {
        const int64_t n = read(context, reinterpret_cast<uint8_t*>(buf), cap);
        if (n < 0 || static_cast<uint64_t>(n) > cap) {
          return IOError("the attachment's read callback reported an error");
        }
        return static_cast<size_t>(n);
      };
    } else {
      return InvalidArgument("an attachment has neither a path nor a read callback");
    }
    if (in.name != nullptr) a.name = in.name;
    if (in.content_type != nullptr) a.content_type = in.content_type;
    if (in.preview_size != 0) {
      if (in.preview == nullptr)
        return InvalidArgument("preview is NULL but preview_size is not 0");
      a.preview.assign(reinterpret_cast<const char*>(in.preview), in.preview_size);
    }
    r->attachments.push_back(std::move(a));
  }
  return Status::Ok();
}

Status RequireString(const char* s, const char* what) {
  if (s == nullptr) return InvalidArgument(std::string("no ") + what + " given (NULL)");
  return Status::Ok();
}

}  // namespace

void FillMessage(const engine::Message& m, MessageArrays* a, tidings_message* out) {
  std::vector<tidings_reaction> reactions;
  for (const auto& r : m.reactions) {
    reactions.push_back(tidings_reaction{r.user.c_str(), r.reaction.c_str()});
  }
  a->reactions.Set(std::move(reactions));
  PairsOf(m.metadata, &a->metadata);
  PairsOf(m.remote_ids, &a->remote_ids);
  a->object_hex.clear();
  for (const auto& at : m.attachments) a->object_hex.push_back(ObjectHex(at.object));
  std::vector<tidings_attachment> attachments;
  for (size_t i = 0; i < m.attachments.size(); ++i) {
    const engine::Attachment& at = m.attachments[i];
    attachments.push_back(tidings_attachment{
        a->object_hex[i].c_str(), at.name.c_str(), at.content_type.c_str(), at.size,
        reinterpret_cast<const uint8_t*>(at.preview.data()), at.preview.size(), at.body});
  }
  a->attachments.Set(std::move(attachments));
  *out = tidings_message{};
  out->id = m.id.c_str();
  out->conversation_id = m.conversation_id.c_str();
  out->sender = m.sender.c_str();
  out->order = ToC(m.order);
  out->body = m.body.c_str();
  out->body_size = m.body.size();
  out->content_type = m.content_type.c_str();
  out->state = static_cast<tidings_message_state>(m.state);
  out->failure_reason = m.failure_reason.c_str();
  out->server_time_ms = m.server_time_ms;
  out->edited_at = ToC(m.edited_at);
  out->deleted = m.deleted;
  out->reactions = a->reactions.ptrs.data();
  out->reaction_count = a->reactions.ptrs.size();
  out->metadata = a->metadata.ptrs.data();
  out->metadata_count = a->metadata.ptrs.size();
  out->remote_ids = a->remote_ids.ptrs.data();
  out->remote_id_count = a->remote_ids.ptrs.size();
  out->attachments = a->attachments.ptrs.data();
  out->attachment_count = a->attachments.ptrs.size();
}

std::string ObjectHex(std::string_view object) { return crypto::HexEncode(object); }

Result<std::string> ObjectFromHex(const char* hex) {
  if (hex == nullptr) return InvalidArgument("no attachment object given (NULL)");
  const std::string_view h(hex);
  std::string out;
  if (h.size() != 64 || !crypto::HexDecode(h, &out)) {
    return InvalidArgument(
        "an attachment object is named by 64 hex digits (tidings_attachment.object)");
  }
  return out;
}

void SetError(tidings_error* error, tidings_code code, const std::string& message) {
  if (error == nullptr) return;
  error->code = code;
  size_t n = std::min(message.size(), sizeof(error->message) - 1);
  // Never cut a UTF-8 sequence in half: back up over continuation bytes.
  if (n < message.size()) {
    while (n > 0 && (static_cast<unsigned char>(message[n]) & 0xC0) == 0x80) --n;
  }
  std::memcpy(error->message, message.data(), n);
  error->message[n] = '\0';
}

tidings_code ToCode(const Status& s, tidings_error* error) {
  int code = static_cast<int>(s.code());
  if (code < 0 || code > kLastCode) code = TIDINGS_INTERNAL;
  SetError(error, static_cast<tidings_code>(code), s.message());
  return static_cast<tidings_code>(code);
}

}  // namespace tidings::capi

// ---------------------------------------------------------------------------

struct tidings_store {
  std::unique_ptr<tidings::engine::Store> store;
  std::mutex subs_mu;
  std::map<uint64_t, std::shared_ptr<tidings::capi::Subscription>> subs;
  uint64_t next_token = 1;
};

// The lists: each owns the engine values and the C structs that point into
// them (its vectors are never resized once filled). Callers see only
// pointers to single items, so tidings_message and the others may grow.
struct tidings_message_list {
  std::vector<tidings::engine::Message> values;
  std::vector<tidings::capi::MessageArrays> arrays;
  std::vector<tidings_message> items;
};
struct tidings_conversation_list {
  std::vector<tidings::engine::Conversation> values;
  std::vector<tidings::capi::ConversationArrays> arrays;
  std::vector<tidings_conversation> items;
};
struct tidings_outbox_list {
  std::vector<tidings::engine::OutboxEntry> entries;
  std::vector<tidings_outbox_entry> items;
};

namespace tidings::capi {
engine::Store* EngineOf(tidings_store* store) { return store->store.get(); }

// A new List of `values`, each item filled by fill(value, &arrays, &item).
template <typename List, typename Values, typename Fill>
List* NewList(Values values, Fill fill) {
  auto list = std::make_unique<List>();
  list->values = std::move(values);
  list->arrays.resize(list->values.size());
  list->items.resize(list->values.size());
  for (size_t i = 0; i < list->values.size(); ++i) {
    fill(list->values[i], &list->arrays[i], &list->items[i]);
  }
  return list.release();
}

template <typename List>
size_t CountOf(const List* list) {
  return list == nullptr ? 0 : list->items.size();
}
template <typename List>
auto ItemAt(const List* list, size_t index) -> decltype(&list->items[0]) {
  if (list == nullptr || index >= list->items.size()) return nullptr;
  return &list->items[index];
}
}  // namespace tidings::capi

using tidings::Status;
using tidings::capi::Guard;
using tidings::capi::RequireString;
namespace engine = tidings::engine;

extern "C" {

const char* tidings_code_name(tidings_code code) {
  const int raw = tidings::capi::RawEnum(code);
  if (raw < 0 || raw > tidings::capi::kLastCode) return "UNKNOWN";
  return tidings::CodeName(static_cast<tidings::Code>(raw));
}

bool tidings_code_is_retryable(tidings_code code) {
  return Status(static_cast<tidings::Code>(tidings::capi::RawEnum(code)), "").IsRetryable();
}

const char* tidings_version(void) { return TIDINGS_VERSION_STRING; }

int tidings_order_compare(tidings_order a, tidings_order b) {
  if (a.hlc != b.hlc) return a.hlc < b.hlc ? -1 : 1;
  if (a.replica != b.replica) return a.replica < b.replica ? -1 : 1;
  return 0;
}

const char* tidings_op_kind_name(tidings_op_kind kind) {
  const int raw = tidings::capi::RawEnum(kind);
  if (raw < TIDINGS_OP_SEND || raw > TIDINGS_OP_READ_MARKER) return "unknown";
  return engine::OpKindName(static_cast<engine::OpKind>(raw));
}

tidings_code tidings_key_generate(uint8_t* out, size_t size, tidings_error* error) {
  return Guard(error, [&]() -> Status {
    if (out == nullptr || size != TIDINGS_KEY_SIZE) {
      return tidings::InvalidArgument("the key buffer must be exactly 32 bytes");
    }
    tidings::crypto::RandomBytes(out, size);
    return Status::Ok();
  });
}

tidings_code tidings_key_file_create(const char* path, tidings_error* error) {
  return Guard(error, [&]() -> Status {
    TIDINGS_RETURN_IF_ERROR(RequireString(path, "key file path"));
    TIDINGS_ASSIGN_OR_RETURN(auto key, tidings::crypto::SecretKey::Random());
    return tidings::crypto::WriteKeyFile(path, key);
  });
}

tidings_code tidings_store_open(const char* path, const tidings_key_source* key,
                                const tidings_open_options* options, tidings_store** out,
                                tidings_error* error) {
  if (out != nullptr) *out = nullptr;
  return Guard(error, [&]() -> Status {
    TIDINGS_RETURN_IF_ERROR(RequireString(path, "store path"));
    if (out == nullptr) return tidings::InvalidArgument("no place for the store handle (NULL)");
    engine::StoreOptions o;
    if (options != nullptr) {
      TIDINGS_ASSIGN_OR_RETURN(tidings_open_options c,
                               tidings::capi::ReadCallerStruct(
                                   options, tidings::capi::kOpenOptionsV1,
                                   tidings::capi::kOpenOptionsKnown, "tidings_open_options"));
      o.create_if_missing = c.create_if_missing;
      o.error_if_exists = c.error_if_exists;
      o.read_only = c.read_only;
      o.durability = c.durability == TIDINGS_DURABILITY_RELAXED ? engine::Durability::kRelaxed
                                                                : engine::Durability::kSync;
      if (c.user_id != nullptr) o.user_id = c.user_id;
      if (c.max_clock_drift_ms != 0) o.max_clock_drift_ms = c.max_clock_drift_ms;
      TIDINGS_ASSIGN_OR_RETURN(auto profile, tidings::capi::ProfileFrom(c.passphrase_profile));
      if (profile) o.passphrase_profile = *profile;
      o.search_index = !c.search_index_off;
      if (c.search_stem_english != 0) o.search_stem_english = c.search_stem_english > 0;
      if (c.open_progress != nullptr) {
        o.open_progress = [fn = c.open_progress, ctx = c.open_progress_context](
                              uint64_t d, uint64_t t) { fn(ctx, d, t); };
      }
      if (c.attachment_quota_bytes == UINT64_MAX) {
        o.attachment_quota_bytes = 0;  // the engine's "no limit"
      } else if (c.attachment_quota_bytes != 0) {
        o.attachment_quota_bytes = c.attachment_quota_bytes;
      }
    }
    TIDINGS_ASSIGN_OR_RETURN(auto source, tidings::capi::KeyFrom(key));
    TIDINGS_ASSIGN_OR_RETURN(auto store, engine::Store::Open(path, std::move(source), o));
    if (!o.read_only) TIDINGS_RETURN_IF_ERROR(tidings::capi::EnsureDeviceKeys(*store));
    auto handle = std::make_unique<tidings_store>();
    handle->store = std::move(store);
    *out = handle.release();
    return Status::Ok();
  });
}

tidings_code tidings_store_rekey(const char* path, const tidings_key_source* key,
                                 const tidings_rekey_options* options, tidings_error* error) {
  return Guard(error, [&]() -> Status {
    TIDINGS_RETURN_IF_ERROR(RequireString(path, "store path"));
    engine::RekeyOptions o;
    if (options != nullptr) {
      TIDINGS_ASSIGN_OR_RETURN(tidings_rekey_options c,
                               tidings::capi::ReadCallerStruct(
                                   options, tidings::capi::kRekeyOptionsV1,
                                   tidings::capi::kRekeyOptionsKnown, "tidings_rekey_options"));
      if (c.new_key != nullptr) {
        TIDINGS_ASSIGN_OR_RETURN(o.new_key, tidings::capi::KeyFrom(c.new_key));
      }
      TIDINGS_ASSIGN_OR_RETURN(o.profile, tidings::capi::ProfileFrom(c.passphrase_profile));
      o.rotate_data_key = c.rotate_data_key;
      if (c.progress != nullptr) {
        o.progress = [fn = c.progress, ctx = c.progress_context](uint64_t d, uint64_t t) {
          fn(ctx, d, t);
        };
      }
    }
    TIDINGS_ASSIGN_OR_RETURN(auto source, tidings::capi::KeyFrom(key));
    return engine::Rekey(path, std::move(source), std::move(o)).status();
  });
}

tidings_code tidings_store_create(const char* path, const tidings_key_source* key,
                                  const char* user_id, tidings_store** out, tidings_error* error) {
  if (user_id == nullptr || *user_id == '\0') {
    if (out != nullptr) *out = nullptr;
    return tidings::capi::ToCode(tidings::InvalidArgument("a new store needs a user id"), error);
  }
  tidings_open_options o;
  tidings_open_options_init(&o);
  o.create_if_missing = true;
  o.error_if_exists = true;
  o.user_id = user_id;
  return tidings_store_open(path, key, &o, out, error);
}

void tidings_store_close(tidings_store* store) {
  if (store == nullptr) return;
  try {
    std::map<uint64_t, std::shared_ptr<tidings::capi::Subscription>> subs;
    {
      std::lock_guard<std::mutex> lock(store->subs_mu);
      subs.swap(store->subs);
    }
    for (auto& [token, sub] : subs) tidings::capi::Deactivate(store->store.get(), sub);
    delete store;
  } catch (...) {
    // Nothing sensible to report from a destructor-like call; the engine
    // releases its files in its destructor regardless.
  }
}

tidings_code tidings_store_refresh(tidings_store* store, tidings_error* error) {
  return Guard(error, store, [&](engine::Store& s) { return s.Refresh(); });
}

// ---- Writes ----

tidings_code tidings_store_send(tidings_store* store, const tidings_send_request* request,
                                tidings_message** out, tidings_error* error) {
  if (out != nullptr) *out = nullptr;
  return Guard(error, store, [&](engine::Store& s) -> Status {
    if (request == nullptr) return tidings::InvalidArgument("no send request given (NULL)");
    TIDINGS_ASSIGN_OR_RETURN(
        tidings_send_request req,
        tidings::capi::ReadCallerStruct(request, tidings::capi::kSendRequestV1,
                                        tidings::capi::kSendRequestKnown, "tidings_send_request"));
    TIDINGS_RETURN_IF_ERROR(RequireString(req.conversation_id, "conversation id"));
    if (req.body == nullptr && req.body_size != 0) {
      return tidings::InvalidArgument("body is NULL but body_size is not 0");
    }
    engine::SendRequest r;
    r.conversation_id = req.conversation_id;
    if (req.body_size != 0) r.body.assign(req.body, req.body_size);
    if (req.content_type != nullptr) r.content_type = req.content_type;
    if (req.metadata_count != 0) {
      if (req.metadata == nullptr) {
        return tidings::InvalidArgument("metadata is NULL but metadata_count is not 0");
      }
      for (size_t i = 0; i < req.metadata_count; ++i) {
        const tidings_pair* p = req.metadata[i];
        if (p == nullptr || p->key == nullptr || p->value == nullptr) {
          return tidings::InvalidArgument("a metadata pair, key or value is NULL");
        }
        r.metadata[p->key] = p->value;
      }
    }
    if (req.message_id != nullptr) r.message_id = req.message_id;
    TIDINGS_RETURN_IF_ERROR(tidings::capi::AttachmentsFrom(req, &r));
    // One progress over all the files: bytes done of their total.
    std::atomic<bool> cancel{false};
    std::vector<uint64_t> done(r.attachments.size()), total(r.attachments.size());
    for (size_t i = 0; i < r.attachments.size(); ++i) {
      r.attachments[i].cancel = &cancel;
      if (req.progress == nullptr) continue;
      r.attachments[i].progress = [&, i](uint64_t d, uint64_t t) {
        done[i] = d;
        total[i] = t;
        uint64_t all_done = 0, all = 0;
        for (size_t j = 0; j < done.size(); ++j) {
          all_done += done[j];
          all += total[j];
        }
        if (!req.progress(req.progress_context, all_done, all)) cancel = true;
      };
    }
    Status fits = tidings::capi::CheckSend(s, r);
    if (fits.code() == tidings::Code::kTooLarge && !r.body.empty() &&
        r.body.size() <= engine::kMaxBodyBytes) {
      // Longer than a backend carries in one message: the text travels as
      // a file, if the rest of the message fits without it.
      engine::SendRequest without = r;
      without.body.clear();
      without.attachments.push_back(
          {.read = [](char*, size_t) -> tidings::Result<size_t> { return size_t{0}; },
           .name = "message.txt",
           .content_type = r.content_type});
      // Else (a plaintext Chime conversation carries no files) the limit
      // stands as it is.
      if (!tidings::capi::CheckSend(s, without).ok()) return fits;
      r.body_as_attachment = true;
    } else {
      TIDINGS_RETURN_IF_ERROR(fits);
    }
    TIDINGS_ASSIGN_OR_RETURN(engine::Message m, s.Send(r));
    if (out != nullptr) *out = tidings::capi::NewMessage(std::move(m));
    return Status::Ok();
  });
}

tidings_code tidings_store_edit(tidings_store* store, const char* message_id, const char* body,
                                size_t body_size, tidings_message** out, tidings_error* error) {
  if (out != nullptr) *out = nullptr;
  return Guard(error, store, [&](engine::Store& s) -> Status {
    TIDINGS_RETURN_IF_ERROR(RequireString(message_id, "message id"));
    if (body == nullptr && body_size != 0) {
      return tidings::InvalidArgument("body is NULL but body_size is not 0");
    }
    std::string_view b = body_size == 0 ? std::string_view() : std::string_view(body, body_size);
    TIDINGS_RETURN_IF_ERROR(tidings::capi::CheckEdit(s, message_id, b));
    TIDINGS_ASSIGN_OR_RETURN(engine::Message m, s.Edit(message_id, b));
    if (out != nullptr) *out = tidings::capi::NewMessage(std::move(m));
    return Status::Ok();
  });
}

tidings_code tidings_store_delete(tidings_store* store, const char* message_id,
                                  tidings_error* error) {
  return Guard(error, store, [&](engine::Store& s) -> Status {
    TIDINGS_RETURN_IF_ERROR(RequireString(message_id, "message id"));
    return s.Delete(message_id);
  });
}

tidings_code tidings_store_react(tidings_store* store, const char* message_id, const char* reaction,
                                 bool add, tidings_error* error) {
  return Guard(error, store, [&](engine::Store& s) -> Status {
    TIDINGS_RETURN_IF_ERROR(RequireString(message_id, "message id"));
    TIDINGS_RETURN_IF_ERROR(RequireString(reaction, "reaction"));
    return s.React(message_id, reaction, add);
  });
}

tidings_code tidings_store_mark_read(tidings_store* store, const char* conversation_id,
                                     tidings_order up_to, tidings_error* error) {
  return Guard(error, store, [&](engine::Store& s) -> Status {
    TIDINGS_RETURN_IF_ERROR(RequireString(conversation_id, "conversation id"));
    return s.MarkRead(conversation_id, tidings::capi::FromC(up_to));
  });
}

tidings_code tidings_store_put_conversation(tidings_store* store, const char* id, const char* title,
                                            const char* const* members, size_t member_count,
                                            tidings_error* error) {
  return Guard(error, store, [&](engine::Store& s) -> Status {
    TIDINGS_RETURN_IF_ERROR(RequireString(id, "conversation id"));
    if (members == nullptr && member_count != 0) {
      return tidings::InvalidArgument("members is NULL but member_count is not 0");
    }
    std::vector<std::string> m;
    for (size_t i = 0; i < member_count; ++i) {
      TIDINGS_RETURN_IF_ERROR(RequireString(members[i], "member"));
      m.emplace_back(members[i]);
    }
    return s.PutConversation(id, title == nullptr ? "" : title, m).status();
  });
}

// ---- Reads ----

tidings_code tidings_store_get(tidings_store* store, const char* message_id, tidings_message** out,
                               tidings_error* error) {
  if (out != nullptr) *out = nullptr;
  return Guard(error, store, [&](engine::Store& s) -> Status {
    TIDINGS_RETURN_IF_ERROR(RequireString(message_id, "message id"));
    if (out == nullptr) return tidings::InvalidArgument("no place for the message (NULL)");
    TIDINGS_ASSIGN_OR_RETURN(engine::Message m, s.Get(message_id));
    *out = tidings::capi::NewMessage(std::move(m));
    return Status::Ok();
  });
}

namespace {

tidings_code Page(tidings_store* store, const char* conversation_id,
                  std::optional<engine::OrderKey> before, std::optional<engine::OrderKey> after,
                  size_t limit, tidings_message_list** out, tidings_error* error) {
  if (out != nullptr) *out = nullptr;
  return Guard(error, store, [&](engine::Store& s) -> Status {
    TIDINGS_RETURN_IF_ERROR(RequireString(conversation_id, "conversation id"));
    if (out == nullptr) return tidings::InvalidArgument("no place for the page (NULL)");
    engine::PageRequest r;
    r.conversation_id = conversation_id;
    r.limit = limit;
    r.before = before;
    r.after = after;
    TIDINGS_ASSIGN_OR_RETURN(auto messages, s.Page(r));
    // An empty page of a conversation that does not exist is NOT_FOUND, so a
    // mistyped id is not mistaken for an empty conversation.
    if (messages.empty()) TIDINGS_RETURN_IF_ERROR(s.GetConversation(conversation_id).status());
    *out = tidings::capi::NewList<tidings_message_list>(std::move(messages),
                                                        tidings::capi::FillMessage);
    return Status::Ok();
  });
}

}  // namespace

tidings_code tidings_store_page_newest(tidings_store* store, const char* conversation_id,
                                       size_t limit, tidings_message_list** out,
                                       tidings_error* error) {
  return Page(store, conversation_id, std::nullopt, std::nullopt, limit, out, error);
}

tidings_code tidings_store_page_before(tidings_store* store, const char* conversation_id,
                                       tidings_order before, size_t limit,
                                       tidings_message_list** out, tidings_error* error) {
  return Page(store, conversation_id, tidings::capi::FromC(before), std::nullopt, limit, out,
              error);
}

tidings_code tidings_store_page_after(tidings_store* store, const char* conversation_id,
                                      tidings_order after, size_t limit, tidings_message_list** out,
                                      tidings_error* error) {
  return Page(store, conversation_id, std::nullopt, tidings::capi::FromC(after), limit, out, error);
}

tidings_code tidings_store_get_conversation(tidings_store* store, const char* id,
                                            tidings_conversation** out, tidings_error* error) {
  if (out != nullptr) *out = nullptr;
  return Guard(error, store, [&](engine::Store& s) -> Status {
    TIDINGS_RETURN_IF_ERROR(RequireString(id, "conversation id"));
    if (out == nullptr) return tidings::InvalidArgument("no place for the conversation (NULL)");
    TIDINGS_ASSIGN_OR_RETURN(engine::Conversation c, s.GetConversation(id));
    auto b = std::make_unique<tidings::capi::ConversationBacking>();
    b->c = std::move(c);
    tidings_conversation pub;
    tidings::capi::FillConversation(b->c, &b->arrays, &pub);
    *out = tidings::capi::NewBox<tidings_conversation>(std::move(b), pub);
    return Status::Ok();
  });
}

tidings_code tidings_store_conversations(tidings_store* store, size_t limit,
                                         tidings_conversation_list** out, tidings_error* error) {
  if (out != nullptr) *out = nullptr;
  return Guard(error, store, [&](engine::Store& s) -> Status {
    if (out == nullptr) return tidings::InvalidArgument("no place for the list (NULL)");
    TIDINGS_ASSIGN_OR_RETURN(auto convs, s.Conversations(limit));
    *out = tidings::capi::NewList<tidings_conversation_list>(std::move(convs),
                                                             tidings::capi::FillConversation);
    return Status::Ok();
  });
}

tidings_code tidings_store_outbox_count(tidings_store* store, const char* conversation_id,
                                        uint64_t* pending, uint64_t* failed, tidings_error* error) {
  if (pending != nullptr) *pending = 0;
  if (failed != nullptr) *failed = 0;
  return Guard(error, store, [&](engine::Store& s) -> Status {
    TIDINGS_ASSIGN_OR_RETURN(auto counts,
                             s.CountOutbox(conversation_id == nullptr ? "" : conversation_id));
    if (pending != nullptr) *pending = counts.pending;
    if (failed != nullptr) *failed = counts.failed;
    return Status::Ok();
  });
}

tidings_code tidings_store_outbox(tidings_store* store, const char* conversation_id, size_t limit,
                                  tidings_outbox_list** out, tidings_error* error) {
  if (out != nullptr) *out = nullptr;
  return Guard(error, store, [&](engine::Store& s) -> Status {
    if (out == nullptr) return tidings::InvalidArgument("no place for the outbox (NULL)");
    TIDINGS_ASSIGN_OR_RETURN(auto entries,
                             s.Outbox(limit, conversation_id == nullptr ? "" : conversation_id));
    auto list = std::make_unique<tidings_outbox_list>();
    list->entries = std::move(entries);
    for (const auto& e : list->entries) {
      tidings_outbox_entry c{};
      c.seq = e.seq;
      c.kind = static_cast<tidings_op_kind>(e.op.kind);
      c.op_id = e.op.op_id.c_str();
      c.conversation_id = e.op.conversation_id.c_str();
      c.message_id = e.op.message_id.c_str();
      c.at = tidings::capi::ToC(e.op.at);
      c.attempts = e.attempts;
      c.next_attempt_ms = e.next_attempt_ms;
      c.last_error = e.last_error.c_str();
      c.failed = e.failed;
      list->items.push_back(c);
    }
    *out = list.release();
    return Status::Ok();
  });
}

tidings_code tidings_store_outbox_retry(tidings_store* store, uint64_t seq, tidings_error* error) {
  // Also clears the conversation's parked/backoff status on every backend, so
  // the next sync (this process's or a daemon's after restart) sends it now.
  return Guard(error, store, [&](engine::Store& s) {
    return tidings::sync::RetryFailedOperation(s.sync_log(), seq);
  });
}

tidings_code tidings_store_outbox_discard(tidings_store* store, uint64_t seq,
                                          tidings_error* error) {
  return Guard(error, store, [&](engine::Store& s) { return s.DiscardFailed(seq); });
}

// ---- Maintenance ----

tidings_code tidings_store_stats(tidings_store* store, tidings_stats** out, tidings_error* error) {
  if (out != nullptr) *out = nullptr;
  return Guard(error, store, [&](engine::Store& s) -> Status {
    if (out == nullptr) return tidings::InvalidArgument("no place for the stats (NULL)");
    TIDINGS_ASSIGN_OR_RETURN(auto st, s.Stats());
    auto b = std::make_unique<tidings::capi::StatsBacking>();
    b->stats = std::move(st);
    tidings_stats pub{};
    pub.messages = b->stats.messages;
    pub.conversations = b->stats.conversations;
    pub.outbox = b->stats.outbox;
    pub.outbox_failed = b->stats.outbox_failed;
    pub.disk_bytes = b->stats.disk_bytes;
    pub.schema_version = b->stats.schema_version;
    pub.replica_id = b->stats.replica_id;
    pub.user_id = b->stats.user_id.c_str();
    *out = tidings::capi::NewBox<tidings_stats>(std::move(b), pub);
    return Status::Ok();
  });
}

tidings_code tidings_store_verify(tidings_store* store, tidings_progress_fn progress, void* context,
                                  tidings_verify_report** out, tidings_error* error) {
  if (out != nullptr) *out = nullptr;
  return Guard(error, store, [&](engine::Store& s) -> Status {
    if (out == nullptr) return tidings::InvalidArgument("no place for the report (NULL)");
    std::function<void(uint64_t, uint64_t)> cb;
    if (progress != nullptr) cb = [&](uint64_t d, uint64_t t) { progress(context, d, t); };
    TIDINGS_ASSIGN_OR_RETURN(auto report, s.Verify(cb));
    auto b = std::make_unique<tidings::capi::VerifyBacking>();
    b->report = std::move(report);
    for (const auto& d : b->report.details) b->details.push_back(d.c_str());
    tidings_verify_report pub{};
    pub.records_checked = b->report.records_checked;
    pub.problems = b->report.problems;
    pub.details = b->details.data();
    pub.detail_count = b->details.size();
    *out = tidings::capi::NewBox<tidings_verify_report>(std::move(b), pub);
    return Status::Ok();
  });
}

tidings_code tidings_store_backup(tidings_store* store, const char* backup_path,
                                  tidings_progress_fn progress, void* context,
                                  tidings_error* error) {
  return Guard(error, store, [&](engine::Store& s) -> Status {
    TIDINGS_RETURN_IF_ERROR(RequireString(backup_path, "backup file path"));
    std::function<void(uint64_t, uint64_t)> cb;
    if (progress != nullptr) cb = [&](uint64_t d, uint64_t t) { progress(context, d, t); };
    return s.Backup(backup_path, cb);
  });
}

tidings_code tidings_store_restore(const char* backup_path, const char* store_path,
                                   const tidings_key_source* key, tidings_progress_fn progress,
                                   void* context, tidings_error* error) {
  return Guard(error, [&]() -> Status {
    TIDINGS_RETURN_IF_ERROR(RequireString(backup_path, "backup file path"));
    TIDINGS_RETURN_IF_ERROR(RequireString(store_path, "store path"));
    TIDINGS_ASSIGN_OR_RETURN(auto source, tidings::capi::KeyFrom(key));
    std::function<void(uint64_t, uint64_t)> cb;
    if (progress != nullptr) cb = [&](uint64_t d, uint64_t t) { progress(context, d, t); };
    return engine::Store::Restore(backup_path, store_path, std::move(source), cb);
  });
}

tidings_code tidings_store_for_each_message(tidings_store* store, tidings_message_fn visit,
                                            void* context, tidings_error* error) {
  return Guard(error, store, [&](engine::Store& s) -> Status {
    if (visit == nullptr) return tidings::InvalidArgument("no visitor given (NULL)");
    tidings::capi::MessageArrays arrays;
    return s.ForEachMessage([&](const engine::Message& m) -> Status {
      tidings_message c;
      tidings::capi::FillMessage(m, &arrays, &c);
      if (!visit(context, &c)) return tidings::Cancelled("stopped by the visitor");
      return Status::Ok();
    });
  });
}

// ---- Notifications ----

tidings_code tidings_store_subscribe(tidings_store* store, tidings_change_fn callback,
                                     void* context, uint64_t* token, tidings_error* error) {
  return Guard(error, store, [&](engine::Store& s) -> Status {
    if (callback == nullptr) return tidings::InvalidArgument("no callback given (NULL)");
    if (token == nullptr) return tidings::InvalidArgument("no place for the token (NULL)");
    auto sub = std::make_shared<tidings::capi::Subscription>();
    sub->fn = callback;
    sub->context = context;
    std::lock_guard<std::mutex> lock(store->subs_mu);
    sub->engine_token =
        s.Subscribe([sub](const engine::ChangeEvent& e) { tidings::capi::Deliver(sub, e); });
    *token = store->next_token++;
    store->subs[*token] = sub;
    return Status::Ok();
  });
}

tidings_code tidings_store_unsubscribe(tidings_store* store, uint64_t token, tidings_error* error) {
  return Guard(error, store, [&](engine::Store& s) -> Status {
    std::shared_ptr<tidings::capi::Subscription> sub;
    {
      std::lock_guard<std::mutex> lock(store->subs_mu);
      auto it = store->subs.find(token);
      if (it == store->subs.end()) return tidings::NotFound("no subscription with this token");
      sub = std::move(it->second);
      store->subs.erase(it);
    }
    tidings::capi::Deactivate(&s, sub);
    return Status::Ok();
  });
}

// ---- Freeing ----

void tidings_message_free(tidings_message* message) {
  tidings::capi::FreeBox<tidings_message, tidings::capi::MessageBacking>(message);
}
size_t tidings_message_list_count(const tidings_message_list* list) {
  return tidings::capi::CountOf(list);
}
const tidings_message* tidings_message_list_at(const tidings_message_list* list, size_t index) {
  return tidings::capi::ItemAt(list, index);
}
void tidings_message_list_free(tidings_message_list* list) { delete list; }
void tidings_conversation_free(tidings_conversation* conversation) {
  tidings::capi::FreeBox<tidings_conversation, tidings::capi::ConversationBacking>(conversation);
}
size_t tidings_conversation_list_count(const tidings_conversation_list* list) {
  return tidings::capi::CountOf(list);
}
const tidings_conversation* tidings_conversation_list_at(const tidings_conversation_list* list,
                                                         size_t index) {
  return tidings::capi::ItemAt(list, index);
}
void tidings_conversation_list_free(tidings_conversation_list* list) { delete list; }
size_t tidings_outbox_list_count(const tidings_outbox_list* list) {
  return tidings::capi::CountOf(list);
}
const tidings_outbox_entry* tidings_outbox_list_at(const tidings_outbox_list* list, size_t index) {
  return tidings::capi::ItemAt(list, index);
}
void tidings_outbox_list_free(tidings_outbox_list* list) { delete list; }
void tidings_stats_free(tidings_stats* stats) {
  tidings::capi::FreeBox<tidings_stats, tidings::capi::StatsBacking>(stats);
}
void tidings_verify_report_free(tidings_verify_report* report) {
  tidings::capi::FreeBox<tidings_verify_report, tidings::capi::VerifyBacking>(report);
}

}  // extern "C"
