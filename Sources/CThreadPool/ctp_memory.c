/* Memory helpers (memory.h). */
#define _GNU_SOURCE
#include "ctp_memory.h"

#include <stdlib.h>
#include <string.h>

void *ctp_aligned_zalloc(size_t alignment, size_t size) {
    size_t rounded = (size + alignment - 1) & ~(alignment - 1); /* aligned_alloc wants a multiple */
    if (rounded < size) return NULL;
    void *memory = aligned_alloc(alignment, rounded);
    if (memory != NULL) memset(memory, 0, rounded);
    return memory;
}
