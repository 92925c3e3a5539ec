/* libFuzzer target: the bytes are an operation sequence on the C API (see random_ops.h). */
#include "../random_ops.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ops_run_sequence(data, size > 4096 ? 4096 : size);
    return 0;
}
