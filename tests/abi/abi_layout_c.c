/* abi_layout_c.c - the version-1 layout, pinned at compile time by a C compiler.
 *
 * Built twice: as C99 (where _Static_assert does not exist and a negative array size does the
 * job) and as C11 (_Static_assert). Nothing here runs; a mismatch fails the build. */
#include <stddef.h>

#include <hdp/hdp.h>

#include "abi_layout_expectations.h"

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define HDP_ASSERT(name, cond) _Static_assert(cond, #name)
#else
#define HDP_ASSERT(name, cond) typedef char hdp_abi_check_##name[(cond) ? 1 : -1]
#endif

#define CHECK_SIZE(type, size) HDP_ASSERT(size_of_##type, sizeof(type) == (size));
#define CHECK_OFFSET(type, member, offset) HDP_ASSERT(offset_of_##type##_##member, offsetof(type, member) == (offset));
#define CHECK_CONSTANT(name, value) HDP_ASSERT(value_of_##name, (long long)(name) == (value));

HDP_ABI_SIZES(CHECK_SIZE)
HDP_ABI_OFFSETS(CHECK_OFFSET)
HDP_ABI_CONSTANTS(CHECK_CONSTANT)
HDP_ABI_SCALARS(CHECK_SIZE)

/* A C compiler must accept the documented idioms of the headers, too. */
static const hdp_version_t hdp_abi_c_version = HDP_VERSION_INIT;

int hdp_abi_layout_c_is_compatible(void);
int hdp_abi_layout_c_is_compatible(void) {
  return hdp_version_is_compatible(hdp_abi_c_version) ? 1 : 0;
}
