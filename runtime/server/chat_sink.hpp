#pragma once
// The answer of one chat call as it happens: one chat.completion JSON body, or chat.completion.chunk SSE events
// ending in [DONE] (text and tool-call deltas as they arrive from the upstream, on io threads). A failure before
// the first chunk is an error answer whose status comes from the typed failure (openai_encoding.hpp); after it, an
// error event ends the stream, never a clean end. No Beast here.
#include "actors/messages.hpp"
#include "runtime/host/audit_log.hpp"
#include "runtime/server/http_server.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

namespace squad::server {

/// What the chat sink needs to know about the call it answers.
struct chat_answer_options {
  std::string id;    ///< the completion id (chatcmpl-...)
  std::string model; ///< the model as the client named it
  bool stream = false;
  bool include_usage = false;
  bool cache_only = false;           ///< X-Squad-Cache: only: a miss is a 404 cache_miss, not a shed
  std::shared_ptr<call_audit> audit; ///< null: not audited; else the answer is noted before it goes out
  bool audit_bodies = false;
};

/// Creates the sink for a call whose answer goes to `out`; `t0` is the request's arrival (overhead metric).
std::shared_ptr<call_sink> make_chat_sink(std::shared_ptr<responder> out, chat_answer_options opts,
                                          std::chrono::steady_clock::time_point t0);

} // namespace squad::server
