// JSON text to a core::Json document, read with simdjson (Debian's
// libsimdjson-dev): its validation and number and string decoding run at
// gigabytes a second, where nlohmann's own reader spent a fifth of HQ's CPU
// on the records of an upload. The document built is the one
// Json::parse would build (but for "-0", an unsigned zero here and a signed
// one there: the same number to every reader); any text simdjson refuses
// (too deep, a number out of range, not JSON) is handed to Json::parse,
// which decides.
//
// Thread-safety: safe from any thread (each keeps its own parser).
#pragma once

#include <string_view>

#include "core/json_reader.h"

namespace loyalty::hq {

// A discarded document (is_discarded()) when the text is not JSON.
core::Json parse_json(std::string_view text);

}  // namespace loyalty::hq
