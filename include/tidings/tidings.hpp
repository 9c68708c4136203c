// tidings.hpp: the C++ API of Tidings, a thin header-only layer over the C
// API in tidings.h. It links against libtidings.so or libtidings.a alike,
// because it calls nothing but the exported tidings_* functions.
//
// What it adds to the C API: RAII (a Store closes itself, a Subscription
// ends itself), value types with std::string and std::vector copied out of
// the C objects (which are freed at once), and errors as values:
// api::Status and api::Result<T>, both [[nodiscard]]. It throws nothing of
// its own; only std::bad_alloc from the standard library can escape.
//
// Thread safety: as the C API. A Store may be used from many threads at once;
// moving or destroying it must not race with other calls on it. Value types
// are plain values.
#pragma once

#include <compare>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tidings/tidings.h"

namespace tidings::api {

// ---- Errors -------------------------------------------------------------

// A tidings_code and what to do about it. OK carries no message.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(tidings_code code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status FromError(tidings_code code, const tidings_error& e) {
    return code == TIDINGS_OK ? Status() : Status(code, e.message);
  }

  bool ok() const { return code_ == TIDINGS_OK; }
  tidings_code code() const { return code_; }
  const std::string& message() const { return message_; }
  const char* code_name() const { return tidings_code_name(code_); }
  bool IsRetryable() const { return tidings_code_is_retryable(code_); }
  std::string ToString() const { return ok() ? "OK" : std::string(code_name()) + ": " + message_; }
  void IgnoreError() const {}

 private:
  tidings_code code_ = TIDINGS_OK;
  std::string message_;
};

// A value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    if (status_.ok()) status_ = Status(TIDINGS_INTERNAL, "Result made from OK without a value");
  }

  bool ok() const { return status_.ok(); }
  explicit operator bool() const { return ok(); }
  const Status& status() const { return status_; }
  // REQUIRES: ok()
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

// ---- Values -------------------------------------------------------------

struct OrderKey {
  uint64_t hlc = 0;
  uint64_t replica = 0;

  auto operator<=>(const OrderKey&) const = default;
  bool IsZero() const { return hlc == 0 && replica == 0; }
  uint64_t millis() const { return hlc >> 16; }  // Unix milliseconds
  tidings_order c() const { return tidings_order{hlc, replica}; }
  static OrderKey FromC(tidings_order o) { return OrderKey{o.hlc, o.replica}; }

  // "hlc-replica" in hex: how the CLI prints and parses positions.
  std::string ToString() const {
    char buf[40];
    std::snprintf(buf, sizeof(buf), "%llx-%llx", static_cast<unsigned long long>(hlc),
                  static_cast<unsigned long long>(replica));
    return buf;
  }
  static std::optional<OrderKey> Parse(std::string_view text) {
    OrderKey k;
    size_t dash = text.find('-');
    if (dash == std::string_view::npos || !ParseHex(text.substr(0, dash), &k.hlc) ||
        !ParseHex(text.substr(dash + 1), &k.replica)) {
      return std::nullopt;
    }
    return k;
  }

 private:
  static bool ParseHex(std::string_view s, uint64_t* out) {
    if (s.empty() || s.size() > 16) return false;
    uint64_t v = 0;
    for (char c : s) {
      int d = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
      if (d < 0) return false;
      v = v << 4 | static_cast<uint64_t>(d);
    }
    *out = v;
    return true;
  }
};

enum class MessageState { kPending = 0, kSent = 1, kFailed = 2 };
inline const char* MessageStateName(MessageState s) {
  switch (s) {
    case MessageState::kPending:
      return "pending";
    case MessageState::kSent:
      return "sent";
    case MessageState::kFailed:
      return "failed";
  }
  return "unknown";
}

struct Reaction {
  std::string user;
  std::string reaction;
  auto operator<=>(const Reaction&) const = default;
};

// A file sent with a message (tidings_attachment; tidings_attachments.hpp
// fetches and exports it).
struct Attachment {
  std::string object;  // 64 hex digits
  std::string name;
  std::string content_type;
  uint64_t size = 0;
  std::string preview;  // the sender's inline thumbnail
};

