/* Worker names (worker_names.c): Python's process-wide "Thread-N" counter, "<prefix>-<i>", and the OS
   thread name. */
#ifndef CTP_WORKER_NAMES_H
#define CTP_WORKER_NAMES_H

#include <stddef.h>

/* Reserves `n` consecutive numbers of the process-wide "Thread-N" counter; returns the first. */
unsigned long long ctp_names_reserve(unsigned n);
/* "<prefix>-<number>", or "Thread-<number>" when prefix is NULL. malloc'd; NULL when out of memory. */
char *ctp_name_make(const char *prefix, unsigned long long number);
/* The length of the longest prefix of `name` that is at most `max_bytes` long and does not end
   inside a UTF-8 sequence. */
size_t ctp_name_cut(const char *name, size_t max_bytes);
/* Sets the calling thread's OS name to `name`, cut to the 15 bytes Linux allows. */
void ctp_name_set_os(const char *name);

#endif /* CTP_WORKER_NAMES_H */
