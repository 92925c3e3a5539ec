/* Tests for the private task ring (queue.c) and worker-name helpers (worker_names.c).
 *
 * Build:
 *   gcc -std=c11 -Wall -Wextra -Werror -pthread -ISources/CThreadPool/include -ISources/CThreadPool \
 *     Tests/CThreadPoolTests/test_ring.c $(find Sources/CThreadPool -name '*.c') \
 *     -o /tmp/test_ring
 *
 * Prints one line per test; exits 1 on the first failed check.
 */
#define _GNU_SOURCE
#include "queue.h"
#include "worker_names.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"
#include "numbered_tasks.h"

#define PASS(name) printf("ok   %s\n", name)

/* ---- helpers ---------------------------------------------------------------------------- */

static int is_power_of_two(size_t n) { return n != 0 && (n & (n - 1)) == 0; }

static void check_ring_invariants(const ctp_ring *ring) {
    if (ring->capacity == 0) {
        CHECK(ring->count == 0);
        return;
    }
    CHECK(ring->slots != NULL);
    CHECK(is_power_of_two(ring->capacity));
    CHECK_EQ(ring->mask, ring->capacity - 1);
    CHECK(ring->head < ring->capacity);
    CHECK(ring->count <= ring->capacity);
}

/* Moves the head of an empty ring to `offset` without changing its storage. */
static void advance_head(ctp_ring *ring, size_t offset) {
    CHECK_EQ(ring->count, 0);
    ctp_task *slots_before = ring->slots;
    size_t capacity_before = ring->capacity;
    for (size_t i = 0; i < offset; i++) {
        CHECK_EQ(ctp_ring_push(ring, task_n(999999)), 0);
        ctp_task out;
        CHECK_EQ(ctp_ring_pop(ring, &out, 1), 1);
    }
    CHECK(ring->slots == slots_before);
    CHECK_EQ(ring->capacity, capacity_before);
    CHECK_EQ(ring->head, offset % capacity_before);
    CHECK_EQ(ring->count, 0);
}

/* ---- ring tests ------------------------------------------------------------------------- */

static void test_ring_fifo(void) {
    ctp_ring ring;
    CHECK_EQ(ctp_ring_init(&ring, 0), 0);
    const size_t n = 5000; /* several growths */
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ(ctp_ring_push(&ring, task_n(i)), 0);
        CHECK_EQ(ring.count, i + 1);
        check_ring_invariants(&ring);
    }
    for (size_t i = 0; i < n; i++) {
        ctp_task out;
        CHECK_EQ(ctp_ring_pop(&ring, &out, 1), 1);
        check_task_n(out, i);
        CHECK_EQ(ring.count, n - i - 1);
        check_ring_invariants(&ring);
    }
    ctp_task out;
    CHECK_EQ(ctp_ring_pop(&ring, &out, 1), 0);

    /* Interleaved pushes and pops keep FIFO order across many wrap-arounds. */
    size_t next_push = 0, next_pop = 0;
    for (size_t round = 0; round < 2000; round++) {
        size_t pushes = (round * 7) % 13 + 1, pops = (round * 5) % 11 + 1;
        for (size_t i = 0; i < pushes; i++) CHECK_EQ(ctp_ring_push(&ring, task_n(next_push++)), 0);
        for (size_t i = 0; i < pops; i++) {
            size_t got = ctp_ring_pop(&ring, &out, 1);
            if (next_pop == next_push) {
                CHECK_EQ(got, 0);
                break;
            }
            CHECK_EQ(got, 1);
            check_task_n(out, next_pop++);
        }
        CHECK_EQ(ring.count, next_push - next_pop);
        check_ring_invariants(&ring);
    }
    while (next_pop < next_push) {
        CHECK_EQ(ctp_ring_pop(&ring, &out, 1), 1);
        check_task_n(out, next_pop++);
    }
    CHECK_EQ(ring.count, 0);
    ctp_ring_free(&ring);
    PASS("ring: FIFO order (5000 through growth, 2000 interleaved rounds)");
}

