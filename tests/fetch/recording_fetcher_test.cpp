// RecordingFetcher against a real local HTTP server, driven by a real poll() loop.
#include "wavoip/fetch/recording_fetcher.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fetch_test_helpers.hpp"
#include "fetch_test_printers.hpp"
#include "poll_loop.hpp"
#include "temp_dir.hpp"  // tests/support
#include "test_http_server.hpp"

namespace wavoip {
namespace {

using namespace std::chrono_literals;
using test::audio;
using test::dev_mode;
using test::PollLoop;
using test::ScriptedResponse;
using test::TestHttpServer;
namespace fs = std::filesystem;

constexpr auto kWait = 20s;  // generous: sanitizer builds are slow

ScriptedResponse answer(int status, std::string content_type, std::string body) {
  ScriptedResponse response;
  response.status = status;
  response.content_type = std::move(content_type);
  response.body = std::move(body);
  return response;
}

ScriptedResponse redirect(std::string location) {
  ScriptedResponse response = answer(302, "text/plain", "moved");
  response.location = std::move(location);
  return response;
}

bool file_matches_generated_body(const std::string& path, uint64_t length) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> buffer(64 * 1024);
  uint64_t offset = 0;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const auto got = static_cast<size_t>(in.gcount());
    for (size_t i = 0; i < got; ++i) {
      if (buffer[i] != TestHttpServer::body_byte(offset + i)) return false;
    }
    offset += got;
  }
  return offset == length;
}

// kB of a /proc/self/status field ("VmRSS", "VmHWM"). Reads with a stack buffer, so sampling
// during a download allocates nothing (under ASan, freed memory sits in quarantine and shows up
// as RSS).
long proc_status_kb(const char* field) {
  const int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char text[8192];
  const ssize_t n = ::read(fd, text, sizeof text - 1);
  ::close(fd);
  if (n <= 0) return -1;
  text[n] = '\0';
  const std::string_view status(text, static_cast<size_t>(n));
  const std::string_view key(field);
  for (size_t at = status.find(key); at != std::string_view::npos; at = status.find(key, at + 1)) {
    if ((at == 0 || status[at - 1] == '\n') && at + key.size() < status.size() && status[at + key.size()] == ':') {
      return std::strtol(text + at + key.size() + 1, nullptr, 10);
    }
  }
  return -1;
}

class RecordingFetcherTest : public ::testing::Test {
 protected:
  std::string dest(const std::string& name) const { return (dir_.path() / name).string(); }

  // Starts one fetch and runs the loop until its result arrives.
  FetchResult fetch_and_wait(RecordingFetcher& fetcher, const std::string& url, const std::string& path) {
    std::optional<FetchResult> result;
    int calls = 0;
    const uint64_t id = fetcher.fetch({"call-42", url, path}, [&](const FetchResult& r) {
      result = r;
      ++calls;
    });
    EXPECT_NE(id, 0u);
    EXPECT_FALSE(result.has_value()) << "callback ran inside fetch()";
    EXPECT_TRUE(loop_.run_until([&] { return result.has_value(); }, kWait)) << url;
    loop_.run_for(20ms);
    EXPECT_EQ(calls, 1);
    if (!result) return FetchResult{};
    EXPECT_EQ(result->id, id);
    EXPECT_EQ(result->call_id, "call-42");
    return *result;
  }

  FetchResult fetch_and_wait(RecordingFetcher& fetcher, const std::string& url) {
    return fetch_and_wait(fetcher, url, dest("recording.mp3"));
  }

  // All sockets handed back and no timer left once nothing is in flight.
  void expect_loop_released(RecordingFetcher& fetcher) {
    EXPECT_EQ(fetcher.in_flight(), 0u);
    EXPECT_TRUE(loop_.run_until([&] { return loop_.watched_fds() == 0; }, 5s));
  }

  PollLoop loop_;
  TestHttpServer server_;
  testsupport::TempDir dir_{"wavoip-fetch"};
};

// ---- classification against real responses ----

