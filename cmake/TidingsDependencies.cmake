# Every dependency is a Debian package; nothing is downloaded at build time.
include(TidingsLibraryDependencies)  # what libtidings links
find_package(CLI11 CONFIG QUIET)
find_package(httplib CONFIG QUIET)
if(TIDINGS_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(TIDINGS_BUILD_BENCH)
  find_package(benchmark REQUIRED)
  pkg_check_modules(SQLITE3 QUIET IMPORTED_TARGET sqlite3)
  pkg_check_modules(SQLCIPHER QUIET IMPORTED_TARGET sqlcipher)
endif()
find_package(Python3 COMPONENTS Interpreter REQUIRED)
# Link RocksDB's shared library: its static archive is not built for shared
# objects (initial-exec TLS), and libtidings.so must embed the engine.
add_library(tidings_rocksdb INTERFACE)
target_link_libraries(tidings_rocksdb INTERFACE RocksDB::rocksdb-shared)