static void test_ring_pop_more_than_available(void) {
    ctp_ring ring;
    CHECK_EQ(ctp_ring_init(&ring, 64), 0);
    ctp_task out[100];
    /* Empty ring. */
    CHECK_EQ(ctp_ring_pop(&ring, out, 100), 0);
    CHECK_EQ(ring.count, 0);
    CHECK_EQ(ring.head, 0);
    /* max 0 pops nothing even when there is something. */
    for (size_t i = 0; i < 5; i++) CHECK_EQ(ctp_ring_push(&ring, task_n(i)), 0);
    CHECK_EQ(ctp_ring_pop(&ring, out, 0), 0);
    CHECK_EQ(ring.count, 5);
    /* Canary: pop must not write past the number it returns. */
    for (size_t i = 0; i < 100; i++) out[i] = task_n(777);
    CHECK_EQ(ctp_ring_pop(&ring, out, 100), 5);
    for (size_t i = 0; i < 5; i++) check_task_n(out[i], i);
    for (size_t i = 5; i < 100; i++) check_task_n(out[i], 777);
    CHECK_EQ(ring.count, 0);
    CHECK_EQ(ring.head, 5);
    CHECK_EQ(ctp_ring_pop(&ring, out, 100), 0);
    CHECK_EQ(ring.head, 5);
    /* Exactly as many as available. */
    for (size_t i = 0; i < 64; i++) CHECK_EQ(ctp_ring_push(&ring, task_n(i)), 0);
    CHECK_EQ(ring.capacity, 64);
    CHECK_EQ(ctp_ring_pop(&ring, out, 64), 64);
    for (size_t i = 0; i < 64; i++) check_task_n(out[i], i);
    CHECK_EQ(ring.count, 0);
    ctp_ring_free(&ring);

    /* A zeroed ring (no storage) pops nothing. */
    ctp_ring zero = { 0 };
    CHECK_EQ(ctp_ring_pop(&zero, out, 100), 0);
    CHECK_EQ(zero.count, 0);
    PASS("ring: pop of more than available");
}

static void test_ring_growth_from_every_layout(void) {
    unsigned layouts = 0;
    for (size_t head = 0; head < 64; head++) {
        for (size_t fill = 0; fill <= 64; fill++) {
            ctp_ring ring;
            CHECK_EQ(ctp_ring_init(&ring, 64), 0);
            CHECK_EQ(ring.capacity, 64);
            advance_head(&ring, head);
            ctp_task *storage = ring.slots;

            /* `fill` tasks, then push to full: no growth yet, the layout wraps at 64 - head. */
            size_t next = 0;
            for (; next < fill; next++) CHECK_EQ(ctp_ring_push(&ring, task_n(next)), 0);
            CHECK_EQ(ring.count, fill);
            CHECK_EQ(ring.head, head);
            for (; next < 64; next++) CHECK_EQ(ctp_ring_push(&ring, task_n(next)), 0);
            CHECK(ring.slots == storage);
            CHECK_EQ(ring.capacity, 64);
            CHECK_EQ(ring.mask, 63);
            CHECK_EQ(ring.head, head);
            CHECK_EQ(ring.count, 64);
            /* The physical layout is the expected wrapped one. */
            for (size_t i = 0; i < 64; i++) check_task_n(ring.slots[(head + i) & 63], i);

            /* One more push forces growth: unwrapped, head 0, capacity 128. */
            CHECK_EQ(ctp_ring_push(&ring, task_n(next++)), 0);
            CHECK_EQ(ring.capacity, 128);
            CHECK_EQ(ring.mask, 127);
            CHECK_EQ(ring.head, 0);
            CHECK_EQ(ring.count, 65);
            check_ring_invariants(&ring);
            for (size_t i = 0; i < 65; i++) check_task_n(ring.slots[i], i);

            /* Keep using it: pop a few, push across the new wrap point, then a second growth. */
            ctp_task out[300];
            size_t popped = ctp_ring_pop(&ring, out, fill % 7);
            CHECK_EQ(popped, fill % 7);
            for (size_t i = 0; i < popped; i++) check_task_n(out[i], i);
            while (ring.count < 128) CHECK_EQ(ctp_ring_push(&ring, task_n(next++)), 0);
            CHECK_EQ(ring.capacity, 128);
            CHECK_EQ(ctp_ring_push(&ring, task_n(next++)), 0);
            CHECK_EQ(ring.capacity, 256);
            CHECK_EQ(ring.mask, 255);
            CHECK_EQ(ring.head, 0);
            CHECK_EQ(ring.count, 129);

            /* Everything comes out in order, with nothing lost or duplicated. */
            size_t got = ctp_ring_pop(&ring, out, 300);
            CHECK_EQ(got, 129);
            CHECK_EQ(popped + got, next);
            for (size_t i = 0; i < got; i++) check_task_n(out[i], popped + i);
            CHECK_EQ(ring.count, 0);
            check_ring_invariants(&ring);
            ctp_ring_free(&ring);
            layouts++;
        }
    }
    CHECK_EQ(layouts, 64 * 65);
    PASS("ring: growth from every wrap-around layout (64 heads x 65 fill counts)");
}

