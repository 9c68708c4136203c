#include "sync/e2e/session.h"

#include <algorithm>

#include "common/lines.h"
#include "crypto/hash.h"
#include "crypto/public_key.h"
#include "sync/wire/bytes.h"
#include "sync/wire/operation_codec.h"

namespace tidings::e2e {
namespace {

constexpr std::string_view kShareContext = "tidings-share-v1";
constexpr std::string_view kOpContext = "tidings-op-v1";
constexpr std::string_view kInfoContext = "tidings-epoch-info-v1";

// What a signature covers: a context, the conversation (known to members
// only, so a frame copied into another conversation fails), the frame body.
std::string SigInput(std::string_view context, std::string_view conversation_id,
                     std::string_view body) {
  std::string out;
  wire::ByteWriter w(&out);
  w.Bytes(context);
  w.Bytes(conversation_id);
  out.append(body);
  return out;
}

// How far after the share a re-read stops at it reads on: frames a listing
// may order either side of it (Chime makes messages visible out of
// creation order within its 5 s listing overlap).
constexpr uint64_t kReorderWindowMs = 5'000;

// A key share whose epoch may open a frame that waits for an epoch numbered
// up to `top`.
bool BringsKeyFor(const sync::Frame& frame, uint64_t top) {
  std::string body;
  auto share = DecodeKeyShare(frame.bytes, &body);
  return share.ok() && share->epoch <= top;
}

std::string InfoAd(std::string_view log_id, const EpochId& id) {
  std::string out;
  wire::ByteWriter w(&out);
  w.Bytes(kInfoContext);
  w.Bytes(log_id);
  w.Varint(id.number);
  w.Bytes(id.sharer);
  return out;
}

std::string OpAd(std::string_view conversation_id, const SealedOpFrame& f) {
  std::string out;
  wire::ByteWriter w(&out);
  w.Bytes(kOpContext);
  w.Bytes(conversation_id);
  w.Bytes(f.op_id);
  w.Varint(f.epoch);
  w.Bytes(f.epoch_sharer);
  w.Bytes(f.author_device);
  w.Bytes(f.log_id);
  return out;
}

bool Contains(const std::vector<std::string>& sorted, const std::string& v) {
  return std::binary_search(sorted.begin(), sorted.end(), v);
}

void Insert(std::vector<std::string>* sorted, const std::string& v) {
  auto it = std::lower_bound(sorted->begin(), sorted->end(), v);
  if (it == sorted->end() || *it != v) sorted->insert(it, v);
}

// Records who holds the key share `f` carries, if this device holds its
// epoch; false if it does not.
bool NoteDelivered(LogState& log, const KeyShareFrame& f) {
  auto it = log.epochs.find({f.epoch, f.epoch_sharer});
  if (it == log.epochs.end()) return false;
  for (const auto& [device, sealed] : f.sealed) Insert(&it->second.delivered, device);
  return true;
}

std::string Joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += s + "\n";
  return out;
}

// Frame ids: [A-Za-z0-9._-], at most 64 characters.
std::string OpFrameId(const std::string& op_id) {
  bool plain = op_id.size() <= 60;
  for (char c : op_id) {
    plain =
        plain && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.');
  }
  if (plain) return "o." + op_id;
  const std::string h = crypto::Blake2b(op_id, 16);
  return "o.h" + crypto::HexEncode(h);
}

// Control frame ids end in random bits: on a server where anyone may write
// any id (DynamoDB), a predictable id could be taken first by someone else,
// and the honest frame would be acknowledged as "already there" and lost.
// (Operation frames are named by their op id, random and unknown until the
// frame is in the log.)
std::string RandomTag() {
  uint8_t bytes[5];
  crypto::RandomBytes(bytes, sizeof bytes);
  return crypto::HexEncode(std::span(bytes, sizeof bytes));
}

std::string ShortHash(std::string_view data) {
  const std::string h = crypto::Blake2b(data, 6);
  return crypto::HexEncode(h);
}

}  // namespace

Result<DeviceKeys> LoadOrCreateDeviceKeys(engine::SyncLog& store, const std::string& user,
                                          uint64_t now_ms) {
  TIDINGS_ASSIGN_OR_RETURN(std::string bytes, store.GetSyncState(kDeviceKeysKey));
  if (!bytes.empty()) {
    auto keys = DeviceKeys::Deserialize(bytes, user);
    crypto::Wipe(&bytes);
    return keys;
  }
  TIDINGS_ASSIGN_OR_RETURN(DeviceKeys keys, DeviceKeys::Generate(user, now_ms));
  std::string secret = keys.Serialize();
  Status st = store.PutSyncState(kDeviceKeysKey, secret);
  crypto::Wipe(&secret);
  TIDINGS_RETURN_IF_ERROR(st);
  // Pin our own device, so the directory lists it with the others.
  std::vector<engine::SyncStateWrite> writes;
  Directory dir(&store);
  TIDINGS_RETURN_IF_ERROR(dir.Pin(keys.record(), now_ms, &writes).status());
  TIDINGS_RETURN_IF_ERROR(store.PutSyncStates(writes));
  return keys;
}

