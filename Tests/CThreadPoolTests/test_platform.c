/* Tests for the default thread count (platform.c): the affinity mask, the cgroup CPU quota read from
 * fake cgroup v1 and v2 trees built in a temporary directory (through ctp_test_set_cgroup_root), every
 * kind of unreadable content, and the THREADPOOLKIT_THREADS override.
 *
 * Build:
 *   gcc -std=c11 -Wall -Wextra -Werror -pthread -DCTP_FAULT_INJECTION -ISources/CThreadPool/include \
 *     -ISources/CThreadPool Tests/CThreadPoolTests/test_platform.c $(find Sources/CThreadPool -name '*.c') \
 *     -o /tmp/test_platform
 *
 * Prints one line per test; exits 1 on the first failed check.
 */
#define _GNU_SOURCE
#include "platform.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_support.h"

#define PASS(name) printf("ok   %s\n", name)

/* The affinity count the fake trees are read with: a 64-CPU host, so that a quota shows. */
#define HOST_CPUS 64u

/* ---- fake roots ------------------------------------------------------------------------------- */

static char root[PATH_MAX]; /* the current fake root, "" when there is none */

static int remove_entry(const char *path, const struct stat *status, int flag, struct FTW *walk) {
    (void)status;
    (void)flag;
    (void)walk;
    return remove(path);
}

static void remove_root(void) {
    if (root[0] == '\0') return;
    CHECK(nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0);
    root[0] = '\0';
}

