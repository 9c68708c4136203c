# Strict warnings are PRIVATE to the project's own targets and never forced on
# embedders (the simdjson developer-options approach, not LevelDB's PUBLIC -Werror).
# -Wno-restrict: GCC 12 at -O3 reports false positives inside std::string's
# operator+ (GCC bug 105329).
function(tidings_strict_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror -Wshadow -Wnon-virtual-dtor
                         -Wno-missing-field-initializers
                         $<$<CXX_COMPILER_ID:GNU>:-Wno-restrict>)
endfunction()
