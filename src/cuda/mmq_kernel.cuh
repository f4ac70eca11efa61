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

#define MMQ_R 4 /* most weight rows per group of warps (args.R: 2 or 4) */
#define MMQ_MAX_GROUPS 64 /* norm groups of the fused pre-norm */
typedef struct mmq_args {
    const uint8_t *w[4];
    int64_t row_bytes[4];
    float *y[4];
    int64_t beg[4], end[4]; /* virtual row ranges, beg multiple of MMQ_R (glu: output rows of matrix 0) */
    int R;                  /* weight rows per group and step: 2 or 4 (glu: R / 2 output rows, gate and up each) */
    int ahead;              /* a step L2-prefetches the rows of the step this many on (<= 1: the next) */
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
    int h_blk; /* persistent kernel: h is [blocks][k], block bx reads its own row bx (a copy of the embedding) */
    /* persistent kernel, no pre-norm: x is an attention output [n_head][att_hd] that the attention op
     * left split where its keys at position pos span 2 .. MMQ_MERGE_MAX splits of att_ch (window
     * att_win): partial sums att_o[h][s][att_hd] with max and sum att_ml[h][s][2], s < att_ns, merged
     * here (NULL: x is complete) */
    const float *att_o, *att_ml;
    int att_hd, att_ns, att_ch, att_win;
    /* persistent kernel, tagged hand-off (al_cuda_prog_set_tagged, cuda/prog_plan.h): tx / th / td,
     * where set, replace x / h / d by {value, tag} words written by op tag_x / tag_h / tag_d (tags
     * relative to the run's tag0), reloaded until their tags match; ty[i] / th_out (or NULL) receive
     * tagged copies of y[i] (row j = 0) and h_out, with this op's tag tag_y */
    const uint2 *tx, *th, *td;
    uint2 *ty[4], *th_out;
    int tag_x, tag_h, tag_d, tag_y;
    int *tag_fail; /* set to 1 where a wait gave up (MMQ_TAG_SPINS reloads), after which no wait waits */
    int tag_mode;  /* nap ns | MMQ_TAG_GPU (see mmq_ldt) */
    const uint2 *tatt; /* the attention's split partials (att_o, att_ml) as tagged words of op tag_m, or NULL */
    int tag_m;
} mmq_args;

/* tagged words: 16 bytes = two {value, tag} pairs, loaded / stored as one vector access of 32-bit
 * elements (as NCCL's LL protocol: a pair is never seen half written). mode (mmq_args.tag_mode):
 * ns of __nanosleep before each reload in its low bits (MMQ_TAG_NAP), and MMQ_TAG_GPU for gpu-scope
 * relaxed accesses instead of NCCL's volatile (system-scope) ones; uniform across the grid. */
