// The C ABI shared with the BPF program, for C++ users of the core.
#pragma once

#include <clovis/abi.h>
