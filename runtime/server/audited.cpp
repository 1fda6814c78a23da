#include "runtime/server/audited.hpp"
#include "actors/store/writer.hpp"

#include <nlohmann/json.hpp>

#include <atomic>

namespace squad::server {

namespace {

class audited_responder final : public forwarding_responder {
public:
  audited_responder(std::shared_ptr<responder> inner, std::shared_ptr<audit_log> log, std::shared_ptr<call_audit> a)
      : forwarding_responder(std::move(inner)), log_(std::move(log)), a_(std::move(a)) {}
  ~audited_responder() override { finish(); }

  void reply(int status, header_list headers, std::string body) override {
    a_->status = status;
    if (status >= 400 && a_->error_class.empty()) { // the error body's code names what was refused
      auto j = nlohmann::json::parse(body, nullptr, false);
      if (j.is_object() && j.contains("error") && j["error"].is_object()) {
        auto& e = j["error"];
        a_->error_class = e.contains("code") && e["code"].is_string() ? e["code"].get<std::string>()
                                                                      : e.value("type", std::string{"error"});
      }
    }
    if (log_->bodies() && a_->response_body.empty())
      a_->response_body = body;
    inner_->reply(status, std::move(headers), std::move(body));
    finish();
  }
  void start_stream(int status, header_list headers) override {
    a_->status = status;
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
    log_->record(*a_, unix_ms());
  }
  std::shared_ptr<audit_log> log_;
  std::shared_ptr<call_audit> a_;
  std::atomic<bool> done_{false};
};

} // namespace

std::shared_ptr<responder> audited(std::shared_ptr<responder> inner, std::shared_ptr<audit_log> log,
                                   std::shared_ptr<call_audit> a) {
  return std::make_shared<audited_responder>(std::move(inner), std::move(log), std::move(a));
}

} // namespace squad::server