#define MMQ_TAG_NAP 0xFFFF
#define MMQ_TAG_GPU 0x10000
__device__ __forceinline__ uint4 mmq_ldt(const uint2 *p, int mode) {
    uint4 u;
    if (mode & MMQ_TAG_GPU)
        asm volatile("ld.relaxed.gpu.global.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(u.x), "=r"(u.y), "=r"(u.z), "=r"(u.w) : "l"(p) : "memory");
    else
        asm volatile("ld.volatile.global.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(u.x), "=r"(u.y), "=r"(u.z), "=r"(u.w) : "l"(p) : "memory");
    return u;
}
#define MMQ_TAG_SPINS (1u << 18) /* ~0.2 s of reloads: a word that never comes is a bug, not a hang */
/* whether a wait of n reloads so far gives up (checks the shared flag every 1024) */
__device__ __forceinline__ bool mmq_tag_give_up(int *fail, unsigned n) {
    if (n & 1023u) return false;
    if (n >= MMQ_TAG_SPINS || *(volatile int *)fail) {
        *(volatile int *)fail = 1;
        return true;
    }
    return false;
}
__device__ __forceinline__ void mmq_tag_nap(int mode) {
    if (mode & MMQ_TAG_NAP) __nanosleep((unsigned)(mode & MMQ_TAG_NAP));
}
/* the two floats of the 16-byte word w (as first loaded: a), reloaded until both carry tag */
__device__ __forceinline__ float2 mmq_tagged2p(const uint2 *w, unsigned tag, uint4 a, int *fail, int mode) {
    unsigned n = 0;
    while ((a.y != tag || a.w != tag) && !mmq_tag_give_up(fail, ++n)) {
        mmq_tag_nap(mode);
        a = mmq_ldt(w, mode);
    }
    return make_float2(__uint_as_float(a.x), __uint_as_float(a.z));
}
/* float4 i of a tagged vector p, given its two 16-byte words a, b as first loaded: reloaded until
 * both carry tag */
__device__ __forceinline__ float4 mmq_tagged4(const uint2 *p, int64_t i, unsigned tag, uint4 a, uint4 b, int *fail, int mode) {
    const float2 lo = mmq_tagged2p(p + 4 * i, tag, a, fail, mode), hi = mmq_tagged2p(p + 4 * i + 2, tag, b, fail, mode);
    return make_float4(lo.x, lo.y, hi.x, hi.y);
}
/* one tagged word: the float at p, reloaded until its tag is tag (first: as first loaded) */
__device__ __forceinline__ uint2 mmq_ldt1(const uint2 *p, int mode) {
    uint2 u;
    if (mode & MMQ_TAG_GPU) asm volatile("ld.relaxed.gpu.global.v2.u32 {%0, %1}, [%2];" : "=r"(u.x), "=r"(u.y) : "l"(p) : "memory");
    else asm volatile("ld.volatile.global.v2.u32 {%0, %1}, [%2];" : "=r"(u.x), "=r"(u.y) : "l"(p) : "memory");
    return u;
}
__device__ __forceinline__ float mmq_tagged1(const uint2 *p, unsigned tag, uint2 first, int *fail, int mode) {
    unsigned n = 0;
    while (first.y != tag && !mmq_tag_give_up(fail, ++n)) {
        mmq_tag_nap(mode);
        first = mmq_ldt1(p, mode);
    }
    return __uint_as_float(first.x);
}
__device__ __forceinline__ void mmq_stt(uint2 *p, float v, unsigned tag, int mode) {
    if (mode & MMQ_TAG_GPU) asm volatile("st.relaxed.gpu.global.v2.u32 [%0], {%1, %2};" ::"l"(p), "r"(__float_as_uint(v)), "r"(tag) : "memory");
    else asm volatile("st.volatile.global.v2.u32 [%0], {%1, %2};" ::"l"(p), "r"(__float_as_uint(v)), "r"(tag) : "memory");
}
__device__ __forceinline__ void mmq_stt2(uint2 *p, float v0, float v1, unsigned tag, int mode) {
    if (mode & MMQ_TAG_GPU)
        asm volatile("st.relaxed.gpu.global.v4.u32 [%0], {%1, %2, %3, %4};" ::"l"(p), "r"(__float_as_uint(v0)), "r"(tag),
                     "r"(__float_as_uint(v1)), "r"(tag)
                     : "memory");
    else
        asm volatile("st.volatile.global.v4.u32 [%0], {%1, %2, %3, %4};" ::"l"(p), "r"(__float_as_uint(v0)), "r"(tag),
                     "r"(__float_as_uint(v1)), "r"(tag)
                     : "memory");
}

#define MMQ_MERGE_MAX 4

/* the first key an attention at position pos attends to (sliding window win, 0: none) */
__host__ __device__ __forceinline__ int mmq_att_first(int pos, int win) { return win > 0 && pos - win + 1 > 0 ? pos - win + 1 : 0; }
/* the live key splits of an attention at position pos: first s0, count (return) */
__host__ __device__ __forceinline__ int mmq_att_live(int pos, int ch, int win, int *s0) {
    *s0 = mmq_att_first(pos, win) / ch;
    return pos / ch - *s0 + 1;
}

/* float4 i of the merged attention output (att_o set, nl live splits from s0) */
__device__ __forceinline__ float4 mmq_att_merge4(const mmq_args &a, int64_t i, int s0, int nl) {
    const int64_t e = 4 * i, h = e / a.att_hd, d = e - h * a.att_hd;
    const float *o = a.att_o + (h * a.att_ns + s0) * a.att_hd + d, *ml = a.att_ml + (h * a.att_ns + s0) * 2;
    float4 ov[MMQ_MERGE_MAX];
    float2 mv[MMQ_MERGE_MAX];
#pragma unroll
    for (int s = 0; s < MMQ_MERGE_MAX; s++) /* every load first */
        if (s < nl) ov[s] = __ldcg((const float4 *)(o + (int64_t)s * a.att_hd)), mv[s] = __ldcg((const float2 *)(ml + 2 * s));
    float M = mv[0].x;
#pragma unroll
    for (int s = 1; s < MMQ_MERGE_MAX; s++)
        if (s < nl) M = fmaxf(M, mv[s].x);
    float L = 0.0f;
    float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
    for (int s = 0; s < MMQ_MERGE_MAX; s++)
        if (s < nl) { /* every split holds a key: its max is finite */
            const float w = expf(mv[s].x - M);
            L = fmaf(mv[s].y, w, L);
            acc.x = fmaf(ov[s].x, w, acc.x), acc.y = fmaf(ov[s].y, w, acc.y);
            acc.z = fmaf(ov[s].z, w, acc.z), acc.w = fmaf(ov[s].w, w, acc.w);
        }
    const float inv = 1.0f / L;
    return make_float4(acc.x * inv, acc.y * inv, acc.z * inv, acc.w * inv);
}

/* mmq_att_merge4 from the tagged copy of the partials (a.tatt, the same offsets as att_o / att_ml): a
 * round trip per live split (the words of two at once made k_persist spill), folded online into the
 * running max M, sum L and acc */
__device__ __forceinline__ float4 mmq_att_merge4t(const mmq_args &a, int64_t i, int s0, int nl, unsigned tag) {
    const int64_t e = 4 * i, h = e / a.att_hd, d = e - h * a.att_hd;
    const uint2 *o = a.tatt + (h * a.att_ns + s0) * a.att_hd + d, *ml = a.tatt + (a.att_ml - a.att_o) + (h * a.att_ns + s0) * 2;
    float M = -INFINITY, L = 0.0f;
    float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll 1
    for (int s = 0; s < nl; s++) {
        const uint2 *os = o + (int64_t)s * a.att_hd;
        const uint4 w0 = mmq_ldt(os, a.tag_mode), w1 = mmq_ldt(os + 2, a.tag_mode), wm = mmq_ldt(ml + 2 * s, a.tag_mode);
        const float2 lo = mmq_tagged2p(os, tag, w0, a.tag_fail, a.tag_mode), hi = mmq_tagged2p(os + 2, tag, w1, a.tag_fail, a.tag_mode);
        const float2 mv = mmq_tagged2p(ml + 2 * s, tag, wm, a.tag_fail, a.tag_mode);
        const float mn = fmaxf(M, mv.x), co = expf(M - mn), cn = expf(mv.x - mn); /* every split has a key: mv.x finite */
        L = L * co + mv.y * cn;
        acc = make_float4(acc.x * co + lo.x * cn, acc.y * co + lo.y * cn, acc.z * co + hi.x * cn, acc.w * co + hi.y * cn);
        M = mn;
    }
    const float inv = 1.0f / L;
    return make_float4(acc.x * inv, acc.y * inv, acc.z * inv, acc.w * inv);
}

/* weight type sets of mmq_products: Q8_0 and Q4_K / Q5_K / Q6_K; + the 32-element block types and
 * IQ4_XS; + Q2_K and Q3_K (k_mmq only) */
enum { MMQ_TS_CORE, MMQ_TS_EXT, MMQ_TS_ALL };
static inline int mmq_type_set(int t) {
    return t == AL_TYPE_Q8_0 || t == AL_TYPE_Q4_K || t == AL_TYPE_Q5_K || t == AL_TYPE_Q6_K ? MMQ_TS_CORE
           : t == AL_TYPE_Q2_K || t == AL_TYPE_Q3_K                                          ? MMQ_TS_ALL
                                                                                             : MMQ_TS_EXT;
}

template <int T, int R>
__device__ __forceinline__ void mmq_loop(const uint8_t *w, int64_t rb, int64_t rb2, int nr, int64_t k, int first, int step,
                                         const int8_t *xq, const float *xd, float *acc) {
    const int nch = (int)(k / al_mmq<T>::chunk);
    int c = first;
    for (; c + step < nch; c += 2 * step) { /* two chunks, no branch between them: their loads in flight together */
        al_mmq<T>::template dot<R>(w, rb, rb2, nr, c, k, xq, xd, acc);
        al_mmq<T>::template dot<R>(w, rb, rb2, nr, c + step, k, xq, xd, acc);
    }
    if (c < nch) al_mmq<T>::template dot<R>(w, rb, rb2, nr, c, k, xq, xd, acc);
}

/* output rows per group */
__device__ __forceinline__ int mmq_rpg(const mmq_args &a) { return a.glu ? a.R / 2 : a.R; }
/* log2 of g (warps per group: 1, 2 or 4): shifts instead of divisions by a run-time g */
__device__ __forceinline__ int mmq_lg(int g) { return g >> 1 == 2 ? 2 : g >> 1; }

/* the rows of virtual group vg: matrix i, first row pointer, weight rows nr (0: none) at
 * al_mmq_row(r, rb, rb2) (glu: gate and up rows pair up) */
__device__ __forceinline__ int mmq_rows(const mmq_args &a, int64_t vg, const uint8_t **w, int64_t *rb, int64_t *rb2,
                                        int64_t *vrow) {
    *vrow = vg * mmq_rpg(a);
    int i = 0;
    while (i < a.n - 1 && *vrow >= a.end[i]) i++;
    *w = NULL;
    *rb = a.row_bytes[i];
    *rb2 = 2 * a.row_bytes[i];
    if (*vrow < a.beg[i] || *vrow >= a.end[i]) return i; /* no rows */
    const int64_t left = a.end[i] - *vrow, rpg = mmq_rpg(a);
    const int nout = left < rpg ? (int)left : (int)rpg;
    *w = a.w[i] + (size_t)(*vrow - a.beg[i]) * a.row_bytes[i];
    if (a.glu) *rb = (int64_t)(a.w[1] - a.w[0]), *rb2 = a.row_bytes[0];
    return i | ((a.glu ? 2 * nout : nout) << 8);
}

__device__ __forceinline__ void mmq_prefetch(const mmq_args &a, const uint8_t *w, int64_t rb, int nr) {
    if (!w || a.ids) return;
    if (a.glu) {
        al_prefetch_l2(w, (size_t)(nr / 2) * (size_t)a.row_bytes[0]);
        al_prefetch_l2(w + rb, (size_t)(nr / 2) * (size_t)a.row_bytes[0]);
    } else {
        al_prefetch_l2(w, (size_t)nr * (size_t)rb);
    }
}

/* A block of 4 warps = 4 / g groups of g warps, each group a.R weight rows per step (glu: a.R / 2
 * output rows, each the pair gate row, up row; R = 4 puts twice the loads in flight per warp); the block strides over groups of rows (nbx * ngrp apart), so the
 * activation row j is quantized once per block into shared memory (int8 blocks of 32 +
 * scales, mmq.cuh) — with the fused pre-norm computed there too. Matrices may differ in type
 * (uniform per group). mmq_prefetch_first puts the block's first weight rows into L2 (called before
 * waiting for the inputs: PDL in k_mmq, the grid barrier in the persistent kernel); each step
 * prefetches the rows of the step a.ahead on (the first step those of every step up to there). */
static __device__ __forceinline__ void mmq_prefetch_first(const mmq_args &a, int g, int bx, int tid) {
    const int lg = mmq_lg(g), warp = tid >> 5, lane = tid & 31, ngrp = 4 >> lg, grp = warp >> lg, wig = warp & (g - 1);
    const uint8_t *w0;
    int64_t rb0, rb20, vr0;
    const int in = mmq_rows(a, (int64_t)bx * ngrp + grp, &w0, &rb0, &rb20, &vr0);
    if (wig == 0 && lane == 0) mmq_prefetch(a, w0, rb0, in >> 8);
}

/* a barrier of the threads working on one share of a product: id 0 = __syncthreads (the block is the
 * share), else named barrier id of the share's 128 threads (a sub-block of the persistent kernel) */
__device__ __forceinline__ void mmq_bar(int id) {
    if (id == 0) __syncthreads();
    else asm volatile("bar.sync %0, 128;" ::"r"(id) : "memory");
}

/* int8 quantization of float4 i of a row held by a lane (8 lanes of an aligned group form a block of
 * 32): xq[4i .. 4i + 4), scale xd[i / 8] = max|block| / 127; every lane of the warp calls it (ok:
 * whether lane's i is in the row) */
__device__ __forceinline__ void mmq_q8(float4 v, int64_t i, bool ok, int8_t *xq, float *xd) {
    float m = fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w)));
    m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 1));
    m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 2));
    m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, 4));
    if (!ok) return;
    const float sc = m > 0.0f ? 127.0f / m : 0.0f;
    char4 q;
    q.x = (signed char)__float2int_rn(v.x * sc);
    q.y = (signed char)__float2int_rn(v.y * sc);
    q.z = (signed char)__float2int_rn(v.z * sc);
    q.w = (signed char)__float2int_rn(v.w * sc);
    *(char4 *)(xq + 4 * i) = q;
    if ((i & 7) == 0) xd[i >> 3] = m / 127.0f;
}
__device__ __forceinline__ float4 mmq_ld4(const float *p, int64_t i, bool aligned) {
    return aligned ? ((const float4 *)p)[i] : make_float4(p[4 * i], p[4 * i + 1], p[4 * i + 2], p[4 * i + 3]);
}

