/*
 * matmul.cu — Y = X · Wᵀ for weights in their stored (quantized) type.
 *  - m <= 4, Q8_0 / Q4_K / Q5_K / Q6_K (k_mmq): each block quantizes the activation row to int8
 *    blocks of 32 in shared memory (mmq.cuh; with al_cuda_matvec_* also the residual add + RMSNorm
 *    before it), then groups of one, two or four warps (by k) take pairs of rows, each lane 32- or
 *    64-element chunks with 128-bit loads and __dp4a; the block strides over rows (decode).
 *  - m <= 4, other types: a block of 4 warps per 2 output rows, split over k, each lane dequantizing
 *    8 elements per step (one sub-block slice) against float activations.
 *  - m > 4: quantized W is dequantized to F16 in row chunks into scratch, X converted to F16, and
 *    cuBLAS runs the GEMM with F32 accumulation; F16/BF16 weights go to cuBLAS as they are; F32
 *    weights use SGEMM (float32, no TF32).
 *  - the same readers serve embedding lookups (get_rows) and MoE matrix-vector with device ids.
 */
#include <string.h>

#include "alloy/quant.h"
#include "cuda/mmq.cuh"

#define MMV_ROWS 4 /* warps (= output rows) per block */

/* One block of MMV_ROWS warps per MMV_RPW rows, split over k: warp y takes the 8-element slices
 * y*32 + lane, step 32*MMV_ROWS, so even long rows of few outputs keep many loads in flight; the x
 * slice is loaded once for the block's rows; partial sums meet in shared memory. */
#define MMV_RPW 2
template <int T>
__device__ __forceinline__ void mmv_rows(const uint8_t *__restrict__ w, size_t row_bytes, int nr, int64_t k,
                                         const float *__restrict__ x, float *__restrict__ y) {
    __shared__ float red[MMV_ROWS][MMV_RPW];
    const bool al16 = ((uintptr_t)x & 15) == 0;
    const int64_t n8 = k >> 3;
    float acc[MMV_RPW];
#pragma unroll
    for (int r = 0; r < MMV_RPW; r++) acc[r] = 0.0f;
#pragma unroll 2
    for (int64_t i = threadIdx.y * 32 + threadIdx.x; i < n8; i += 32 * MMV_ROWS) {
        float xv[8];
        if (al16) {
            const float4 a = __ldg((const float4 *)x + 2 * i), b = __ldg((const float4 *)x + 2 * i + 1);
            xv[0] = a.x, xv[1] = a.y, xv[2] = a.z, xv[3] = a.w, xv[4] = b.x, xv[5] = b.y, xv[6] = b.z, xv[7] = b.w;
        } else {
#pragma unroll
            for (int t = 0; t < 8; t++) xv[t] = __ldg(x + 8 * i + t);
        }
        float v[MMV_RPW][8];
#pragma unroll
        for (int r = 0; r < MMV_RPW; r++)
            if (r < nr) al_qt<T>::load8(w + (size_t)r * row_bytes, i, v[r]);
#pragma unroll
        for (int r = 0; r < MMV_RPW; r++)
            if (r < nr) {
#pragma unroll
                for (int t = 0; t < 8; t++) acc[r] = fmaf(v[r][t], xv[t], acc[r]);
            }
    }
#pragma unroll
    for (int r = 0; r < MMV_RPW; r++) {
        const float a = al_warp_sum(acc[r]);
        if (threadIdx.x == 0) red[threadIdx.y][r] = a;
    }
    __syncthreads();
    if (threadIdx.y == 0 && threadIdx.x < nr) {
        float sum = 0.0f;
#pragma unroll
        for (int j = 0; j < MMV_ROWS; j++) sum += red[j][threadIdx.x];
        y[threadIdx.x] = sum;
    }
}

template <int T>
__global__ void k_mmv_q(const uint8_t *__restrict__ W, size_t row_bytes, size_t mat_bytes, const int32_t *__restrict__ ids,
                        int64_t k, int64_t n_out, const float *__restrict__ X, int64_t ldx, int x_per_id, float *__restrict__ Y,
                        int64_t ldy) {
    al_pdl_begin();
    const int j = blockIdx.y;
    const int64_t row = (int64_t)blockIdx.x * MMV_RPW; /* uniform per block */
    if (row >= n_out) return;
    const int nr = n_out - row < MMV_RPW ? (int)(n_out - row) : MMV_RPW;
    const uint8_t *w = W + (ids ? (size_t)ids[j] * mat_bytes : 0) + (size_t)row * row_bytes;
    mmv_rows<T>(w, row_bytes, nr, k, X + (x_per_id ? (int64_t)j * ldx : 0), Y + (int64_t)j * ldy + row);
}

/* up to 4 matrices of one type and k sharing x. Rows are numbered back to back, each matrix starting
 * at a multiple of MMV_RPW (beg[i]) so that no block straddles two matrices. */
