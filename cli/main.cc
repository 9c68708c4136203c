// tidings: inspect and use a local Tidings store from the command line.
// Exit codes are documented in docs/cli.md and in `tidings --help`.
#include <fcntl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>

#include "cli/output.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "engine/store.h"
#include "sync/core/reconciler.h"
#include "sync/dynamodb/dynamodb_backend.h"

namespace tidings::cli {

Progress::Progress(const char* label) : label_(label), enabled_(::isatty(2) != 0) {}
Progress::~Progress() {
  if (enabled_ && last_percent_ >= 0) std::fputc('\n', stderr);
}
void Progress::Update(uint64_t done, uint64_t total) {
  if (!enabled_ || total == 0) return;
  int percent = static_cast<int>(std::min<uint64_t>(100, done * 100 / total));
  if (percent == last_percent_) return;
  last_percent_ = percent;
  int filled = percent / 5;
  std::fprintf(stderr, "\r%s [%.*s%*s] %3d%% (%llu)", label_, filled, "####################",
               20 - filled, "", percent, static_cast<unsigned long long>(done));
  std::fflush(stderr);
}

namespace {

using engine::Store;

enum Exit : int {
  kExitOk = 0,
  kExitFailure = 1,
  kExitUsage = 2,  // bad arguments or input
  kExitNotFound = 3,
  kExitKey = 4,      // wrong key, key file problems, permission
  kExitCorrupt = 5,  // corrupt or tampered data; verify found problems
  kExitBusy = 6,     // the store is held for writing by another process
  kExitUnavailable = 7,
};

int ExitCodeFor(const Status& s) {
  switch (s.code()) {
    case Code::kOk:
      return kExitOk;
    case Code::kInvalidArgument:
    case Code::kTooLarge:
    case Code::kAlreadyExists:
      return kExitUsage;
    case Code::kNotFound:
      return kExitNotFound;
    case Code::kWrongKey:
    case Code::kPermissionDenied:
    case Code::kUnauthenticated:
      return kExitKey;
    case Code::kDataLoss:
      return kExitCorrupt;
    case Code::kBusy:
      return kExitBusy;
    case Code::kUnavailable:
    case Code::kDeadlineExceeded:
    case Code::kResourceExhausted:
      return kExitUnavailable;
    default:
      return kExitFailure;
  }
}

int Fail(const Status& s) {
  std::string m = s.message();
  if (!m.empty() && m.back() != '.') m += '.';
  std::fprintf(stderr, "tidings: %s\n", m.c_str());
  return ExitCodeFor(s);
}

struct Globals {
  std::string store;
  std::string key_file;
  bool json = false;
};

std::string ReadPassphrase(const char* prompt) {
  std::fprintf(stderr, "%s", prompt);
  termios old{};
  bool tty = ::tcgetattr(0, &old) == 0;
  if (tty) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(0, TCSAFLUSH, &quiet);
  }
  std::string line;
  std::getline(std::cin, line);
  if (tty) ::tcsetattr(0, TCSAFLUSH, &old);
  std::fprintf(stderr, "\n");
  return line;
}

// Key from --key-file / TIDINGS_KEY_FILE, TIDINGS_PASSPHRASE, or a prompt.
Result<crypto::KeySource> ResolveKey(const Globals& g) {
  std::string file = g.key_file;
  if (file.empty()) {
    if (const char* f = std::getenv("TIDINGS_KEY_FILE")) file = f;
  }
  if (!file.empty()) return crypto::KeySource::KeyFile(file);
  if (const char* p = std::getenv("TIDINGS_PASSPHRASE")) return crypto::KeySource::Passphrase(p);
  if (::isatty(0)) return crypto::KeySource::Passphrase(ReadPassphrase("Passphrase: "));
  return InvalidArgument(
      "no key given: pass --key-file (or TIDINGS_KEY_FILE), or set TIDINGS_PASSPHRASE");
}

Result<std::string> StorePath(const Globals& g) {
  if (!g.store.empty()) return g.store;
  if (const char* s = std::getenv("TIDINGS_STORE")) return std::string(s);
  return InvalidArgument("no store given: pass --store or set TIDINGS_STORE");
}

Result<std::unique_ptr<Store>> OpenStore(const Globals& g, bool read_only) {
  TIDINGS_ASSIGN_OR_RETURN(std::string path, StorePath(g));
  TIDINGS_ASSIGN_OR_RETURN(crypto::KeySource key, ResolveKey(g));
  engine::StoreOptions o;
  o.read_only = read_only;
  return Store::Open(path, std::move(key), o);
}

std::string MessageJson(const engine::Message& m) {
  std::ostringstream o;
  o << "{\"id\":" << JsonString(m.id) << ",\"conversation\":" << JsonString(m.conversation_id)
    << ",\"sender\":" << JsonString(m.sender) << ",\"order\":" << JsonString(m.order.ToString())
    << ",\"time\":" << JsonString(IsoTime(m.order.millis()))
    << ",\"state\":" << JsonString(engine::MessageStateName(m.state))
    << ",\"content_type\":" << JsonString(m.content_type) << ",\"body\":" << JsonString(m.body)
    << ",\"edited\":" << (m.edited_at.IsZero() ? "false" : "true")
    << ",\"deleted\":" << (m.deleted ? "true" : "false") << ",\"reactions\":[";
  for (size_t i = 0; i < m.reactions.size(); ++i) {
    o << (i ? "," : "") << "{\"user\":" << JsonString(m.reactions[i].user)
      << ",\"reaction\":" << JsonString(m.reactions[i].reaction) << "}";
  }
  o << "],\"metadata\":{";
  bool first = true;
  for (const auto& [k, v] : m.metadata) {
    o << (first ? "" : ",") << JsonString(k) << ":" << JsonString(v);
    first = false;
  }
  o << "}";
  if (m.state == engine::MessageState::kFailed)
    o << ",\"failure\":" << JsonString(m.failure_reason);
  o << "}";
  return o.str();
}

std::string MessageLine(const engine::Message& m) {
  std::string body = m.deleted ? "(deleted)" : m.body;
  for (auto& c : body) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  std::string line = IsoTime(m.order.millis()) + "  " + m.sender + ": " + body;
  if (!m.edited_at.IsZero()) line += "  (edited)";
  for (const auto& r : m.reactions) line += "  [" + r.reaction + " " + r.user + "]";
  if (m.state != engine::MessageState::kSent) {
    line += std::string("  <") + engine::MessageStateName(m.state) + ">";
  }
  return line;
}

int CmdInit(const Globals& g, const std::string& user) {
  auto path = StorePath(g);
  if (!path.ok()) return Fail(path.status());
  crypto::KeySource key;
  std::string created_key;
  if (!g.key_file.empty() || std::getenv("TIDINGS_KEY_FILE") ||
      !std::getenv("TIDINGS_PASSPHRASE")) {
    std::string file = !g.key_file.empty()               ? g.key_file
                       : std::getenv("TIDINGS_KEY_FILE") ? std::getenv("TIDINGS_KEY_FILE")
                                                         : *path + ".key";
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0) {
      auto fresh = crypto::SecretKey::Random();
      if (!fresh.ok()) return Fail(fresh.status());
      Status s = crypto::WriteKeyFile(file, *fresh);
      if (!s.ok()) return Fail(s);
      created_key = file;
    }
    key = crypto::KeySource::KeyFile(file);
  } else {
    key = crypto::KeySource::Passphrase(std::getenv("TIDINGS_PASSPHRASE"));
  }
  engine::StoreOptions o;
  o.create_if_missing = true;
  o.error_if_exists = true;
  o.user_id = user;
  auto store = Store::Open(*path, std::move(key), o);
  if (!store.ok()) {
    if (!created_key.empty()) ::unlink(created_key.c_str());
    return Fail(store.status());
  }
  if (g.json) {
    std::printf("{\"store\":%s,\"user\":%s,\"replica\":\"%016llx\"%s}\n", JsonString(*path).c_str(),
                JsonString(user).c_str(), static_cast<unsigned long long>((*store)->replica_id()),
                created_key.empty() ? "" : (",\"key_file\":" + JsonString(created_key)).c_str());
  } else {
    std::printf("created store %s for user %s\n", path->c_str(), user.c_str());
    if (!created_key.empty()) {
      std::printf(
          "created key file %s (mode 0600): keep it safe, without it the store cannot be "
          "opened\n",
          created_key.c_str());
    }
  }
  return kExitOk;
}

