#include "http_client.hpp"

#include <curl/curl.h>

namespace testsupport {

namespace {
size_t append(char *data, size_t size, size_t count, void *user) {
   static_cast<std::string *>(user)->append(data, size * count);
   return size * count;
}
}  // namespace

HttpResponse http_request(const std::string &method, const std::string &url, const std::string &body,
                          const std::vector<std::string> &headers, long timeout_ms) {
   HttpResponse out;
   CURL *curl = curl_easy_init();
   if (curl == nullptr) {
      out.error = "curl_easy_init failed";
      return out;
   }
   curl_slist *list = nullptr;
   for (const auto &h : headers) list = curl_slist_append(list, h.c_str());
   curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
   curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
   curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
   curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
   curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
   if (method != "GET" && method != "HEAD") {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
   }
   curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append);
   curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out.body);
   CURLcode rc = curl_easy_perform(curl);
   if (rc == CURLE_OK) {
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out.status);
      char *ct = nullptr;
      curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ct);
      if (ct != nullptr) out.content_type = ct;
   } else {
      out.error = curl_easy_strerror(rc);
   }
   curl_slist_free_all(list);
   curl_easy_cleanup(curl);
   return out;
}

}  // namespace testsupport
