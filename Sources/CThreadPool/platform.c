/* The default thread count: the CPUs this process may use, from its affinity mask and its cgroup's
 * CPU bandwidth limit (a container's quota), unless THREADPOOLKIT_THREADS says otherwise.
 *
 * Everything is read again on every call: a container's quota may change while it runs, and pools
 * are created rarely enough that a few reads of small files do not matter. Every file is read into a
 * fixed buffer; content that does not fit, or is not exactly what the kernel writes, counts as no
 * limit, so that a strange file can cost the quota but never a crash or a pool of absurd size.
 */
#define _GNU_SOURCE
#include "platform.h"
#include "CThreadPool.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- test hooks ---------------------------------------------------------------------------- */

#ifdef CTP_FAULT_INJECTION
static char test_root[PATH_MAX];  /* "": the real root */
static bool test_root_too_long;   /* the hook was given a root it could not copy: read nothing */
static unsigned test_affinity_cpus; /* 0: the real count */

void ctp_test_set_cgroup_root(const char *root) {
    int n = snprintf(test_root, sizeof test_root, "%s", root != NULL ? root : "");
    test_root_too_long = n < 0 || (size_t)n >= sizeof test_root;
}

void ctp_test_set_affinity_cpus(unsigned cpus) {
    test_affinity_cpus = cpus;
}
#endif

/* ---- the affinity mask ---------------------------------------------------------------------- */

unsigned ctp_affinity_cpus(void) {
#ifdef CTP_FAULT_INJECTION
    if (test_affinity_cpus != 0) return test_affinity_cpus;
#endif
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return (unsigned)n;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1u;
}

/* ---- the cgroup's CPU bandwidth limit --------------------------------------------------------- */

#if defined(__linux__)

/* The directory under which /proc and /sys are read: "" (the real root), or a test's fake root.
   NULL: read nothing. */
static const char *root_directory(void) {
#ifdef CTP_FAULT_INJECTION
    return test_root_too_long ? NULL : test_root;
#else
    return "";
#endif
}

/* out = a b c. False when that does not fit in `size` bytes. */
static bool join_path(char *out, size_t size, const char *a, const char *b, const char *c) {
    int n = snprintf(out, size, "%s%s%s", a, b, c);
    return n >= 0 && (size_t)n < size;
}

/* Reads the whole file at `path` into `buffer`, NUL-terminated. False when it cannot be opened or
   read, holds more than size - 1 bytes (more than any value expected of it), or holds a NUL byte
   (no text the kernel writes, and the parsers would stop there). */
static bool read_small_file(const char *path, char *buffer, size_t size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    size_t length = 0;
    bool fits = true;
    for (;;) {
        char extra;
        bool full = length == size - 1;
        ssize_t n = full ? read(fd, &extra, 1) : read(fd, buffer + length, size - 1 - length);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 || (n > 0 && full)) fits = false; /* an error, or one byte too many */
        if (n <= 0 || full) break;
        length += (size_t)n;
    }
    close(fd);
    buffer[length] = '\0';
    return fits && memchr(buffer, '\0', length) == NULL;
}

/* Parses the unsigned decimal number at *text and moves *text past it. False when *text is not a
   digit or the number does not fit in an unsigned long long. */
static bool parse_number(const char **text, unsigned long long *out) {
    const char *p = *text;
    if (*p < '0' || *p > '9') return false;
    unsigned long long value = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned digit = (unsigned)(*p - '0');
        if (value > (ULLONG_MAX - digit) / 10) return false;
        value = value * 10 + digit;
    }
    *text = p;
    *out = value;
    return true;
}

/* True when nothing but white space (the file's final newline) is left. */
static bool only_space_left(const char *text) {
    while (*text == ' ' || *text == '\t' || *text == '\n') text++;
    return *text == '\0';
}

/* `quota` microseconds of CPU time every `period` microseconds, in CPUs rounded up (1.5 CPUs: 2);
   0 (no limit) for a quota or period of 0, which the kernel never writes. */