struct Message {
  std::string id;
  std::string conversation_id;
  std::string sender;
  OrderKey order;
  std::string body;  // empty once deleted
  std::string content_type;
  MessageState state = MessageState::kPending;
  std::string failure_reason;
  uint64_t server_time_ms = 0;
  OrderKey edited_at;  // zero if never edited
  bool deleted = false;
  std::vector<Reaction> reactions;
  std::map<std::string, std::string> metadata;
  std::map<std::string, std::string> remote_ids;
  std::vector<Attachment> attachments;

  static Message FromC(const tidings_message& m) {
    Message out;
    out.id = m.id;
    out.conversation_id = m.conversation_id;
    out.sender = m.sender;
    out.order = OrderKey::FromC(m.order);
    out.body.assign(m.body, m.body_size);
    out.content_type = m.content_type;
    out.state = static_cast<MessageState>(m.state);
    out.failure_reason = m.failure_reason;
    out.server_time_ms = m.server_time_ms;
    out.edited_at = OrderKey::FromC(m.edited_at);
    out.deleted = m.deleted;
    for (size_t i = 0; i < m.reaction_count; ++i) {
      out.reactions.push_back({m.reactions[i]->user, m.reactions[i]->reaction});
    }
    for (size_t i = 0; i < m.metadata_count; ++i) {
      out.metadata[m.metadata[i]->key] = m.metadata[i]->value;
    }
    for (size_t i = 0; i < m.remote_id_count; ++i) {
      out.remote_ids[m.remote_ids[i]->key] = m.remote_ids[i]->value;
    }
    for (size_t i = 0; i < m.attachment_count; ++i) {
      const tidings_attachment& a = *m.attachments[i];
      out.attachments.push_back(
          {a.object, a.name, a.content_type, a.size,
           std::string(reinterpret_cast<const char*>(a.preview), a.preview_size)});
    }
    return out;
  }
};

struct Conversation {
  std::string id;
  std::string title;
  std::vector<std::string> members;
  OrderKey last_order;
  std::string last_message_id;
  uint64_t message_count = 0;
  uint64_t unread_count = 0;
  std::map<std::string, OrderKey> read_markers;
  std::map<std::string, std::string> remote_ids;

  static Conversation FromC(const tidings_conversation& c) {
    Conversation out;
    out.id = c.id;
    out.title = c.title;
    for (size_t i = 0; i < c.member_count; ++i) out.members.emplace_back(c.members[i]);
    out.last_order = OrderKey::FromC(c.last_order);
    out.last_message_id = c.last_message_id;
    out.message_count = c.message_count;
    out.unread_count = c.unread_count;
    for (size_t i = 0; i < c.read_marker_count; ++i) {
      out.read_markers[c.read_markers[i]->user] = OrderKey::FromC(c.read_markers[i]->up_to);
    }
    for (size_t i = 0; i < c.remote_id_count; ++i) {
      out.remote_ids[c.remote_ids[i]->key] = c.remote_ids[i]->value;
    }
    return out;
  }
};

struct OutboxEntry {
  uint64_t seq = 0;
  tidings_op_kind kind = TIDINGS_OP_SEND;
  std::string op_id;
  std::string conversation_id;
  std::string message_id;
  OrderKey at;
  uint32_t attempts = 0;
  int64_t next_attempt_ms = 0;
  std::string last_error;
  bool failed = false;

  const char* kind_name() const { return tidings_op_kind_name(kind); }

  static OutboxEntry FromC(const tidings_outbox_entry& c) {
    return OutboxEntry{c.seq,        c.kind,
                       c.op_id,      c.conversation_id,
                       c.message_id, OrderKey::FromC(c.at),
                       c.attempts,   c.next_attempt_ms,
                       c.last_error, c.failed};
  }
};

struct Stats {
  uint64_t messages = 0;
  uint64_t conversations = 0;
  uint64_t outbox = 0;
  uint64_t outbox_failed = 0;
  uint64_t disk_bytes = 0;
  uint32_t schema_version = 0;
  uint64_t replica_id = 0;
  std::string user_id;
};

