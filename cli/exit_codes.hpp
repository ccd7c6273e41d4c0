// clovisctl's documented exit codes (man clovisctl(8), EXIT STATUS).
#pragma once

namespace clovis::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitInvalid = 1;      // the mapping (or a request) was rejected
inline constexpr int kExitUsage = 2;        // bad command line
inline constexpr int kExitIo = 3;           // a file could not be read
inline constexpr int kExitUnavailable = 4;  // the agent is not running / not reachable
inline constexpr int kExitInternal = 5;

}  // namespace clovis::cli