typedef struct mmv_multi {
    const uint8_t *w[4];
    size_t row_bytes[4];
    float *y[4];
    int64_t beg[4], end[4];
    int n;
} mmv_multi;

template <int T>
__global__ void k_mmv_multi(mmv_multi mm, int64_t k, const float *__restrict__ x) {
    al_pdl_begin();
    const int64_t vrow = (int64_t)blockIdx.x * MMV_RPW;
    int i = 0;
    while (i < mm.n - 1 && vrow >= mm.end[i]) i++;
    if (vrow >= mm.end[i] || vrow < mm.beg[i]) return; /* uniform per block */
    const int64_t row = vrow - mm.beg[i], rows = mm.end[i] - mm.beg[i];
    const int nr = rows - row < MMV_RPW ? (int)(rows - row) : MMV_RPW;
    mmv_rows<T>(mm.w[i] + (size_t)row * mm.row_bytes[i], mm.row_bytes[i], nr, k, x, mm.y[i] + row);
}

template <int T>
__global__ void k_mmv_f(const uint8_t *__restrict__ W, size_t row_bytes, size_t mat_bytes, const int32_t *__restrict__ ids,
                        int64_t k, int64_t n_out, const float *__restrict__ X, int64_t ldx, int x_per_id, float *__restrict__ Y,
                        int64_t ldy) {
    al_pdl_begin();
    const int j = blockIdx.y;
    const int64_t row = (int64_t)blockIdx.x * MMV_ROWS + threadIdx.y;
    if (row >= n_out) return;
    const uint8_t *w = W + (ids ? (size_t)ids[j] * mat_bytes : 0) + (size_t)row * row_bytes;
    const float *x = X + (x_per_id ? (int64_t)j * ldx : 0);
    float acc = 0.0f;
    for (int64_t i = threadIdx.x; i < k; i += 32) acc = fmaf(al_load1<T>(w, i), __ldg(x + i), acc);
    acc = al_warp_sum(acc);
    if (threadIdx.x == 0) Y[(int64_t)j * ldy + row] = acc;
}

/* rows [r0, r0 + nr) of W -> half [nr][k] */
template <int T>
__global__ void k_dequant_f16(const uint8_t *__restrict__ W, size_t row_bytes, int64_t k, int64_t r0, int64_t nr,
                              __half *__restrict__ out) {
    al_pdl_begin();
    const int64_t n8 = k >> 3, idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= nr * n8) return;
    const int64_t r = idx / n8, i = idx - r * n8;
    float v[8];
    al_qt<T>::load8(W + (size_t)(r0 + r) * row_bytes, i, v);
    __align__(16) __half h[8];
#pragma unroll
    for (int t = 0; t < 8; t++) h[t] = __float2half_rn(v[t]);
    *(uint4 *)(out + r * k + 8 * i) = *(const uint4 *)h;
}

template <int T>
__global__ void k_get_rows_q(const uint8_t *__restrict__ W, size_t row_bytes, int64_t k, const int32_t *__restrict__ ids,
                             float *__restrict__ out, int64_t ldo) {
    al_pdl_begin();
    const int64_t t = blockIdx.y;
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (k >> 3)) return;
    float v[8];
    al_qt<T>::load8(W + (size_t)ids[t] * row_bytes, i, v);
#pragma unroll
    for (int j = 0; j < 8; j++) out[t * ldo + 8 * i + j] = v[j];
}

template <int T>
__global__ void k_get_rows_f(const uint8_t *__restrict__ W, size_t row_bytes, int64_t k, const int32_t *__restrict__ ids,
                             float *__restrict__ out, int64_t ldo) {
    al_pdl_begin();
    const int64_t t = blockIdx.y;
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= k) return;
    out[t * ldo + i] = al_load1<T>(W + (size_t)ids[t] * row_bytes, i);
}

__global__ void k_to_f16(const float *__restrict__ x, int64_t ldx, int64_t m, int64_t k, __half *__restrict__ y) {
    al_pdl_begin();
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= m * k) return;
    const int64_t r = idx / k, i = idx - r * k;
    y[idx] = __float2half_rn(x[r * ldx + i]);
}
__global__ void k_to_bf16(const float *__restrict__ x, int64_t ldx, int64_t m, int64_t k, __nv_bfloat16 *__restrict__ y) {
    al_pdl_begin();
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= m * k) return;
    const int64_t r = idx / k, i = idx - r * k;
    y[idx] = __float2bfloat16_rn(x[r * ldx + i]);
}


/* ---- integer path (mmq.cuh) ---- */

