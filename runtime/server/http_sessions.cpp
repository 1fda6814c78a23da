// The HTTP session's responder and upgrade, and the WebSocket session (http_detail.hpp declares them).
#include "runtime/server/http_detail.hpp"

namespace squad::server::detail {

// -- responder ------------------------------------------------------------------------------------------------------

responder_impl::~responder_impl() {
  if (phase_ == phase::done)
    return;
  auto s = s_;
  bool streaming = phase_ == phase::streaming;
  s->post([s, streaming] {
    if (streaming) // a stream whose owner vanished: end it visibly, never as a clean end
      s->queue("0\r\n\r\n", true);
    else
      s->answered_without_reply();
  });
}

// Each call posts while holding m_: the strand then runs the pieces in the order their phases were checked, even
// when write() and end() race on two threads (a chunk can never follow the terminating chunk).
void responder_impl::reply(int status, header_list headers, std::string body) {
  std::lock_guard<std::mutex> g{m_};
  if (phase_ != phase::fresh)
    return;
  phase_ = phase::done;
  s_->post([s = s_, status, headers = std::move(headers), body = std::move(body)]() mutable {
    auto text = head_text(status, headers, "Content-Length: " + std::to_string(body.size()) + "\r\n", s->close_after());
    text += body;
    s->queue(std::move(text), true);
  });
}

void responder_impl::start_stream(int status, header_list headers) {
  std::lock_guard<std::mutex> g{m_};
  if (phase_ != phase::fresh)
    return;
  phase_ = phase::streaming;
  s_->post([s = s_, status, headers = std::move(headers)]() mutable {
    s->queue(head_text(status, headers, "Transfer-Encoding: chunked\r\n", s->close_after()), false);
  });
}

void responder_impl::write(std::string piece) {
  std::lock_guard<std::mutex> g{m_};
  if (phase_ != phase::streaming || piece.empty())
    return;
  char size[20];
  std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
  std::string chunk = size;
  chunk += piece;
  chunk += "\r\n";
  s_->post([s = s_, chunk = std::move(chunk)]() mutable { s->queue(std::move(chunk), false); });
}

void responder_impl::end() {
  std::lock_guard<std::mutex> g{m_};
  if (phase_ != phase::streaming)
    return;
  phase_ = phase::done;
  s_->post([s = s_] { s->queue("0\r\n\r\n", true); });
}

bool responder_impl::gone() const {
  return s_->gone();
}
bool responder_impl::hung_up() const {
  return s_->hung_up();
}

// -- WebSocket session ----------------------------------------------------------------------------------------------

void session::upgrade(http::request<http::string_body> msg, const request& req) {
  ws_refusal refusal;
  auto handler = srv_->on_ws() ? srv_->on_ws()(req, refusal) : nullptr;
  if (!handler) {
    close_after_ = true;
    auto text = head_text(refusal.status, refusal.headers,
                          "Content-Length: " + std::to_string(refusal.body.size()) + "\r\n", true);
    return queue(text + refusal.body, true);
  }
  // The HTTP session ends here; the socket moves to a WebSocket session.
  finish_answer();
  closed_ = true;
  {
    std::lock_guard g{fd_m_};
    fd_ = -1; // the socket now belongs to the WebSocket session
  }
  auto ws = std::make_shared<ws_session>(stream_.release_socket(), srv_);
  ws->run(std::move(msg), std::move(handler));
}

ws_session::ws_session(tcp::socket&& socket, std::shared_ptr<server_impl> srv)
    : ws_(std::move(socket)), srv_(std::move(srv)) {}

void ws_session::run(const http::request<http::string_body>& upgrade, std::shared_ptr<ws_handler> handler) {
  handler_ = std::move(handler);
  ws_.read_message_max(srv_->opts().ws_max_message);
  auto t = websocket::stream_base::timeout::suggested(beast::role_type::server);
  t.idle_timeout = srv_->opts().ws_ping_interval; // a ping after this much silence; no pong in time closes
  t.keep_alive_pings = true;
  ws_.set_option(t);
  srv_->ws_open_++;
  {
    std::lock_guard<std::mutex> g{srv_->sessions_m_};
    srv_->ws_sessions_.insert(weak_from_this());
  }
  ws_.async_accept(upgrade, [self = shared_from_this()](beast::error_code ec) {
    if (ec)
      return self->finish();
    if (self->handler_)
      self->handler_->on_open(self);
    self->read();
  });
}

void ws_session::read() {
  ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
    if (ec)
      return self->finish();
    auto text = beast::buffers_to_string(self->buffer_.data());
    self->buffer_.consume(self->buffer_.size());
    if (self->handler_)
      self->handler_->on_message(std::move(text));
    self->read();
  });
}

bool ws_session::send(std::string text) {
  if (gone_)
    return false;
  if (queued_.load() >= srv_->opts().ws_max_queued)
    return false;
  queued_++;
  asio::post(ws_.get_executor(), [self = shared_from_this(), text = std::move(text)]() mutable {
    self->out_.push_back(std::move(text));
    self->write_next();
  });
  return true;
}

void ws_session::write_next() {
  if (writing_ || out_.empty())
    return;
  if (gone_) {
    queued_ -= out_.size();
    out_.clear();
    return;
  }
  writing_ = true;
  ws_.text(true);
  ws_.async_write(asio::buffer(out_.front()), [self = shared_from_this()](beast::error_code ec, std::size_t) {
    self->writing_ = false;
    self->out_.pop_front();
    self->queued_--;
    if (ec)
      return self->finish();
    self->write_next();
  });
}

void ws_session::close() {
  asio::post(ws_.get_executor(), [self = shared_from_this()] {
    if (self->gone_)
      return;
    self->gone_ = true;
    self->ws_.async_close(websocket::close_code::normal, [self](beast::error_code) { self->finish(); });
  });
}

void ws_session::finish() {
  if (finished_)
    return;
  finished_ = true;
  gone_ = true;
  srv_->ws_open_--;
  {
    std::lock_guard<std::mutex> g{srv_->sessions_m_};
    for (auto it = srv_->ws_sessions_.begin(); it != srv_->ws_sessions_.end();) // this one and any ended
      it = it->expired() || it->lock().get() == this ? srv_->ws_sessions_.erase(it) : std::next(it);
  }
  if (handler_) {
    auto h = std::move(handler_);
    h->on_close();
  }
  beast::error_code ec;
  beast::get_lowest_layer(ws_).socket().close(ec);
}
} // namespace squad::server::detail