static unsigned cpus_for_quota(unsigned long long quota, unsigned long long period) {
    if (quota == 0 || period == 0) return 0;
    unsigned long long cpus = quota / period + (quota % period != 0);
    return cpus > UINT_MAX ? UINT_MAX : (unsigned)cpus;
}

/* The tighter of two limits, 0 meaning none. */
static unsigned tighter(unsigned a, unsigned b) {
    if (a == 0) return b;
    if (b == 0) return a;
    return a < b ? a : b;
}

/* cgroup v2: `dir`/cpu.max, "<quota> <period>", or "max <period>" for no limit. */
static unsigned read_cpu_max(const char *dir) {
    char path[PATH_MAX], text[64];
    if (!join_path(path, sizeof path, dir, "/cpu.max", "") || !read_small_file(path, text, sizeof text)) {
        return 0;
    }
    const char *p = text;
    unsigned long long quota, period;
    if (!parse_number(&p, &quota) || *p != ' ') return 0; /* "max" too */
    p++;
    if (!parse_number(&p, &period) || !only_space_left(p)) return 0;
    return cpus_for_quota(quota, period);
}

/* One number alone in the file `dir``name` (cgroup v1 writes each value to a file of its own). */
static bool read_number_file(const char *dir, const char *name, unsigned long long *out) {
    char path[PATH_MAX], text[64];
    if (!join_path(path, sizeof path, dir, name, "") || !read_small_file(path, text, sizeof text)) return false;
    const char *p = text;
    return parse_number(&p, out) && only_space_left(p);
}

/* cgroup v1: `dir`/cpu.cfs_quota_us ("-1" for no limit) and `dir`/cpu.cfs_period_us. */
static unsigned read_cfs_quota(const char *dir) {
    unsigned long long quota, period;
    if (!read_number_file(dir, "/cpu.cfs_quota_us", &quota)) return 0; /* "-1" too */
    if (!read_number_file(dir, "/cpu.cfs_period_us", &period)) return 0;
    return cpus_for_quota(quota, period);
}

/* True when the comma-separated list of `length` bytes names the controller "cpu". */
static bool names_cpu_controller(const char *list, size_t length) {
    const char *end = list + length;
    for (const char *item = list; item < end;) {
        const char *comma = memchr(item, ',', (size_t)(end - item));
        const char *item_end = comma != NULL ? comma : end;
        if (item_end - item == 3 && memcmp(item, "cpu", 3) == 0) return true;
        item = item_end + 1;
    }
    return false;
}

/* The next line of `file` into `out` (`size` bytes), without its newline: 1; 0 for a line that does
   not fit or holds a NUL (it is skipped); -1 at the end of the file. */
static int next_line(FILE *file, char *out, size_t size) {
    int c = getc(file);
    if (c == EOF) return -1;
    size_t length = 0;
    bool usable = true;
    for (; c != EOF && c != '\n'; c = getc(file)) {
        if (c == '\0' || length == size - 1) usable = false;
        else out[length++] = (char)c;
    }
    out[length] = '\0';
    return usable ? 1 : 0;
}

/* This process's cgroup, from <root>/proc/self/cgroup: the path of the line "0::<path>" (cgroup v2)
   or of the line whose controllers include "cpu" (cgroup v1), into `out` (`size` bytes, also the line
   buffer) without trailing slashes: "" for the root. False when there is no such line, or its path is
   not absolute or goes up (a cgroup outside this process's cgroup namespace). A line that does not
   fit in `out` is skipped. */
static bool find_cgroup(const char *root, bool v2, char *out, size_t size) {
    char path[PATH_MAX];
    if (!join_path(path, sizeof path, root, "/proc/self/cgroup", "")) return false;
    FILE *file = fopen(path, "re");
    if (file == NULL) return false;
    bool found = false;
    int status;
    while (!found && (status = next_line(file, out, size)) >= 0) {
        if (status == 0) continue;
        /* "<hierarchy id>:<controllers>:<path>" */
        char *first = strchr(out, ':');
        char *second = first != NULL ? strchr(first + 1, ':') : NULL;
        if (second == NULL) continue;
        bool matches = v2 ? first == out + 1 && out[0] == '0' && second == first + 1
                          : names_cpu_controller(first + 1, (size_t)(second - first - 1));
        if (!matches) continue;
        char *cgroup = second + 1;
        if (cgroup[0] != '/' || strstr(cgroup, "/..") != NULL) break;
        size_t length = strlen(cgroup);
        while (length > 0 && cgroup[length - 1] == '/') length--;
        memmove(out, cgroup, length);
        out[length] = '\0';
        found = true;
    }
    fclose(file);
    return found;
}

