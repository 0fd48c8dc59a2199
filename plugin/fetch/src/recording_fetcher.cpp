// libcurl's multi interface on the host's loop, after curl's docs/examples/ephiperfifo.c and
// multi-uv.c: one fd watch per socket until CURL_POLL_REMOVE, one loop timer for libcurl's
// timeout, and curl_multi_info_read after every curl_multi_socket_action.
//
// Reentrancy rules kept here:
//  - libcurl is never called from inside one of its own callbacks (socket, timer, open-socket,
//    write, header); the timer callback only arms a loop timer.
//  - User callbacks never run inside libcurl or inside fetch()/cancel(): finished transfers are
//    queued and delivered one per loop timer, so on_done may fetch, cancel or destroy us.
#include "wavoip/fetch/recording_fetcher.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <optional>
#include <unordered_map>
#include <utility>

#include "wavoip/fetch/address_policy.hpp"
#include "wavoip/fetch/fetch_classification.hpp"

namespace wavoip {
namespace {

constexpr size_t kPreviewLimit = 1024;
// A non-audio body is only read this far: enough for a JSON status or an error page.
constexpr uint64_t kNonAudioBodyLimit = 64 * 1024;
constexpr size_t kMaxUrlLength = 8 * 1024;

struct EasyCleanup {
  void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
};
using EasyHandle = std::unique_ptr<CURL, EasyCleanup>;

struct MultiCleanup {
  void operator()(CURLM* multi) const { curl_multi_cleanup(multi); }
};
using MultiHandle = std::unique_ptr<CURLM, MultiCleanup>;

struct UrlCleanup {
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
};

struct CurlStringFree {
  void operator()(char* text) const { curl_free(text); }
};
using CurlString = std::unique_ptr<char, CurlStringFree>;

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Closes now and reports close(2)'s errno (0 on success): a failed close can mean lost data.
  int close_checked() {
    if (fd_ < 0) return 0;
    const int rc = ::close(std::exchange(fd_, -1));
    return rc == 0 ? 0 : errno;
  }
  void reset() {
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  }

 private:
  int fd_ = -1;
};

void ensure_curl_global_init() {
  // Once per process; never cleaned up, because the host or another plugin may use libcurl too.
  static const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  (void)rc;
}

void remove_file(const std::string& path) {
  if (!path.empty()) ::unlink(path.c_str());
}

// The folder a file would be created in ("." for a bare name).
std::string parent_dir(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

bool starts_with_ci(const char* text, std::string_view prefix) {
  for (char expected : prefix) {
    char c = *text++;
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != expected) return false;
  }
  return true;
}

struct ParsedUrl {
  std::string normalized;
  std::string scheme;
  std::string host;
};

// nullopt when the URL does not parse (or has no host).
std::optional<ParsedUrl> parse_url(const std::string& url) {
  if (url.empty() || url.size() > kMaxUrlLength) return std::nullopt;
  std::unique_ptr<CURLU, UrlCleanup> handle(curl_url());
  if (!handle) return std::nullopt;
  if (curl_url_set(handle.get(), CURLUPART_URL, url.c_str(), CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
    return std::nullopt;
  }
  auto part = [&](CURLUPart which) -> std::optional<std::string> {
    char* raw = nullptr;
    if (curl_url_get(handle.get(), which, &raw, 0) != CURLUE_OK || raw == nullptr) return std::nullopt;
    CurlString owned(raw);
    return std::string(owned.get());
  };
  ParsedUrl parsed;
  auto normalized = part(CURLUPART_URL);
  auto scheme = part(CURLUPART_SCHEME);
  auto host = part(CURLUPART_HOST);
  if (!normalized || !scheme) return std::nullopt;
  parsed.normalized = std::move(*normalized);
  parsed.scheme = std::move(*scheme);
  parsed.host = host.value_or("");
  return parsed;
}

}  // namespace

struct RecordingFetcher::Impl {
  // One download. Owned by `transfers` while libcurl works on it.
  struct Transfer {
    Impl* owner = nullptr;
    uint64_t id = 0;
    FetchRequest request;
    DoneCallback on_done;
    int64_t started_ms = 0;
    std::string host;
    EasyHandle easy;
    bool in_multi = false;
    UniqueFd file;          // opened when the first audio byte arrives: a poll answered 404 touches no file
    std::string unwritten;  // audio received and not written yet (libcurl hands it over 16 KiB at a time)
    bool created = false;   // dest_path exists (this transfer created it)
    bool reusable = false;  // libcurl finished it without error: its handle may start the next
    char error_buffer[CURL_ERROR_SIZE] = {};