#define MMQ_R 2 /* rows per group of warps */
#define MMQ_MAX_GROUPS 64 /* norm groups of the fused pre-norm */
typedef struct mmq_args {
    const uint8_t *w[4];
    int64_t row_bytes[4];
    float *y[4];
    int64_t beg[4], end[4]; /* virtual row ranges, beg multiple of MMQ_R (glu: output rows of matrix 0) */
    int type[4];
    int n;
    int glu;                /* 0, or 1 + al_cuda_act_kind: y[0] = act(x·w[0]ᵀ) * (x·w[1]ᵀ), one type */
    size_t mat_bytes;
    const int32_t *ids;     /* NULL or device: matrix of output row j (written by an earlier kernel) */
    int64_t ldy, k;
    const float *x;         /* float activations [ny or 1][ldx] */
    int64_t ldx;
    int x_per_j;
    /* fused pre-norm (ny == 1), nw != NULL: v = h + d (block 0 stores v to h_out), or v = h * silu(z)
     * when z; x = v / rms(v over groups of `group`) * nw */
    const float *h, *d, *z, *nw;
    float *h_out;
    float eps;
    int64_t group;
} mmq_args;

template <int T>
__device__ __forceinline__ void mmq_loop(const uint8_t *w, int64_t rb, int nr, int64_t k, int first, int step, const int8_t *xq,
                                         const float *xd, float *acc) {
    const int64_t nch = k / al_mmq<T>::chunk;
#pragma unroll 2
    for (int64_t c = first; c < nch; c += step) al_mmq<T>::template dot<MMQ_R>(w, rb, nr, c, xq, xd, acc);
}

/* the rows of virtual group vg: matrix i, first row pointer, rows nr (0: none), row distance rb */
__device__ __forceinline__ int mmq_rows(const mmq_args &a, int64_t vg, int rpg, const uint8_t **w, int64_t *rb, int64_t *vrow) {
    *vrow = vg * rpg;
    int i = 0;
    while (i < a.n - 1 && *vrow >= a.end[i]) i++;
    *w = NULL;
    *rb = a.row_bytes[i];
    if (*vrow < a.beg[i] || *vrow >= a.end[i]) return i; /* no rows */
    const int nr = a.glu ? 2 : (a.end[i] - *vrow < MMQ_R ? (int)(a.end[i] - *vrow) : MMQ_R);
    *w = a.w[i] + (size_t)(*vrow - a.beg[i]) * a.row_bytes[i];
    if (a.glu) *rb = (int64_t)(a.w[1] - a.w[0]);
    return i | (nr << 8);
}

__device__ __forceinline__ void mmq_prefetch(const mmq_args &a, const uint8_t *w, int64_t rb, int nr) {
    if (!w || a.ids) return;
    if (a.glu) {
        al_prefetch_l2(w, (size_t)a.row_bytes[0]);
        al_prefetch_l2(w + rb, (size_t)a.row_bytes[0]);
    } else {
        al_prefetch_l2(w, (size_t)nr * (size_t)rb);
    }
}

/* Block of 4 warps = 4 / g groups of g warps, each group MMQ_R rows (glu: one output row = the pair
 * gate row, up row) per step; the block strides over groups of rows (gridDim.x * ngrp apart), so the
 * activation row j = blockIdx.y is quantized once per block into shared memory (int8 blocks of 32 +
 * scales, mmq.cuh) — with the fused pre-norm computed there too. Matrices may differ in type
 * (uniform per group). Before waiting for the previous kernel it prefetches its first weight rows
 * into L2 (PDL, cuda_impl.cuh), and each step prefetches the next step's rows. */
