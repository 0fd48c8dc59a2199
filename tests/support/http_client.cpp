#include "http_client.hpp"

#include <curl/curl.h>

#include <cctype>

namespace testsupport {

namespace {
size_t append(char *data, size_t size, size_t count, void *user) {
   static_cast<std::string *>(user)->append(data, size * count);
   return size * count;
}

// Keeps the headers tests look at; a new status line (redirect, 100) starts over.
size_t on_header(char *data, size_t size, size_t count, void *user) {
   auto *out = static_cast<HttpResponse *>(user);
   std::string line(data, size * count);
   while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
   if (line.rfind("HTTP/", 0) == 0) {
      out->set_cookies.clear();
      out->location.clear();
      out->retry_after.clear();
      return size * count;
   }
   const size_t colon = line.find(':');
   if (colon == std::string::npos) return size * count;
   std::string name = line.substr(0, colon);
   for (char &c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
   std::string value = line.substr(colon + 1);
   while (!value.empty() && value.front() == ' ') value.erase(0, 1);
   if (name == "set-cookie") out->set_cookies.push_back(value);
   if (name == "location") out->location = value;
   if (name == "retry-after") out->retry_after = value;
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
   curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
   curl_easy_setopt(curl, CURLOPT_HEADERDATA, &out);
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
