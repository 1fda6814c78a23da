#include "actors/vocabulary.hpp"

namespace squad {

const char* to_string(outcome o) {
  switch (o) {
  case outcome::ok:
    return "ok";
  case outcome::rate_limited:
    return "rate_limited";
  case outcome::overloaded:
    return "overloaded";
  case outcome::server_error:
    return "server_error";
  case outcome::timeout:
    return "timeout";
  case outcome::connect_failed:
    return "connect_failed";
  case outcome::bad_response:
    return "bad_response";
  case outcome::stream_cut:
    return "stream_cut";
  case outcome::auth_failed:
    return "auth_failed";
  case outcome::bad_request:
    return "bad_request";
  case outcome::context_too_long:
    return "context_too_long";
  case outcome::unavailable:
    return "unavailable";
  }
  return "unknown";
}

bool is_retryable(outcome o) {
  switch (o) {
  case outcome::auth_failed:
  case outcome::bad_request:
  case outcome::context_too_long:
    return false;
  default:
    return true;
  }
}

const char* to_string(squad_errc e) {
  switch (e) {
  case squad_errc::none:
    return "none";
  case squad_errc::no_such_child:
    return "no_such_child";
  case squad_errc::child_unavailable:
    return "child_unavailable";
  case squad_errc::intensity_exceeded:
    return "intensity_exceeded";
  case squad_errc::chain_exhausted:
    return "chain_exhausted";
  case squad_errc::unknown_persona:
    return "unknown_persona";
  case squad_errc::deadline_exceeded:
    return "deadline_exceeded";
  case squad_errc::cancelled:
    return "cancelled";
  case squad_errc::shed:
    return "shed";
  case squad_errc::budget_spent:
    return "budget_spent";
  }
  return "unknown";
}

} // namespace squad