// See tidings_store_set_retention. Both 0: no policy.
struct RetentionPolicy {
  uint32_t keep_days = 0;
  uint64_t keep_last = 0;
  bool empty() const { return keep_days == 0 && keep_last == 0; }
};

struct ConversationRetention {
  std::string conversation_id;
  RetentionPolicy policy;
};

struct PurgeReport {
  uint64_t messages_purged = 0;
  uint64_t conversations = 0;
  uint64_t outbox_dropped = 0;
  uint64_t remote_skipped = 0;
};

struct VerifyReport {
  uint64_t records_checked = 0;
  uint64_t problems = 0;
  std::vector<std::string> details;  // keys in hex, never contents
};

struct ChangeEvent {
  tidings_change_kind kind;
  std::string conversation_id;
  std::string message_id;
};

// How to unlock a store. Holds the secret until destroyed, then wipes it.
// Move-only.
class Key {
 public:
  static Key Raw(std::span<const uint8_t, TIDINGS_KEY_SIZE> bytes) {
    return Key(TIDINGS_KEY_RAW,
               std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  }
  static Key Passphrase(std::string_view utf8) {
    return Key(TIDINGS_KEY_PASSPHRASE, std::string(utf8));
  }
  static Key File(std::string path) { return Key(TIDINGS_KEY_FILE, std::move(path)); }

  Key(Key&& other) noexcept : kind_(other.kind_), data_(std::move(other.data_)) { other.Wipe(); }
  Key& operator=(Key&& other) noexcept {
    if (this != &other) {
      Wipe();
      kind_ = other.kind_;
      data_ = std::move(other.data_);
      other.Wipe();
    }
    return *this;
  }
  Key(const Key&) = delete;
  Key& operator=(const Key&) = delete;
  ~Key() { Wipe(); }

  tidings_key_kind kind() const { return kind_; }
  // Borrows this Key's bytes; valid while it lives.
  tidings_key_source source() const {
    return tidings_key_source{kind_, data_.c_str(), data_.size()};
  }

 private:
  Key(tidings_key_kind kind, std::string data) : kind_(kind), data_(std::move(data)) {}
  void Wipe() {
    volatile char* p = data_.data();
    for (size_t i = 0; i < data_.size(); ++i) p[i] = 0;
    data_.clear();
  }
  tidings_key_kind kind_;
  std::string data_;
};

struct OpenOptions {
  bool create_if_missing = false;
  bool error_if_exists = false;
  bool read_only = false;  // works while another process holds the store
  tidings_durability durability = TIDINGS_DURABILITY_SYNC;
  std::string user_id;              // required to create
  uint64_t max_clock_drift_ms = 0;  // 0: default
  // A new passphrase store's Argon2id limits (see tidings_passphrase_profile).
  tidings_passphrase_profile passphrase_profile = TIDINGS_PASSPHRASE_DEFAULT;
  bool search_index = true;  // the full-text index (tidings_search.hpp)
  // English stemming: nullopt keeps what the store's index has (off for a
  // new store); a change rebuilds the index.
  std::optional<bool> search_stem_english;
};

// See tidings_store_rekey.
struct RekeyOptions {
  const Key* new_key = nullptr;  // borrowed; nullptr keeps the current key
  tidings_passphrase_profile passphrase_profile = TIDINGS_PASSPHRASE_DEFAULT;
  bool rotate_data_key = false;
  std::function<void(uint64_t done, uint64_t total)> progress;  // rotation only
};

// A file to send (tidings_attachment_input): from `path`, or when it is
// empty from `read` (fills the buffer, returns the bytes it wrote, 0 at the
// end, -1 on an error).
struct AttachmentInput {
  std::string path;
  std::function<int64_t(uint8_t* buffer, size_t capacity)> read;
  std::string name;
  std::string content_type;  // empty: application/octet-stream
  std::string preview;       // up to 2048 bytes
};

struct SendRequest {
  std::string conversation_id;
  std::string body;
  std::string content_type;  // empty: text/plain
  std::map<std::string, std::string> metadata;
  std::string message_id;  // empty: a new UUIDv7
  std::vector<AttachmentInput> attachments;
  // Encrypting the attachments: bytes done of all; false cancels the send.
  std::function<bool(uint64_t done, uint64_t total)> progress;
};

namespace internal {
// Runs a C call with a fresh error struct and turns the result into a Status.
template <typename F>
Status Call(F&& f) {
  tidings_error e{};
  tidings_code code = f(&e);
  return Status::FromError(code, e);
}
// A tidings_progress_fn whose context is a std::function<void(uint64_t, uint64_t)>.
inline void ProgressTrampoline(void* ctx, uint64_t done, uint64_t total) {
  (*static_cast<std::function<void(uint64_t, uint64_t)>*>(ctx))(done, total);
}
template <typename T, void (*Free)(T*)>
using Owned = std::unique_ptr<T, std::integral_constant<decltype(Free), Free>>;

// Copies every item of a C list (read through its _count and _at functions)
// into a vector of value types, then frees the list.
template <typename Value, typename List, typename Item>
std::vector<Value> TakeList(List* list, size_t (*count)(const List*),
                            const Item* (*at)(const List*, size_t), void (*free_list)(List*)) {
  std::unique_ptr<List, void (*)(List*)> owned(list, free_list);
  std::vector<Value> out;
  const size_t n = count(list);
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back(Value::FromC(*at(list, i)));
  return out;
}
}  // namespace internal

class Store;

// A change subscription; ends when destroyed (or Cancel()ed). After that, the
// callback is not running and will not run again. Destroying it after its
// Store is closed is fine. Move-only.
class Subscription {
 public:
  Subscription() = default;
  Subscription(Subscription&& o) noexcept { *this = std::move(o); }
  Subscription& operator=(Subscription&& o) noexcept {
    if (this != &o) {
      Cancel();
      store_ = std::move(o.store_);
      token_ = o.token_;
      callback_ = std::move(o.callback_);
    }
    return *this;
  }
  ~Subscription() { Cancel(); }

