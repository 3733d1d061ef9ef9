// loyaltyctl: the command line for store staff and operators. Today it holds
// the offline commands; the daemon commands arrive with loyaltyd.
#include <iostream>
#include <string>
#include <vector>

#include "terminal/offline_commands.h"

namespace {

void usage(std::ostream& out) {
  out << "usage: loyaltyctl COMMAND [ARGS]\n\n"
         "commands:\n"
         "  check-program FILE...   validate program files and list their decisions\n"
         "  quote --program FILE --member FILE --basket FILE --at LOCAL_TIME --tz ZONE [--json]\n"
         "                          evaluate a basket or event offline and print the receipt\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    usage(args.empty() ? std::cerr : std::cout);
    return args.empty() ? loyalty::terminal::kExitUsage : 0;
  }
  const std::string command = args.front();
  args.erase(args.begin());
  if (command == "check-program")
    return loyalty::terminal::run_check_program(args, std::cout, std::cerr);
  if (command == "quote") return loyalty::terminal::run_quote(args, std::cout, std::cerr);
  std::cerr << "loyaltyctl: unknown command '" << command << "'\n";
  usage(std::cerr);
  return loyalty::terminal::kExitUsage;
}
