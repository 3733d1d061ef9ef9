// loyaltyctl: the command line for store staff and operators: offline
// program checks and quotes, and the commands that talk to loyaltyd.
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "terminal/daemon_commands.h"
#include "terminal/offline_commands.h"

namespace {

void usage(std::ostream& out) {
  out << "usage: loyaltyctl COMMAND [ARGS]\n\n"
         "commands:\n"
         "  check-program FILE...   validate program files and list their decisions\n"
         "  quote --program FILE --member FILE --basket FILE --at LOCAL_TIME --tz ZONE [--json]\n"
         "                          evaluate a basket or event offline and print the receipt\n"
         "  provision BUNDLE [--to PATH]  install the HQ bundle from `loyalty-hq terminals add`\n"
         "\ncommands that talk to loyaltyd (--url HOST:PORT, --token-file FILE, --json;\n"
         "or LOYALTYD_URL and LOYALTYD_TOKEN_FILE):\n"
         "  status                  online/offline, outbox, program, last sync\n"
         "  scan CODE | scan --phone NUMBER | member ID\n"
         "  enroll --phone NUMBER [--name NAME] [--birthday YYYY-MM-DD] [--referrer ID]\n"
         "  quote  --member ID (--basket FILE | --event NAME)\n"
         "  commit --member ID (--basket FILE | --event NAME)\n"
         "                          events: --amount MINOR_UNITS for top_up, --activity NAME\n"
         "                          for activity\n"
         "  redeem --member ID --reward ID\n"
         "  return RECEIPT LINE:QTY...   void RECEIPT\n"
         "  rewards                 the catalog with this store's stock\n"
         "  stock REWARD COUNT      set this store's stock of a reward (a stock-take)\n"
         "  receipt RECEIPT         reprint a receipt, with what is left to return\n"
         "  outbox [--limit N]\n"
         "  sync                    sync with HQ now (after an outage, without waiting)\n"
         "\nwrites (enroll, commit, redeem, return, void) print the Idempotency-Key they send\n"
         "and take --idempotency-key KEY to choose it, or --retry to resend the last write\n"
         "with its key: after a timeout, --retry tells the outcome and never records twice.\n"
         "\nexit codes: 0 ok, 2 usage, 3 invalid input, 4 refused, 5 loyaltyd unreachable,\n"
         "6 wrong or missing token\n";
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
  if (command == "provision") return loyalty::terminal::run_provision(args, std::cout, std::cerr);
  if (command == "check-program")
    return loyalty::terminal::run_check_program(args, std::cout, std::cerr);
  if (command == "quote" && std::find(args.begin(), args.end(), "--program") != args.end())
    return loyalty::terminal::run_quote(args, std::cout, std::cerr);
  if (loyalty::terminal::is_daemon_command(command))
    return loyalty::terminal::run_daemon_command(command, args, std::cout, std::cerr);
  std::cerr << "loyaltyctl: unknown command '" << command << "'\n";
  usage(std::cerr);
  return loyalty::terminal::kExitUsage;
}