    // The response being received; reset at each status line (redirect hops, 1xx).
    enum class Sink { undecided, file, discard } sink = Sink::undecided;
    uint64_t body_bytes = 0;
    std::string preview;
    bool size_cap_hit = false;
    bool non_audio_body_cut = false;
    int write_errno = 0;

    // Address guard.
    uint64_t refused = 0;
    std::string refused_address;
    AddressClass refused_class = AddressClass::public_address;
    bool refused_plain_http = false;
  };

  struct Completion {
    DoneCallback on_done;
    FetchResult result;
  };

  EventLoop& loop;
  FetchOptions options;
  std::string protocols;
  MultiHandle multi;
  std::unordered_map<uint64_t, std::unique_ptr<Transfer>> transfers;
  std::unordered_map<curl_socket_t, uint32_t> watched;  // socket -> interest we gave the loop
  std::deque<Completion> completed;                     // finished, callback not yet run
  uint64_t curl_timer = 0;
  uint64_t delivery_timer = 0;
  uint64_t next_id = 1;
  uint64_t refused_total = 0;
  // Transfer handles of finished downloads, to start the next ones with: a new handle and its
  // receive buffer (receive_buffer_bytes) for every poll cost about 1.5 us of the fetch thread's
  // 27 per poll (bench/RESULTS.md, section 17). Each is reset and every option set again for
  // each transfer (configure): nothing of the last transfer stays.
  std::vector<EasyHandle> idle_easy;
  uint64_t easy_created = 0;

  Impl(EventLoop& event_loop, FetchOptions fetch_options)
      : loop(event_loop),
        options(std::move(fetch_options)),
        protocols(options.allow_insecure_loopback ? "http,https" : "https") {
    // libcurl reads a negative redirect limit as "unlimited".
    options.max_redirects = std::max(0L, options.max_redirects);
    options.max_connections = std::max(0L, options.max_connections);
    ensure_curl_global_init();
    multi.reset(curl_multi_init());
    if (!multi) return;
    curl_multi_setopt(multi.get(), CURLMOPT_SOCKETFUNCTION, &Impl::on_curl_socket);
    curl_multi_setopt(multi.get(), CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi.get(), CURLMOPT_TIMERFUNCTION, &Impl::on_curl_timer);
    curl_multi_setopt(multi.get(), CURLMOPT_TIMERDATA, this);
    curl_multi_setopt(multi.get(), CURLMOPT_MAX_TOTAL_CONNECTIONS, options.max_connections);
    // Keep as many idle connections as may be open. libcurl's default cache holds four per
    // transfer in progress, so when polls come in waves (a batch answered 404 within a
    // millisecond, the next batch a moment later) it closed most of them between waves and
    // every wave paid new connections.
    if (options.max_connections > 0) curl_multi_setopt(multi.get(), CURLMOPT_MAXCONNECTS, options.max_connections);
  }

  ~Impl() {
    // Abandon everything silently; libcurl may still call the socket and timer callbacks while
    // handles are removed and the multi handle is cleaned up, so members stay valid until then.
    for (auto& [id, transfer] : transfers) discard(*transfer);
    transfers.clear();
    idle_easy.clear();
    for (Completion& completion : completed) {
      if (completion.result.kind == FetchKind::ready_file) remove_file(completion.result.path);
    }
    completed.clear();
    multi.reset();
    if (curl_timer != 0) loop.cancel_timer(std::exchange(curl_timer, 0));
    if (delivery_timer != 0) loop.cancel_timer(std::exchange(delivery_timer, 0));
    for (const auto& [fd, flags] : watched) loop.unwatch_fd(fd);
    watched.clear();
  }

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // ---- starting and stopping ----

