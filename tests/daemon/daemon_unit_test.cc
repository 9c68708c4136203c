// Unit tests of the daemon's pieces that need no server: configuration
// parsing and validation, the socket protocol's framing, MACs and Execute,
// the metrics page. Like the daemon, they use only the public API.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>

#include "daemon/client.h"
#include "daemon/config.h"
#include "daemon/metrics.h"
#include "daemon/protocol.h"
#include "tests/api/api_test_util.h"
#include "tests/daemon/daemon_test_util.h"

namespace tidings::daemon {
namespace {

EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name, std::string* value) {
    auto it = vars.find(name);
    if (it == vars.end()) return false;
    *value = it->second;
    return true;
  };
}

const uint8_t kKey[TIDINGS_KEY_SIZE] = {7};

api::Store NewStore(const std::string& path) { return daemon::NewStore(path, kKey); }

Result<DaemonConfig> Parse(const std::string& text, std::map<std::string, std::string> env = {}) {
  return ParseConfig(text, "d.toml", Env(std::move(env)));
}

TEST(DaemonConfig, DefaultsAndValues) {
  auto c = Parse(
      "[store]\npath = \"/s\"\n[sync]\nbackends = [\"chime\", \"dynamodb\"]\n"
      "active_poll_ms = 300\n[chime]\napp_instance_arn = \"arn:aws:chime:x\"\n"
      "user_arn = \"arn:aws:chime:y\"\n[metrics]\nlisten = \"[::1]:0\"\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->store_path, "/s");
  EXPECT_EQ(c->backends, (std::vector<std::string>{"chime", "dynamodb"}));
  EXPECT_EQ(c->active_poll_ms, 300);
  EXPECT_EQ(c->idle_poll_ms, 60'000);
  EXPECT_EQ(c->log_format, "text");
  EXPECT_TRUE(c->socket_enabled);
  EXPECT_EQ(c->attachment_quota_mb, 1024);
  auto quota = Parse("[store]\nattachment_quota_mb = 0\n");
  ASSERT_TRUE(quota.ok()) << quota.status().ToString();
  EXPECT_EQ(quota->attachment_quota_mb, 0);
  auto negative = Parse("[store]\nattachment_quota_mb = -1\n");
  ASSERT_FALSE(negative.ok());
  EXPECT_NE(negative.status().message().find("attachment_quota_mb"), std::string::npos)
      << negative.status().ToString();
}

// The CLI waits for the daemon's answer to a send with files long enough for
// the daemon to encrypt them on a slow device, not a flat 30 s.
TEST(DaemonClient, ASendWithBigFilesWaitsLongerForItsAnswer) {
  testing::TempDir dir;
  const std::string big = dir.path() + "/big.bin";
  {
    std::FILE* f = std::fopen(big.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(::ftruncate(::fileno(f), 500'000'000), 0);  // sparse: no disk used
    std::fclose(f);
  }
  Fields plain{{"op", "send"}, {"conversation", "c"}, {"body", "hi"}};
  EXPECT_EQ(AnswerWaitMs(plain), 30'000);
  Fields with_file = plain;
  with_file.Add("attach", big + "\n" + dir.path() + "/missing.bin");
  EXPECT_EQ(AnswerWaitMs(with_file), 30'000 + 100'000) << "500 MB at 5 MB/s";
  Fields edit{{"op", "edit"}, {"attach", big}};
  EXPECT_EQ(AnswerWaitMs(edit), 30'000);
}

TEST(DaemonConfig, EnvironmentOverridesTheFile) {
  auto c =
      Parse("[sync]\nactive_poll_ms = 300\n", {{"TIDINGS_DAEMON_SYNC_ACTIVE_POLL_MS", "400"},
                                               {"TIDINGS_DAEMON_SYNC_BACKENDS", " dynamodb "},
                                               {"TIDINGS_DAEMON_METRICS_LISTEN", "127.0.0.1:9464"},
                                               {"TIDINGS_DAEMON_SOCKET_ENABLED", "false"},
                                               {"TIDINGS_DAEMON_LOG_FORMAT", "json"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->active_poll_ms, 400);
  EXPECT_EQ(c->backends, std::vector<std::string>{"dynamodb"});
  EXPECT_EQ(c->metrics_listen, "127.0.0.1:9464");
  EXPECT_FALSE(c->socket_enabled);
  EXPECT_EQ(c->log_format, "json");
  EXPECT_EQ(EnvName("metrics", "listen"), "TIDINGS_DAEMON_METRICS_LISTEN");
}

TEST(DaemonConfig, ErrorsNameTheLineTheKeyAndTheFix) {
  struct Case {
    std::string text;
    std::map<std::string, std::string> env;
    std::vector<std::string> must;
  };
  const std::vector<Case> cases = {
      {"[sync]\n\nfoo = 1\n", {}, {"d.toml:3:", "unknown key sync.foo", "active_poll_ms"}},
      {"[nope]\n", {}, {"d.toml:1:", "unknown section [nope]", "[sync]"}},
      {"sync = 3\n", {}, {"d.toml:1:", "must be a section"}},
      {"[sync]\nidle_poll_ms = true\n", {}, {"d.toml:2:", "sync.idle_poll_ms must be an integer"}},
      {"[sync]\nidle_poll_ms = 10\n", {}, {"between 50 and"}},
      {"[sync]\nbackends = []\n", {}, {"at least one backend"}},
      {"[sync]\nbackends = [\"dynamodb\", \"dynamodb\"]\n", {}, {"twice"}},
      {"[sync]\nactive_poll_ms = 5000\nidle_poll_ms = 1000\n", {}, {"idle_poll_ms >= active"}},
      {"[sync]\nbackends = [\"chime\"]\n", {}, {"chime.app_instance_arn", "[chime]"}},
      {"[log]\nlevel = \"loud\"\n", {}, {"log.level must be one of", "\"debug\""}},
      {"[dynamodb]\nendpoint = \"ftp://x\"\n", {}, {"https://"}},
      {"[metrics]\nlisten = \"10.0.0.1:9464\"\n", {}, {"not a loopback", "allow_non_loopback"}},
      {"[metrics]\nlisten = \"127.0.0.1\"\n", {}, {"HOST:PORT"}},
      {"[metrics]\nlisten = \"127.0.0.1:70000\"\n", {}, {"valid port"}},
      {"[sync\n", {}, {"d.toml:1:", "TOML"}},
      {"",
       {{"TIDINGS_DAEMON_SOCKET_ENABLED", "maybe"}},
       {"TIDINGS_DAEMON_SOCKET_ENABLED", "true or false"}},
      {"", {{"TIDINGS_DAEMON_SYNC_BACKENDS", "s3"}}, {"TIDINGS_DAEMON_SYNC_BACKENDS", "\"s3\""}},
  };
  for (const auto& k : cases) {
    auto c = Parse(k.text, k.env);
    ASSERT_FALSE(c.ok()) << k.text;
    EXPECT_EQ(c.status().code(), Code::kInvalidArgument) << k.text;
    for (const auto& m : k.must) {
      EXPECT_NE(c.status().message().find(m), std::string::npos)
          << "input: " << k.text << "\nmessage: " << c.status().message() << "\nlacks: " << m;
    }
  }
  // Non-loopback is allowed when said so explicitly.
  EXPECT_TRUE(Parse("[metrics]\nlisten = \"0.0.0.0:0\"\nallow_non_loopback = true\n").ok());
}

TEST(DaemonConfig, MissingFileSaysWhichAndWhatToDo) {
  auto c = LoadConfig("/nonexistent/daemon.toml", Env({}));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("/nonexistent/daemon.toml"), std::string::npos);
  EXPECT_NE(c.status().message().find("example.toml"), std::string::npos);
}

TEST(DaemonConfig, ParseListen) {
  auto a = ParseListen("127.0.0.1:0");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->loopback);
  EXPECT_EQ(a->port, 0);
  auto b = ParseListen("[::1]:9464");
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->loopback);
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 9464);
  EXPECT_TRUE(ParseListen("localhost:1")->loopback);
  EXPECT_TRUE(ParseListen("127.9.9.9:1")->loopback);
  EXPECT_FALSE(ParseListen("192.168.1.2:1")->loopback);
  EXPECT_FALSE(ParseListen("[::]:1")->loopback);
  EXPECT_FALSE(ParseListen("example.com:80").ok());
  EXPECT_FALSE(ParseListen(":80").ok());
  EXPECT_FALSE(ParseListen("127.0.0.1:-1").ok());
}

TEST(DaemonProtocol, FieldsRoundTripAndMalformedInputIsRefused) {
  Fields f{{"op", "send"}, {"body", std::string("a\0b", 3)}, {"member", "x"}, {"member", "y"}};
  Fields back;
  ASSERT_TRUE(DecodeFields(EncodeFields(f), &back));
  EXPECT_EQ(back.items(), f.items());
  EXPECT_EQ(back.All("member"), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(back.Get("absent"), "");
  std::string enc = EncodeFields(f);
  for (size_t cut = 1; cut < enc.size(); ++cut) {
    Fields partial;
    std::string truncated = enc.substr(0, cut);
    // Every strict prefix that ends inside a field is refused, never read past.
    if (DecodeFields(truncated, &partial)) {
      EXPECT_LT(partial.items().size(), f.items().size());
    }
  }
}

TEST(DaemonProtocol, FramesOverASocketAndOversizedFramesRefused) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  ASSERT_TRUE(WriteFrame(sv[0], Fields{{"op", "poke"}}).ok());
  auto f = ReadFrame(sv[1]);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->Get("op"), "poke");
  const unsigned char huge[4] = {0x7f, 0xff, 0xff, 0xff};
  ASSERT_EQ(::write(sv[0], huge, 4), 4);
  EXPECT_EQ(ReadFrame(sv[1]).status().code(), Code::kInvalidArgument);
  ::close(sv[0]);
  EXPECT_EQ(ReadFrame(sv[1]).status().code(), Code::kUnavailable);
  ::close(sv[1]);
}

TEST(DaemonProtocol, MacsDependOnRoleNoncesAndTheStoresSecret) {
  apitest::TempDir dir;
  api::Store s1 = NewStore(dir / "s1");
  api::Store s2 = NewStore(dir / "s2");
  const std::string n1(32, '1'), n2(32, '2');
  // No secret before the daemon rotates one in: retry later.
  EXPECT_EQ(AuthMac(s1, "client", n1, n2).status().code(), Code::kUnavailable);
  ASSERT_TRUE(api::RotateAuthSecret(s1).ok());
  ASSERT_TRUE(api::RotateAuthSecret(s2).ok());
  auto mac = [](api::Store& s, const char* role, const std::string& a, const std::string& b) {
    auto m = AuthMac(s, role, a, b);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? *m : std::string();
  };
  const std::string first = mac(s1, "client", n1, n2);
  EXPECT_EQ(first.size(), 32u);
  EXPECT_TRUE(SameMac(first, mac(s1, "client", n1, n2)));
  EXPECT_FALSE(SameMac(first, mac(s1, "server", n1, n2)));
  EXPECT_FALSE(SameMac(first, mac(s1, "client", n2, n1)));
  EXPECT_FALSE(SameMac(first, mac(s2, "client", n1, n2)));  // another store's secret
  // A restarted daemon rotates: old MACs no longer match.
  ASSERT_TRUE(api::RotateAuthSecret(s1).ok());
  EXPECT_FALSE(SameMac(first, mac(s1, "client", n1, n2)));
  EXPECT_FALSE(SameMac(first, first.substr(0, 31)));
  EXPECT_EQ(NewNonce().size(), kNonceBytes);
  EXPECT_NE(NewNonce(), NewNonce());
}

TEST(DaemonProtocol, ExecuteRunsWritesAndDeduplicatesARetriedSend) {
  apitest::TempDir dir;
  api::Store s = NewStore(dir / "s");
  Fields send{{"op", "send"}, {"conversation", "c"}, {"body", "hi"}, {"id", "m-1"}};
  Fields a = Execute(s, send, {});
  ASSERT_EQ(a.Get("op"), "ok") << a.Get("message");
  EXPECT_EQ(a.Get("id"), "m-1");
  // The same send again (its answer was lost): ok, still one message.
  EXPECT_EQ(Execute(s, send, {}).Get("op"), "ok");
  EXPECT_EQ(s.Outbox()->size(), 1u);
  // The same id in another conversation is not a retry.
  Fields other{{"op", "send"}, {"conversation", "d"}, {"body", "hi"}, {"id", "m-1"}};
  EXPECT_EQ(Execute(s, other, {}).Get("code"), "ALREADY_EXISTS");
  EXPECT_EQ(Execute(s, Fields{{"op", "edit"}, {"id", "m-1"}, {"body", "hey"}}, {}).Get("op"), "ok");
  EXPECT_EQ(s.Get("m-1")->body, "hey");
  EXPECT_EQ(Execute(s, Fields{{"op", "react"}, {"id", "m-1"}, {"reaction", "+1"}}, {}).Get("op"),
            "ok");
  EXPECT_EQ(s.Get("m-1")->reactions.size(), 1u);
  EXPECT_EQ(Execute(s, Fields{{"op", "mark-read"}, {"conversation", "c"}}, {}).Get("op"), "ok");
  EXPECT_EQ(Execute(s, Fields{{"op", "delete"}, {"id", "m-1"}}, {}).Get("op"), "ok");
  EXPECT_TRUE(s.Get("m-1")->deleted);
  EXPECT_EQ(Execute(s, Fields{{"op", "delete"}, {"id", "nope"}}, {}).Get("code"), "NOT_FOUND");
  EXPECT_EQ(Execute(s,
                    Fields{{"op", "conversation"},
                           {"id", "c"},
                           {"title", "T"},
                           {"member", "alice"},
                           {"member", "bob"}},
                    {})
                .Get("op"),
            "ok");
  EXPECT_EQ(s.GetConversation("c")->members.size(), 2u);
  EXPECT_EQ(Execute(s, Fields{{"op", "outbox-retry"}, {"seq", "x1"}}, {}).Get("code"),
            "INVALID_ARGUMENT");
  // Without hooks (no daemon), straight to the store: the entry has not failed.
  const uint64_t seq = s.Outbox()->front().seq;
  EXPECT_EQ(
      Execute(s, Fields{{"op", "outbox-retry"}, {"seq", std::to_string(seq)}}, {}).Get("code"),
      "FAILED_PRECONDITION");
  EXPECT_EQ(Execute(s, Fields{{"op", "frobnicate"}}, {}).Get("code"), "INVALID_ARGUMENT");
  // Typing goes to the running sync only (never to the store).
  EXPECT_EQ(Execute(s, Fields{{"op", "typing"}, {"conversation", "c"}}, {}).Get("code"),
            "FAILED_PRECONDITION");
  ExecuteHooks typing_hooks;
  std::string typed_in;
  typing_hooks.typing = [&](const std::string& c) {
    typed_in = c;
    return Status::Ok();
  };
  EXPECT_EQ(Execute(s, Fields{{"op", "typing"}, {"conversation", "c"}}, typing_hooks).Get("op"),
            "ok");
  EXPECT_EQ(typed_in, "c");
  int pokes = 0;
  uint64_t retried = 0;
  ExecuteHooks hooks;
  hooks.poke = [&] { ++pokes; };
  hooks.retry_failed = [&](uint64_t n) {
    retried = n;
    return Status::Ok();
  };
  EXPECT_EQ(Execute(s, Fields{{"op", "poke"}}, hooks).Get("op"), "ok");
  EXPECT_EQ(pokes, 1);
  EXPECT_EQ(Execute(s, Fields{{"op", "outbox-retry"}, {"seq", "42"}}, hooks).Get("op"), "ok");
  EXPECT_EQ(retried, 42u);
  // Errors come back as frames and turn into the same Status.
  Status st = StatusFromFields(ErrorFields(TooLarge("too big")));
  EXPECT_EQ(st.code(), Code::kTooLarge);
  EXPECT_EQ(st.message(), "too big");
}

TEST(DaemonProtocol, ExecuteCarriesConversationModesAndDeviceTrust) {
  apitest::TempDir dir;
  api::Store s = NewStore(dir / "s");
  int pokes = 0;
  ExecuteHooks hooks;
  hooks.poke = [&] { ++pokes; };
  EXPECT_EQ(
      Execute(
          s,
          Fields{
              {"op", "conversation-create"}, {"id", "p"}, {"member", "alice"}, {"plaintext", "1"}},
          hooks)
          .Get("op"),
      "ok");
  EXPECT_EQ(*api::GetConversationMode(s, "p"), TIDINGS_MODE_PLAINTEXT);
  EXPECT_EQ(Execute(s, Fields{{"op", "conversation-create"}, {"id", "p"}}, hooks).Get("code"),
            "ALREADY_EXISTS");
  EXPECT_EQ(Execute(s, Fields{{"op", "conversation-upgrade"}, {"id", "p"}}, hooks).Get("op"), "ok");
  EXPECT_EQ(*api::GetConversationMode(s, "p"), TIDINGS_MODE_END_TO_END_PENDING);
  EXPECT_EQ(pokes, 1);  // the upgrade syncs at once
  const std::string me = api::GetIdentity(s)->device_id;
  Fields verify{{"op", "keys-trust"}, {"user", "alice"}, {"device", me}, {"trust", "verified"}};
  EXPECT_EQ(Execute(s, verify, hooks).Get("op"), "ok");
  EXPECT_EQ(api::GetDevices(s, "alice")->at(0).trust, TIDINGS_TRUST_VERIFIED);
  Fields unknown{{"op", "keys-trust"}, {"user", "bob"}, {"device", me}, {"trust", "removed"}};
  EXPECT_EQ(Execute(s, unknown, hooks).Get("code"), "NOT_FOUND");
  Fields bad{{"op", "keys-trust"}, {"user", "alice"}, {"device", me}, {"trust", "maybe"}};
  EXPECT_EQ(Execute(s, bad, hooks).Get("code"), "INVALID_ARGUMENT");
}

TEST(DaemonMetrics, PageHasEveryBackendsCountersAndLag) {
  MetricsInput in;
  in.started_ms = 1'000'000;
  in.now_ms = 1'010'000;
  in.outbox_pending = 3;
  api::SyncBackend chime;
  chime.name = "chime";
  chime.running = true;
  chime.requests = 9;
  chime.retries = 2;
  chime.last_success_ms = 1'004'000;
  chime.errors = {{TIDINGS_UNAVAILABLE, 4}, {TIDINGS_DEADLINE_EXCEEDED, 1}};
  chime.realtime_available = chime.realtime_connected = true;
  api::SyncBackend dynamo;
  dynamo.name = "dynamodb";
  dynamo.stopped_by = api::Status(TIDINGS_UNAUTHENTICATED, "expired");
  dynamo.outbox_depth = 5;
  in.backends = {chime, dynamo};
  api::SyncStatus ok{"chime", "a", "", 0, 1'008'000, 0, "", 0, 0, false};
  api::SyncStatus failing{"chime", "b", "", 0, 1'006'000, 0, "UNAVAILABLE: x", 0, 1, false};
  in.conversations = {ok, failing};
  in.socket_requests[{"send", "ok"}] = 2;
  const std::string page = RenderMetrics(in);
  for (const char* line : {
           "tidings_outbox_entries{state=\"pending\"} 3\n",
           "tidings_sync_up{backend=\"chime\"} 1\n",
           "tidings_sync_up{backend=\"dynamodb\"} 0\n",
           "tidings_realtime_connected{backend=\"chime\"} 1\n",
           "tidings_realtime_connected{backend=\"dynamodb\"} 0\n",
           "tidings_outbox_depth{backend=\"dynamodb\"} 5\n",
           "tidings_pull_lag_seconds{backend=\"chime\"} 4.000\n",      // oldest success: b
           "tidings_pull_lag_seconds{backend=\"dynamodb\"} 10.000\n",  // nothing yet: start
           "tidings_last_success_timestamp_seconds{backend=\"chime\"} 1004.000\n",
           "tidings_conversations{backend=\"chime\"} 2\n",
           "tidings_conversations_failing{backend=\"chime\"} 1\n",
           "tidings_backend_requests_total{backend=\"chime\"} 9\n",
           "tidings_backend_retries_total{backend=\"chime\"} 2\n",
           "tidings_backend_errors_total{backend=\"chime\",kind=\"deadline_exceeded\"} 1\n",
           "tidings_backend_errors_total{backend=\"chime\",kind=\"unavailable\"} 4\n",
           "tidings_socket_requests_total{op=\"send\",result=\"ok\"} 2\n",
           "tidings_daemon_start_time_seconds 1000.000\n",
       }) {
    EXPECT_NE(page.find(line), std::string::npos) << line << "\nnot in:\n" << page;
  }
}

}  // namespace
}  // namespace tidings::daemon
