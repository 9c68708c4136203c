#include "daemon/protocol.h"

#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "daemon/search_op.h"

namespace tidings::daemon {
namespace {

void PutU16(std::string* out, size_t v) {
  out->push_back(static_cast<char>((v >> 8) & 0xff));
  out->push_back(static_cast<char>(v & 0xff));
}
void PutU32(std::string* out, size_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out->push_back(static_cast<char>((v >> shift) & 0xff));
}
uint32_t GetU32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

Status WriteAll(int fd, const char* data, size_t size) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::send(fd, data + done, size - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return Unavailable(std::string("the daemon connection failed: ") + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status ReadAll(int fd, char* data, size_t size) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::recv(fd, data + done, size - done, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) return Unavailable("the connection was closed");
    if (n < 0) return Unavailable(std::string("the connection failed: ") + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Result<uint64_t> ParseSeq(const std::string& s) {
  if (s.empty() || s.size() > 19) return InvalidArgument("seq must be a number");
  uint64_t v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return InvalidArgument("seq must be a number");
    v = v * 10 + static_cast<uint64_t>(ch - '0');
  }
  return v;
}

Fields Ok() { return Fields{{"op", "ok"}}; }

Fields FromStatus(const Status& s) { return s.ok() ? Ok() : ErrorFields(s); }
Fields FromApiStatus(const api::Status& s) { return FromStatus(FromApi(s)); }

}  // namespace

std::string Fields::Get(std::string_view name) const {
  for (const auto& [k, v] : items_) {
    if (k == name) return v;
  }
  return "";
}

bool Fields::Has(std::string_view name) const {
  for (const auto& item : items_) {
    if (item.first == name) return true;
  }
  return false;
}

std::vector<std::string> Fields::All(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : items_) {
    if (k == name) out.push_back(v);
  }
  return out;
}

std::string EncodeFields(const Fields& f) {
  std::string out;
  for (const auto& [k, v] : f.items()) {
    PutU16(&out, k.size());
    out += k;
    PutU32(&out, v.size());
    out += v;
  }
  return out;
}

bool DecodeFields(std::string_view in, Fields* out) {
  Fields f;
  size_t i = 0;
  auto p = reinterpret_cast<const unsigned char*>(in.data());
  while (i < in.size()) {
    if (in.size() - i < 2) return false;
    size_t klen = (size_t{p[i]} << 8) | p[i + 1];
    i += 2;
    if (in.size() - i < klen + 4) return false;
    std::string key(in.substr(i, klen));
    i += klen;
    size_t vlen = GetU32(p + i);
    i += 4;
    if (in.size() - i < vlen) return false;
    f.Add(std::move(key), std::string(in.substr(i, vlen)));
    i += vlen;
  }
  *out = std::move(f);
  return true;
}

Status WriteFrame(int fd, const Fields& f) {
  std::string payload = EncodeFields(f);
  if (payload.size() > kMaxFrame) return TooLarge("the request is larger than 1 MiB");
  std::string frame;
  PutU32(&frame, payload.size());
  frame += payload;
  return WriteAll(fd, frame.data(), frame.size());
}

Result<Fields> ReadFrame(int fd) {
  unsigned char len[4];
  TIDINGS_RETURN_IF_ERROR(ReadAll(fd, reinterpret_cast<char*>(len), 4));
  uint32_t n = GetU32(len);
  if (n > kMaxFrame) return InvalidArgument("a frame larger than 1 MiB");
  std::string payload(n, '\0');
  TIDINGS_RETURN_IF_ERROR(ReadAll(fd, payload.data(), n));
  Fields f;
  if (!DecodeFields(payload, &f)) return InvalidArgument("a malformed frame");
  return f;
}

Result<std::string> AuthMac(api::Store& store, std::string_view role, std::string_view first_nonce,
                            std::string_view second_nonce) {
  std::string data = "tidings-daemon-v1 ";
  data += role;
  data += first_nonce;
  data += second_nonce;
  auto mac = api::AuthMac(store, data);
  if (!mac.ok()) return FromApi(mac.status());
  return std::move(mac).value();
}

bool SameMac(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

std::string NewNonce() {
  std::string nonce(kNonceBytes, '\0');
  for (size_t done = 0; done < nonce.size();) {
    ssize_t n = ::getrandom(nonce.data() + done, nonce.size() - done, 0);
    if (n > 0) done += static_cast<size_t>(n);
  }
  return nonce;
}

Fields ErrorFields(const Status& s) {
  return Fields{{"op", "error"}, {"code", CodeName(s.code())}, {"message", s.message()}};
}

Status StatusFromFields(const Fields& f) {
  if (f.Get("op") == "ok") return Status::Ok();
  const std::string name = f.Get("code");
  for (int c = 1; c <= static_cast<int>(Code::kUnimplemented); ++c) {
    if (name == CodeName(static_cast<Code>(c)))
      return Status(static_cast<Code>(c), f.Get("message"));
  }
  return Internal("the daemon answered with an unknown error: " + f.Get("message"));
}

bool IsRequestOp(std::string_view op) {
  static constexpr std::string_view kOps[] = {"send",
                                              "edit",
                                              "delete",
                                              "react",
                                              "mark-read",
                                              "conversation",
                                              "conversation-create",
                                              "conversation-upgrade",
                                              "keys-trust",
                                              "outbox-retry",
                                              "outbox-discard",
                                              "poke",
                                              "typing",
                                              "search"};
  for (std::string_view known : kOps) {
    if (op == known) return true;
  }
  return false;
}

Fields Execute(api::Store& store, const Fields& req, const ExecuteHooks& hooks) {
  const std::string op = req.Get("op");
  if (op == "send") {
    api::SendRequest r;
    r.conversation_id = req.Get("conversation");
    r.body = req.Get("body");
    if (req.Has("content_type")) r.content_type = req.Get("content_type");
    r.message_id = req.Get("id");
    // Files by absolute path, one per line (the CLI's `send --attach`).
    const std::string attach = req.Get("attach");
    for (size_t at = 0; at < attach.size();) {
      size_t end = attach.find('\n', at);
      if (end == std::string::npos) end = attach.size();
      std::string path = attach.substr(at, end - at);
      const size_t slash = path.rfind('/');
      r.attachments.push_back({.path = path, .name = path.substr(slash + 1)});
      at = end + 1;
    }
    auto m = store.Send(r);
    if (!m.ok() && m.status().code() == TIDINGS_ALREADY_EXISTS && !r.message_id.empty()) {
      // The retry of a send that was committed but whose answer was lost.
      auto existing = store.Get(r.message_id);
      auto stats = store.GetStats();
      if (existing.ok() && stats.ok() && existing->conversation_id == r.conversation_id &&
          existing->sender == stats->user_id) {
        return Fields{{"op", "ok"}, {"id", existing->id}};
      }
    }
    if (!m.ok()) return FromApiStatus(m.status());
    return Fields{{"op", "ok"}, {"id", m->id}};
  }
  if (op == "edit") {
    auto m = store.Edit(req.Get("id"), req.Get("body"));
    if (!m.ok()) return FromApiStatus(m.status());
    return Fields{{"op", "ok"}, {"id", m->id}};
  }
  if (op == "delete") return FromApiStatus(store.Delete(req.Get("id")));
  if (op == "react") {
    return FromApiStatus(store.React(req.Get("id"), req.Get("reaction"), req.Get("remove") != "1"));
  }
  if (op == "mark-read") {
    auto c = store.GetConversation(req.Get("conversation"));
    if (!c.ok()) return FromApiStatus(c.status());
    return FromApiStatus(store.MarkRead(c->id, c->last_order));
  }
  if (op == "conversation") {
    return FromApiStatus(store.PutConversation(req.Get("id"), req.Get("title"), req.All("member")));
  }
  if (op == "conversation-create") {
    return FromApiStatus(api::CreateConversation(store, req.Get("id"), req.Get("title"),
                                                 req.All("member"), req.Get("plaintext") == "1"));
  }
  if (op == "conversation-upgrade") {
    api::Status s = api::UpgradeConversation(store, req.Get("id"));
    if (s.ok() && hooks.poke) hooks.poke();  // its first sealed push, now
    return FromApiStatus(s);
  }
  if (op == "keys-trust") {
    const std::string trust = req.Get("trust");
    if (trust != "verified" && trust != "removed" && trust != "unverified") {
      return ErrorFields(InvalidArgument("trust must be verified, removed or unverified"));
    }
    const tidings_trust t = trust == "verified"  ? TIDINGS_TRUST_VERIFIED
                            : trust == "removed" ? TIDINGS_TRUST_REMOVED
                                                 : TIDINGS_TRUST_UNVERIFIED;
    api::Status s = api::SetDeviceTrust(store, req.Get("user"), req.Get("device"), t);
    if (s.ok() && t == TIDINGS_TRUST_REMOVED && hooks.poke) hooks.poke();  // a new epoch
    return FromApiStatus(s);
  }
  if (op == "outbox-retry" || op == "outbox-discard") {
    auto seq = ParseSeq(req.Get("seq"));
    if (!seq.ok()) return ErrorFields(seq.status());
    const bool retry = op == "outbox-retry";
    const auto& hook = retry ? hooks.retry_failed : hooks.discard_failed;
    if (hook) return FromStatus(hook(*seq));
    return FromApiStatus(retry ? store.RetryFailed(*seq) : store.DiscardFailed(*seq));
  }
  if (op == "search") return ExecuteSearch(store, req);
  if (op == "poke") {
    if (hooks.poke) hooks.poke();
    return Ok();
  }
  if (op == "typing") {
    if (!hooks.typing) {
      return ErrorFields(FailedPrecondition(
          "typing indicators need the daemon's sync running: start `tidings daemon`"));
    }
    return FromStatus(hooks.typing(req.Get("conversation")));
  }
  return ErrorFields(InvalidArgument("unknown request \"" + op + "\""));
}

}  // namespace tidings::daemon