  void Cancel() {
    if (auto handle = store_.lock(); handle && *handle) {
      tidings_store_unsubscribe(*handle, token_, nullptr);
    }
    store_.reset();
    callback_.reset();
  }

 private:
  friend class Store;
  std::weak_ptr<tidings_store*> store_;
  uint64_t token_ = 0;
  std::unique_ptr<std::function<void(const ChangeEvent&)>> callback_;
};

// An open store. Move-only; closes on destruction.
class Store {
 public:
  Store() = default;
  Store(Store&&) noexcept = default;
  Store& operator=(Store&& o) noexcept {
    if (this != &o) {
      Close();
      handle_ = std::move(o.handle_);
    }
    return *this;
  }
  ~Store() { Close(); }

  // See tidings_store_open for the error codes.
  static Result<Store> Open(const std::string& path, const Key& key,
                            const OpenOptions& options = {}) {
    tidings_open_options o;
    tidings_open_options_init(&o);
    o.create_if_missing = options.create_if_missing;
    o.error_if_exists = options.error_if_exists;
    o.read_only = options.read_only;
    o.durability = options.durability;
    o.user_id = options.user_id.empty() ? nullptr : options.user_id.c_str();
    o.max_clock_drift_ms = options.max_clock_drift_ms;
    o.passphrase_profile = options.passphrase_profile;
    o.search_index_off = !options.search_index;
    o.search_stem_english =
        options.search_stem_english.has_value() ? (*options.search_stem_english ? 1 : -1) : 0;
    tidings_key_source k = key.source();
    tidings_store* raw = nullptr;
    Status s = internal::Call(
        [&](tidings_error* e) { return tidings_store_open(path.c_str(), &k, &o, &raw, e); });
    if (!s.ok()) return s;
    Store store;
    store.handle_ = std::make_shared<tidings_store*>(raw);
    return store;
  }
  // Changes the key of the closed store at `path` (tidings_store_rekey).
  static Status Rekey(const std::string& path, const Key& key, const RekeyOptions& options = {}) {
    tidings_rekey_options o;
    tidings_rekey_options_init(&o);
    tidings_key_source next{};
    if (options.new_key != nullptr) {
      next = options.new_key->source();
      o.new_key = &next;
    }
    o.passphrase_profile = options.passphrase_profile;
    o.rotate_data_key = options.rotate_data_key;
    auto trampoline = [](void* ctx, uint64_t done, uint64_t total) {
      (*static_cast<const std::function<void(uint64_t, uint64_t)>*>(ctx))(done, total);
    };
    if (options.progress) {
      o.progress = +trampoline;
      o.progress_context = const_cast<std::function<void(uint64_t, uint64_t)>*>(&options.progress);
    }
    tidings_key_source k = key.source();
    return internal::Call(
        [&](tidings_error* e) { return tidings_store_rekey(path.c_str(), &k, &o, e); });
  }
  static Result<Store> Create(const std::string& path, const Key& key, const std::string& user_id) {
    OpenOptions o;
    o.create_if_missing = true;
    o.error_if_exists = true;
    o.user_id = user_id;
    return Open(path, key, o);
  }

