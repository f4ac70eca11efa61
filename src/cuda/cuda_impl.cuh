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
#include <string.h>

#include "alloy/cuda.h"
#include "alloy/quant.h"

struct al_cuda {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    cudaDeviceProp prop;
    void *scratch;
    size_t scratch_size;
    uint64_t scratch_gen; /* also bumped when q8 moves */
    bool capturing;
    size_t mmq_occ_smem[4]; /* k_mmq<K23, ALL> blocks per SM (mmq_occ[K23 + 2 ALL]) for this dynamic shared memory size */
    int mmq_occ[4];
    size_t mmq_multi_min; /* al_cuda_set_mmq_multi_min */
    bool pdl; /* launch with programmatic stream serialization (sm_90+, al_cuda_set_pdl) */
    bool recording; /* an al_cuda_prog records: al_launch refuses (alloy/cuda.h) */
};

struct al_cuda_graph {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
};

/* A weight row of k elements of type t on the GPU: its bytes (0: not whole blocks) and its image for
 * the GGUF row src — Q6_K and Q8_0 in the split-row layout of alloy/quant.h, every other type its
 * GGUF bytes unchanged. al_cuda_weight_upload goes through it for the split types and copies the
 * others as they are; tests/test_cuda_host.cu reads the readers' input through it. */
static inline size_t al_cuda_row_bytes(al_type t, int64_t k) {
    return al_split_type(t) ? al_split_row_size(t, k) : al_type_row_size(t, k);
}
static inline al_status al_cuda_row_image(al_type t, int64_t k, const void *src, void *dst) {
    if (al_split_type(t)) return al_split_row(t, k, src, dst);
    memcpy(dst, src, al_type_row_size(t, k));
    return al_ok();
}

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

/* ---- programmatic dependent launch (PDL) ----
 * Kernels launched by al_launch may be scheduled while the previous kernel of the stream still runs.
 * Invariant: every such kernel calls al_pdl_begin() (or al_pdl_trigger() ... al_pdl_wait()) before
 * it touches memory that any kernel writes; before the wait it may only read weights (constant
 * while a model lives). The trigger lets the next kernel be scheduled at once; the wait returns when
 * this kernel's predecessor has completed and its writes are visible, so the order of effects is that
 * of plain launches. Kernels not launched by al_launch need neither (the calls are then no-ops). */
__device__ __forceinline__ void al_pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
__device__ __forceinline__ void al_pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void al_pdl_begin() {
    al_pdl_trigger();
    al_pdl_wait();
}
/* L2 prefetch of [p, p + bytes) (one thread; sm_90 bulk copy engine; a hint, no effect elsewhere) */
__device__ __forceinline__ void al_prefetch_l2(const void *p, size_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)15, e = ((uintptr_t)p + bytes + 15) & ~(uintptr_t)15;
    while (a < e) {
        const uint32_t n = e - a > (1u << 20) ? (1u << 20) : (uint32_t)(e - a);
        /* a hint: no "memory" clobber, so that the caller's values loaded from memory stay in registers */
        asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(a), "r"(n));
        a += n;
    }
#endif
}

/* kernel<<<grid, block, smem, c->stream>>>(args...), with the PDL attribute when c->pdl */
template <typename... P, typename... A>
static inline cudaError_t al_launch(const al_cuda *c, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, A... args) {
    if (c->recording) return cudaErrorNotPermitted;
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = c->stream;
    cfg.attrs = at;
    cfg.numAttrs = c->pdl ? 1 : 0;
    return cudaLaunchKernelEx(&cfg, kernel, ((P)args)...);
}

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
__device__ __forceinline__ float al_softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

/* KV cache elements (float or __half) to and from float */
template <typename KV> __device__ __forceinline__ float al_kv_f(KV v);
template <> __device__ __forceinline__ float al_kv_f<float>(float v) { return v; }
template <> __device__ __forceinline__ float al_kv_f<__half>(__half v) { return __half2float(v); }
template <typename KV> __device__ __forceinline__ KV al_kv_t(float v);
template <> __device__ __forceinline__ float al_kv_t<float>(float v) { return v; }
template <> __device__ __forceinline__ __half al_kv_t<__half>(float v) { return __float2half_rn(v); }

/* RoPE of pair i (< half = n_dims / 2) of one head v[], in place; mode 1: (2i, 2i+1) (NORM), 2: (i,
 * i + half) (NEOX). The fp32 angle as the CPU: (float)pos * inv_freq[i], then accurate sin/cos. */
__device__ __forceinline__ void al_rope_pair(float *v, int i, int half, int mode, int pos, const float *inv_freq) {
    float s, co;
    sincosf((float)pos * inv_freq[i], &s, &co);
    const int a = mode == 1 ? 2 * i : i, b = mode == 1 ? 2 * i + 1 : i + half;
    const float x0 = v[a], x1 = v[b];
    v[a] = x0 * co - x1 * s;
    v[b] = x1 * co + x0 * s;
}

/* conv state [km1][ch] of channel cc after n_tok inputs x[t * ldx + cc]: the last km1 of [state | x] */
__device__ __forceinline__ void al_conv_state_update(const float *x, int64_t ldx, int64_t n_tok, int64_t ch, int km1,
                                                     float *state, int64_t cc) {
    float win[16];
    for (int i = 0; i < km1; i++) {
        const int64_t src = n_tok - km1 + i; /* index into [state | x] shifted by km1 */
        win[i] = src >= 0 ? x[src * ldx + cc] : state[(km1 + src) * ch + cc];
    }
    for (int i = 0; i < km1; i++) state[(int64_t)i * ch + cc] = win[i];
}
/* act: al_cuda_act_kind */
__device__ __forceinline__ float al_act_f(int act, float v) {
    switch (act) {
    case AL_CUDA_ACT_SILU: return al_silu(v);
    case AL_CUDA_ACT_GELU_TANH: return 0.5f * v * (1.0f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
    case AL_CUDA_ACT_GELU_ERF: return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    default: {
        float r = v > 0.0f ? v : 0.0f;
        return r * r;
    }
    }
}


#endif
