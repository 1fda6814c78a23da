#pragma once
// An error answer of the API as a value: its HTTP status and the fields of an OpenAI-style error body. Pure logic
// (the parsers return it; openai_encoding.hpp writes it).
#include <cstdint>
#include <string>

namespace squad::server {

struct api_error {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;              ///< the field at fault; "" : null
  std::string code;               ///< a stable code (model_not_found, ...); "" : null
  std::int64_t retry_after_s = 0; ///< > 0: sent as Retry-After
};

} // namespace squad::server
