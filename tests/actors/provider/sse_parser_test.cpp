#include "actors/provider/sse_parser.hpp"

#include <catch2/catch.hpp>

#include <cstddef>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using squad::sse_event;
using squad::sse_parser;

namespace {

// Events as one comparable string each: "name|data|id".
std::vector<std::string> flat(const std::vector<sse_event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events)
    out.push_back(e.event + "|" + e.data + "|" + e.id);
  return out;
}

std::vector<std::string> parse_whole(std::string_view stream, std::size_t max = 1024 * 1024) {
  sse_parser p(max);
  return flat(p.feed(stream));
}

// Feeds `stream` in pieces of the given sizes (cycled), collecting every event.
std::vector<std::string> parse_in_pieces(std::string_view stream, const std::vector<std::size_t>& sizes) {
  sse_parser p;
  std::vector<sse_event> all;
  std::size_t pos = 0;
  for (std::size_t i = 0; pos < stream.size(); ++i) {
    auto n = sizes[i % sizes.size()];
    auto events = p.feed(stream.substr(pos, n));
    all.insert(all.end(), events.begin(), events.end());
    pos += n;
  }
  return flat(all);
}

// A stream with every feature at once: both line-end styles, comments, names, ids, multi-line data.
const std::string mixed_stream = "\xEF\xBB\xBF: hello\r\n"
                                 "event: message_start\r\n"
                                 "data: {\"type\":\"message_start\"}\r\n"
                                 "\r\n"
                                 "data:first\n"
                                 "data: second\n"
                                 "id: 7\n"
                                 "\n"
                                 ": keep-alive\r"
                                 "\r"
                                 "event: ping\r"
                                 "data: {\"type\": \"ping\"}\r"
                                 "\r"
                                 "data: [DONE]\r\n\r\n";

const std::vector<std::string> mixed_events = {
    "message_start|{\"type\":\"message_start\"}|",
    "|first\nsecond|7",
    "ping|{\"type\": \"ping\"}|7",
    "|[DONE]|7",
};

} // namespace

TEST_CASE("sse: one data line makes one unnamed event") {
  // The simplest stream, as OpenAI sends it.
  CHECK(parse_whole("data: hello\n\n") == std::vector<std::string>{"|hello|"});
}

TEST_CASE("sse: data lines join with newlines") {
  // Several data lines are one payload, joined by '\n' with no trailing newline.
  CHECK(parse_whole("data: a\ndata: b\ndata: c\n\n") == std::vector<std::string>{"|a\nb\nc|"});
}

TEST_CASE("sse: event name and id are reported, and the id carries over") {
  // `event:` names one event only; `id:` stays until replaced, as the spec says.
  auto events = parse_whole("event: delta\nid: 41\ndata: x\n\ndata: y\n\nid: 42\nevent: stop\ndata: z\n\n");
  CHECK(events == std::vector<std::string>{"delta|x|41", "|y|41", "stop|z|42"});
}

TEST_CASE("sse: the three line endings parse alike") {
  // LF, CRLF and lone CR all end lines.
  auto lf = parse_whole("event: e\ndata: 1\ndata: 2\n\ndata: 3\n\n");
  CHECK(lf == std::vector<std::string>{"e|1\n2|", "|3|"});
  CHECK(parse_whole("event: e\r\ndata: 1\r\ndata: 2\r\n\r\ndata: 3\r\n\r\n") == lf);
  CHECK(parse_whole("event: e\rdata: 1\rdata: 2\r\rdata: 3\r\r") == lf);
  CHECK(parse_whole("event: e\r\ndata: 1\rdata: 2\n\r\ndata: 3\n\r") == lf);
}

TEST_CASE("sse: a CRLF split across chunks is one line end") {
  // The '\n' that opens a chunk after a chunk ending in '\r' must not count as a blank line.
  sse_parser p;
  CHECK(p.feed("data: a\r").empty());
  CHECK(p.feed("\ndata: b\r").empty());
  CHECK(flat(p.feed("\n\r")) == std::vector<std::string>{"|a\nb|"});
  CHECK(p.feed("\n").empty());
  CHECK(flat(p.feed("data: c\n\n")) == std::vector<std::string>{"|c|"});
}

TEST_CASE("sse: comments are skipped") {
  // Keep-alive comments produce nothing and do not break an event around them.
  CHECK(parse_whole(": keep-alive\n\n:\n\n").empty());
  CHECK(parse_whole("data: a\n: OPENROUTER PROCESSING\ndata: b\n\n") == std::vector<std::string>{"|a\nb|"});
}

TEST_CASE("sse: the space after the colon is optional and only one is removed") {
  // "data:x" and "data: x" are the same; a second space is part of the value.
  CHECK(parse_whole("data:x\n\n") == std::vector<std::string>{"|x|"});
  CHECK(parse_whole("data:  x\n\n") == std::vector<std::string>{"| x|"});
  CHECK(parse_whole("event:e\ndata:a:b: c\n\n") == std::vector<std::string>{"e|a:b: c|"});
}

TEST_CASE("sse: a line without a colon is a field with an empty value") {
  // "data" alone adds an empty data line, so the event has empty data and is still dispatched.
  CHECK(parse_whole("data\n\n") == std::vector<std::string>{"||"});
  CHECK(parse_whole("data\ndata\n\n") == std::vector<std::string>{"|\n|"});
  CHECK(parse_whole("data: \n\n") == std::vector<std::string>{"||"});
}

