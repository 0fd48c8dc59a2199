// Range requests on attachment downloads of the real hdp-stub-host (what an <audio controls>
// player needs to seek in a call recording): a recording attached through the probe plugin is
// fetched over real HTTP with single byte ranges (206 and exactly those bytes), ranges the host
// cannot satisfy (416), and ranges it ignores (200 with the whole file).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_support.hpp"

namespace hdp::test {
namespace {

using namespace std::chrono_literals;

class AttachmentRanges : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(host.started()) << host.log();
    const HttpResponse signed_in = sign_in(http, host);
    ASSERT_EQ(signed_in.status, 200) << host.log();
    const std::string set_cookie = signed_in.headers.at("set-cookie");
    cookie = set_cookie.substr(0, set_cookie.find(';'));
  }

  // Attaches bytes to a new call message; returns the path of its download.
  std::string attach(const std::string& bytes, const std::string& key) {
    const auto upserted = http.post(host.url("/probe/message?key=wavoip:" + key + "&contact=5511")).json();
    EXPECT_EQ(json_int(upserted, "status"), 0);
    const int64_t message = json_int(upserted, "message_id");
    const size_t before = results().size();
    const auto started = http.post(host.url("/probe/attach?message_id=" + std::to_string(message) + "&key=" + key +
                                            "&name=call.ogg&mime=audio/ogg&times=1"),
                                   bytes);
    EXPECT_EQ(started.status, 200) << started.body;
    EXPECT_TRUE(eventually([&] { return results().size() == before + 1; }));
    const auto all = results();
    if (all.size() != before + 1) return "/api/attachments/0/file";
    EXPECT_EQ(all[before].at("status").as_int64(), 0);
    return "/api/attachments/" + std::to_string(all[before].at("attachment_id").as_int64()) + "/file";
  }

  boost::json::array results() { return http.get(host.url("/probe/attach-results")).json().at("results").as_array(); }

  HttpResponse get_range(const std::string& path, const std::string& range,
                         std::vector<std::string> extra_headers = {}) {
    extra_headers.push_back("Range: " + range);
    return http.get(host.url(path), extra_headers);
  }

  static std::string recording(size_t size) {
    std::string bytes;
    bytes.reserve(size);
    for (size_t i = 0; i < size; ++i) bytes += static_cast<char>((i * 131 + i / 256) % 256);
    return bytes;
  }

  // Of an HttpResponse or a RawResponse (both keep header names lower-case).
  template <typename Response>
  static std::string header(const Response& r, const std::string& name) {
    const auto it = r.headers.find(name);
    return it == r.headers.end() ? std::string("<none>") : it->second;
  }

  HostProcess host{with_agent(probe_host())};
  HttpClient http;
  std::string cookie;  // "hdp_session=...", for requests written by hand
};

TEST_F(AttachmentRanges, WithoutRangeTheWholeFileComesWithAcceptRanges) {
  const std::string bytes = recording(40000);
  const std::string path = attach(bytes, "whole");
  const auto r = http.get(host.url(path));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(header(r, "accept-ranges"), "bytes");
  EXPECT_EQ(header(r, "content-length"), "40000");
  EXPECT_EQ(header(r, "content-range"), "<none>");
  EXPECT_EQ(header(r, "content-type"), "audio/ogg");
  EXPECT_EQ(header(r, "content-disposition"), "inline; filename=\"call.ogg\"");
  EXPECT_EQ(header(r, "x-content-type-options"), "nosniff");
  EXPECT_TRUE(r.body == bytes);
}

TEST_F(AttachmentRanges, ASingleRangeAnswers206WithExactlyThoseBytes) {
  const std::string bytes = recording(600000);  // many chunks of the host's 16 KiB reads
  const std::string path = attach(bytes, "partial");
  struct Case {
    std::string range;
    size_t first;
    size_t last;
  };
  const std::vector<Case> cases = {
      {"bytes=0-0", 0, 0},
      {"bytes=0-1023", 0, 1023},
      {"bytes=100-16483", 100, 16483},             // across a chunk boundary
      {"bytes=16384-49151", 16384, 49151},         // whole chunks, aligned
      {"bytes=250001-", 250001, 599999},           // to the end
      {"bytes=-10", 599990, 599999},               // suffix
      {"bytes=599999-599999", 599999, 599999},     // the last byte
      {"bytes=590000-999999999", 590000, 599999},  // last clamped to the end
      {"bytes=-1000000", 0, 599999},               // suffix longer than the file
      {"Bytes = 7-8 ", 7, 8},                      // unit case and whitespace
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.range);
    const auto r = get_range(path, c.range);
    EXPECT_EQ(r.status, 206);
    EXPECT_EQ(header(r, "content-range"),
              "bytes " + std::to_string(c.first) + "-" + std::to_string(c.last) + "/600000");
    EXPECT_EQ(header(r, "content-length"), std::to_string(c.last - c.first + 1));
    EXPECT_EQ(header(r, "accept-ranges"), "bytes");
    EXPECT_EQ(header(r, "content-type"), "audio/ogg");
    EXPECT_EQ(header(r, "content-disposition"), "inline; filename=\"call.ogg\"");
    EXPECT_EQ(header(r, "x-content-type-options"), "nosniff");
    ASSERT_EQ(r.body.size(), c.last - c.first + 1);
    EXPECT_TRUE(r.body == bytes.substr(c.first, c.last - c.first + 1));
    // The answer's framing is exact: the same connection carries on.
    EXPECT_EQ(r.new_connections, 0);
  }
}

