#include "sync/e2e/log_state.h"

#include "crypto/hash.h"
#include "crypto/public_key.h"
#include "sync/wire/bytes.h"

namespace tidings::e2e {
namespace {

// 1: up to dropped_pending. 2: then the reader's version and the indexes of
// the pending frames that are too new. 3: then the re-read of the frames
// read before the log was bound or that a re-read could not judge
// (unopened, unopened_top, replay_until, replay_until_ms, rereading, past_share,
// resume_cursor, reread_current).
constexpr uint8_t kVersion = 3;

// A bound on what a corrupt record's list count makes the reader allocate.
constexpr size_t kMaxStoredList = 100'000;

// An absent key is stored as no bytes.
Result<crypto::SecretKey> KeyFrom(std::string_view bytes) {
  if (bytes.empty()) return crypto::SecretKey();
  return crypto::SecretKey::FromBytes(bytes);
}

void PutId(wire::ByteWriter& w, const EpochId& id) {
  w.Varint(id.number);
  w.Bytes(id.sharer);
}

Status GetId(wire::ByteReader& r, EpochId* id) {
  TIDINGS_RETURN_IF_ERROR(r.Varint("epoch", &id->number));
  return r.Bytes("epoch sharer", &id->sharer);
}

void PutFrame(wire::ByteWriter& w, const sync::Frame& f) {
  w.Bytes(f.id);
  w.Bytes(f.bytes);
  w.Bytes(f.sender);
  w.Varint(f.server_time_ms);
  w.Bytes(f.remote_id);
}

Status GetFrame(wire::ByteReader& r, sync::Frame* f) {
  TIDINGS_RETURN_IF_ERROR(r.Bytes("frame id", &f->id));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("frame", &f->bytes));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("sender", &f->sender));
  TIDINGS_RETURN_IF_ERROR(r.Varint("time", &f->server_time_ms));
  return r.Bytes("remote id", &f->remote_id);
}

}  // namespace

std::string FrameDigest(const sync::Frame& frame) {
  std::string named;
  wire::ByteWriter w(&named);
  w.Bytes(frame.remote_id);
  w.Bytes(frame.bytes);
  return crypto::Sha256Hex(named);
}

const Epoch* LogState::current() const {
  if (chain.empty()) return nullptr;
  auto it = epochs.find(chain.back());
  return it == epochs.end() ? nullptr : &it->second;
}

size_t LogState::too_new() const {
  size_t n = 0;
  for (const auto& p : pending) n += p.too_new ? 1 : 0;
  return n;
}

std::string EncodeLogState(const LogState& s) {
  std::string out;
  wire::ByteWriter w(&out);
  w.U8(kVersion);
  w.Bytes(s.log_id);
  w.Bytes(s.conversation_id);
  w.Bytes(s.log_secret.view());
  w.Varint(s.epochs.size());
  for (const auto& [id, e] : s.epochs) {
    PutId(w, id);
    w.Bytes(e.key.view());
    w.Bytes(EncodeEpochInfo(e.info));
    w.BytesList(e.delivered);
  }
  w.Varint(s.chain.size());
  for (const auto& id : s.chain) PutId(w, id);
  w.Bytes(s.cursor);
  w.U8(s.announced ? 1 : 0);
  w.U8(s.on_server ? 1 : 0);
  w.Bytes(s.ensured_members);
  w.Bytes("");  // a reserved field, always empty; readers skip it
  w.Bytes(s.stranger);
  w.Bytes(s.log_creator);
  w.BytesList(s.log_members);
  w.Varint(s.pending.size());
  for (const auto& p : s.pending) {
    PutFrame(w, p.frame);
    PutId(w, p.current_at);
  }
  w.Varint(s.rejected);
  w.Bytes(s.last_rejection);
  w.Varint(s.dropped_pending);
  w.U8(s.reader);
  w.Varint(s.too_new());
  for (size_t i = 0; i < s.pending.size(); ++i) {
    if (s.pending[i].too_new) w.Varint(i);
  }
  w.Varint(s.unopened);
  w.Varint(s.unopened_top);
  w.Bytes(s.replay_until);
  w.Varint(s.replay_until_ms);
  w.U8(s.rereading ? 1 : 0);
  w.U8(s.past_share ? 1 : 0);
  w.Bytes(s.resume_cursor);
  PutId(w, s.reread_current);
  return out;
}

