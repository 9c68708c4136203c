# Strict warnings are PRIVATE to the project's own targets and never forced on
# embedders (the simdjson developer-options approach, not LevelDB's PUBLIC -Werror).
function(tidings_strict_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror -Wshadow -Wnon-virtual-dtor
                         -Wno-missing-field-initializers)
endfunction()