int CmdSend(const Globals& g, const std::string& conv, std::string body, const std::string& type) {
  if (body == "-" || body.empty()) {
    std::ostringstream in;
    in << std::cin.rdbuf();
    body = in.str();
    if (!body.empty() && body.back() == '\n') body.pop_back();
  }
  auto store = OpenStore(g, false);
  if (!store.ok()) return Fail(store.status());
  engine::SendRequest r;
  r.conversation_id = conv;
  r.body = std::move(body);
  r.content_type = type;
  auto m = (*store)->Send(r);
  if (!m.ok()) return Fail(m.status());
  if (g.json) {
    std::printf("%s\n", MessageJson(*m).c_str());
  } else {
    std::printf("%s\n", m->id.c_str());
  }
  return kExitOk;
}

int CmdEdit(const Globals& g, const std::string& id, const std::string& body, bool del) {
  auto store = OpenStore(g, false);
  if (!store.ok()) return Fail(store.status());
  if (del) {
    Status s = (*store)->Delete(id);
    if (!s.ok()) return Fail(s);
    return kExitOk;
  }
  auto m = (*store)->Edit(id, body);
  if (!m.ok()) return Fail(m.status());
  if (g.json) std::printf("%s\n", MessageJson(*m).c_str());
  return kExitOk;
}