__global__ void __launch_bounds__(128) k_mmq(mmq_args a, int g) {
    extern __shared__ __align__(16) uint8_t mmq_sh[];
    __shared__ float red[4][MMQ_R];
    __shared__ float ginv[MMQ_MAX_GROUPS], gpart[4][MMQ_MAX_GROUPS];
    al_pdl_trigger();
    const int warp = threadIdx.y, lane = threadIdx.x, ngrp = 4 / g, grp = warp / g, wig = warp - grp * g;
    const int tid = warp * 32 + lane;
    const int j = blockIdx.y;
    const int rpg = a.glu ? 1 : MMQ_R; /* output rows per group */
    const int64_t nvg = (a.end[a.n - 1] + rpg - 1) / rpg, vstep = (int64_t)gridDim.x * ngrp;
    {
        const uint8_t *w0;
        int64_t rb0, vr0;
        const int in = mmq_rows(a, (int64_t)blockIdx.x * ngrp + grp, rpg, &w0, &rb0, &vr0);
        if (wig == 0 && lane == 0) mmq_prefetch(a, w0, rb0, in >> 8);
    }
    al_pdl_wait();

    const int64_t k = a.k, nb = k >> 5;
    int8_t *xq = (int8_t *)mmq_sh;
    float *xd = (float *)(mmq_sh + ((k + 15) & ~(int64_t)15));
    const float *src = a.x + (a.x_per_j ? (int64_t)j * a.ldx : 0);
    if (a.nw) { /* v into shared memory, then 1 / rms per group */
        float *xf = (float *)(mmq_sh + ((k + 15) & ~(int64_t)15) + ((sizeof(float) * nb + 15) & ~(size_t)15));
        const bool store = a.d && blockIdx.x == 0 && blockIdx.y == 0;
        const float4 *h4 = (const float4 *)a.h, *o4 = (const float4 *)(a.z ? a.z : a.d); /* 16-byte aligned */
        const int64_t k4 = k >> 2;
        for (int64_t i0 = tid; i0 < k4; i0 += 4 * 128) { /* all loads of a step before its stores */
            float4 hv[4], ov[4];
#pragma unroll
            for (int u = 0; u < 4; u++) {
                const int64_t i = i0 + 128 * u;
                hv[u] = ov[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                if (i < k4) {
                    hv[u] = h4[i];
                    if (o4) ov[u] = o4[i];
                }
            }
#pragma unroll
            for (int u = 0; u < 4; u++) {
                const int64_t i = i0 + 128 * u;
                if (i >= k4) break;
                float4 v;
                if (a.z) v = make_float4(hv[u].x * al_silu(ov[u].x), hv[u].y * al_silu(ov[u].y), hv[u].z * al_silu(ov[u].z),
                                         hv[u].w * al_silu(ov[u].w));
                else v = make_float4(hv[u].x + ov[u].x, hv[u].y + ov[u].y, hv[u].z + ov[u].z, hv[u].w + ov[u].w);
                ((float4 *)xf)[i] = v;
                if (store) ((float4 *)a.h_out)[i] = v;
            }
        }
        __syncthreads();
        const int ng = (int)(k / a.group);
        for (int gi = 0; gi < ng; gi++) {
            float ss = 0.0f;
            for (int64_t i = tid; i < a.group; i += 128) ss += xf[gi * a.group + i] * xf[gi * a.group + i];
            ss = al_warp_sum(ss);
            if (lane == 0) gpart[warp][gi] = ss;
        }
        __syncthreads();
        if (tid < ng) ginv[tid] = 1.0f / sqrtf((gpart[0][tid] + gpart[1][tid] + gpart[2][tid] + gpart[3][tid]) / (float)a.group + a.eps);
        __syncthreads();
        src = xf;
    }
    /* x -> int8 xq[k] + scales xd[k / 32]; a lane takes 4 consecutive values, 8 lanes a block of 32,
     * a warp 4 blocks per step */
    const bool v4 = ((uintptr_t)src & 15) == 0;
    for (int64_t b0 = (int64_t)warp * 4; b0 < nb; b0 += 16) {
        const int64_t b = b0 + (lane >> 3);
        const int64_t e = 32 * b + 4 * (lane & 7);
        float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (b < nb) {
            v = v4 ? *(const float4 *)(src + e) : make_float4(src[e], src[e + 1], src[e + 2], src[e + 3]);
            if (a.nw) { /* e .. e + 3 lie in one group (group % 32 == 0) */
                const float inv = ginv[e / a.group];
                v.x = (v.x * inv) * a.nw[e], v.y = (v.y * inv) * a.nw[e + 1];
                v.z = (v.z * inv) * a.nw[e + 2], v.w = (v.w * inv) * a.nw[e + 3];
            }
        }
        float m = fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w)));
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 4));
        if (b < nb) {
            const float sc = m > 0.0f ? 127.0f / m : 0.0f;
            char4 q;
            q.x = (signed char)__float2int_rn(v.x * sc);
            q.y = (signed char)__float2int_rn(v.y * sc);
            q.z = (signed char)__float2int_rn(v.z * sc);
            q.w = (signed char)__float2int_rn(v.w * sc);
            *(char4 *)(xq + e) = q;
            if ((lane & 7) == 0) xd[b] = m / 127.0f;
        }
    }
    __syncthreads();

    for (int64_t vg = (int64_t)blockIdx.x * ngrp + grp; vg - grp < nvg; vg += vstep) {
        const uint8_t *w;
        int64_t rb, vrow;
        const int in = mmq_rows(a, vg, rpg, &w, &rb, &vrow);
        const int i = in & 0xff, nr = in >> 8;
        if (wig == 0 && lane == 0 && vg + vstep < nvg) {
            const uint8_t *wn;
            int64_t rbn, vrn;
            const int inn = mmq_rows(a, vg + vstep, rpg, &wn, &rbn, &vrn);
            mmq_prefetch(a, wn, rbn, inn >> 8);
        }
        if (a.ids && w) w += (size_t)a.ids[j] * a.mat_bytes;
        float acc[MMQ_R];
#pragma unroll
        for (int r = 0; r < MMQ_R; r++) acc[r] = 0.0f;
        if (nr > 0) {
            const int first = wig * 32 + lane, step = 32 * g;
            switch (a.type[i]) {
            case AL_TYPE_Q8_0: mmq_loop<AL_TYPE_Q8_0>(w, rb, nr, k, first, step, xq, xd, acc); break;
            case AL_TYPE_Q4_K: mmq_loop<AL_TYPE_Q4_K>(w, rb, nr, k, first, step, xq, xd, acc); break;
            case AL_TYPE_Q5_K: mmq_loop<AL_TYPE_Q5_K>(w, rb, nr, k, first, step, xq, xd, acc); break;
            case AL_TYPE_Q6_K: mmq_loop<AL_TYPE_Q6_K>(w, rb, nr, k, first, step, xq, xd, acc); break;
            default: break;
            }
        }
        if (g > 1) {
#pragma unroll
            for (int r = 0; r < MMQ_R; r++) {
                const float s = al_warp_sum(acc[r]);
                if (lane == 0) red[warp][r] = s;
            }
            __syncthreads();
            if (wig == 0) {
                for (int q = 1; q < g; q++)
#pragma unroll
                    for (int r = 0; r < MMQ_R; r++) acc[r] += lane == 0 ? red[grp * g + q][r] : 0.0f;
            }
            __syncthreads(); /* red is reused by the next step */
        }
        if (wig == 0 && nr > 0) {
            float s0 = al_warp_sum(acc[0]), s1 = al_warp_sum(acc[1]);
            if (lane == 0) {
                if (a.glu) a.y[0][(int64_t)j * a.ldy + vrow] = al_act_f(a.glu - 1, s0) * s1;
                else {
                    float *y = a.y[i] + (int64_t)j * a.ldy + (vrow - a.beg[i]);
                    y[0] = s0;
                    if (nr > 1) y[1] = s1;
                }
            }
        }
    }
}

