/* Worker names: Python's process-wide "Thread-N" counter, "<prefix>-<i>", and the OS name. */
#define _GNU_SOURCE
#include "worker_names.h"
#include "fault_injection.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The last number handed out; the first thread is "Thread-1", as in Python. */
static atomic_ullong ctp_thread_counter;

unsigned long long ctp_names_reserve(unsigned n) {
    return atomic_fetch_add_explicit(&ctp_thread_counter, n, memory_order_relaxed) + 1;
}

char *ctp_name_make(const char *prefix, unsigned long long number) {
    if (prefix == NULL) prefix = "Thread";
    int length = snprintf(NULL, 0, "%s-%llu", prefix, number);
    if (length < 0) return NULL;
    char *name = CTP_MALLOC((size_t)length + 1);
    if (name != NULL) snprintf(name, (size_t)length + 1, "%s-%llu", prefix, number);
    return name;
}

size_t ctp_name_cut(const char *name, size_t max_bytes) {
    size_t length = strlen(name);
    if (length <= max_bytes) return length;
    /* Step back over continuation bytes (10xxxxxx) so the cut lands before a lead byte. */
    size_t cut = max_bytes;
    while (cut > 0 && ((unsigned char)name[cut] & 0xC0) == 0x80) cut--;
    return cut;
}

void ctp_name_set_os(const char *name) {
    char os_name[16];
    size_t length = ctp_name_cut(name, sizeof os_name - 1);
    memcpy(os_name, name, length);
    os_name[length] = '\0';
#if defined(__APPLE__)
    pthread_setname_np(os_name);
#elif defined(__linux__)
    (void)pthread_setname_np(pthread_self(), os_name);
#endif
}