TEST_F(RecordingFetcherTest, ReadyDownloadStoresExactlyTheServedBytes) {
  constexpr uint64_t kSize = 1024 * 1024 + 123;
  server_.set_response("/rec/abc", audio(kSize));
  RecordingFetcher fetcher(loop_, dev_mode());

  const FetchResult result = fetch_and_wait(fetcher, server_.url("/rec/abc"));

  EXPECT_EQ(result.kind, FetchKind::ready_file) << result.detail;
  EXPECT_EQ(result.http_status, 200);
  EXPECT_EQ(result.content_type, "audio/mpeg");
  EXPECT_EQ(result.bytes, kSize);
  EXPECT_EQ(result.path, dest("recording.mp3"));
  EXPECT_EQ(result.detail, "downloaded 1.0 MiB");
  EXPECT_TRUE(result.body_preview.empty());
  EXPECT_EQ(fs::file_size(result.path), kSize);
  EXPECT_TRUE(file_matches_generated_body(result.path, kSize));
  EXPECT_EQ((fs::status(result.path).permissions() & fs::perms::all), fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_NE(server_.last_request().find("User-Agent: wavoip-recordings-plugin/"), std::string::npos)
      << server_.last_request();
  EXPECT_EQ(server_.last_request().find("Cookie"), std::string::npos);
  expect_loop_released(fetcher);
}

TEST_F(RecordingFetcherTest, OverwritesAStaleFileAtTheDestination) {
  { std::ofstream(dest("recording.mp3")) << std::string(100000, 'x'); }
  server_.set_response("/rec", audio(1000));
  RecordingFetcher fetcher(loop_, dev_mode());
  const FetchResult result = fetch_and_wait(fetcher, server_.url("/rec"));
  ASSERT_EQ(result.kind, FetchKind::ready_file);
  EXPECT_TRUE(file_matches_generated_body(result.path, 1000));
}

TEST_F(RecordingFetcherTest, NotFoundIsNotReadyAndLeavesNoFile) {
  RecordingFetcher fetcher(loop_, dev_mode());
  const FetchResult result = fetch_and_wait(fetcher, server_.url("/rec/missing"));
  EXPECT_EQ(result.kind, FetchKind::not_ready);
  EXPECT_EQ(result.http_status, 404);
  EXPECT_EQ(result.http_status, 404);
  EXPECT_EQ(result.detail, "");
  EXPECT_TRUE(result.path.empty());
  EXPECT_FALSE(fs::exists(dest("recording.mp3")));
}

// Most polls are answered 404: such a poll must not create (and then unlink) a file, which costs
// the file system more than the HTTP exchange. Only a response that brings audio creates one.
TEST_F(RecordingFetcherTest, OnlyAnAudioAnswerCreatesAFile) {
  const int watch = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  ASSERT_GE(watch, 0);
  ASSERT_GE(::inotify_add_watch(watch, dir_.path().c_str(), IN_CREATE), 0);
  auto created = [&] {
    alignas(inotify_event) char buffer[4096];
    size_t events = 0;
    for (ssize_t n; (n = ::read(watch, buffer, sizeof buffer)) > 0;) {
      for (ssize_t at = 0; at < n;) {
        const auto* event = reinterpret_cast<const inotify_event*>(buffer + at);
        ++events;
        at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
      }
    }
    return events;
  };
  RecordingFetcher fetcher(loop_, dev_mode());
  server_.set_response("/rec/json", answer(200, "application/json", R"({"status":"MIXING"})"));
  EXPECT_EQ(fetch_and_wait(fetcher, server_.url("/rec/missing")).kind, FetchKind::not_ready);
  EXPECT_EQ(fetch_and_wait(fetcher, server_.url("/rec/json")).kind, FetchKind::not_ready);
  EXPECT_EQ(created(), 0u) << "a file was created for an answer without audio";
  server_.set_response("/rec", audio(1000));
  const FetchResult ready = fetch_and_wait(fetcher, server_.url("/rec"));
  ASSERT_EQ(ready.kind, FetchKind::ready_file);
  EXPECT_TRUE(file_matches_generated_body(ready.path, 1000));
  EXPECT_EQ(created(), 1u);
  ::close(watch);
}

TEST_F(RecordingFetcherTest, JsonStatusBodyIsNotReady) {
  server_.set_response("/rec", answer(200, "application/json", R"({"status":"RECORDING"})"));
  RecordingFetcher fetcher(loop_, dev_mode());
  const FetchResult result = fetch_and_wait(fetcher, server_.url("/rec"));
  EXPECT_EQ(result.kind, FetchKind::not_ready);
  EXPECT_EQ(result.http_status, 200);
  EXPECT_EQ(result.content_type, "application/json");
  EXPECT_EQ(result.detail, "recording not ready yet (status RECORDING)");
  EXPECT_EQ(result.body_preview, R"({"status":"RECORDING"})");
  EXPECT_FALSE(fs::exists(dest("recording.mp3")));
}

TEST_F(RecordingFetcherTest, LargeNonAudioBodyIsNotReadyAndNotReadToTheEnd) {
  ScriptedResponse html = answer(200, "text/html; charset=utf-8", "");
  html.generated_bytes = 5 * 1024 * 1024;
  server_.set_response("/rec", html);
  RecordingFetcher fetcher(loop_, dev_mode());
  const FetchResult result = fetch_and_wait(fetcher, server_.url("/rec"));
  EXPECT_EQ(result.kind, FetchKind::not_ready);
  EXPECT_EQ(result.detail, "recording not ready yet (server sent text/html; charset=utf-8, not audio)");
  EXPECT_LT(result.bytes, 1024u * 1024u);
  EXPECT_EQ(result.body_preview.size(), 1024u);
  EXPECT_FALSE(fs::exists(dest("recording.mp3")));
}

// The size cap is for recordings: a "not ready yet" page announcing more than max_bytes is still
// polled again, as a smaller one is.
TEST_F(RecordingFetcherTest, NonAudioAnswerAnnouncingMoreThanTheCapIsNotReady) {
  ScriptedResponse html = answer(200, "text/html", "");
  html.generated_bytes = 3 * 1024 * 1024;  // with its Content-Length
  server_.set_response("/rec", html);
  FetchOptions options = dev_mode();
  options.max_bytes = 1024 * 1024;
  RecordingFetcher fetcher(loop_, options);
  const FetchResult result = fetch_and_wait(fetcher, server_.url("/rec"));
  EXPECT_EQ(result.kind, FetchKind::not_ready);
  EXPECT_EQ(result.detail, "recording not ready yet (server sent text/html, not audio)");
  EXPECT_EQ(result.http_status, 200);
  EXPECT_FALSE(fs::exists(dest("recording.mp3")));
}

TEST_F(RecordingFetcherTest, ErrorPageAnnouncingMoreThanTheCapIsClassifiedByItsStatus) {
  ScriptedResponse gone = answer(410, "text/html", "");
  gone.generated_bytes = 3 * 1024 * 1024;
  server_.set_response("/rec", gone);
  FetchOptions options = dev_mode();
  options.max_bytes = 1024 * 1024;
  RecordingFetcher fetcher(loop_, options);
  const FetchResult result = fetch_and_wait(fetcher, server_.url("/rec"));
  EXPECT_EQ(result.kind, FetchKind::permanent_error);
  EXPECT_EQ(result.http_status, 410);
}

TEST_F(RecordingFetcherTest, EmptyAudioBodyIsNotReady) {
  server_.set_response("/rec", answer(200, "audio/mpeg", ""));
  RecordingFetcher fetcher(loop_, dev_mode());
  const FetchResult result = fetch_and_wait(fetcher, server_.url("/rec"));
  EXPECT_EQ(result.kind, FetchKind::not_ready);
  EXPECT_FALSE(fs::exists(dest("recording.mp3")));
}

TEST_F(RecordingFetcherTest, ServerErrorsAndRateLimitsAreTransient) {
  RecordingFetcher fetcher(loop_, dev_mode());
  for (int status : {500, 502, 503, 429}) {
    const std::string path = "/rec/" + std::to_string(status);
    server_.set_response(path, answer(status, "text/plain", "try later"));
    const FetchResult result = fetch_and_wait(fetcher, server_.url(path));
    EXPECT_EQ(result.kind, FetchKind::transient_error) << status;
    EXPECT_EQ(result.http_status, status);
    EXPECT_EQ(result.http_status, status) << result.detail;
    EXPECT_FALSE(fs::exists(dest("recording.mp3")));
  }
}

TEST_F(RecordingFetcherTest, AuthIsNotReadyAndGoneIsPermanent) {
  RecordingFetcher fetcher(loop_, dev_mode());
  for (int status : {401, 403, 410}) {
    const std::string path = "/rec/" + std::to_string(status);
    server_.set_response(path, answer(status, "text/plain", "no"));
    const FetchResult result = fetch_and_wait(fetcher, server_.url(path));
    EXPECT_EQ(result.kind, status == 410 ? FetchKind::permanent_error : FetchKind::not_ready) << status;
    EXPECT_EQ(result.http_status, status);
  }
}

TEST_F(RecordingFetcherTest, ResetMidBodyIsTransientAndLeavesNoFile) {
  ScriptedResponse response = audio(8 * 1024 * 1024);
  response.reset_after_bytes = 1024 * 1024;
  server_.set_response("/rec", response);
  RecordingFetcher fetcher(loop_, dev_mode());
  const FetchResult result = fetch_and_wait(fetcher, server_.url("/rec"));
  EXPECT_EQ(result.kind, FetchKind::transient_error);
  EXPECT_TRUE(result.detail == "connection reset" || result.detail.rfind("download interrupted", 0) == 0)
      << result.detail;
  EXPECT_LE(result.bytes, 1024u * 1024u);
  EXPECT_FALSE(fs::exists(dest("recording.mp3")));
}

TEST_F(RecordingFetcherTest, TruncatedBodyIsTransientAndLeavesNoFile) {
  ScriptedResponse response = audio(4 * 1024 * 1024);
  response.close_after_bytes = 1024 * 1024;
  server_.set_response("/rec", response);
  RecordingFetcher fetcher(loop_, dev_mode());
  const FetchResult result = fetch_and_wait(fetcher, server_.url("/rec"));
  EXPECT_EQ(result.kind, FetchKind::transient_error);
  EXPECT_EQ(result.detail, "download interrupted (got 1 MiB of 4 MiB)");
  EXPECT_FALSE(fs::exists(dest("recording.mp3")));
}

// The process may write files of at most `bytes` while it lives (RLIMIT_FSIZE): a write past it
// fails with EFBIG, as on a full disk, instead of raising SIGXFSZ.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &saved_);
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit = saved_;
    limit.rlim_cur = bytes;
    EXPECT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &saved_);
    std::signal(SIGXFSZ, old_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

 private:
  rlimit saved_{};
  void (*old_handler_)(int) = nullptr;
};

