/* hdp_validate.c - hdp-validate: checks that shared objects follow the hdp plugin ABI rules.
 *
 *   hdp-validate [--allow-refusal] PLUGIN.so [PLUGIN.so ...]
 *
 * For each file, one line per check ("PASS", "FAIL", "WARN" or "INFO" and what was checked):
 *   - the file is an ELF64 shared object whose dynamic symbol table (read from the file, not
 *     through the loader) defines exactly one exported symbol, hdp_plugin_entry_v1, a data object
 *     large enough for the version-1 entry;
 *   - it loads with dlopen(RTLD_NOW | RTLD_LOCAL) and the entry's major, struct_size, metadata
 *     strings and init/deinit/create_plugin are as entry.h requires;
 *   - with a minimal host table that offers NO extension, entry init, create_plugin, plugin
 *     init/start/stop/destroy and entry deinit run, in that order, without crashing and without
 *     the validator calling a NULL member. This part runs in a child process so that a crash is
 *     reported instead of ending the validator. Each extension the plugin asks for is listed with
 *     the ABI minor that introduced it; a plugin that asks for a newer id (hdp.messages/2, 1.2)
 *     but never for the older one it replaces (hdp.messages/1) gets a WARN: in an older host it
 *     has no way left to do that work.
 * With several files, their ids must also be unique. --allow-refusal accepts a plugin that
 * cleanly refuses a host without extensions (init or start fails; destroy and deinit still run).
 *
 * Exit status: 0 when every check passed, 1 when one failed, 2 on usage errors. */
#define _XOPEN_SOURCE 700

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hdp/hdp.h>

#define MAX_LISTED_SYMBOLS 8

static bool g_allow_refusal;
static unsigned g_failures;

/* ---- reporting ------------------------------------------------------------------------------- */

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
report(const char* verdict, const char* fmt, ...) {
  va_list args;
  printf("  %-5s ", verdict);
  va_start(args, fmt);
  vprintf(fmt, args);
  va_end(args);
  putchar('\n');
  fflush(stdout);
  if (strcmp(verdict, "FAIL") == 0) {
    ++g_failures;
  }
}

/* Reports PASS or FAIL and returns ok. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static bool
check(bool ok, const char* fmt, ...) {
  va_list args;
  printf("  %-5s ", ok ? "PASS" : "FAIL");
  va_start(args, fmt);
  vprintf(fmt, args);
  va_end(args);
  putchar('\n');
  fflush(stdout);
  if (!ok) {
    ++g_failures;
  }
  return ok;
}

/* ---- the ELF dynamic symbol table, read from the file ---------------------------------------- */

typedef struct exports {
  size_t count;
  char names[MAX_LISTED_SYMBOLS][128];
  bool entry_found;
  unsigned char entry_type; /* STT_* */
  uint64_t entry_size;
} exports_t;

static unsigned char* read_file(const char* path, size_t* out_size) {
  FILE* file = fopen(path, "rb");
  unsigned char* data = NULL;
  long size;
  if (file == NULL) {
    return NULL;
  }
  if (fseek(file, 0, SEEK_END) == 0 && (size = ftell(file)) >= 0 && fseek(file, 0, SEEK_SET) == 0) {
    data = (unsigned char*)malloc((size_t)size + 1);
    if (data != NULL && fread(data, 1, (size_t)size, file) != (size_t)size) {
      free(data);
      data = NULL;
    }
    *out_size = (size_t)size;
  }
  fclose(file);
  return data;
}

static bool range_ok(size_t file_size, uint64_t offset, uint64_t length) {
  return offset <= file_size && length <= file_size - offset;
}

