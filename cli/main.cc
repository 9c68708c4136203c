// tidings: use and inspect a local Tidings store from the command line.
//
// Built on the public C++ API (tidings.hpp over tidings.h) and nothing else,
// so every command is also a test of that API. Exit codes are documented in
// docs/cli.md and in `tidings --help`; errors go to stderr as
// "tidings: <what happened>. <what to do>".
#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/output.h"
#include "daemon/process_secrets.h"
#include "tidings/tidings.hpp"

namespace tidings::cli {
namespace {

// A body as JSON text when it is text (a text type and valid UTF-8), else
// byte for byte as "body_base64".
bool BodyIsText(const api::Message& m) { return IsTextType(m.content_type) && IsUtf8(m.body); }

std::string MessageJson(const api::Message& m) {
  std::ostringstream o;
  o << "{\"id\":" << JsonString(m.id) << ",\"conversation\":" << JsonString(m.conversation_id)
    << ",\"sender\":" << JsonString(m.sender) << ",\"order\":" << JsonString(m.order.ToString())
    << ",\"time\":" << JsonString(IsoTime(m.order.millis()))
    << ",\"state\":" << JsonString(api::MessageStateName(m.state))
    << ",\"content_type\":" << JsonString(m.content_type)
    << (BodyIsText(m) ? ",\"body\":" + JsonString(m.body)
                      : ",\"body_base64\":\"" + Base64(m.body) + "\"")
    << ",\"edited\":" << (m.edited_at.IsZero() ? "false" : "true")
    << ",\"deleted\":" << (m.deleted ? "true" : "false") << ",\"reactions\":[";
  for (size_t i = 0; i < m.reactions.size(); ++i) {
    o << (i ? "," : "") << "{\"user\":" << JsonString(m.reactions[i].user)
      << ",\"reaction\":" << JsonString(m.reactions[i].reaction) << "}";
  }
  o << "],\"metadata\":" << JsonObject(m.metadata) << ",\"remote_ids\":" << JsonObject(m.remote_ids)
    << ",\"attachments\":[";
  for (size_t i = 0; i < m.attachments.size(); ++i) {
    const api::Attachment& a = m.attachments[i];
    o << (i ? "," : "") << "{\"object\":" << JsonString(a.object)
      << ",\"name\":" << JsonString(a.name) << ",\"content_type\":" << JsonString(a.content_type)
      << ",\"size\":" << a.size << ",\"body\":" << (a.body ? "true" : "false") << "}";
  }
  o << "]";
  if (m.state == api::MessageState::kFailed) o << ",\"failure\":" << JsonString(m.failure_reason);
  o << "}";
  return o.str();
}

// Read markers as {"user": {"order": ..., "time": ...}}: the order is what
// `log --after` takes.
std::string ConversationJson(const api::Conversation& c) {
  std::ostringstream o;
  o << "{\"id\":" << JsonString(c.id) << ",\"title\":" << JsonString(c.title) << ",\"members\":[";
  for (size_t i = 0; i < c.members.size(); ++i) o << (i ? "," : "") << JsonString(c.members[i]);
  o << "],\"messages\":" << c.message_count << ",\"unread\":" << c.unread_count
    << ",\"last_activity\":" << JsonString(IsoTime(c.last_order.millis()))
    << ",\"last_order\":" << JsonString(c.last_order.ToString()) << ",\"read_markers\":{";
  bool first = true;
  for (const auto& [user, up_to] : c.read_markers) {
    o << (first ? "" : ",") << JsonString(user) << ":{\"order\":" << JsonString(up_to.ToString())
      << ",\"time\":" << JsonString(IsoTime(up_to.millis())) << "}";
    first = false;
  }
  o << "},\"remote_ids\":" << JsonObject(c.remote_ids) << "}";
  return o.str();
}

std::string MessageLine(const api::Message& m) {
  std::string body =
      m.deleted       ? "(deleted)"
      : BodyIsText(m) ? m.body
                      : "(" + std::to_string(m.body.size()) + " bytes of " + m.content_type + ")";
  for (auto& c : body) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  std::string line = IsoTime(m.order.millis()) + "  " + m.sender + ": " + body;
  if (!m.edited_at.IsZero()) line += "  (edited)";
  for (const auto& r : m.reactions) line += "  [" + r.reaction + " " + r.user + "]";
  // The object's first 12 hex digits name it for `tidings fetch` in a glance;
  // `attachments` and --json have it whole.
  for (const auto& a : m.attachments) {
    if (a.body) {  // the text itself, sent as a file: shown once fetched
      if (m.body.empty() && !m.deleted) line += "(a long message, not fetched yet)";
      continue;
    }
    line += "  [file " + a.name + ", " + std::to_string(a.size) + " bytes, " +
            a.object.substr(0, 12) + "]";
  }
  if (m.state != api::MessageState::kSent) {
    line += std::string("  <") + api::MessageStateName(m.state) + ">";
  }
  return line;
}

// After a write the daemon made for us: the id, or with --json the message
// as the store has it now (a read-only open sees the daemon's commit).
int PrintWritten(const Globals& g, const std::string& id) {
  if (!g.json) {
    std::printf("%s\n", id.c_str());
    return kExitOk;
  }
  auto store = OpenStore(g, Access::kRead);
  if (!store.ok()) return Fail(store.status());
  auto m = store->Get(id);
  if (!m.ok()) return Fail(m.status());
  std::printf("%s\n", MessageJson(*m).c_str());
  return kExitOk;
}

int CmdInit(const Globals& g, const std::string& user, bool passphrase,
            const std::string& profile_name) {
  auto path = StorePath(g);
  if (!path.ok()) return Fail(path.status());
  std::string key_file = KeyFilePath(g);
  bool use_passphrase = key_file.empty() && (passphrase || daemon::EnvPassphrase());
  std::string created_key;
  std::optional<api::Key> key;
  if (use_passphrase) {
    auto k = NewPassphrase();
    if (!k.ok()) return Fail(k.status());
    key.emplace(std::move(k).value());
  } else {
    // Beside the store, not inside it: the key must not travel with a copy
    // of the store directory.
    if (key_file.empty()) key_file = DefaultKeyFile(*path);
    struct stat st {};
    if (::stat(key_file.c_str(), &st) != 0) {
      api::Status s = api::CreateKeyFile(key_file);
      if (!s.ok()) return Fail(s);
      created_key = key_file;
    }
    key.emplace(api::Key::File(key_file));
  }
  auto profile = ParseProfile(profile_name);
  if (!profile.ok()) return Fail(profile.status());
  api::OpenOptions options;
  options.create_if_missing = true;
  options.error_if_exists = true;
  options.user_id = user;
  options.passphrase_profile = *profile;
  auto store = api::Store::Open(*path, *key, options);
  if (!store.ok()) {
    if (!created_key.empty()) ::unlink(created_key.c_str());
    return Fail(store.status());
  }
  auto st = store->GetStats();
  if (!st.ok()) return Fail(st.status());
  if (g.json) {
    std::printf("{\"store\":%s,\"user\":%s,\"replica\":\"%016llx\"%s}\n", JsonString(*path).c_str(),
                JsonString(user).c_str(), static_cast<unsigned long long>(st->replica_id),
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

// A text body must be UTF-8: anything else would be stored as text it is not.
api::Status CheckBody(std::string_view body, const std::string& type) {
  if (!IsTextType(type) || IsUtf8(body)) return api::Status();
  return Usage("the body is not valid UTF-8, but its content type " + type +
               " is text. Convert it to UTF-8, or pass --content-type "
               "application/octet-stream (or the data's real type) to send it as bytes");
}

// A body given as '-' comes from stdin, so message text need not be in argv
// (where `ps` shows it to other users). The newline a shell or editor ends
// text with is dropped; bytes are kept as they are.
std::string ReadBodyFromStdin(bool text) {
  std::ostringstream in;
  in << std::cin.rdbuf();
  std::string body = in.str();
  if (text && !body.empty() && body.back() == '\n') body.pop_back();
  return body;
}

// The files of `send --attach`, as absolute paths (a daemon reads them from
// its own working directory); named by their base names.
api::Result<std::vector<std::string>> AttachPaths(const std::vector<std::string>& files) {
  std::vector<std::string> out;
  for (const auto& f : files) {
    std::error_code ec;
    std::string path = std::filesystem::absolute(f, ec).string();
    if (ec || path.find('\n') != std::string::npos) {
      return Usage(
          "an attachment's path cannot be used (it holds a newline, or the working "
          "directory is gone): rename or move the file");
    }
    out.push_back(std::move(path));
  }
  return out;
}

int CmdSend(const Globals& g, const std::string& conv, std::string body, const std::string& type,
            const std::vector<std::string>& attach) {
  // With files, an absent body is empty rather than read from stdin.
  if (body == "-" || (body.empty() && attach.empty())) body = ReadBodyFromStdin(IsTextType(type));
  if (api::Status s = CheckBody(body, type); !s.ok()) return Fail(s);
  auto paths = AttachPaths(attach);
  if (!paths.ok()) return Fail(paths.status());
  auto store = OpenStore(g, Access::kWrite);
  if (!store.ok()) {
    std::string id;
    int rc;
    std::string joined;
    for (const auto& p : *paths) joined += (joined.empty() ? "" : "\n") + p;
    std::vector<std::pair<std::string, std::string>> request = {
        {"op", "send"}, {"conversation", conv}, {"body", body}, {"content_type", type}};
    if (!joined.empty()) request.emplace_back("attach", joined);
    if (!TryDaemon(g, store.status(), request, &id, &rc)) return Fail(store.status());
    if (rc == kExitOk) rc = PrintWritten(g, id);
    return rc;
  }
  api::SendRequest r;
  r.conversation_id = conv;
  r.body = std::move(body);
  r.content_type = type;
  for (const auto& p : *paths) {
    r.attachments.push_back({.path = p, .name = std::filesystem::path(p).filename().string()});
  }
  Progress progress("encrypting");
  if (!r.attachments.empty()) {
    r.progress = [&](uint64_t done, uint64_t total) {
      progress.Update(done, total);
      return true;
    };
  }
  auto m = store->Send(r);
  if (!m.ok()) return Fail(m.status());
  std::printf("%s\n", g.json ? MessageJson(*m).c_str() : m->id.c_str());
  return kExitOk;
}

int CmdEdit(const Globals& g, const std::string& id, std::string body) {
  if (body == "-") {
    std::string in = ReadBodyFromStdin(/*text=*/false);
    body = IsUtf8(in) && !in.empty() && in.back() == '\n' ? in.substr(0, in.size() - 1) : in;
  }
  if (!IsUtf8(body)) {
    // Only a message of a binary type may take bytes that are not UTF-8.
    auto reader = OpenStore(g, Access::kRead);
    if (!reader.ok()) return Fail(reader.status());
    auto m = reader->Get(id);
    if (!m.ok()) return Fail(m.status());
    if (api::Status s = CheckBody(body, m->content_type); !s.ok()) return Fail(s);
  }
  auto store = OpenStore(g, Access::kWrite);
  if (!store.ok()) {
    int rc;
    if (!TryDaemon(g, store.status(), {{"op", "edit"}, {"id", id}, {"body", body}}, nullptr, &rc)) {
      return Fail(store.status());
    }
    if (rc == kExitOk && g.json) rc = PrintWritten(g, id);
    return rc;
  }
  auto m = store->Edit(id, body);
  if (!m.ok()) return Fail(m.status());
  if (g.json) std::printf("%s\n", MessageJson(*m).c_str());
  return kExitOk;
}

int CmdDelete(const Globals& g, const std::string& id) {
  auto store = OpenStore(g, Access::kWrite);
  if (!store.ok()) return ViaDaemonOrFail(g, store.status(), {{"op", "delete"}, {"id", id}});
  api::Status s = store->Delete(id);
  return s.ok() ? kExitOk : Fail(s);
}

int CmdReact(const Globals& g, const std::string& id, const std::string& reaction, bool remove) {
  auto store = OpenStore(g, Access::kWrite);
  if (!store.ok()) {
    return ViaDaemonOrFail(
        g, store.status(),
        {{"op", "react"}, {"id", id}, {"reaction", reaction}, {"remove", remove ? "1" : "0"}});
  }
  api::Status s = store->React(id, reaction, !remove);
  return s.ok() ? kExitOk : Fail(s);
}

int CmdMarkRead(const Globals& g, const std::string& conv) {
  auto store = OpenStore(g, Access::kWrite);
  if (!store.ok()) {
    return ViaDaemonOrFail(g, store.status(), {{"op", "mark-read"}, {"conversation", conv}});
  }
  auto c = store->GetConversation(conv);
  if (!c.ok()) return Fail(c.status());
  api::Status s = store->MarkRead(conv, c->last_order);
  return s.ok() ? kExitOk : Fail(s);
}

int CmdPutConversation(const Globals& g, const std::string& id, const std::string& title,
                       const std::vector<std::string>& members) {
  auto store = OpenStore(g, Access::kWrite);
  if (!store.ok()) {
    std::vector<std::pair<std::string, std::string>> req = {
        {"op", "conversation"}, {"id", id}, {"title", title}};
    for (const auto& m : members) req.emplace_back("member", m);
    return ViaDaemonOrFail(g, store.status(), req);
  }
  api::Status s = store->PutConversation(id, title, members);
  return s.ok() ? kExitOk : Fail(s);
}

int CmdConversations(const Globals& g, size_t limit) {
  auto store = OpenStore(g, Access::kRead);
  if (!store.ok()) return Fail(store.status());
  auto convs = store->Conversations(limit);
  if (!convs.ok()) return Fail(convs.status());
  for (const auto& c : *convs) {
    if (g.json) {
      std::printf("%s\n", ConversationJson(c).c_str());
    } else {
      std::printf("%-30s %6llu messages %5llu unread  last %s\n", c.id.c_str(),
                  static_cast<unsigned long long>(c.message_count),
                  static_cast<unsigned long long>(c.unread_count),
                  IsoTime(c.last_order.millis()).c_str());
    }
  }
  return kExitOk;
}

int CmdLog(const Globals& g, const std::string& conv, size_t limit, const std::string& before,
           const std::string& after) {
  std::optional<api::OrderKey> b, a;
  if (!before.empty() && !(b = api::OrderKey::Parse(before))) {
    return Fail(Usage("--before takes an order key as printed by `tidings --json log`"));
  }
  if (!after.empty() && !(a = api::OrderKey::Parse(after))) {
    return Fail(Usage("--after takes an order key as printed by `tidings --json log`"));
  }
  if (a && b) return Fail(Usage("give at most one of --before and --after"));
  auto store = OpenStore(g, Access::kRead);
  if (!store.ok()) return Fail(store.status());
  auto page = b   ? store->Before(conv, *b, limit)
              : a ? store->After(conv, *a, limit)
                  : store->Newest(conv, limit);
  if (page.status().code() == TIDINGS_NOT_FOUND) {
    return Fail(api::Status(TIDINGS_NOT_FOUND, "no conversation " + conv +
                                                   " in this store. List them with `tidings "
                                                   "conversations`"));
  }
  if (!page.ok()) return Fail(page.status());
  for (const auto& m : *page) {
    std::printf("%s\n", g.json ? MessageJson(m).c_str() : MessageLine(m).c_str());
  }
  return kExitOk;
}

int CmdOutbox(const Globals& g) {
  auto store = OpenStore(g, Access::kRead);
  if (!store.ok()) return Fail(store.status());
  auto outbox = store->Outbox();
  if (!outbox.ok()) return Fail(outbox.status());
  for (const auto& e : *outbox) {
    if (g.json) {
      std::printf(
          "{\"seq\":%llu,\"kind\":\"%s\",\"conversation\":%s,\"message\":%s,\"attempts\":%u,"
          "\"failed\":%s,\"last_error\":%s,\"next_attempt\":%lld}\n",
          static_cast<unsigned long long>(e.seq), e.kind_name(),
          JsonString(e.conversation_id).c_str(), JsonString(e.message_id).c_str(), e.attempts,
          e.failed ? "true" : "false", JsonString(e.last_error).c_str(),
          static_cast<long long>(e.next_attempt_ms));
    } else {
      std::printf("%6llu %-11s %-24s %s attempts=%u%s%s\n", static_cast<unsigned long long>(e.seq),
                  e.kind_name(), e.conversation_id.c_str(), e.message_id.c_str(), e.attempts,
                  e.failed ? " FAILED: " : "", e.failed ? e.last_error.c_str() : "");
    }
  }
  return kExitOk;
}

int CmdOutboxAction(const Globals& g, const std::string& action, uint64_t seq) {
  auto store = OpenStore(g, Access::kWrite);
  api::Status s;
  if (!store.ok()) {
    int rc;
    if (!TryDaemon(g, store.status(), {{"op", "outbox-" + action}, {"seq", std::to_string(seq)}},
                   nullptr, &rc)) {
      return Fail(store.status());
    }
    if (rc != kExitOk) return rc;
  } else {
    s = action == "retry" ? store->RetryFailed(seq) : store->DiscardFailed(seq);
  }
  if (!s.ok()) return Fail(s);
  if (!g.json) {
    std::printf("%s outbox entry %llu\n", action == "retry" ? "requeued" : "discarded",
                static_cast<unsigned long long>(seq));
  }
  return kExitOk;
}

int CmdStats(const Globals& g) {
  auto store = OpenStore(g, Access::kRead);
  if (!store.ok()) return Fail(store.status());
  auto st = store->GetStats();
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
  auto store = OpenStore(g, Access::kRead);
  if (!store.ok()) return Fail(store.status());
  Progress progress("verify");
  auto report = store->Verify([&](uint64_t d, uint64_t t) { progress.Update(d, t); });
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
                 "tidings: the store is damaged. Restore it from a backup or re-sync it into a "
                 "new store.\n");
    return kExitCorrupt;
  }
  return kExitOk;
}

int CmdExport(const Globals& g, const std::string& output) {
  auto store = OpenStore(g, Access::kRead);
  if (!store.ok()) return Fail(store.status());
  FILE* out = stdout;
  if (::isatty(2)) {
    std::fprintf(stderr,
                 "tidings: warning: export writes every message as plaintext. For a copy that "
                 "stays encrypted, use `tidings backup FILE`\n");
  }
  if (!output.empty()) {
    // 0600 and never over an existing file: an export is plaintext.
    int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      return Fail(errno == EEXIST
                      ? api::Status(TIDINGS_ALREADY_EXISTS,
                                    output + " already exists. Choose another --output file")
                      : api::Status(TIDINGS_IO_ERROR,
                                    "cannot create " + output + ": " + std::strerror(errno)));
    }
    out = ::fdopen(fd, "w");
  }
  auto stats = store->GetStats();
  uint64_t total = stats.ok() ? stats->messages : 0, done = 0;
  Progress progress("export");
  api::Status s = store->ForEachMessage([&](const api::Message& m) {
    std::fprintf(out, "%s\n", MessageJson(m).c_str());
    progress.Update(++done, total);
    return true;
  });
  bool write_failed = std::ferror(out) != 0;
  if (out != stdout) write_failed = std::fclose(out) != 0 || write_failed;
  if (!s.ok()) return Fail(s);
  if (write_failed) {
    return Fail(api::Status(TIDINGS_IO_ERROR, "writing the export failed. Check free space"));
  }
  return kExitOk;
}

}  // namespace
}  // namespace tidings::cli