  uint64_t start(FetchRequest request, DoneCallback on_done) {
    auto transfer = std::make_unique<Transfer>();
    transfer->owner = this;
    transfer->id = next_id++;
    transfer->request = std::move(request);
    transfer->on_done = std::move(on_done);
    transfer->started_ms = loop.now_ms();
    const uint64_t id = transfer->id;

    const std::optional<ParsedUrl> url = parse_url(transfer->request.url);
    if (!url) {
      finish_early(std::move(transfer), FetchKind::permanent_error, "invalid recording URL");
      return id;
    }
    transfer->host = url->host;
    const bool scheme_allowed = url->scheme == "https" || (options.allow_insecure_loopback && url->scheme == "http");
    if (!scheme_allowed) {
      finish_early(std::move(transfer), FetchKind::permanent_error,
                   "URL scheme \"" + url->scheme + "\" is not allowed (" +
                       (options.allow_insecure_loopback ? "http and https only" : "https only") + ")",
                   /*blocked=*/true);
      return id;
    }
    if (!multi) {
      finish_early(std::move(transfer), FetchKind::transient_error, "download engine unavailable (libcurl)");
      return id;
    }

    // The file itself is created with the first audio byte (most polls are answered 404 and
    // would create and unlink a file for nothing); a destination that cannot be written to is
    // refused here all the same, before anything is requested.
    if (::access(parent_dir(transfer->request.dest_path).c_str(), W_OK | X_OK) != 0) {
      finish_early(std::move(transfer), FetchKind::transient_error,
                   std::string("could not create the recording file: ") + std::strerror(errno));
      return id;
    }

    transfer->easy = take_easy();
    const CURLcode setup = transfer->easy ? configure(*transfer, url->normalized) : CURLE_FAILED_INIT;
    if (setup != CURLE_OK) {
      finish_early(std::move(transfer), FetchKind::transient_error,
                   std::string("could not start the download (") + curl_easy_strerror(setup) + ")");
      return id;
    }
    if (const CURLMcode added = curl_multi_add_handle(multi.get(), transfer->easy.get()); added != CURLM_OK) {
      finish_early(std::move(transfer), FetchKind::transient_error,
                   std::string("could not start the download (") + curl_multi_strerror(added) + ")");
      return id;
    }
    // libcurl now asks for a timeout of 0 through on_curl_timer; the loop starts the transfer.
    transfer->in_multi = true;
    transfers.emplace(id, std::move(transfer));
    return id;
  }

