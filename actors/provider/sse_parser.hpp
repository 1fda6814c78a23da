#pragma once
// An incremental Server-Sent Events parser (the WHATWG "event stream interpretation"), for the streaming
// replies of OpenAI- and Anthropic-style APIs. Pure logic: bytes in, complete events out. Chunks may be split
// anywhere, even between the '\r' and '\n' of one line end.
//
// Follows the spec where it matters to us: '\n', "\r\n" and '\r' end lines; a blank line dispatches the event;
// lines starting with ':' are comments; "field:value" and "field: value" are the same; a line without a
// colon is a field with an empty value; data lines join with '\n'; an event with no data is not dispatched;
// a leading UTF-8 BOM is skipped; an event still open when the stream ends is not an event.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace squad {

/// One complete event.
struct sse_event {
  std::string event; ///< the `event:` field; empty when the stream named none (the spec's "message")
  std::string data;  ///< the `data:` lines joined by '\n'
  std::string id;    ///< the last `id:` seen on the stream so far (it carries over, as in the spec)
};

class sse_parser {
public:
  /// `max_event_bytes` bounds the bytes held for one event (its pending line, data and name).
  explicit sse_parser(std::size_t max_event_bytes = std::size_t{1} << 20) : max_event_bytes_(max_event_bytes) {}

  /// Consumes `chunk` and returns the events it completed, in order. Once the parser has failed it ignores
  /// all input and returns nothing (events completed earlier in the failing chunk are still returned).
  std::vector<sse_event> feed(std::string_view chunk);

  /// Whether an event outgrew `max_event_bytes`; the stream cannot be trusted past that point.
  bool failed() const { return failed_; }

  /// Why the parser failed; empty while it has not.
  const std::string& error() const { return error_; }

private:
  void process_line(std::vector<sse_event>& out);
  bool over_limit();

  std::size_t max_event_bytes_;
  std::string line_;       // the current line, without its end
  std::string data_;       // data lines so far, each followed by '\n'
  std::string event_;      // the event name so far
  std::string last_id_;    // carries over between events
  bool skip_lf_ = false;   // the last line ended with '\r': a '\n' right after it belongs to that end
  bool first_line_ = true; // a BOM may start the first line
  bool failed_ = false;
  std::string error_;
};

} // namespace squad