/* Returns NULL on success or a description of what is wrong with the file. */
static const char* read_exports(const unsigned char* data, size_t size, exports_t* out) {
  Elf64_Ehdr eh;
  uint16_t i;
  memset(out, 0, sizeof *out);
  if (size < EI_NIDENT || memcmp(data, ELFMAG, SELFMAG) != 0) {
    return "not an ELF file";
  }
  if (size < sizeof eh || data[EI_CLASS] != ELFCLASS64) {
    return "not an ELF64 file (only LP64 plugins are supported)";
  }
  memcpy(&eh, data, sizeof eh);
  if (eh.e_type != ET_DYN) {
    return "an ELF file but not a shared object (e_type is not ET_DYN)";
  }
  if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 ||
      !range_ok(size, eh.e_shoff, (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr))) {
    return "no usable section headers, so no dynamic symbol table to read";
  }
  for (i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr symtab;
    Elf64_Shdr strtab;
    uint64_t n;
    uint64_t k;
    memcpy(&symtab, data + eh.e_shoff + (uint64_t)i * sizeof symtab, sizeof symtab);
    if (symtab.sh_type != SHT_DYNSYM) {
      continue;
    }
    if (symtab.sh_link >= eh.e_shnum || !range_ok(size, symtab.sh_offset, symtab.sh_size)) {
      return "the dynamic symbol table is truncated";
    }
    memcpy(&strtab, data + eh.e_shoff + (uint64_t)symtab.sh_link * sizeof strtab, sizeof strtab);
    if (!range_ok(size, strtab.sh_offset, strtab.sh_size)) {
      return "the dynamic string table is truncated";
    }
    n = symtab.sh_size / sizeof(Elf64_Sym);
    for (k = 1; k < n; ++k) { /* entry 0 is the null symbol */
      Elf64_Sym sym;
      unsigned bind;
      const char* name;
      size_t max_len;
      memcpy(&sym, data + symtab.sh_offset + k * sizeof sym, sizeof sym);
      bind = ELF64_ST_BIND(sym.st_info);
      if (sym.st_shndx == SHN_UNDEF || (bind != STB_GLOBAL && bind != STB_WEAK && bind != 10 /* STB_GNU_UNIQUE */) ||
          ELF64_ST_VISIBILITY(sym.st_other) == STV_HIDDEN || ELF64_ST_VISIBILITY(sym.st_other) == STV_INTERNAL ||
          sym.st_name >= strtab.sh_size) {
        continue;
      }
      name = (const char*)data + strtab.sh_offset + sym.st_name;
      max_len = (size_t)(strtab.sh_size - sym.st_name);
      if (memchr(name, '\0', max_len) == NULL) {
        return "a symbol name runs past the string table";
      }
      if (out->count < MAX_LISTED_SYMBOLS) {
        snprintf(out->names[out->count], sizeof out->names[0], "%s", name);
      }
      ++out->count;
      if (strcmp(name, HDP_ENTRY_SYMBOL) == 0) {
        out->entry_found = true;
        out->entry_type = (unsigned char)ELF64_ST_TYPE(sym.st_info);
        out->entry_size = sym.st_size;
      }
    }
    return NULL;
  }
  return "no dynamic symbol table";
}

static void list_exports(const exports_t* exports, char* buffer, size_t size) {
  size_t i;
  size_t used = 0;
  buffer[0] = '\0';
  for (i = 0; i < exports->count && i < MAX_LISTED_SYMBOLS && used < size; ++i) {
    int n = snprintf(buffer + used, size - used, "%s%s", i == 0 ? "" : ", ", exports->names[i]);
    if (n < 0) {
      break;
    }
    used += (size_t)n;
  }
  if (exports->count > MAX_LISTED_SYMBOLS && used < size) {
    snprintf(buffer + used, size - used, ", ...");
  }
}

/* ---- a minimal host: the core table and no extension ----------------------------------------- */

typedef struct queued_call {
  struct queued_call* next;
  hdp_main_thread_callback_t callback;
  void* user_data;
} queued_call_t;

/* The extension ids this validator knows, with the minor that first shipped each, and the older
 * id a plugin falls back to in a host that lacks it. */
typedef struct known_extension {
  const char* id;
  unsigned since_minor;
  const char* falls_back_to;
} known_extension_t;

static const known_extension_t g_known_extensions[] = {
    {HDP_EXT_TIMERS, 0, NULL},
    {HDP_EXT_POSIX_FD, 0, NULL},
    {HDP_EXT_HTTP, 0, NULL},
    {HDP_EXT_MESSAGES, 0, NULL},
    {HDP_EXT_ATTACHMENTS, 0, NULL},
    {HDP_EXT_METRICS, 1, NULL},
    {HDP_EXT_MESSAGES_V2, 2, HDP_EXT_MESSAGES},
    {HDP_EXT_MESSAGES_V3, 3, HDP_EXT_MESSAGES_V2},
};
#define KNOWN_EXTENSION_COUNT (sizeof g_known_extensions / sizeof g_known_extensions[0])

