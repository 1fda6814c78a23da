#pragma once
// Identifiers the API hands out: completion ids and request ids, random so that they stay unique across
// restarts and across processes (a counter restarted at 1 repeated them).
#include <cstddef>
#include <string>
#include <string_view>

namespace squad::server {

/// `length` random characters of [0-9a-z] (about 5.2 bits each), from a per-thread generator seeded by the OS.
std::string random_id(std::size_t length);

/// The request id of an answer: the client's x-request-id when it is 1 to 128 visible ASCII characters, else a
/// new "req_" id.
std::string request_id_for(std::string_view client_value);

} // namespace squad::server
