// Helpers shared by the checkout service's files: problem construction,
// request parsing, time. Internal to terminal/.
#pragma once

#include <string>

#include "core/engine.h"
#include "terminal/checkout.h"

namespace loyalty::terminal::detail {

ApiError problem(int status, std::string type, std::string title, std::string detail,
                 std::string field = {}, Json extra = nullptr);
// An engine or validation error: 422 with every problem listed.
ApiError from_error(const core::Error& e);
// Parses {"member_id", "basket": {...}} or {"member_id", "event": ...}.
std::expected<std::string, ApiError> read_member_id(const Json& body);
// `internal`: events loyaltyd raises itself (enrollment), not a POS.
std::expected<core::Request, ApiError> read_request(const Json& body, bool internal = false);
std::string body_hash(const std::string& scope, const Json& body);
std::string masked_phone(const std::string& phone);

}  // namespace loyalty::terminal::detail
