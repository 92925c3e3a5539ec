/* ctp_thread_slot, for ThreadPoolKit's Swift module (CThreadPoolSwift.h). */
#include "CThreadPoolSwift.h"

static _Thread_local void *ctp_thread_slot_value;

void **ctp_thread_slot(void) {
    return &ctp_thread_slot_value;
}