  // Closes now (the destructor does it too). Subscriptions end.
  void Close() {
    if (handle_ && *handle_) {
      tidings_store_close(*handle_);
      *handle_ = nullptr;
    }
    handle_.reset();
  }
  bool is_open() const { return handle_ && *handle_; }
  // The C handle, for calls this layer does not wrap. Owned by this Store.
  tidings_store* c_handle() const { return handle_ ? *handle_ : nullptr; }

  // ---- Writes ----
  Result<Message> Send(const SendRequest& r) {
    std::vector<tidings_pair> meta;
    for (const auto& [k, v] : r.metadata) meta.push_back({k.c_str(), v.c_str()});
    std::vector<const tidings_pair*> meta_ptrs;
    for (const auto& p : meta) meta_ptrs.push_back(&p);
    tidings_send_request req;
    tidings_send_request_init(&req);
    req.conversation_id = r.conversation_id.c_str();
    req.body = r.body.data();
    req.body_size = r.body.size();
    req.content_type = r.content_type.empty() ? nullptr : r.content_type.c_str();
    req.metadata = meta_ptrs.data();
    req.metadata_count = meta_ptrs.size();
    req.message_id = r.message_id.empty() ? nullptr : r.message_id.c_str();
    std::vector<tidings_attachment_input> inputs(r.attachments.size());
    std::vector<const tidings_attachment_input*> input_ptrs;
    for (size_t i = 0; i < r.attachments.size(); ++i) {
      const AttachmentInput& a = r.attachments[i];
      tidings_attachment_input& in = inputs[i];
      tidings_attachment_input_init(&in);
      if (!a.path.empty()) in.path = a.path.c_str();
      if (a.read) {
        in.read = [](void* context, uint8_t* buffer, size_t capacity) -> int64_t {
          return (*static_cast<const std::function<int64_t(uint8_t*, size_t)>*>(context))(buffer,
                                                                                          capacity);
        };
        in.read_context = const_cast<void*>(static_cast<const void*>(&a.read));
      }
      in.name = a.name.c_str();
      if (!a.content_type.empty()) in.content_type = a.content_type.c_str();
      in.preview = reinterpret_cast<const uint8_t*>(a.preview.data());
      in.preview_size = a.preview.size();
      input_ptrs.push_back(&in);
    }
    req.attachments = input_ptrs.data();
    req.attachment_count = input_ptrs.size();
    if (r.progress) {
      req.progress = [](void* context, uint64_t done, uint64_t total) -> bool {
        return (*static_cast<const std::function<bool(uint64_t, uint64_t)>*>(context))(done, total);
      };
      req.progress_context = const_cast<void*>(static_cast<const void*>(&r.progress));
    }
    return OneMessage([&](tidings_message** out, tidings_error* e) {
      return tidings_store_send(c_handle(), &req, out, e);
    });
  }
  Result<Message> Send(const std::string& conversation_id, std::string_view body) {
    SendRequest r;
    r.conversation_id = conversation_id;
    r.body = std::string(body);
    return Send(r);
  }
  Result<Message> Edit(const std::string& message_id, std::string_view body) {
    return OneMessage([&](tidings_message** out, tidings_error* e) {
      return tidings_store_edit(c_handle(), message_id.c_str(), body.data(), body.size(), out, e);
    });
  }
  Status Delete(const std::string& message_id) {
    return internal::Call(
        [&](tidings_error* e) { return tidings_store_delete(c_handle(), message_id.c_str(), e); });
  }
  Status React(const std::string& message_id, const std::string& reaction, bool add = true) {
    return internal::Call([&](tidings_error* e) {
      return tidings_store_react(c_handle(), message_id.c_str(), reaction.c_str(), add, e);
    });
  }
  Status MarkRead(const std::string& conversation_id, OrderKey up_to) {
    return internal::Call([&](tidings_error* e) {
      return tidings_store_mark_read(c_handle(), conversation_id.c_str(), up_to.c(), e);
    });
  }
  Status PutConversation(const std::string& id, const std::string& title,
                         const std::vector<std::string>& members) {
    std::vector<const char*> m;
    for (const auto& s : members) m.push_back(s.c_str());
    return internal::Call([&](tidings_error* e) {
      return tidings_store_put_conversation(c_handle(), id.c_str(), title.c_str(), m.data(),
                                            m.size(), e);
    });
  }