typedef struct validator_host {
  char data_dir[256];
  unsigned extension_requests;
  bool asked[KNOWN_EXTENSION_COUNT];
  pthread_mutex_t mutex;
  queued_call_t* calls;
  bool calls_closed;
} validator_host_t;

static validator_host_t g_vhost;

static const void* vh_get_extension(const hdp_host_t* host, const char* extension_id) {
  size_t i;
  (void)host;
  ++g_vhost.extension_requests;
  for (i = 0; extension_id != NULL && i < KNOWN_EXTENSION_COUNT; ++i) {
    if (strcmp(extension_id, g_known_extensions[i].id) == 0) {
      g_vhost.asked[i] = true;
      report("INFO", "plugin asked for extension \"%s\" (ABI %d.%u); this host offers none (NULL)", extension_id,
             HDP_VERSION_MAJOR, g_known_extensions[i].since_minor);
      return NULL;
    }
  }
  report("INFO",
         "plugin asked for extension \"%s\" (unknown to this validator); this host offers none "
         "(NULL)",
         extension_id != NULL ? extension_id : "(null)");
  return NULL;
}

/* WARN for every newer extension asked for without the older one it replaces. */
static void report_fallbacks(void) {
  size_t i;
  size_t j;
  for (i = 0; i < KNOWN_EXTENSION_COUNT; ++i) {
    const char* older = g_known_extensions[i].falls_back_to;
    bool asked_older = false;
    if (!g_vhost.asked[i] || older == NULL) {
      continue;
    }
    for (j = 0; j < KNOWN_EXTENSION_COUNT; ++j) {
      asked_older = asked_older || (g_vhost.asked[j] && strcmp(g_known_extensions[j].id, older) == 0);
    }
    if (!asked_older) {
      report("WARN",
             "plugin asked for %s but never for %s: in a host older than ABI %d.%u it cannot "
             "do that work",
             g_known_extensions[i].id, older, HDP_VERSION_MAJOR, g_known_extensions[i].since_minor);
    }
  }
}

static void vh_log(const hdp_host_t* host, int32_t level, const char* message) {
  (void)host;
  printf("        plugin log [%" PRId32 "]: %s\n", level, message != NULL ? message : "(null)");
  fflush(stdout);
}

static bool vh_log_enabled(const hdp_host_t* host, int32_t level) {
  (void)host;
  (void)level;
  return true;
}

static int64_t clock_us(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t vh_wall_clock_us(const hdp_host_t* host) {
  (void)host;
  return clock_us(CLOCK_REALTIME);
}

static int64_t vh_monotonic_clock_us(const hdp_host_t* host) {
  (void)host;
  return clock_us(CLOCK_MONOTONIC);
}

static hdp_status_t vh_request_main_thread_callback(const hdp_host_t* host, hdp_main_thread_callback_t callback,
                                                    void* user_data) {
  queued_call_t* call;
  hdp_status_t status = HDP_OK;
  (void)host;
  if (callback == NULL) {
    return HDP_ERR_INVALID_ARGUMENT;
  }
  call = (queued_call_t*)calloc(1, sizeof *call);
  if (call == NULL) {
    return HDP_ERR_NO_MEMORY;
  }
  call->callback = callback;
  call->user_data = user_data;
  pthread_mutex_lock(&g_vhost.mutex);
  if (g_vhost.calls_closed) {
    status = HDP_ERR_BAD_STATE;
  } else {
    call->next = g_vhost.calls;
    g_vhost.calls = call;
  }
  pthread_mutex_unlock(&g_vhost.mutex);
  if (status != HDP_OK) {
    free(call);
  }
  return status;
}

static void vh_get_config(const hdp_host_t* host, const uint8_t** out_data, size_t* out_size) {
  static const uint8_t empty[1] = {0};
  (void)host;
  *out_data = empty;
  *out_size = 0;
}

static const char* vh_get_data_dir(const hdp_host_t* host) {
  (void)host;
  return g_vhost.data_dir;
}

/* Runs what the plugin queued with request_main_thread_callback, as a host loop would. */
static void vh_run_calls(bool close_queue) {
  queued_call_t* call;
  pthread_mutex_lock(&g_vhost.mutex);
  call = g_vhost.calls;
  g_vhost.calls = NULL;
  g_vhost.calls_closed = close_queue;
  pthread_mutex_unlock(&g_vhost.mutex);
  while (call != NULL) {
    queued_call_t* next = call->next;
    call->callback(call->user_data);
    free(call);
    call = next;
  }
}

static int remove_entry(const char* path, const struct stat* st, int type, struct FTW* ftw) {
  (void)st;
  (void)type;
  (void)ftw;
  return remove(path);
}

/* Removes the plugin's temporary data directory and whatever the plugin left in it. */
static void remove_tree(const char* path) {
  if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
    report("WARN", "could not remove %s", path);
  }
}

