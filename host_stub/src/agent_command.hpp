// hdp-stub-host agent add|remove|list: managing agent accounts from the command line. The
// password comes from standard input (one line), never from the command line, where other users
// of the machine could read it.
#pragma once

#include <cstdio>
#include <span>
#include <string_view>

namespace hdp::host {

// args: what follows "agent". Returns the exit status: 0 done, 1 refused (the reason on err).
int run_agent_command(std::span<const std::string_view> args, std::FILE* in, std::FILE* out, std::FILE* err);

}  // namespace hdp::host