// Long, and on purpose: the table of subcommands, one short block each, in the
// order --help lists them (the commands themselves are the Cmd* functions).
int main(int argc, char** argv) {
  using namespace tidings::cli;
  // Before any secret is read, and before any thread (the daemon's too).
  tidings::daemon::WipeFreedMemoryInDaemon(argc, argv);
  tidings::daemon::DisableCoreDumps();
  tidings::daemon::TakeEnvPassphrase();
  // On failure (no locked memory) they stay in the environment and are used from there.
  tidings::daemon::TakeEnvAwsSecrets().IgnoreError();
  // glibc raises its mmap threshold to the size of each large block freed,
  // after which such blocks (HTTP bodies, memtable arena blocks) stay in
  // the heap when freed: fixed at its default, a 100,000-message backfill
  // peaks ~14 MB lower (docs/engine.md, "Memory").
  mallopt(M_MMAP_THRESHOLD, 128 << 10);
  CLI::App app{"tidings: an encrypted, local-first message store and sync engine"};
  app.footer(
      "Store: --store or TIDINGS_STORE. Key: --key-file or TIDINGS_KEY_FILE, else\n"
      "TIDINGS_PASSPHRASE, else <store>.key (made by init), else a prompt on the\n"
      "terminal (secrets are never taken as arguments). Read-only commands\n"
      "(conversations, log, search, outbox, stats, verify, export, status) also work\n"
      "while another process holds the store.\n"
      "Exit codes: 0 ok, 1 failure, 2 bad arguments or input, 3 not found, 4 wrong key\n"
      "or key file problem, 5 corrupt data (verify found problems), 6 store busy (held\n"
      "by another process), 7 network or service unavailable. See docs/cli.md.");
  app.require_subcommand(1);
  Globals g;
  app.add_option("--store", g.store, "store directory (or TIDINGS_STORE)");
  app.add_option("--key-file", g.key_file, "key file, mode 0600 (or TIDINGS_KEY_FILE)");
  app.add_flag("--json", g.json, "print data as JSON (one object per line)");

  std::string user, conv, body = "-", type = "text/plain", id, before, after, output, action,
                          reaction;
  size_t limit = 50;
  uint64_t seq = 0;
  bool remove = false, passphrase = false;
  int rc = kExitOk;

  auto* init = app.add_subcommand(
      "init",
      "create a store, with a new key file beside it (<store>.key) unless --key-file "
      "names one or a passphrase is used");
  init->add_option("--user", user, "the local user id")->required();
  init->add_flag("--passphrase", passphrase,
                 "protect the store with a passphrase (TIDINGS_PASSPHRASE, or asked twice)");
  std::string profile;
  init->add_option("--passphrase-profile", profile,
                   "Argon2id limits: interactive (default; phones), moderate (kiosks) or "
                   "sensitive (servers)");
  init->callback([&] { rc = CmdInit(g, user, passphrase, profile); });

  auto* send = app.add_subcommand("send", "send a message (body from the argument or stdin)");
  send->add_option("--conversation,-c", conv, "conversation id")->required();
  send->add_option("--content-type", type, "content type");
  send->add_option("body", body, "message body; '-' or nothing reads stdin");
  static std::vector<std::string> attach;
  send->add_option("--attach,-a", attach,
                   "send this file with it (repeat for several; uploaded to S3 by sync, see "
                   "docs/attachments.md)")
      ->allow_extra_args(false);
  send->callback([&] { rc = CmdSend(g, conv, body, type, attach); });

  auto* edit = app.add_subcommand("edit", "edit one of your messages");
  edit->add_option("id", id, "message id")->required();
  edit->add_option("body", body, "new body; '-' or nothing reads stdin");
  edit->callback([&] { rc = CmdEdit(g, id, body); });

  auto* del = app.add_subcommand("delete", "delete one of your messages");
  del->add_option("id", id, "message id")->required();
  del->callback([&] { rc = CmdDelete(g, id); });

  auto* react = app.add_subcommand("react", "add (or --remove) a reaction");
  react->add_option("id", id, "message id")->required();
  react->add_option("reaction", reaction, "reaction, e.g. +1")->required();
  react->add_flag("--remove", remove, "remove the reaction");
  react->callback([&] { rc = CmdReact(g, id, reaction, remove); });

  auto* mark_read =
      app.add_subcommand("mark-read", "mark a conversation read up to its newest message");
  mark_read->add_option("--conversation,-c", conv, "conversation id")->required();
  mark_read->callback([&] { rc = CmdMarkRead(g, conv); });

  std::string title;
  std::vector<std::string> members;
  auto* conv_cmd = app.add_subcommand(
      "conversation", "create or update a conversation (title, members); create, upgrade");
  conv_cmd->add_option("id", conv, "conversation id");
  conv_cmd->add_option("--title", title, "title");
  conv_cmd->add_option("--member", members, "member user id (repeat)");
  AddConversationCommands(*conv_cmd, g, rc);
  conv_cmd->callback([&] {
    if (!conv_cmd->get_subcommands().empty()) return;
    rc = conv.empty() ? Fail(Usage("give a conversation id, or `create ID` / `upgrade ID`"))
                      : CmdPutConversation(g, conv, title, members);
  });

  auto* convs = app.add_subcommand("conversations", "list conversations, most recent first");
  convs->add_option("--limit", limit, "at most this many (0: all)");
  convs->callback([&] { rc = CmdConversations(g, limit); });

  auto* log = app.add_subcommand("log", "print a conversation's messages in order");
  log->add_option("--conversation,-c", conv, "conversation id")->required();
  log->add_option("--limit", limit, "at most this many (the newest, or the nearest)");
  log->add_option("--before", before, "only messages before this order key (from --json)");
  log->add_option("--after", after, "only messages after this order key (from --json)");
  log->callback([&] { rc = CmdLog(g, conv, limit, before, after); });

  auto* outbox =
      app.add_subcommand("outbox", "list pending operations; retry or discard failed ones");
  auto* retry = outbox->add_subcommand("retry", "put a failed entry back in line");
  retry->add_option("seq", seq, "outbox sequence number (from `tidings outbox`)")->required();
  retry->callback([&] { rc = CmdOutboxAction(g, "retry", seq); });
  auto* discard = outbox->add_subcommand("discard", "drop a failed entry");
  discard->add_option("seq", seq, "outbox sequence number (from `tidings outbox`)")->required();
  discard->callback([&] { rc = CmdOutboxAction(g, "discard", seq); });
  outbox->callback([&] {
    if (outbox->get_subcommands().empty()) rc = CmdOutbox(g);
  });

  app.add_subcommand("stats", "counts and sizes")->callback([&] { rc = CmdStats(g); });
  app.add_subcommand("verify", "decrypt and check every record and index; exit 5 on problems")
      ->callback([&] { rc = CmdVerify(g); });
  auto* exp = app.add_subcommand("export", "all messages as JSON Lines (plaintext!)");
  exp->add_option("--output,-o", output, "write to this new file (mode 0600) instead of stdout");
  exp->callback([&] { rc = CmdExport(g, output); });

  AddSyncCommands(app, g, rc);
  AddKeysCommands(app, g, rc);
  AddBackupCommands(app, g, rc);
  AddDaemonCommand(app, g, rc);
  AddRekeyCommand(app, g, rc);
  AddRetentionCommand(app, g, rc);
  AddSearchCommand(app, g, rc);
  AddAttachmentCommands(app, g, rc);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    while (!what.empty() && (what.back() == '.' || what.back() == '\n')) what.pop_back();
    std::fprintf(stderr, "tidings: %s. Run `tidings --help` for usage.\n", what.c_str());
    return kExitUsage;
  }
  return rc;
}
