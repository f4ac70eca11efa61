/*
 * mmq_kernel.cuh (internal) — the block-level integer matrix-vector product shared by k_mmq
 * (matmul.cu, one launch per product) and the persistent decode kernel (persist.cu, one launch per
 * token): the argument struct, the device function doing one block's share of the rows, and the host
 * helpers that validate weights and fill the arguments.
 */
#ifndef ALLOY_CUDA_MMQ_KERNEL_CUH
#define ALLOY_CUDA_MMQ_KERNEL_CUH

#include <string.h>

#include "alloy/quant.h"
#include "cuda/mmq.cuh"

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
    int act;                /* 0, or 1 + al_cuda_act_kind applied to every output (not with glu) */
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

/* A block of 4 warps = 4 / g groups of g warps, each group MMQ_R rows (glu: one output row = the pair
 * gate row, up row) per step; the block strides over groups of rows (nbx * ngrp apart), so the
 * activation row j is quantized once per block into shared memory (int8 blocks of 32 +
 * scales, mmq.cuh) — with the fused pre-norm computed there too. Matrices may differ in type
 * (uniform per group). mmq_prefetch_first puts the block's first weight rows into L2 (called before
 * waiting for the inputs: PDL in k_mmq, the grid barrier in the persistent kernel); each step
 * prefetches the next step's rows. */
static __device__ __forceinline__ void mmq_prefetch_first(const mmq_args &a, int g, int bx, int tid) {
    const int warp = tid >> 5, lane = tid & 31, ngrp = 4 / g, grp = warp / g, wig = warp - grp * g;
    const uint8_t *w0;
    int64_t rb0, vr0;
    const int in = mmq_rows(a, (int64_t)bx * ngrp + grp, a.glu ? 1 : MMQ_R, &w0, &rb0, &vr0);
    if (wig == 0 && lane == 0) mmq_prefetch(a, w0, rb0, in >> 8);
}

/* the block's input for activation row j: (fused pre-norm and) int8 quantization into xq[k] + scales
 * xd[k / 32] at the start of mmq_sh (mmq_smem bytes); ends with __syncthreads. bx: block index (block 0
 * stores the residual sum h_out). */