// A disk that refuses the recording once it holds `limit` bytes of a body of `size`: the download
// fails as transient and leaves no file, never a short file reported ready.
class DiskRefusalTest : public RecordingFetcherTest,
                        public ::testing::WithParamInterface<std::pair<uint64_t, rlim_t>> {};

TEST_P(DiskRefusalTest, IsTransientAndLeavesNoFile) {
  const auto [size, limit] = GetParam();
  server_.set_response("/rec", audio(size));
  RecordingFetcher fetcher(loop_, dev_mode());
  const FileSizeLimit file_size_limit(limit);
  const FetchResult result = fetch_and_wait(fetcher, server_.url("/rec"));
  EXPECT_EQ(result.kind, FetchKind::transient_error);
  EXPECT_EQ(result.detail, "could not write the recording to disk: File too large");
  EXPECT_FALSE(fs::exists(dest("recording.mp3")));
}

// Midway; and in the last bytes, which are written when the transfer ends.
INSTANTIATE_TEST_SUITE_P(Where, DiskRefusalTest,
                         ::testing::Values(std::pair<uint64_t, rlim_t>{1024 * 1024, 300 * 1024},
                                           std::pair<uint64_t, rlim_t>{1024 * 1024 + 123, 1024 * 1024}),
                         [](const ::testing::TestParamInfo<std::pair<uint64_t, rlim_t>>& info) {
                           return info.index == 0 ? std::string("Midway") : std::string("InTheLastBytes");
                         });

