/*
 * bench_handoff.cu — cost of handing a vector from one op of the persistent decode kernel to the next
 * (src/cuda/persist.cu), with the product's weight traffic running beside it. Every iteration is one
 * "op" of a cooperative kernel of one 512-thread block per SM: each block reads the whole k-float
 * vector the previous op wrote (every block wrote a share), streams its share of w_bytes of weights
 * from a buffer larger than L2, and writes its share of the next vector. Variants of the hand-off:
 *
 *   barrier : as persist.cu today — write the floats, grid barrier (red.release arrive, relaxed poll
 *             by one thread, fence), then read the vector (one more round trip)
 *   tagged  : no barrier — each float is stored with the op's 32-bit tag in one 8-byte word
 *             (st.volatile.v2.u32 {value, tag}); readers load 16-byte pairs (ld.volatile.v4.u32, as
 *             NCCL's LL protocol) and reload any pair whose tags are not this op's yet
 *   tagnap  : tagged, with __nanosleep(64) before each reload (less polling traffic in L2)
 *   taggpu  : tagged with gpu-scope relaxed accesses (ld/st.relaxed.gpu) instead of volatile ones
 *             (system scope), which may cost less on a single GPU
 *
 * Every value read is checked (value of element i written by op t: (3t + i) % 1000), so the tagged
 * variants also show whether a reader ever took a stale or torn pair (column "errors": must be 0).
 * Printed: ns per op for each variant and shape (k, weight bytes per op).
 *
 * usage: bench_handoff [ops per launch]
 */
#include <stdio.h>
#include <stdlib.h>

#include <cuda_runtime.h>

#include "cuda_bench.cuh"

#define NT 512
enum { BARRIER, TAGGED, TAGNAP, TAGGPU, N_VAR };
static const char *names[N_VAR] = {"barrier", "tagged", "tagnap", "taggpu"};

__device__ __forceinline__ float expect(int t, int i) { return (float)((3 * t + i) % 1000); }

