/*
 * cuda_bench.cuh — what the stand-alone GPU micro-benchmarks (bench/bench_*.cu, CUDA runtime only)
 * share: CK(call) returns 1 from main with the call and the CUDA error printed when it fails.
 */
#ifndef ALLOY_BENCH_CUDA_BENCH_CUH
#define ALLOY_BENCH_CUDA_BENCH_CUH

#include <stdio.h>

#include <cuda_runtime.h>

#define CK(x)                                                                                  \
    do {                                                                                       \
        cudaError_t e_ = (x);                                                                  \
        if (e_ != cudaSuccess) {                                                               \
            fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e_));                           \
            return 1;                                                                          \
        }                                                                                      \
    } while (0)

#endif
