/* A host-side consumer of the installed headers only: C99, -Wall -Wextra -pedantic -Werror. It
 * prints the ABI version it was compiled against and the id of the newest extension. */
#include <hdp/hdp.h>

#include <stdio.h>

int main(void) {
  hdp_version_t version = HDP_VERSION_INIT;
  hdp_metric_family_t family = {0};
  family.struct_size = (uint32_t)sizeof family;
  family.type = HDP_METRIC_COUNTER;
  if (!hdp_version_is_compatible(version) || family.struct_size < HDP_METRIC_FAMILY_V1_SIZE) return 1;
  printf("hdp ABI %u.%u.%u %s\n", (unsigned)version.major, (unsigned)version.minor, (unsigned)version.patch,
         HDP_EXT_METRICS);
  return 0;
}
