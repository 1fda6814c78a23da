#include "runtime/server/answer_meter.hpp"
#include "runtime/metrics/registry.hpp"

#include <array>
#include <atomic>

namespace squad::server {

namespace {

using steady = std::chrono::steady_clock;

const metrics::counter_family requests_total{"squad_http_requests_total",
                                             "HTTP requests answered, by route and status"};
const metrics::histogram_family request_seconds{"squad_http_request_duration_seconds",
                                                "time from a request's arrival to the end of its answer, by route"};

// One route's series, each resolved on its first use (a route or status never answered shows no series), then read
// lock-free: one lookup under the registry's lock per route and status for the process's life.
class route_meter {
public:
  explicit route_meter(route r) : name_(spec_of(r).name) {}

  void count(int status, double seconds) {
    status_counter(status).inc();
    auto d = duration_.load(std::memory_order_acquire);
    if (!d) { // two threads may both resolve it: the same series either way
      d = request_seconds.with({{"route", name_}});
      duration_.store(d, std::memory_order_release);
    }
    d.observe(seconds);
  }

private:
  static constexpr int lowest = 100, highest = 599;
  metrics::counter resolve(int status) const {
    return requests_total.with({{"route", name_}, {"status", status ? std::to_string(status) : "unanswered"}});
  }
  metrics::counter status_counter(int status) {
    if (status != 0 && (status < lowest || status > highest)) // not an HTTP status: looked up each time
      return resolve(status);
    auto& slot = by_status_[status == 0 ? 0 : static_cast<std::size_t>(status - lowest + 1)];
    auto c = slot.load(std::memory_order_acquire);
    if (!c) {
      c = resolve(status);
      slot.store(c, std::memory_order_release);
    }
    return c;
  }

  std::string name_;
  std::atomic<metrics::histogram> duration_{};
  std::array<std::atomic<metrics::counter>, highest - lowest + 2> by_status_{}; // [0]: unanswered
};

route_meter& meter_of(route r) {
  static std::array<std::unique_ptr<route_meter>, route_count> meters = [] {
    std::array<std::unique_ptr<route_meter>, route_count> m;
    for (std::size_t i = 0; i < route_count; ++i)
      m[i] = std::make_unique<route_meter>(static_cast<route>(i));
    return m;
  }();
  return *meters[static_cast<std::size_t>(r)];
}

class counted_responder final : public forwarding_responder {
public:
  counted_responder(std::shared_ptr<responder> inner, route_meter* meter, steady::time_point t0,
                    std::function<void()> on_end, std::string request_id)
      : forwarding_responder(std::move(inner)), meter_(meter), t0_(t0), on_end_(std::move(on_end)),
        request_id_(std::move(request_id)) {}
  ~counted_responder() override { finish(); }
  void reply(int status, header_list headers, std::string body) override {
    status_ = status;
    if (!request_id_.empty())
      headers.emplace_back("x-request-id", request_id_);
    inner_->reply(status, std::move(headers), std::move(body));
    finish();
  }
  void start_stream(int status, header_list headers) override {
    status_ = status;
    if (!request_id_.empty())
      headers.emplace_back("x-request-id", request_id_);
    inner_->start_stream(status, std::move(headers));
  }
  void end() override {
    inner_->end();
    finish();
  }

private:
  void finish() {
    if (done_.exchange(true))
      return;
    if (meter_)
      meter_->count(status_, std::chrono::duration<double>(steady::now() - t0_).count());
    if (on_end_)
      on_end_();
  }
  route_meter* meter_; // null: not counted
  steady::time_point t0_;
  std::function<void()> on_end_;
  std::string request_id_; // echoed on every answer (the client's own, when it sent one)
  int status_ = 0;
  std::atomic<bool> done_{false};
};

} // namespace

std::shared_ptr<responder> metered(std::shared_ptr<responder> inner, route r, steady::time_point t0,
                                   std::string request_id) {
  return std::make_shared<counted_responder>(std::move(inner), &meter_of(r), t0, std::function<void()>{},
                                             std::move(request_id));
}

namespace {

class header_responder final : public forwarding_responder {
public:
  header_responder(std::shared_ptr<responder> inner, header_list extra)
      : forwarding_responder(std::move(inner)), extra_(std::move(extra)) {}
  void reply(int status, header_list headers, std::string body) override {
    headers.insert(headers.end(), extra_.begin(), extra_.end());
    inner_->reply(status, std::move(headers), std::move(body));
  }
  void start_stream(int status, header_list headers) override {
    headers.insert(headers.end(), extra_.begin(), extra_.end());
    inner_->start_stream(status, std::move(headers));
  }

private:
  header_list extra_;
};

} // namespace

std::shared_ptr<responder> with_headers(std::shared_ptr<responder> inner, header_list extra) {
  if (extra.empty())
    return inner;
  return std::make_shared<header_responder>(std::move(inner), std::move(extra));
}

std::shared_ptr<responder> on_answer_end(std::shared_ptr<responder> inner, std::function<void()> on_end) {
  return std::make_shared<counted_responder>(std::move(inner), nullptr, steady::now(), std::move(on_end),
                                             std::string{});
}

} // namespace squad::server
