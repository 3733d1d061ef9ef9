// The counter page's files (terminal/counter/), compiled into loyaltyd by
// cmake/embed_assets.cmake: a store has no internet and the daemon serves
// every byte of its page itself.
#pragma once

#include <string_view>
#include <vector>

namespace loyalty::terminal {

struct Asset {
  std::string_view name;  // "index.html", "counter.js", ...
  std::string_view body;
  std::string_view etag;  // quoted, from the file's SHA-256 at build time
};

const std::vector<Asset>& counter_assets();

}  // namespace loyalty::terminal
