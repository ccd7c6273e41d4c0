#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "app.hpp"
#include "exit_codes.hpp"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  clovis::cli::Context ctx{&std::cout, &std::cerr};
  ctx.is_tty = isatty(STDOUT_FILENO) == 1;
  try {
    return clovis::cli::run(args, ctx);
  } catch (const std::exception& e) {
    std::cerr << "clovisctl: internal error: " << e.what() << "\n";
    return clovis::cli::kExitInternal;
  }
}
