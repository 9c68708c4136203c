// c_smoke.c compiled as C++: tidings.h and its inline initialisers must be
// clean C++ under -Wall -Wextra -Werror too.
#include "c_smoke.c"  // NOLINT(bugprone-suspicious-include)
