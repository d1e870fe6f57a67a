#include <string>
#include <vector>

#include "daemon/cli.h"

int main(int argc, char** argv) {
  return portsentinel::daemon::main_with_args(std::vector<std::string>(argv + 1, argv + argc));
}
