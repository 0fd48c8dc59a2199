// What the host tests share beyond tests/support: the paths of the built artefacts, the ways
// they run hdp-stub-host, signing in, and small JSON accessors. The helpers themselves (the host
// runner, the HTTP clients, TempDir, eventually) are tests/support's.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "child_process.hpp"  // tests/support
#include "eventually.hpp"     // tests/support
#include "host_process.hpp"   // tests/support
#include "http_client.hpp"    // tests/support
#include "raw_http.hpp"       // tests/support
#include "temp_dir.hpp"       // tests/support

namespace hdp::test {

using testsupport::eventually;
using testsupport::HostOptions;
using testsupport::HostProcess;
using testsupport::HttpClient;
using testsupport::HttpResponse;
using testsupport::RawConnection;
using testsupport::TempDir;

// Paths of the built artefacts, from the build system.
std::string stub_host_path();
std::string probe_plugin_path();
std::string bad_plugin_path(const std::string& variant);  // "no_symbol", ...

// hdp-stub-host with `args` after --listen 127.0.0.1:0, --port-file and --data-dir (a data
// directory of its own, unless args name another: the last one counts), stdout apart from stderr
// (log()), launched when the HostProcess is made and waited for until its port file appears
// (started()). No agent unless with_agent().
HostOptions stub_host(std::vector<std::string> args = {});
// A host with the probe plugin and the virtual clock, plus extra arguments.
HostOptions probe_host(std::vector<std::string> extra = {});
// The same options with the test agent added (HostOptions::add_agent).
HostOptions with_agent(HostOptions options);
// Signs http in as the test agent (POST /login with JSON); its cookie engine keeps the session
// for the next requests. The answer: 200 with {"agent","csrf_token"} when it worked.
HttpResponse sign_in(HttpClient& http, const HostProcess& host);

// `hdp-stub-host agent add <test agent> --database URI`, the password on standard input, its output
// in dir/agent-add.log: the exit status (-1 when it did not end).
int add_agent_to_database(const std::string& uri, const TempDir& dir);

// Small JSON accessors for test assertions.
int64_t json_int(const boost::json::value& v, std::string_view key);
std::vector<int64_t> json_ints(const boost::json::value& v, std::string_view key);

}  // namespace hdp::test