int CmdReact(const Globals& g, const std::string& id, const std::string& reaction, bool remove) {
  auto store = OpenStore(g, false);
  if (!store.ok()) return Fail(store.status());
  Status s = (*store)->React(id, reaction, !remove);
  return s.ok() ? kExitOk : Fail(s);
}

int CmdPutConversation(const Globals& g, const std::string& id, const std::string& title,
                       const std::vector<std::string>& members) {
  auto store = OpenStore(g, false);
  if (!store.ok()) return Fail(store.status());
  auto c = (*store)->PutConversation(id, title, members);
  return c.ok() ? kExitOk : Fail(c.status());
}

int CmdConversations(const Globals& g, size_t limit) {
  auto store = OpenStore(g, true);
  if (!store.ok()) return Fail(store.status());
  auto convs = (*store)->Conversations(limit);
  if (!convs.ok()) return Fail(convs.status());
  for (const auto& c : *convs) {
    if (g.json) {
      std::printf(
          "{\"id\":%s,\"title\":%s,\"messages\":%llu,\"unread\":%llu,\"last_activity\":%s}\n",
          JsonString(c.id).c_str(), JsonString(c.title).c_str(),
          static_cast<unsigned long long>(c.message_count),
          static_cast<unsigned long long>(c.unread_count),
          JsonString(IsoTime(c.last_order.millis())).c_str());
    } else {
      std::printf("%-30s %6llu messages %5llu unread  last %s\n", c.id.c_str(),
                  static_cast<unsigned long long>(c.message_count),
                  static_cast<unsigned long long>(c.unread_count),
                  IsoTime(c.last_order.millis()).c_str());
    }
  }
  return kExitOk;
}

std::optional<engine::OrderKey> ParseOrder(const std::string& s) {
  if (s.empty()) return std::nullopt;
  engine::OrderKey k;
  unsigned long long a = 0, b = 0;
  if (std::sscanf(s.c_str(), "%llx-%llx", &a, &b) != 2) return std::nullopt;
  k.hlc = a;
  k.replica = b;
  return k;
}

