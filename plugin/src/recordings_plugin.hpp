// The plugin object behind the C entry: reads the configuration, opens the store, registers the
// webhook route, and hands the rest to RecordingService.
#pragma once

#include "host_api.hpp"

#include <wavoip/core/config.hpp>

#include <cstdint>
#include <memory>

namespace wavoip {

class HostEventLoop;
class RecordingService;
class Store;
class StoreWriter;
class WebhookHandler;

class RecordingsPlugin {
 public:
  explicit RecordingsPlugin(const hdp_host_t* host);
  ~RecordingsPlugin();
  RecordingsPlugin(const RecordingsPlugin&) = delete;
  RecordingsPlugin& operator=(const RecordingsPlugin&) = delete;

  const HostApi& host() const { return host_; }

  hdp_status_t init();
  hdp_status_t start();
  void stop();

 private:
  static std::string random_node_id();
  static void on_webhook(void* user_data, const hdp_http_request_t* request);
  static void on_retry(void* user_data, const hdp_http_request_t* request);
  void handle_retry(const hdp_http_request_t* request);

  HostApi host_;
  Config config_;
  std::string data_dir_;
  std::unique_ptr<Store> store_;
  // Kept until the plugin is destroyed: the host may still run a callback it asked for after stop.
  std::unique_ptr<StoreWriter> writer_;
  std::unique_ptr<HostEventLoop> loop_;
  std::unique_ptr<RecordingService> service_;
  std::unique_ptr<WebhookHandler> webhook_;
  uint64_t webhook_route_ = 0;
  uint64_t retry_route_ = 0;
};

}  // namespace wavoip