/* The tightest limit `reader` finds in the cgroup directory <mount><cgroup> and in each of its
   ancestors up to <mount> itself: a parent's quota bounds its children's. cgroup NULL (unknown):
   <mount> alone. In a container without a cgroup namespace of its own the path is the host's and
   is missing under <mount>, where the container's own cgroup is mounted: the walk ends there. */
static unsigned limit_in_hierarchy(const char *mount, const char *cgroup, unsigned (*reader)(const char *dir)) {
    char dir[PATH_MAX];
    size_t mount_length = strlen(mount);
    if (cgroup == NULL || !join_path(dir, sizeof dir, mount, cgroup, "")) {
        if (!join_path(dir, sizeof dir, mount, "", "")) return 0;
    }
    unsigned limit = 0;
    for (;;) {
        limit = tighter(limit, reader(dir));
        char *slash = strrchr(dir + mount_length, '/');
        if (slash == NULL) break;
        *slash = '\0';
    }
    return limit;
}

unsigned ctp_cgroup_cpu_limit(void) {
    const char *root = root_directory();
    if (root == NULL) return 0;
    char cgroup[PATH_MAX], mount[PATH_MAX];
    unsigned limit = 0;
    /* cgroup v2: one hierarchy, mounted at /sys/fs/cgroup. (In the hybrid layout it is mounted at
       /sys/fs/cgroup/unified, without the cpu controller, and the v1 files below hold the quota.) */
    bool known = find_cgroup(root, true, cgroup, sizeof cgroup);
    if (join_path(mount, sizeof mount, root, "/sys/fs/cgroup", "")) {
        limit = tighter(limit, limit_in_hierarchy(mount, known ? cgroup : NULL, read_cpu_max));
    }
    /* cgroup v1: the cpu controller's hierarchy, mounted together with cpuacct or on its own (often
       both names exist, one a link to the other: the files are then read twice, to the same effect). */
    known = find_cgroup(root, false, cgroup, sizeof cgroup);
    static const char *const v1_mounts[] = { "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu" };
    for (size_t i = 0; i < sizeof v1_mounts / sizeof v1_mounts[0]; i++) {
        if (join_path(mount, sizeof mount, root, v1_mounts[i], "")) {
            limit = tighter(limit, limit_in_hierarchy(mount, known ? cgroup : NULL, read_cfs_quota));
        }
    }
    return limit;
}

#else
unsigned ctp_cgroup_cpu_limit(void) {
    return 0;
}
#endif

/* ---- the default ------------------------------------------------------------------------------ */

/* THREADPOOLKIT_THREADS as a thread count: decimal digits alone, worth at least 1 (above
   CTP_MAX_THREADS: CTP_MAX_THREADS); 0 when it is unset or anything else. */
static unsigned threads_from_environment(void) {
    const char *text = getenv("THREADPOOLKIT_THREADS");
    if (text == NULL || *text == '\0') return 0;
    unsigned long value = 0;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') return 0;
        if (value <= CTP_MAX_THREADS) value = value * 10 + (unsigned long)(*p - '0'); /* saturates */
    }
    if (value == 0) return 0;
    return value < CTP_MAX_THREADS ? (unsigned)value : CTP_MAX_THREADS;
}

unsigned ctp_default_thread_count(void) {
    unsigned threads = threads_from_environment();
    if (threads == 0) {
        threads = ctp_affinity_cpus();
        unsigned limit = ctp_cgroup_cpu_limit();
        if (limit != 0 && limit < threads) threads = limit;
    }
    if (threads == 0) threads = 1;
    return threads < CTP_MAX_THREADS ? threads : CTP_MAX_THREADS;
}
