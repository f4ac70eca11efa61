/*
 * bench_barrier.cu — cost of one grid-wide barrier of a cooperative kernel, the floor under every op of
 * the persistent decode kernel (src/cuda/persist.cu). Each variant runs `iters` barriers in one launch
 * with blocks_per_sm × SMs blocks of 128 threads (and, "wide", one block of 512 threads per SM);
 * printed: ns per barrier, and ns per barrier + one dependent read of a 4 KB vector written by other
 * blocks before it (what an op does first).
 *
 *   flat   : every block red.release.add's one 64-bit counter; thread 0 polls it (relaxed) then fences
 *   sleep  : flat with __nanosleep between polls (less polling traffic on the counter's L2 slice)
 *   tree   : blocks arrive on one of 16 sub-counters (atom, returns the old value); the last of a group
 *            red.release.add's the root, which everyone polls
 *   clusterC: thread-block clusters of C blocks (Hopper): the cluster's blocks meet at the cluster
 *            barrier, its first block alone arrives on and polls the counter, then releases the
 *            others with a second cluster barrier (grid / C arrivals and pollers instead of grid);
 *            launched with cudaLaunchKernelEx (cooperative + cluster dimension), "-" where the GPU
 *            cannot hold the whole grid in clusters of C
 *   carriveC: clusters of C meet at the cluster barrier and the first block arrives for all of them
 *            (grid / C atomics on the counter), but every block polls the counter itself
 *
 * usage: bench_barrier [iters]
 */
#include <stdio.h>
#include <stdlib.h>

#include <cuda_runtime.h>

#include "cuda_bench.cuh"

#define T 128
#define SUB 16

enum { FLAT, SLEEP, TREE, CLUSTER, CARRIVE, N_KIND };
static const char *names[N_KIND] = {"flat", "sleep", "tree", "cluster", "carrive"};

__device__ __forceinline__ void poll(unsigned long long *p, unsigned long long target, bool nap) {
    unsigned long long v;
    for (;;) {
        asm volatile("ld.relaxed.gpu.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
        if (v >= target) break;
        if (nap) __nanosleep(32);
    }
    asm volatile("fence.acq_rel.gpu;" ::: "memory");
}

/* ctr[0]: root, ctr[8 + 8 i]: sub-counter i (own 64-byte lines) */
__device__ __forceinline__ void barrier(int kind, unsigned long long *ctr, unsigned long long it) {
    __syncthreads();
    if (threadIdx.x == 0) {
        if (kind == TREE) {
            const int s = blockIdx.x % SUB;
            const unsigned long long members = (gridDim.x - s + SUB - 1) / SUB;
            unsigned long long old;
            asm volatile("atom.acq_rel.gpu.global.add.u64 %0, [%1], 1;" : "=l"(old) : "l"(ctr + 8 + 8 * s) : "memory");
            if (old + 1 == members * it) asm volatile("red.release.gpu.global.add.u64 [%0], 1;" ::"l"(ctr) : "memory");
            poll(ctr, (unsigned long long)SUB * it, false);
        } else if (kind != CLUSTER && kind != CARRIVE) {
            asm volatile("red.release.gpu.global.add.u64 [%0], 1;" ::"l"(ctr) : "memory");
            poll(ctr, (unsigned long long)gridDim.x * it, kind == SLEEP);
        }
    }
    if (kind == CARRIVE) {
        unsigned rank, csize;
        asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(rank));
        asm volatile("mov.u32 %0, %%cluster_nctarank;" : "=r"(csize));
        if (threadIdx.x == 0) asm volatile("fence.acq_rel.gpu;" ::: "memory");
        asm volatile("barrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;" ::: "memory");
        if (threadIdx.x == 0) {
            if (rank == 0) asm volatile("red.release.gpu.global.add.u64 [%0], 1;" ::"l"(ctr) : "memory");
            poll(ctr, (unsigned long long)(gridDim.x / csize) * it, false);
        }
    }
    if (kind == CLUSTER) {
        unsigned rank, csize;
        asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(rank));
        asm volatile("mov.u32 %0, %%cluster_nctarank;" : "=r"(csize));
        if (threadIdx.x == 0) asm volatile("fence.acq_rel.gpu;" ::: "memory"); /* this block's writes, GPU-wide */
        asm volatile("barrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;" ::: "memory");
        if (rank == 0 && threadIdx.x == 0) {
            asm volatile("red.release.gpu.global.add.u64 [%0], 1;" ::"l"(ctr) : "memory");
            poll(ctr, (unsigned long long)(gridDim.x / csize) * it, false);
        }
        asm volatile("barrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;" ::: "memory");
    }
    __syncthreads();
}