int CmdLog(const Globals& g, const std::string& conv, size_t limit, const std::string& before,
           const std::string& after) {
  engine::PageRequest req;
  req.conversation_id = conv;
  req.limit = limit;
  if (!before.empty() && !(req.before = ParseOrder(before))) {
    return Fail(InvalidArgument("--before takes an order key as printed by `log --json`"));
  }
  if (!after.empty() && !(req.after = ParseOrder(after))) {
    return Fail(InvalidArgument("--after takes an order key as printed by `log --json`"));
  }
  auto store = OpenStore(g, true);
  if (!store.ok()) return Fail(store.status());
  auto page = (*store)->Page(req);
  if (!page.ok()) return Fail(page.status());
  if (page->empty() && !(*store)->GetConversation(conv).ok()) {
    return Fail(NotFound("no conversation " + conv + " in this store"));
  }
  for (const auto& m : *page) {
    std::printf("%s\n", g.json ? MessageJson(m).c_str() : MessageLine(m).c_str());
  }
  return kExitOk;
}

int CmdOutbox(const Globals& g, const std::string& action, uint64_t seq) {
  auto store = OpenStore(g, action.empty());
  if (!store.ok()) return Fail(store.status());
  if (action == "retry") {
    Status s = (*store)->RetryFailed(seq);
    return s.ok() ? kExitOk : Fail(s);
  }
  if (action == "discard") {
    Status s = (*store)->DiscardFailed(seq);
    return s.ok() ? kExitOk : Fail(s);
  }
  auto outbox = (*store)->Outbox(0);
  if (!outbox.ok()) return Fail(outbox.status());
  for (const auto& e : *outbox) {
    if (g.json) {
      std::printf(
          "{\"seq\":%llu,\"kind\":\"%s\",\"conversation\":%s,\"message\":%s,\"attempts\":%u,"
          "\"failed\":%s,\"last_error\":%s,\"next_attempt\":%lld}\n",
          static_cast<unsigned long long>(e.seq), engine::OpKindName(e.op.kind),
          JsonString(e.op.conversation_id).c_str(), JsonString(e.op.message_id).c_str(), e.attempts,
          e.failed ? "true" : "false", JsonString(e.last_error).c_str(),
          static_cast<long long>(e.next_attempt_ms));
    } else {
      std::printf("%6llu %-11s %-24s %s attempts=%u%s%s\n", static_cast<unsigned long long>(e.seq),
                  engine::OpKindName(e.op.kind), e.op.conversation_id.c_str(),
                  e.op.message_id.c_str(), e.attempts, e.failed ? " FAILED: " : "",
                  e.failed ? e.last_error.c_str() : "");
    }
  }
  return kExitOk;
}

int CmdStats(const Globals& g) {
  auto store = OpenStore(g, true);
  if (!store.ok()) return Fail(store.status());
  auto st = (*store)->Stats();
  if (!st.ok()) return Fail(st.status());
  if (g.json) {
    std::printf(
        "{\"user\":%s,\"replica\":\"%016llx\",\"schema_version\":%u,\"messages\":%llu,"
        "\"conversations\":%llu,\"outbox\":%llu,\"outbox_failed\":%llu,\"disk_bytes\":%llu}\n",
        JsonString(st->user_id).c_str(), static_cast<unsigned long long>(st->replica_id),
        st->schema_version, static_cast<unsigned long long>(st->messages),
        static_cast<unsigned long long>(st->conversations),
        static_cast<unsigned long long>(st->outbox),
        static_cast<unsigned long long>(st->outbox_failed),
        static_cast<unsigned long long>(st->disk_bytes));
  } else {
    std::printf(
        "user           %s\nreplica        %016llx\nschema         v%u\nmessages       %llu\n"
        "conversations  %llu\noutbox         %llu (%llu failed)\ndisk           %llu bytes\n",
        st->user_id.c_str(), static_cast<unsigned long long>(st->replica_id), st->schema_version,
        static_cast<unsigned long long>(st->messages),
        static_cast<unsigned long long>(st->conversations),
        static_cast<unsigned long long>(st->outbox),
        static_cast<unsigned long long>(st->outbox_failed),
        static_cast<unsigned long long>(st->disk_bytes));
  }
  return kExitOk;
}

