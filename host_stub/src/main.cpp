// hdp-stub-host: see host_stub/README.md.
#include <malloc.h>
#include <sqlite3.h>

#include <csignal>
#include <cstdio>
#include <exception>
#include <span>
#include <string_view>
#include <vector>

#include "agent_command.hpp"
#include "log.hpp"
#include "options.hpp"
#include "stub_host.hpp"

int main(int argc, char** argv) {
  using namespace hdp::host;
  // Writes to a closed pipe or socket report EPIPE instead of killing the host.
  std::signal(SIGPIPE, SIG_IGN);
  // Every SQLite connection of the process (the host's and the plugins') would otherwise take one
  // global mutex for each allocation, to count memory nobody reads. Only possible before SQLite
  // initializes; later it is refused and nothing changes.
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  // Under load the heap's top grows and shrinks by a few hundred KiB many times a second; giving
  // it back to the kernel each time (brk, then page faults to take it again, and a TLB flush on
  // every core the process runs on) cost more than the memory is worth. Keep up to 64 MiB.
  mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
  mallopt(M_TOP_PAD, 4 * 1024 * 1024);
  // Either setting above also freezes glibc's mmap threshold at 128 KiB (it no longer rises after
  // the first free), and every libcurl transfer's receive buffer is 128 KiB and a byte: each poll
  // then cost an mmap, page faults, an munmap and a TLB flush on every core. Blocks up to 4 MiB
  // come from the heap.
  mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);

  const std::vector<std::string_view> args(argv + 1, argv + argc);
  if (!args.empty() && args.front() == "agent") {
    return run_agent_command(std::span(args).subspan(1), stdin, stdout, stderr);
  }
  ParsedOptions parsed = parse_command_line(args);
  Logger log;
  if (parsed.error) {
    log.error(*parsed.error);
    return kExitCannotStart;
  }
  if (parsed.options.help) {
    std::fputs(usage_text().c_str(), stdout);
    return kExitOk;
  }
  log.set_level(parsed.options.log_level);
  log.set_format(parsed.options.log_format);
  try {
    StubHost host(log, std::move(parsed.options));
    return host.run();
  } catch (const std::exception& e) {
    log.error(std::string("fatal: ") + e.what());
    return kExitCannotStart;
  }
}