/* The child's exit status when a check failed and was reported; anything else but 0 means the
 * plugin ended the process (a sanitizer report, exit() in plugin code). */
#define LIFECYCLE_CHECK_FAILED 3

/* The lifecycle in the child process. Returns the child's exit status. */
static int run_lifecycle(const char* path, const hdp_plugin_entry_t* entry) {
  hdp_host_t host;
  const hdp_plugin_t* plugin;
  hdp_status_t status;

  memset(&host, 0, sizeof host);
  host.abi_version.major = HDP_VERSION_MAJOR;
  host.abi_version.minor = HDP_VERSION_MINOR;
  host.abi_version.patch = HDP_VERSION_PATCH;
  host.struct_size = (uint32_t)sizeof host;
  host.name = "hdp-validate";
  host.vendor = "hdp";
  host.version = "1.0.0";
  host.host_data = NULL;
  host.get_extension = vh_get_extension;
  host.log = vh_log;
  host.log_enabled = vh_log_enabled;
  host.wall_clock_us = vh_wall_clock_us;
  host.monotonic_clock_us = vh_monotonic_clock_us;
  host.request_main_thread_callback = vh_request_main_thread_callback;
  host.get_config = vh_get_config;
  host.get_data_dir = vh_get_data_dir;

  if (!check(entry->init(path), "entry init(\"%s\") returns true", path)) {
    return LIFECYCLE_CHECK_FAILED; /* the host would stop here: no create_plugin, no deinit */
  }
  plugin = entry->create_plugin(&host);
  if (!check(plugin != NULL, "create_plugin returns an object for a host offering no extension")) {
    entry->deinit();
    report("PASS", "entry deinit returns");
    return LIFECYCLE_CHECK_FAILED;
  }
  if (!check(plugin->struct_size >= HDP_PLUGIN_V1_SIZE, "plugin struct_size %" PRIu32 " >= version-1 size %zu",
             plugin->struct_size, (size_t)HDP_PLUGIN_V1_SIZE)) {
    entry->deinit();
    return LIFECYCLE_CHECK_FAILED; /* nothing in a table this small can be called safely */
  }
  if (!check(plugin->init != NULL && plugin->start != NULL && plugin->stop != NULL && plugin->destroy != NULL,
             "plugin init, start, stop and destroy are non-NULL (get_extension %s)",
             plugin->get_extension != NULL ? "set" : "NULL, allowed")) {
    if (plugin->destroy != NULL) {
      plugin->destroy(plugin);
    }
    entry->deinit();
    return LIFECYCLE_CHECK_FAILED;
  }
  if (plugin->get_extension != NULL) {
    check(plugin->get_extension(plugin, "hdp.validate.unknown/1") == NULL,
          "plugin get_extension returns NULL for an unknown id");
  }

  status = plugin->init(plugin);
  vh_run_calls(false);
  if (status != HDP_OK && g_allow_refusal) {
    report("WARN", "plugin init refused a host without extensions (status %" PRId32 ")", status);
  } else {
    check(status == HDP_OK, "plugin init returns HDP_OK (got %" PRId32 ")", status);
  }
  if (status == HDP_OK) {
    status = plugin->start(plugin);
    vh_run_calls(false);
    if (status != HDP_OK && g_allow_refusal) {
      report("WARN", "plugin start refused a host without extensions (status %" PRId32 ")", status);
    } else {
      check(status == HDP_OK, "plugin start returns HDP_OK (got %" PRId32 ")", status);
    }
    if (status == HDP_OK) {
      vh_run_calls(true); /* the host is stopping: later requests get BAD_STATE */
      plugin->stop(plugin);
      report("PASS", "plugin stop returns");
    }
  }
  plugin->destroy(plugin);
  report("PASS", "plugin destroy returns");
  entry->deinit();
  report("PASS", "entry deinit returns");
  vh_run_calls(true);
  report_fallbacks();
  return g_failures == 0 ? 0 : LIFECYCLE_CHECK_FAILED;
}

