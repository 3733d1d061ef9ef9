// The part of a committed purchase that a later return reads
// (ledger.h: evaluate_return, commit_return), as JSON. The terminal stores it
// with the transaction, and sync carries it to HQ, so a receipt can be
// returned line by line at this terminal later, or at another store.
//
// Thread-safety: pure functions.
#pragma once

#include "core/json_reader.h"
#include "core/ledger.h"

namespace loyalty::core {

Json return_basis_to_json(const Committed& c);

// Rebuilds a Committed holding only what returns read. Every problem is
// reported with its path, like any other input.
[[nodiscard]] Result<Committed> return_basis_from_json(const Json& j);

}  // namespace loyalty::core