/* An empty fake root in a new temporary directory, read with HOST_CPUS CPUs in the affinity mask. */
static void new_root(void) {
    remove_root();
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(root, sizeof root, "%s/ctp_platform_XXXXXX", tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
    CHECK(n > 0 && (size_t)n < sizeof root);
    CHECK(mkdtemp(root) != NULL);
    ctp_test_set_cgroup_root(root);
    ctp_test_set_affinity_cpus(HOST_CPUS);
}

/* <root><relative>, with every directory above it created. */
static void fake_path(const char *relative, char *path, size_t size) {
    int n = snprintf(path, size, "%s%s", root, relative);
    CHECK(n > 0 && (size_t)n < size);
    for (char *slash = path + strlen(root) + 1; (slash = strchr(slash, '/')) != NULL; slash++) {
        *slash = '\0';
        CHECK(mkdir(path, 0755) == 0 || errno == EEXIST);
        *slash = '/';
    }
}

/* Writes `length` bytes of `content` to <root><relative>, replacing what was there. */
static void put_bytes(const char *relative, const char *content, size_t length) {
    char path[PATH_MAX];
    fake_path(relative, path, sizeof path);
    FILE *file = fopen(path, "w");
    CHECK(file != NULL);
    CHECK(fwrite(content, 1, length, file) == length);
    CHECK(fclose(file) == 0);
}

static void put(const char *relative, const char *content) {
    put_bytes(relative, content, strlen(content));
}

static void remove_fake(const char *relative) {
    char path[PATH_MAX];
    fake_path(relative, path, sizeof path);
    CHECK(remove(path) == 0);
}

/* The limit read (0: none) and the default thread count that follows from it. */
#define CHECK_COUNTS(limit, threads)                           \
    do {                                                       \
        CHECK_EQ(ctp_cgroup_cpu_limit(), limit);               \
        CHECK_EQ(ctp_default_thread_count(), threads);         \
    } while (0)

/* Contents a cgroup file may hold that are no readable limit. */
typedef struct content {
    const char *text;
    size_t length; /* 0: strlen(text) */
} content;

static size_t content_length(content c) {
    return c.length != 0 ? c.length : strlen(c.text);
}

/* The text of a content for a failure message, NUL bytes and newlines shown. */
static void print_content(content c) {
    size_t length = content_length(c);
    fprintf(stderr, "  with content \"");
    for (size_t i = 0; i < length && i < 80; i++) {
        char ch = c.text[i];
        if (ch == '\0') fprintf(stderr, "\\0");
        else if (ch == '\n') fprintf(stderr, "\\n");
        else fputc(ch, stderr);
    }
    fprintf(stderr, "%s\"\n", length > 80 ? "..." : "");
}

/* Expects no limit (the affinity count) from every content in `contents` written to `relative`. */
static void check_no_limit_from(const char *relative, const content *contents, size_t count) {
    for (size_t i = 0; i < count; i++) {
        put_bytes(relative, contents[i].text, content_length(contents[i]));
        unsigned limit = ctp_cgroup_cpu_limit(), threads = ctp_default_thread_count();
        if (limit != 0 || threads != HOST_CPUS) {
            fprintf(stderr, "%s: limit %u (expected 0), threads %u (expected %u)\n", relative, limit, threads,
                    HOST_CPUS);
            print_content(contents[i]);
            exit(1);
        }
    }
}

/* Text that overflows an unsigned long long, longer than any value the kernel writes, ... */
static char long_digits[4097];
static char padded_quota[200];

static const content bad_cpu_max[] = {
    { "", 0 },
    { "\n", 0 },
    { "max", 0 },
    { "max\n", 0 },
    { "max 100000\n", 0 },
    { "garbage\n", 0 },
    { "-150000 100000\n", 0 },
    { "150000 -100000\n", 0 },
    { "99999999999999999999 100000\n", 0 },     /* the quota overflows */
    { "150000 99999999999999999999\n", 0 },     /* the period overflows */
    { "150000\n", 0 },                          /* no period */
    { "150000", 0 },
    { "150000 \n", 0 },
    { "150000 0\n", 0 },                        /* period 0 */
    { "0 100000\n", 0 },                        /* quota 0 */
    { "150000 100000 7\n", 0 },
    { "150000 100000x\n", 0 },
    { "150000  100000\n", 0 },
    { " 150000 100000\n", 0 },
    { "1.5 1\n", 0 },
    { "0x30000 100000\n", 0 },
    { "15\0" "0000 100000\n", sizeof "15\0" "0000 100000\n" - 1 }, /* a NUL byte */
    { long_digits, 0 },                         /* far more than a buffer's worth */
    { padded_quota, 0 },                        /* a valid quota, but far longer than the kernel writes */
};

static const content bad_v1_quota[] = {
    { "", 0 },
    { "\n", 0 },
    { "-1\n", 0 },                              /* no limit */
    { "-5\n", 0 },
    { "-150000\n", 0 },
    { "garbage\n", 0 },
    { "max\n", 0 },
    { "0\n", 0 },
    { "99999999999999999999\n", 0 },
    { "150000 100000\n", 0 },
    { "15\0" "0000\n", sizeof "15\0" "0000\n" - 1 },
    { long_digits, 0 },
};

static const content bad_v1_period[] = {
    { "", 0 },
    { "0\n", 0 },
    { "-100000\n", 0 },
    { "garbage\n", 0 },
    { "99999999999999999999\n", 0 },
    { "100000 1\n", 0 },
    { long_digits, 0 },
};

#define COUNT(array) (sizeof array / sizeof array[0])

/* ---- cgroup v2 ------------------------------------------------------------------------------- */

static void test_v2_quota(void) {
    new_root();
    put("/proc/self/cgroup", "0::/\n");
    put("/sys/fs/cgroup/cpu.max", "150000 100000\n"); /* 1.5 CPUs: rounded up */
    CHECK_COUNTS(2, 2);
    ctp_test_set_affinity_cpus(1); /* fewer CPUs in the mask than the quota */
    CHECK_EQ(ctp_default_thread_count(), 1);
    ctp_test_set_affinity_cpus(0); /* the real mask */
    unsigned cpus = ctp_affinity_cpus();
    CHECK_EQ(ctp_default_thread_count(), cpus >= 2 ? 2 : cpus);
    ctp_test_set_affinity_cpus(HOST_CPUS);

    put("/sys/fs/cgroup/cpu.max", "50000 100000\n"); /* half a CPU */
    CHECK_COUNTS(1, 1);
    put("/sys/fs/cgroup/cpu.max", "200000 100000\n");
    CHECK_COUNTS(2, 2);
    put("/sys/fs/cgroup/cpu.max", "200001 100000");  /* no newline; a little over 2 CPUs */
    CHECK_COUNTS(3, 3);
    put("/sys/fs/cgroup/cpu.max", "12800000 100000\n"); /* more than the mask */
    CHECK_COUNTS(128, HOST_CPUS);
    put("/sys/fs/cgroup/cpu.max", "18446744073709551615 1\n"); /* the largest number read */
    CHECK_COUNTS(UINT_MAX, HOST_CPUS);
    put("/sys/fs/cgroup/cpu.max", "max 100000\n");
    CHECK_COUNTS(0, HOST_CPUS);
    PASS("v2: cpu.max quota / period rounded up, the smaller of it and the mask; max: the mask");
}

static void test_v2_hierarchy(void) {
    new_root();
    put("/proc/self/cgroup", "0::/kubepods/pod1/ctr\n");
    put("/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max", "300000 100000\n");
    CHECK_COUNTS(3, 3);
    put("/sys/fs/cgroup/kubepods/pod1/cpu.max", "max 100000\n");
    CHECK_COUNTS(3, 3);
    put("/sys/fs/cgroup/kubepods/cpu.max", "200000 100000\n"); /* an ancestor's tighter quota */
    CHECK_COUNTS(2, 2);
    put("/sys/fs/cgroup/cpu.max", "100000 100000\n");          /* the root's, tighter still */
    CHECK_COUNTS(1, 1);
    remove_fake("/sys/fs/cgroup/cpu.max");
    put("/proc/self/cgroup", "0::/kubepods/pod1/ctr/\n");      /* trailing slash */
    CHECK_COUNTS(2, 2);
    /* A sibling's quota is not this process's. */
    put("/proc/self/cgroup", "0::/kubepods/pod1/other\n");
    put("/sys/fs/cgroup/kubepods/cpu.max", "max 100000\n");
    CHECK_COUNTS(0, HOST_CPUS);
    PASS("v2: the process's own cgroup and every ancestor up to the root: the tightest quota");
}

static void test_v2_container_without_namespace(void) {
    /* The path is the host's; the container's own cgroup is what is mounted at /sys/fs/cgroup. */
    new_root();
    put("/proc/self/cgroup", "0::/system.slice/docker-0123abcd.scope\n");
    put("/sys/fs/cgroup/cpu.max", "400000 100000\n");
    CHECK_COUNTS(4, 4);
    PASS("v2: a cgroup path missing under the mount: the mount's root cpu.max");
}

static void test_v2_bad_contents(void) {
    new_root();
    put("/proc/self/cgroup", "0::/\n");
    check_no_limit_from("/sys/fs/cgroup/cpu.max", bad_cpu_max, COUNT(bad_cpu_max));
    /* In the process's own cgroup too, with nothing above it. */
    put("/proc/self/cgroup", "0::/app\n");
    remove_fake("/sys/fs/cgroup/cpu.max");
    check_no_limit_from("/sys/fs/cgroup/app/cpu.max", bad_cpu_max, COUNT(bad_cpu_max));
    /* A directory where the file should be. */
    remove_fake("/sys/fs/cgroup/app/cpu.max");
    char path[PATH_MAX];
    fake_path("/sys/fs/cgroup/app/cpu.max/", path, sizeof path);
    CHECK_COUNTS(0, HOST_CPUS);
    /* A bad file does not hide a good one elsewhere in the hierarchy. */
    put("/sys/fs/cgroup/cpu.max", "250000 100000\n");
    CHECK_COUNTS(3, 3);
    PASS("v2: empty, max, garbage, negative, overflowing, no period, period 0, NUL, too long: the mask");
}

/* ---- /proc/self/cgroup ------------------------------------------------------------------------ */

static void test_proc_self_cgroup(void) {
    new_root();
    put("/sys/fs/cgroup/cpu.max", "200000 100000\n");
    CHECK_COUNTS(2, 2); /* no /proc/self/cgroup: the mount's root is still read */
    put("/proc/self/cgroup", "");
    CHECK_COUNTS(2, 2);
    put("/proc/self/cgroup", "garbage\n::\n0:\n:\n\n0::relative/path\n");
    CHECK_COUNTS(2, 2);

    /* A path going up (a cgroup outside the process's namespace) is not followed out of the mount. */
    put("/sys/fs/cgroup/cpu.max", "300000 100000\n");
    put("/sys/fs/escaped/cpu.max", "100000 100000\n");
    put("/proc/self/cgroup", "0::/../escaped\n");
    CHECK_COUNTS(3, 3);

    /* A line too long for the buffer, or holding a NUL, is skipped, and only that line. */
    new_root();
    put("/sys/fs/cgroup/cpu/x/cpu.cfs_quota_us", "100000\n");
    put("/sys/fs/cgroup/cpu/x/cpu.cfs_period_us", "100000\n");
    static char long_line[3 * PATH_MAX];
    memset(long_line, 'a', sizeof long_line - 1);
    memcpy(long_line, "0::/", 4);
    long_line[sizeof long_line - 2] = '\n';
    char cgroup[sizeof long_line + 32];
    snprintf(cgroup, sizeof cgroup, "%s4:cpu:/x\n", long_line);
    put("/proc/self/cgroup", cgroup);
    CHECK_COUNTS(1, 1);
    put_bytes("/proc/self/cgroup", "0::/a\0b\n4:cpu:/x\n", 17);
    CHECK_COUNTS(1, 1);
    put_bytes("/proc/self/cgroup", "4:cpu:/\0x\n", 10); /* the matching line itself: the mount's root */
    CHECK_COUNTS(0, HOST_CPUS);

    /* A fake root too long to use reads nothing, without a crash. */
    static char huge_root[2 * PATH_MAX];
    memset(huge_root, 'r', sizeof huge_root - 1);
    huge_root[0] = '/';
    ctp_test_set_cgroup_root(huge_root);
    CHECK_COUNTS(0, HOST_CPUS);
    ctp_test_set_cgroup_root(root);
    PASS("/proc/self/cgroup: missing, empty, garbage, paths going up, long lines, NUL bytes");
}

/* ---- cgroup v1 ------------------------------------------------------------------------------- */

static void test_v1_quota(void) {
    new_root();
    put("/proc/self/cgroup", "5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n");
    put("/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "150000\n");
    put("/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
    CHECK_COUNTS(2, 2);
    put("/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "50000\n");
    CHECK_COUNTS(1, 1);
    put("/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n");
    CHECK_COUNTS(0, HOST_CPUS);
    put("/sys/fs/cgroup/cpu,cpuacct/docker/cpu.cfs_quota_us", "300000\n"); /* an ancestor's */
    put("/sys/fs/cgroup/cpu,cpuacct/docker/cpu.cfs_period_us", "100000\n");
    CHECK_COUNTS(3, 3);

    /* The controller alone, or listed second, mounted at /sys/fs/cgroup/cpu. */
    new_root();
    put("/proc/self/cgroup", "3:cpuacct,cpu:/x\n");
    put("/sys/fs/cgroup/cpu/x/cpu.cfs_quota_us", "50000\n");
    put("/sys/fs/cgroup/cpu/x/cpu.cfs_period_us", "100000\n");
    CHECK_COUNTS(1, 1);
    put("/proc/self/cgroup", "3:cpu:/x\n");
    CHECK_COUNTS(1, 1);
    /* cpuacct is not cpu: its path is not the cpu controller's, only the mount's root is read. */
    put("/proc/self/cgroup", "3:cpuacct:/x\n2:cpuset:/x\n");
    CHECK_COUNTS(0, HOST_CPUS);

    /* This machine's layout (gVisor, hybrid): cpu and cpuacct mounted apart, v2 at unified. */
    new_root();
    put("/proc/self/cgroup", "4:memory:/process_api/1\n2:cpuacct:/\n1:cpu:/\n0::/\n");
    put("/sys/fs/cgroup/unified/cpu.stat", "usage_usec 0\n");
    put("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "-1\n");
    put("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
    CHECK_COUNTS(0, HOST_CPUS);
    put("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "250000\n");
    CHECK_COUNTS(3, 3);
    PASS("v1: cfs_quota_us / cfs_period_us under cpu,cpuacct or cpu, ancestors too; -1: the mask");
}

static void test_v1_container_without_namespace(void) {
    new_root();
    put("/proc/self/cgroup", "4:cpu,cpuacct:/docker/0123abcd\n");
    put("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "250000\n");
    put("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    CHECK_COUNTS(3, 3);
    PASS("v1: a cgroup path missing under the mount: the mount's root");
}

static void test_v1_bad_contents(void) {
    new_root();
    put("/proc/self/cgroup", "4:cpu,cpuacct:/\n");
    put("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    check_no_limit_from("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", bad_v1_quota, COUNT(bad_v1_quota));
    put("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "150000\n");
    CHECK_COUNTS(2, 2);
    check_no_limit_from("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", bad_v1_period, COUNT(bad_v1_period));
    remove_fake("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us"); /* a quota without its period */
    CHECK_COUNTS(0, HOST_CPUS);
    PASS("v1: -1, negative, garbage, zero, overflowing, NUL, too long, a missing period: the mask");
}

static void test_v1_and_v2(void) {
    new_root();
    put("/proc/self/cgroup", "4:cpu:/\n0::/\n");
    put("/sys/fs/cgroup/cpu.max", "300000 100000\n");
    put("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "200000\n");
    put("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
    CHECK_COUNTS(2, 2);
    put("/sys/fs/cgroup/cpu.max", "100000 100000\n");
    CHECK_COUNTS(1, 1);
    PASS("v1 and v2 quotas both present: the tighter");
}

/* ---- THREADPOOLKIT_THREADS ---------------------------------------------------------------------- */

static void check_override(const char *value, unsigned expected) {
    CHECK(setenv("THREADPOOLKIT_THREADS", value, 1) == 0);
    unsigned threads = ctp_default_thread_count();
    if (threads != expected) {
        fprintf(stderr, "THREADPOOLKIT_THREADS=\"%s\": %u threads, expected %u\n", value, threads, expected);
        exit(1);
    }
}

static void test_environment_override(void) {
    new_root();
    put("/proc/self/cgroup", "0::/\n");
    put("/sys/fs/cgroup/cpu.max", "100000 100000\n"); /* 1 CPU */
    CHECK_COUNTS(1, 1);
    check_override("3", 3);   /* above the quota: the variable wins */
    check_override("1", 1);
    check_override("64", 64);
    check_override("0003", 3);
    check_override("100", 100); /* above the mask too */
    check_override("1024", CTP_MAX_THREADS);
    check_override("5000", CTP_MAX_THREADS);
    check_override("99999999999999999999", CTP_MAX_THREADS);
    static const char *const ignored[] = { "", "0", "000", "-2", "-0", "+3", " 3", "3 ", "3x", "x3", "abc",
                                           "3.5", "0x10", "3\n" };
    for (size_t i = 0; i < COUNT(ignored); i++) check_override(ignored[i], 1);
    CHECK(unsetenv("THREADPOOLKIT_THREADS") == 0);
    CHECK_EQ(ctp_default_thread_count(), 1);

    remove_fake("/sys/fs/cgroup/cpu.max");
    check_override("3", 3);
    check_override("garbage", HOST_CPUS);
    CHECK(unsetenv("THREADPOOLKIT_THREADS") == 0);
    CHECK_EQ(ctp_default_thread_count(), HOST_CPUS);
    PASS("THREADPOOLKIT_THREADS overrides from 1 up, capped at CTP_MAX_THREADS; anything else is ignored");
}

/* ---- the pool -------------------------------------------------------------------------------- */

static void check_pool_threads(unsigned expected) {
    ctp_options options;
    ctp_options_init(&options);
    ctp_pool *pool = NULL;
    CHECK_EQ(ctp_pool_create(&options, &pool), 0);
    CHECK_EQ(ctp_pool_thread_count(pool), expected);
    ctp_stats stats;
    CHECK_EQ(ctp_pool_stats(pool, &stats), 0);
    CHECK_EQ(stats.threads, expected);
    CHECK_EQ(ctp_pool_close(pool), 0);
    CHECK_EQ(ctp_pool_join(pool), 0);
    ctp_pool_destroy(pool);
}

static void test_pool_default(void) {
    new_root();
    put("/proc/self/cgroup", "0::/\n");
    put("/sys/fs/cgroup/cpu.max", "150000 100000\n");
    check_pool_threads(2);  /* a 1.5-CPU quota on a 64-CPU host */
    CHECK(setenv("THREADPOOLKIT_THREADS", "3", 1) == 0);
    check_pool_threads(3);
    CHECK(unsetenv("THREADPOOLKIT_THREADS") == 0);
    /* More CPUs than a pool may have: the default is capped. */
    remove_fake("/sys/fs/cgroup/cpu.max");
    ctp_test_set_affinity_cpus(CTP_MAX_THREADS + 500);
    CHECK_EQ(ctp_default_thread_count(), CTP_MAX_THREADS);
    ctp_test_set_affinity_cpus(HOST_CPUS);
    PASS("ctp_pool_create with threads 0 starts ctp_default_thread_count() workers");
}

/* ---- this machine ------------------------------------------------------------------------------ */

static void test_this_machine(void) {
    remove_root();
    ctp_test_set_cgroup_root(NULL);
    ctp_test_set_affinity_cpus(0);
    CHECK(unsetenv("THREADPOOLKIT_THREADS") == 0);
    cpu_set_t set;
    CHECK(sched_getaffinity(0, sizeof set, &set) == 0);
    unsigned cpus = (unsigned)CPU_COUNT(&set);
    CHECK_EQ(ctp_affinity_cpus(), cpus);
    unsigned limit = ctp_cgroup_cpu_limit();
    unsigned expected = limit != 0 && limit < cpus ? limit : cpus;
    CHECK_EQ(ctp_default_thread_count(), expected < CTP_MAX_THREADS ? expected : CTP_MAX_THREADS);
    check_pool_threads(ctp_default_thread_count());
    printf("ok   this machine: %u CPUs in the affinity mask, cgroup CPU limit %u (0: none), default %u\n",
           cpus, limit, ctp_default_thread_count());
}

/* At exit, a failed CHECK included: no fake tree is left behind. */
static void remove_root_at_exit(void) {
    if (root[0] != '\0') (void)nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void) {
    CHECK(atexit(remove_root_at_exit) == 0);
    memset(long_digits, '7', sizeof long_digits - 1);
    snprintf(padded_quota, sizeof padded_quota, "%-198s\n", "150000 100000");
    test_v2_quota();
    test_v2_hierarchy();
    test_v2_container_without_namespace();
    test_v2_bad_contents();
    test_proc_self_cgroup();
    test_v1_quota();
    test_v1_container_without_namespace();
    test_v1_bad_contents();
    test_v1_and_v2();
    test_environment_override();
    test_pool_default();
    test_this_machine();
    return 0;
}