int CmdVerify(const Globals& g) {
  auto store = OpenStore(g, true);
  if (!store.ok()) return Fail(store.status());
  Progress progress("verify");
  auto report = (*store)->Verify([&](uint64_t d, uint64_t t) { progress.Update(d, t); });
  if (!report.ok()) return Fail(report.status());
  if (g.json) {
    std::printf("{\"records\":%llu,\"problems\":%llu}\n",
                static_cast<unsigned long long>(report->records_checked),
                static_cast<unsigned long long>(report->problems));
  } else {
    std::printf("checked %llu records: %llu problems\n",
                static_cast<unsigned long long>(report->records_checked),
                static_cast<unsigned long long>(report->problems));
  }
  for (const auto& d : report->details) std::fprintf(stderr, "tidings: problem: %s\n", d.c_str());
  if (report->problems != 0) {
    std::fprintf(stderr,
                 "tidings: the store is damaged; restore it from a backup or re-sync it.\n");
    return kExitCorrupt;
  }
  return kExitOk;
}

int CmdExport(const Globals& g, const std::string& output) {
  auto store = OpenStore(g, true);
  if (!store.ok()) return Fail(store.status());
  FILE* out = stdout;
  if (!output.empty()) {
    int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      return Fail(errno == EEXIST
                      ? AlreadyExists(output + " already exists; not overwriting it")
                      : IOError("cannot create " + output + ": " + std::strerror(errno)));
    }
    out = ::fdopen(fd, "w");
  }
  auto stats = (*store)->Stats();
  uint64_t total = stats.ok() ? stats->messages : 0, done = 0;
  Progress progress("export");
  Status s = (*store)->ForEachMessage([&](const engine::Message& m) {
    std::fprintf(out, "%s\n", MessageJson(m).c_str());
    progress.Update(++done, total);
    return Status::Ok();
  });
  if (out != stdout) std::fclose(out);
  return s.ok() ? kExitOk : Fail(s);
}

int CmdStatus(const Globals& g, const std::vector<std::string>& backends) {
  auto store = OpenStore(g, true);
  if (!store.ok()) return Fail(store.status());
  auto outbox = (*store)->Outbox(0);
  if (!outbox.ok()) return Fail(outbox.status());
  uint64_t failed = 0;
  for (const auto& e : *outbox) failed += e.failed ? 1 : 0;
  if (!g.json) {
    std::printf("outbox: %zu pending, %llu failed\n", outbox->size() - failed,
                static_cast<unsigned long long>(failed));
  }
  for (const auto& backend : backends) {
    auto statuses = sync::ReadSyncStatus(**store, backend);
    if (!statuses.ok()) return Fail(statuses.status());
    for (const auto& st : *statuses) {
      if (g.json) {
        std::printf(
            "{\"backend\":%s,\"conversation\":%s,\"cursor\":%s,\"outbox_depth\":%llu,"
            "\"last_success\":%s,\"last_error\":%s,\"next_attempt\":%s,\"stopped\":%s}\n",
            JsonString(backend).c_str(), JsonString(st.conversation_id).c_str(),
            JsonString(st.cursor).c_str(), static_cast<unsigned long long>(st.outbox_depth),
            JsonString(st.last_success_ms ? IsoTime(static_cast<uint64_t>(st.last_success_ms)) : "")
                .c_str(),
            JsonString(st.last_error).c_str(),
            JsonString(st.next_attempt_ms ? IsoTime(static_cast<uint64_t>(st.next_attempt_ms)) : "")
                .c_str(),
            st.stopped ? "true" : "false");
      } else {
        std::printf("%-9s %-24s cursor=%-10s outbox=%llu last_ok=%s%s%s%s\n", backend.c_str(),
                    st.conversation_id.c_str(), st.cursor.c_str(),
                    static_cast<unsigned long long>(st.outbox_depth),
                    st.last_success_ms ? IsoTime(static_cast<uint64_t>(st.last_success_ms)).c_str()
                                       : "never",
                    st.last_error.empty() ? "" : "  error: ", st.last_error.c_str(),
                    st.stopped ? "  STOPPED (permission lost)" : "");
      }
    }
  }
  return kExitOk;
}