/* push_copies from every layout of a 64-slot ring, for counts that fit, fill it exactly, and force
   one or several doublings: the copies follow the existing tasks, in order, and nothing else moves. */
static void test_ring_push_copies_every_layout(void) {
    static const size_t counts[] = { 0, 1, 5, 63, 64, 65, 200 };
    unsigned cases = 0;
    for (size_t head = 0; head < 64; head++) {
        for (size_t fill = 0; fill <= 64; fill += 7) {
            for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
                ctp_ring ring;
                CHECK_EQ(ctp_ring_init(&ring, 64), 0);
                advance_head(&ring, head);
                for (size_t i = 0; i < fill; i++) CHECK_EQ(ctp_ring_push(&ring, task_n(i)), 0);
                ctp_task copy = task_n(777);
                CHECK_EQ(ctp_ring_push_copies(&ring, copy, counts[c]), 0);
                CHECK_EQ(ring.count, fill + counts[c]);
                check_ring_invariants(&ring);
                CHECK(ring.capacity >= ring.count);
                ctp_task out[300];
                size_t got = ctp_ring_pop(&ring, out, 300);
                CHECK_EQ(got, fill + counts[c]);
                for (size_t i = 0; i < fill; i++) check_task_n(out[i], i);
                for (size_t i = fill; i < got; i++) check_task_n(out[i], 777);
                ctp_ring_free(&ring);
                cases++;
            }
        }
    }
    ctp_ring ring = { 0 };
    CHECK_EQ(ctp_ring_push_copies(&ring, task_n(1), SIZE_MAX), CTP_ENOMEM); /* all or nothing */
    CHECK_EQ(ring.count, 0);
    ctp_ring_free(&ring);
    CHECK_EQ(cases, 64 * 10 * 7);
    PASS("ring: push_copies from every head, several fills and counts (with growth), all or nothing");
}

static void test_ring_pop_many_across_wrap(void) {
    for (size_t head = 0; head < 64; head++) {
        for (size_t count = 1; count <= 64; count++) {
            for (size_t chunk = 1; chunk <= 65; chunk += (chunk < 8 ? 1 : 19)) {
                ctp_ring ring;
                CHECK_EQ(ctp_ring_init(&ring, 64), 0);
                advance_head(&ring, head);
                for (size_t i = 0; i < count; i++) CHECK_EQ(ctp_ring_push(&ring, task_n(i)), 0);
                CHECK_EQ(ring.capacity, 64);
                size_t taken = 0;
                while (taken < count) {
                    ctp_task out[65];
                    size_t want = count - taken < chunk ? count - taken : chunk;
                    size_t got = ctp_ring_pop(&ring, out, chunk);
                    CHECK_EQ(got, want);
                    for (size_t i = 0; i < got; i++) check_task_n(out[i], taken + i);
                    taken += got;
                    CHECK_EQ(ring.count, count - taken);
                    CHECK_EQ(ring.head, (head + taken) & 63);
                }
                ctp_task out;
                CHECK_EQ(ctp_ring_pop(&ring, &out, 1), 0);
                ctp_ring_free(&ring);
            }
        }
    }
    PASS("ring: pop_many across the wrap point (every head, count, several chunk sizes)");
}

