// What the SQLite and SQLCipher benchmarks share (bench/engine/sqlite_bench.cc
// and bench/search/fts_bench.cc): statements that abort on failure, the
// connection settings, and the insert of one message as the store suite
// writes it. Both are built once per library (they export the same
// sqlite3_* symbols); TIDINGS_SQLCIPHER is defined for the SQLCipher builds.
#pragma once

#include <sqlite3.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "bench/engine/bench_util.h"

namespace bench::sqlite {

inline void Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::fprintf(stderr, "%s: %s\n", sql, err ? err : "?");
    std::abort();
  }
}

inline sqlite3_stmt* Prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
    std::abort();
  }
  return stmt;
}

// Opens `path` as every SQLite benchmark here runs it: SQLCipher keyed (4 KiB
// cipher pages), 4 KiB pages, WAL, synchronous=NORMAL.
inline sqlite3* OpenConfigured(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) std::abort();
#ifdef TIDINGS_SQLCIPHER
  Exec(db, "PRAGMA key = \"x'0909090909090909090909090909090909090909090909090909090909090909'\"");
  Exec(db, "PRAGMA cipher_page_size = 4096");
#endif
  Exec(db, "PRAGMA page_size = 4096");
  Exec(db, "PRAGMA journal_mode = WAL");
  Exec(db, "PRAGMA synchronous = NORMAL");
  return db;
}

// The store suite's messages table: the (conv, hlc, replica) primary key,
// a unique id, the body as a BLOB.
inline void CreateMessagesTable(sqlite3* db) {
  Exec(db,
       "CREATE TABLE IF NOT EXISTS messages (conv TEXT NOT NULL, hlc INTEGER NOT NULL, "
       "replica INTEGER NOT NULL, id TEXT NOT NULL UNIQUE, body BLOB NOT NULL, "
       "PRIMARY KEY (conv, hlc, replica)) WITHOUT ROWID");
}

// A send as the store suite makes it: the message row (conversation, hlc,
// replica, id, body) and its outbox row. `body_as_text`: the body is bound
// as TEXT (what full-text search reads) instead of a BLOB.
class Inserter {
 public:
  Inserter(sqlite3* db, bool body_as_text)
      : msg_(Prepare(db,
                     "INSERT INTO messages (conv, hlc, replica, id, body) "
                     "VALUES (?, ?, ?, ?, ?)")),
        out_(Prepare(db, "INSERT INTO outbox (op) VALUES (?)")),
        body_as_text_(body_as_text) {}
  ~Inserter() {
    sqlite3_finalize(msg_);
    sqlite3_finalize(out_);
  }
  Inserter(const Inserter&) = delete;
  Inserter& operator=(const Inserter&) = delete;

  void Insert(uint64_t i, std::string_view body) {
    const std::string conv = bench::ConvId(i), id = "id-" + std::to_string(i);
    const int size = static_cast<int>(body.size());
    sqlite3_bind_text(msg_, 1, conv.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(msg_, 2, static_cast<int64_t>(i));
    sqlite3_bind_int64(msg_, 3, 1);
    sqlite3_bind_text(msg_, 4, id.c_str(), -1, SQLITE_TRANSIENT);
    if (body_as_text_) {
      sqlite3_bind_text(msg_, 5, body.data(), size, SQLITE_TRANSIENT);
    } else {
      sqlite3_bind_blob(msg_, 5, body.data(), size, SQLITE_TRANSIENT);
    }
    if (sqlite3_step(msg_) != SQLITE_DONE) std::abort();
    sqlite3_reset(msg_);
    sqlite3_bind_blob(out_, 1, body.data(), size, SQLITE_TRANSIENT);
    if (sqlite3_step(out_) != SQLITE_DONE) std::abort();
    sqlite3_reset(out_);
  }

 private:
  sqlite3_stmt* msg_;
  sqlite3_stmt* out_;
  bool body_as_text_;
};

}  // namespace bench::sqlite
