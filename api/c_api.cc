// The C API over engine::Store. Every entry point catches everything: no
// exception crosses the C boundary.
#include <cstdlib>
#include <cstring>
#include <new>

#include "engine/store.h"
#include "tidings/tidings.h"

struct tidings_store {
  std::unique_ptr<tidings::engine::Store> impl;
};

namespace {

using tidings::Code;
using tidings::Status;

static_assert(static_cast<int>(Code::kUnimplemented) == TIDINGS_UNIMPLEMENTED);
static_assert(static_cast<int>(Code::kWrongKey) == TIDINGS_WRONG_KEY);
static_assert(static_cast<int>(Code::kBusy) == TIDINGS_BUSY);

tidings_code Report(const Status& s, tidings_error* err) {
  if (err != nullptr) {
    err->code = static_cast<tidings_code>(s.code());
    std::strncpy(err->message, s.message().c_str(), sizeof(err->message) - 1);
    err->message[sizeof(err->message) - 1] = '\0';
  }
  return static_cast<tidings_code>(s.code());
}

tidings_code Ok(tidings_error* err) { return Report(Status::Ok(), err); }

template <typename F>
tidings_code Guard(tidings_error* err, F&& f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return Report(tidings::ResourceExhausted("out of memory"), err);
  } catch (...) {
    return Report(tidings::Internal("unexpected internal error; please report it"), err);
  }
}

char* Dup(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out == nullptr) throw std::bad_alloc();
  std::memcpy(out, s.data(), s.size());
  out[s.size()] = '\0';
  return out;
}

// Fills a tidings_message whose strings are malloc'ed copies.
void Fill(const tidings::engine::Message& m, tidings_message* out) {
  out->id = Dup(m.id);
  out->conversation_id = Dup(m.conversation_id);
  out->sender = Dup(m.sender);
  out->order_hlc = m.order.hlc;
  out->order_replica = m.order.replica;
  auto* body = static_cast<uint8_t*>(std::malloc(m.body.size() + 1));
  if (body == nullptr) throw std::bad_alloc();
  std::memcpy(body, m.body.data(), m.body.size());
  out->body = body;
  out->body_len = m.body.size();
  out->content_type = Dup(m.content_type);
  out->state = static_cast<tidings_message_state>(m.state);
  out->failure_reason = Dup(m.failure_reason);
  out->edited = m.edited_at.IsZero() ? 0 : 1;
  out->deleted = m.deleted ? 1 : 0;
}

void Release(tidings_message* m) {
  std::free(const_cast<char*>(m->id));
  std::free(const_cast<char*>(m->conversation_id));
  std::free(const_cast<char*>(m->sender));
  std::free(const_cast<uint8_t*>(m->body));
  std::free(const_cast<char*>(m->content_type));
  std::free(const_cast<char*>(m->failure_reason));
}

tidings_code Open(const char* path, tidings::crypto::KeySource key, const tidings_open_options* o,
                  tidings_store** out, tidings_error* err) {
  if (path == nullptr || out == nullptr) {
    return Report(tidings::InvalidArgument("path and out must not be NULL"), err);
  }
  tidings::engine::StoreOptions options;
  if (o != nullptr) {
    options.create_if_missing = o->create_if_missing != 0;
    options.read_only = o->read_only != 0;
    options.durability = o->durability == TIDINGS_DURABILITY_RELAXED
                             ? tidings::engine::Durability::kRelaxed
                             : tidings::engine::Durability::kSync;
    if (o->user_id != nullptr) options.user_id = o->user_id;
  }
  auto store = tidings::engine::Store::Open(path, std::move(key), options);
  if (!store.ok()) return Report(store.status(), err);
  *out = new tidings_store{std::move(*store)};
  return Ok(err);
}

bool Valid(tidings_store* store, tidings_error* err) {
  if (store == nullptr) {
    Report(tidings::InvalidArgument("store is NULL"), err);
    return false;
  }
  return true;
}

}  // namespace