TEST_F(AttachmentRanges, UnsatisfiableOrMalformedRangesAnswer416) {
  const std::string bytes = recording(40000);
  const std::string path = attach(bytes, "unsatisfiable");
  for (const std::string range : {"bytes=40000-", "bytes=50000-60000", "bytes=-0", "bytes=5-3", "bytes=abc",
                                  "bytes=", "bytes=0-99999999999999999999999"}) {
    SCOPED_TRACE(range);
    const auto r = get_range(path, range);
    EXPECT_EQ(r.status, 416);
    EXPECT_EQ(header(r, "content-range"), "bytes */40000");
    EXPECT_EQ(header(r, "accept-ranges"), "bytes");
    EXPECT_EQ(header(r, "content-type"), "application/json");
    EXPECT_EQ(header(r, "content-disposition"), "<none>");  // the body is not the file
    EXPECT_EQ(header(r, "x-content-type-options"), "nosniff");
    EXPECT_EQ(r.body, R"({"error":"range not satisfiable"})");
    EXPECT_EQ(r.new_connections, 0);
  }
  // The connection still serves the file afterwards.
  const auto whole = http.get(host.url(path));
  EXPECT_EQ(whole.status, 200);
  EXPECT_TRUE(whole.body == bytes);
}

TEST_F(AttachmentRanges, SeveralRangesOtherUnitsAndIfRangeGetTheWholeFile) {
  const std::string bytes = recording(40000);
  const std::string path = attach(bytes, "ignored");
  const std::vector<std::vector<std::string>> requests = {
      {"Range: bytes=0-1,5-6"},
      {"Range: bytes=0-1, 30000-"},
      {"Range: items=0-5"},
      {"Range: bytes=0-99", "If-Range: \"some-etag\""},
      {"Range: bytes=0-99", "If-Range: Sun, 06 Nov 1994 08:49:37 GMT"},
      {"Range: bytes=0-99", "Range: bytes=100-199"},  // two fields are two ranges
  };
  for (const auto& headers : requests) {
    SCOPED_TRACE(headers.front() + (headers.size() > 1 ? " + " + headers.back() : ""));
    const auto r = http.get(host.url(path), headers);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(header(r, "accept-ranges"), "bytes");
    EXPECT_EQ(header(r, "content-range"), "<none>");
    EXPECT_EQ(header(r, "content-length"), "40000");
    EXPECT_EQ(header(r, "content-type"), "audio/ogg");
    EXPECT_TRUE(r.body == bytes);
  }
}

TEST_F(AttachmentRanges, PipelinedRangeRequestsKeepTheirFraming) {
  const std::string bytes = recording(40000);
  const std::string path = attach(bytes, "pipelined");
  RawConnection c(host.port());
  ASSERT_TRUE(c.connected());
  const std::string prefix = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: " + cookie + "\r\n";
  ASSERT_TRUE(c.send(prefix + "Range: bytes=1000-1999\r\n\r\n" +  //
                     prefix + "Range: bytes=40000-\r\n\r\n" +     //
                     prefix + "Range: bytes=-3\r\n\r\n" +         //
                     prefix + "\r\n"));
  const auto first = c.read_response(5s);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 206);
  EXPECT_EQ(header(*first, "content-range"), "bytes 1000-1999/40000");
  EXPECT_TRUE(first->body == bytes.substr(1000, 1000));
  const auto second = c.read_response(5s);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 416);
  EXPECT_EQ(header(*second, "content-range"), "bytes */40000");
  const auto third = c.read_response(5s);
  ASSERT_TRUE(third);
  EXPECT_EQ(third->status, 206);
  EXPECT_EQ(header(*third, "content-range"), "bytes 39997-39999/40000");
  EXPECT_TRUE(third->body == bytes.substr(39997));
  const auto fourth = c.read_response(5s);
  ASSERT_TRUE(fourth);
  EXPECT_EQ(fourth->status, 200);
  EXPECT_EQ(header(*fourth, "accept-ranges"), "bytes");
  EXPECT_TRUE(fourth->body == bytes);
}

TEST_F(AttachmentRanges, AnEmptyRecordingHasNoSatisfiableFirstPosition) {
  const std::string path = attach("", "empty");
  const auto whole = http.get(host.url(path));
  EXPECT_EQ(whole.status, 200);
  EXPECT_EQ(header(whole, "content-length"), "0");
  EXPECT_EQ(header(whole, "accept-ranges"), "bytes");
  const auto from_zero = get_range(path, "bytes=0-");
  EXPECT_EQ(from_zero.status, 416);
  EXPECT_EQ(header(from_zero, "content-range"), "bytes */0");
  const auto suffix = get_range(path, "bytes=-5");
  EXPECT_EQ(suffix.status, 200);
  EXPECT_EQ(header(suffix, "content-length"), "0");
  EXPECT_TRUE(suffix.body.empty());
}

TEST_F(AttachmentRanges, RangesOnOtherAnswersAreIgnored) {
  // Not a file: the header means nothing to a JSON answer or an error.
  const auto json = get_range("/healthz", "bytes=0-1");
  EXPECT_EQ(json.status, 200);
  EXPECT_EQ(header(json, "content-range"), "<none>");
  EXPECT_EQ(header(json, "accept-ranges"), "<none>");
  const auto missing = get_range("/api/attachments/999/file", "bytes=0-1");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(header(missing, "content-range"), "<none>");
}

}  // namespace
}  // namespace hdp::test
