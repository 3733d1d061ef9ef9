// Storage faults under the real loyaltyd: a full disk, a failing disk and a
// lost flush, injected under SQLite by tests/faults/faultfs.cpp (LD_PRELOAD).
// The commit is refused with a clear error, nothing that is not durable is
// acknowledged, and the terminal works again once the fault clears, also
// after a crash.
#include <csignal>

#include "tests/terminal/daemon_fixture.h"

using namespace loyalty;
using namespace loyalty::test;

TEST_CASE(
    "a failing disk: the commit is refused, nothing is acknowledged, and the terminal "
    "recovers when the fault clears",
    "[terminal][faults]") {
  const std::string mode = GENERATE("full", "eio", "sync");
  INFO("fault " << mode);
  const auto dir = scratch_dir("disk-" + mode);
  const auto control = dir / "fault";
  Daemon d(dir, standalone_args(dir));
  d.set_env(faultfs_env(control, d.db().string()));
  REQUIRE(d.start());
  const auto before = available(d, "M-A");
  auto first = d.post("/v1/transactions", basket("M-A"), "sale-1");
  REQUIRE(first.status == 201);
  const auto earned = available(d, "M-A") - before;
  CHECK(earned > 0);

  write_file(control, mode);
  auto refused = d.post("/v1/transactions", basket("M-A"), "sale-2");
  INFO(refused.body.dump());
  CHECK(refused.status == 503);
  CHECK(refused.type() == "storage-failure");
  // A full disk wrote nothing, and says so; an I/O error while writing or
  // flushing the log leaves the outcome open, and says that.
  const auto detail = refused.body["detail"].get<std::string>();
  CHECK(detail.find(mode == "full" ? "nothing was recorded" : "may or may not be recorded") !=
        std::string::npos);
  CHECK(std::stoi(slurp_file(dir / "fault.count")) > 0);  // the fault was hit
  // Nothing of the refused sale shows: not in the balance, not in the outbox.
  CHECK(available(d, "M-A") == before + earned);
  CHECK(outbox_depth(d) == 1);

  // The disk recovers and the terminal crashes at once. Whether or not the
  // log kept the refused sale, the retry with its key counts it once.
  write_file(control, "none");
  d.kill(SIGKILL);
  REQUIRE(d.start());
  auto retried = d.post("/v1/transactions", basket("M-A"), "sale-2");
  INFO(retried.body.dump());
  REQUIRE((retried.status == 201 || retried.status == 200));
  if (mode == "full") CHECK(retried.status == 201);  // a full disk kept nothing
  CHECK(available(d, "M-A") == before + 2 * earned);
  CHECK(outbox_depth(d) == 2);

  // And what was acknowledged survives a crash, exactly.
  d.kill(SIGKILL);
  REQUIRE(d.start());
  CHECK(available(d, "M-A") == before + 2 * earned);
  CHECK(outbox_depth(d) == 2);
  CHECK(d.post("/v1/transactions", basket("M-A"), "sale-2").body["receipt_id"] ==
        retried.body["receipt_id"]);
}
