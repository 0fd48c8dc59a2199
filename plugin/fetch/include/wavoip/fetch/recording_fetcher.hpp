// Downloads call recordings with libcurl's multi interface, driven by the host's event loop,
// streaming each body to a file and classifying the outcome for the per-call flow.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "wavoip/fetch/event_loop.hpp"
#include "wavoip/core/fetch_outcome.hpp"

namespace wavoip {

// Download guards and limits. The defaults are the production settings.
struct FetchOptions {
  // Development mode for the local WaVoIP simulator: also allows `http`, and allows loopback
  // addresses (127/8, ::1). Every other forbidden range stays forbidden, and plain `http` is
  // still refused towards any non-loopback address. Never enable it in production.
  bool allow_insecure_loopback = false;
  // Redirect hops followed (CURLOPT_MAXREDIRS); each hop's connection is re-checked.
  long max_redirects = 3;
  // Largest recording accepted: an audio answer's Content-Length, then the bytes written.
  uint64_t max_bytes = uint64_t{200} * 1024 * 1024;
  // Time allowed for DNS + TCP + TLS (0 = libcurl's default, 300 s).
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(15)};
  // Whole transfer, redirects included, queueing behind max_connections included (0 = none).
  std::chrono::milliseconds total_timeout{std::chrono::minutes(15)};
  // A transfer slower than low_speed_limit bytes/s for low_speed_time is abandoned as stalled.
  long low_speed_limit = 1024;
  std::chrono::seconds low_speed_time{60};
  // Connections open at once across all transfers (CURLMOPT_MAX_TOTAL_CONNECTIONS); further
  // transfers wait in libcurl's queue. 0 = unlimited.
  long max_connections = 8;
  std::string user_agent = "wavoip-recordings-plugin/0.1 (helpdesk call recordings; libcurl)";
  // libcurl's receive buffer per transfer (CURLOPT_BUFFERSIZE; libcurl's default is 16 KiB).
  // Larger means fewer loop callbacks and write() calls per byte under many downloads, for
  // this much memory per download in flight.
  long receive_buffer_bytes = 128 * 1024;
  // Optional CA bundle file (CURLOPT_CAINFO); empty = libcurl's default trust store.
  std::string ca_file;
};

struct FetchRequest {
  std::string call_id;    // only echoed back in the result, for logs
  std::string url;        // http(s) URL; attacker-controlled, the guards apply
  std::string dest_path;  // file to stream into (created 0600, truncated); removed unless ready
};

struct FetchResult {
  uint64_t id = 0;
  std::string call_id;
  // What the answer means (the table in fetch_classification.hpp): ready_file when the file at
  // `path` is complete; not_ready, transient_error or permanent_error otherwise.
  FetchKind kind = FetchKind::transient_error;
  bool blocked = false;      // permanent_error because a download guard refused it
  long http_status = 0;      // of the last response; 0 when none arrived
  std::string content_type;  // of the last response, as sent; empty when none
  uint64_t bytes = 0;        // body bytes received from the last response
  std::string path;          // dest_path when kind == ready_file, else empty (the file is gone)
  // What else is known, short and readable by an agent, without the HTTP status (which is
  // http_status): "server error", "timed out after 30 s", "" for a plain 404.
  std::string detail;
  std::string body_preview;  // first bytes (<= 1 KiB) of a non-audio body, e.g. a JSON status
  int64_t elapsed_ms = 0;    // by the event loop's clock
};

// The downloads as the plugin's flow sees them, wherever they run: on the host's loop
// (RecordingFetcher) or on a thread of the plugin's own (FetchThread, fetch_thread.hpp). Both are
// used from one thread (the host's main thread), and call back on it.
class Downloader {
 public:
  using DoneCallback = std::function<void(const FetchResult&)>;

  virtual ~Downloader();

  // Starts a download and returns its id (never 0). on_done runs once, later, never from inside
  // fetch(), unless the downloader is destroyed (or stopped) first.
  virtual uint64_t fetch(FetchRequest request, DoneCallback on_done) = 0;

  // Downloads started whose callback has not run yet.
  virtual size_t in_flight() const = 0;

  // For a downloader whose transfers run on another thread: runs, on the calling thread, the
  // callbacks of the downloads finished since the last call. One that runs its callbacks from
  // the loop itself has nothing to do here.
  virtual void deliver() {}
};

// One per plugin instance, used on the loop thread only. The loop must outlive the fetcher.
//
// Callbacks: each fetch() ends in exactly one on_done call, always from a later loop iteration
// (never from inside fetch()), unless cancel() or the destructor comes first. on_done may call
// fetch() and cancel() and may destroy the fetcher.
class RecordingFetcher final : public Downloader {
 public:
  RecordingFetcher(EventLoop& loop, FetchOptions options);
  ~RecordingFetcher() override;  // abandons transfers in flight: no callbacks, partial files removed

  RecordingFetcher(const RecordingFetcher&) = delete;
  RecordingFetcher& operator=(const RecordingFetcher&) = delete;
  RecordingFetcher(RecordingFetcher&&) = delete;
  RecordingFetcher& operator=(RecordingFetcher&&) = delete;

  // Starts a download and returns its id (never 0).
  uint64_t fetch(FetchRequest request, DoneCallback on_done) override;

  // Stops a download whose callback has not run yet: its file is removed and on_done is never
  // called. Returns false for unknown or already delivered ids.
  bool cancel(uint64_t id);

  // Downloads started whose callback has not run yet (and not cancelled).
  size_t in_flight() const override;

  // Connections the address guard refused so far (each resolved address counts once).
  uint64_t refused_connections() const;

  // libcurl transfer handles created so far: a finished download's handle starts the next one.
  uint64_t handles_created() const;

  const FetchOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wavoip
