// Unit tests of the daemon's pieces that need no server: configuration
// parsing and validation, the socket protocol's framing and Execute, the
// request counting transport.
#include <sys/socket.h>
#include <unistd.h>

#include <map>

#include <gtest/gtest.h>

#include "daemon/backend_stats.h"
#include "daemon/config.h"
#include "daemon/protocol.h"
#include "tests/engine/test_util.h"

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

Result<DaemonConfig> Parse(const std::string& text, std::map<std::string, std::string> env = {}) {
  return ParseConfig(text, "d.toml", Env(std::move(env)));
}

TEST(DaemonConfig, DefaultsAndValues) {
  auto c = Parse("[store]\npath = \"/s\"\n[sync]\nbackends = [\"chime\", \"dynamodb\"]\n"
                 "active_poll_ms = 300\n[chime]\napp_instance_arn = \"arn:aws:chime:x\"\n"
                 "user_arn = \"arn:aws:chime:y\"\n[metrics]\nlisten = \"[::1]:0\"\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->store_path, "/s");
  EXPECT_EQ(c->backends, (std::vector<std::string>{"chime", "dynamodb"}));
  EXPECT_EQ(c->active_poll_ms, 300);
  EXPECT_EQ(c->idle_poll_ms, 60'000);
  EXPECT_EQ(c->log_format, "text");
  EXPECT_TRUE(c->socket_enabled);
}

TEST(DaemonConfig, EnvironmentOverridesTheFile) {
  auto c = Parse("[sync]\nactive_poll_ms = 300\n",
                 {{"TIDINGS_DAEMON_SYNC_ACTIVE_POLL_MS", "400"},
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
      {"", {{"TIDINGS_DAEMON_SOCKET_ENABLED", "maybe"}}, {"TIDINGS_DAEMON_SOCKET_ENABLED", "true or false"}},
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

TEST(DaemonProtocol, MacsDependOnRoleNoncesAndSecret) {
  const std::string k1(32, 'a'), k2(32, 'b'), n1(32, '1'), n2(32, '2');
  EXPECT_EQ(AuthMac(k1, "client", n1, n2), AuthMac(k1, "client", n1, n2));
  EXPECT_NE(AuthMac(k1, "client", n1, n2), AuthMac(k1, "server", n1, n2));
  EXPECT_NE(AuthMac(k1, "client", n1, n2), AuthMac(k1, "client", n2, n1));
  EXPECT_NE(AuthMac(k1, "client", n1, n2), AuthMac(k2, "client", n1, n2));
  EXPECT_EQ(AuthMac(k1, "client", n1, n2).size(), 32u);
}

TEST(DaemonProtocol, ExecuteRunsWritesAndDeduplicatesARetriedSend) {
  testing::TempDir dir;
  auto store = engine::Store::Open(dir / "s", testing::TestKey(), testing::CreateOptions());
  ASSERT_TRUE(store.ok());
  engine::Store& s = **store;
  Fields send{{"op", "send"}, {"conversation", "c"}, {"body", "hi"}, {"id", "m-1"}};
  Fields a = Execute(s, send, {});
  ASSERT_EQ(a.Get("op"), "ok") << a.Get("message");
  EXPECT_EQ(a.Get("id"), "m-1");
  // The same send again (its answer was lost): ok, still one message.
  EXPECT_EQ(Execute(s, send, {}).Get("op"), "ok");
  EXPECT_EQ(s.Outbox(0)->size(), 1u);
  // The same id in another conversation is not a retry.
  Fields other{{"op", "send"}, {"conversation", "d"}, {"body", "hi"}, {"id", "m-1"}};
  EXPECT_EQ(Execute(s, other, {}).Get("code"), "ALREADY_EXISTS");
  EXPECT_EQ(Execute(s, Fields{{"op", "edit"}, {"id", "m-1"}, {"body", "hey"}}, {}).Get("op"), "ok");
  EXPECT_EQ(s.Get("m-1")->body, "hey");
  EXPECT_EQ(Execute(s, Fields{{"op", "react"}, {"id", "m-1"}, {"reaction", "+1"}}, {}).Get("op"),
            "ok");
  EXPECT_EQ(Execute(s, Fields{{"op", "mark-read"}, {"conversation", "c"}}, {}).Get("op"), "ok");
  EXPECT_EQ(Execute(s, Fields{{"op", "delete"}, {"id", "m-1"}}, {}).Get("op"), "ok");
  EXPECT_TRUE(s.Get("m-1")->deleted);
  EXPECT_EQ(Execute(s, Fields{{"op", "delete"}, {"id", "nope"}}, {}).Get("code"), "NOT_FOUND");
  EXPECT_EQ(Execute(s, Fields{{"op", "outbox-retry"}, {"seq", "x1"}}, {}).Get("code"),
            "INVALID_ARGUMENT");
  EXPECT_EQ(Execute(s, Fields{{"op", "frobnicate"}}, {}).Get("code"), "INVALID_ARGUMENT");
  int pokes = 0;
  ExecuteHooks hooks;
  hooks.poke = [&] { ++pokes; };
  EXPECT_EQ(Execute(s, Fields{{"op", "poke"}}, hooks).Get("op"), "ok");
  EXPECT_EQ(pokes, 1);
  // Errors come back as frames and turn into the same Status.
  Status st = StatusFromFields(ErrorFields(TooLarge("too big")));
  EXPECT_EQ(st.code(), Code::kTooLarge);
  EXPECT_EQ(st.message(), "too big");
}

class ScriptedHttp final : public http::HttpClient {
 public:
  std::vector<Result<http::Response>> answers;
  Result<http::Response> Send(const http::Request&) override {
    auto r = answers.front();
    answers.erase(answers.begin());
    return r;
  }
  void Cancel() override {}
};

TEST(DaemonStats, CountsRequestsRetriesAndErrorsByKind) {
  auto inner = std::make_unique<ScriptedHttp>();
  http::Response ok;
  ok.status = 200;
  http::Response throttled;
  throttled.status = 400;
  throttled.body = R"({"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException"})";
  inner->answers = {Unavailable("connection refused"), Result<http::Response>(throttled),
                    Result<http::Response>(ok), Result<http::Response>(ok)};
  auto stats = std::make_shared<BackendStats>();
  CountingHttpClient client(std::move(inner), stats, "dynamodb");
  http::Request put{"POST", "http://x/", {}, "{\"put\":1}"};
  http::Request query{"POST", "http://x/", {}, "{\"query\":1}"};
  EXPECT_FALSE(client.Send(put).ok());  // fails
  EXPECT_TRUE(client.Send(put).ok());   // retry (same request), throttled
  EXPECT_TRUE(client.Send(put).ok());   // retry, succeeds
  EXPECT_TRUE(client.Send(query).ok());  // a different request: not a retry
  EXPECT_EQ(stats->requests.load(), 4u);
  EXPECT_EQ(stats->retries.load(), 2u);
  auto errors = stats->Errors();
  EXPECT_EQ(errors["unavailable"], 2u);  // refused connection + throttling
  EXPECT_GT(stats->last_ok_ms.load(), 0);
}

}  // namespace
}  // namespace tidings::daemon
