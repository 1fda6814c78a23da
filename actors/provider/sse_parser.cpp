#include "actors/provider/sse_parser.hpp"

namespace squad {

std::vector<sse_event> sse_parser::feed(std::string_view chunk) {
  std::vector<sse_event> out;
  std::size_t i = 0;
  while (i < chunk.size() && !failed_) {
    if (skip_lf_) {
      skip_lf_ = false;
      if (chunk[i] == '\n') {
        ++i;
        continue;
      }
    }
    auto end = chunk.find_first_of("\r\n", i);
    if (end == std::string_view::npos) {
      line_.append(chunk.substr(i));
      over_limit();
      break;
    }
    line_.append(chunk.substr(i, end - i));
    if (over_limit())
      break;
    skip_lf_ = chunk[end] == '\r';
    i = end + 1;
    process_line(out);
    line_.clear();
    over_limit();
  }
  return out;
}

bool sse_parser::over_limit() {
  if (failed_ || line_.size() + data_.size() + event_.size() <= max_event_bytes_)
    return failed_;
  failed_ = true;
  error_ = "event larger than " + std::to_string(max_event_bytes_) + " bytes";
  line_.clear();
  data_.clear();
  event_.clear();
  return true;
}

void sse_parser::process_line(std::vector<sse_event>& out) {
  std::string_view line = line_;
  if (first_line_) {
    first_line_ = false;
    if (line.substr(0, 3) == "\xEF\xBB\xBF")
      line.remove_prefix(3);
  }
  if (line.empty()) {
    if (!data_.empty()) {
      data_.pop_back(); // the '\n' after the last data line
      out.push_back({std::move(event_), std::move(data_), last_id_});
    }
    data_.clear();
    event_.clear();
    return;
  }
  if (line.front() == ':')
    return; // a comment (servers send them as keep-alives)
  std::string_view field = line;
  std::string_view value;
  if (auto colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ')
      value.remove_prefix(1);
  }
  if (field == "data") {
    data_.append(value);
    data_.push_back('\n');
  } else if (field == "event") {
    event_.assign(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos)
      last_id_.assign(value);
  }
  // "retry" and unknown fields are ignored: reconnecting is the HTTP client's business, not the stream's.
}

} // namespace squad
