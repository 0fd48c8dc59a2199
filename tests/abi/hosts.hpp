// hosts.hpp - the hosts the ABI tests run (the C host, and the stub host when it is built) and how:
// the host runner, the HTTP client and the other helpers are the ones of tests/support.
//
// Both hosts take the same options (--listen, --port-file, --data-dir, --plugin); their stdout
// and stderr go to one log file the tests read. A host still running when its HostProcess goes
// is killed.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "child_process.hpp"  // tests/support: lines_containing
#include "host_process.hpp"   // tests/support: HostProcess
#include "raw_http.hpp"       // tests/support: RawResponse
#include "temp_dir.hpp"       // tests/support: TempDir

namespace hdp::test {

using testsupport::HostProcess;
using testsupport::lines_containing;
using testsupport::RawResponse;
using testsupport::TempDir;

// One host binary the tests can drive.
struct HostKind {
  std::string name;  // "c_host", "stub_host"
  std::string path;
};

inline void PrintTo(const HostKind& host, std::ostream* out) {
  *out << host.name;
}

// The hosts this build has: always the C host, the stub host when it was built.
std::vector<HostKind> AvailableHosts();

// `host` with --listen 127.0.0.1:0 --port-file --data-dir under `dir`, then --plugin for each of
// `plugins`, then `extra_args`; launched when the HostProcess is made (wait_until_serving() waits
// for its port, wait_exit() for a host that refuses to start). Nothing but those options: the C
// host has no agents, no /healthz and no virtual clock.
testsupport::HostOptions HostOptionsFor(const HostKind& host, const std::filesystem::path& dir,
                                        const std::vector<std::string>& plugins,
                                        const std::vector<std::string>& extra_args = {});

// One request to a host under test on a connection of its own. Raw HTTP/1.1 rather than curl:
// the C host answers a body over the route's limit (413) before reading it, and
// testsupport::raw_exchange still reads that answer.
RawResponse Http(int port, std::string_view method, std::string_view target, std::string_view body = {},
                 std::chrono::milliseconds timeout = std::chrono::seconds(10));

// The number after "\"name\":" in a flat JSON object, or nullopt.
std::optional<long long> JsonNumber(const std::string& json, std::string_view name);

}  // namespace hdp::test