struct DynamoFlags {
  std::string table;
  std::string endpoint;
  std::string region;
  dynamodb::DynamoConfig Config(const std::string& user) const {
    dynamodb::DynamoConfig c;
    c.table = !table.empty()                          ? table
              : std::getenv("TIDINGS_DYNAMODB_TABLE") ? std::getenv("TIDINGS_DYNAMODB_TABLE")
                                                      : "tidings";
    c.endpoint = endpoint;
    c.region = region;
    c.user_id = user;
    return c;
  }
};

int CmdSync(const Globals& g, const DynamoFlags& flags, int rounds) {
  auto store = OpenStore(g, false);
  if (!store.ok()) return Fail(store.status());
  auto backend = dynamodb::DynamoBackend::Create(flags.Config((*store)->user_id()));
  sync::Reconciler rec(
      store->get(), backend.get(), {},
      [] {
        return static_cast<int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
      },
      [] { return crypto::RandomU64(); });
  for (int i = 0; i < rounds; ++i) {
    Status s = rec.SyncAll();
    if (!s.ok()) return Fail(s);
  }
  auto convs = rec.Conversations();
  if (!convs.ok()) return Fail(convs.status());
  int errors = 0;
  for (const auto& c : *convs) {
    auto st = rec.GetStatus(c);
    if (!st.last_error.empty()) {
      ++errors;
      std::fprintf(stderr, "tidings: %s: %s\n", c.c_str(), st.last_error.c_str());
    }
  }
  auto outbox = (*store)->Outbox(0);
  size_t left = outbox.ok() ? outbox->size() : 0;
  if (g.json) {
    std::printf("{\"conversations\":%zu,\"outbox\":%zu,\"errors\":%d}\n", convs->size(), left,
                errors);
  } else {
    std::printf("synced %zu conversations; %zu operations still in the outbox\n", convs->size(),
                left);
  }
  return errors ? kExitUnavailable : kExitOk;
}

int CmdCreateTable(const DynamoFlags& flags) {
  auto backend = dynamodb::DynamoBackend::Create(flags.Config(""));
  Status s = backend->CreateTable();
  if (!s.ok()) return Fail(s);
  std::printf("table %s is ready\n", flags.Config("").table.c_str());
  return kExitOk;
}

}  // namespace
}  // namespace tidings::cli

