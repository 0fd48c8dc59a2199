#include "http_types.hpp"

namespace hdp::host {
namespace {

std::string json_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\u00";
      out += hex[u >> 4U];
      out += hex[u & 0xfU];
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

HttpResponse HttpResponse::text(unsigned status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::json(unsigned status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::error(unsigned status, std::string_view message) {
  return json(status, R"({"error":")" + json_escape(message) + "\"}");
}

HttpResponse HttpResponse::try_again(std::string_view message) {
  HttpResponse unavailable = error(503, message);
  unavailable.headers.emplace_back("Retry-After", "1");
  return unavailable;
}

bool Responder::respond(HttpResponse&& response) {
  if (answered_) return false;
  answered_ = true;
  on_gone_ = nullptr;
  if (gone_) return false;
  deliver_(std::move(response));
  return true;
}

void Responder::client_gone() {
  if (gone_) return;
  gone_ = true;
  if (answered_) return;
  // Move out first: the callback may drop the last reference to this responder.
  auto callback = std::move(on_gone_);
  on_gone_ = nullptr;
  if (callback) callback();
}

}  // namespace hdp::host