template <int NT>
__global__ void __launch_bounds__(NT) k_bar(int kind, int iters, int payload, unsigned long long *ctr, float *buf, float *sink) {
    __shared__ float red[NT / 32];
    float acc = 0.0f;
    for (int it = 1; it <= iters; it++) {
        if (payload) { /* write my 16 floats, then after the barrier read 1024 floats of others */
            if (threadIdx.x < 16) buf[(blockIdx.x * 16 + threadIdx.x) % 1024 + 1024 * (it & 1)] = acc + (float)it;
        }
        barrier(kind, ctr, (unsigned long long)it);
        if (payload) {
            const float4 *b4 = (const float4 *)(buf + 1024 * (it & 1));
            float s = 0.0f;
            for (int i = threadIdx.x; i < 256; i += NT) {
                const float4 v = b4[i];
                s += v.x + v.y + v.z + v.w;
            }
            for (int o = 16; o; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
            if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = s;
            __syncthreads();
            acc = red[0] + red[1] + red[2] + red[3];
        }
    }
    if (threadIdx.x == 0) sink[blockIdx.x] = acc;
}

int main(int argc, char **argv) {
    int iters = argc > 1 ? atoi(argv[1]) : 20000;
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    unsigned long long *ctr;
    float *buf, *sink;
    CK(cudaMalloc(&ctr, 8 * 8 * (SUB + 1)));
    CK(cudaMalloc(&buf, 4 * 2048));
    CK(cudaMemset(buf, 0, 4 * 2048));
    CK(cudaMalloc(&sink, 4 * 4096));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    printf("%s, %d SMs, %d barriers per launch\n| blocks/SM | variant | ns/barrier | ns/barrier + 4 KB dependent read |\n|---|---|---|---|\n",
           prop.name, prop.multiProcessorCount, iters);
    for (int bps = 0; bps <= 4; bps = bps ? 2 * bps : 1) /* 0: one wide block per SM */
        for (int kind = 0; kind < N_KIND + 2; kind++) { /* CLUSTER, CARRIVE: clusters of 2; N_KIND, N_KIND + 1: of 4 */
            if (bps == 0 && kind != FLAT && kind < CLUSTER) continue;
            const int csize = kind == CLUSTER || kind == CARRIVE ? 2 : kind >= N_KIND ? 4 : 1;
            int kk = kind < N_KIND ? kind : kind == N_KIND ? CLUSTER : CARRIVE;
            bool ok = true;
            double ns[2];
            for (int payload = 0; payload < 2; payload++) {
                int grid = (bps ? bps : 1) * prop.multiProcessorCount;
                void *args[] = {&kk, &iters, &payload, &ctr, &buf, &sink};
                float best = 1e30f;
                for (int rep = 0; rep < 3 && ok; rep++) {
                    CK(cudaMemset(ctr, 0, 8 * 8 * (SUB + 1)));
                    CK(cudaEventRecord(e0));
                    if (csize > 1) { /* cooperative launch in clusters; may not fit */
                        cudaLaunchConfig_t cfg = {};
                        cudaLaunchAttribute at[2];
                        at[0].id = cudaLaunchAttributeClusterDimension;
                        at[0].val.clusterDim.x = (unsigned)csize, at[0].val.clusterDim.y = 1, at[0].val.clusterDim.z = 1;
                        at[1].id = cudaLaunchAttributeCooperative;
                        at[1].val.cooperative = 1;
                        cfg.gridDim = dim3((unsigned)(grid / csize * csize));
                        cfg.blockDim = dim3(bps ? T : 4 * T);
                        cfg.attrs = at;
                        cfg.numAttrs = 2;
                        const cudaError_t e = bps ? cudaLaunchKernelExC(&cfg, (const void *)k_bar<T>, args)
                                                  : cudaLaunchKernelExC(&cfg, (const void *)k_bar<4 * T>, args);
                        if (e != cudaSuccess) {
                            (void)cudaGetLastError();
                            ok = false;
                            break;
                        }
                    } else if (bps) CK(cudaLaunchCooperativeKernel((const void *)k_bar<T>, dim3(grid), dim3(T), args, 0, 0));
                    else CK(cudaLaunchCooperativeKernel((const void *)k_bar<4 * T>, dim3(grid), dim3(4 * T), args, 0, 0));
                    CK(cudaEventRecord(e1));
                    CK(cudaEventSynchronize(e1));
                    float ms;
                    CK(cudaEventElapsedTime(&ms, e0, e1));
                    if (ms < best) best = ms;
                }
                ns[payload] = best * 1e6 / iters;
            }
            char name[32];
            snprintf(name, sizeof name, "%s%s", names[kk], csize == 4 ? "4" : csize == 2 ? "2" : "");
            if (!ok) printf("| %d | %s | - | - |\n", bps ? bps : 1, name);
            else if (bps) printf("| %d | %s | %.0f | %.0f |\n", bps, name, ns[0], ns[1]);
            else printf("| 1 (512 threads) | %s | %.0f | %.0f |\n", name, ns[0], ns[1]);
        }
    return 0;
}