  // ---- Reads ----
  Result<Message> Get(const std::string& message_id) {
    return OneMessage([&](tidings_message** out, tidings_error* e) {
      return tidings_store_get(c_handle(), message_id.c_str(), out, e);
    });
  }
  // Ascending order; limit 0 means 50.
  Result<std::vector<Message>> Newest(const std::string& conversation_id, size_t limit = 0) {
    return Messages([&](tidings_message_list** out, tidings_error* e) {
      return tidings_store_page_newest(c_handle(), conversation_id.c_str(), limit, out, e);
    });
  }
  Result<std::vector<Message>> Before(const std::string& conversation_id, OrderKey before,
                                      size_t limit = 0) {
    return Messages([&](tidings_message_list** out, tidings_error* e) {
      return tidings_store_page_before(c_handle(), conversation_id.c_str(), before.c(), limit, out,
                                       e);
    });
  }
  Result<std::vector<Message>> After(const std::string& conversation_id, OrderKey after,
                                     size_t limit = 0) {
    return Messages([&](tidings_message_list** out, tidings_error* e) {
      return tidings_store_page_after(c_handle(), conversation_id.c_str(), after.c(), limit, out,
                                      e);
    });
  }
  Result<Conversation> GetConversation(const std::string& id) {
    tidings_conversation* raw = nullptr;
    Status s = internal::Call([&](tidings_error* e) {
      return tidings_store_get_conversation(c_handle(), id.c_str(), &raw, e);
    });
    if (!s.ok()) return s;
    internal::Owned<tidings_conversation, tidings_conversation_free> owned(raw);
    return Conversation::FromC(*raw);
  }
  // Most recently active first; limit 0 means all.
  Result<std::vector<Conversation>> Conversations(size_t limit = 0) {
    tidings_conversation_list* raw = nullptr;
    Status s = internal::Call(
        [&](tidings_error* e) { return tidings_store_conversations(c_handle(), limit, &raw, e); });
    if (!s.ok()) return s;
    return internal::TakeList<Conversation>(raw, tidings_conversation_list_count,
                                            tidings_conversation_list_at,
                                            tidings_conversation_list_free);
  }
  // In outbox order; empty conversation id means all; limit 0 means all.
  Result<std::vector<OutboxEntry>> Outbox(const std::string& conversation_id = "",
                                          size_t limit = 0) {
    tidings_outbox_list* raw = nullptr;
    Status s = internal::Call([&](tidings_error* e) {
      return tidings_store_outbox(c_handle(), conversation_id.c_str(), limit, &raw, e);
    });
    if (!s.ok()) return s;
    return internal::TakeList<OutboxEntry>(raw, tidings_outbox_list_count, tidings_outbox_list_at,
                                           tidings_outbox_list_free);
  }
  struct OutboxCounts {
    uint64_t pending = 0;
    uint64_t failed = 0;
    uint64_t total() const { return pending + failed; }
  };
  // What Outbox(conversation_id) lists, counted, without reading the messages.
  Result<OutboxCounts> CountOutbox(const std::string& conversation_id = "") {
    OutboxCounts c;
    Status s = internal::Call([&](tidings_error* e) {
      return tidings_store_outbox_count(c_handle(), conversation_id.c_str(), &c.pending, &c.failed,
                                        e);
    });
    if (!s.ok()) return s;
    return c;
  }
  Status RetryFailed(uint64_t seq) {
    return internal::Call(
        [&](tidings_error* e) { return tidings_store_outbox_retry(c_handle(), seq, e); });
  }
  Status DiscardFailed(uint64_t seq) {
    return internal::Call(
        [&](tidings_error* e) { return tidings_store_outbox_discard(c_handle(), seq, e); });
  }

