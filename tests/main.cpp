// The test binaries' main: Catch2's, then the run's scratch files go when
// every test in it passed (tests/scratch.h).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cstdlib>

#include "tests/scratch.h"

int main(int argc, char** argv) {
  const int failed = Catch::Session().run(argc, argv);
  if (failed == 0 && std::getenv("LOYALTY_KEEP_SCRATCH") == nullptr)
    loyalty::test::remove_scratch();
  return failed;
}
