// The client side of the daemon's socket, for `tidings send` and the other
// write commands when a running daemon holds the store (they get BUSY
// opening it): the request goes through the daemon, which commits it and
// answers. If the daemon goes away meanwhile (stopped, killed), the request
// is run directly against the store once its lock is free - the same code
// the daemon runs (protocol.h Execute) - so a write is never refused just
// because a daemon was restarting.
//
// Thread safety: functions are independent; no shared state.
#pragma once

#include <string>

#include "daemon/protocol.h"

namespace tidings::daemon {

// True if `<store>/daemon.sock` exists (a daemon runs, or was killed).
bool DaemonSocketPresent(const std::string& store_path);

// Runs `request` (protocol.h) through the daemon, or directly when no daemon
// holds the store any more, retrying for up to `deadline_ms` while the
// daemon restarts or the store is busy. A send without "id" gets a fresh
// message id first, so a retry after a lost answer is deduplicated. Returns
// the answer's fields, or the error: Unauthenticated (the key does not match
// the store the daemon serves), Busy (still held after the deadline), the
// store's own errors (NotFound, TooLarge, ...).
// `key` unlocks the store (the CLI's --key-file / passphrase); it stays in
// this process.
Result<Fields> CallDaemon(const std::string& store_path, const api::Key& key, Fields request,
                          int64_t deadline_ms = 20'000);

// How long to wait for the daemon's answer to `request`: 30 s, plus time
// for the daemon to encrypt the files of a send ("attach") at 5 MB/s, the
// slowest device it is meant for. CallDaemon's deadline grows by the same.
int64_t AnswerWaitMs(const Fields& request);

}  // namespace tidings::daemon