#define MMQ_MAX_K 40000 /* shared memory: k + k / 8 bytes of quantized activations, under 48 KiB */
#define MMQ_MAX_K_NORM 8192 /* with the fused pre-norm: + 4 k bytes */

/* a.w.., a.n, a.type, a.glu, ids, norm etc. set by the caller; launches over ny activation rows */
static al_status mmq_launch(al_cuda *c, mmq_args *a, const float *X, int64_t ldx, int ny) {
    const int64_t k = a->k;
    a->x = X;
    a->ldx = ldx;
    size_t smem = (size_t)((k + 15) & ~(int64_t)15) + (((size_t)(k >> 5) * sizeof(float) + 15) & ~(size_t)15);
    if (a->nw) smem += sizeof(float) * (size_t)k;
    const int64_t nch = k >> 5;
    const int g = nch >= 256 ? 4 : nch >= 128 ? 2 : 1;
    const int rpb = (4 / g) * (a->glu ? 1 : MMQ_R);
    if (smem != c->mmq_occ_smem) { /* blocks of k_mmq resident per SM with this much shared memory */
        int nb = 0;
        AL_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&nb, k_mmq, 128, smem), "mmq occupancy");
        c->mmq_occ = nb > 0 ? nb : 1;
        c->mmq_occ_smem = smem;
    }
    const int64_t nblk = al_cdiv(a->end[a->n - 1], rpb), cap = (int64_t)c->prop.multiProcessorCount * c->mmq_occ;
    const dim3 grid((unsigned)(nblk < cap ? nblk : cap), (unsigned)ny), block(32, 4);
    AL_CUDA_TRY(al_launch(c, k_mmq, grid, block, smem, *a, g), "mmq");
    return al_ok();
}

static bool mmq_ok(const al_cuda_weight *W) {
    if (W->k > MMQ_MAX_K) return false;
    return (al_cuda_mmq_type(W->type) && W->k % 256 == 0) || (W->type == AL_TYPE_Q8_0 && W->k % 32 == 0);
}

/* ---- dispatch ---- */

static al_status mmv_launch(al_cuda *c, const al_cuda_weight *W, const int32_t *ids, const float *X, int64_t ldx,
                            int x_per_id, float *Y, int64_t ldy, int ny) {
    if (mmq_ok(W)) {
        mmq_args a;
        memset(&a, 0, sizeof a);
        a.w[0] = (const uint8_t *)W->data;
        a.row_bytes[0] = (int64_t)W->row_bytes;
        a.y[0] = Y;
        a.end[0] = W->n_out;
        a.type[0] = W->type;
        a.n = 1;
        a.mat_bytes = W->mat_bytes;
        a.ids = ids;
        a.ldy = ldy;
        a.k = W->k;
        a.x_per_j = x_per_id;
        return mmq_launch(c, &a, X, ldx, ny);
    }
    const bool q = al_type_traits_get(W->type)->is_quantized;
    dim3 grid(al_cdiv(W->n_out, q ? MMV_RPW : MMV_ROWS), (unsigned)ny), block(32, MMV_ROWS);
    const uint8_t *w = (const uint8_t *)W->data;
#define CASE_Q(T)                                                                                  \
    case T:                                                                                        \
        AL_CUDA_TRY(al_launch(c, k_mmv_q<T>, grid, block, 0, w, W->row_bytes, W->mat_bytes, ids, W->k, W->n_out, X, ldx, x_per_id, Y, ldy), "launch k_mmv_q"); \
        break;
#define CASE_F(T)                                                                                  \
    case T:                                                                                        \
        AL_CUDA_TRY(al_launch(c, k_mmv_f<T>, grid, block, 0, w, W->row_bytes, W->mat_bytes, ids, W->k, W->n_out, X, ldx, x_per_id, Y, ldy), "launch k_mmv_f"); \
        break;
    switch (W->type) {
        AL_CUDA_QUANT_TYPES(CASE_Q)
        AL_CUDA_FLOAT_TYPES(CASE_F)
    default: return al_err(AL_ERR_UNSUPPORTED, "cuda matmul: type %s", al_type_name(W->type));
    }
#undef CASE_Q
#undef CASE_F
    AL_CUDA_LAUNCHED("mmv");
}