static __device__ void mmq_input(const mmq_args &a, int bx, int j, int tid, uint8_t *mmq_sh) {
    __shared__ float ginv[MMQ_MAX_GROUPS], gpart[4][MMQ_MAX_GROUPS];
    const int warp = tid >> 5, lane = tid & 31;
    const int64_t k = a.k, nb = k >> 5;
    int8_t *xq = (int8_t *)mmq_sh;
    float *xd = (float *)(mmq_sh + ((k + 15) & ~(int64_t)15));
    const float *src = a.x + (a.x_per_j ? (int64_t)j * a.ldx : 0);
    if (a.nw) { /* v into shared memory, then 1 / rms per group */
        float *xf = (float *)(mmq_sh + ((k + 15) & ~(int64_t)15) + ((sizeof(float) * nb + 15) & ~(size_t)15));
        const bool store = a.d && bx == 0 && j == 0;
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
     * a warp 4 blocks per step; the loads of 4 steps are issued before any of them is used (one
     * memory round trip per 4 steps, not per step) */
    const bool v4 = ((uintptr_t)src & 15) == 0, n4 = a.nw && ((uintptr_t)a.nw & 15) == 0;
    for (int64_t b00 = (int64_t)warp * 4; b00 < nb; b00 += 64) {
        float4 vv[4], ww[4];
#pragma unroll
        for (int u = 0; u < 4; u++) {
            const int64_t b = b00 + 16 * u + (lane >> 3), e = 32 * b + 4 * (lane & 7);
            vv[u] = ww[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (b < nb) {
                vv[u] = v4 ? *(const float4 *)(src + e) : make_float4(src[e], src[e + 1], src[e + 2], src[e + 3]);
                if (a.nw) ww[u] = n4 ? *(const float4 *)(a.nw + e) : make_float4(a.nw[e], a.nw[e + 1], a.nw[e + 2], a.nw[e + 3]);
            }
        }
#pragma unroll
        for (int u = 0; u < 4; u++) {
            const int64_t b = b00 + 16 * u + (lane >> 3), e = 32 * b + 4 * (lane & 7);
            float4 v = vv[u];
            if (a.nw && b < nb) { /* e .. e + 3 lie in one group (group % 32 == 0) */
                const float inv = ginv[e / a.group];
                v.x = (v.x * inv) * ww[u].x, v.y = (v.y * inv) * ww[u].y;
                v.z = (v.z * inv) * ww[u].z, v.w = (v.w * inv) * ww[u].w;
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
    }
    __syncthreads();
}

/* one step of a row group: in (mmq_rows: matrix | rows << 8), rows from w rb bytes apart, output row
 * vrow; the g warps of the group reduce and the first stores. Every warp of the block calls it the
 * same number of times (g > 1: __syncthreads). */
static __device__ __forceinline__ void mmq_step(const mmq_args &a, int g, int j, int tid, const uint8_t *w, int64_t rb, int in,
                                                int64_t vrow, const int8_t *xq, const float *xd) {
    __shared__ float red[4][MMQ_R];
    const int warp = tid >> 5, lane = tid & 31, grp = warp / g, wig = warp - grp * g;
    const int64_t k = a.k;
    const int i = in & 0xff, nr = in >> 8;
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
                y[0] = a.act ? al_act_f(a.act - 1, s0) : s0;
                if (nr > 1) y[1] = a.act ? al_act_f(a.act - 1, s1) : s1;
            }
        }
    }
}

/* the share of block bx of nbx for activation row j: groups bx * ngrp + grp + s * nbx * ngrp; tid =
 * 0..127 (4 warps); mmq_sh: dynamic shared memory of mmq_smem bytes */
static __device__ void mmq_block(const mmq_args &a, int g, int bx, int nbx, int j, int tid, uint8_t *mmq_sh) {
    const int warp = tid >> 5, lane = tid & 31, ngrp = 4 / g, grp = warp / g, wig = warp - grp * g;
    const int rpg = a.glu ? 1 : MMQ_R; /* output rows per group */
    const int64_t nvg = (a.end[a.n - 1] + rpg - 1) / rpg, vstep = (int64_t)nbx * ngrp;
    mmq_input(a, bx, j, tid, mmq_sh);
    const int8_t *xq = (const int8_t *)mmq_sh;
    const float *xd = (const float *)(mmq_sh + ((a.k + 15) & ~(int64_t)15));
    for (int64_t vg = (int64_t)bx * ngrp + grp; vg - grp < nvg; vg += vstep) {
        const uint8_t *w;
        int64_t rb, vrow;
        const int in = mmq_rows(a, vg, rpg, &w, &rb, &vrow);
        if (wig == 0 && lane == 0 && vg + vstep < nvg) {
            const uint8_t *wn;
            int64_t rbn, vrn;
            const int inn = mmq_rows(a, vg + vstep, rpg, &wn, &rbn, &vrn);
            mmq_prefetch(a, wn, rbn, inn >> 8);
        }
        mmq_step(a, g, j, tid, w, rb, in, vrow, xq, xd);
    }
}

#define MMQ_MAX_K 40000 /* shared memory: k + k / 8 bytes of quantized activations, under 48 KiB */
#define MMQ_MAX_K_NORM 8192 /* with the fused pre-norm: + 4 k bytes */

/* dynamic shared memory of mmq_block for a */
static inline size_t mmq_smem(const mmq_args *a) {
    const int64_t k = a->k;
    size_t smem = (size_t)((k + 15) & ~(int64_t)15) + (((size_t)(k >> 5) * sizeof(float) + 15) & ~(size_t)15);
    if (a->nw) smem += sizeof(float) * (size_t)k;
    return smem;
}
/* warps per group of rows (g of mmq_block) for k */
static inline int mmq_warps(int64_t k) {
    const int64_t nch = k >> 5;
    return nch >= 256 ? 4 : nch >= 128 ? 2 : 1;
}

static inline bool mmq_ok(const al_cuda_weight *W) {
    if (W->k > MMQ_MAX_K) return false;
    return (al_cuda_mmq_type(W->type) && W->k % 256 == 0) || (W->type == AL_TYPE_Q8_0 && W->k % 32 == 0);
}

static inline al_status vec_in_args(const al_cuda_weight *const *W, int n, const al_cuda_vec_in *in, mmq_args *a) {
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

/* a for Y[i] = x·W[i]ᵀ (i < n, one launch, types may differ) with the input of in */
static inline al_status mmq_args_n(const al_cuda_weight *const *W, int n, const al_cuda_vec_in *in, float *const *Y, mmq_args *a) {
    memset(a, 0, sizeof *a);
    if (n < 1 || n > 4) return al_err(AL_ERR_INVALID, "cuda matvec_n: %d weights", n);
    AL_TRY(vec_in_args(W, n, in, a));
    a->n = n;
    a->x = in->x;
    a->ldx = W[0]->k;
    int64_t v = 0;
    for (int i = 0; i < n; i++) {
        a->w[i] = (const uint8_t *)W[i]->data;
        a->row_bytes[i] = (int64_t)W[i]->row_bytes;
        a->y[i] = Y[i];
        a->type[i] = W[i]->type;
        a->beg[i] = (v + MMQ_R - 1) / MMQ_R * MMQ_R;
        a->end[i] = v = a->beg[i] + W[i]->n_out;
    }
    return al_ok();
}

/* a for Y = act(x·Wᵀ) */
static inline al_status mmq_args_act(al_cuda_act_kind act, const al_cuda_weight *W, const al_cuda_vec_in *in, float *Y,
                                     mmq_args *a) {
    AL_TRY(mmq_args_n(&W, 1, in, &Y, a));
    a->act = 1 + (int)act;
    return al_ok();
}

/* a for Y = act(x·Wgᵀ) ⊙ (x·Wuᵀ) */
static inline al_status mmq_args_glu(al_cuda_act_kind act, const al_cuda_weight *Wg, const al_cuda_weight *Wu,
                                     const al_cuda_vec_in *in, float *Y, mmq_args *a) {
    const al_cuda_weight *W[2] = {Wg, Wu};
    AL_TRY(vec_in_args(W, 2, in, a));
    if (Wg->type != Wu->type || Wg->n_out != Wu->n_out || Wg->row_bytes != Wu->row_bytes)
        return al_err(AL_ERR_UNSUPPORTED, "cuda matvec_glu: gate and up differ in type or shape");
    a->n = 1;
    a->glu = 1 + (int)act;
    a->w[0] = (const uint8_t *)Wg->data;
    a->w[1] = (const uint8_t *)Wu->data;
    a->row_bytes[0] = a->row_bytes[1] = (int64_t)Wg->row_bytes;
    a->type[0] = a->type[1] = Wg->type;
    a->y[0] = Y;
    a->end[0] = Wg->n_out;
    a->x = in->x;
    a->ldx = Wg->k;
    return al_ok();
}

#endif