int main(int argc, char** argv) {
  using namespace tidings::cli;
  CLI::App app{"tidings: an encrypted, local-first message store and sync engine"};
  app.footer(
      "Key: --key-file / TIDINGS_KEY_FILE, else TIDINGS_PASSPHRASE, else a prompt.\n"
      "Exit codes: 0 ok, 1 failure, 2 bad arguments or input, 3 not found, 4 wrong key or\n"
      "key file problem, 5 corrupt data (verify found problems), 6 store busy (held by\n"
      "another process), 7 network or service unavailable.");
  app.require_subcommand(1);
  Globals g;
  app.add_option("--store", g.store, "store directory (or TIDINGS_STORE)");
  app.add_option("--key-file", g.key_file, "key file, mode 0600 (or TIDINGS_KEY_FILE)");
  app.add_flag("--json", g.json, "print data as JSON (one object per line)");

  std::string user, conv, body = "-", type = "text/plain", id, before, after, output, action,
                          reaction;
  size_t limit = 50;
  uint64_t seq = 0;
  bool remove = false;
  int rc = kExitOk;

  auto* init =
      app.add_subcommand("init", "create a store (and a key file unless a passphrase is set)");
  init->add_option("--user", user, "the local user id")->required();
  init->callback([&] { rc = CmdInit(g, user); });

  auto* send = app.add_subcommand("send", "send a message (body from the argument or stdin)");
  send->add_option("--conversation,-c", conv, "conversation id")->required();
  send->add_option("--content-type", type, "content type");
  send->add_option("body", body, "message body; '-' or nothing reads stdin");
  send->callback([&] { rc = CmdSend(g, conv, body, type); });

  auto* edit = app.add_subcommand("edit", "edit one of your messages");
  edit->add_option("id", id, "message id")->required();
  edit->add_option("body", body, "new body")->required();
  edit->callback([&] { rc = CmdEdit(g, id, body, false); });

  auto* del = app.add_subcommand("delete", "delete one of your messages");
  del->add_option("id", id, "message id")->required();
  del->callback([&] { rc = CmdEdit(g, id, "", true); });

  auto* react = app.add_subcommand("react", "add (or --remove) a reaction");
  react->add_option("id", id, "message id")->required();
  react->add_option("reaction", reaction, "reaction, e.g. +1")->required();
  react->add_flag("--remove", remove, "remove the reaction");
  react->callback([&] { rc = CmdReact(g, id, reaction, remove); });

  std::string title;
  std::vector<std::string> members;
  auto* conv_cmd =
      app.add_subcommand("conversation", "create or update a conversation (title, members)");
  conv_cmd->add_option("id", conv, "conversation id")->required();
  conv_cmd->add_option("--title", title, "title");
  conv_cmd->add_option("--member", members, "member user id (repeat)");
  conv_cmd->callback([&] { rc = CmdPutConversation(g, conv, title, members); });

  auto* convs = app.add_subcommand("conversations", "list conversations, most recent first");
  convs->add_option("--limit", limit, "at most this many");
  convs->callback([&] { rc = CmdConversations(g, limit); });

  auto* log = app.add_subcommand("log", "print a conversation's messages in order");
  log->add_option("--conversation,-c", conv, "conversation id")->required();
  log->add_option("--limit", limit, "at most this many (the newest)");
  log->add_option("--before", before, "only messages before this order key");
  log->add_option("--after", after, "only messages after this order key");
  log->callback([&] { rc = CmdLog(g, conv, limit, before, after); });

  auto* outbox =
      app.add_subcommand("outbox", "list pending operations; retry or discard failed ones");
  outbox->add_option("action", action, "retry | discard")
      ->check(CLI::IsMember({"retry", "discard"}));
  outbox->add_option("seq", seq, "outbox sequence number");
  outbox->callback([&] {
    if (!action.empty() && seq == 0) {
      rc =
          Fail(tidings::InvalidArgument("outbox " + action + " needs the entry's sequence number"));
      return;
    }
    rc = CmdOutbox(g, action, seq);
  });

  std::vector<std::string> backends = {"dynamodb", "chime", "sim"};
  auto* status =
      app.add_subcommand("status", "sync status per conversation (works while a daemon syncs)");
  status->add_option("--backend", backends, "only these backends");
  status->callback([&] { rc = CmdStatus(g, backends); });

  DynamoFlags dynamo;
  int rounds = 2;
  auto add_dynamo_flags = [&](CLI::App* cmd) {
    cmd->add_option("--table", dynamo.table,
                    "DynamoDB table (or TIDINGS_DYNAMODB_TABLE; default tidings)");
    cmd->add_option("--endpoint", dynamo.endpoint,
                    "endpoint URL (or AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL)");
    cmd->add_option("--region", dynamo.region, "AWS region (or AWS_REGION)");
  };
  auto* sync_cmd =
      app.add_subcommand("sync", "push the outbox and pull new messages once (DynamoDB)");
  add_dynamo_flags(sync_cmd);
  sync_cmd->add_option("--rounds", rounds, "push/pull rounds (default 2)");
  sync_cmd->callback([&] { rc = CmdSync(g, dynamo, rounds); });
  auto* ddb = app.add_subcommand("dynamodb", "DynamoDB administration");
  auto* create_table =
      ddb->add_subcommand("create-table", "create the table if missing (idempotent)");
  add_dynamo_flags(create_table);
  create_table->callback([&] { rc = CmdCreateTable(dynamo); });
  ddb->require_subcommand(1);

  app.add_subcommand("stats", "counts and sizes")->callback([&] { rc = CmdStats(g); });
  app.add_subcommand("verify", "decrypt and check every record and index")->callback([&] {
    rc = CmdVerify(g);
  });
  auto* exp = app.add_subcommand("export", "all messages as JSON Lines");
  exp->add_option("--output,-o", output, "write to this file (created 0600) instead of stdout");
  exp->callback([&] { rc = CmdExport(g, output); });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }
  return rc;
}