static al_status dequant_f16(al_cuda *c, const al_cuda_weight *W, int64_t r0, int64_t nr, __half *out) {
    int64_t n = nr * (W->k >> 3);
    const uint8_t *w = (const uint8_t *)W->data;
#define CASE_Q(T)                                                                                  \
    case T: AL_CUDA_TRY(al_launch(c, k_dequant_f16<T>, al_cdiv(n, 256), 256, 0, w, W->row_bytes, W->k, r0, nr, out), "launch k_dequant_f16"); break;
    switch (W->type) {
        AL_CUDA_QUANT_TYPES(CASE_Q)
    default: return al_err(AL_ERR_UNSUPPORTED, "cuda dequant: type %s", al_type_name(W->type));
    }
#undef CASE_Q
    AL_CUDA_LAUNCHED("dequant_f16");
}

static al_status blas_status(cublasStatus_t s, const char *what) {
    return s == CUBLAS_STATUS_SUCCESS ? al_ok() : al_err(AL_ERR_IO, "cuda: %s failed (cublas status %d)", what, (int)s);
}

static al_status check_mm(const al_cuda_weight *W, int64_t ldx, int64_t ldy, int64_t m) {
    if (!W || !W->data) return al_err(AL_ERR_INVALID, "cuda matmul: no weight");
    if (m < 0 || ldx < W->k || ldy < W->n_out) return al_err(AL_ERR_INVALID, "cuda matmul: bad strides");
    if (!al_cuda_type_supported(W->type)) return al_err(AL_ERR_UNSUPPORTED, "cuda matmul: type %s", al_type_name(W->type));
    return al_ok();
}

extern "C" al_status al_cuda_matmul(al_cuda *c, const al_cuda_weight *W, const float *X, int64_t ldx, float *Y, int64_t ldy,
                                    int64_t m) {
    AL_TRY(check_mm(W, ldx, ldy, m));
    if (m == 0) return al_ok();
    if (m <= 4) return mmv_launch(c, W, NULL, X, ldx, 1, Y, ldy, (int)m);
    const float one = 1.0f, zero = 0.0f;
    const int K = (int)W->k, M = (int)m;
    if (W->type == AL_TYPE_F32)
        return blas_status(cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)W->n_out, M, K, &one, (const float *)W->data, K,
                                       X, (int)ldx, &zero, Y, (int)ldy),
                           "sgemm");
    if (W->type == AL_TYPE_BF16) {
        void *s;
        AL_TRY(al_cuda_scratch(c, sizeof(__nv_bfloat16) * (size_t)(m * W->k), &s));
        AL_CUDA_TRY(al_launch(c, k_to_bf16, al_cdiv(m * W->k, 256), 256, 0, X, ldx, m, W->k, (__nv_bfloat16 *)s), "launch k_to_bf16");
        AL_TRY(al_cuda_status(cudaGetLastError(), "to_bf16"));
        return blas_status(cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)W->n_out, M, K, &one, W->data, CUDA_R_16BF, K,
                                        s, CUDA_R_16BF, K, &zero, Y, CUDA_R_32F, (int)ldy, CUBLAS_COMPUTE_32F,
                                        CUBLAS_GEMM_DEFAULT),
                           "gemm bf16");
    }
    /* F16 or quantized: X -> F16; quantized W dequantized in chunks of rows into scratch */
    const size_t xh = (size_t)(m * W->k);
    int64_t chunk = W->n_out;
    if (W->type != AL_TYPE_F16) {
        const size_t budget = (size_t)32 << 20; /* halves of dequantized weights per chunk */
        chunk = (int64_t)(budget / (size_t)W->k);
        if (chunk < 256) chunk = 256;
        if (chunk > W->n_out) chunk = W->n_out;
    }
    const size_t wh = W->type == AL_TYPE_F16 ? 0 : (size_t)chunk * (size_t)W->k;
    void *s;
    AL_TRY(al_cuda_scratch(c, sizeof(__half) * (xh + wh) + 256, &s));
    __half *x16 = (__half *)s;
    __half *w16 = (__half *)s + ((xh + 127) & ~(size_t)127);
    AL_CUDA_TRY(al_launch(c, k_to_f16, al_cdiv(m * W->k, 256), 256, 0, X, ldx, m, W->k, x16), "launch k_to_f16");
    AL_TRY(al_cuda_status(cudaGetLastError(), "to_f16"));
    for (int64_t r0 = 0; r0 < W->n_out; r0 += chunk) {
        const int64_t nr = W->n_out - r0 < chunk ? W->n_out - r0 : chunk;
        const void *A;
        if (W->type == AL_TYPE_F16) A = W->data;
        else {
            AL_TRY(dequant_f16(c, W, r0, nr, w16));
            A = w16;
        }
        AL_TRY(blas_status(cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)nr, M, K, &one, A, CUDA_R_16F, K, x16,
                                        CUDA_R_16F, K, &zero, Y + r0, CUDA_R_32F, (int)ldy, CUBLAS_COMPUTE_32F,
                                        CUBLAS_GEMM_DEFAULT),
                           "gemm f16"));
    }
    return al_ok();
}

