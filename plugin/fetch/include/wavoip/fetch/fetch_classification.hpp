// What a finished transfer means for the per-call flow: the classification table, as a pure
// function of what was observed, so it is tested without I/O. The one place that decides what
// an answer from WaVoIP's storage means:
//
// | answer                                   | kind            | why |
// |------------------------------------------|-----------------|-----|
// | 2xx, `audio/*`, non-empty body           | ready           | the only proof a recording exists |
// | 2xx other type or empty (`{"status":"RECORDING"}`) | not ready | an integration saw this before READY |
// | 404                                      | not ready       | the file appears "after a few minutes" |
// | 401, 403                                 | not ready       | storage needs no auth; S3-style stores answer 403 for
// objects that do not exist yet | | 408, 425, 429, 5xx                       | transient error | the server or the path
// is busy: retry with backoff | | 1xx, 3xx not followed (no Location)      | transient error | unexpected: retry until
// the deadline | | 410                                      | permanent error | the recording was removed on the
// customer's request | | other 4xx                                | permanent error | repeating the same request will
// not help | | timeouts, resets, DNS, truncated body    | transient error | | | a download guard (URL, address, size,
// redirects) | permanent error, `blocked` | |
//
// A permanent error still yields to a later READY webhook or a manual retry.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "wavoip/fetch/address_policy.hpp"
#include "wavoip/fetch/recording_fetcher.hpp"

namespace wavoip {

// Everything the fetcher observed about one finished transfer.
struct TransferFacts {
  int curl_code = 0;            // CURLcode of the transfer
  long http_status = 0;         // last response; 0 if none
  std::string content_type;     // last response, as sent
  uint64_t body_bytes = 0;      // body bytes of the last response
  int64_t content_length = -1;  // announced length of the last response; -1 if unknown
  std::string body_preview;     // first bytes of a non-audio body
  long redirect_count = 0;
  long os_errno = 0;       // CURLINFO_OS_ERRNO
  std::string curl_error;  // libcurl's error buffer (English, for engineers)
  std::string host;        // host of the requested URL
  // Download guards and local failures seen by the callbacks.
  bool size_cap_hit = false;         // the write callback refused bytes over max_bytes
  bool non_audio_body_cut = false;   // the write callback stopped reading a long non-audio body
  int write_errno = 0;               // writing the file failed
  uint64_t refused_connections = 0;  // the address guard refused this many connects
  std::string refused_address;       // the last refused address, printable
  AddressClass refused_class = AddressClass::public_address;
  bool refused_plain_http = false;  // dev mode: http towards a non-loopback address
};

struct Classification {
  FetchKind kind = FetchKind::transient_error;
  std::string detail;    // readable by a helpdesk agent; never repeats the HTTP status
  bool blocked = false;  // a download guard refused it (always a permanent error)
};

Classification classify_transfer(const TransferFacts& facts, const FetchOptions& options);

// True for `audio/<something>`, parameters and case ignored ("Audio/MPEG; charset=x").
bool is_audio_content_type(std::string_view content_type);

// "200 MiB", "1.5 MiB", "512 KiB", "17 bytes".
std::string format_size(uint64_t bytes);

// "30 s", "0.5 s", "250 ms".
std::string format_duration(std::chrono::milliseconds duration);

}  // namespace wavoip