TEST_F(RecordingFetcherTest, ConnectionRefusedIsTransient) {
  RecordingFetcher fetcher(loop_, dev_mode());
  const std::string url = "http://127.0.0.1:" + std::to_string(test::closed_loopback_port()) + "/rec";
  const FetchResult result = fetch_and_wait(fetcher, url);
  EXPECT_EQ(result.kind, FetchKind::transient_error);
  EXPECT_EQ(result.detail, "connection refused");
  EXPECT_EQ(result.http_status, 0);
  EXPECT_EQ(fetcher.refused_connections(), 0u);
  EXPECT_FALSE(fs::exists(dest("recording.mp3")));
}

TEST_F(RecordingFetcherTest, OverallTimeoutIsTransient) {
  ScriptedResponse response = audio(64 * 1024);
  response.chunk_bytes = 1024;
  response.chunk_delay = 100ms;
  server_.set_response("/rec", response);
  FetchOptions options = dev_mode();
  options.total_timeout = 500ms;
  RecordingFetcher fetcher(loop_, options);
  const FetchResult result = fetch_and_wait(fetcher, server_.url("/rec"));
  EXPECT_EQ(result.kind, FetchKind::transient_error);
  EXPECT_EQ(result.detail, "timed out after 0.5 s");
  EXPECT_GE(result.elapsed_ms, 450);
  EXPECT_FALSE(fs::exists(dest("recording.mp3")));
}

TEST_F(RecordingFetcherTest, StalledDownloadIsTransient) {
  ScriptedResponse response = audio(64 * 1024);
  response.chunk_bytes = 100;
  response.chunk_delay = 100ms;
  server_.set_response("/rec", response);
  FetchOptions options = dev_mode();
  options.low_speed_limit = 100 * 1024;
  options.low_speed_time = 1s;
  RecordingFetcher fetcher(loop_, options);
  const FetchResult result = fetch_and_wait(fetcher, server_.url("/rec"));
  EXPECT_EQ(result.kind, FetchKind::transient_error);
  EXPECT_EQ(result.detail, "download stalled (under 100 KiB/s for 1 s)");
  EXPECT_FALSE(fs::exists(dest("recording.mp3")));
}

TEST_F(RecordingFetcherTest, UnwritableDestinationIsTransientAndNothingIsRequested) {
  server_.set_response("/rec", audio(10));
  RecordingFetcher fetcher(loop_, dev_mode());
  const FetchResult result = fetch_and_wait(fetcher, server_.url("/rec"), dest("no-such-dir/recording.mp3"));
  EXPECT_EQ(result.kind, FetchKind::transient_error);
  EXPECT_EQ(result.detail, "could not create the recording file: No such file or directory");
  EXPECT_EQ(server_.connections(), 0u);
}

TEST_F(RecordingFetcherTest, InvalidUrlIsPermanent) {
  RecordingFetcher fetcher(loop_, dev_mode());
  for (const char* url : {"", "not a url", "https://", "//storage.wavoip.com/x"}) {
    const FetchResult result = fetch_and_wait(fetcher, url);
    EXPECT_EQ(result.kind, FetchKind::permanent_error) << url;
    EXPECT_EQ(result.detail, "invalid recording URL") << url;
  }
}

// ---- download guards ----

TEST_F(RecordingFetcherTest, SizeCapByAnnouncedLengthBlocks) {
  server_.set_response("/rec", audio(2 * 1024 * 1024));
  FetchOptions options = dev_mode();
  options.max_bytes = 1024 * 1024;
  RecordingFetcher fetcher(loop_, options);
  const FetchResult result = fetch_and_wait(fetcher, server_.url("/rec"));
  EXPECT_TRUE(result.blocked);
  EXPECT_EQ(result.detail, "recording larger than 1 MiB");
  EXPECT_FALSE(fs::exists(dest("recording.mp3")));
}

TEST_F(RecordingFetcherTest, SizeCapIsCountedWhileStreaming) {
  ScriptedResponse response = audio(3 * 1024 * 1024);
  response.send_content_length = false;  // only the write callback can notice
  server_.set_response("/rec", response);
  FetchOptions options = dev_mode();
  options.max_bytes = 1024 * 1024;
  RecordingFetcher fetcher(loop_, options);
  const FetchResult result = fetch_and_wait(fetcher, server_.url("/rec"));
  EXPECT_TRUE(result.blocked);
  EXPECT_EQ(result.detail, "recording larger than 1 MiB");
  EXPECT_LE(result.bytes, 1024u * 1024u);
  EXPECT_FALSE(fs::exists(dest("recording.mp3")));
}

TEST_F(RecordingFetcherTest, BodyOfExactlyTheCapIsAccepted) {
  ScriptedResponse response = audio(1024 * 1024);
  response.send_content_length = false;
  server_.set_response("/rec", response);
  FetchOptions options = dev_mode();
  options.max_bytes = 1024 * 1024;
  RecordingFetcher fetcher(loop_, options);
  const FetchResult result = fetch_and_wait(fetcher, server_.url("/rec"));
  EXPECT_EQ(result.kind, FetchKind::ready_file) << result.detail;
  EXPECT_EQ(result.bytes, 1024u * 1024u);
}

