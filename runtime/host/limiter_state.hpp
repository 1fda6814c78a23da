#pragma once
// Limiter state across restarts, wired between the store and the limiters (docs/storage.md, "Limiter state"): at
// start the checkpoints the store keeps are loaded into a limiter_memory (for the limiters the config still has),
// which the tree hands to every limiter it spawns; from then on each checkpoint a limiter saves is queued for the
// store's writer, one row per limits domain; a clean stop asks every limiter for a last one before the journal's
// final flush. Without a store (storage.url none) none of this runs and the limiters start empty, as before.
#include "actors/registry/directory.hpp"
#include "runtime/host/run_journal.hpp"

#include <set>

namespace squad {

/// The limits domains `cfg` has limiters for: each provider, and each model with limits of its own ("provider/model").
std::set<std::string> limiter_domains(const config& cfg);

/// A memory seeded with the checkpoints `db` keeps for the limiters `cfg` configures. A checkpoint of a domain no
/// longer configured, or one this binary cannot read, is left out (a line says so). Throws store::store_error.
std::shared_ptr<limiter_memory> load_limiter_memory(store::store& db, const config& cfg);

/// Every checkpoint saved into `memory` from now on (and any saved before, not sent yet) is queued for `journal`'s
/// store, while the journal lives.
void keep_limiters_in(limiter_memory& memory, const std::shared_ptr<run_journal>& journal);

/// Asks every limiter in `dir` to save its state now (a clean stop), waiting at most `timeout` for them all.
/// Returns how many answered.
std::size_t save_limiters(caf::actor_system& sys, const directory& dir, millis timeout);

} // namespace squad