TEST_CASE("sse: an event without data is not dispatched and its name does not leak") {
  // The spec drops data-less events; their event name must not stick to the next one.
  CHECK(parse_whole("event: ping\n\n").empty());
  CHECK(parse_whole("event: ping\n\ndata: x\n\n") == std::vector<std::string>{"|x|"});
}

TEST_CASE("sse: unknown fields and retry are ignored") {
  // Fields the spec does not define, and `retry:`, change nothing.
  CHECK(parse_whole("retry: 3000\nfoo: bar\ndata: x\nData: y\n\n") == std::vector<std::string>{"|x|"});
}

TEST_CASE("sse: an id holding NUL is ignored") {
  // The spec ignores such ids; the previous id stays.
  CHECK(parse_whole(std::string("id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\n", 32)) ==
        std::vector<std::string>{"|a|1", "|b|1"});
}

TEST_CASE("sse: a leading UTF-8 byte order mark is skipped") {
  // Only at the very start of the stream.
  CHECK(parse_whole("\xEF\xBB\xBF"
                    "data: x\n\n") == std::vector<std::string>{"|x|"});
  CHECK(parse_whole("data: x\n\n\xEF\xBB\xBF"
                    "data: y\n\n") == std::vector<std::string>{"|x|"});
}

TEST_CASE("sse: an event not closed by a blank line is not an event") {
  // A stream cut mid-event yields nothing for that event.
  CHECK(parse_whole("data: a\n\ndata: b\n").size() == 1);
  CHECK(parse_whole("data: a\n\ndata: b").size() == 1);
}

TEST_CASE("sse: byte by byte equals whole") {
  // Chunk boundaries never change the events, wherever they fall.
  REQUIRE(parse_whole(mixed_stream) == mixed_events);
  CHECK(parse_in_pieces(mixed_stream, {1}) == mixed_events);
  CHECK(parse_in_pieces(mixed_stream, {2}) == mixed_events);
  CHECK(parse_in_pieces(mixed_stream, {3, 1, 7}) == mixed_events);
}

TEST_CASE("sse: every single split point gives the same events") {
  // Two chunks, split at each position in turn (including inside the BOM and every CRLF).
  for (std::size_t cut = 0; cut <= mixed_stream.size(); ++cut) {
    INFO("cut at " << cut);
    sse_parser p;
    auto events = p.feed(std::string_view(mixed_stream).substr(0, cut));
    auto rest = p.feed(std::string_view(mixed_stream).substr(cut));
    events.insert(events.end(), rest.begin(), rest.end());
    CHECK(flat(events) == mixed_events);
  }
}

TEST_CASE("sse: random chunkings give the same events") {
  // A fixed seed keeps the test deterministic.
  std::mt19937 rng(20240816);
  std::uniform_int_distribution<std::size_t> size(1, 12);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::size_t> sizes;
    for (int i = 0; i < 16; ++i)
      sizes.push_back(size(rng));
    CHECK(parse_in_pieces(mixed_stream, sizes) == mixed_events);
  }
}

TEST_CASE("sse: an event larger than the limit fails the parser") {
  // A single line past the limit is an error state, not unbounded growth.
  sse_parser p(16);
  CHECK(flat(p.feed("data: ok\n\n")) == std::vector<std::string>{"|ok|"});
  CHECK_FALSE(p.failed());
  CHECK(p.error().empty());
  CHECK(p.feed("data: 0123456789abcdef").empty());
  CHECK(p.failed());
  CHECK(p.error() == "event larger than 16 bytes");
  // Failed for good: even a well-formed event afterwards is ignored.
  CHECK(p.feed("\n\ndata: x\n\n").empty());
  CHECK(p.failed());
}

TEST_CASE("sse: many data lines past the limit fail too") {
  // The guard counts what an event holds across lines, not just one line.
  sse_parser p(20);
  CHECK(p.feed("data: 123456\ndata: 123456\n").empty());
  CHECK_FALSE(p.failed());
  CHECK(p.feed("data: 123456\n").empty());
  CHECK(p.failed());
}

TEST_CASE("sse: events completed before the overflow in the same chunk are returned") {
  // The overflow fails the parser, but what it finished before stays delivered.
  sse_parser p(16);
  CHECK(flat(p.feed("data: a\n\ndata: 0123456789abcdefghij\n\n")) == std::vector<std::string>{"|a|"});
  CHECK(p.failed());
}

TEST_CASE("sse: an event exactly at the limit is fine") {
  // The limit is inclusive: data of 10 bytes plus the 6-byte "data: " prefix fits in 16.
  sse_parser p(16);
  CHECK(flat(p.feed("data: 0123456789\n\n")) == std::vector<std::string>{"|0123456789|"});
  CHECK_FALSE(p.failed());
}

TEST_CASE("sse: the limit holds when fed byte by byte") {
  // Growth one byte at a time is caught as well.
  sse_parser p(64);
  std::string line = "data: " + std::string(100, 'x');
  for (char c : line)
    p.feed(std::string_view(&c, 1));
  CHECK(p.failed());
}