TEST_F(RecordingFetcherTest, PlainHttpIsRefusedOutsideDevelopmentMode) {
  server_.set_response("/rec", audio(10));
  RecordingFetcher fetcher(loop_, FetchOptions{});
  const FetchResult result = fetch_and_wait(fetcher, server_.url("/rec"));
  EXPECT_TRUE(result.blocked);
  EXPECT_EQ(result.detail, "URL scheme \"http\" is not allowed (https only)");
  EXPECT_EQ(server_.connections(), 0u);
  EXPECT_FALSE(fs::exists(dest("recording.mp3")));
}

TEST_F(RecordingFetcherTest, OtherSchemesAreRefusedEvenInDevelopmentMode) {
  RecordingFetcher fetcher(loop_, dev_mode());
  for (const char* url : {"file:///etc/passwd", "ftp://127.0.0.1/rec", "gopher://127.0.0.1/", "dict://127.0.0.1/"}) {
    const FetchResult result = fetch_and_wait(fetcher, url);
    EXPECT_TRUE(result.blocked) << url;
    EXPECT_NE(result.detail.find("is not allowed (http and https only)"), std::string::npos) << result.detail;
  }
}

// Outside development mode a loopback URL is refused by the open-socket guard: no TCP
// connection ever reaches the server (https needs no TLS server for that), whatever the spelling.
TEST_F(RecordingFetcherTest, LoopbackIsBlockedBeforeConnectOutsideDevelopmentMode) {
  server_.set_response("/rec", audio(10));
  RecordingFetcher fetcher(loop_, FetchOptions{});
  const std::string port = std::to_string(server_.port());
  uint64_t refused_before = 0;
  for (const std::string host :
       {"127.0.0.1", "2130706433", "0x7f000001", "0177.0.0.1", "127.1", "localhost", "[::ffff:127.0.0.1]", "0.0.0.0"}) {
    const FetchResult result = fetch_and_wait(fetcher, "https://" + host + ":" + port + "/rec");
    EXPECT_TRUE(result.blocked) << host << ": " << result.detail;
    EXPECT_EQ(result.detail.rfind("address ", 0), 0u) << result.detail;
    EXPECT_GT(fetcher.refused_connections(), refused_before) << host;
    refused_before = fetcher.refused_connections();
  }
  EXPECT_EQ(server_.connections(), 0u);
  EXPECT_EQ(server_.hits(), 0u);
}

TEST_F(RecordingFetcherTest, LoopbackDetailNamesTheAddress) {
  RecordingFetcher fetcher(loop_, FetchOptions{});
  const FetchResult result = fetch_and_wait(fetcher, "https://127.0.0.1:" + std::to_string(server_.port()) + "/");
  EXPECT_EQ(result.detail, "address 127.0.0.1 is not allowed (loopback)");
  EXPECT_EQ(fetcher.refused_connections(), 1u);
}

TEST_F(RecordingFetcherTest, LoopbackIsAllowedInDevelopmentMode) {
  server_.set_response("/rec", audio(10));
  RecordingFetcher fetcher(loop_, dev_mode());
  EXPECT_EQ(fetch_and_wait(fetcher, server_.url("/rec")).kind, FetchKind::ready_file);
  EXPECT_EQ(fetcher.refused_connections(), 0u);
  EXPECT_EQ(server_.hits("/rec"), 1u);
}

// Linux routes a connect() to 0.0.0.0 to the local host, which makes it the classic SSRF
// bypass for "localhost" filters. This proves a canary on loopback is reachable that way, so the
// redirect tests below show the guard, not the network, kept it untouched.
TEST(CanaryTest, ZeroAddressReachesALoopbackListener) {
  TestHttpServer canary;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(canary.port());
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ::close(fd);
  PollLoop loop;
  EXPECT_TRUE(loop.run_until([&] { return canary.connections() == 1; }, 5s));
}

class RedirectGuardTest : public RecordingFetcherTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(RedirectGuardTest, RedirectToForbiddenAddressIsBlockedAndCanaryNeverHit) {
  TestHttpServer canary;
  canary.set_response("/rec", audio(10));
  std::string target = GetParam();
  if (const size_t at = target.find("{port}"); at != std::string::npos) {
    target.replace(at, 6, std::to_string(canary.port()));
  }
  server_.set_response("/start", redirect(target));
  RecordingFetcher fetcher(loop_, dev_mode());

  const FetchResult result = fetch_and_wait(fetcher, server_.url("/start"));

  EXPECT_TRUE(result.blocked) << target << ": " << result.detail;
  EXPECT_FALSE(result.detail.empty());
  EXPECT_EQ(server_.hits("/start"), 1u);
  EXPECT_GE(fetcher.refused_connections(), 1u);
  EXPECT_EQ(canary.connections(), 0u);
  EXPECT_FALSE(fs::exists(dest("recording.mp3")));
}

INSTANTIATE_TEST_SUITE_P(Targets, RedirectGuardTest,
                         ::testing::Values("http://0.0.0.0:{port}/rec", "http://0:{port}/rec",
                                           "https://0.0.0.0:{port}/rec", "http://[::ffff:0.0.0.0]:{port}/rec",
                                           "http://[::]:{port}/rec", "http://169.254.169.254/latest/meta-data/",
                                           "http://10.0.0.1:{port}/rec", "http://192.168.1.1/", "http://100.64.0.1/",
                                           "http://[fd00::1]/", "http://[fe80::1]/", "http://224.0.0.1/",
                                           "http://198.18.0.1/",
                                           // dev mode allows plain http to loopback only
                                           "http://8.8.8.8:{port}/rec"));