size_t MaxSealedBody(size_t max_frame_bytes, const engine::Operation& shape) {
  engine::Operation probe = shape;
  probe.body.clear();
  // Worst case of every variable-length field in the frame around it.
  const size_t op_bytes = wire::EncodeOperation(probe).size() + 3;  // body length varint
  const size_t frame_bytes = 2 + (1 + 33) + 10 + (1 + 32) + (1 + 32) +
                             (2 + OpFrameId(shape.op_id).size()) + 3 + crypto::kAeadNonceBytes +
                             crypto::kAeadTagBytes + (1 + crypto::kSignatureBytes);
  const size_t overhead = op_bytes + frame_bytes;
  return max_frame_bytes > overhead ? max_frame_bytes - overhead : 0;
}

Session::Session(engine::SyncLog* store, SessionOptions options)
    : store_(store), options_(std::move(options)), directory_(store) {}

Result<std::unique_ptr<Session>> Session::Open(engine::SyncLog* store, SessionOptions options) {
  if (!options.now_ms) return InvalidArgument("an end-to-end session needs a clock");
  std::unique_ptr<Session> s(new Session(store, std::move(options)));
  TIDINGS_ASSIGN_OR_RETURN(s->keys_,
                           LoadOrCreateDeviceKeys(*store, s->options_.user, s->options_.now_ms()));
  return s;
}

// ---- Modes and logs ----

