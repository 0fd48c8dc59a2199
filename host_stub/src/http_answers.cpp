#include "http_answers.hpp"

#include <algorithm>
#include <array>
#include <ctime>
#include <tuple>
#include <utility>

#include <boost/beast/core/error.hpp>
#include <boost/beast/core/file.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/file_body.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/none.hpp>
#include <boost/optional/optional.hpp>

#include "byte_range.hpp"

namespace hdp::host {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

std::string http_date(int64_t unix_seconds) {
  const auto t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 64> buf{};
  const size_t n = std::strftime(buf.data(), buf.size(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(buf.data(), n);
}

namespace {

// A body of length bytes of an open file from offset on, read in chunks as it is written (for
// 206 answers; Beast's file_body of Boost 1.81 always sends a file to its end).
struct FileSliceBody {
  struct value_type {
    beast::file file;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
  };

  static std::uint64_t size(const value_type& body) { return body.length; }

  class writer {
   public:
    using const_buffers_type = asio::const_buffer;

    template <bool isRequest, class Fields>
    writer(const http::header<isRequest, Fields>& /*header*/, value_type& body) : body_(body), remain_(body.length) {}

    void init(beast::error_code& ec) { body_.file.seek(body_.offset, ec); }

    boost::optional<std::pair<const_buffers_type, bool>> get(beast::error_code& ec) {
      ec = {};
      if (remain_ == 0) return boost::none;
      const auto amount = static_cast<std::size_t>(std::min<std::uint64_t>(remain_, buffer_.size()));
      const std::size_t read = body_.file.read(buffer_.data(), amount, ec);
      if (ec) return boost::none;
      if (read == 0) {  // the file shrank under us: the promised length cannot be sent
        ec = http::error::short_read;
        return boost::none;
      }
      remain_ -= read;
      return std::make_pair(const_buffers_type(buffer_.data(), read), remain_ > 0);
    }

   private:
    value_type& body_;
    std::uint64_t remain_;
    std::array<char, 16 * 1024> buffer_{};
  };
};

template <class Body>
void fill_header(http::response<Body>& res, const HttpResponse& answer, bool keep_alive) {
  res.set(http::field::server, "hdp-stub-host");
  res.set(http::field::date, http_date(std::time(nullptr)));
  if (!answer.content_type.empty()) res.set(http::field::content_type, answer.content_type);
  for (const auto& [name, value] : answer.headers) res.insert(name, value);
  res.keep_alive(keep_alive);
}

// 416 for a file answer: an error body instead of the file, with Content-Range naming the
// size. The route's headers stay, except Content-Disposition, which describes the file.
HttpResponse range_not_satisfiable(HttpResponse&& file_answer, const ByteRangeDecision& range, std::uint64_t size) {
  HttpResponse response = HttpResponse::error(416, "range not satisfiable");
  for (auto& header : file_answer.headers) {
    if (!beast::iequals(header.first, "Content-Disposition")) response.headers.push_back(std::move(header));
  }
  response.headers.emplace_back("Content-Range", content_range_value(range, size));  // "bytes */size"
  response.headers.emplace_back("Accept-Ranges", "bytes");
  return response;
}

}  // namespace

http::message_generator build_answer(HttpResponse&& answer, const AnswerFraming& request, bool keep_alive) {
  const auto status = static_cast<http::status>(answer.status);
  const bool no_body = answer.status == 204 || answer.status == 304;
  if (answer.file) {
    beast::error_code ec;
    beast::file file;
    file.open(answer.file->c_str(), beast::file_mode::scan, ec);
    const std::uint64_t size = ec ? 0 : file.size(ec);
    if (ec) return build_answer(HttpResponse::error(404, "file not found"), request, keep_alive);
    ByteRangeDecision range;  // whole
    if (answer.status == 200 && request.range_field) range = decide_byte_range(*request.range_field, size);
    if (range.kind == ByteRangeDecision::Kind::unsatisfiable || range.kind == ByteRangeDecision::Kind::invalid) {
      return build_answer(range_not_satisfiable(std::move(answer), range, size), request, keep_alive);
    }
    if (request.head) {
      http::response<http::empty_body> res{status, request.version};
      fill_header(res, answer, keep_alive);
      res.set(http::field::accept_ranges, "bytes");
      res.content_length(size);
      return http::message_generator(std::move(res));
    }
    if (range.kind == ByteRangeDecision::Kind::partial) {
      http::response<FileSliceBody> res{http::status::partial_content, request.version};
      fill_header(res, answer, keep_alive);
      res.set(http::field::accept_ranges, "bytes");
      res.set(http::field::content_range, content_range_value(range, size));
      res.body().file = std::move(file);
      res.body().offset = range.first;
      res.body().length = range.length();
      res.content_length(range.length());
      return http::message_generator(std::move(res));
    }
    http::file_body::value_type whole;
    whole.reset(std::move(file), ec);
    if (ec) return build_answer(HttpResponse::error(404, "file not found"), request, keep_alive);
    http::response<http::file_body> res{std::piecewise_construct, std::make_tuple(std::move(whole)),
                                        std::make_tuple(status, request.version)};
    fill_header(res, answer, keep_alive);
    res.set(http::field::accept_ranges, "bytes");
    res.content_length(size);
    return http::message_generator(std::move(res));
  }
  if (request.head || no_body) {
    http::response<http::empty_body> res{status, request.version};
    fill_header(res, answer, keep_alive);
    if (!no_body) res.content_length(answer.body.size());
    return http::message_generator(std::move(res));
  }
  http::response<http::string_body> res{status, request.version};
  fill_header(res, answer, keep_alive);
  res.body() = std::move(answer.body);
  res.prepare_payload();
  return http::message_generator(std::move(res));
}

}  // namespace hdp::host