TEST_F(RecordingFetcherTest, PlainHttpToAPublicAddressIsRefusedInDevelopmentMode) {
  RecordingFetcher fetcher(loop_, dev_mode());
  const FetchResult result = fetch_and_wait(fetcher, "http://8.8.8.8:9/rec");
  EXPECT_TRUE(result.blocked);
  EXPECT_EQ(result.detail, "plain http to 8.8.8.8 is not allowed (only to loopback in development mode)");
  EXPECT_EQ(fetcher.refused_connections(), 1u);
}

TEST_F(RecordingFetcherTest, RedirectsWithinTheLimitAreFollowed) {
  server_.set_response("/a", redirect("/b"));
  server_.set_response("/b", redirect(server_.url("/c")));
  server_.set_response("/c", redirect("/rec"));
  server_.set_response("/rec", audio(5000));
  RecordingFetcher fetcher(loop_, dev_mode());  // 3 redirects allowed by default
  const FetchResult result = fetch_and_wait(fetcher, server_.url("/a"));
  EXPECT_EQ(result.kind, FetchKind::ready_file) << result.detail;
  EXPECT_EQ(result.bytes, 5000u);
  EXPECT_TRUE(file_matches_generated_body(result.path, 5000));
  for (const char* path : {"/a", "/b", "/c", "/rec"}) EXPECT_EQ(server_.hits(path), 1u) << path;
}

TEST_F(RecordingFetcherTest, TooManyRedirectsAreBlocked) {
  server_.set_response("/a", redirect("/b"));
  server_.set_response("/b", redirect("/c"));
  server_.set_response("/c", redirect("/rec"));
  server_.set_response("/rec", audio(5000));
  FetchOptions options = dev_mode();
  options.max_redirects = 2;
  RecordingFetcher fetcher(loop_, options);
  const FetchResult result = fetch_and_wait(fetcher, server_.url("/a"));
  EXPECT_TRUE(result.blocked);
  EXPECT_EQ(result.detail, "too many redirects (more than 2)");
  EXPECT_EQ(server_.hits("/rec"), 0u);
}

TEST_F(RecordingFetcherTest, RedirectToAnotherSchemeIsBlocked) {
  server_.set_response("/a", redirect("file:///etc/passwd"));
  server_.set_response("/b", redirect("ftp://127.0.0.1:" + std::to_string(server_.port()) + "/rec"));
  RecordingFetcher fetcher(loop_, dev_mode());
  for (const char* path : {"/a", "/b"}) {
    const FetchResult result = fetch_and_wait(fetcher, server_.url(path));
    EXPECT_TRUE(result.blocked) << path;
    EXPECT_EQ(result.detail, "redirected to a URL scheme that is not allowed (http and https only)");
    EXPECT_FALSE(fs::exists(dest("recording.mp3")));
  }
  EXPECT_EQ(server_.hits("/rec"), 0u);
}

// ---- concurrency, cancellation, reentrancy ----

TEST_F(RecordingFetcherTest, TwentyConcurrentDownloadsComplete) {
  constexpr int kCount = 20;
  for (int i = 0; i < kCount; ++i) server_.set_response("/rec/" + std::to_string(i), audio(256 * 1024 + i));
  RecordingFetcher fetcher(loop_, dev_mode());
  std::vector<std::optional<FetchResult>> results(kCount);
  int done = 0;
  for (int i = 0; i < kCount; ++i) {
    fetcher.fetch({"call-" + std::to_string(i), server_.url("/rec/" + std::to_string(i)), dest(std::to_string(i))},
                  [&, i](const FetchResult& r) {
                    results[i] = r;
                    ++done;
                  });
  }
  EXPECT_EQ(fetcher.in_flight(), static_cast<size_t>(kCount));
  ASSERT_TRUE(loop_.run_until([&] { return done == kCount; }, kWait));
  for (int i = 0; i < kCount; ++i) {
    ASSERT_TRUE(results[i].has_value());
    EXPECT_EQ(results[i]->kind, FetchKind::ready_file) << i << ": " << results[i]->detail;
    EXPECT_EQ(results[i]->call_id, "call-" + std::to_string(i));
    EXPECT_TRUE(file_matches_generated_body(dest(std::to_string(i)), 256 * 1024 + i)) << i;
  }
  EXPECT_EQ(server_.hits(), static_cast<uint64_t>(kCount));
  expect_loop_released(fetcher);
}

ScriptedResponse slow_audio() {
  ScriptedResponse response = audio(50 * 1024 * 1024);
  response.chunk_bytes = 16 * 1024;
  response.chunk_delay = 20ms;
  return response;
}

TEST_F(RecordingFetcherTest, CancelInFlightLeavesNoFileAndNoCallback) {
  server_.set_response("/rec", slow_audio());
  RecordingFetcher fetcher(loop_, dev_mode());
  int calls = 0;
  const std::string path = dest("recording.mp3");
  const uint64_t id = fetcher.fetch({"call-1", server_.url("/rec"), path}, [&](const FetchResult&) { ++calls; });
  ASSERT_TRUE(loop_.run_until([&] { return fs::exists(path) && fs::file_size(path) > 0; }, kWait));

  EXPECT_TRUE(fetcher.cancel(id));
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(fetcher.in_flight(), 0u);
  EXPECT_FALSE(fetcher.cancel(id));
  loop_.run_for(300ms);
  EXPECT_EQ(calls, 0);
  EXPECT_FALSE(fs::exists(path));
  expect_loop_released(fetcher);
}