extern "C" al_status al_cuda_matmul_id(al_cuda *c, const al_cuda_weight *W, const float *X, int64_t ldx, bool x_per_id,
                                       float *Y, int64_t ldy, const int32_t *ids, int n_ids) {
    AL_TRY(check_mm(W, x_per_id ? ldx : W->k, ldy, n_ids));
    if (!ids) return al_err(AL_ERR_INVALID, "cuda matmul_id: no ids");
    if (n_ids == 0) return al_ok();
    return mmv_launch(c, W, ids, X, ldx, x_per_id ? 1 : 0, Y, ldy, n_ids);
}

extern "C" al_status al_cuda_get_rows(al_cuda *c, const al_cuda_weight *W, const int32_t *ids, int64_t n, float *out,
                                      int64_t ldo) {
    if (!W || !W->data || ldo < W->k) return al_err(AL_ERR_INVALID, "cuda get_rows: bad arguments");
    if (n == 0) return al_ok();
    const uint8_t *w = (const uint8_t *)W->data;
#define CASE_Q(T)                                                                                  \
    case T:                                                                                        \
        AL_CUDA_TRY(al_launch(c, k_get_rows_q<T>, dim3(al_cdiv(W->k >> 3, 128), (unsigned)n), 128, 0, w, W->row_bytes, W->k, ids, out, ldo), "launch k_get_rows_q"); \
        break;
#define CASE_F(T)                                                                                  \
    case T:                                                                                        \
        AL_CUDA_TRY(al_launch(c, k_get_rows_f<T>, dim3(al_cdiv(W->k, 128), (unsigned)n), 128, 0, w, W->row_bytes, W->k, ids, out, ldo), "launch k_get_rows_f"); \
        break;
    switch (W->type) {
        AL_CUDA_QUANT_TYPES(CASE_Q)
        AL_CUDA_FLOAT_TYPES(CASE_F)
    default: return al_err(AL_ERR_UNSUPPORTED, "cuda get_rows: type %s", al_type_name(W->type));
    }
#undef CASE_Q
#undef CASE_F
    AL_CUDA_LAUNCHED("get_rows");
}

extern "C" al_status al_cuda_matmul_n(al_cuda *c, const al_cuda_weight *const *W, int n, const float *X, int64_t ldx,
                                      float *const *Y, int64_t m) {
    if (n < 1 || n > 4) return al_err(AL_ERR_INVALID, "cuda matmul_n: %d weights", n);
    bool same = true, all_mmq = true;
    for (int i = 0; i < n; i++) {
        AL_TRY(check_mm(W[i], ldx, W[i]->n_out, m));
        if (W[i]->type != W[0]->type || W[i]->k != W[0]->k) same = false;
        if (!mmq_ok(W[i]) || W[i]->k != W[0]->k) all_mmq = false;
    }
    if (m == 1 && all_mmq) { /* one launch, types may differ */
        al_cuda_vec_in in;
        memset(&in, 0, sizeof in);
        in.x = X;
        return al_cuda_matvec_n(c, W, n, &in, Y);
    }
    if (!(m == 1 && same && al_type_traits_get(W[0]->type)->is_quantized)) {
        for (int i = 0; i < n; i++) AL_TRY(al_cuda_matmul(c, W[i], X, ldx, Y[i], W[i]->n_out, m));
        return al_ok();
    }
    mmv_multi mm;
    memset(&mm, 0, sizeof mm);
    mm.n = n;
    int64_t v = 0;
    for (int i = 0; i < n; i++) {
        mm.w[i] = (const uint8_t *)W[i]->data;
        mm.row_bytes[i] = W[i]->row_bytes;
        mm.y[i] = Y[i];
        mm.beg[i] = (v + MMV_RPW - 1) / MMV_RPW * MMV_RPW;
        mm.end[i] = v = mm.beg[i] + W[i]->n_out;
    }
    const unsigned grid = al_cdiv(v, MMV_RPW);
    const dim3 block(32, MMV_ROWS);
#define CASE_Q(T) case T: AL_CUDA_TRY(al_launch(c, k_mmv_multi<T>, grid, block, 0, mm, W[0]->k, X), "launch k_mmv_multi"); break;
    switch (W[0]->type) {
        AL_CUDA_QUANT_TYPES(CASE_Q)
    default: return al_err(AL_ERR_UNSUPPORTED, "cuda matmul_n: type %s", al_type_name(W[0]->type));
    }
#undef CASE_Q
    AL_CUDA_LAUNCHED("mmv_multi");
}

