import Benchmark

// The ThreadPoolKit benchmark suite: every workload runs ThreadPoolKit and its peers in the same
// run, so that ratios between them are meaningful on a shared, noisy machine. See ../../README.md.
//
// Names are "W<workload> <short name> <implementation>[ w<workers>]" so that --filter/--skip can
// pick a workload ("^W1 "), an implementation ("ThreadPoolKit|CThreadPool") or a worker count.
let benchmarks: @Sendable () -> Void = {
    registerTinyTasks()
    registerOneTaskPerItem()
    registerImap()
    registerLatency()
    registerRoundTrip()
    registerBlocking()
    registerLifecycle()
    registerDataParallel()
    registerActorCalls()
}