extern "C" {

tidings_code tidings_store_open_with_key(const char* path, const uint8_t* key, size_t key_len,
                                         const tidings_open_options* options, tidings_store** out,
                                         tidings_error* err) {
  return Guard(err, [&] {
    if (key == nullptr) return Report(tidings::InvalidArgument("key is NULL"), err);
    auto secret = tidings::crypto::SecretKey::FromBytes(std::span<const uint8_t>(key, key_len));
    if (!secret.ok()) return Report(secret.status(), err);
    return Open(path, tidings::crypto::KeySource::Raw(std::move(*secret)), options, out, err);
  });
}

tidings_code tidings_store_open_with_passphrase(const char* path, const char* passphrase,
                                                const tidings_open_options* options,
                                                tidings_store** out, tidings_error* err) {
  return Guard(err, [&] {
    if (passphrase == nullptr) return Report(tidings::InvalidArgument("passphrase is NULL"), err);
    return Open(path, tidings::crypto::KeySource::Passphrase(passphrase), options, out, err);
  });
}

tidings_code tidings_store_open_with_key_file(const char* path, const char* key_file,
                                              const tidings_open_options* options,
                                              tidings_store** out, tidings_error* err) {
  return Guard(err, [&] {
    if (key_file == nullptr) return Report(tidings::InvalidArgument("key_file is NULL"), err);
    return Open(path, tidings::crypto::KeySource::KeyFile(key_file), options, out, err);
  });
}

void tidings_store_close(tidings_store* store) {
  try {
    delete store;
  } catch (...) {
  }
}

tidings_code tidings_store_send(tidings_store* store, const char* conversation_id,
                                const uint8_t* body, size_t body_len, const char* content_type,
                                char** out_id, tidings_error* err) {
  return Guard(err, [&] {
    if (!Valid(store, err))
      return static_cast<tidings_code>(err ? err->code : TIDINGS_INVALID_ARGUMENT);
    if (conversation_id == nullptr || (body == nullptr && body_len != 0)) {
      return Report(tidings::InvalidArgument("conversation_id and body must not be NULL"), err);
    }
    tidings::engine::SendRequest r;
    r.conversation_id = conversation_id;
    r.body.assign(reinterpret_cast<const char*>(body), body_len);
    if (content_type != nullptr) r.content_type = content_type;
    auto m = store->impl->Send(r);
    if (!m.ok()) return Report(m.status(), err);
    if (out_id != nullptr) *out_id = Dup(m->id);
    return Ok(err);
  });
}

tidings_code tidings_store_edit(tidings_store* store, const char* message_id, const uint8_t* body,
                                size_t body_len, tidings_error* err) {
  return Guard(err, [&] {
    if (!Valid(store, err) || message_id == nullptr || (body == nullptr && body_len != 0)) {
      return Report(tidings::InvalidArgument("store, message_id and body must not be NULL"), err);
    }
    auto m = store->impl->Edit(message_id,
                               std::string_view(reinterpret_cast<const char*>(body), body_len));
    return Report(m.status(), err);
  });
}

tidings_code tidings_store_delete(tidings_store* store, const char* message_id,
                                  tidings_error* err) {
  return Guard(err, [&] {
    if (!Valid(store, err) || message_id == nullptr) {
      return Report(tidings::InvalidArgument("store and message_id must not be NULL"), err);
    }
    return Report(store->impl->Delete(message_id), err);
  });
}

tidings_code tidings_store_react(tidings_store* store, const char* message_id, const char* reaction,
                                 int add, tidings_error* err) {
  return Guard(err, [&] {
    if (!Valid(store, err) || message_id == nullptr || reaction == nullptr) {
      return Report(tidings::InvalidArgument("store, message_id and reaction must not be NULL"),
                    err);
    }
    return Report(store->impl->React(message_id, reaction, add != 0), err);
  });
}

tidings_code tidings_store_mark_read(tidings_store* store, const char* conversation_id,
                                     uint64_t hlc, uint64_t replica, tidings_error* err) {
  return Guard(err, [&] {
    if (!Valid(store, err) || conversation_id == nullptr) {
      return Report(tidings::InvalidArgument("store and conversation_id must not be NULL"), err);
    }
    return Report(store->impl->MarkRead(conversation_id, {hlc, replica}), err);
  });
}

tidings_code tidings_store_get(tidings_store* store, const char* message_id, tidings_message** out,
                               tidings_error* err) {
  return Guard(err, [&] {
    if (!Valid(store, err) || message_id == nullptr || out == nullptr) {
      return Report(tidings::InvalidArgument("store, message_id and out must not be NULL"), err);
    }
    auto m = store->impl->Get(message_id);
    if (!m.ok()) return Report(m.status(), err);
    auto* msg = static_cast<tidings_message*>(std::calloc(1, sizeof(tidings_message)));
    if (msg == nullptr) throw std::bad_alloc();
    Fill(*m, msg);
    *out = msg;
    return Ok(err);
  });
}

tidings_code tidings_store_page(tidings_store* store, const char* conversation_id, size_t limit,
                                int has_before, uint64_t before_hlc, uint64_t before_replica,
                                tidings_message_list** out, tidings_error* err) {
  return Guard(err, [&] {
    if (!Valid(store, err) || conversation_id == nullptr || out == nullptr) {
      return Report(tidings::InvalidArgument("store, conversation_id and out must not be NULL"),
                    err);
    }
    tidings::engine::PageRequest req;
    req.conversation_id = conversation_id;
    req.limit = limit;
    if (has_before) req.before = tidings::engine::OrderKey{before_hlc, before_replica};
    auto page = store->impl->Page(req);
    if (!page.ok()) return Report(page.status(), err);
    auto* list = static_cast<tidings_message_list*>(std::calloc(1, sizeof(tidings_message_list)));
    if (list == nullptr) throw std::bad_alloc();
    list->items =
        static_cast<tidings_message*>(std::calloc(page->size() + 1, sizeof(tidings_message)));
    if (list->items == nullptr) {
      std::free(list);
      throw std::bad_alloc();
    }
    for (const auto& m : *page) Fill(m, &list->items[list->count++]);
    *out = list;
    return Ok(err);
  });
}

void tidings_message_free(tidings_message* message) {
  if (message == nullptr) return;
  Release(message);
  std::free(message);
}

void tidings_message_list_free(tidings_message_list* list) {
  if (list == nullptr) return;
  for (size_t i = 0; i < list->count; ++i) Release(&list->items[i]);
  std::free(list->items);
  std::free(list);
}

void tidings_string_free(char* s) { std::free(s); }

tidings_code tidings_store_conversations(tidings_store* store, size_t limit,
                                         tidings_conversation_list** out, tidings_error* err) {
  return Guard(err, [&] {
    if (!Valid(store, err) || out == nullptr) {
      return Report(tidings::InvalidArgument("store and out must not be NULL"), err);
    }
    auto convs = store->impl->Conversations(limit);
    if (!convs.ok()) return Report(convs.status(), err);
    auto* list =
        static_cast<tidings_conversation_list*>(std::calloc(1, sizeof(tidings_conversation_list)));
    if (list == nullptr) throw std::bad_alloc();
    list->items = static_cast<tidings_conversation*>(
        std::calloc(convs->size() + 1, sizeof(tidings_conversation)));
    for (const auto& c : *convs) {
      tidings_conversation& item = list->items[list->count++];
      item.id = Dup(c.id);
      item.title = Dup(c.title);
      item.message_count = c.message_count;
      item.unread_count = c.unread_count;
      item.last_hlc = c.last_order.hlc;
    }
    *out = list;
    return Ok(err);
  });
}

void tidings_conversation_list_free(tidings_conversation_list* list) {
  if (list == nullptr) return;
  for (size_t i = 0; i < list->count; ++i) {
    std::free(const_cast<char*>(list->items[i].id));
    std::free(const_cast<char*>(list->items[i].title));
  }
  std::free(list->items);
  std::free(list);
}

tidings_code tidings_store_outbox_depth(tidings_store* store, uint64_t* pending, uint64_t* failed,
                                        tidings_error* err) {
  return Guard(err, [&] {
    if (!Valid(store, err)) return Report(tidings::InvalidArgument("store is NULL"), err);
    auto outbox = store->impl->Outbox(0);
    if (!outbox.ok()) return Report(outbox.status(), err);
    uint64_t f = 0;
    for (const auto& e : *outbox) f += e.failed ? 1 : 0;
    if (pending != nullptr) *pending = outbox->size() - f;
    if (failed != nullptr) *failed = f;
    return Ok(err);
  });
}

tidings_code tidings_store_retry_failed(tidings_store* store, uint64_t seq, tidings_error* err) {
  return Guard(err, [&] {
    if (!Valid(store, err)) return Report(tidings::InvalidArgument("store is NULL"), err);
    return Report(store->impl->RetryFailed(seq), err);
  });
}

tidings_code tidings_store_discard_failed(tidings_store* store, uint64_t seq, tidings_error* err) {
  return Guard(err, [&] {
    if (!Valid(store, err)) return Report(tidings::InvalidArgument("store is NULL"), err);
    return Report(store->impl->DiscardFailed(seq), err);
  });
}

tidings_code tidings_store_verify(tidings_store* store, uint64_t* problems, tidings_error* err) {
  return Guard(err, [&] {
    if (!Valid(store, err)) return Report(tidings::InvalidArgument("store is NULL"), err);
    auto report = store->impl->Verify(nullptr);
    if (!report.ok()) return Report(report.status(), err);
    if (problems != nullptr) *problems = report->problems;
    return Ok(err);
  });
}

uint64_t tidings_store_subscribe(tidings_store* store, tidings_listener listener, void* context) {
  if (store == nullptr || listener == nullptr) return 0;
  try {
    return store->impl->Subscribe([listener, context](const tidings::engine::ChangeEvent& e) {
      listener(context, static_cast<tidings_change_kind>(e.kind), e.conversation_id.c_str(),
               e.message_id.c_str());
    });
  } catch (...) {
    return 0;
  }
}

void tidings_store_unsubscribe(tidings_store* store, uint64_t token) {
  if (store == nullptr) return;
  try {
    store->impl->Unsubscribe(token);
  } catch (...) {
  }
}

const char* tidings_code_name(tidings_code code) {
  return tidings::CodeName(static_cast<Code>(code));
}

}  // extern "C"