/* ---- one file -------------------------------------------------------------------------------- */

typedef struct validated {
  const char* path;
  const char* id; /* NULL when the file did not get that far */
} validated_t;

static void validate(const char* path, validated_t* out) {
  exports_t exports;
  size_t size = 0;
  unsigned char* data;
  const char* problem;
  char listed[MAX_LISTED_SYMBOLS * 130];
  void* handle;
  const hdp_plugin_entry_t* entry;
  const char* const* strings[5];
  static const char* const string_names[5] = {"id", "name", "vendor", "version", "description"};
  bool strings_ok = true;
  size_t i;
  pid_t child;
  int wstatus = 0;
  char tmpl[] = "/tmp/hdp-validate.XXXXXX";

  out->path = path;
  out->id = NULL;
  printf("%s\n", path);

  data = read_file(path, &size);
  if (!check(data != NULL, "the file is readable%s%s", data == NULL ? ": " : "", data == NULL ? strerror(errno) : "")) {
    return;
  }
  problem = read_exports(data, size, &exports);
  free(data);
  if (!check(problem == NULL, "the file is an ELF64 shared object with a dynamic symbol table%s%s",
             problem != NULL ? ": " : "", problem != NULL ? problem : "")) {
    return;
  }
  list_exports(&exports, listed, sizeof listed);
  check(exports.count == 1 && exports.entry_found,
        "exactly one exported dynamic symbol, " HDP_ENTRY_SYMBOL " (found %zu: %s)", exports.count,
        exports.count == 0 ? "none" : listed);
  if (exports.entry_found) {
    check(exports.entry_type == STT_OBJECT, HDP_ENTRY_SYMBOL " is a data object (STT_OBJECT), not a function");
    check(exports.entry_size >= HDP_PLUGIN_ENTRY_V1_SIZE,
          HDP_ENTRY_SYMBOL " is %" PRIu64 " bytes, at least the version-1 entry size %zu", exports.entry_size,
          (size_t)HDP_PLUGIN_ENTRY_V1_SIZE);
  }

  handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!check(handle != NULL, "dlopen(RTLD_NOW | RTLD_LOCAL)%s%s", handle == NULL ? ": " : "",
             handle == NULL ? dlerror() : "")) {
    return;
  }
  entry = (const hdp_plugin_entry_t*)dlsym(handle, HDP_ENTRY_SYMBOL);
  if (!check(entry != NULL, "dlsym finds " HDP_ENTRY_SYMBOL)) {
    return;
  }
  if (!check(entry->abi_version.major == HDP_VERSION_MAJOR,
             "ABI major %" PRIu32 " is this validator's major %d (built against %" PRIu32 ".%" PRIu32 ".%" PRIu32 ")",
             entry->abi_version.major, HDP_VERSION_MAJOR, entry->abi_version.major, entry->abi_version.minor,
             entry->abi_version.patch)) {
    return; /* nothing else in the struct is defined for another major */
  }
  if (entry->abi_version.minor != HDP_VERSION_MINOR) {
    report("INFO", "built against minor %" PRIu32 ", this validator knows minor %d: compatible",
           entry->abi_version.minor, HDP_VERSION_MINOR);
  }
  if (!check(entry->struct_size >= HDP_PLUGIN_ENTRY_V1_SIZE, "entry struct_size %" PRIu32 " >= version-1 size %zu",
             entry->struct_size, (size_t)HDP_PLUGIN_ENTRY_V1_SIZE)) {
    return;
  }
  if (exports.entry_found && exports.entry_size < entry->struct_size) {
    check(false, "entry struct_size %" PRIu32 " fits in the %" PRIu64 "-byte symbol", entry->struct_size,
          exports.entry_size);
  }
  strings[0] = &entry->id;
  strings[1] = &entry->name;
  strings[2] = &entry->vendor;
  strings[3] = &entry->version;
  strings[4] = &entry->description;
  for (i = 0; i < 5; ++i) {
    if (*strings[i] == NULL) {
      check(false, "entry %s is non-NULL", string_names[i]);
      strings_ok = false;
    }
  }
  if (strings_ok) {
    check(entry->id[0] != '\0',
          "metadata strings are non-NULL and the id is not empty (id \"%s\", "
          "name \"%s\", vendor \"%s\", version \"%s\")",
          entry->id, entry->name, entry->vendor, entry->version);
  }
  if (!check(entry->init != NULL && entry->deinit != NULL && entry->create_plugin != NULL,
             "entry init, deinit and create_plugin are non-NULL") ||
      !strings_ok) {
    return;
  }
  out->id = entry->id;

  if (mkdtemp(tmpl) == NULL) {
    report("FAIL", "cannot create a data directory: %s", strerror(errno));
    return;
  }
  snprintf(g_vhost.data_dir, sizeof g_vhost.data_dir, "%s", tmpl);
  fflush(stdout);
  child = fork();
  if (child == 0) {
    struct rlimit no_core = {0, 0};
    (void)setrlimit(RLIMIT_CORE, &no_core); /* a crash is a finding, not a core file */
    g_failures = 0;
    _exit(run_lifecycle(path, entry));
  }
  if (child < 0) {
    report("FAIL", "fork failed: %s", strerror(errno));
  } else if (waitpid(child, &wstatus, 0) != child) {
    report("FAIL", "waitpid failed: %s", strerror(errno));
  } else if (WIFSIGNALED(wstatus)) {
    check(false, "the lifecycle ran without crashing (killed by signal %d, %s)", WTERMSIG(wstatus),
          strsignal(WTERMSIG(wstatus)));
  } else if (WEXITSTATUS(wstatus) == LIFECYCLE_CHECK_FAILED) {
    ++g_failures; /* the child printed which check failed */
  } else if (WEXITSTATUS(wstatus) != 0) {
    check(false,
          "the lifecycle ran without crashing (the process exited with status %d inside "
          "plugin code; see the report above)",
          WEXITSTATUS(wstatus));
  } else {
    report("PASS", "the lifecycle ran without crashing, with no extension offered");
  }
  remove_tree(tmpl);
}