/* the block's input for activation row j, by its NT threads (tid < NT): (fused pre-norm and) int8
 * quantization into xq[k] + scales xd[k / 32] at the start of mmq_sh (mmq_smem bytes); ends with
 * __syncthreads. bx: block index (block 0 stores the residual sum h_out). Thread tid takes float4s
 * tid + NT r of the row, and every global load is issued before any is used: one memory round trip
 * (the pre-norm: v = h + d or h * silu(z), v·nw kept in shared memory while the squares are summed,
 * then scaled by 1 / rms of its group and quantized by the same thread). */
template <int NT, bool TAG = false>
static __device__ void mmq_input(const mmq_args &a, int bx, int j, int tid, uint8_t *mmq_sh, int pos = 0, unsigned tag0 = 0) {
    constexpr int NW = NT / 32;
    __shared__ float gsum[MMQ_MAX_GROUPS], wsum[NW];
    const int warp = tid >> 5, lane = tid & 31;
    const int64_t k = a.k, k4 = k >> 2;
    int8_t *xq = (int8_t *)mmq_sh;
    float *xd = (float *)(mmq_sh + ((k + 15) & ~(int64_t)15));
    if (!a.nw) {
        const float *src = a.x + (a.x_per_j ? (int64_t)j * a.ldx : 0);
        const bool v4 = ((uintptr_t)src & 15) == 0;
        int s0 = 0, nl = 1;
        if (a.att_o) nl = mmq_att_live(pos, a.att_ch, a.att_win, &s0);
        if (nl >= 2 && nl <= MMQ_MERGE_MAX) { /* one float4 per round (the merge's loads are several already) */
            for (int64_t b0 = (int64_t)warp * 32; b0 < k4; b0 += NT) {
                const int64_t i = b0 + lane;
                const float4 v = i >= k4 ? make_float4(0.0f, 0.0f, 0.0f, 0.0f)
                                 : TAG && a.tatt ? mmq_att_merge4t(a, i, s0, nl, tag0 + (unsigned)a.tag_m)
                                          : mmq_att_merge4(a, i, s0, nl);
                mmq_q8(v, i, i < k4, xq, xd);
            }
            __syncthreads();
            return;
        }
        if (TAG && a.tx) { /* tagged: the same rounds, each float4 reloaded until its words carry tag_x */
            const unsigned tag = tag0 + (unsigned)a.tag_x;
            for (int64_t b0 = (int64_t)warp * 32; b0 < k4; b0 += 4 * NT) {
                uint4 ra[4], rb[4];
#pragma unroll
                for (int u = 0; u < 4; u++) {
                    const int64_t i = b0 + NT * u + lane;
                    ra[u] = rb[u] = make_uint4(0, 0, 0, 0);
                    if (i < k4) ra[u] = mmq_ldt(a.tx + 4 * i, a.tag_mode), rb[u] = mmq_ldt(a.tx + 4 * i + 2, a.tag_mode);
                }
#pragma unroll
                for (int u = 0; u < 4; u++) {
                    const int64_t i = b0 + NT * u + lane;
                    if (b0 + NT * u < k4)
                        mmq_q8(i < k4 ? mmq_tagged4(a.tx, i, tag, ra[u], rb[u], a.tag_fail, a.tag_mode) : make_float4(0.0f, 0.0f, 0.0f, 0.0f), i, i < k4, xq, xd);
                }
            }
            __syncthreads();
            return;
        }
        for (int64_t b0 = (int64_t)warp * 32; b0 < k4; b0 += 4 * NT) { /* 4 rounds of loads, then their use */
            float4 vv[4];
#pragma unroll
            for (int u = 0; u < 4; u++) {
                const int64_t i = b0 + NT * u + lane;
                vv[u] = i < k4 ? mmq_ld4(src, i, v4) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            }
#pragma unroll
            for (int u = 0; u < 4; u++)
                if (b0 + NT * u < k4) mmq_q8(vv[u], b0 + NT * u + lane, b0 + NT * u + lane < k4, xq, xd); /* warp-uniform */
        }
        __syncthreads();
        return;
    }
    float4 *xf = (float4 *)(mmq_sh + ((k + 15) & ~(int64_t)15) + ((sizeof(float) * (size_t)(k >> 5) + 15) & ~(size_t)15));
    const int ng = (int)(k / a.group);
    if (ng > 1) {
        for (int g = tid; g < ng; g += NT) gsum[g] = 0.0f;
        __syncthreads();
    }
    const bool store = a.d && bx == 0 && j == 0, n4 = ((uintptr_t)a.nw & 15) == 0;
    const float4 *h4 = (const float4 *)(a.h + (a.h_blk ? (int64_t)bx * k : 0)), *o4 = (const float4 *)(a.z ? a.z : a.d); /* 16-byte aligned */
    float ss = 0.0f;
    /* v = h + d (or h * silu(z)) of float4 i: h_out (and its tagged copy), v * nw into xf, squares summed */
    auto item = [&](int64_t i, float4 hv, float4 ov, float4 nv) {
        float4 v;
        if (a.z) v = make_float4(hv.x * al_silu(ov.x), hv.y * al_silu(ov.y), hv.z * al_silu(ov.z), hv.w * al_silu(ov.w));
        else v = make_float4(hv.x + ov.x, hv.y + ov.y, hv.z + ov.z, hv.w + ov.w);
        if (store) {
            ((float4 *)a.h_out)[i] = v;
            if (TAG && a.th_out) {
                mmq_stt2(a.th_out + 4 * i, v.x, v.y, tag0 + (unsigned)a.tag_y, a.tag_mode);
                mmq_stt2(a.th_out + 4 * i + 2, v.z, v.w, tag0 + (unsigned)a.tag_y, a.tag_mode);
            }
        }
        xf[i] = make_float4(v.x * nv.x, v.y * nv.y, v.z * nv.z, v.w * nv.w);
        const float s = v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
        if (ng == 1) ss += s;
        else atomicAdd(&gsum[4 * i / a.group], s);
    };
    if (TAG && (a.th || a.td)) { /* tagged h and / or d: a round per float4, both words of both loaded before any wait */
        const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        for (int64_t i = tid; i < k4; i += NT) {
            uint4 h0 = make_uint4(0, 0, 0, 0), h1 = h0, d0 = h0, d1 = h0;
            float4 hv = zero, ov = zero;
            if (a.th) h0 = mmq_ldt(a.th + 4 * i, a.tag_mode), h1 = mmq_ldt(a.th + 4 * i + 2, a.tag_mode);
            else hv = h4[i];
            if (a.td) d0 = mmq_ldt(a.td + 4 * i, a.tag_mode), d1 = mmq_ldt(a.td + 4 * i + 2, a.tag_mode);
            else if (o4) ov = o4[i];
            const float4 nv = mmq_ld4(a.nw, i, n4);
            if (a.th) hv = mmq_tagged4(a.th, i, tag0 + (unsigned)a.tag_h, h0, h1, a.tag_fail, a.tag_mode);
            if (a.td) ov = mmq_tagged4(a.td, i, tag0 + (unsigned)a.tag_d, d0, d1, a.tag_fail, a.tag_mode);
            item(i, hv, ov, nv);
        }
    }
    for (int64_t i0 = tid; !(TAG && (a.th || a.td)) && i0 < k4; i0 += 4 * NT) {
        float4 hv[4], ov[4], nv[4];
#pragma unroll
        for (int u = 0; u < 4; u++) {
            const int64_t i = i0 + NT * u;
            hv[u] = ov[u] = nv[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (i < k4) {
                hv[u] = h4[i];
                if (o4) ov[u] = o4[i];
                nv[u] = mmq_ld4(a.nw, i, n4);
            }
        }
#pragma unroll
        for (int u = 0; u < 4; u++) {
            const int64_t i = i0 + NT * u;
            if (i >= k4) break;
            item(i, hv[u], ov[u], nv[u]);
        }
    }
    if (ng == 1) {
        ss = al_warp_sum(ss);
        if (lane == 0) wsum[warp] = ss;
    }
    __syncthreads();
    float inv1 = 0.0f;
    if (ng == 1) {
        float t = 0.0f;
#pragma unroll
        for (int w = 0; w < NW; w++) t += wsum[w];
        inv1 = 1.0f / sqrtf(t / (float)a.group + a.eps);
    }
    for (int64_t b0 = (int64_t)warp * 32; b0 < k4; b0 += NT) { /* the float4s this thread wrote */
        const int64_t i = b0 + lane;
        const bool ok = i < k4;
        float4 v = ok ? xf[i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        const float inv = ng == 1 ? inv1 : ok ? 1.0f / sqrtf(gsum[4 * i / a.group] / (float)a.group + a.eps) : 0.0f;
        v.x *= inv, v.y *= inv, v.z *= inv, v.w *= inv;
        mmq_q8(v, i, ok, xq, xd);
    }
    __syncthreads();
}

/* one step of a row group: in (mmq_rows: matrix | rows << 8), rows at w + al_mmq_row(r, rb, rb2),
 * first output row vrow; the g warps of the group reduce and the first stores. A share is 4 warps
 * (tid < 128) with barrier id bar (mmq_bar), sub (< 4) its slot of the reduction buffer; every warp
 * of the share calls it the same number of times (g > 1: barriers). */
template <int R, int TS, bool TAG>
static __device__ __forceinline__ void mmq_step(const mmq_args &a, int g, int j, int tid, int sub, int bar, const uint8_t *w, int64_t rb,
                                                int64_t rb2, int in, int64_t vrow, const int8_t *xq, const float *xd, unsigned tag0) {
    __shared__ float reds[4][4][MMQ_R];
    float(*red)[MMQ_R] = reds[sub];
    const int warp = tid >> 5, lane = tid & 31, grp = warp >> mmq_lg(g), wig = warp & (g - 1);
    const int64_t k = a.k;
    const int i = in & 0xff, nr = in >> 8;
    if (a.ids && w) w += (size_t)a.ids[j] * a.mat_bytes;
    float acc[R];
#pragma unroll
    for (int r = 0; r < R; r++) acc[r] = 0.0f;
    if (nr > 0) {
        const int first = wig * 32 + lane, step = 32 * g;
        switch (a.type[i]) {
        case AL_TYPE_Q8_0: mmq_loop<AL_TYPE_Q8_0, R>(w, rb, rb2, nr, k, first, step, xq, xd, acc); break;
        case AL_TYPE_Q4_K: mmq_loop<AL_TYPE_Q4_K, R>(w, rb, rb2, nr, k, first, step, xq, xd, acc); break;
        case AL_TYPE_Q5_K: mmq_loop<AL_TYPE_Q5_K, R>(w, rb, rb2, nr, k, first, step, xq, xd, acc); break;
        case AL_TYPE_Q6_K: mmq_loop<AL_TYPE_Q6_K, R>(w, rb, rb2, nr, k, first, step, xq, xd, acc); break;
        case AL_TYPE_Q4_0: if (TS >= MMQ_TS_EXT) mmq_loop<AL_TYPE_Q4_0, R>(w, rb, rb2, nr, k, first, step, xq, xd, acc); break;
        case AL_TYPE_Q4_1: if (TS >= MMQ_TS_EXT) mmq_loop<AL_TYPE_Q4_1, R>(w, rb, rb2, nr, k, first, step, xq, xd, acc); break;
        case AL_TYPE_Q5_0: if (TS >= MMQ_TS_EXT) mmq_loop<AL_TYPE_Q5_0, R>(w, rb, rb2, nr, k, first, step, xq, xd, acc); break;
        case AL_TYPE_Q5_1: if (TS >= MMQ_TS_EXT) mmq_loop<AL_TYPE_Q5_1, R>(w, rb, rb2, nr, k, first, step, xq, xd, acc); break;
        case AL_TYPE_IQ4_NL: if (TS >= MMQ_TS_EXT) mmq_loop<AL_TYPE_IQ4_NL, R>(w, rb, rb2, nr, k, first, step, xq, xd, acc); break;
        case AL_TYPE_IQ4_XS: if (TS >= MMQ_TS_EXT) mmq_loop<AL_TYPE_IQ4_XS, R>(w, rb, rb2, nr, k, first, step, xq, xd, acc); break;
        case AL_TYPE_Q2_K: if (TS >= MMQ_TS_ALL) mmq_loop<AL_TYPE_Q2_K, R>(w, rb, rb2, nr, k, first, step, xq, xd, acc); break;
        case AL_TYPE_Q3_K: if (TS >= MMQ_TS_ALL) mmq_loop<AL_TYPE_Q3_K, R>(w, rb, rb2, nr, k, first, step, xq, xd, acc); break;
        default: break;
        }
    }
    if (g > 1) {
#pragma unroll
        for (int r = 0; r < R; r++) {
            const float s = al_warp_sum(acc[r]);
            if (lane == 0) red[warp][r] = s;
        }
        mmq_bar(bar);
        if (wig == 0) {
            for (int q = 1; q < g; q++)
#pragma unroll
                for (int r = 0; r < R; r++) acc[r] += lane == 0 ? red[grp * g + q][r] : 0.0f;
        }
        mmq_bar(bar); /* red is reused by the next step */
    }
    if (wig == 0 && nr > 0) {
#pragma unroll
        for (int r = 0; r < R; r++) acc[r] = al_warp_sum(acc[r]);
        if (lane == 0) {
            const unsigned tag = tag0 + (unsigned)a.tag_y;
            if (a.glu) {
                float *y = a.y[0] + (int64_t)j * a.ldy + vrow;
#pragma unroll
                for (int o = 0; o < R / 2; o++)
                    if (2 * o < nr) {
                        y[o] = al_act_f(a.glu - 1, acc[2 * o]) * acc[2 * o + 1];
                        if (TAG && a.ty[0]) mmq_stt(a.ty[0] + vrow + o, y[o], tag, a.tag_mode);
                    }
            } else {
                float *y = a.y[i] + (int64_t)j * a.ldy + (vrow - a.beg[i]);
#pragma unroll
                for (int r = 0; r < R; r++)
                    if (r < nr) {
                        y[r] = a.act ? al_act_f(a.act - 1, acc[r]) : acc[r];
                        if (TAG && a.ty[i]) mmq_stt(a.ty[i] + (vrow - a.beg[i]) + r, y[r], tag, a.tag_mode);
                    }
            }
        }
    }
}

template <int R, int TS, bool TAG>
static __device__ void mmq_rows_loop(const mmq_args &a, int g, int bx, int nbx, int j, int tid, int sub, int bar, const uint8_t *mmq_sh,
                                     unsigned tag0, int ny, size_t stride) {
    const int lg = mmq_lg(g), warp = tid >> 5, lane = tid & 31, ngrp = 4 >> lg, grp = warp >> lg, wig = warp & (g - 1);
    const int lr = (R == 4 ? 2 : 1) - (a.glu ? 1 : 0); /* log2 of the output rows per group */
    /* groups and rows count in int (a matrix has < 2^31 rows) */
    const int nvg = (int)((a.end[a.n - 1] + (1 << lr) - 1) >> lr), vstep = nbx * ngrp, vg0 = bx * ngrp + grp;
    const int64_t xd_off = (a.k + 15) & ~(int64_t)15;
    /* one matrix (or the gate/up pair; beg[0] = 0): a step's rows start at w[0] + vg * (the bytes of a
     * group), in int arithmetic and a few independent descriptor loads, instead of mmq_rows' search.
     * Kept here rather than inside mmq_rows: that version (exp/rows-depth, the group size from a.R at
     * run time, the rows ahead through mmq_rows again) measured 0.7-0.9 % slower on an H100 (v22) */
    const bool one = a.n == 1;
    for (int vg = vg0; vg - grp < nvg; vg += vstep) {
        const uint8_t *w;
        int64_t rb, rb2, vrow;
        int in;
        if (one) {
            const int64_t rbytes = a.row_bytes[0];
            const int left = (int)a.end[0] - (vg << lr), rpg = 1 << lr;
            const int nout = left <= 0 ? 0 : left < rpg ? left : rpg;
            const uint8_t *wu = a.w[0] + (size_t)vg * (size_t)(rbytes << lr);
            vrow = vg << lr;
            w = nout ? wu : NULL;
            rb = a.glu ? (int64_t)(a.w[1] - a.w[0]) : rbytes;
            rb2 = a.glu ? rbytes : 2 * rbytes;
            in = (a.glu ? 2 * nout : nout) << 8;
            if (wig == 0 && lane == 0) { /* rows a.ahead steps on (the first step: every step up to there) */
                const int ahead = a.ahead > 1 ? a.ahead : 1;
                for (int t = vg == vg0 ? 1 : ahead; t <= ahead; t++) {
                    const int lt = (int)a.end[0] - ((vg + t * vstep) << lr);
                    if (lt <= 0) break;
                    const int nt = lt < rpg ? lt : rpg;
                    mmq_prefetch(a, wu + (size_t)(t * vstep) * (size_t)(rbytes << lr), rb, a.glu ? 2 * nt : nt);
                }
            }
        } else {
            in = mmq_rows(a, vg, &w, &rb, &rb2, &vrow);
            if (wig == 0 && lane == 0) { /* rows a.ahead steps on (the first step: every step up to there) */
                const int ahead = a.ahead > 1 ? a.ahead : 1;
                for (int t = vg == vg0 ? 1 : ahead; t <= ahead; t++) {
                    if (vg + t * vstep >= nvg) break;
                    const uint8_t *wn;
                    int64_t rbn, rb2n, vrn;
                    const int inn = mmq_rows(a, vg + t * vstep, &wn, &rbn, &rb2n, &vrn);
                    mmq_prefetch(a, wn, rbn, inn >> 8);
                }
            }
        }
        for (int jj = 0; jj < ny; jj++) { /* each step's weight rows from memory once, from L1 for the rows after the first */
            const uint8_t *sh = mmq_sh + (size_t)jj * stride;
            mmq_step<R, TS, TAG>(a, g, j + jj, tid, sub, bar, w, rb, rb2, in, vrow, (const int8_t *)sh, (const float *)(sh + xd_off), tag0);
        }
    }
}

/* share bx of nbx for activation rows j .. j + ny - 1, after their inputs (mmq_input of row j + jj at
 * mmq_sh + jj * stride; ny > 1: k_mmq only, not with a.ids, so that a matrix is streamed once for all
 * the rows): groups bx * ngrp + grp + s * nbx * ngrp; tid = 0..127 (4 warps), sub / bar as mmq_step. TS: the weight types compiled in (MMQ_TS_*;
 * each set is a kernel of its own, so that the common types' code stays as small as before: the
 * persistent kernel's grew 70 % with every type and the tagged hand-off in it, and tg128 fell 4-9 % on
 * an H100); TAG: with the tagged hand-off's loads and stores */
template <int TS, bool TAG>
static __device__ __forceinline__ void mmq_products(const mmq_args &a, int g, int bx, int nbx, int j, int tid, int sub, int bar,
                                                    const uint8_t *mmq_sh, unsigned tag0 = 0, int ny = 1, size_t stride = 0) {
    if (a.R == 4) mmq_rows_loop<4, TS, TAG>(a, g, bx, nbx, j, tid, sub, bar, mmq_sh, tag0, ny, stride);
    else mmq_rows_loop<2, TS, TAG>(a, g, bx, nbx, j, tid, sub, bar, mmq_sh, tag0, ny, stride);
}

/* whether share bx takes any group of rows (its first group, of sub-block 0, is the lowest) */
__device__ __forceinline__ bool mmq_has_rows(const mmq_args &a, int g, int bx) {
    const int lr = (a.R == 4 ? 2 : 1) - (a.glu ? 1 : 0);
    return (int64_t)bx * (4 >> mmq_lg(g)) < (a.end[a.n - 1] + (1 << lr) - 1) >> lr;
}

/* a block of 128 threads: mmq_input of activation rows j .. j + ny - 1 (each stride bytes of mmq_sh, the
 * dynamic shared memory: ny * mmq_smem bytes), then mmq_products over them */
template <bool K23>
static __device__ void mmq_block(const mmq_args &a, int g, int bx, int nbx, int j, int ny, size_t stride, int tid, uint8_t *mmq_sh) {
    for (int jj = 0; jj < ny; jj++) mmq_input<128>(a, bx, j + jj, tid, mmq_sh + (size_t)jj * stride);
    mmq_products<K23 ? MMQ_TS_ALL : MMQ_TS_EXT, false>(a, g, bx, nbx, j, tid, 0, 0, mmq_sh, 0, ny, stride);
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

/* the type set a product's weights need (the largest of its matrices') */
static inline int mmq_args_type_set(const mmq_args *a) {
    int ts = MMQ_TS_CORE;
    for (int i = 0; i < (a->glu ? 2 : a->n); i++)
        if (mmq_type_set(a->type[i]) > ts) ts = mmq_type_set(a->type[i]);
    return ts;
}

static inline bool mmq_ok(const al_cuda_weight *W) {
    if (W->k > MMQ_MAX_K) return false;
    return al_cuda_mmq_type(W->type) && W->k % al_type_traits_get(W->type)->block_size == 0;
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
    a->R = 2;
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
    a->R = 2;
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