TEST_F(RecordingFetcherTest, CancelOfUnknownIdIsFalse) {
  RecordingFetcher fetcher(loop_, dev_mode());
  EXPECT_FALSE(fetcher.cancel(0));
  EXPECT_FALSE(fetcher.cancel(12345));
}

TEST_F(RecordingFetcherTest, IdleConnectionsAreKeptForTheNextWaveOfPolls) {
  // Polls come in waves: a batch answered 404 at once, the next batch a moment later. A storage
  // that keeps connections alive must not see each wave open them again.
  server_.set_keep_alive(true);
  FetchOptions options = dev_mode();
  options.max_connections = 16;
  RecordingFetcher fetcher(loop_, options);
  const auto wave = [&](int polls) {
    int answered = 0;
    for (int i = 0; i < polls; ++i) {
      const std::string call = "wave-call-" + std::to_string(i);
      fetcher.fetch({call, server_.url("/" + call), dest(call + ".part")}, [&](const FetchResult& result) {
        EXPECT_EQ(result.kind, FetchKind::not_ready);
        ++answered;
      });
    }
    EXPECT_TRUE(loop_.run_until([&] { return answered == polls; }, kWait));
  };
  wave(16);
  const uint64_t opened = server_.connections();
  EXPECT_LE(opened, 16u);
  for (int i = 0; i < 4; ++i) {
    loop_.run_for(20ms);
    wave(16);
  }
  EXPECT_EQ(server_.hits(), 80u);
  EXPECT_EQ(server_.connections(), opened) << "every later poll reused an idle connection";
}

// One download after the other: each starts from the handle of the one before (no new handle
// and receive buffer per poll), and nothing of the last download carries over: its redirects,
// its destination or its answer. A download that ended in an error (here the size cap) leaves
// its handle behind: the next one starts on a new handle, and works.
TEST_F(RecordingFetcherTest, OneDownloadAfterAnotherReusesItsHandleAndCarriesNothingOver) {
  server_.set_keep_alive(true);
  server_.set_response("/a", redirect("/rec"));
  server_.set_response("/rec", audio(5000));
  server_.set_response("/big", audio(9000));
  server_.set_response("/small", audio(3000));
  FetchOptions options = dev_mode();
  options.max_bytes = 8000;
  RecordingFetcher fetcher(loop_, options);

  FetchResult first = fetch_and_wait(fetcher, server_.url("/a"), dest("first.mp3"));
  EXPECT_EQ(first.kind, FetchKind::ready_file) << first.detail;
  EXPECT_TRUE(file_matches_generated_body(dest("first.mp3"), 5000));

  FetchResult missing = fetch_and_wait(fetcher, server_.url("/missing"), dest("missing.mp3"));
  EXPECT_EQ(missing.kind, FetchKind::not_ready) << missing.detail;
  EXPECT_FALSE(fs::exists(dest("missing.mp3")));

  FetchResult small = fetch_and_wait(fetcher, server_.url("/small"), dest("small.mp3"));
  EXPECT_EQ(small.kind, FetchKind::ready_file) << small.detail;
  EXPECT_EQ(small.bytes, 3000u);
  EXPECT_TRUE(file_matches_generated_body(dest("small.mp3"), 3000));
  EXPECT_EQ(server_.hits("/a"), 1u);
  EXPECT_EQ(server_.hits("/rec"), 1u);
  EXPECT_EQ(fetcher.handles_created(), 1u) << "three downloads, one handle";

  FetchResult capped = fetch_and_wait(fetcher, server_.url("/big"), dest("big.mp3"));
  EXPECT_TRUE(capped.blocked) << capped.detail;
  EXPECT_FALSE(fs::exists(dest("big.mp3")));
  FetchResult after = fetch_and_wait(fetcher, server_.url("/rec"), dest("after.mp3"));
  EXPECT_EQ(after.kind, FetchKind::ready_file) << after.detail;
  EXPECT_TRUE(file_matches_generated_body(dest("after.mp3"), 5000));
  EXPECT_EQ(fetcher.handles_created(), 2u) << "the capped download's handle was not kept";
  expect_loop_released(fetcher);
}

TEST_F(RecordingFetcherTest, CancelOfAFinishedButUndeliveredFetchDropsItsCallback) {
  RecordingFetcher fetcher(loop_, dev_mode());
  std::vector<uint64_t> delivered;
  uint64_t second = 0;
  const uint64_t first = fetcher.fetch({"a", "bad url", dest("a")}, [&](const FetchResult& r) {
    delivered.push_back(r.id);
    EXPECT_TRUE(fetcher.cancel(second));
  });
  second = fetcher.fetch({"b", "bad url", dest("b")}, [&](const FetchResult& r) { delivered.push_back(r.id); });
  EXPECT_EQ(fetcher.in_flight(), 2u);
  loop_.run_for(100ms);
  EXPECT_EQ(delivered, std::vector<uint64_t>{first});
  EXPECT_EQ(fetcher.in_flight(), 0u);
}

