/*
 * cuda_impl.cuh (internal) — the context struct, error plumbing and launch helpers shared by the
 * .cu files of the CUDA backend.
 */
#ifndef ALLOY_CUDA_IMPL_CUH
#define ALLOY_CUDA_IMPL_CUH

#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "alloy/cuda.h"

struct al_cuda {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    cudaDeviceProp prop;
    void *scratch;
    size_t scratch_size;
    uint64_t scratch_gen; /* also bumped when q8 moves */
    void *q8; /* int8 activations + block scales of the dp4a matrix-vector path */
    size_t q8_size;
    bool capturing;
};

struct al_cuda_graph {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
};

static inline al_status al_cuda_status(cudaError_t e, const char *what) {
    if (e == cudaSuccess) return al_ok();
    return al_err(AL_ERR_IO, "cuda: %s: %s", what, cudaGetErrorString(e));
}

/* After a launch: configuration errors surface here (device faults at the next sync). */
#define AL_CUDA_LAUNCHED(what) return al_cuda_status(cudaGetLastError(), what)
#define AL_CUDA_TRY(expr, what)                                                                    \
    do {                                                                                           \
        cudaError_t e_ = (expr);                                                                   \
        if (e_ != cudaSuccess) return al_cuda_status(e_, what);                                    \
    } while (0)

static inline unsigned al_cdiv(int64_t a, int64_t b) { return (unsigned)((a + b - 1) / b); }

__device__ __forceinline__ float al_warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float al_warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ float al_silu(float x) { return x / (1.0f + expf(-x)); }

#endif