  CURLcode configure(Transfer& t, const std::string& url) {
    CURL* easy = t.easy.get();
    CURLcode rc = CURLE_OK;
    auto set = [&](CURLoption option, auto value) {
      if (rc == CURLE_OK) rc = curl_easy_setopt(easy, option, value);
    };
    set(CURLOPT_PRIVATE, static_cast<void*>(&t));
    set(CURLOPT_URL, url.c_str());
    set(CURLOPT_PROTOCOLS_STR, protocols.c_str());
    set(CURLOPT_REDIR_PROTOCOLS_STR, protocols.c_str());
    set(CURLOPT_FOLLOWLOCATION, 1L);
    set(CURLOPT_MAXREDIRS, options.max_redirects);
    set(CURLOPT_UNRESTRICTED_AUTH, 0L);
    set(CURLOPT_OPENSOCKETFUNCTION, &Impl::on_open_socket);
    set(CURLOPT_OPENSOCKETDATA, static_cast<void*>(&t));
    set(CURLOPT_WRITEFUNCTION, &Impl::on_body);
    set(CURLOPT_WRITEDATA, static_cast<void*>(&t));
    set(CURLOPT_HEADERFUNCTION, &Impl::on_header);
    set(CURLOPT_HEADERDATA, static_cast<void*>(&t));
    set(CURLOPT_ERRORBUFFER, t.error_buffer);
    set(CURLOPT_NOSIGNAL, 1L);
    // Abandoning a transfer must never wait for a hanging name lookup on the host's loop.
    set(CURLOPT_QUICK_EXIT, 1L);
    set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connect_timeout.count()));
    set(CURLOPT_TIMEOUT_MS, static_cast<long>(options.total_timeout.count()));
    set(CURLOPT_LOW_SPEED_LIMIT, options.low_speed_limit);
    set(CURLOPT_LOW_SPEED_TIME, static_cast<long>(options.low_speed_time.count()));
    // No CURLOPT_MAXFILESIZE_LARGE: it refuses any answer by its Content-Length, also a non-audio
    // "not ready yet" that must be polled again. The cap is checked on audio answers only, at the
    // end of their headers (on_header) and while writing (store_body).
    set(CURLOPT_USERAGENT, options.user_agent.c_str());
    set(CURLOPT_BUFFERSIZE, options.receive_buffer_bytes);
    // An environment proxy would make the address guard check the proxy instead of the target.
    set(CURLOPT_PROXY, "");
    set(CURLOPT_NETRC, static_cast<long>(CURL_NETRC_IGNORED));
    set(CURLOPT_SSL_VERIFYPEER, 1L);
    set(CURLOPT_SSL_VERIFYHOST, 2L);
    set(CURLOPT_TCP_KEEPALIVE, 1L);
    if (!options.ca_file.empty()) set(CURLOPT_CAINFO, options.ca_file.c_str());
    // No CURLOPT_COOKIEFILE (cookie engine stays off) and no CURLOPT_ACCEPT_ENCODING (the body
    // is stored as sent, so the size cap counts what lands on disk: no decompression bombs).
    return rc;
  }

  bool cancel(uint64_t id) {
    if (auto node = transfers.extract(id); !node.empty()) {
      discard(*node.mapped());
      return true;
    }
    for (auto it = completed.begin(); it != completed.end(); ++it) {
      if (it->result.id != id) continue;
      if (it->result.kind == FetchKind::ready_file) remove_file(it->result.path);
      completed.erase(it);
      return true;
    }
    return false;
  }

  EasyHandle take_easy() {
    if (!idle_easy.empty()) {
      EasyHandle easy = std::move(idle_easy.back());
      idle_easy.pop_back();
      // Back to libcurl's defaults; it keeps its buffers and caches.
      curl_easy_reset(easy.get());
      return easy;
    }
    EasyHandle easy(curl_easy_init());
    if (easy) ++easy_created;
    return easy;
  }

  // After curl_multi_remove_handle of a transfer libcurl finished without error (a refused
  // redirect, for one, leaves its handle refusing options): kept for the next transfer, up to
  // one per connection.
  void give_back(EasyHandle easy) {
    constexpr std::size_t kKeptWithoutConnectionLimit = 64;
    const std::size_t keep =
        options.max_connections > 0 ? static_cast<std::size_t>(options.max_connections) : kKeptWithoutConnectionLimit;
    if (easy && idle_easy.size() < keep) idle_easy.push_back(std::move(easy));
  }

  // Drops a transfer without a callback, removing its partial file.
  void discard(Transfer& t) {
    if (t.in_multi) {
      curl_multi_remove_handle(multi.get(), t.easy.get());
      t.in_multi = false;
    }
    t.easy.reset();
    t.file.reset();
    if (t.created) remove_file(t.request.dest_path);
  }

  // ---- completion ----

  void finish_early(std::unique_ptr<Transfer> t, FetchKind kind, std::string detail, bool blocked = false) {
    FetchResult result = base_result(*t);
    result.kind = kind;
    result.blocked = blocked;
    result.detail = std::move(detail);
    complete(std::move(t), std::move(result));
  }

  FetchResult base_result(const Transfer& t) {
    FetchResult result;
    result.id = t.id;
    result.call_id = t.request.call_id;
    result.elapsed_ms = loop.now_ms() - t.started_ms;
    return result;
  }

  void complete(std::unique_ptr<Transfer> t, FetchResult result) {
    if (t->in_multi) {
      curl_multi_remove_handle(multi.get(), t->easy.get());
      t->in_multi = false;
    }
    if (t->reusable) {
      give_back(std::move(t->easy));
    } else {
      t->easy.reset();  // an abandoned or failed transfer can leave its handle unusable
    }
    if (const int close_errno = t->file.close_checked(); close_errno != 0 && result.kind == FetchKind::ready_file) {
      result.kind = FetchKind::transient_error;
      result.detail = std::string("could not write the recording to disk: ") + std::strerror(close_errno);
    }
    if (result.kind == FetchKind::ready_file && !t->created) {
      // Audio with an empty body: the file is made now, empty, as before.
      if (const int open_errno = create_file(*t); open_errno != 0) {
        result.kind = FetchKind::transient_error;
        result.detail = std::string("could not create the recording file: ") + std::strerror(open_errno);
      } else if (const int close_errno = t->file.close_checked(); close_errno != 0) {
        result.kind = FetchKind::transient_error;
        result.detail = std::string("could not write the recording to disk: ") + std::strerror(close_errno);
      }
    }
    if (result.kind == FetchKind::ready_file) {
      result.path = t->request.dest_path;
    } else if (t->created) {
      remove_file(t->request.dest_path);
    }
    completed.push_back(Completion{std::move(t->on_done), std::move(result)});
    arm_delivery();
  }

  void arm_delivery() {
    if (delivery_timer == 0 && !completed.empty()) {
      delivery_timer = loop.start_timer(0, [self = this] { self->deliver_one(); });
    }
  }

  // One completion per loop turn; re-armed before the callback runs, so the callback may throw
  // or destroy the fetcher without stranding the others.
  void deliver_one() {
    delivery_timer = 0;
    if (completed.empty()) return;
    Completion completion = std::move(completed.front());
    completed.pop_front();
    arm_delivery();
    if (completion.on_done) completion.on_done(completion.result);
  }

  void collect_finished() {
    int queued = 0;
    while (CURLMsg* message = curl_multi_info_read(multi.get(), &queued)) {
      if (message->msg != CURLMSG_DONE) continue;
      CURL* easy = message->easy_handle;
      const CURLcode code = message->data.result;  // `message` dies with remove_handle
      char* private_data = nullptr;
      curl_easy_getinfo(easy, CURLINFO_PRIVATE, &private_data);
      const auto* transfer = reinterpret_cast<Transfer*>(private_data);
      if (transfer == nullptr) continue;
      auto node = transfers.extract(transfer->id);
      if (node.empty()) continue;
      FetchResult result = classify(*node.mapped(), code);
      node.mapped()->reusable = code == CURLE_OK;
      complete(std::move(node.mapped()), std::move(result));
    }
  }

  FetchResult classify(Transfer& t, CURLcode code) {
    if (!t.unwritten.empty() && t.write_errno == 0) write_unwritten(t);  // before anything judges the file
    CURL* easy = t.easy.get();
    TransferFacts facts;
    facts.curl_code = code;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &facts.http_status);
    char* content_type = nullptr;
    if (curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &content_type) == CURLE_OK && content_type != nullptr) {
      facts.content_type = content_type;
    }
    curl_off_t content_length = -1;
    curl_easy_getinfo(easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &content_length);
    facts.content_length = content_length;
    curl_easy_getinfo(easy, CURLINFO_REDIRECT_COUNT, &facts.redirect_count);
    curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &facts.os_errno);
    facts.body_bytes = t.body_bytes;
    facts.body_preview = t.preview;
    facts.host = t.host;
    facts.curl_error = t.error_buffer;
    facts.size_cap_hit = t.size_cap_hit;
    facts.non_audio_body_cut = t.non_audio_body_cut;
    facts.write_errno = t.write_errno;
    facts.refused_connections = t.refused;
    facts.refused_address = t.refused_address;
    facts.refused_class = t.refused_class;
    facts.refused_plain_http = t.refused_plain_http;

    Classification classification = classify_transfer(facts, options);
    FetchResult result = base_result(t);
    result.kind = classification.kind;
    result.blocked = classification.blocked;
    result.detail = std::move(classification.detail);
    result.http_status = facts.http_status;
    result.content_type = std::move(facts.content_type);
    result.bytes = facts.body_bytes;
    if (result.kind != FetchKind::ready_file) result.body_preview = std::move(t.preview);
    return result;
  }

  // ---- the loop drives libcurl ----

  void on_socket_ready(int fd, uint32_t flags) {
    int events = 0;
    if (flags & EventLoop::kRead) events |= CURL_CSELECT_IN;
    if (flags & EventLoop::kWrite) events |= CURL_CSELECT_OUT;
    if (flags & EventLoop::kError) events |= CURL_CSELECT_ERR;
    int running = 0;
    curl_multi_socket_action(multi.get(), fd, events, &running);
    collect_finished();
  }

  void on_timeout() {
    curl_timer = 0;  // fired; libcurl may arm a new one from inside socket_action
    int running = 0;
    curl_multi_socket_action(multi.get(), CURL_SOCKET_TIMEOUT, 0, &running);
    collect_finished();
  }

  // ---- libcurl callbacks: no calls back into libcurl's multi API from here ----
  // The static trampolines are noexcept: no exception may unwind through libcurl's C frames.

  static int on_curl_socket(CURL* /*easy*/, curl_socket_t fd, int what, void* userp, void* /*socketp*/) noexcept {
    try {
      return static_cast<Impl*>(userp)->update_watch(fd, what);
    } catch (...) {
      return -1;  // libcurl fails the transfer
    }
  }

  static int on_curl_timer(CURLM* /*multi*/, long timeout_ms, void* userp) noexcept {
    try {
      static_cast<Impl*>(userp)->arm_curl_timer(timeout_ms);
      return 0;
    } catch (...) {
      return -1;
    }
  }

  static curl_socket_t on_open_socket(void* clientp, curlsocktype purpose, curl_sockaddr* address) noexcept {
    try {
      auto* transfer = static_cast<Transfer*>(clientp);
      return transfer->owner->open_checked_socket(*transfer, purpose, *address);
    } catch (...) {
      return CURL_SOCKET_BAD;
    }
  }

  static size_t on_header(char* data, size_t size, size_t count, void* userp) noexcept {
    auto* transfer = static_cast<Transfer*>(userp);
    const size_t length = size * count;
    if (length >= 5 && std::memcmp(data, "HTTP/", 5) == 0) start_response(*transfer);
    if ((length == 2 && data[0] == '\r' && data[1] == '\n') || (length == 1 && data[0] == '\n')) {
      return transfer->owner->audio_over_cap(*transfer) ? 0 : length;  // 0 aborts the transfer
    }
    return length;
  }

  // At the end of an answer's headers: a 2xx audio answer announcing more than max_bytes is
  // refused before its body is read.
  bool audio_over_cap(Transfer& t) const noexcept {
    long status = 0;
    char* content_type = nullptr;
    curl_off_t content_length = -1;
    curl_easy_getinfo(t.easy.get(), CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(t.easy.get(), CURLINFO_CONTENT_TYPE, &content_type);
    curl_easy_getinfo(t.easy.get(), CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &content_length);
    const bool audio = status >= 200 && status <= 299 && content_type != nullptr && is_audio_content_type(content_type);
    if (!audio || content_length < 0 || static_cast<uint64_t>(content_length) <= options.max_bytes) return false;
    t.size_cap_hit = true;
    return true;
  }

  static size_t on_body(char* data, size_t size, size_t count, void* userp) noexcept {
    try {
      auto* transfer = static_cast<Transfer*>(userp);
      return transfer->owner->store_body(*transfer, data, size * count);
    } catch (...) {
      return 0;  // aborts the transfer
    }
  }

  // Keeps one loop watch per socket, from libcurl's first interest until CURL_POLL_REMOVE.
  int update_watch(curl_socket_t fd, int what) {
    if (what == CURL_POLL_REMOVE) {
      if (watched.erase(fd) > 0) loop.unwatch_fd(fd);
      return 0;
    }
    uint32_t flags = EventLoop::kError;
    if (what & CURL_POLL_IN) flags |= EventLoop::kRead;
    if (what & CURL_POLL_OUT) flags |= EventLoop::kWrite;
    auto it = watched.find(fd);
    if (it == watched.end()) {
      const bool ok = loop.watch_fd(fd, flags, [self = this](int ready_fd, uint32_t ready) {
        self->on_socket_ready(ready_fd, ready);  // nothing captured is touched after this call
      });
      if (!ok) return -1;
      watched.emplace(fd, flags);
    } else if (it->second != flags) {
      if (!loop.modify_fd(fd, flags)) return -1;
      it->second = flags;
    }
    return 0;
  }

  // One loop timer for libcurl's single timeout; -1 means none wanted.
  void arm_curl_timer(long timeout_ms) {
    if (curl_timer != 0) loop.cancel_timer(std::exchange(curl_timer, 0));
    if (timeout_ms >= 0) {
      curl_timer = loop.start_timer(static_cast<uint64_t>(timeout_ms), [self = this] { self->on_timeout(); });
    }
  }

  // Runs for every connection libcurl opens, so every redirect hop and every resolved address
  // is checked against the address policy just before connect(2).
  curl_socket_t open_checked_socket(Transfer& t, curlsocktype purpose, const curl_sockaddr& address) {
    const sockaddr* peer = &address.addr;
    const AddressClass address_class = classify_address(peer);
    bool refuse = purpose != CURLSOCKTYPE_IPCXN || is_forbidden_address(peer, options.allow_insecure_loopback);
    bool plain_http = false;
    if (!refuse && options.allow_insecure_loopback && address_class != AddressClass::loopback) {
      // Development mode lets plain http through for the local simulator only. The effective
      // URL is already the hop being connected (libcurl updates it before following).
      char* url = nullptr;
      curl_easy_getinfo(t.easy.get(), CURLINFO_EFFECTIVE_URL, &url);
      plain_http = url == nullptr || !starts_with_ci(url, "https://");
      refuse = plain_http;
    }
    if (refuse) {
      ++t.refused;
      ++refused_total;
      t.refused_address = format_address(peer);
      t.refused_class = address_class;
      t.refused_plain_http = plain_http;
      return CURL_SOCKET_BAD;
    }
    return ::socket(address.family, address.socktype | SOCK_CLOEXEC, address.protocol);
  }

  // Creates (or truncates) the destination file; errno on failure, 0 on success.
  static int create_file(Transfer& t) {
    t.file = UniqueFd(::open(t.request.dest_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!t.file.valid()) return errno;
    t.created = true;
    return 0;
  }

  // A new status line: whatever came before belonged to a redirect or interim response.
  static void start_response(Transfer& t) noexcept {
    if (t.sink == Transfer::Sink::file && t.body_bytes > 0) {
      t.unwritten.clear();
      if (::ftruncate(t.file.get(), 0) != 0 || ::lseek(t.file.get(), 0, SEEK_SET) != 0) t.write_errno = errno;
    }
    t.sink = Transfer::Sink::undecided;
    t.body_bytes = 0;
    t.preview.clear();
    t.non_audio_body_cut = false;
  }

  // Audio goes to the file, counted against the size cap; anything else is only previewed.
  size_t store_body(Transfer& t, const char* data, size_t length) {
    if (t.sink == Transfer::Sink::undecided) {
      long status = 0;
      char* content_type = nullptr;
      curl_easy_getinfo(t.easy.get(), CURLINFO_RESPONSE_CODE, &status);
      curl_easy_getinfo(t.easy.get(), CURLINFO_CONTENT_TYPE, &content_type);
      const bool audio =
          status >= 200 && status <= 299 && content_type != nullptr && is_audio_content_type(content_type);
      t.sink = audio ? Transfer::Sink::file : Transfer::Sink::discard;
    }

    if (t.sink == Transfer::Sink::discard) {
      t.body_bytes += length;
      if (t.preview.size() < kPreviewLimit) t.preview.append(data, std::min(length, kPreviewLimit - t.preview.size()));
      if (t.body_bytes > kNonAudioBodyLimit) {
        t.non_audio_body_cut = true;
        return 0;  // stops the transfer (CURLE_WRITE_ERROR); classified by its status
      }
      return length;
    }

    if (t.body_bytes + length > options.max_bytes) {
      t.size_cap_hit = true;
      return 0;
    }
    if (!t.file.valid()) {
      if (const int open_errno = create_file(t); open_errno != 0) {
        t.write_errno = open_errno;
        return 0;
      }
    }
    // Written kWriteChunk at a time rather than in libcurl's 16 KiB pieces: a 1 MiB recording
    // costs 4 writes, not 64 (the rest goes out when the transfer ends, write_unwritten).
    if (t.unwritten.capacity() < kWriteChunk) t.unwritten.reserve(kWriteChunk);
    t.unwritten.append(data, length);
    t.body_bytes += length;
    if (t.unwritten.size() >= kWriteChunk && !write_unwritten(t)) return 0;
    return length;
  }

  static constexpr size_t kWriteChunk = 256 * 1024;

  // Writes what store_body kept; false (write_errno set) when the disk refuses it.
  static bool write_unwritten(Transfer& t) noexcept {
    size_t written = 0;
    while (written < t.unwritten.size()) {
      const ssize_t n = ::write(t.file.get(), t.unwritten.data() + written, t.unwritten.size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        t.write_errno = n < 0 ? errno : EIO;
        return false;
      }
      written += static_cast<size_t>(n);
    }
    t.unwritten.clear();
    return true;
  }
};

RecordingFetcher::RecordingFetcher(EventLoop& loop, FetchOptions options)
    : impl_(std::make_unique<Impl>(loop, std::move(options))) {}

RecordingFetcher::~RecordingFetcher() = default;

Downloader::~Downloader() = default;

uint64_t RecordingFetcher::fetch(FetchRequest request, DoneCallback on_done) {
  return impl_->start(std::move(request), std::move(on_done));
}

bool RecordingFetcher::cancel(uint64_t id) {
  return impl_->cancel(id);
}

size_t RecordingFetcher::in_flight() const {
  return impl_->transfers.size() + impl_->completed.size();
}

uint64_t RecordingFetcher::handles_created() const {
  return impl_->easy_created;
}

uint64_t RecordingFetcher::refused_connections() const {
  return impl_->refused_total;
}

const FetchOptions& RecordingFetcher::options() const {
  return impl_->options;
}

}  // namespace wavoip
