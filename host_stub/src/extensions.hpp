// The host's extension tables (ext/*.h). Each function finds the calling plugin through
// PluginContext::from(host). The tables are static and live as long as the program.
#pragma once

#include <string>

#include <hdp/hdp.h>

namespace hdp::host {

const hdp_host_timers_t* timers_extension();
const hdp_host_posix_fd_t* posix_fd_extension();
const hdp_host_http_t* http_extension();
const hdp_host_messages_t* messages_extension();
const hdp_host_messages2_t* messages2_extension();
const hdp_host_messages3_t* messages3_extension();
const hdp_host_attachments_t* attachments_extension();
const hdp_host_metrics_t* metrics_extension();

// "HDP_ERR_IO (-50)", for log lines.
std::string status_text(hdp_status_t status);

}  // namespace hdp::host
