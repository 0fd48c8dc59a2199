/* hdp/hdp.h - Helpdesk Plugin ABI, version 1.
 *
 * COMPATIBILITY POLICY
 *  - The version is MAJOR.MINOR.PATCH (version.h). A host loads a plugin whose major equals its
 *    own, whatever the two minors; a different major is refused. The exported symbol carries the
 *    major in its name (hdp_plugin_entry_v1), so two majors can never be confused.
 *  - Released structs and function tables are frozen: members are never removed, reordered or
 *    retyped. A minor release may append members at the end; each struct starts with
 *    struct_size (the entry and host table right after abi_version), and a reader uses a member
 *    only if it lies wholly inside the struct_size it was given. The smallest accepted size is
 *    the version-1.0 size (HDP_*_V1_SIZE), pinned by static_asserts in the ABI tests.
 *  - New capabilities are new extensions with a versioned string id ("hdp.timers/1"); a changed
 *    extension gets a new id ("hdp.timers/2") and the old one stays served. get_extension
 *    returns NULL for what is not offered; callers always check.
 *  - Enumerations cross as fixed-width integers with explicit values that are never reused;
 *    unknown values are tolerated.
 *  - Only the C standard library appears here. Structured data crosses as bytes.
 *  - Threads: every plugin callback runs on the host's main loop thread, one at a time. Host
 *    functions are [main-thread] unless tagged [thread-safe]; only log, log_enabled, the clocks and
 *    request_main_thread_callback are.
 *  - Errors: hdp_status_t (status.h). No exception, longjmp or panic crosses the boundary.
 *  - Memory: whoever allocates frees; borrowed inputs live for the call only; each member says
 *    who owns each pointer and for how long.
 *
 * See plugin_api/CHANGELOG.md for what each version added. */
#ifndef HDP_HDP_H
#define HDP_HDP_H

#include "entry.h"
#include "host.h"
#include "log.h"
#include "plugin.h"
#include "status.h"
#include "version.h"

#include "ext/attachments.h"
#include "ext/http.h"
#include "ext/messages.h"
#include "ext/metrics.h"
#include "ext/posix_fd.h"
#include "ext/timers.h"

#endif /* HDP_HDP_H */
