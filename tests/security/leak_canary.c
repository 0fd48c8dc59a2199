/* Leaks one allocation on purpose. Under LeakSanitizer it must be reported: the leak test runs it
 * first to show that leak detection works on this machine before it trusts a clean host exit. */
#include <stdlib.h>
#include <string.h>

static void* volatile sink;

static void __attribute__((noinline)) leak(void) {
  sink = malloc(4096);
  memset(sink, 1, 4096);
  sink = NULL;
}

int main(void) {
  leak();
  return 0;
}