__device__ __forceinline__ uint4 ld_v4(const uint4 *p, bool gpu) {
    uint4 u;
    if (gpu)
        asm volatile("ld.relaxed.gpu.global.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(u.x), "=r"(u.y), "=r"(u.z), "=r"(u.w) : "l"(p) : "memory");
    else
        asm volatile("ld.volatile.global.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(u.x), "=r"(u.y), "=r"(u.z), "=r"(u.w) : "l"(p) : "memory");
    return u;
}
__device__ __forceinline__ void st_pair(uint2 *p, float v, unsigned tag, bool gpu) {
    if (gpu) asm volatile("st.relaxed.gpu.global.v2.u32 [%0], {%1, %2};" ::"l"(p), "r"(__float_as_uint(v)), "r"(tag) : "memory");
    else asm volatile("st.volatile.global.v2.u32 [%0], {%1, %2};" ::"l"(p), "r"(__float_as_uint(v)), "r"(tag) : "memory");
}

/* vec: [2][k] floats (barrier); tv: [2][k] {value, tag} pairs (tagged); w: n_w uint4 of weights */
__global__ void __launch_bounds__(NT, 1) k_chain(int var, int iters, int k, const uint4 *w, long long n_w, long long w_blk,
                                                 float *vec, uint2 *tv, unsigned tag0, unsigned long long *bar, int *err,
                                                 float *sink) {
    __shared__ float red[NT / 32];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int k4 = k / 4;
    const bool gpu = var == TAGGPU;
    unsigned long long target = 0;
    unsigned acc = 0;
    int bad = 0;
    float total = 0.0f;
    for (int t = 1; t <= iters; t++) {
        /* 1: the input, written by op t - 1 (op 0: by the host) */
        float s = 0.0f;
        for (int i = tid; i < k4; i += NT) {
            float4 v;
            if (var == BARRIER) {
                v = ((const float4 *)(vec + (size_t)((t - 1) & 1) * k))[i];
            } else {
                const uint4 *p = (const uint4 *)(tv + (size_t)((t - 1) & 1) * k) + 2 * i;
                const unsigned tag = tag0 + (unsigned)(t - 1);
                uint4 a = ld_v4(p, gpu), b = ld_v4(p + 1, gpu);
                while (a.y != tag || a.w != tag) {
                    if (var == TAGNAP) __nanosleep(64);
                    a = ld_v4(p, gpu);
                }
                while (b.y != tag || b.w != tag) {
                    if (var == TAGNAP) __nanosleep(64);
                    b = ld_v4(p + 1, gpu);
                }
                v = make_float4(__uint_as_float(a.x), __uint_as_float(a.z), __uint_as_float(b.x), __uint_as_float(b.z));
            }
            bad += (v.x != expect(t - 1, 4 * i)) + (v.y != expect(t - 1, 4 * i + 1)) + (v.z != expect(t - 1, 4 * i + 2)) +
                   (v.w != expect(t - 1, 4 * i + 3));
            s += v.x + v.y + v.z + v.w;
        }
        for (int o = 16; o; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (lane == 0) red[warp] = s;
        __syncthreads();
        if (tid == 0)
            for (int q = 0; q < NT / 32; q++) total += red[q];
        /* 2: the product's weights: this block's share of op t, streamed (the buffer wraps) */
        if (w_blk > 0) {
            const long long off = ((long long)t * gridDim.x + blockIdx.x) * w_blk % (n_w - w_blk);
            for (long long i = tid; i < w_blk; i += NT) {
                const uint4 u = w[off + i];
                acc ^= u.x ^ u.y ^ u.z ^ u.w;
            }
        }
        /* 3: this block's rows of the output: elements blockIdx.x + gridDim.x r */
        const float extra = acc == 0xFFFFFFFFu ? 1.0f : 0.0f; /* keeps the weight loads; never 1 for these weights */
        for (int i = blockIdx.x + gridDim.x * tid; i < k; i += gridDim.x * NT) {
            const float v = expect(t, i) + extra;
            if (var == BARRIER) vec[(size_t)(t & 1) * k + i] = v;
            else st_pair(tv + (size_t)(t & 1) * k + i, v, tag0 + (unsigned)t, gpu);
        }
        __syncthreads(); /* red is reused */
        /* 4: the grid barrier (barrier variant) */
        if (var == BARRIER) {
            target += gridDim.x;
            if (tid == 0) asm volatile("red.release.gpu.global.add.u64 [%0], 1;" ::"l"(bar) : "memory");
            if (tid == 3 * 128) {
                unsigned long long v;
                do asm volatile("ld.relaxed.gpu.global.u64 %0, [%1];" : "=l"(v) : "l"(bar) : "memory");
                while (v < target);
                asm volatile("fence.acq_rel.gpu;" ::: "memory");
            }
            __syncthreads();
        }
    }
    if (bad) atomicAdd(err, bad);
    if (tid == 0) sink[blockIdx.x] = total + (float)(acc & 1);
}

__global__ void k_init(float *vec, uint2 *tv, int k, unsigned tag0) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < k; i += gridDim.x * blockDim.x) {
        vec[i] = (float)(i % 1000);
        tv[i] = make_uint2(__float_as_uint((float)(i % 1000)), tag0);
    }
}

int main(int argc, char **argv) {
    int iters = argc > 1 ? atoi(argv[1]) : 5000;
    if (iters < 1 || iters > 1000000) iters = 5000;
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    const int grid = prop.multiProcessorCount, kmax = 8192;
    const long long n_w = (256ll << 20) / 16; /* 256 MB of weights: more than L2 */
    uint4 *w;
    float *vec, *sink;
    uint2 *tv;
    unsigned long long *bar;
    int *err;
    CK(cudaMalloc(&w, (size_t)n_w * 16));
    CK(cudaMemset(w, 0x11, (size_t)n_w * 16));
    CK(cudaMalloc(&vec, sizeof(float) * 2 * kmax));
    CK(cudaMalloc(&tv, sizeof(uint2) * 2 * kmax));
    CK(cudaMalloc(&bar, 8));
    CK(cudaMalloc(&err, sizeof(int)));
    CK(cudaMalloc(&sink, sizeof(float) * (size_t)grid));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    printf("%s, %d SMs, one %d-thread block per SM, %d ops per launch, best of 3 launches\n", prop.name, grid, NT, iters);
    printf("| k | weights per op | variant | ns per op | errors |\n|---|---|---|---|---|\n");
    const int ks[] = {1024, 1024, 1024, 3072, 8192};
    const double mbs[] = {0.0, 2.4, 6.3, 2.4, 4.2}; /* Qwen3-0.6B: QKV ~2.4 MB, gate/up ~6.3 MB; Llama down ~4.2 MB */
    unsigned tag0 = 1;
    for (int c = 0; c < 5; c++)
        for (int var = 0; var < N_VAR; var++) {
            int k = ks[c];
            long long w_blk = (long long)(mbs[c] * 1e6 / 16.0 / grid);
            float best = 1e30f;
            int errors = 0;
            for (int rep = 0; rep < 3; rep++) {
                tag0 += (unsigned)iters + 2; /* no tag of an earlier launch is this launch's */
                k_init<<<8, 256>>>(vec, tv, k, tag0);
                CK(cudaGetLastError());
                CK(cudaMemset(bar, 0, 8));
                CK(cudaMemset(err, 0, sizeof(int)));
                void *args[] = {&var, &iters, &k, &w, (void *)&n_w, &w_blk, &vec, &tv, &tag0, &bar, &err, &sink};
                CK(cudaEventRecord(e0));
                CK(cudaLaunchCooperativeKernel((const void *)k_chain, dim3(grid), dim3(NT), args, 0, 0));
                CK(cudaEventRecord(e1));
                CK(cudaEventSynchronize(e1));
                float ms;
                CK(cudaEventElapsedTime(&ms, e0, e1));
                if (ms < best) best = ms;
                int e = 0;
                CK(cudaMemcpy(&e, err, sizeof e, cudaMemcpyDeviceToHost));
                errors += e;
            }
            printf("| %d | %.1f MB | %s | %.0f | %d |\n", k, mbs[c], names[var], best * 1e6 / iters, errors);
        }
    return 0;
}
