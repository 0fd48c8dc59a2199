// The classification table, row by row, as a pure function of what a transfer observed.
#include "wavoip/fetch/fetch_classification.hpp"

#include <curl/curl.h>

#include <gtest/gtest.h>

#include <cerrno>

#include "fetch_test_printers.hpp"

namespace wavoip {
namespace {

TransferFacts http(long status, std::string content_type, uint64_t bytes, std::string preview = {}) {
  TransferFacts facts;
  facts.curl_code = CURLE_OK;
  facts.http_status = status;
  facts.content_type = std::move(content_type);
  facts.body_bytes = bytes;
  facts.body_preview = std::move(preview);
  return facts;
}

TransferFacts failed(CURLcode code, std::string curl_error = {}, long os_errno = 0) {
  TransferFacts facts;
  facts.curl_code = code;
  facts.curl_error = std::move(curl_error);
  facts.os_errno = os_errno;
  facts.host = "storage.wavoip.com";
  return facts;
}

Classification classify(const TransferFacts& facts) {
  FetchOptions options;
  options.total_timeout = std::chrono::seconds(30);
  return classify_transfer(facts, options);
}

TEST(FetchClassificationTest, AudioWithBodyIsReady) {
  EXPECT_EQ(classify(http(200, "audio/mpeg", 10)).kind, FetchKind::ready_file);
  EXPECT_EQ(classify(http(200, "audio/mpeg", 10)).detail, "downloaded 10 bytes");
  EXPECT_EQ(classify(http(200, "Audio/MPEG; charset=binary", 3 * 1024 * 1024)).detail, "downloaded 3 MiB");
  EXPECT_EQ(classify(http(206, "audio/ogg", 1)).kind, FetchKind::ready_file);
  EXPECT_EQ(classify(http(200, " audio/wav ", 1)).kind, FetchKind::ready_file);
}

TEST(FetchClassificationTest, NotReadyAnswers) {
  const Classification empty = classify(http(200, "audio/mpeg", 0));
  EXPECT_EQ(empty.kind, FetchKind::not_ready);
  EXPECT_EQ(empty.detail, "the recording file is still empty");

  const Classification json = classify(http(200, "application/json", 22, R"({"status":"RECORDING"})"));
  EXPECT_EQ(json.kind, FetchKind::not_ready);
  EXPECT_EQ(json.detail, "recording not ready yet (status RECORDING)");
  EXPECT_EQ(classify(http(200, "application/json", 30, "{ \"id\": 1, \"status\" : \"MIXING\" }")).detail,
            "recording not ready yet (status MIXING)");

  const Classification html = classify(http(200, "text/html", 500, "<html>"));
  EXPECT_EQ(html.kind, FetchKind::not_ready);
  EXPECT_EQ(html.detail, "recording not ready yet (server sent text/html, not audio)");
  EXPECT_EQ(classify(http(200, "", 5)).detail, "recording not ready yet (server sent no content type, not audio)");
  EXPECT_EQ(classify(http(200, "audio", 5)).kind, FetchKind::not_ready);
  EXPECT_EQ(classify(http(200, "audio/", 5)).kind, FetchKind::not_ready);
  EXPECT_EQ(classify(http(200, "application/octet-stream", 5)).kind, FetchKind::not_ready);

  const Classification missing = classify(http(404, "text/plain", 9, "not found"));
  EXPECT_EQ(missing.kind, FetchKind::not_ready);
  EXPECT_EQ(missing.detail, "");  // the status is the whole answer
}

TEST(FetchClassificationTest, HttpErrorStatuses) {
  for (long status : {410L, 400L, 405L, 451L}) {
    EXPECT_EQ(classify(http(status, "text/plain", 1)).kind, FetchKind::permanent_error) << status;
  }
  for (long status : {401L, 403L}) {
    EXPECT_EQ(classify(http(status, "text/plain", 1)).kind, FetchKind::not_ready) << status;
  }
  EXPECT_EQ(classify(http(403, "text/plain", 1)).detail, "access denied");
  EXPECT_EQ(classify(http(410, "", 0)).detail, "recording removed");
  for (long status : {408L, 425L, 429L, 500L, 502L, 503L, 504L, 599L}) {
    EXPECT_EQ(classify(http(status, "text/plain", 1)).kind, FetchKind::transient_error) << status;
  }
  EXPECT_EQ(classify(http(503, "", 0)).detail, "server error");
  EXPECT_EQ(classify(http(429, "", 0)).detail, "too many requests");
  // A redirect that was not followed (no Location) or anything unexpected: try again later.
  EXPECT_EQ(classify(http(302, "", 0)).kind, FetchKind::transient_error);
  EXPECT_EQ(classify(http(302, "", 0)).detail, "unexpected answer");
}

TEST(FetchClassificationTest, LongNonAudioBodyCutShortIsClassifiedByStatus) {
  TransferFacts facts = http(404, "text/html", 70000, "<html>");
  facts.curl_code = CURLE_WRITE_ERROR;
  facts.non_audio_body_cut = true;
  EXPECT_EQ(classify(facts).kind, FetchKind::not_ready);
  facts.http_status = 200;
  EXPECT_EQ(classify(facts).kind, FetchKind::not_ready);
}

TEST(FetchClassificationTest, GuardsBlock) {
  TransferFacts capped = http(200, "audio/mpeg", 200u << 20);
  capped.curl_code = CURLE_WRITE_ERROR;
  capped.size_cap_hit = true;
  EXPECT_TRUE(classify(capped).blocked);
  EXPECT_EQ(classify(capped).detail, "recording larger than 200 MiB");
  EXPECT_EQ(classify(failed(CURLE_FILESIZE_EXCEEDED)).detail, "recording larger than 200 MiB");

  const Classification redirects = classify(failed(CURLE_TOO_MANY_REDIRECTS));
  EXPECT_TRUE(redirects.blocked);
  EXPECT_EQ(redirects.detail, "too many redirects (more than 3)");

  TransferFacts scheme = failed(CURLE_UNSUPPORTED_PROTOCOL);
  scheme.redirect_count = 1;
  EXPECT_TRUE(classify(scheme).blocked);
  EXPECT_EQ(classify(scheme).detail, "redirected to a URL scheme that is not allowed (https only)");

  TransferFacts address = failed(CURLE_COULDNT_CONNECT, "", ECONNREFUSED);
  address.refused_connections = 1;
  address.refused_address = "10.0.0.5";
  address.refused_class = AddressClass::private_network;
  EXPECT_TRUE(classify(address).blocked);
  EXPECT_EQ(classify(address).detail, "address 10.0.0.5 is not allowed (private network)");

  address.refused_plain_http = true;
  address.refused_address = "8.8.8.8";
  EXPECT_EQ(classify(address).detail, "plain http to 8.8.8.8 is not allowed (only to loopback in development mode)");
}

TEST(FetchClassificationTest, GuardsWinOverOtherSymptoms) {
  TransferFacts facts = http(500, "audio/mpeg", 10);
  facts.curl_code = CURLE_WRITE_ERROR;
  facts.size_cap_hit = true;
  EXPECT_TRUE(classify(facts).blocked);
}

TEST(FetchClassificationTest, NetworkTroubleIsTransient) {
  struct Row {
    TransferFacts facts;
    const char* detail;
  };
  TransferFacts partial = failed(CURLE_PARTIAL_FILE);
  partial.body_bytes = 512 * 1024;
  partial.content_length = 1024 * 1024;
  const Row rows[] = {
      {failed(CURLE_COULDNT_CONNECT, "Failed to connect", ECONNREFUSED), "connection refused"},
      {failed(CURLE_COULDNT_CONNECT, "", ENETUNREACH), "network unreachable"},
      {failed(CURLE_COULDNT_RESOLVE_HOST), "could not find the server storage.wavoip.com"},
      {failed(CURLE_OPERATION_TIMEDOUT, "Operation timed out after 30001 milliseconds with 5 bytes received"),
       "timed out after 30 s"},
      {failed(CURLE_OPERATION_TIMEDOUT, "Operation too slow. Less than 1024 bytes/sec transferred the last 60 seconds"),
       "download stalled (under 1 KiB/s for 60 s)"},
      {failed(CURLE_OPERATION_TIMEDOUT, "Connection timed out after 15001 milliseconds"),
       "connection timed out after 15 s"},
      {failed(CURLE_OPERATION_TIMEDOUT, "Failed to connect to x port 443 after 15000 ms: Timeout was reached"),
       "connection timed out after 15 s"},
      {failed(CURLE_OPERATION_TIMEDOUT, "Resolving timed out after 15000 milliseconds"),
       "looking up storage.wavoip.com timed out"},
      {partial, "download interrupted (got 512 KiB of 1 MiB)"},
      {failed(CURLE_PARTIAL_FILE), "download interrupted"},
      {failed(CURLE_RECV_ERROR, "Recv failure: Connection reset by peer", ECONNRESET), "connection reset"},
      {failed(CURLE_SEND_ERROR, "", EPIPE), "connection reset"},
      {failed(CURLE_GOT_NOTHING), "server closed the connection without answering"},
      {failed(CURLE_PEER_FAILED_VERIFICATION), "server certificate not trusted"},
      {failed(CURLE_SSL_CONNECT_ERROR), "secure connection (TLS) failed"},
      {failed(CURLE_HTTP2_STREAM), "invalid answer from the server"},
  };
  for (const Row& row : rows) {
    const Classification c = classify(row.facts);
    EXPECT_EQ(c.kind, FetchKind::transient_error) << row.detail;
    EXPECT_EQ(c.detail, row.detail);
  }
  TransferFacts disk = http(200, "audio/mpeg", 10);
  disk.curl_code = CURLE_WRITE_ERROR;
  disk.write_errno = ENOSPC;
  EXPECT_EQ(classify(disk).kind, FetchKind::transient_error);
  EXPECT_EQ(classify(disk).detail, "could not write the recording to disk: No space left on device");
  EXPECT_EQ(classify(failed(CURLE_OUT_OF_MEMORY)).kind, FetchKind::transient_error);
  EXPECT_EQ(classify(failed(CURLE_URL_MALFORMAT)).kind, FetchKind::permanent_error);
}

TEST(FetchClassificationTest, ConnectTimeoutNamesTheLimitThatApplied) {
  FetchOptions options;
  options.connect_timeout = std::chrono::seconds(15);
  options.total_timeout = std::chrono::milliseconds(500);
  EXPECT_EQ(classify_transfer(failed(CURLE_OPERATION_TIMEDOUT, "Connection timed out after 501 milliseconds"), options)
                .detail,
            "connection timed out after 0.5 s");
}

TEST(FetchClassificationTest, Formatting) {
  EXPECT_EQ(format_size(0), "0 bytes");
  EXPECT_EQ(format_size(1023), "1023 bytes");
  EXPECT_EQ(format_size(1024), "1 KiB");
  EXPECT_EQ(format_size(1536), "1.5 KiB");
  EXPECT_EQ(format_size(200u << 20), "200 MiB");
  EXPECT_EQ(format_size((3u << 20) / 2), "1.5 MiB");
  EXPECT_EQ(format_duration(std::chrono::seconds(30)), "30 s");
  EXPECT_EQ(format_duration(std::chrono::milliseconds(500)), "0.5 s");
  EXPECT_EQ(format_duration(std::chrono::milliseconds(1500)), "1.5 s");
  EXPECT_EQ(format_duration(std::chrono::milliseconds(250)), "250 ms");
}

// A guard's refusal is a permanent error the flow fails on, marked as a guard's; nothing else is.
TEST(FetchClassificationTest, GuardRefusalsArePermanentErrorsMarkedBlocked) {
  TransferFacts capped;
  capped.curl_code = CURLE_WRITE_ERROR;
  capped.size_cap_hit = true;
  const Classification guard = classify(capped);
  EXPECT_EQ(guard.kind, FetchKind::permanent_error);
  EXPECT_TRUE(guard.blocked);
  const Classification gone = classify(http(410, "", 0));
  EXPECT_EQ(gone.kind, FetchKind::permanent_error);
  EXPECT_FALSE(gone.blocked);
}

}  // namespace
}  // namespace wavoip
