// Tidings C++ API: a thin, header-only, exception-free layer over the C API
// (tidings.h). Handles are RAII; errors come back as tidings::Error values.
//
// Thread safety: as the C API - a Store may be used from many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tidings/tidings.h"

namespace tidings {

struct Error {
  tidings_code code = TIDINGS_OK;
  std::string message;
  bool ok() const { return code == TIDINGS_OK; }
  const char* name() const { return tidings_code_name(code); }
};

// A value or an error (std::expected is C++23).
template <typename T>
class Expected {
 public:
  Expected(T value) : value_(std::move(value)) {}      // NOLINT
  Expected(Error error) : error_(std::move(error)) {}  // NOLINT
  bool ok() const { return error_.ok(); }
  const Error& error() const { return error_; }
  T& value() { return *value_; }
  const T& value() const { return *value_; }
  T* operator->() { return &*value_; }

 private:
  std::optional<T> value_;
  Error error_;
};

struct Message {
  std::string id, conversation_id, sender, body, content_type, failure_reason;
  uint64_t order_hlc = 0, order_replica = 0;
  tidings_message_state state = TIDINGS_PENDING;
  bool edited = false, deleted = false;
};

class Store {
 public:
  struct Options {
    bool create_if_missing = false;
    bool read_only = false;
    bool relaxed_durability = false;
    std::string user_id;
  };

  static Expected<Store> OpenWithKeyFile(const std::string& path, const std::string& key_file,
                                         const Options& o) {
    return Open(
        [&](const tidings_open_options* c, tidings_store** s, tidings_error* e) {
          return tidings_store_open_with_key_file(path.c_str(), key_file.c_str(), c, s, e);
        },
        o);
  }
  static Expected<Store> OpenWithKey(const std::string& path, const uint8_t* key, size_t len,
                                     const Options& o) {
    return Open(
        [&](const tidings_open_options* c, tidings_store** s, tidings_error* e) {
          return tidings_store_open_with_key(path.c_str(), key, len, c, s, e);
        },
        o);
  }
  static Expected<Store> OpenWithPassphrase(const std::string& path, const std::string& phrase,
                                            const Options& o) {
    return Open(
        [&](const tidings_open_options* c, tidings_store** s, tidings_error* e) {
          return tidings_store_open_with_passphrase(path.c_str(), phrase.c_str(), c, s, e);
        },
        o);
  }

  Expected<std::string> Send(const std::string& conversation, std::string_view body,
                             const std::string& content_type = "text/plain") {
    tidings_error e;
    char* id = nullptr;
    if (tidings_store_send(h_.get(), conversation.c_str(),
                           reinterpret_cast<const uint8_t*>(body.data()), body.size(),
                           content_type.c_str(), &id, &e) != TIDINGS_OK) {
      return ToError(e);
    }
    std::string out(id);
    tidings_string_free(id);
    return out;
  }

  Error Edit(const std::string& id, std::string_view body) {
    tidings_error e;
    tidings_store_edit(h_.get(), id.c_str(), reinterpret_cast<const uint8_t*>(body.data()),
                       body.size(), &e);
    return ToError(e);
  }

  Error Delete(const std::string& id) {
    tidings_error e;
    tidings_store_delete(h_.get(), id.c_str(), &e);
    return ToError(e);
  }

  Expected<Message> Get(const std::string& id) {
    tidings_error e;
    tidings_message* m = nullptr;
    if (tidings_store_get(h_.get(), id.c_str(), &m, &e) != TIDINGS_OK) return ToError(e);
    Message out = Convert(*m);
    tidings_message_free(m);
    return out;
  }

  // Newest `limit` messages, ascending.
  Expected<std::vector<Message>> Page(const std::string& conversation, size_t limit = 50) {
    tidings_error e;
    tidings_message_list* list = nullptr;
    if (tidings_store_page(h_.get(), conversation.c_str(), limit, 0, 0, 0, &list, &e) !=
        TIDINGS_OK) {
      return ToError(e);
    }
    std::vector<Message> out;
    for (size_t i = 0; i < list->count; ++i) out.push_back(Convert(list->items[i]));
    tidings_message_list_free(list);
    return out;
  }

  tidings_store* handle() { return h_.get(); }

 private:
  struct Closer {
    void operator()(tidings_store* s) const { tidings_store_close(s); }
  };
  explicit Store(tidings_store* s) : h_(s) {}

  template <typename F>
  static Expected<Store> Open(F&& open, const Options& o) {
    tidings_open_options c{};
    c.create_if_missing = o.create_if_missing;
    c.read_only = o.read_only;
    c.durability = o.relaxed_durability ? TIDINGS_DURABILITY_RELAXED : TIDINGS_DURABILITY_SYNC;
    c.user_id = o.user_id.empty() ? nullptr : o.user_id.c_str();
    tidings_error e;
    tidings_store* s = nullptr;
    if (open(&c, &s, &e) != TIDINGS_OK) return ToError(e);
    return Store(s);
  }
  static Error ToError(const tidings_error& e) { return Error{e.code, e.message}; }
  static Message Convert(const tidings_message& m) {
    Message out;
    out.id = m.id;
    out.conversation_id = m.conversation_id;
    out.sender = m.sender;
    out.body.assign(reinterpret_cast<const char*>(m.body), m.body_len);
    out.content_type = m.content_type;
    out.failure_reason = m.failure_reason;
    out.order_hlc = m.order_hlc;
    out.order_replica = m.order_replica;
    out.state = m.state;
    out.edited = m.edited != 0;
    out.deleted = m.deleted != 0;
    return out;
  }

  std::unique_ptr<tidings_store, Closer> h_;
};

}  // namespace tidings
