// What loyaltyctl prints for people: a member at the counter (name, block
// and HQ's flags first), receipts, the reward catalog and a stored
// transaction, with money in yuan and columns counted in display width so
// Chinese names line up.
//
// Thread-safety: pure functions writing to the stream they are given.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "core/json_reader.h"

namespace loyalty::terminal {

// Minor units as a person reads money: "¥100.50" for CNY, "12.00 USD".
std::string money_text(std::int64_t minor, const std::string& currency = "CNY");

void print_member(const core::Json& m, std::ostream& out);
void print_receipt(const core::Json& answer, std::ostream& out);
void print_rewards(const core::Json& rewards, std::ostream& out);
// A stored transaction (GET /v1/transactions/ID): its receipt, who made it,
// and what can still be returned.
void print_transaction(const core::Json& t, std::ostream& out);

}  // namespace loyalty::terminal