static void test_ring_init_capacities(void) {
    const size_t requests[] = { 0, 1, 2, 63, 64, 65, 127, 128, 129, 1000, 1024, 1025, 4096 };
    for (size_t r = 0; r < sizeof requests / sizeof requests[0]; r++) {
        size_t want = requests[r];
        ctp_ring ring;
        memset(&ring, 0xA5, sizeof ring); /* init must overwrite everything */
        CHECK_EQ(ctp_ring_init(&ring, want), 0);
        CHECK(ring.slots != NULL);
        CHECK(is_power_of_two(ring.capacity));
        CHECK(ring.capacity >= want);
        CHECK(ring.capacity >= 1);
        /* The smallest power of two >= max(want, the minimum of 64) */
        CHECK(ring.capacity == 64 || ring.capacity / 2 < want);
        CHECK_EQ(ring.mask, ring.capacity - 1);
        CHECK_EQ(ring.head, 0);
        CHECK_EQ(ring.count, 0);
        /* Room for `capacity` tasks without reallocating. */
        ctp_task *storage = ring.slots;
        size_t capacity = ring.capacity;
        for (size_t i = 0; i < capacity; i++) CHECK_EQ(ctp_ring_push(&ring, task_n(i)), 0);
        CHECK(ring.slots == storage);
        CHECK_EQ(ring.capacity, capacity);
        for (size_t i = 0; i < capacity; i++) {
            ctp_task out;
            CHECK_EQ(ctp_ring_pop(&ring, &out, 1), 1);
            check_task_n(out, i);
        }
        ctp_ring_free(&ring);
    }
    /* The cases the brief names, with their exact capacities. */
    const size_t named[][2] = { { 0, 64 }, { 1, 64 }, { 64, 64 }, { 65, 128 }, { 1000, 1024 } };
    for (size_t i = 0; i < 5; i++) {
        ctp_ring ring;
        CHECK_EQ(ctp_ring_init(&ring, named[i][0]), 0);
        CHECK_EQ(ring.capacity, named[i][1]);
        CHECK_EQ(ring.mask, named[i][1] - 1);
        ctp_ring_free(&ring);
    }
    /* An impossible size fails cleanly with CTP_ENOMEM. */
    ctp_ring huge;
    CHECK_EQ(ctp_ring_init(&huge, SIZE_MAX), CTP_ENOMEM);
    CHECK_EQ(ctp_ring_init(&huge, SIZE_MAX / 2 + 2), CTP_ENOMEM);
    PASS("ring: init with min capacities 0, 1, 64, 65, 1000 (and more) -> power of two >= requested");
}

static void test_ring_free_idempotent(void) {
    ctp_ring ring = { 0 };
    ctp_ring_free(&ring);
    ctp_ring_free(&ring);
    CHECK(ring.slots == NULL);
    CHECK_EQ(ring.capacity, 0);
    CHECK_EQ(ring.mask, 0);
    CHECK_EQ(ring.head, 0);
    CHECK_EQ(ring.count, 0);

    /* Free after init leaves a zeroed ring, which may be freed again and reused. */
    CHECK_EQ(ctp_ring_init(&ring, 10), 0);
    for (size_t i = 0; i < 100; i++) CHECK_EQ(ctp_ring_push(&ring, task_n(i)), 0);
    ctp_ring_free(&ring);
    CHECK(ring.slots == NULL);
    CHECK_EQ(ring.capacity, 0);
    CHECK_EQ(ring.count, 0);
    CHECK_EQ(ring.head, 0);
    ctp_ring_free(&ring);

    /* A zeroed ring (as terminate leaves the pool's) grows on the first push. */
    for (size_t i = 0; i < 70; i++) {
        CHECK_EQ(ctp_ring_push(&ring, task_n(i)), 0);
        check_ring_invariants(&ring);
    }
    CHECK_EQ(ring.capacity, 128);
    for (size_t i = 0; i < 70; i++) {
        ctp_task out;
        CHECK_EQ(ctp_ring_pop(&ring, &out, 1), 1);
        check_task_n(out, i);
    }
    ctp_ring_free(&ring);
    ctp_ring_free(&ring);
    PASS("ring: free is idempotent on a zeroed ring; a zeroed ring grows on push");
}

/* ---- names ------------------------------------------------------------------------------ */

/* Independent reference: the largest cut <= max that is not inside a UTF-8 sequence, given the
   string's character boundaries. */
static size_t reference_cut(const char *s, size_t max) {
    size_t length = strlen(s);
    if (length <= max) return length;
    size_t best = 0, i = 0;
    while (i <= max) {
        best = i;
        unsigned char c = (unsigned char)s[i];
        size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
        i += n;
    }
    return best;
}