Result<LogState> DecodeLogState(std::string_view bytes) {
  wire::ByteReader r(bytes, "sealed log state");
  LogState s;
  uint8_t version = 0, flag = 0;
  uint64_t n = 0;
  std::string key;
  TIDINGS_RETURN_IF_ERROR(r.U8("version", &version));
  if (version < 1 || version > kVersion) return r.Error("version", "is not 1, 2 or 3");
  TIDINGS_RETURN_IF_ERROR(r.Bytes("log id", &s.log_id));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("conversation id", &s.conversation_id));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("log secret", &key));
  TIDINGS_ASSIGN_OR_RETURN(s.log_secret, KeyFrom(key));
  crypto::Wipe(&key);
  TIDINGS_RETURN_IF_ERROR(r.Varint("epochs", &n));
  for (uint64_t i = 0; i < n; ++i) {
    Epoch e;
    std::string info;
    TIDINGS_RETURN_IF_ERROR(GetId(r, &e.id));
    TIDINGS_RETURN_IF_ERROR(r.Bytes("epoch key", &key));
    TIDINGS_ASSIGN_OR_RETURN(e.key, KeyFrom(key));
    crypto::Wipe(&key);
    TIDINGS_RETURN_IF_ERROR(r.Bytes("epoch info", &info));
    TIDINGS_ASSIGN_OR_RETURN(e.info, DecodeEpochInfo(info));
    TIDINGS_RETURN_IF_ERROR(r.BytesList("delivered", kMaxStoredList, &e.delivered));
    EpochId id = e.id;
    s.epochs.emplace(std::move(id), std::move(e));
  }
  TIDINGS_RETURN_IF_ERROR(r.Varint("chain", &n));
  // An epoch id takes at least 2 bytes (its number and sharer).
  if (n > r.remaining() / 2) return r.Error("chain", "counts more epochs than the record holds");
  s.chain.resize(n);
  for (auto& id : s.chain) TIDINGS_RETURN_IF_ERROR(GetId(r, &id));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("cursor", &s.cursor));
  TIDINGS_RETURN_IF_ERROR(r.U8("announced", &flag));
  s.announced = flag != 0;
  TIDINGS_RETURN_IF_ERROR(r.U8("on server", &flag));
  s.on_server = flag != 0;
  TIDINGS_RETURN_IF_ERROR(r.Bytes("ensured", &s.ensured_members));
  std::string reserved;
  TIDINGS_RETURN_IF_ERROR(r.Bytes("reserved", &reserved));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("stranger", &s.stranger));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("creator", &s.log_creator));
  TIDINGS_RETURN_IF_ERROR(r.BytesList("log members", kMaxStoredList, &s.log_members));
  TIDINGS_RETURN_IF_ERROR(r.Varint("pending", &n));
  // A pending frame takes at least 7 bytes (five fields and an epoch id of
  // at least one): a larger count is a broken record, not a size to make.
  if (n > r.remaining() / 7) return r.Error("pending", "counts more frames than the record holds");
  s.pending.resize(n);
  for (auto& p : s.pending) {
    TIDINGS_RETURN_IF_ERROR(GetFrame(r, &p.frame));
    TIDINGS_RETURN_IF_ERROR(GetId(r, &p.current_at));
  }
  TIDINGS_RETURN_IF_ERROR(r.Varint("rejected", &s.rejected));
  TIDINGS_RETURN_IF_ERROR(r.Bytes("last rejection", &s.last_rejection));
  TIDINGS_RETURN_IF_ERROR(r.Varint("dropped", &s.dropped_pending));
  if (version >= 2) {
    TIDINGS_RETURN_IF_ERROR(r.U8("reader", &s.reader));
    TIDINGS_RETURN_IF_ERROR(r.Varint("too new", &n));
    if (n > s.pending.size()) return r.Error("too new", "counts more frames than are pending");
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t index = 0;
      TIDINGS_RETURN_IF_ERROR(r.Varint("too new", &index));
      if (index >= s.pending.size()) return r.Error("too new", "names no pending frame");
      s.pending[index].too_new = true;
    }
  }
  if (version >= 3) {
    TIDINGS_RETURN_IF_ERROR(r.Varint("unopened", &s.unopened));
    TIDINGS_RETURN_IF_ERROR(r.Varint("unopened top", &s.unopened_top));
    TIDINGS_RETURN_IF_ERROR(r.Bytes("replay until", &s.replay_until));
    TIDINGS_RETURN_IF_ERROR(r.Varint("replay until time", &s.replay_until_ms));
    TIDINGS_RETURN_IF_ERROR(r.U8("rereading", &flag));
    s.rereading = flag != 0;
    TIDINGS_RETURN_IF_ERROR(r.U8("past share", &flag));
    s.past_share = flag != 0;
    TIDINGS_RETURN_IF_ERROR(r.Bytes("resume cursor", &s.resume_cursor));
    TIDINGS_RETURN_IF_ERROR(GetId(r, &s.reread_current));
  } else if (!s.bound()) {
    // An older build kept what it read unbound (to be judged with no epoch
    // current) and dropped the oldest over the bound: the share that binds
    // the log reads them all again instead.
    s.unopened = s.dropped_pending;
    s.unopened_top = UINT64_MAX;  // any key may open them
    std::erase_if(s.pending, [&](const PendingFrame& p) {
      auto type = PeekFrameType(p.frame.bytes);
      const bool op = type.ok() && type.value() == FrameType::kSealedOp && !p.too_new;
      s.unopened += op ? 1 : 0;
      return op;
    });
  }
  if (!r.done()) return r.Error("end", "expected, but bytes are left over");
  return s;
}

std::string LogStateKey(std::string_view backend, std::string_view log_id) {
  return "e2e/" + std::string(backend) + "/log/" + std::string(log_id);
}

std::string ModeKey(std::string_view conversation_id) {
  return "e2e/mode/" + std::string(conversation_id);
}

std::string BindingKey(std::string_view backend, std::string_view conversation_id) {
  return "e2e/" + std::string(backend) + "/conv/" + std::string(conversation_id);
}

std::string LogsKey(std::string_view backend) { return "e2e/" + std::string(backend) + "/logs"; }

std::string LogIdOf(const crypto::SecretKey& log_secret) {
  const std::string h = crypto::Blake2b("tidings-log-v1", 16, log_secret.view());
  return "e" + crypto::HexEncode(h);
}

}  // namespace tidings::e2e
