// Helpers shared by the core tests: loading example programs and JSON files
// from the source tree.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "core/io_json.h"
#include "core/program_loader.h"

namespace loyalty::test {

inline std::string source_path(const std::string& rel) {
  return std::string(LOYALTY_SOURCE_DIR) + "/" + rel;
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline core::Program example_program(const std::string& file) {
  auto p = core::load_program_text(slurp(source_path("examples/programs/" + file)));
  if (!p) FAIL(file << ": " << p.error().message);
  return *p;
}

inline core::Program program_from(const core::Json& j) {
  auto p = core::load_program(j);
  if (!p) FAIL(p.error().message);
  return *p;
}

inline core::Request request_at(const std::string& local, const core::Json& body,
                                std::string txn = "T1", std::string zone = "Asia/Shanghai") {
  core::Request r;
  auto ok = core::request_from_json(body, r);
  if (!ok) FAIL(ok.error().message);
  r.at = *core::parse_local_datetime(local);
  r.zone = std::move(zone);
  r.txn_id = std::move(txn);
  return r;
}

}  // namespace loyalty::test