/* True when s[0..len) is well-formed UTF-8 (for the encodings used in these tests). */
static int valid_utf8_prefix(const char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (n == 0 || i + n > len) return 0;
        for (size_t k = 1; k < n; k++) if (((unsigned char)s[i + k] & 0xC0) != 0x80) return 0;
        i += n;
    }
    return 1;
}

static void test_name_cut_ascii(void) {
    CHECK_EQ(ctp_name_cut("", 15), 0);
    CHECK_EQ(ctp_name_cut("a", 15), 1);
    CHECK_EQ(ctp_name_cut("Thread-1", 15), 8);
    CHECK_EQ(ctp_name_cut("abcdefghijklmn", 15), 14);        /* 14 */
    CHECK_EQ(ctp_name_cut("abcdefghijklmno", 15), 15);       /* 15: equal */
    CHECK_EQ(ctp_name_cut("abcdefghijklmnop", 15), 15);      /* 16 */
    CHECK_EQ(ctp_name_cut("Thread-123456789012345", 15), 15); /* much longer */
    char long_name[200];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    for (size_t max = 0; max < sizeof long_name; max++) CHECK_EQ(ctp_name_cut(long_name, max), max);
    CHECK_EQ(ctp_name_cut("abc", 0), 0);
    PASS("names: ctp_name_cut on ASCII shorter, equal to and longer than 15 bytes");
}

static void test_name_cut_utf8(void) {
    /* é (2 bytes), € (3 bytes), 😀 (4 bytes) */
    const char *chars[] = { "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80" };
    unsigned cases = 0;
    for (size_t c = 0; c < 3; c++) {
        size_t clen = strlen(chars[c]);
        CHECK_EQ(clen, c + 2);
        /* `before` ASCII bytes, then the multi-byte character, then `after` ASCII bytes: with
           before in 10..16 the character straddles (or touches) byte 15 in every possible way. */
        for (size_t before = 0; before <= 20; before++) {
            for (size_t after = 0; after <= 4; after++) {
                char name[64];
                size_t len = 0;
                for (size_t i = 0; i < before; i++) name[len++] = (char)('a' + i % 26);
                memcpy(name + len, chars[c], clen);
                len += clen;
                for (size_t i = 0; i < after; i++) name[len++] = 'Z';
                name[len] = '\0';

                size_t cut = ctp_name_cut(name, 15);
                size_t expected;
                if (len <= 15) expected = len;
                else if (before >= 15) expected = 15;                /* cut among the leading ASCII */
                else if (before + clen <= 15) expected = 15;         /* character fits entirely */
                else expected = before;                              /* character straddles byte 15 */
                CHECK_EQ(cut, expected);
                CHECK_EQ(cut, reference_cut(name, 15));
                CHECK(cut <= 15);
                CHECK(valid_utf8_prefix(name, cut));
                if (cut < len) CHECK(((unsigned char)name[cut] & 0xC0) != 0x80);
                cases++;
            }
        }
        /* A string made only of this character, for every max. */
        char only[80];
        size_t len = 0;
        while (len + clen < sizeof only) {
            memcpy(only + len, chars[c], clen);
            len += clen;
        }
        only[len] = '\0';
        for (size_t max = 0; max <= len + 1; max++) {
            size_t cut = ctp_name_cut(only, max);
            size_t expected = max >= len ? len : max / clen * clen;
            CHECK_EQ(cut, expected);
            cases++;
        }
    }
    /* Mixed sequences, every max. */
    const char *mixed[] = {
        "ab\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xC3\xA9xyz\xE2\x82\xAC-12",
        "\xF0\x9F\x98\x80\xF0\x9F\x98\x80\xF0\x9F\x98\x80\xF0\x9F\x98\x80-1", /* 16 + 2 */
        "abcd\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC-1",            /* byte 15 inside the 4th € */
        "abcdefghijklmn\xC3\xB6-1",                                          /* byte 15 inside ö */
        "G\xC3\xB6\xC3\x9F\x65nwahn-Ger\xC3\xA4t-12",
    };
    for (size_t m = 0; m < sizeof mixed / sizeof mixed[0]; m++) {
        size_t len = strlen(mixed[m]);
        for (size_t max = 0; max <= len + 2; max++) {
            size_t cut = ctp_name_cut(mixed[m], max);
            CHECK_EQ(cut, reference_cut(mixed[m], max));
            CHECK(valid_utf8_prefix(mixed[m], cut));
            cases++;
        }
    }
    CHECK_EQ(ctp_name_cut(mixed[1], 15), 12);
    CHECK_EQ(ctp_name_cut(mixed[2], 15), 13);
    CHECK_EQ(ctp_name_cut(mixed[3], 15), 14);
    printf("ok   names: ctp_name_cut never ends inside a 2-, 3- or 4-byte UTF-8 sequence (%u cases)\n", cases);
}

