/* Random operation sequences on the C API from three threads at once (see random_ops.h), from a
   seeded generator: the same sequences on every run. make fuzz explores further with libFuzzer. */
#include "random_ops.h"

#include <string.h>

static uint64_t next_random(uint64_t *state) {
    *state += 0x9E3779B97F4A7C15ull;
    uint64_t z = *state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int main(void) {
    uint64_t state = 2026;
    enum { SEQUENCES = 1500, MAX_LENGTH = 600 };
    static uint8_t data[MAX_LENGTH];
    for (int s = 0; s < SEQUENCES; s++) {
        size_t length = 2 + next_random(&state) % (MAX_LENGTH - 2);
        for (size_t i = 0; i < length; i++) data[i] = (uint8_t)next_random(&state);
        ops_run_sequence(data, length);
    }
    printf("ok   random ops: %d sequences of up to %d operations from 3 threads: every accepted task called once\n",
           SEQUENCES, MAX_LENGTH);
    printf("test_random_ops: all tests passed\n");
    return 0;
}