int main(int argc, char** argv) {
  validated_t results[64];
  size_t count = 0;
  size_t i;
  size_t j;
  int arg;

  pthread_mutex_init(&g_vhost.mutex, NULL);
  for (arg = 1; arg < argc; ++arg) {
    if (strcmp(argv[arg], "--allow-refusal") == 0) {
      g_allow_refusal = true;
    } else if (strcmp(argv[arg], "--help") == 0) {
      printf("usage: hdp-validate [--allow-refusal] PLUGIN.so [PLUGIN.so ...]\n");
      return 0;
    } else if (argv[arg][0] == '-') {
      fprintf(stderr, "hdp-validate: unknown option %s\n", argv[arg]);
      return 2;
    } else if (count < sizeof results / sizeof results[0]) {
      validate(argv[arg], &results[count++]);
    } else {
      fprintf(stderr, "hdp-validate: too many files\n");
      return 2;
    }
  }
  if (count == 0) {
    fprintf(stderr, "usage: hdp-validate [--allow-refusal] PLUGIN.so [PLUGIN.so ...]\n");
    return 2;
  }
  if (count > 1) {
    bool unique = true;
    printf("all files\n");
    for (i = 0; i < count; ++i) {
      for (j = i + 1; j < count; ++j) {
        if (results[i].id != NULL && results[j].id != NULL && strcmp(results[i].id, results[j].id) == 0) {
          check(false, "plugin ids are unique: %s and %s both use \"%s\"", results[i].path, results[j].path,
                results[i].id);
          unique = false;
        }
      }
    }
    if (unique) {
      check(true, "plugin ids are unique");
    }
  }
  printf("%s: %u failed check%s\n", g_failures == 0 ? "OK" : "FAILED", g_failures, g_failures == 1 ? "" : "s");
  pthread_mutex_destroy(&g_vhost.mutex);
  return g_failures == 0 ? 0 : 1;
}
