# What libtidings links from the system, as imported targets. The build reads
# this file (TidingsDependencies.cmake) and so does an app's
# find_package(Tidings): it is installed beside TidingsConfig.cmake, so the
# targets named by libtidings.a's link interface exist in both. Every
# dependency is a Debian package.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
if(NOT TARGET PkgConfig::SODIUM)
  pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)
endif()
find_package(RocksDB CONFIG QUIET)
if(NOT TARGET RocksDB::rocksdb-shared)
  # No RocksDB CMake package: the library itself, under the config's name.
  find_library(ROCKSDB_LIB rocksdb REQUIRED)
  add_library(RocksDB::rocksdb-shared UNKNOWN IMPORTED)
  set_target_properties(RocksDB::rocksdb-shared PROPERTIES IMPORTED_LOCATION ${ROCKSDB_LIB})
endif()
find_package(CURL REQUIRED)
find_package(simdjson CONFIG QUIET)
if(NOT TARGET simdjson::simdjson)
  find_library(SIMDJSON_LIB simdjson REQUIRED)
  add_library(simdjson::simdjson UNKNOWN IMPORTED)
  set_target_properties(simdjson::simdjson PROPERTIES IMPORTED_LOCATION ${SIMDJSON_LIB})
endif()
find_package(ZLIB REQUIRED)
# Search's text processing (search/): Unicode folding with utf8proc, English
# stemming with Snowball's libstemmer, which has no pkg-config file.
if(NOT TARGET PkgConfig::UTF8PROC)
  pkg_check_modules(UTF8PROC REQUIRED IMPORTED_TARGET libutf8proc)
endif()
if(NOT TARGET Snowball::stemmer)
  find_path(STEMMER_INCLUDE_DIR libstemmer.h REQUIRED)
  find_library(STEMMER_LIB stemmer REQUIRED)
  add_library(Snowball::stemmer UNKNOWN IMPORTED)
  set_target_properties(Snowball::stemmer PROPERTIES IMPORTED_LOCATION ${STEMMER_LIB}
                        INTERFACE_INCLUDE_DIRECTORIES ${STEMMER_INCLUDE_DIR})
endif()
# The Chime messaging WebSocket (sync/chime/messaging_session.cc): Boost.Beast
# over Boost.Asio with OpenSSL. Header-only: Boost.System's error codes are
# header-only since Boost 1.69, so nothing of Boost is linked.
find_package(Boost 1.74 REQUIRED)
find_package(OpenSSL REQUIRED)
# The S3 client's XML (sync/s3/s3_xml.cc), for attachments.
find_package(EXPAT REQUIRED)