  // ---- Maintenance ----
  Result<Stats> GetStats() {
    tidings_stats* raw = nullptr;
    Status s =
        internal::Call([&](tidings_error* e) { return tidings_store_stats(c_handle(), &raw, e); });
    if (!s.ok()) return s;
    internal::Owned<tidings_stats, tidings_stats_free> owned(raw);
    return Stats{raw->messages,   raw->conversations,  raw->outbox,     raw->outbox_failed,
                 raw->disk_bytes, raw->schema_version, raw->replica_id, raw->user_id};
  }
  // OK when the check ran; see the report's problems.
  Result<VerifyReport> Verify(std::function<void(uint64_t done, uint64_t total)> progress = {}) {
    tidings_verify_report* raw = nullptr;
    auto trampoline = [](void* ctx, uint64_t done, uint64_t total) {
      (*static_cast<std::function<void(uint64_t, uint64_t)>*>(ctx))(done, total);
    };
    Status s = internal::Call([&](tidings_error* e) {
      return tidings_store_verify(c_handle(), progress ? +trampoline : nullptr, &progress, &raw, e);
    });
    if (!s.ok()) return s;
    internal::Owned<tidings_verify_report, tidings_verify_report_free> owned(raw);
    VerifyReport r{raw->records_checked, raw->problems, {}};
    for (size_t i = 0; i < raw->detail_count; ++i) r.details.emplace_back(raw->details[i]);
    return r;
  }
  // See tidings_store_backup.
  Status Backup(const std::string& backup_path,
                std::function<void(uint64_t done, uint64_t total)> progress = {}) {
    return internal::Call([&](tidings_error* e) {
      return tidings_store_backup(c_handle(), backup_path.c_str(),
                                  progress ? internal::ProgressTrampoline : nullptr, &progress, e);
    });
  }
  // See tidings_store_restore.
  static Status Restore(const std::string& backup_path, const std::string& store_path,
                        const Key& key,
                        std::function<void(uint64_t done, uint64_t total)> progress = {}) {
    tidings_key_source k = key.source();
    return internal::Call([&](tidings_error* e) {
      return tidings_store_restore(backup_path.c_str(), store_path.c_str(), &k,
                                   progress ? internal::ProgressTrampoline : nullptr, &progress, e);
    });
  }
  // Every message, conversation by conversation, each in order. `visit`
  // returns false to stop (the result is then CANCELLED).
  Status ForEachMessage(const std::function<bool(const Message&)>& visit) {
    auto trampoline = [](void* ctx, const tidings_message* m) -> bool {
      return (*static_cast<const std::function<bool(const Message&)>*>(ctx))(Message::FromC(*m));
    };
    return internal::Call([&](tidings_error* e) {
      return tidings_store_for_each_message(
          c_handle(), +trampoline, const_cast<std::function<bool(const Message&)>*>(&visit), e);
    });
  }
  Status Refresh() {
    return internal::Call([&](tidings_error* e) { return tidings_store_refresh(c_handle(), e); });
  }