Result<std::vector<std::string>> Session::BoundLogs(const std::string& conversation_id) {
  TIDINGS_ASSIGN_OR_RETURN(std::string v,
                           store_->GetSyncState(BindingKey(options_.backend, conversation_id)));
  std::vector<std::string> ids = SplitLines(v);
  for (const auto& [id, log] : logs_) {
    if (log->conversation_id == conversation_id &&
        std::find(ids.begin(), ids.end(), id) == ids.end()) {
      ids.push_back(id);
    }
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

Result<std::pair<Mode, std::string>> Session::GetMode(const std::string& conversation_id) {
  TIDINGS_ASSIGN_OR_RETURN(auto logs, BoundLogs(conversation_id));
  // Two devices that made the same conversation apart made two logs: every
  // device pulls both and pushes to the smallest id, so they meet there.
  if (!logs.empty()) return std::pair(Mode::kSealed, logs.front());
  TIDINGS_ASSIGN_OR_RETURN(std::string v, store_->GetSyncState(ModeKey(conversation_id)));
  if (v.empty()) return std::pair(Mode::kUnset, std::string());
  if (v == "plain") return std::pair(Mode::kPlain, std::string());
  if (v == "e2e") return std::pair(Mode::kSealed, std::string());
  return DataLoss("the end-to-end mode of a conversation is unreadable");
}

Status Session::SetMode(const std::string& conversation_id, Mode mode) {
  if (mode == Mode::kSealed) return LogForConversation(conversation_id).status();
  return store_->PutSyncState(ModeKey(conversation_id), mode == Mode::kPlain ? "plain" : "");
}

Result<std::vector<std::string>> Session::KnownLogs() {
  TIDINGS_ASSIGN_OR_RETURN(std::string v, store_->GetSyncState(LogsKey(options_.backend)));
  std::vector<std::string> ids = SplitLines(v);
  for (const auto& [id, log] : logs_) {
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  }
  return ids;
}

Result<LogState*> Session::LogById(const std::string& log_id) {
  auto it = logs_.find(log_id);
  if (it != logs_.end()) return it->second.get();
  TIDINGS_ASSIGN_OR_RETURN(std::string bytes,
                           store_->GetSyncState(LogStateKey(options_.backend, log_id)));
  auto log = std::make_unique<LogState>();
  if (bytes.empty()) {
    log->log_id = log_id;
  } else {
    auto decoded = DecodeLogState(bytes);
    crypto::Wipe(&bytes);
    if (!decoded.ok()) return decoded.status();
    *log = std::move(decoded).value();
  }
  return logs_.emplace(log_id, std::move(log)).first->second.get();
}

Result<LogState*> Session::LogForConversation(const std::string& conversation_id) {
  TIDINGS_ASSIGN_OR_RETURN(auto mode, GetMode(conversation_id));
  if (mode.first == Mode::kSealed && !mode.second.empty()) return LogById(mode.second);
  TIDINGS_ASSIGN_OR_RETURN(crypto::SecretKey secret, crypto::SecretKey::Random());
  const std::string log_id = LogIdOf(secret);
  TIDINGS_ASSIGN_OR_RETURN(LogState * log, LogById(log_id));
  log->conversation_id = conversation_id;
  log->log_secret = std::move(secret);
  // Persist at once: a log secret must never be made twice for one
  // conversation, and a crash before the first push must find it.
  auto writes = StateWrites(*log);
  Status st = store_->PutSyncStates(writes);
  for (auto& w : writes) crypto::Wipe(&w.value);
  TIDINGS_RETURN_IF_ERROR(st);
  return log;
}

void Session::Bind(LogState& log, const std::string& conversation_id,
                   const std::string& log_secret) {
  log.conversation_id = conversation_id;
  auto key = crypto::SecretKey::FromBytes(log_secret);
  if (key.ok()) log.log_secret = std::move(key).value();
}

std::vector<engine::SyncStateWrite> Session::StateWrites(const LogState& log) {
  std::vector<engine::SyncStateWrite> writes = std::move(deferred_);
  deferred_.clear();
  writes.push_back({LogStateKey(options_.backend, log.log_id), EncodeLogState(log)});
  if (log.bound()) {
    auto bound = BoundLogs(log.conversation_id);
    if (bound.ok()) {
      writes.push_back({BindingKey(options_.backend, log.conversation_id), Joined(bound.value())});
    }
    writes.push_back({ModeKey(log.conversation_id), "e2e"});
  }
  auto known = KnownLogs();
  if (known.ok()) writes.push_back({LogsKey(options_.backend), Joined(known.value())});
  return writes;
}

// ---- Directory ----

void Session::Refresh(const std::string& user, const FetchDevices& fetch, bool force,
                      std::vector<engine::SyncStateWrite>* writes) {
  if (!fetch) return;
  const uint64_t now = options_.now_ms();
  auto it = refreshed_.find(user);
  if (!force && it != refreshed_.end() && now - it->second < options_.directory_refresh_ms) return;
  // Forced (an unknown device, an unauthenticated announcement): at most
  // once per user per page or push, however many frames ask.
  if (force && !refreshed_now_.insert(user).second) return;
  refreshed_[user] = now;
  auto records = fetch(user);
  if (!records.ok()) return;  // a failed fetch leaves the device unknown for now
  for (const auto& bytes : records.value()) {
    auto rec = DecodeDeviceRecord(bytes, user);
    if (!rec.ok()) continue;
    auto pinned = directory_.Pin(rec.value(), now, writes);
    if (pinned.ok() && pinned.value()) pinned_new_ = true;
  }
}

std::optional<PinnedDevice> Session::FindDevice(const std::string& device_id,
                                                const std::vector<std::string>& users,
                                                const FetchDevices& fetch, OpenResult* out) {
  auto found = directory_.Find(device_id, users);
  if (found.ok() && found.value()) return found.value();
  for (const auto& u : users) Refresh(u, fetch, /*force=*/true, &out->writes);
  found = directory_.Find(device_id, users);
  if (found.ok() && found.value()) return found.value();
  return std::nullopt;
}

Result<std::vector<PinnedDevice>> Session::MemberDevices(const std::vector<std::string>& members,
                                                         const std::set<std::string>& removed) {
  std::vector<PinnedDevice> out;
  for (const auto& m : members) {
    TIDINGS_ASSIGN_OR_RETURN(auto devices, directory_.Devices(m));
    for (auto& d : devices) {
      if (d.trust == Trust::kRemoved || removed.count(d.record.device_id())) continue;
      out.push_back(std::move(d));
    }
  }
  return out;
}

// ---- Push ----

Result<std::vector<sync::Frame>> Session::ShareFrames(LogState& log, const Epoch& epoch,
                                                      const std::vector<PinnedDevice>& recipients,
                                                      bool reshare) {
  // Both secrets are copied into `secret` only for the encoding, then wiped.
  ShareSecret secret{log.conversation_id, std::string(log.log_secret.view()), epoch.id.number,
                     epoch.id.sharer,     std::string(epoch.key.view()),      options_.user};
  std::string plain = EncodeShareSecret(secret);
  crypto::Wipe(&secret.log_secret);
  crypto::Wipe(&secret.epoch_key);
  std::string info_plain = EncodeEpochInfo(epoch.info);
  const std::string info = crypto::AeadSeal(epoch.key, InfoAd(log.log_id, epoch.id), info_plain);

  // Split the recipients over frames that fit the backend.
  const size_t per_recipient = 2 + 32 + 3 + plain.size() + crypto::kSealedBoxOverhead;
  const size_t fixed = 2 + 2 * 35 + 12 + 3 + info.size() + 2 + crypto::kSignatureBytes + 64;
  size_t per_frame = 1;
  if (options_.max_frame_bytes > fixed + per_recipient) {
    per_frame = (options_.max_frame_bytes - fixed) / per_recipient;
  }
  std::vector<sync::Frame> frames;
  for (size_t start = 0; start < recipients.size(); start += per_frame) {
    KeyShareFrame f;
    f.log_id = log.log_id;
    f.epoch = epoch.id.number;
    f.epoch_sharer = epoch.id.sharer;
    f.signer = keys_.device_id();
    std::string recipient_ids;
    for (size_t i = start; i < std::min(recipients.size(), start + per_frame); ++i) {
      const auto& d = recipients[i].record;
      f.sealed.emplace_back(d.device_id(), crypto::SealBox(d.box_pk, plain));
      recipient_ids += d.device_id();
    }
    f.info = info;
    auto sig = keys_.Sign(SigInput(kShareContext, log.conversation_id, EncodeKeyShareBody(f)));
    if (!sig.ok()) {
      crypto::Wipe(&plain);
      crypto::Wipe(&info_plain);
      return sig.status();
    }
    f.signature = std::move(sig).value();
    sync::Frame frame;
    frame.id = (reshare ? "r." : "k.") + std::to_string(epoch.id.number) + "." +
               epoch.id.sharer.substr(0, 12) + "." + keys_.device_id().substr(0, 12) + "." +
               ShortHash(recipient_ids) + "." + RandomTag();
    frame.bytes = EncodeKeyShare(f);
    frames.push_back(std::move(frame));
  }
  crypto::Wipe(&plain);
  crypto::Wipe(&info_plain);
  return frames;
}

Result<std::vector<sync::Frame>> Session::ControlFrames(LogState& log,
                                                        const engine::Conversation& conversation,
                                                        const FetchDevices& fetch) {
  std::vector<sync::Frame> frames;
  refreshed_now_.clear();
  if (!log.announced) {
    frames.push_back({"a." + keys_.device_id() + "." + RandomTag(),
                      EncodeAnnouncement(keys_.record().Encode()), "", 0, ""});
  }
  if (!log.bound()) return frames;

  std::vector<std::string> members = conversation.members;
  members.push_back(options_.user);
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  for (const auto& m : members) Refresh(m, fetch, /*force=*/false, &deferred_);

  const Epoch* current = log.current();
  std::set<std::string> removed;
  if (current) removed.insert(current->info.removed.begin(), current->info.removed.end());
  for (const auto& m : members) {
    TIDINGS_ASSIGN_OR_RETURN(auto devices, directory_.Devices(m));
    for (const auto& d : devices) {
      if (d.trust == Trust::kRemoved) removed.insert(d.record.device_id());
    }
  }
  TIDINGS_ASSIGN_OR_RETURN(auto devices, MemberDevices(members, removed));
  std::vector<std::string> device_ids;
  for (const auto& d : devices) device_ids.push_back(d.record.device_id());
  std::sort(device_ids.begin(), device_ids.end());

  const bool am_member = !current || Contains(current->info.members, options_.user);
  bool new_epoch = !current;
  if (current && am_member) {
    // Members changed, or a device was removed since the epoch was made.
    new_epoch = current->info.members != members || current->info.title != conversation.title;
    for (const auto& d : current->info.devices) new_epoch = new_epoch || removed.count(d) > 0;
  }
  if (new_epoch && am_member) {
    Epoch e;
    e.id = {current ? current->id.number + 1 : 1, keys_.device_id()};
    TIDINGS_ASSIGN_OR_RETURN(e.key, crypto::SecretKey::Random());
    e.info = {log.conversation_id, conversation.title, members, device_ids,
              std::vector<std::string>(removed.begin(), removed.end())};
    // Delivered only once the backend took the share (ControlAcked): a share
    // lost with a failed push is re-shared by the next push instead.
    TIDINGS_ASSIGN_OR_RETURN(auto shares, ShareFrames(log, e, devices, /*reshare=*/false));
    frames.insert(frames.end(), shares.begin(), shares.end());
    EpochId id = e.id;
    log.epochs.emplace(id, std::move(e));
    log.chain.push_back(id);
    return frames;
  }
  if (!am_member) return frames;
  // Re-shares: every epoch a member's device is entitled to and lacks.
  for (auto& [id, epoch] : log.epochs) {
    std::set<std::string> epoch_removed(removed);
    epoch_removed.insert(epoch.info.removed.begin(), epoch.info.removed.end());
    if (!Contains(epoch.info.members, options_.user)) continue;
    TIDINGS_ASSIGN_OR_RETURN(auto entitled, MemberDevices(epoch.info.members, epoch_removed));
    std::vector<PinnedDevice> missing;
    for (auto& d : entitled) {
      if (!Contains(epoch.delivered, d.record.device_id())) missing.push_back(std::move(d));
    }
    if (missing.empty()) continue;
    TIDINGS_ASSIGN_OR_RETURN(auto shares, ShareFrames(log, epoch, missing, /*reshare=*/true));
    frames.insert(frames.end(), shares.begin(), shares.end());
  }
  return frames;
}

void Session::ControlAcked(LogState& log, const sync::Frame& frame) {
  if (frame.id.rfind("a.", 0) == 0) {
    log.announced = true;
    return;
  }
  auto share = DecodeKeyShare(frame.bytes, nullptr);
  if (share.ok()) NoteDelivered(log, *share);
}

Result<sync::Frame> Session::Seal(const LogState& log, const engine::Operation& op) {
  const Epoch* epoch = log.current();
  if (!epoch || !log.bound()) {
    return FailedPrecondition("the conversation has no end-to-end key yet; sync again");
  }
  SealedOpFrame f;
  f.log_id = log.log_id;
  f.epoch = epoch->id.number;
  f.epoch_sharer = epoch->id.sharer;
  f.author_device = keys_.device_id();
  f.op_id = op.op_id;
  engine::Operation bare = op;
  bare.server_time_ms = 0;
  bare.remote_id.clear();
  std::string plain = wire::EncodeOperation(bare);
  f.ciphertext = crypto::AeadSeal(epoch->key, OpAd(log.conversation_id, f), plain);
  crypto::Wipe(&plain);
  crypto::Wipe(&bare.body);
  TIDINGS_ASSIGN_OR_RETURN(
      f.signature, keys_.Sign(SigInput(kOpContext, log.conversation_id, EncodeSealedOpBody(f))));
  sync::Frame frame{OpFrameId(op.op_id), EncodeSealedOp(f), "", 0, ""};
  if (options_.max_frame_bytes > 0 && frame.bytes.size() > options_.max_frame_bytes) {
    return TooLarge(
        "the message is too large for this end-to-end encrypted conversation: at most " +
        std::to_string(MaxSealedBody(options_.max_frame_bytes, op)) +
        " bytes of body fit in one message on " + options_.backend);
  }
  return frame;
}

// ---- Pull ----

Session::Verdict Session::Reject(LogState& log, OpenResult* out, std::string why) {
  if (previewing_) return Verdict::kRejected;  // the re-read judges it and counts
  ++log.rejected;
  ++out->rejected;
  log.last_rejection = std::move(why);
  return Verdict::kRejected;
}

void Session::PinAnnouncement(LogState& log, const sync::Frame& frame, const FetchDevices& fetch,
                              OpenResult* out) {
  auto record = DecodeAnnouncement(frame.bytes);
  if (!record.ok()) {
    Reject(log, out, "a malformed announcement");
    return;
  }
  if (frame.sender.empty()) {
    // Not authenticated by this backend: only a hint that a member has a
    // device we may not know. Refresh the members' directory entries.
    if (const Epoch* e = log.current()) {
      for (const auto& m : e->info.members) Refresh(m, fetch, /*force=*/true, &out->writes);
    }
    return;
  }
  auto rec = DecodeDeviceRecord(record.value(), frame.sender);
  if (!rec.ok()) {
    Reject(log, out, "an announcement whose signature does not verify");
    return;
  }
  auto pinned = directory_.Pin(rec.value(), options_.now_ms(), &out->writes);
  if (pinned.ok() && pinned.value()) out->devices_learned = true;
}

Session::Verdict Session::OpenShare(LogState& log, const sync::Frame& frame,
                                    const FetchDevices& fetch, OpenResult* out) {
  std::string body;
  auto decoded = DecodeKeyShare(frame.bytes, &body);
  if (!decoded.ok()) return Reject(log, out, "a malformed key share");
  KeyShareFrame& f = decoded.value();
  if (f.log_id != log.log_id) return Reject(log, out, "a key share copied from another log");
  const EpochId id{f.epoch, f.epoch_sharer};
  auto mine = std::find_if(f.sealed.begin(), f.sealed.end(),
                           [&](const auto& s) { return s.first == keys_.device_id(); });
  if (mine == f.sealed.end()) {
    NoteDelivered(log, f);
    return Verdict::kIgnored;  // for other devices
  }
  auto opened = keys_.OpenSealed(mine->second);
  if (!opened.ok()) return Reject(log, out, "a key share that does not open");
  auto secret = DecodeShareSecret(opened.value());
  crypto::Wipe(&opened.value());
  if (!secret.ok()) return Reject(log, out, "a malformed key share secret");
  ShareSecret& s = secret.value();
  struct WipeSecret {
    ShareSecret* s;
    ~WipeSecret() {
      crypto::Wipe(&s->epoch_key);
      crypto::Wipe(&s->log_secret);
    }
  } wipe{&s};
  if (s.epoch != f.epoch || s.epoch_sharer != f.epoch_sharer) {
    return Reject(log, out, "a key share whose sealed part names another epoch");
  }
  auto log_secret = crypto::SecretKey::FromBytes(s.log_secret);
  if (!log_secret.ok() || LogIdOf(log_secret.value()) != log.log_id) {
    return Reject(log, out, "a key share for another log");
  }
  if (log.bound() && log.conversation_id != s.conversation_id) {
    return Reject(log, out, "a key share for another conversation");
  }
  if (!frame.sender.empty() && frame.sender != s.signer_user) {
    return Reject(log, out, "a key share whose sender is not its signer");
  }
  auto signer = FindDevice(f.signer, {s.signer_user}, fetch, out);
  if (!signer || signer->record.user != s.signer_user) {
    return Reject(log, out, "a key share from an unknown device");
  }
  if (!crypto::VerifySignature(signer->record.sign_pk,
                               SigInput(kShareContext, s.conversation_id, body), f.signature)) {
    return Reject(log, out, "a key share with a bad signature");
  }
  auto epoch_key = crypto::SecretKey::FromBytes(s.epoch_key);
  if (!epoch_key.ok()) return Reject(log, out, "a key share with a malformed key");
  auto info_plain = crypto::AeadOpen(epoch_key.value(), InfoAd(log.log_id, id), f.info);
  if (!info_plain.ok()) return Reject(log, out, "a key share whose epoch info does not open");
  auto info = DecodeEpochInfo(info_plain.value());
  if (!info.ok() || info->conversation_id != s.conversation_id) {
    return Reject(log, out, "a key share with malformed epoch info");
  }
  std::sort(info->members.begin(), info->members.end());
  if (!Contains(info->members, s.signer_user) || !Contains(info->members, options_.user)) {
    return Reject(log, out, "a key share from or to someone outside the conversation");
  }
  const bool reshare = f.signer != f.epoch_sharer;
  const Epoch* current = log.current();
  if (!reshare && current && id.number > current->id.number &&
      !Contains(current->info.members, s.signer_user)) {
    return Reject(log, out, "a new epoch started by someone outside the conversation");
  }
  if (!log.bound()) {
    // First share to this device: the log belongs to this conversation. A
    // conversation this device already has may gain a second log (two
    // members made it apart), but only from one of its members: a log for
    // it signed by anyone else is a squatter's.
    auto local = store_->GetConversation(s.conversation_id);
    if (local.ok() && !local->members.empty()) {
      std::set<std::string> allowed(local->members.begin(), local->members.end());
      allowed.insert(options_.user);
      auto bound = BoundLogs(s.conversation_id);
      if (bound.ok()) {
        for (const auto& other : bound.value()) {
          auto it = logs_.find(other);
          if (it == logs_.end()) continue;
          for (const auto& [eid, e] : it->second->epochs) {
            allowed.insert(e.info.members.begin(), e.info.members.end());
          }
        }
      }
      if (!allowed.count(s.signer_user)) {
        return Reject(log, out, "a log for a known conversation from someone outside it");
      }
    }
    Bind(log, s.conversation_id, s.log_secret);
  }
  if (NoteDelivered(log, f)) return Verdict::kOpened;
  Epoch e;
  e.id = id;
  e.key = std::move(epoch_key).value();
  e.info = std::move(info).value();
  for (const auto& [device, sealed] : f.sealed) Insert(&e.delivered, device);
  const bool becomes_current = !current || id.number > current->id.number;
  log.epochs.emplace(id, std::move(e));
  if (becomes_current) {
    log.chain.push_back(id);
    out->conversation_info = log.epochs[id].info;
  }
  out->keys_learned = true;
  CheckLogMembers(log);
  return Verdict::kOpened;
}

Session::Verdict Session::OpenOp(LogState& log, const sync::Frame& frame, const EpochId& current_at,
                                 const FetchDevices& fetch, OpenResult* out) {
  std::string body;
  auto decoded = DecodeSealedOp(frame.bytes, &body);
  if (!decoded.ok()) return Reject(log, out, "a malformed sealed operation");
  const SealedOpFrame& f = decoded.value();
  if (f.log_id != log.log_id) return Reject(log, out, "an operation copied from another log");
  auto eit = log.epochs.find({f.epoch, f.epoch_sharer});
  if (!log.bound() || eit == log.epochs.end()) return Verdict::kPending;
  const Epoch& epoch = eit->second;
  auto author = FindDevice(f.author_device, epoch.info.members, fetch, out);
  if (!author) return Reject(log, out, "an operation from an unknown device");
  const std::string& user = author->record.user;
  if (!frame.sender.empty() && frame.sender != user) {
    return Reject(log, out, "an operation whose sender is not its author");
  }
  if (!crypto::VerifySignature(author->record.sign_pk,
                               SigInput(kOpContext, log.conversation_id, body), f.signature)) {
    return Reject(log, out, "an operation with a bad signature");
  }
  if (!Contains(epoch.info.members, user) || Contains(epoch.info.removed, f.author_device)) {
    return Reject(log, out, "an operation from outside the conversation");
  }
  if (OutWhere(log, current_at, user, f.author_device)) {
    return Reject(log, out, "an operation from a removed member or device");
  }
  auto plain = crypto::AeadOpen(epoch.key, OpAd(log.conversation_id, f), f.ciphertext);
  if (!plain.ok()) return Reject(log, out, "an operation that does not decrypt");
  auto op = wire::DecodeOperation(plain.value(), Newest());
  crypto::Wipe(&plain.value());
  // A newer Tidings wrote it: keep the frame until an upgrade reads it, so
  // the cursor passing it loses nothing.
  if (op.status().code() == Code::kFailedPrecondition) return Verdict::kTooNew;
  if (!op.ok()) return Reject(log, out, "a sealed operation that does not decode");
  if (op->op_id != f.op_id || op->author != user || op->conversation_id != log.conversation_id) {
    return Reject(log, out, "an operation whose ids or author do not match its frame");
  }
  op->server_time_ms = frame.server_time_ms;
  op->remote_id = frame.remote_id;
  out->ops.push_back(std::move(op).value());
  return Verdict::kOpened;
}

bool Session::OutWhere(const LogState& log, const EpochId& current_at, const std::string& user,
                       const std::string& device) const {
  auto out_of = [&](const Epoch& e) {
    return !Contains(e.info.members, user) || Contains(e.info.removed, device);
  };
  if (previewing_) {
    return std::any_of(log.epochs.begin(), log.epochs.end(),
                       [&](const auto& held) { return out_of(held.second); });
  }
  auto at = log.epochs.find(current_at);
  return at != log.epochs.end() && out_of(at->second);
}

Session::Verdict Session::OpenFrame(LogState& log, const sync::Frame& frame,
                                    const EpochId& current_at, const FetchDevices& fetch,
                                    OpenResult* out) {
  auto type = PeekFrameType(frame.bytes);
  if (!type.ok()) return Reject(log, out, "a frame that is not an end-to-end frame");
  switch (type.value()) {
    case FrameType::kAnnouncement:
      PinAnnouncement(log, frame, fetch, out);
      return Verdict::kIgnored;
    case FrameType::kKeyShare:
      return OpenShare(log, frame, fetch, out);
    case FrameType::kSealedOp:
      return OpenOp(log, frame, current_at, fetch, out);
  }
  return Reject(log, out, "a frame of an unknown type");
}

void Session::CheckLogMembers(LogState& log) {
  // The channel's own creator and members (Chime) are not what decides
  // membership here: a device that joined late cannot open the early epochs
  // that name the creator, and channel members are never removed. Signed
  // epochs decide; an outsider in the channel can neither open nor have a
  // frame accepted. A stranger in the member list is only noted.
  if (log.log_creator.empty() && log.log_members.empty()) return;
  std::set<std::string> known;
  for (const auto& [id, e] : log.epochs) known.insert(e.info.members.begin(), e.info.members.end());
  if (known.empty()) return;
  for (const auto& m : log.log_members) {
    if (!known.count(m)) {
      log.stranger = m;
      return;
    }
  }
  log.stranger.clear();
}

uint8_t Session::Newest() const {
  return options_.newest_operation_version ? options_.newest_operation_version
                                           : wire::kOperationVersion;
}

void Session::Replay(LogState& log, const sync::Frame& frame, bool read_before,
                     const FetchDevices& fetch, OpenResult* out) {
  auto type = PeekFrameType(frame.bytes);
  // Announcements and key shares were handled (and counted) when first
  // read. A share still tells who holds a key, and moves the re-read's
  // chain when it starts an epoch this device holds.
  if (!type.ok() || type.value() == FrameType::kAnnouncement) return;
  if (type.value() == FrameType::kKeyShare) {
    std::string body;
    auto share = DecodeKeyShare(frame.bytes, &body);
    if (!share.ok() || share->log_id != log.log_id) return;
    NoteDelivered(log, *share);
    if (auto start = EpochStart(log, frame, *share, body, fetch, out);
        start && start->number > log.reread_current.number) {
      log.reread_current = *start;
    }
    return;
  }
  const Verdict verdict = OpenFrame(log, frame, log.reread_current, fetch, out);
  if (verdict != Verdict::kPending && verdict != Verdict::kTooNew) return;
  // A frame the forward read may have kept already (read after the share).
  if (read_before && std::any_of(log.pending.begin(), log.pending.end(),
                                 [&](const auto& p) { return p.frame.bytes == frame.bytes; })) {
    return;
  }
  if (verdict == Verdict::kTooNew) {
    log.pending.push_back({frame, log.reread_current, true});
    return;
  }
  std::string body;
  auto op = DecodeSealedOp(frame.bytes, &body);
  ++log.unopened;  // waits, not kept, for a key a later share may bring
  log.unopened_top = std::max(log.unopened_top, op.ok() ? op->epoch : UINT64_MAX);
}

std::optional<EpochId> Session::EpochStart(LogState& log, const sync::Frame& frame,
                                           const KeyShareFrame& f, std::string_view body,
                                           const FetchDevices& fetch, OpenResult* out) {
  if (f.signer != f.epoch_sharer) return std::nullopt;  // a re-share
  const EpochId id{f.epoch, f.epoch_sharer};
  auto held = log.epochs.find(id);
  if (held == log.epochs.end()) return std::nullopt;  // an epoch this device cannot see
  // Signed by one of its members, under its key; as in a read in log order,
  // by a member of the epoch current there too.
  auto signer = FindDevice(f.signer, held->second.info.members, fetch, out);
  auto current = log.epochs.find(log.reread_current);
  if (!signer || (!frame.sender.empty() && frame.sender != signer->record.user) ||
      (current != log.epochs.end() &&
       !Contains(current->second.info.members, signer->record.user)) ||
      !crypto::VerifySignature(signer->record.sign_pk,
                               SigInput(kShareContext, log.conversation_id, body), f.signature) ||
      !crypto::AeadOpen(held->second.key, InfoAd(log.log_id, id), f.info).ok()) {
    return std::nullopt;
  }
  return id;
}

void Session::RetryPending(LogState& log, const FetchDevices& fetch, bool too_new,
                           OpenResult* out) {
  std::vector<PendingFrame> waiting = std::move(log.pending);
  log.pending.clear();
  for (auto& p : waiting) {
    if (p.too_new != too_new) {
      log.pending.push_back(std::move(p));
      continue;
    }
    const Verdict verdict = OpenFrame(log, p.frame, p.current_at, fetch, out);
    if (verdict == Verdict::kPending || verdict == Verdict::kTooNew) {
      p.too_new = verdict == Verdict::kTooNew;
      log.pending.push_back(std::move(p));
    }
  }
}

Result<OpenResult> Session::OpenPage(LogState& log, const sync::FramePage& page,
                                     const FetchDevices& fetch) {
  OpenResult out;
  refreshed_now_.clear();
  pinned_new_ = false;
  if (!page.log_creator.empty()) log.log_creator = page.log_creator;
  if (!page.log_members.empty()) log.log_members = page.log_members;
  CheckLogMembers(log);
  // A build that reads newer operations than the one that kept these frames
  // opens them again (after an upgrade).
  const bool upgraded = log.reader < Newest();
  log.reader = Newest();
  if (upgraded && log.too_new() > 0) RetryPending(log, fetch, /*too_new=*/true, &out);
  std::string next_cursor = page.next_cursor;
  bool reread_done = false;
  for (const auto& frame : page.frames) {
    if (log.rereading) {
      if (!log.past_share) {
        if (FrameDigest(frame) == log.replay_until) {
          log.past_share = true;
        } else {
          Replay(log, frame, /*read_before=*/false, fetch, &out);
        }
        continue;
      }
      // A listing may order frames made moments apart either side of the
      // share (Chime: visibility is not creation order): those read too.
      if (log.replay_until_ms != 0 && frame.server_time_ms != 0 &&
          frame.server_time_ms <= log.replay_until_ms + kReorderWindowMs) {
        Replay(log, frame, /*read_before=*/true, fetch, &out);
        continue;
      }
      reread_done = true;
      break;
    }
    if (!log.bound()) {
      auto type = PeekFrameType(frame.bytes);
      if (type.ok() && type.value() == FrameType::kSealedOp) {
        ++log.unopened;  // read again once a key comes
        log.unopened_top = UINT64_MAX;
        continue;
      }
    }
    const EpochId current_at = log.chain.empty() ? EpochId{} : log.chain.back();
    const bool learned_before = std::exchange(out.keys_learned, false);
    const Verdict verdict = OpenFrame(log, frame, current_at, fetch, &out);
    if (verdict == Verdict::kPending || verdict == Verdict::kTooNew) {
      log.pending.push_back({frame, current_at, verdict == Verdict::kTooNew});
    }
    if (out.keys_learned && log.unopened > 0 && BringsKeyFor(frame, log.unopened_top)) {
      // The next re-read goes up to this share.
      log.replay_until = FrameDigest(frame);
      log.replay_until_ms = frame.server_time_ms;
    }
    out.keys_learned = out.keys_learned || learned_before;
  }
  if (log.rereading && (reread_done || !page.has_more)) {
    if (!log.past_share) {
      // The server no longer has the share (or moved it): the re-read read
      // the whole log, so nothing before the share was missed.
      Reject(log, &out, "the key share a re-read of the log stops at is gone");
    }
    next_cursor = std::exchange(log.resume_cursor, {});
    log.replay_until.clear();
    log.replay_until_ms = 0;
    log.rereading = log.past_share = false;
    out.read_on = true;
  } else if (!log.rereading && !log.replay_until.empty() && !page.has_more) {
    // The forward read is at the log's end, with every key share in it so
    // far opened: now what waited for a key, from the start.
    log.rereading = true;
    log.past_share = false;
    log.reread_current = {};
    log.unopened = log.unopened_top = 0;
    log.resume_cursor = std::move(next_cursor);
    next_cursor.clear();
    out.read_on = true;
  }
  // Keys that arrived may open frames that were waiting for them.
  while (out.keys_learned && !log.pending.empty()) {
    out.keys_learned = false;
    RetryPending(log, fetch, /*too_new=*/false, &out);
  }
  if (log.pending.size() > options_.max_pending_frames) {
    const size_t drop = log.pending.size() - options_.max_pending_frames;
    log.pending.erase(log.pending.begin(), log.pending.begin() + static_cast<ptrdiff_t>(drop));
    log.dropped_pending += drop;
  }
  log.cursor = std::move(next_cursor);
  out.devices_learned = out.devices_learned || pinned_new_;
  return out;
}

Result<OpenResult> Session::PreviewPage(LogState& log, const sync::FramePage& page,
                                        bool* past_share, size_t most, const FetchDevices& fetch) {
  OpenResult out;
  refreshed_now_.clear();
  pinned_new_ = false;
  if (!PreviewDue(log)) return out;
  struct Previewing {
    bool* on;
    ~Previewing() { *on = false; }
  } previewing{&previewing_};
  previewing_ = true;
  // Newest first. What lies after the share was read (or is being read) in
  // log order already; a frame within the reorder window of it may sit
  // either side of it in another listing: both are left to the reads in
  // log order. So are frames the listing could not time.
  for (auto it = page.frames.rbegin(); it != page.frames.rend() && out.ops.size() < most; ++it) {
    const sync::Frame& frame = *it;
    if (!*past_share) {
      *past_share = FrameDigest(frame) == log.replay_until;
      continue;
    }
    if (frame.server_time_ms == 0 || frame.server_time_ms >= log.replay_until_ms ||
        log.replay_until_ms - frame.server_time_ms <= kReorderWindowMs) {
      continue;
    }
    auto type = PeekFrameType(frame.bytes);
    if (!type.ok() || type.value() != FrameType::kSealedOp) continue;
    OpenOp(log, frame, EpochId{}, fetch, &out);
  }
  // Operations opened newest first: merged in log order, as a page is.
  std::reverse(out.ops.begin(), out.ops.end());
  out.rejected = 0;
  out.devices_learned = pinned_new_;
  return out;
}

}  // namespace tidings::e2e