TEST_F(RecordingFetcherTest, CallbacksMayStartAndCancelOtherFetches) {
  server_.set_response("/first", audio(1000));
  server_.set_response("/second", audio(2000));
  server_.set_response("/slow", slow_audio());
  RecordingFetcher fetcher(loop_, dev_mode());

  int slow_calls = 0;
  const uint64_t slow =
      fetcher.fetch({"slow", server_.url("/slow"), dest("slow")}, [&](const FetchResult&) { ++slow_calls; });
  std::optional<FetchResult> second;
  size_t in_flight_inside_callback = 99;
  fetcher.fetch({"first", server_.url("/first"), dest("first")}, [&](const FetchResult& r) {
    EXPECT_EQ(r.kind, FetchKind::ready_file);
    in_flight_inside_callback = fetcher.in_flight();
    EXPECT_TRUE(fetcher.cancel(slow));
    fetcher.fetch({"second", server_.url("/second"), dest("second")}, [&](const FetchResult& r2) { second = r2; });
  });

  ASSERT_TRUE(loop_.run_until([&] { return second.has_value(); }, kWait));
  EXPECT_EQ(in_flight_inside_callback, 1u);  // the slow one; the finished one is no longer counted
  EXPECT_EQ(second->kind, FetchKind::ready_file);
  EXPECT_TRUE(file_matches_generated_body(dest("second"), 2000));
  loop_.run_for(200ms);
  EXPECT_EQ(slow_calls, 0);
  EXPECT_FALSE(fs::exists(dest("slow")));
  expect_loop_released(fetcher);
}

TEST_F(RecordingFetcherTest, CallbackMayDestroyTheFetcher) {
  server_.set_response("/rec", audio(1000));
  server_.set_response("/slow", slow_audio());
  auto fetcher = std::make_unique<RecordingFetcher>(loop_, dev_mode());
  int calls = 0;
  fetcher->fetch({"slow", server_.url("/slow"), dest("slow")}, [&](const FetchResult&) { ++calls; });
  fetcher->fetch({"a", server_.url("/rec"), dest("a")}, [&](const FetchResult&) {
    ++calls;
    fetcher.reset();
  });
  fetcher->fetch({"b", "bad url", dest("b")}, [&](const FetchResult&) { ++calls; });
  ASSERT_TRUE(loop_.run_until([&] { return fetcher == nullptr; }, kWait));
  loop_.run_for(200ms);
  // "b" failed at once and was delivered first; "a" destroyed the fetcher; "slow" never calls.
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(loop_.watched_fds(), 0u);
  EXPECT_EQ(loop_.pending_timers(), 0u);
  EXPECT_FALSE(fs::exists(dest("slow")));
}

TEST_F(RecordingFetcherTest, DestroyingTheFetcherMidTransferIsSilentAndReleasesTheLoop) {
  server_.set_response("/slow", slow_audio());
  int calls = 0;
  {
    RecordingFetcher fetcher(loop_, dev_mode());
    fetcher.fetch({"slow", server_.url("/slow"), dest("slow")}, [&](const FetchResult&) { ++calls; });
    ASSERT_TRUE(loop_.run_until([&] { return fs::exists(dest("slow")) && fs::file_size(dest("slow")) > 0; }, kWait));
    EXPECT_GT(loop_.watched_fds(), 0u);
  }
  EXPECT_EQ(loop_.watched_fds(), 0u);
  EXPECT_EQ(loop_.pending_timers(), 0u);
  loop_.run_for(100ms);
  EXPECT_EQ(calls, 0);
  EXPECT_FALSE(fs::exists(dest("slow")));
}

// ---- memory ----

TEST_F(RecordingFetcherTest, LargeDownloadKeepsMemoryFlat) {
  constexpr uint64_t kSize = uint64_t{200} * 1024 * 1024;  // the default cap, exactly
  server_.set_response("/big", audio(kSize));
  RecordingFetcher fetcher(loop_, dev_mode());

  const long rss_before = proc_status_kb("VmRSS");
  const long hwm_before = proc_status_kb("VmHWM");
  ASSERT_GT(rss_before, 0);
  long rss_peak = rss_before;
  std::optional<FetchResult> result;
  fetcher.fetch({"big", server_.url("/big"), dest("big.mp3")}, [&](const FetchResult& r) { result = r; });
  ASSERT_TRUE(loop_.run_until(
      [&] {
        rss_peak = std::max(rss_peak, proc_status_kb("VmRSS"));
        return result.has_value();
      },
      120s));

  ASSERT_EQ(result->kind, FetchKind::ready_file) << result->detail;
  EXPECT_EQ(result->bytes, kSize);
  EXPECT_EQ(fs::file_size(dest("big.mp3")), kSize);
  constexpr long kLimitKb = 32 * 1024;
  std::printf("200 MiB download: VmRSS %ld -> peak %ld kB (+%ld kB), VmHWM +%ld kB\n", rss_before, rss_peak,
              rss_peak - rss_before, proc_status_kb("VmHWM") - hwm_before);
  EXPECT_LT(rss_peak - rss_before, kLimitKb) << "VmRSS grew by " << (rss_peak - rss_before) << " kB";
  EXPECT_LT(proc_status_kb("VmHWM") - hwm_before, kLimitKb);
  // Spot-check the content at a few offsets without reading 200 MB back.
  std::ifstream in(dest("big.mp3"), std::ios::binary);
  for (uint64_t offset : {uint64_t{0}, kSize / 3, kSize - 1}) {
    in.seekg(static_cast<std::streamoff>(offset));
    char c = 0;
    in.read(&c, 1);
    EXPECT_EQ(c, TestHttpServer::body_byte(offset)) << offset;
  }
}

}  // namespace
}  // namespace wavoip