  // ---- Retention (see tidings.h, "Retention") ----
  // `conversation_id` empty: the store-wide policy. An empty policy removes it.
  Status SetRetention(const std::string& conversation_id, RetentionPolicy policy) {
    return internal::Call([&](tidings_error* e) {
      return tidings_store_set_retention(c_handle(), conversation_id.c_str(), policy.keep_days,
                                         policy.keep_last, e);
    });
  }
  // As set; `effective`: the one that applies (the conversation's own, else
  // the store-wide one).
  Result<RetentionPolicy> GetRetention(const std::string& conversation_id, bool effective = false) {
    RetentionPolicy p;
    Status s = internal::Call([&](tidings_error* e) {
      return tidings_store_get_retention(c_handle(), conversation_id.c_str(), effective,
                                         &p.keep_days, &p.keep_last, e);
    });
    if (!s.ok()) return s;
    return p;
  }
  // Every per-conversation policy, by conversation id.
  Result<std::vector<ConversationRetention>> RetentionPolicies() {
    std::vector<ConversationRetention> out;
    auto trampoline = [](void* ctx, const char* id, uint32_t days, uint64_t last) -> bool {
      static_cast<std::vector<ConversationRetention>*>(ctx)->push_back(
          ConversationRetention{id, RetentionPolicy{days, last}});
      return true;
    };
    Status s = internal::Call([&](tidings_error* e) {
      return tidings_store_for_each_retention(c_handle(), +trampoline, &out, e);
    });
    if (!s.ok()) return s;
    return out;
  }
  Result<PurgeReport> PurgeExpired() {
    tidings_purge_report raw;
    tidings_purge_report_init(&raw);
    Status s = internal::Call(
        [&](tidings_error* e) { return tidings_store_purge_expired(c_handle(), &raw, e); });
    if (!s.ok()) return s;
    return PurgeReport{raw.messages_purged, raw.conversations, raw.outbox_dropped,
                       raw.remote_skipped};
  }

  // `callback` runs on the writing thread after each commit (see
  // tidings_change_fn); exceptions it throws are swallowed at the boundary.
  Result<Subscription> Subscribe(std::function<void(const ChangeEvent&)> callback) {
    Subscription sub;
    sub.callback_ = std::make_unique<std::function<void(const ChangeEvent&)>>(std::move(callback));
    auto trampoline = [](void* ctx, const tidings_change* c) {
      try {
        (*static_cast<std::function<void(const ChangeEvent&)>*>(ctx))(
            ChangeEvent{c->kind, c->conversation_id, c->message_id});
      } catch (...) {
      }
    };
    uint64_t token = 0;
    Status s = internal::Call([&](tidings_error* e) {
      return tidings_store_subscribe(c_handle(), +trampoline, sub.callback_.get(), &token, e);
    });
    if (!s.ok()) return s;
    sub.store_ = handle_;
    sub.token_ = token;
    return sub;
  }

 private:
  template <typename F>
  Result<Message> OneMessage(F&& f) {
    tidings_message* raw = nullptr;
    Status s = internal::Call([&](tidings_error* e) { return f(&raw, e); });
    if (!s.ok()) return s;
    internal::Owned<tidings_message, tidings_message_free> owned(raw);
    return Message::FromC(*raw);
  }
  template <typename F>
  Result<std::vector<Message>> Messages(F&& f) {
    tidings_message_list* raw = nullptr;
    Status s = internal::Call([&](tidings_error* e) { return f(&raw, e); });
    if (!s.ok()) return s;
    return internal::TakeList<Message>(raw, tidings_message_list_count, tidings_message_list_at,
                                       tidings_message_list_free);
  }

  // Shared with Subscriptions (weakly) so one outliving the Store sees it
  // closed instead of touching a freed handle.
  std::shared_ptr<tidings_store*> handle_;
};

// A fresh random key file (mode 0600); never overwrites.
inline Status CreateKeyFile(const std::string& path) {
  return internal::Call([&](tidings_error* e) { return tidings_key_file_create(path.c_str(), e); });
}

}  // namespace tidings::api
