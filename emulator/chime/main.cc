// tidings-chime-local: a local Amazon Chime SDK Messaging emulator for
// tests, demos and benchmarks (see README.md). Prints one "listening on"
// line once it accepts connections; SIGTERM/SIGINT stop it cleanly.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "emulator/chime/routes.h"

int main(int argc, char** argv) {
  chime_local::ServerOptions o;
  o.auth.access_key = "AKIDTIDINGSLOCAL";
  o.auth.secret_key = "tidings-local-secret";
  o.auth.region = "us-east-1";
  if (const char* k = std::getenv("TIDINGS_CHIME_LOCAL_ACCESS_KEY")) o.auth.access_key = k;
  if (const char* s = std::getenv("TIDINGS_CHIME_LOCAL_SECRET_KEY")) o.auth.secret_key = s;

  CLI::App app{"tidings-chime-local: a local Amazon Chime SDK Messaging emulator"};
  app.add_option("--host", o.host, "address to listen on");
  app.add_option("--port", o.port, "port (0: ephemeral)")->check(CLI::Range(0, 65535));
  app.add_option("--data-dir", o.data_dir, "keep state in this directory (journal)");
  app.add_option("--tls-cert", o.tls_cert,
                 "PEM certificate (chain) of the messaging WebSocket; with --tls-key turns it on");
  app.add_option("--tls-key", o.tls_key, "its PEM private key");
  app.add_option("--ws-port", o.ws_port, "WebSocket port (0: ephemeral)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--access-key", o.auth.access_key, "accepted SigV4 access key id");
  app.add_option("--secret-key", o.auth.secret_key, "its secret");
  app.add_option("--region", o.auth.region, "signing region");
  app.add_option("--throttle-rate", o.faults.throttle, "share of requests refused with 429")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--error-rate", o.faults.error, "share of requests failed with 500/503")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--latency-ms", o.faults.latency_ms, "delay before each request")
      ->check(CLI::Range(0, 600000));
  app.add_option("--seed", o.faults.seed, "fault RNG seed");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "tidings-chime-local: %s (see --help)\n", e.what());
    return 2;
  }
  if (o.auth.access_key.empty() || o.auth.secret_key.empty()) {
    std::fprintf(stderr, "tidings-chime-local: the access key and secret must not be empty\n");
    return 2;
  }

  // Signals go to the waiting thread below, not to the server's workers.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  auto server = chime_local::Server::Create(o);
  if (!server.ok()) {
    std::fprintf(stderr, "tidings-chime-local: %s\n", server.status().ToString().c_str());
    return 1;
  }
  auto port = (*server)->Bind();
  if (!port.ok()) {
    std::fprintf(stderr, "tidings-chime-local: %s\n", port.status().ToString().c_str());
    return 1;
  }
  std::thread([&] { (*server)->Run(); }).detach();
  std::printf("tidings-chime-local listening on http://%s:%d\n", o.host.c_str(), *port);
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop_signals, &sig);
  // Exit now rather than join the server: its workers would wait for idle
  // keep-alive clients to time out (5 s). Nothing is lost (see Quiesce).
  (*server)->Quiesce();
  std::fflush(nullptr);
  std::_Exit(0);
}
