// Sends one webhook as WaVoIP does: POST, JSON body, no signature.
#pragma once

#include <string>

namespace wavoip::sim {

struct Delivery {
  long status = 0;     // HTTP status; 0 when no answer came
  std::string error;   // why there was no answer
  std::string answer;  // the receiver's body (first 200 bytes)
  bool ok() const { return status >= 200 && status < 300; }
};

class WebhookSender {
 public:
  WebhookSender();
  ~WebhookSender();
  WebhookSender(const WebhookSender&) = delete;
  WebhookSender& operator=(const WebhookSender&) = delete;

  Delivery post(const std::string& url, const std::string& body);

 private:
  void* curl_;
};

}  // namespace wavoip::sim
