// The web inbox: one static page that reads the JSON API and shows each call message with its
// recording status, the reason, and an <audio controls> player once a recording is attached.
#pragma once

#include <string>

namespace hdp::host {

const std::string& inbox_page_html();

}  // namespace hdp::host