static void test_name_make(void) {
    char *name = ctp_name_make(NULL, 1);
    CHECK(name != NULL);
    CHECK(strcmp(name, "Thread-1") == 0);
    free(name);
    name = ctp_name_make(NULL, 42);
    CHECK(name != NULL && strcmp(name, "Thread-42") == 0);
    free(name);
    name = ctp_name_make(NULL, ULLONG_MAX);
    CHECK(name != NULL && strcmp(name, "Thread-18446744073709551615") == 0);
    free(name);
    name = ctp_name_make("db", 1);
    CHECK(name != NULL && strcmp(name, "db-1") == 0);
    free(name);
    name = ctp_name_make("db", 1024);
    CHECK(name != NULL && strcmp(name, "db-1024") == 0);
    free(name);
    name = ctp_name_make("", 7);
    CHECK(name != NULL && strcmp(name, "-7") == 0);
    free(name);
    name = ctp_name_make("Ger\xC3\xA4t", 3);
    CHECK(name != NULL && strcmp(name, "Ger\xC3\xA4t-3") == 0);
    free(name);
    /* A prefix longer than any fixed buffer. */
    char prefix[600];
    memset(prefix, 'p', sizeof prefix - 1);
    prefix[sizeof prefix - 1] = '\0';
    name = ctp_name_make(prefix, 12345);
    CHECK(name != NULL);
    CHECK_EQ(strlen(name), sizeof prefix - 1 + 6);
    CHECK(strncmp(name, prefix, sizeof prefix - 1) == 0);
    CHECK(strcmp(name + sizeof prefix - 1, "-12345") == 0);
    free(name);
    PASS("names: ctp_name_make with and without a prefix");
}

static void test_names_reserve(void) {
    unsigned long long a = ctp_names_reserve(3);
    unsigned long long b = ctp_names_reserve(1);
    unsigned long long c = ctp_names_reserve(5);
    unsigned long long d = ctp_names_reserve(1);
    CHECK_EQ(a, 1); /* the first number handed out in this process is 1, as in Python */
    CHECK_EQ(b, a + 3);
    CHECK_EQ(c, b + 1);
    CHECK_EQ(d, c + 5);
    PASS("names: ctp_names_reserve hands out consecutive ranges starting at 1");
}

static void *set_os_name_thread(void *arg) {
    const char *name = arg;
    ctp_name_set_os(name);
    char got[64] = { 0 };
    CHECK(pthread_getname_np(pthread_self(), got, sizeof got) == 0);
    size_t cut = ctp_name_cut(name, 15);
    CHECK_EQ(strlen(got), cut);
    CHECK(memcmp(got, name, cut) == 0);
    return NULL;
}

static void test_name_set_os(void) {
    const char *names[] = {
        "db-1",
        "abcdefghijklmno",
        "abcdefghijklmnopqrstuvwxyz",
        "abcd\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC-1",
        "x\xF0\x9F\x98\x80\xF0\x9F\x98\x80\xF0\x9F\x98\x80\xF0\x9F\x98\x80-2",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        pthread_t thread;
        CHECK(pthread_create(&thread, NULL, set_os_name_thread, (void *)names[i]) == 0);
        CHECK(pthread_join(thread, NULL) == 0);
    }
    PASS("names: ctp_name_set_os sets the OS name cut to 15 bytes on a UTF-8 boundary");
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_ring_fifo();
    test_ring_pop_more_than_available();
    test_ring_growth_from_every_layout();
    test_ring_pop_many_across_wrap();
    test_ring_push_copies_every_layout();
    test_ring_init_capacities();
    test_ring_free_idempotent();
    test_names_reserve(); /* first: it checks the counter starts at 1 */
    test_name_cut_ascii();
    test_name_cut_utf8();
    test_name_make();
    test_name_set_os();
    printf("test_ring: all tests passed\n");
    return 0;
}