static al_status vec_in_args(const al_cuda_weight *const *W, int n, const al_cuda_vec_in *in, mmq_args *a) {
    memset(a, 0, sizeof *a);
    for (int i = 0; i < n; i++) {
        if (!W[i] || !W[i]->data) return al_err(AL_ERR_INVALID, "cuda matvec: no weight");
        if (!mmq_ok(W[i]) || W[i]->k != W[0]->k || (in->norm && W[i]->k > MMQ_MAX_K_NORM))
            return al_err(AL_ERR_UNSUPPORTED, "cuda matvec: no integer kernel for %s, k %lld", al_type_name(W[i]->type),
                          (long long)W[i]->k);
    }
    if (in->norm && in->d && (!in->h_out || in->h_out == in->h || in->h_out == in->d))
        return al_err(AL_ERR_INVALID, "cuda matvec: h_out missing or aliasing its inputs");
    if (in->norm && in->z && in->d) return al_err(AL_ERR_INVALID, "cuda matvec: both a gate and a residual");
    const int64_t group = in->norm && in->z && in->group > 0 ? in->group : W[0]->k;
    if (in->norm && (W[0]->k % group || group % 32 || W[0]->k / group > MMQ_MAX_GROUPS))
        return al_err(AL_ERR_UNSUPPORTED, "cuda matvec: norm group %lld of k %lld", (long long)group, (long long)W[0]->k);
    if (!in->norm && !in->x) return al_err(AL_ERR_INVALID, "cuda matvec: no input");
    if (in->norm && (((uintptr_t)in->h | (uintptr_t)in->d | (uintptr_t)in->z | (uintptr_t)in->h_out) & 15))
        return al_err(AL_ERR_UNSUPPORTED, "cuda matvec: fused norm needs 16-byte aligned vectors");
    a->k = W[0]->k;
    a->h = in->h;
    a->d = in->d;
    a->z = in->z;
    a->group = group;
    a->nw = in->norm;
    a->h_out = in->h_out;
    a->eps = in->eps;
    return al_ok();
}

extern "C" al_status al_cuda_matvec_n(al_cuda *c, const al_cuda_weight *const *W, int n, const al_cuda_vec_in *in,
                                      float *const *Y) {
    if (n < 1 || n > 4) return al_err(AL_ERR_INVALID, "cuda matvec_n: %d weights", n);
    mmq_args a;
    AL_TRY(vec_in_args(W, n, in, &a));
    a.n = n;
    int64_t v = 0;
    for (int i = 0; i < n; i++) {
        a.w[i] = (const uint8_t *)W[i]->data;
        a.row_bytes[i] = (int64_t)W[i]->row_bytes;
        a.y[i] = Y[i];
        a.type[i] = W[i]->type;
        a.beg[i] = (v + MMQ_R - 1) / MMQ_R * MMQ_R;
        a.end[i] = v = a.beg[i] + W[i]->n_out;
    }
    return mmq_launch(c, &a, in->x, W[0]->k, 1);
}

extern "C" al_status al_cuda_matvec_glu(al_cuda *c, al_cuda_act_kind act, const al_cuda_weight *Wg, const al_cuda_weight *Wu,
                                        const al_cuda_vec_in *in, float *Y) {
    const al_cuda_weight *W[2] = {Wg, Wu};
    mmq_args a;
    AL_TRY(vec_in_args(W, 2, in, &a));
    if (Wg->type != Wu->type || Wg->n_out != Wu->n_out || Wg->row_bytes != Wu->row_bytes)
        return al_err(AL_ERR_UNSUPPORTED, "cuda matvec_glu: gate and up differ in type or shape");
    a.n = 1;
    a.glu = 1 + (int)act;
    a.w[0] = (const uint8_t *)Wg->data;
    a.w[1] = (const uint8_t *)Wu->data;
    a.row_bytes[0] = a.row_bytes[1] = (int64_t)Wg->row_bytes;
    a.type[0] = a.type[1] = Wg->type;
    a.y[0] = Y;
    a.end[0] = Wg->n_out;
    return mmq_launch(c, &a, in->x, Wg->k, 1);
}
