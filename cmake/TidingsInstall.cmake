# cmake --install: what an app developer and an operator get (docs/install.md).
#   include/tidings/                  the public headers
#   lib/libtidings.so.<version>       the C API, SONAME libtidings.so.<major>
#   lib/libtidings.a                  the C API and every internal object
#   lib/cmake/Tidings/                find_package(Tidings): Tidings::tidings,
#                                     Tidings::tidings_static
#   lib/pkgconfig/tidings.pc          pkg-config (Libs.private: what the static
#                                     library needs)
#   bin/tidings, bin/tidings-chime-local
#   lib/systemd/system/tidings-daemon.service, share/doc/tidings/
# Expects api/ and cli/ to be added first.
include(CMakePackageConfigHelpers)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/tidings DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS tidings_shared tidings_static EXPORT TidingsTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS tidings_cli tidings-chime-local RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# find_package(Tidings). The config reads the same dependency file as the
# build, so the system targets libtidings.a's link interface names exist.
set(tidings_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/Tidings)
install(EXPORT TidingsTargets NAMESPACE Tidings:: DESTINATION ${tidings_cmake_dir})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/TidingsConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/TidingsConfig.cmake
                              INSTALL_DESTINATION ${tidings_cmake_dir})
# 0.x: a minor version may change the ABI.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/TidingsConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/TidingsConfig.cmake
              ${PROJECT_BINARY_DIR}/TidingsConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/TidingsLibraryDependencies.cmake
        DESTINATION ${tidings_cmake_dir})

# tidings.pc. libtidings.a links the system libraries' shared objects, so
# Libs.private names them as their own pkg-config files do for a shared link
# (Requires.private would make `pkg-config --static` ask for their static
# dependencies too, which Debian does not ship). The prefix is found from the
# file's own place, so --prefix and DESTDIR work.
set(tidings_pc_module_PkgConfig::SODIUM libsodium)
set(tidings_pc_module_RocksDB::rocksdb-shared rocksdb)
set(tidings_pc_module_CURL::libcurl libcurl)
set(tidings_pc_module_simdjson::simdjson simdjson)
set(tidings_pc_module_ZLIB::ZLIB zlib)
set(tidings_pc_module_OpenSSL::SSL libssl)
set(tidings_pc_module_OpenSSL::Crypto libcrypto)
set(tidings_pc_module_PkgConfig::UTF8PROC libutf8proc)
set(tidings_pc_module_EXPAT::EXPAT expat)
# Libraries without a pkg-config file: their linker flags.
set(tidings_pc_flags_Snowball::stemmer -lstemmer)
tidings_link_closure(tidings_api_objects tidings_api_internal_libs tidings_api_system_libs)
set(tidings_pc_modules "")
set(tidings_pc_threads "")
set(tidings_pc_flags "")
foreach(lib ${tidings_api_system_libs})
  if(lib STREQUAL "Threads::Threads")
    set(tidings_pc_threads "-pthread")
  elseif(DEFINED "tidings_pc_flags_${lib}")
    string(APPEND tidings_pc_flags " ${tidings_pc_flags_${lib}}")
  elseif(DEFINED "tidings_pc_module_${lib}")
    list(APPEND tidings_pc_modules "${tidings_pc_module_${lib}}")
  else()
    message(FATAL_ERROR "libtidings links ${lib}: name its pkg-config module in "
                        "cmake/TidingsInstall.cmake and find it in "
                        "cmake/TidingsLibraryDependencies.cmake")
  endif()
endforeach()
execute_process(COMMAND ${PKG_CONFIG_EXECUTABLE} --libs ${tidings_pc_modules}
                OUTPUT_VARIABLE tidings_pc_libs_private OUTPUT_STRIP_TRAILING_WHITESPACE
                COMMAND_ERROR_IS_FATAL ANY)
string(APPEND tidings_pc_libs_private "${tidings_pc_flags} -lstdc++ -lm ${tidings_pc_threads}")
set(tidings_pc_dir ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
if(IS_ABSOLUTE "${tidings_pc_dir}")
  set(tidings_pc_prefix "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH tidings_pc_up "/prefix/${tidings_pc_dir}" "/prefix")
  string(REGEX REPLACE "/$" "" tidings_pc_up "${tidings_pc_up}")
  set(tidings_pc_prefix "\${pcfiledir}/${tidings_pc_up}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/tidings.pc.in ${PROJECT_BINARY_DIR}/tidings.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/tidings.pc DESTINATION ${tidings_pc_dir})

# The daemon's systemd unit, naming the configured prefix's paths, and the
# documents it points to.
file(READ ${PROJECT_SOURCE_DIR}/packaging/tidings-daemon.service tidings_unit)
string(REPLACE "/usr/local/bin/" "${CMAKE_INSTALL_FULL_BINDIR}/" tidings_unit "${tidings_unit}")
string(REPLACE "/usr/share/doc/tidings/" "${CMAKE_INSTALL_FULL_DOCDIR}/" tidings_unit
               "${tidings_unit}")
file(GENERATE OUTPUT ${PROJECT_BINARY_DIR}/packaging/tidings-daemon.service
     CONTENT "${tidings_unit}")
install(FILES ${PROJECT_BINARY_DIR}/packaging/tidings-daemon.service
        DESTINATION lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/packaging/tidings-daemon.example.toml
              ${PROJECT_SOURCE_DIR}/docs/operations.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
