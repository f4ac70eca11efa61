/*
 * persist.cu — the persistent decode kernel (al_cuda_prog, alloy/cuda.h).
 *
 * k_persist runs a recorded list of ops with a fixed grid of blocks that are all resident at once
 * (cooperative launch): one block of MK_SUB sub-blocks of MK_T threads per multiprocessor. Sub-block
 * vb = sub × grid + block of nvb = MK_SUB × grid does units vb, vb + nvb, … of each op (sub-blocks
 * synchronize on their own named barrier). After an op marked `sync` the blocks meet at a grid
 * barrier: a monotonic 64-bit arrival counter in device memory (red.release to arrive, relaxed
 * polling + fence to wait), released when it reaches base + (barriers so far) × grid, so it never
 * needs resetting (the host advances base by n_sync × grid per run). One block per multiprocessor
 * rather than four of 128 threads: a quarter of the arrivals on the counter and a product's input
 * loaded and quantized once per multiprocessor (v8 in docs/benchmarks-cuda.md).
 *
 * Ops (units of work):
 *  - MK_MATVEC: mmq_input by the whole block (fused pre-norm, int8 activations in shared memory),
 *    then mmq_products (mmq_kernel.cuh) by each sub-block: groups of rows dealt round-robin.
 *  - MK_ATTN: unit = (KV head hk, split of ch = 64, 32 or 16 keys) over the live keys [j0, pos]. The
 *    cached keys and values of the split come into shared memory by cp.async (with the RoPE cos / sin
 *    of pos); the unit takes the G = n_head / n_head_kv query heads of hk: bias, per-head RMSNorm, RoPE
 *    and scale of q; the unit holding key pos also forms the new k / v (into its tiles and the cache).
 *    Scores (MK_T / ch lanes per key, a key piece read once for 4 heads), softmax and P·V of the split
 *    go to part (o [head][split][hd], then max, sum [head][split][2]). One live split: written to out
 *    directly. 2 .. MMQ_MERGE_MAX splits and a next product that only reads out (wo): that product
 *    merges them while loading its input (al_cuda_prog_set_merge). Otherwise the last unit of hk to
 *    finish (arrival counter cnt[hk], reset by that unit) merges the splits into out.
 *  - MK_EMBED: the token's embedding row (token a kernel argument, every type of al_cuda_get_rows); when
 *    the next product reads it as its pre-norm input, every block writes its own copy and no grid
 *    barrier follows (block 0 also writes the shared row that later ops read as the residual).
 *  - MK_SSM: unit = (head h, MK_PS rows of P): dt = clamp(softplus(dt + bias)), conv1d + SiLU of the
 *    unit's x channels and of its group's B and C channels from the conv state (read only), then
 *    S ← exp(dt A) S + dt x Bᵀ, y = S C + D x for its rows.
 * A sub-block's first unit of the next op is prepared between its block's arrival at the barrier and the release
 * (mk_pre): the weight rows of a product into L2 (optionally its pre-norm weights too, by one thread), the cached K/V tile of an attention unit and the
 * state rows + conv partial sums (all but the new input's tap) of an SSM unit, since none of these
 * depend on the op before.
 *  - MK_SHIFT: conv state ← its last d_conv - 2 columns + the new input (grid-stride over channels);
 *    recorded right after MK_SSM with no barrier between it and the next op, so every MK_SSM unit
 *    has read the old state before it moves.
 * Tagged hand-off (al_cuda_prog_set_tagged, off by default): where cuda/prog_plan.h drops the barrier
 * after an op, the op also stores its output as {value, tag} words (tag: the run's tag0 + op index)
 * beside the plain floats, and the next op's readers reload those words until they carry that tag
 * (mmq_ldt / mmq_tagged*); an attention whose barrier went still meets one at positions where its
 * last unit per KV head merges the splits (op sync 2). A wait that never ends gives up after
 * MMQ_TAG_SPINS reloads and sets tag_fail (al_cuda_prog_tag_failed) instead of hanging the GPU.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cuda/cuda_impl.cuh"
#include "cuda/mmq_kernel.cuh"
#include "cuda/prog_plan.h"

#define MK_T 128     /* threads per sub-block (4 warps; mmq_products' layout) */
#define MK_SUB 4     /* sub-blocks per block */
#define MK_BT (MK_T * MK_SUB)
#define MK_PS 16     /* state rows per SSM unit */
#define MK_MAX_G 16  /* query heads per KV head */
#define MK_NPH 8     /* attention profiling counters: 7 phases, then the count of units timed */
#define MK_POLLER 3  /* the sub-block whose first thread polls the grid barrier (al_cuda_prog_set_poller) */

enum { MK_MATVEC, MK_ATTN, MK_SSM, MK_SHIFT, MK_EMBED };
/* what mk_pre does while a barrier is pending, beyond the first weight rows into L2 (k_persist's pre) */
enum { MK_PRE_UNITS = 1, /* attention / SSM units: cached K/V tiles, state rows (al_cuda_prog_set_unit_pre) */
       MK_PRE_NORM = 2 /* a product's pre-norm weights into L2 (al_cuda_prog_set_norm_prefetch) */ };

typedef struct mk_attn {
    al_cuda_prog_attn a;
    float *part; /* [n_head][n_split][hd] partial P·V, then [n_head][n_split][2] max and sum */
    int *cnt;    /* [n_head_kv], zero between runs */
    int n_split, ch; /* splits of ch keys (64, or 32 / 16 where the tiles of MK_SUB units would not fit) */
    int wo_merge;    /* the next product merges 2 .. MMQ_MERGE_MAX live splits itself (mmq_args.att_o) */
    /* tagged hand-off from the QKV product (cuda/prog_plan.h): q / k / v read as the words tq / tk / tv
     * (or NULL: the floats) of op tag_q / tag_k / tag_v (+ the run's tag0) */
    const uint2 *tq, *tk, *tv;
    int tag_q, tag_k, tag_v, tag_mode; /* tag_mode: mmq_args.tag_mode */
    int *tag_fail;
    /* tagged hand-off to wo: out and the partials kept for wo's merge also as tagged words (tag: this
     * op, tag_self) in tout / tpart (same offsets as out / part), or NULL */
    uint2 *tout, *tpart;
    int tag_self;
} mk_attn;
typedef struct mk_shift {
    const float *x;
    float *state;
    int ch, km1;
} mk_shift;
typedef struct mk_embed {
    const uint8_t *w; /* [n_vocab][row_bytes] */
    size_t row_bytes;
    float *out; /* [k]: written by block 0 */
    float *blk; /* NULL (then a grid barrier follows), or [grid][k]: each block's copy, read by the next product */
    int type, k;
} mk_embed;
typedef struct mk_op {
    int kind, sync, g; /* g: warps per row group (MK_MATVEC); sync: 0 none, 1 a grid barrier after the op,
                        * 2 (tagged) one where mk_attn_counts */
    union {
        mmq_args mv;
        mk_attn at;
        al_cuda_prog_ssm ss;
        mk_shift sh;
        mk_embed em;
    } u;
} mk_op;

struct al_cuda_prog {
    al_cuda *c;
    mk_op *ops, *d_ops;
    int n_ops, cap, n_sync, grid, rows;
    int n_vocab; /* rows of the MK_EMBED table (0: none) */
    int n_ctx;   /* smallest cache of the attention ops (0: none): positions must stay below it */
    float *emb;  /* [grid][k]: per-block copies of the embedding row, or NULL */
    bool no_merge; /* al_cuda_prog_set_merge(p, false) */
    bool no_unit_pre; /* al_cuda_prog_set_unit_pre(p, false) */
    int poller;       /* thread of a block that polls the grid barrier (al_cuda_prog_set_poller) */
    int cluster;      /* al_cuda_prog_set_cluster: blocks per thread-block cluster (1: none) */
    int ahead;        /* al_cuda_prog_set_prefetch_ahead */
    bool norm_prefetch; /* al_cuda_prog_set_norm_prefetch */
    int attn_ch;   /* al_cuda_prog_set_attn_split */
    bool kernel_ref; /* al_cuda_prog_set_kernel_ref */
    size_t smem, sub_smem; /* bytes: a product's input (per block), an attention / SSM unit (per sub-block) */
    float *part;
    size_t part_floats;
    int *cnt, max_kv;
    unsigned long long *bar, epoch;
    unsigned long long *tm; /* timing of the last run (k_persist, layout at mk_tm_ph), or NULL */
    bool ready;
    /* tagged hand-off (al_cuda_prog_set_tagged): the tagged copies [n] of plain buffers, the tag of op 0
     * in the next run (op i: tag0 + i; never 0, never one of an earlier run's) */
    int tagged; /* al_tag_level */
    int n_shadow;
    struct {
        const void *plain;
        uint2 *words;
        int64_t n;
    } shadow[12];
    unsigned tag0;
    int *tag_fail; /* device: a tagged wait gave up (mmq_args.tag_fail) */
    int tag_mode;  /* al_cuda_prog_set_tag_nap | al_cuda_prog_set_tag_scope (mmq_args.tag_mode) */
    const void *kfn; /* the k_persist instance of the program (al_cuda_prog_finish) */
};

/* ---- device side ---- */

/* grid barrier, split: arrive (release: this block's writes become visible) ... wait (acquire).
 * cl > 1 (launched in clusters of cl blocks): the blocks of a cluster meet at the cluster barrier and
 * its first block arrives on the counter for all of them (grid / cl arrivals); the others only wait
 * for the cluster barrier in mk_wait, after their work between the two. */
__device__ __forceinline__ unsigned mk_cl_rank() {
    unsigned r = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
#endif
    return r;
}
__device__ __forceinline__ void mk_arrive(unsigned long long *bar, int cl) {
    __syncthreads();
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (cl > 1) {
        asm volatile("barrier.cluster.arrive.release.aligned;" ::: "memory");
        if (mk_cl_rank() == 0) {
            asm volatile("barrier.cluster.wait.acquire.aligned;" ::: "memory");
            if (threadIdx.x == 0) asm volatile("red.release.gpu.global.add.u64 [%0], 1;" ::"l"(bar) : "memory");
        }
        return;
    }
#endif
    if (threadIdx.x == 0) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 700
        asm volatile("red.release.gpu.global.add.u64 [%0], 1;" ::"l"(bar) : "memory");
#else
        __threadfence();
        atomicAdd(bar, 1ull);
#endif
    }
}
__device__ __forceinline__ void mk_wait(unsigned long long *bar, unsigned long long target, int poller, int cl) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (cl > 1 && mk_cl_rank() != 0) asm volatile("barrier.cluster.wait.acquire.aligned;" ::: "memory");
#endif
    if (threadIdx.x == poller) {
        unsigned long long v;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 700
        do { /* relaxed polling: an acquire load would invalidate the SM's L1 at every poll */
            asm volatile("ld.relaxed.gpu.global.u64 %0, [%1];" : "=l"(v) : "l"(bar) : "memory");
        } while (v < target);
        asm volatile("fence.acq_rel.gpu;" ::: "memory");
#else
        do v = *(volatile unsigned long long *)bar;
        while (v < target);
        __threadfence();
#endif
    }
    __syncthreads();
}

/* 16-byte global -> shared copies that complete at mk_cp_wait (cp.async on sm_80+) */
__device__ __forceinline__ void mk_cp16(void *dst, const void *src) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"((unsigned)__cvta_generic_to_shared(dst)), "l"(src) : "memory");
#else
    *(uint4 *)dst = *(const uint4 *)src;
#endif
}
__device__ __forceinline__ void mk_cp_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_all;\n" ::: "memory");
#endif
}
/* the copies issued so far as one group; waiting for all but the last group (mk_cp_wait_but_last) */
__device__ __forceinline__ void mk_cp_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void mk_cp_wait_but_last() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group 1;\n" ::: "memory");
#endif
}

/* one warp: dst[hd] (shared) = RoPE(RMSNorm(src + bias) * nw) * scale, as k_qkv_post + k_decode;
 * nw (or NULL) and cs[n_dims / 2][2] (cos, sin of pair i's angle at this position) in shared memory.
 * Element d = lane + 32 t stays in a register through norm and NORM-mode RoPE (partner d ^ 1 by a
 * shuffle); NEOX pairs (i, i + half) go through dst. */
/* tsrc (or NULL): src as tagged words of tag (mk_attn.tq / tk), all loaded before any wait */
__device__ void mk_head(const al_cuda_prog_attn &a, const float *src, const float *bias, const float *nw, const float *cs,
                        float scale, float *dst, int lane, const uint2 *tsrc = NULL, unsigned tag = 0, int *fail = NULL,
                        int mode = 0) {
    const int hd = a.head_dim;
    float ss = 0.0f, xv[8];
    if (tsrc) {
        uint2 w[8];
#pragma unroll
        for (int t = 0; t < 8; t++) w[t] = lane + 32 * t < hd ? mmq_ldt1(tsrc + lane + 32 * t, mode) : make_uint2(0, tag);
#pragma unroll
        for (int t = 0; t < 8; t++)
            xv[t] = lane + 32 * t < hd ? mmq_tagged1(tsrc + lane + 32 * t, tag, w[t], fail, mode) + (bias ? bias[lane + 32 * t] : 0.0f) : 0.0f;
    } else {
#pragma unroll
        for (int t = 0; t < 8; t++) /* all loads first (hd <= 256) */
            xv[t] = lane + 32 * t < hd ? src[lane + 32 * t] + (bias ? bias[lane + 32 * t] : 0.0f) : 0.0f;
    }
    if (nw) {
#pragma unroll
        for (int t = 0; t < 8; t++) ss += xv[t] * xv[t];
        ss = al_warp_sum(ss);
        const float inv = 1.0f / sqrtf(ss / (float)hd + a.eps);
#pragma unroll
        for (int t = 0; t < 8; t++)
            if (lane + 32 * t < hd) xv[t] = (xv[t] * inv) * nw[lane + 32 * t];
    }
    if (a.rope_mode == 1) {
#pragma unroll
        for (int t = 0; t < 8; t++) {
            const int d = lane + 32 * t;
            const float o = __shfl_xor_sync(0xffffffffu, xv[t], 1); /* d ^ 1: the same t, lane ^ 1 */
            if (d < a.n_dims) {
                const float co = cs[d & ~1], sn = cs[(d & ~1) + 1];
                xv[t] = (d & 1) ? xv[t] * co + o * sn : xv[t] * co - o * sn;
            }
        }
    }
#pragma unroll
    for (int t = 0; t < 8; t++)
        if (lane + 32 * t < hd) dst[lane + 32 * t] = a.rope_mode == 2 ? xv[t] : xv[t] * scale;
    __syncwarp();
    if (a.rope_mode == 2) {
        const int half = a.n_dims / 2;
        for (int i = lane; i < half; i += 32) {
            const float co = cs[2 * i], sn = cs[2 * i + 1], x0 = dst[i], x1 = dst[i + half];
            dst[i] = (x0 * co - x1 * sn) * scale;
            dst[i + half] = (x1 * co + x0 * sn) * scale;
        }
        for (int d = a.n_dims + lane; d < hd; d += 32) dst[d] *= scale;
        __syncwarp();
    }
}

/* attention unit geometry at position pos: split sp of m.ch keys of KV head hk, keys [start, end) */
struct mk_au {
    int hk, sp, start, end, s0, nlive;
};
__device__ __forceinline__ mk_au mk_attn_unit(const mk_attn &m, int pos, int u) {
    mk_au r;
    const int ch = m.ch, j0 = mmq_att_first(pos, m.a.window);
    r.nlive = mmq_att_live(pos, ch, m.a.window, &r.s0);
    r.hk = u / r.nlive;
    r.sp = r.s0 + u % r.nlive;
    r.start = r.sp * ch;
    r.end = r.start + ch;
    if (r.end > pos + 1) r.end = pos + 1;
    if (r.start < j0) r.start = j0;
    return r;
}
/* shared memory of an attention unit: K and V tiles [ch][rs bytes] (KV type; a row padded by 16 L
 * bytes, L = MK_T / ch lanes per key, so that the 16-byte reads of the score loop hit distinct
 * banks), then floats: q and k norm weights, RoPE cos / sin [n_dims / 2][2], new k [hd] each, q [G][hd], scores
 * [G][ch], max and sum [G][2] */
__host__ __device__ __forceinline__ int mk_attn_rs(int hd, int elt, int ch) { return hd * elt + 16 * (MK_T / ch); }
__host__ __device__ __forceinline__ size_t mk_attn_smem(int hd, int elt, int ch, int G) {
    return 2 * (size_t)ch * (size_t)mk_attn_rs(hd, elt, ch) + sizeof(float) * (size_t)(4 * hd + G * hd + G * ch + 2 * G);
}
__device__ __forceinline__ float *mk_attn_f(uint8_t *sh, int hd, int elt, int ch) {
    return (float *)(sh + 2 * (size_t)ch * (size_t)mk_attn_rs(hd, elt, ch));
}
__device__ __forceinline__ void mk_cp_vec(float *dst, const float *src, int n, int tid) {
    if (!src) return;
    if (((uintptr_t)src & 15) == 0 && n % 4 == 0)
        for (int c = tid; c < n / 4; c += MK_T) mk_cp16(dst + 4 * c, src + 4 * c);
    else
        for (int c = tid; c < n; c += MK_T) dst[c] = src[c];
}
/* barrier of sub-block sub's MK_T threads (named barrier 1 + sub; 0 is __syncthreads) */
__device__ __forceinline__ void mk_sync(int sub) { mmq_bar(1 + sub); }

/* whether the attention's last unit of each KV head merges the splits at pos (arrival counts in cnt,
 * reused by the next attention op: with the tagged hand-off, a barrier follows it only then, sync 2) */
__host__ __device__ __forceinline__ bool mk_attn_counts(const mk_attn &m, int pos) {
    int s0;
    const int nl = mmq_att_live(pos, m.ch, m.a.window, &s0);
    return nl > 1 && !(m.wo_merge && nl <= MMQ_MERGE_MAX);
}

/* start copying the unit's cached keys / values (positions < pos) into the tiles: two cp.async groups,
 * first the q / k norm weights (what the heads need: mk_cp_wait_but_last), then the tiles (what the
 * scores need: mk_cp_wait), so that the tiles arrive while the heads are formed */
template <typename KV> __device__ void mk_attn_pre(const mk_attn &m, int pos, int u, uint8_t *sh, int tid) {
    const al_cuda_prog_attn &a = m.a;
    const mk_au g = mk_attn_unit(m, pos, u);
    const int hd = a.head_dim, per = hd * (int)sizeof(KV) / 16, rs = mk_attn_rs(hd, (int)sizeof(KV), m.ch);
    const int n = (g.end < pos ? g.end : pos) - g.start;
    const int64_t kv_row = (int64_t)a.n_head_kv * hd * (int64_t)sizeof(KV);
    uint8_t *kt = sh, *vt = sh + (size_t)m.ch * rs;
    const uint8_t *kc = (const uint8_t *)a.kc + (int64_t)g.start * kv_row + (int64_t)g.hk * hd * (int64_t)sizeof(KV);
    const uint8_t *vc = (const uint8_t *)a.vc + (kc - (const uint8_t *)a.kc);
    float *wq = mk_attn_f(sh, hd, (int)sizeof(KV), m.ch), *cs = wq + 2 * hd;
    mk_cp_vec(wq, a.q_norm, hd, tid);
    mk_cp_vec(wq + hd, a.k_norm, hd, tid);
    mk_cp_commit();
    for (int c = tid; c < n * per; c += MK_T) {
        const int r = c / per, q = c - r * per;
        mk_cp16(kt + r * rs + 16 * q, kc + r * kv_row + 16 * q);
        mk_cp16(vt + r * rs + 16 * q, vc + r * kv_row + 16 * q);
    }
    mk_cp_commit();
    if (a.rope_mode) /* cos, sin of the angles at pos (fp32 angle as the CPU, accurate sincos) */
        for (int i = tid; i < a.n_dims / 2; i += MK_T) sincosf((float)pos * a.inv_freq[i], &cs[2 * i + 1], &cs[2 * i]);
}

/* the 16-byte piece of a key row at k as floats (8 halves or 4 floats) */
__device__ __forceinline__ void mk_unpack(const __half *k, float *f) {
    const uint4 u = *(const uint4 *)k;
    const float2 a = __half22float2(*(const __half2 *)&u.x), b = __half22float2(*(const __half2 *)&u.y);
    const float2 c = __half22float2(*(const __half2 *)&u.z), d = __half22float2(*(const __half2 *)&u.w);
    f[0] = a.x, f[1] = a.y, f[2] = b.x, f[3] = b.y, f[4] = c.x, f[5] = c.y, f[6] = d.x, f[7] = d.y;
}
__device__ __forceinline__ void mk_unpack(const float *k, float *f) {
    const float4 u = *(const float4 *)k;
    f[0] = u.x, f[1] = u.y, f[2] = u.z, f[3] = u.w;
}
/* sa += kf[0 .. E/2) · q[0 .. E/2), sb += the rest (q: shared, 16-byte aligned) */
template <int E> __device__ __forceinline__ void mk_dot_piece(const float *kf, const float *q, float &sa, float &sb) {
    const float4 q0 = *(const float4 *)q;
    if (E == 8) {
        const float4 q1 = *(const float4 *)(q + 4);
        sa = fmaf(kf[0], q0.x, sa), sa = fmaf(kf[1], q0.y, sa), sa = fmaf(kf[2], q0.z, sa), sa = fmaf(kf[3], q0.w, sa);
        sb = fmaf(kf[4], q1.x, sb), sb = fmaf(kf[5], q1.y, sb), sb = fmaf(kf[6], q1.z, sb), sb = fmaf(kf[7], q1.w, sb);
    } else {
        sa = fmaf(kf[0], q0.x, sa), sa = fmaf(kf[1], q0.y, sa);
        sb = fmaf(kf[2], q0.z, sb), sb = fmaf(kf[3], q0.w, sb);
    }
}
__device__ __forceinline__ float2 mk_ld2(const __half *v) { return __half22float2(*(const __half2 *)v); }
__device__ __forceinline__ float2 mk_ld2(const float *v) { return *(const float2 *)v; }

/* One unit: (1) q heads normed / roped / scaled into shared memory by warps, the new k / v (unit
 * holding key pos) into the tiles and the cache; (2) scores with L lanes per key, each lane taking
 * every L-th 16-byte piece of the row, all G heads; (3) softmax of the split, a warp per head;
 * (4) P·V, a thread per (head, pair of dims); (5) one split: out; else partial results, merged by the
 * next product (wo_merge, 2 .. MMQ_MERGE_MAX splits) or by the last unit of hk to arrive. */
template <typename KV, bool TAG>
__device__ void mk_attention(const mk_attn &m, int pos, bool pre, uint8_t *sh, int vb, int nvb, int tid, int sub,
                             unsigned long long *ph, unsigned tag0) {
    __shared__ int lasts[MK_SUB];
    int &last = lasts[sub];
    const al_cuda_prog_attn &a = m.a;
    const int warp = tid >> 5, lane = tid & 31;
    const int hd = a.head_dim, nkv = a.n_head_kv, G = a.n_head / nkv;
    const int ch = m.ch, L = MK_T / ch, rs = mk_attn_rs(hd, (int)sizeof(KV), ch), epp = 16 / (int)sizeof(KV);
    const int npc = hd / epp; /* 16-byte pieces per row */
    const int64_t kv_row = (int64_t)nkv * hd;
    uint8_t *kt = sh, *vt = sh + (size_t)ch * rs;
    float *wq = mk_attn_f(sh, hd, (int)sizeof(KV), ch), *wk = wq + hd, *cs = wk + hd, *kn = cs + hd, *qs = kn + hd,
          *sc = qs + G * hd, *ml = sc + G * ch;
    const mk_au g0 = mk_attn_unit(m, pos, 0);
    for (int u = vb; u < nkv * g0.nlive; u += nvb) {
        const mk_au g = mk_attn_unit(m, pos, u);
        const int hk = g.hk, sp = g.sp, n = g.end - g.start;
        const bool has_new = g.end == pos + 1;
        /* profiling (ph: MK_NPH counters): cycles of each phase of unit 0, summed over the run */
        unsigned long long t_ph = ph && u == 0 && tid == 0 ? clock64() : 0;
#define MK_PH(k)                                                              \
    if (ph && u == 0 && tid == 0) {                                           \
        const unsigned long long t_now = clock64();                           \
        atomicAdd(ph + (k), t_now - t_ph);                                    \
        t_ph = t_now;                                                         \
        if ((k) == 6) atomicAdd(ph + MK_NPH - 1, 1ull);                       \
    }
        if (!(pre && u == vb)) mk_attn_pre<KV>(m, pos, u, sh, tid);
        mk_cp_wait_but_last(); /* the norm weights; the tiles may still be on their way (mk_attn_pre) */
        mk_sync(sub);
        MK_PH(0);
        for (int q = warp; q < G; q += 4) {
            const int h = hk * G + q;
            mk_head(a, a.q + (int64_t)h * hd, a.bq ? a.bq + (int64_t)h * hd : NULL, a.q_norm ? wq : NULL, cs, a.scale,
                    qs + q * hd, lane, TAG && m.tq ? m.tq + (int64_t)h * hd : NULL, tag0 + (unsigned)m.tag_q, m.tag_fail, m.tag_mode);
        }
        if (!TAG && has_new && warp == G % 4) { /* the new token's k, v: into the last tile row and the cache */
            const int64_t off = (int64_t)pos * kv_row + (int64_t)hk * hd;
            KV *kr = (KV *)(kt + (size_t)(n - 1) * rs), *vr = (KV *)(vt + (size_t)(n - 1) * rs);
            float vv[8]; /* loaded before k's head: one round trip for both */
#pragma unroll
            for (int t = 0; t < 8; t++) {
                const int d = lane + 32 * t;
                vv[t] = d < hd ? a.v[(int64_t)hk * hd + d] + (a.bv ? a.bv[(int64_t)hk * hd + d] : 0.0f) : 0.0f;
            }
            mk_head(a, a.k + (int64_t)hk * hd, a.bk ? a.bk + (int64_t)hk * hd : NULL, a.k_norm ? wk : NULL, cs, 1.0f, kn, lane);
#pragma unroll
            for (int t = 0; t < 8; t++) {
                const int d = lane + 32 * t;
                if (d >= hd) break;
                const KV kk = al_kv_t<KV>(kn[d]), vk = al_kv_t<KV>(vv[t]);
                kr[d] = kk, vr[d] = vk;
                ((KV *)a.kc)[off + d] = kk, ((KV *)a.vc)[off + d] = vk;
            }
        }
        /* tagged: the new k by warp G % 4, its v by the next one, so that both waits overlap */
        if (TAG && has_new && warp == G % 4) { /* the new token's k: into the last tile row and the cache */
            const int64_t off = (int64_t)pos * kv_row + (int64_t)hk * hd;
            KV *kr = (KV *)(kt + (size_t)(n - 1) * rs);
            mk_head(a, a.k + (int64_t)hk * hd, a.bk ? a.bk + (int64_t)hk * hd : NULL, a.k_norm ? wk : NULL, cs, 1.0f, kn, lane,
                    TAG && m.tk ? m.tk + (int64_t)hk * hd : NULL, tag0 + (unsigned)m.tag_k, m.tag_fail, m.tag_mode);
#pragma unroll
            for (int t = 0; t < 8; t++) {
                const int d = lane + 32 * t;
                if (d >= hd) break;
                const KV kk = al_kv_t<KV>(kn[d]);
                kr[d] = kk;
                ((KV *)a.kc)[off + d] = kk;
            }
        }
        if (TAG && has_new && warp == (G + 1) % 4) { /* its v, by the next warp: the two round trips overlap */
            const int64_t off = (int64_t)pos * kv_row + (int64_t)hk * hd;
            KV *vr = (KV *)(vt + (size_t)(n - 1) * rs);
            float vv[8];
            if (TAG && m.tv) {
                uint2 vw[8];
#pragma unroll
                for (int t = 0; t < 8; t++) vw[t] = lane + 32 * t < hd ? mmq_ldt1(m.tv + (int64_t)hk * hd + lane + 32 * t, m.tag_mode) : make_uint2(0, 0);
#pragma unroll
                for (int t = 0; t < 8; t++)
                    vv[t] = lane + 32 * t < hd ? mmq_tagged1(m.tv + (int64_t)hk * hd + lane + 32 * t, tag0 + (unsigned)m.tag_v, vw[t],
                                                             m.tag_fail, m.tag_mode)
                                               : 0.0f;
            } else {
#pragma unroll
                for (int t = 0; t < 8; t++) vv[t] = lane + 32 * t < hd ? a.v[(int64_t)hk * hd + lane + 32 * t] : 0.0f;
            }
#pragma unroll
            for (int t = 0; t < 8; t++) {
                const int d = lane + 32 * t;
                if (d >= hd) break;
                const KV vk = al_kv_t<KV>(vv[t] + (a.bv ? a.bv[(int64_t)hk * hd + d] : 0.0f));
                vr[d] = vk;
                ((KV *)a.vc)[off + d] = vk;
            }
        }
        mk_cp_wait(); /* the tiles (rows below the new key's, which the heads' warps wrote directly) */
        mk_sync(sub);
        MK_PH(1);
        { /* scores: key tid / L, lane part tid % L of its row; each 16-byte piece of the key read once
           * for up to 4 heads, two partial sums per head */
            const int key = tid / L, part = tid - key * L;
            const KV *kr = (const KV *)(kt + (size_t)key * rs);
            for (int q0 = 0; q0 < G; q0 += 4) {
                float sa[4] = {0.0f, 0.0f, 0.0f, 0.0f}, sb[4] = {0.0f, 0.0f, 0.0f, 0.0f};
                if (key < n)
                    for (int c = part; c < npc; c += L) {
                        float kf[8];
                        mk_unpack(kr + c * epp, kf);
#pragma unroll
                        for (int qq = 0; qq < 4; qq++)
                            if (q0 + qq < G) mk_dot_piece<16 / sizeof(KV)>(kf, qs + (q0 + qq) * hd + c * epp, sa[qq], sb[qq]);
                    }
#pragma unroll
                for (int qq = 0; qq < 4; qq++) {
                    float v = sa[qq] + sb[qq];
                    for (int o = 1; o < L; o <<= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
                    if (part == 0 && q0 + qq < G) sc[(q0 + qq) * ch + key] = key < n ? v : -INFINITY;
                }
            }
        }
        mk_sync(sub);
        MK_PH(2);
        for (int q = warp; q < G; q += 4) { /* softmax of the split, a warp per head (ch <= 64) */
            float v0 = lane < ch ? sc[q * ch + lane] : -INFINITY, v1 = lane + 32 < ch ? sc[q * ch + lane + 32] : -INFINITY;
            const float mx = al_warp_max(fmaxf(v0, v1));
            v0 = expf(v0 - mx), v1 = expf(v1 - mx); /* keys >= n: exp(-inf) = 0 */
            const float sum = al_warp_sum(v0 + v1);
            if (lane < ch) sc[q * ch + lane] = v0;
            if (lane + 32 < ch) sc[q * ch + lane + 32] = v1;
            if (lane == 0) ml[2 * q] = mx, ml[2 * q + 1] = sum;
        }
        mk_sync(sub);
        MK_PH(3);
        const bool single = g.nlive == 1; /* the only split: normalise and write out directly */
        const bool keep = !single && m.wo_merge && g.nlive <= MMQ_MERGE_MAX; /* partials left to the next product */
        float *po = m.part, *pml = m.part + (int64_t)a.n_head * m.n_split * hd;
        for (int idx = tid; idx < G * hd / 2; idx += MK_T) {
            const int q = idx / (hd / 2), d = 2 * (idx - q * (hd / 2));
            const float *p = sc + q * ch;
            float a0 = 0.0f, a1 = 0.0f, b0 = 0.0f, b1 = 0.0f; /* even / odd keys: two chains per dim */
            int i = 0;
#pragma unroll 4
            for (; i + 1 < n; i += 2) {
                const float2 v = mk_ld2((const KV *)(vt + (size_t)i * rs) + d), w = mk_ld2((const KV *)(vt + (size_t)(i + 1) * rs) + d);
                a0 = fmaf(p[i], v.x, a0), a1 = fmaf(p[i], v.y, a1);
                b0 = fmaf(p[i + 1], w.x, b0), b1 = fmaf(p[i + 1], w.y, b1);
            }
            if (i < n) {
                const float2 v = mk_ld2((const KV *)(vt + (size_t)i * rs) + d);
                a0 = fmaf(p[i], v.x, a0), a1 = fmaf(p[i], v.y, a1);
            }
            a0 += b0, a1 += b1;
            if (single) {
                const float inv = 1.0f / ml[2 * q + 1];
                float *o = a.out + (int64_t)(hk * G + q) * hd + d;
                o[0] = a0 * inv, o[1] = a1 * inv;
                if (TAG && m.tout) mmq_stt2(m.tout + (int64_t)(hk * G + q) * hd + d, a0 * inv, a1 * inv, tag0 + (unsigned)m.tag_self, m.tag_mode);
            } else {
                const int64_t hs = (int64_t)(hk * G + q) * m.n_split + sp;
                *(float2 *)(po + hs * hd + d) = make_float2(a0, a1);
                if (d == 0) *(float2 *)(pml + 2 * hs) = make_float2(ml[2 * q], ml[2 * q + 1]);
                if (TAG && keep && m.tpart) {
                    mmq_stt2(m.tpart + hs * hd + d, a0, a1, tag0 + (unsigned)m.tag_self, m.tag_mode);
                    if (d == 0) mmq_stt2(m.tpart + (pml - po) + 2 * hs, ml[2 * q], ml[2 * q + 1], tag0 + (unsigned)m.tag_self, m.tag_mode);
                }
            }
        }
        if (!single && !keep) {
            mk_sync(sub);
            MK_PH(4);
            if (tid == 0) {
                int old;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 700
                asm volatile("atom.acq_rel.gpu.global.add.s32 %0, [%1], 1;" : "=r"(old) : "l"(m.cnt + hk) : "memory");
#else
                __threadfence();
                old = atomicAdd(m.cnt + hk, 1);
                __threadfence();
#endif
                last = old == g.nlive - 1;
            }
            mk_sync(sub);
            MK_PH(5);
            if (last) { /* every split of hk is in part: merge */
                for (int idx = tid; idx < G * hd; idx += MK_T) {
                    const int q = idx / hd, d = idx - q * hd, h = hk * G + q;
                    const float *oh = po + (int64_t)h * m.n_split * hd, *mh = pml + (int64_t)h * m.n_split * 2;
                    float M = -INFINITY, Ls = 0.0f, acc = 0.0f; /* online merge: one pass, loads independent */
#pragma unroll 4
                    for (int s = g.s0; s < g.s0 + g.nlive; s++) {
                        const float ms = __ldcg(mh + 2 * s), ls = __ldcg(mh + 2 * s + 1);
                        const float os = __ldcg(oh + (int64_t)s * hd + d);
                        const float mn = fmaxf(M, ms), co = expf(M - mn), cn = expf(ms - mn); /* every split has a key */
                        Ls = Ls * co + ls * cn;
                        acc = acc * co + os * cn;
                        M = mn;
                    }
                    a.out[(int64_t)h * hd + d] = Ls > 0.0f ? acc / Ls : 0.0f;
                    if (TAG && m.tout) mmq_stt(m.tout + (int64_t)h * hd + d, Ls > 0.0f ? acc / Ls : 0.0f, tag0 + (unsigned)m.tag_self, m.tag_mode);
                }
                if (tid == 0) m.cnt[hk] = 0;
            }
        }
        mk_sync(sub); /* shared memory is reused by the next unit */
        if (single || keep) {
            MK_PH(4);
            MK_PH(5);
        }
        MK_PH(6);
#undef MK_PH
    }
}

/* SSM unit u = (head, rows p0 .. p0 + ps): shared memory S[ps][N] | conv partial sums [ps + 2N] |
 * last conv tap weights [ps + 2N] | conv outputs x[ps], B[N], C[N] */
struct mk_su {
    int h, p0, g, ps;
};
__device__ __forceinline__ mk_su mk_ssm_unit(const al_cuda_prog_ssm &a, int u) {
    mk_su r;
    r.ps = a.P < MK_PS ? a.P : MK_PS;
    const int nps = a.P / r.ps;
    r.h = u / nps;
    r.p0 = (u - r.h * nps) * r.ps;
    r.g = r.h / (a.H / a.G);
    return r;
}
__device__ __forceinline__ int64_t mk_ssm_ch(const al_cuda_prog_ssm &a, const mk_su &g, int i, int64_t di, int64_t gn) {
    return i < g.ps ? (int64_t)g.h * a.P + g.p0 + i : i < g.ps + a.N ? di + (int64_t)g.g * a.N + (i - g.ps)
                                                                    : di + gn + (int64_t)g.g * a.N + (i - g.ps - a.N);
}

/* everything of unit u that does not depend on this step's in_proj output */
__device__ void mk_ssm_pre(const al_cuda_prog_ssm &a, int u, float *sh, int tid) {
    const mk_su g = mk_ssm_unit(a, u);
    const int N = a.N, K = a.d_conv, nc = g.ps + 2 * N;
    const int64_t di = (int64_t)a.H * a.P, gn = (int64_t)a.G * N, ch = di + 2 * gn;
    float *S = sh, *cp = S + g.ps * N, *wl = cp + nc;
    const float *src = a.state + ((int64_t)g.h * a.P + g.p0) * N;
    for (int c = tid; c < g.ps * N / 4; c += MK_T) mk_cp16(S + 4 * c, src + 4 * c);
    for (int i = tid; i < nc; i += MK_T) {
        const int64_t c = mk_ssm_ch(a, g, i, di, gn);
        float acc = a.conv_b ? a.conv_b[c] : 0.0f;
        for (int j = 0; j < K - 1; j++) acc = fmaf(a.conv_w[c * K + j], a.conv_state[(int64_t)j * ch + c], acc);
        cp[i] = acc;
        wl[i] = a.conv_w[c * K + K - 1];
    }
}

__device__ void mk_ssm(const al_cuda_prog_ssm &a, bool pre, float *sh, int vb, int nvb, int tid, int sub) {
    const int warp = tid >> 5, lane = tid & 31;
    const int P = a.P, N = a.N, H = a.H;
    const int64_t di = (int64_t)H * P, gn = (int64_t)a.G * N, ch = di + 2 * gn;
    const float *xbc = a.zx + di, *dtr = a.zx + di + ch;
    for (int u = vb; u < H * (P / (P < MK_PS ? P : MK_PS)); u += nvb) {
        const mk_su g = mk_ssm_unit(a, u);
        const int nc = g.ps + 2 * N;
        float *S = sh, *cp = S + g.ps * N, *wl = cp + nc, *xs = wl + nc, *Bs = xs + g.ps, *Cs = Bs + N;
        if (!(pre && u == vb)) {
            mk_ssm_pre(a, u, sh, tid);
            mk_sync(sub);
        }
        for (int i0 = tid; i0 < nc; i0 += 4 * MK_T) { /* the loads of 4 steps first */
            float xv[4];
#pragma unroll
            for (int r = 0; r < 4; r++) xv[r] = i0 + r * MK_T < nc ? xbc[mk_ssm_ch(a, g, i0 + r * MK_T, di, gn)] : 0.0f;
#pragma unroll
            for (int r = 0; r < 4; r++)
                if (i0 + r * MK_T < nc) xs[i0 + r * MK_T] = al_silu(fmaf(wl[i0 + r * MK_T], xv[r], cp[i0 + r * MK_T]));
        }
        float dt = al_softplus(dtr[g.h] + (a.dt_bias ? a.dt_bias[g.h] : 0.0f));
        dt = fminf(fmaxf(dt, a.dt_lo), a.dt_hi);
        const float dA = expf(dt * a.A[g.h]), Dh = a.D ? a.D[g.h] : 0.0f;
        mk_cp_wait();
        mk_sync(sub);
        for (int p = warp; p < g.ps; p += 4) {
            float *Sg = a.state + ((int64_t)g.h * P + g.p0 + p) * N;
            const float xv = xs[p];
            float acc = 0.0f;
            for (int n = lane; n < N; n += 32) {
                const float s = S[p * N + n] * dA + dt * xv * Bs[n];
                Sg[n] = s;
                acc = fmaf(s, Cs[n], acc);
            }
            acc = al_warp_sum(acc);
            if (lane == 0) a.y[(int64_t)g.h * P + g.p0 + p] = acc + Dh * xv;
        }
        mk_sync(sub);
    }
}

__device__ void mk_conv_shift(const mk_shift &a) {
    for (int64_t c = (int64_t)blockIdx.x * MK_BT + threadIdx.x; c < a.ch; c += (int64_t)gridDim.x * MK_BT)
        al_conv_state_update(a.x, 0, 1, a.ch, a.km1, a.state, c);
}

/* block 0 writes the row to out (read by later ops after a grid barrier); with blk every block also
 * writes its own copy (no two blocks storing to one line), which the next op reads */
__device__ void mk_embed_row(const mk_embed &e, int token) {
    const uint8_t *row = e.w + (size_t)token * e.row_bytes;
    float *mine = e.blk ? e.blk + (int64_t)blockIdx.x * e.k : NULL, *out = blockIdx.x == 0 ? e.out : NULL;
    switch (e.type) {
#define CASE_Q(T)                                                                          \
    case T:                                                                                \
        for (int i = threadIdx.x; i < (e.k >> 3); i += MK_BT) {                            \
            float v[8];                                                                    \
            al_qt<T>::load8(row, e.k, i, v);                                               \
            for (int j = 0; j < 8; j++) {                                                  \
                if (mine) mine[8 * i + j] = v[j];                                          \
                if (out) out[8 * i + j] = v[j];                                            \
            }                                                                              \
        }                                                                                  \
        break;
#define CASE_F(T)                                                                          \
    case T:                                                                                \
        for (int i = threadIdx.x; i < e.k; i += MK_BT) {                                   \
            const float v = al_load1<T>(row, i);                                           \
            if (mine) mine[i] = v;                                                         \
            if (out) out[i] = v;                                                           \
        }                                                                                  \
        break;
        AL_CUDA_QUANT_TYPES(CASE_Q)
        AL_CUDA_FLOAT_TYPES(CASE_F)
#undef CASE_Q
#undef CASE_F
    default: break;
    }
}

__device__ __forceinline__ unsigned long long mk_clock() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}
__device__ __forceinline__ void mk_stamp(unsigned long long *tm, int i) {
    if (tm && blockIdx.x == 0 && threadIdx.x == 0) tm[i] = mk_clock();
}
/* The timing buffer tm: [n_ops + 1] globaltimer stamps of block 0 (mk_stamp), then at mk_tm_ph the
 * MK_NPH attention phase counters (zeroed before each run), then at mk_tm_blk [n_ops][grid][3]: the
 * time each block reached point w of op i — MK_DONE finished it, MK_ENTER entered it, MK_INPUT had its
 * input (products; 0 for other ops) */
enum { MK_DONE, MK_ENTER, MK_INPUT };
__host__ __device__ __forceinline__ size_t mk_tm_ph(int n_ops) { return (size_t)n_ops + 1; }
__host__ __device__ __forceinline__ size_t mk_tm_blk(int n_ops) { return (size_t)n_ops + 1 + MK_NPH; }
__host__ __device__ __forceinline__ size_t mk_tm_len(int n_ops, int grid) { return mk_tm_blk(n_ops) + 3 * (size_t)n_ops * (size_t)grid; }
__device__ __forceinline__ void mk_stamp_blk(unsigned long long *tm, int n_ops, int w, int i) {
    if (tm) {
        __syncthreads();
        if (threadIdx.x == 0) tm[mk_tm_blk(n_ops) + 3 * ((size_t)i * gridDim.x + blockIdx.x) + w] = mk_clock();
    }
}

/* work for op j that sub-block vb (thread tid, shared memory sh) can do while the barrier before it is
 * pending (inputs of earlier steps only); op: its descriptor; flags: MK_PRE_*; returns whether the
 * sub-block's first unit of op j was prepared */
__device__ bool mk_pre(const mk_op &op, const mk_op *__restrict__ ops, int j, int n_ops, int pos, uint8_t *sh, int vb, int tid,
                       int flags) {
    switch (op.kind) {
    case MK_MATVEC:
        mmq_prefetch_first(op.u.mv, op.g, vb, tid);
        if ((flags & MK_PRE_NORM) && op.u.mv.nw && vb == 0 && tid == 1) al_prefetch_l2(op.u.mv.nw, sizeof(float) * (size_t)op.u.mv.k);
        return false;
    case MK_ATTN: {
        if (!(flags & MK_PRE_UNITS)) return false;
        const mk_au g0 = mk_attn_unit(op.u.at, pos, 0);
        if (vb >= op.u.at.a.n_head_kv * g0.nlive) return false;
        if (op.u.at.a.kv_type == AL_TYPE_F16) mk_attn_pre<__half>(op.u.at, pos, vb, sh, tid);
        else mk_attn_pre<float>(op.u.at, pos, vb, sh, tid);
        return true;
    }
    case MK_SSM: {
        const al_cuda_prog_ssm &a = op.u.ss;
        if (!(flags & MK_PRE_UNITS)) return false;
        if (vb >= a.H * (a.P / (a.P < MK_PS ? a.P : MK_PS))) return false;
        mk_ssm_pre(a, vb, (float *)sh, tid);
        return true;
    }
    default:
        if (j + 1 < n_ops && ops[j + 1].kind == MK_MATVEC) mmq_prefetch_first(ops[j + 1].u.mv, ops[j + 1].g, vb, tid);
        return false;
    }
}

__device__ __forceinline__ void mk_load_op(mk_op *dst, const mk_op *src) {
    for (int i = threadIdx.x; i < (int)(sizeof(mk_op) / 4); i += MK_BT) ((int *)dst)[i] = ((const int *)src)[i];
}

/* A block is MK_SUB sub-blocks of MK_T threads: a product's input is made once per block (all
 * threads), then each sub-block takes the share of virtual block vb = sub * gridDim.x + blockIdx.x of
 * MK_SUB * gridDim.x (consecutive units on different multiprocessors), attention and SSM units too,
 * each in its own sub_bytes of shared memory; the grid barrier counts blocks (thread 0 arrives,
 * thread `poller` polls).
 * tm: NULL, or the timing buffer (mk_tm_ph): tm[0] at the start, tm[i + 1] when block 0 leaves op i,
 * the attention phase counters (mk_attention), each block's stamps (mk_stamp_blk). Op descriptors are
 * read from shared memory (two buffers: op i and op i + 1, loaded while the barrier before it is
 * pending). */
template <bool TAG, int TS>
__global__ void __launch_bounds__(MK_BT, 1) k_persist(const mk_op *__restrict__ ops, int n_ops, int pos, int token,
                                                      unsigned long long *bar, unsigned long long base, unsigned long long *tm,
                                                      int sub_bytes, int poller, int pre_flags, unsigned tag0, int cl) {
    extern __shared__ __align__(16) uint8_t mk_sh[];
    __shared__ __align__(16) mk_op desc[2];
    const int sub = threadIdx.x / MK_T, tid = threadIdx.x % MK_T;
    const int vb = sub * gridDim.x + blockIdx.x, nvb = MK_SUB * gridDim.x;
    uint8_t *ssh = mk_sh + (size_t)sub * (size_t)sub_bytes;
    unsigned long long target = base;
    const unsigned arrivals = gridDim.x / cl; /* per grid barrier: one per block, or per cluster */
    bool pre = false;
    mk_stamp(tm, 0);
    mk_load_op(&desc[0], &ops[0]);
    __syncthreads();
    for (int i = 0; i < n_ops; i++) {
        const mk_op &op = desc[i & 1];
        mk_stamp_blk(tm, n_ops, MK_ENTER, i);
        switch (op.kind) {
        case MK_MATVEC:
            /* no barrier after it (tagged hand-off): a block without rows does not read the input, which
             * the next ops may overwrite once the blocks with rows are done (cuda/prog_plan.h) */
            if (TAG && !op.sync && !mmq_has_rows(op.u.mv, op.g, blockIdx.x)) break;
            mmq_input<MK_BT, TAG>(op.u.mv, blockIdx.x, 0, threadIdx.x, mk_sh, pos, tag0);
            mk_stamp_blk(tm, n_ops, MK_INPUT, i);
            mmq_products<TS, TAG>(op.u.mv, op.g, vb, nvb, 0, tid, sub, 1 + sub, mk_sh, tag0);
            break;
        case MK_ATTN:
            if (op.u.at.a.kv_type == AL_TYPE_F16)
                mk_attention<__half, TAG>(op.u.at, pos, pre, ssh, vb, nvb, tid, sub, tm ? tm + mk_tm_ph(n_ops) : NULL, tag0);
            else mk_attention<float, TAG>(op.u.at, pos, pre, ssh, vb, nvb, tid, sub, tm ? tm + mk_tm_ph(n_ops) : NULL, tag0);
            break;
        case MK_SSM: mk_ssm(op.u.ss, pre, (float *)ssh, vb, nvb, tid, sub); break;
        case MK_EMBED:
            if (i + 1 < n_ops && ops[i + 1].kind == MK_MATVEC) mmq_prefetch_first(ops[i + 1].u.mv, ops[i + 1].g, vb, tid);
            mk_embed_row(op.u.em, token);
            break;
        default: mk_conv_shift(op.u.sh); break;
        }
        pre = false;
        mk_stamp_blk(tm, n_ops, MK_DONE, i);
        if (i + 1 == n_ops) break;
        mk_op &next = desc[(i + 1) & 1];
        if (!TAG) { /* as before the tagged hand-off */
            if (op.sync) {
                target += arrivals;
                mk_arrive(bar, cl);
                mk_load_op(&next, &ops[i + 1]);
                __syncthreads();
                pre = mk_pre(next, ops, i + 1, n_ops, pos, ssh, vb, tid, pre_flags);
                mk_wait(bar, target, poller, cl);
            } else {
                __syncthreads();
                mk_load_op(&next, &ops[i + 1]);
                __syncthreads();
            }
            mk_stamp(tm, i + 1);
            continue;
        }
        /* sync 2: a barrier only where the attention's units counted arrivals (mk_attn_counts) */
        const bool bar_here = op.sync == 1 || (op.sync == 2 && mk_attn_counts(op.u.at, pos));
        if (bar_here) {
            target += arrivals;
            mk_arrive(bar, cl);
        } else {
            __syncthreads();
        }
        mk_load_op(&next, &ops[i + 1]);
        __syncthreads();
        /* while the barrier is pending, or before a tagged hand-off's input is waited for: the next
         * product's first weight rows into L2, an attention unit's cached K/V tiles, ... */
        if (bar_here || (TAG && (op.kind == MK_MATVEC || op.kind == MK_ATTN))) pre = mk_pre(next, ops, i + 1, n_ops, pos, ssh, vb, tid, pre_flags);
        if (bar_here) mk_wait(bar, target, poller, cl);
        mk_stamp(tm, i + 1);
    }
    mk_stamp(tm, n_ops);
}

/* ---- host side ---- */

extern "C" al_status al_cuda_prog_init(al_cuda_prog **out, al_cuda *c) {
    *out = NULL;
    if (c->recording) return al_err(AL_ERR_INVALID, "cuda prog: another program is recording");
    al_cuda_prog *p = (al_cuda_prog *)calloc(1, sizeof *p);
    if (!p) return al_err(AL_ERR_NOMEM, "cuda prog: out of memory");
    p->c = c;
    p->poller = MK_POLLER * MK_T;
    c->recording = true;
    *out = p;
    return al_ok();
}

extern "C" void al_cuda_prog_free(al_cuda_prog *p) {
    if (!p) return;
    if (!p->ready) p->c->recording = false;
    al_cuda_release(p->c, p->d_ops);
    al_cuda_release(p->c, p->part);
    al_cuda_release(p->c, p->cnt);
    al_cuda_release(p->c, p->bar);
    al_cuda_release(p->c, p->emb);
    al_cuda_release(p->c, p->tm);
    for (int i = 0; i < p->n_shadow; i++) al_cuda_release(p->c, p->shadow[i].words);
    al_cuda_release(p->c, p->tag_fail);
    free(p->ops);
    free(p);
}

static al_status prog_push(al_cuda_prog *p, const mk_op *op) {
    if (p->ready) return al_err(AL_ERR_INVALID, "cuda prog: already finished");
    if (p->n_ops == p->cap) {
        const int cap = p->cap ? 2 * p->cap : 64;
        mk_op *n = (mk_op *)realloc(p->ops, sizeof(mk_op) * (size_t)cap);
        if (!n) return al_err(AL_ERR_NOMEM, "cuda prog: out of memory");
        p->ops = n;
        p->cap = cap;
    }
    p->ops[p->n_ops++] = *op;
    return al_ok();
}

static void need_smem(al_cuda_prog *p, size_t bytes) {
    if (bytes > p->smem) p->smem = bytes;
}
static void need_sub_smem(al_cuda_prog *p, size_t bytes) {
    bytes = (bytes + 15) & ~(size_t)15;
    if (bytes > p->sub_smem) p->sub_smem = bytes;
}

static al_status push_mmq(al_cuda_prog *p, const mmq_args *a) {
    if (mmq_args_type_set(a) == MMQ_TS_ALL) /* k_persist's mmq_products take at most MMQ_TS_EXT */
        return al_err(AL_ERR_UNSUPPORTED, "cuda prog: no Q2_K / Q3_K products in the persistent kernel (graph path)");
    mk_op op;
    memset(&op, 0, sizeof op);
    op.kind = MK_MATVEC;
    op.sync = 1;
    op.g = mmq_warps(a->k);
    op.u.mv = *a;
    need_smem(p, mmq_smem(a));
    return prog_push(p, &op);
}

extern "C" al_status al_cuda_prog_matvec(al_cuda_prog *p, const al_cuda_weight *const *W, int n, const al_cuda_vec_in *in,
                                         float *const *Y) {
    mmq_args a;
    AL_TRY(mmq_args_n(W, n, in, Y, &a));
    return push_mmq(p, &a);
}

extern "C" al_status al_cuda_prog_matvec_act(al_cuda_prog *p, al_cuda_act_kind act, const al_cuda_weight *W,
                                             const al_cuda_vec_in *in, float *Y) {
    mmq_args a;
    AL_TRY(mmq_args_act(act, W, in, Y, &a));
    return push_mmq(p, &a);
}

extern "C" al_status al_cuda_prog_matvec_glu(al_cuda_prog *p, al_cuda_act_kind act, const al_cuda_weight *Wg,
                                             const al_cuda_weight *Wu, const al_cuda_vec_in *in, float *Y) {
    mmq_args a;
    AL_TRY(mmq_args_glu(act, Wg, Wu, in, Y, &a));
    return push_mmq(p, &a);
}

extern "C" al_status al_cuda_prog_attention(al_cuda_prog *p, const al_cuda_prog_attn *a) {
    if (a->n_head <= 0 || a->n_head_kv <= 0 || a->n_head % a->n_head_kv || a->head_dim <= 0 || a->n_ctx <= 0)
        return al_err(AL_ERR_INVALID, "cuda prog attention: heads %d/%d, head_dim %d", a->n_head, a->n_head_kv, a->head_dim);
    if (a->head_dim > 256 || a->n_head / a->n_head_kv > MK_MAX_G)
        return al_err(AL_ERR_UNSUPPORTED, "cuda prog attention: head_dim %d, %d heads per KV head", a->head_dim,
                      a->n_head / a->n_head_kv);
    if (a->kv_type != AL_TYPE_F16 && a->kv_type != AL_TYPE_F32)
        return al_err(AL_ERR_UNSUPPORTED, "cuda prog attention: KV type %s", al_type_name(a->kv_type));
    if (a->rope_mode < 0 || a->rope_mode > 2 || a->n_dims > a->head_dim || a->n_dims % 2 || (a->rope_mode && !a->inv_freq))
        return al_err(AL_ERR_INVALID, "cuda prog attention: rope %d/%d", a->rope_mode, a->n_dims);
    mk_op op;
    memset(&op, 0, sizeof op);
    op.kind = MK_ATTN;
    op.sync = 1;
    op.u.at.a = *a;
    const int elt = a->kv_type == AL_TYPE_F16 ? 2 : 4, G = a->n_head / a->n_head_kv;
    if (a->head_dim * elt % 16) return al_err(AL_ERR_UNSUPPORTED, "cuda prog attention: rows of %d bytes", a->head_dim * elt);
    /* the tiles of MK_SUB units fit in a block's shared memory */
    const size_t cap = p->c->prop.sharedMemPerBlockOptin / MK_SUB / 16 * 16;
    op.u.at.ch = p->attn_ch != 32 && mk_attn_smem(a->head_dim, elt, 64, G) <= 48 * 1024 ? 64
                 : mk_attn_smem(a->head_dim, elt, 32, G) <= cap                         ? 32
                                                                                       : 16;
    if (mk_attn_smem(a->head_dim, elt, op.u.at.ch, G) > cap)
        return al_err(AL_ERR_UNSUPPORTED, "cuda prog attention: head_dim %d with %d heads per KV head", a->head_dim, G);
    op.u.at.n_split = (int)al_cdiv(a->n_ctx, op.u.at.ch);
    need_sub_smem(p, mk_attn_smem(a->head_dim, elt, op.u.at.ch, G));
    const size_t part = (size_t)a->n_head * (size_t)op.u.at.n_split * (size_t)(a->head_dim + 2);
    if (part > p->part_floats) p->part_floats = part;
    if (a->n_head_kv > p->max_kv) p->max_kv = a->n_head_kv;
    if (!p->n_ctx || a->n_ctx < p->n_ctx) p->n_ctx = a->n_ctx;
    return prog_push(p, &op);
}

extern "C" al_status al_cuda_prog_embed(al_cuda_prog *p, const al_cuda_weight *W, float *out) {
    if (!W || !W->data || !out || W->k <= 0) return al_err(AL_ERR_INVALID, "cuda prog embed: bad arguments");
    bool known = false;
#define CASE(T) known = known || W->type == T;
    AL_CUDA_QUANT_TYPES(CASE)
    AL_CUDA_FLOAT_TYPES(CASE)
#undef CASE
    if (!known) return al_err(AL_ERR_UNSUPPORTED, "cuda prog embed: type %s", al_type_name(W->type));
    if (W->type != AL_TYPE_F32 && W->type != AL_TYPE_F16 && W->type != AL_TYPE_BF16 && W->k % 8) return al_err(AL_ERR_UNSUPPORTED, "cuda prog embed: row of %lld", (long long)W->k);
    mk_op op;
    memset(&op, 0, sizeof op);
    op.kind = MK_EMBED;
    op.sync = 1; /* al_cuda_prog_finish drops it where the next product can read per-block copies */
    op.u.em.w = (const uint8_t *)W->data;
    op.u.em.row_bytes = W->row_bytes;
    op.u.em.out = out;
    op.u.em.type = (int)W->type;
    op.u.em.k = (int)W->k;
    p->n_vocab = (int)W->n_out;
    return prog_push(p, &op);
}

extern "C" al_status al_cuda_prog_ssm_step(al_cuda_prog *p, const al_cuda_prog_ssm *a) {
    if (a->H <= 0 || a->P <= 0 || a->N <= 0 || a->G <= 0 || a->H % a->G || a->d_conv < 1 || a->d_conv > 17)
        return al_err(AL_ERR_INVALID, "cuda prog ssm: H %d P %d N %d G %d conv %d", a->H, a->P, a->N, a->G, a->d_conv);
    if (a->P > MK_PS && a->P % MK_PS) return al_err(AL_ERR_UNSUPPORTED, "cuda prog ssm: head_dim %d", a->P);
    mk_op op;
    memset(&op, 0, sizeof op);
    op.kind = MK_SSM;
    op.sync = 1;
    op.u.ss = *a;
    if (a->N % 4) return al_err(AL_ERR_UNSUPPORTED, "cuda prog ssm: state size %d", a->N);
    const int ps = a->P < MK_PS ? a->P : MK_PS;
    need_sub_smem(p, sizeof(float) * (size_t)(ps * a->N + 3 * (ps + 2 * a->N)));
    AL_TRY(prog_push(p, &op));
    if (a->d_conv < 2) return al_ok();
    memset(&op, 0, sizeof op);
    op.kind = MK_SHIFT;
    op.sync = 0; /* runs beside the next op */
    op.u.sh.x = a->zx + (int64_t)a->H * a->P;
    op.u.sh.state = a->conv_state;
    op.u.sh.ch = (int)((int64_t)a->H * a->P + 2 * (int64_t)a->G * a->N);
    op.u.sh.km1 = a->d_conv - 1;
    return prog_push(p, &op);
}

/* the slot of buffer b's tagged copy, grown to n words (-1: out of slots) */
static int shadow_need(al_cuda_prog *p, const void *b, int64_t n) {
    int i = 0;
    while (i < p->n_shadow && p->shadow[i].plain != b) i++;
    if (i == (int)(sizeof p->shadow / sizeof p->shadow[0])) return -1;
    if (i == p->n_shadow) p->shadow[p->n_shadow++] = {b, NULL, 0};
    if (n > p->shadow[i].n) p->shadow[i].n = n;
    return i;
}

/* words of output m of product a (row 0; glu: its one output) */
static int64_t y_words(const mmq_args &a, int m) { return a.glu ? a.end[0] : a.end[m] - a.beg[m]; }

/* the tagged hand-off (al_cuda_prog_set_tagged): barriers dropped and reads tagged as al_prog_plan says */
static al_status prog_tag(al_cuda_prog *p) {
    const int n = p->n_ops;
    al_plan_op *po = (al_plan_op *)calloc((size_t)n, sizeof *po);
    al_plan_out *pl = (al_plan_out *)calloc((size_t)n, sizeof *pl);
    if (!po || !pl) {
        free(po);
        free(pl);
        return al_err(AL_ERR_NOMEM, "cuda prog: out of memory");
    }
    for (int i = 0; i < n; i++) {
        const mk_op &o = p->ops[i];
        al_plan_op &q = po[i];
        q.sync = o.sync != 0;
        switch (o.kind) {
        case MK_MATVEC: {
            const mmq_args &a = o.u.mv;
            q.kind = AL_PLAN_PRODUCT;
            q.n_out = a.glu ? 1 : a.n;
            for (int m = 0; m < a.n && m < 4; m++) q.out[m] = a.y[m];
            if (a.ids) q.n_out = 4; /* never tagged */
            q.h_out = a.nw && a.d ? a.h_out : NULL;
            if (!a.nw && !a.x_per_j) q.in[AL_PLAN_X] = a.x; /* the attention's output: merged here, or x past 4 splits */
            if (!a.nw && a.att_o) q.in[AL_PLAN_M] = a.att_o;
            if (!a.nw && a.x_per_j) q.fixed[0] = a.x;
            if (a.nw && !a.h_blk) q.in[AL_PLAN_H] = a.h;
            if (a.nw) q.in[AL_PLAN_D] = a.d;
            q.fixed[1] = a.z;
            break;
        }
        case MK_ATTN:
            q.kind = AL_PLAN_ATTN;
            q.in[0] = o.u.at.a.q, q.in[1] = o.u.at.a.k, q.in[2] = o.u.at.a.v;
            q.out[0] = o.u.at.a.out;
            q.out[1] = p->part;
            break;
        case MK_SSM:
            q.kind = AL_PLAN_OTHER;
            q.out[0] = o.u.ss.y;
            q.out[1] = o.u.ss.state;
            break;
        case MK_SHIFT:
            q.kind = AL_PLAN_OTHER;
            q.out[0] = o.u.sh.state;
            break;
        default:
            q.kind = AL_PLAN_EMBED;
            q.out[0] = o.u.em.out;
            q.out[1] = o.u.em.blk;
            break;
        }
    }
    al_status st = al_prog_plan(po, n, p->tagged, pl);
    /* slots [10 i + s] of op i's tagged copies: inputs s < 4 (x h d merge; attention q k v), outputs 4 + m (attention:
     * out, partials), residual 8 (-2: none); then the copies (zeroed: tag 0 is no op's) */
    const int NS = 10;
    int *sl = (int *)malloc((size_t)NS * (size_t)n * sizeof(int));
    if (!sl && !al_failed(&st)) st = al_err(AL_ERR_NOMEM, "cuda prog: out of memory");
    for (int i = 0; i < n && !al_failed(&st); i++) {
        const mk_op &o = p->ops[i];
        int *ss = sl + NS * i;
        for (int q = 0; q < NS; q++) ss[q] = -2;
        /* an attention without its barrier still meets one where its units count arrivals (sync 2) */
        p->ops[i].sync = pl[i].sync ? 1 : o.kind == MK_ATTN && o.sync ? 2 : 0;
        if (o.kind == MK_MATVEC) {
            const mmq_args &a = o.u.mv;
            const void *src[4] = {a.x, a.h, a.d, a.att_o};
            const int64_t len[4] = {a.k, a.k, a.k, (int64_t)p->part_floats};
            for (int q = 0; q < 4; q++)
                if (pl[i].in_tag[q] >= 0) ss[q] = shadow_need(p, src[q], len[q]);
            for (int m = 0; m < 4 && m < a.n; m++)
                if (pl[i].tag_out[m]) ss[4 + m] = shadow_need(p, a.y[m], y_words(a, m));
            if (pl[i].tag_h_out) ss[8] = shadow_need(p, a.h_out, a.k);
        } else if (o.kind == MK_ATTN) {
            const al_cuda_prog_attn &a = o.u.at.a;
            const void *src[3] = {a.q, a.k, a.v};
            const int64_t len[3] = {(int64_t)a.n_head * a.head_dim, (int64_t)a.n_head_kv * a.head_dim, (int64_t)a.n_head_kv * a.head_dim};
            for (int q = 0; q < 3; q++)
                if (pl[i].in_tag[q] >= 0) ss[q] = shadow_need(p, src[q], len[q]);
            if (pl[i].tag_out[0]) ss[4] = shadow_need(p, a.out, len[0]);
            if (pl[i].tag_out[1]) ss[5] = shadow_need(p, p->part, (int64_t)p->part_floats);
        }
        for (int q = 0; q < NS; q++)
            if (ss[q] == -1) st = al_err(AL_ERR_UNSUPPORTED, "cuda prog: more than 12 tagged buffers");
    }
    for (int i = 0; i < p->n_shadow && !al_failed(&st); i++)
        if (!p->shadow[i].words) st = al_cuda_alloc(p->c, (void **)&p->shadow[i].words, sizeof(uint2) * (size_t)p->shadow[i].n);
    if (!al_failed(&st) && p->n_shadow) st = al_cuda_alloc(p->c, (void **)&p->tag_fail, sizeof(int)); /* zeroed */
#define SH(q) (ss[q] >= 0 ? p->shadow[ss[q]].words : NULL)
    for (int i = 0; i < n && !al_failed(&st); i++) {
        const int *ss = sl + NS * i;
        if (p->ops[i].kind == MK_MATVEC) {
            mmq_args &a = p->ops[i].u.mv;
            a.tx = SH(0), a.th = SH(1), a.td = SH(2), a.tatt = SH(3);
            for (int m = 0; m < 4; m++) a.ty[m] = SH(4 + m);
            a.th_out = SH(8);
            a.tag_x = pl[i].in_tag[AL_PLAN_X], a.tag_h = pl[i].in_tag[AL_PLAN_H], a.tag_d = pl[i].in_tag[AL_PLAN_D];
            a.tag_m = pl[i].in_tag[AL_PLAN_M];
            a.tag_y = i;
            a.tag_fail = p->tag_fail;
            a.tag_mode = p->tag_mode;
        } else if (p->ops[i].kind == MK_ATTN) {
            mk_attn &m = p->ops[i].u.at;
            m.tq = SH(0), m.tk = SH(1), m.tv = SH(2);
            m.tag_q = pl[i].in_tag[0], m.tag_k = pl[i].in_tag[1], m.tag_v = pl[i].in_tag[2];
            m.tout = SH(4), m.tpart = SH(5);
            m.tag_self = i;
            m.tag_fail = p->tag_fail;
            m.tag_mode = p->tag_mode;
        }
    }
#undef SH
    free(sl);
    free(po);
    free(pl);
    p->tag0 = 1;
    return st;
}

/* the launch of p's grid in clusters of cl blocks (at: 2 attributes), cooperative or (occupancy query) not */
static void mk_cluster_cfg(const al_cuda_prog *p, int cl, bool coop, cudaLaunchConfig_t *cfg, cudaLaunchAttribute *at) {
    *cfg = cudaLaunchConfig_t();
    at[0].id = cudaLaunchAttributeClusterDimension;
    at[0].val.clusterDim.x = (unsigned)cl, at[0].val.clusterDim.y = 1, at[0].val.clusterDim.z = 1;
    at[1].id = cudaLaunchAttributeCooperative;
    at[1].val.cooperative = 1;
    cfg->gridDim = dim3((unsigned)p->grid);
    cfg->blockDim = dim3(MK_BT);
    cfg->dynamicSmemBytes = p->smem;
    cfg->stream = p->c->stream;
    cfg->attrs = at;
    cfg->numAttrs = coop ? 2 : 1;
}

extern "C" al_status al_cuda_prog_finish(al_cuda_prog *p, int blocks_per_sm) {
    al_cuda *c = p->c;
    if (p->ready) return al_err(AL_ERR_INVALID, "cuda prog: already finished");
    c->recording = false;
    p->ready = true;
    if (p->n_ops == 0) return al_err(AL_ERR_INVALID, "cuda prog: no ops");
    if (p->ops[p->n_ops - 1].kind == MK_SHIFT) return al_err(AL_ERR_INVALID, "cuda prog: the SSM step needs a following op");
    int coop = 0;
    AL_CUDA_TRY(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, c->device), "cooperative launch attribute");
    if (!coop) return al_err(AL_ERR_UNSUPPORTED, "cuda prog: the device has no cooperative launch");
    if (MK_SUB * p->sub_smem > p->smem) p->smem = MK_SUB * p->sub_smem;
    /* the instance: with the tagged hand-off or not, with the 32-element block types or only the common ones */
    int ts = MMQ_TS_CORE;
    for (int i = 0; i < p->n_ops; i++)
        if (p->ops[i].kind == MK_MATVEC && mmq_args_type_set(&p->ops[i].u.mv) > ts) ts = mmq_args_type_set(&p->ops[i].u.mv);
    p->kfn = p->tagged ? (ts ? (const void *)k_persist<true, MMQ_TS_EXT> : (const void *)k_persist<true, MMQ_TS_CORE>)
                       : (ts ? (const void *)k_persist<false, MMQ_TS_EXT> : (const void *)k_persist<false, MMQ_TS_CORE>);
    if (p->kernel_ref) p->tagged = AL_TAG_OFF; /* that instance, the barrier program */
    if (p->smem > 48 * 1024) {
        if (p->smem > c->prop.sharedMemPerBlockOptin) return al_err(AL_ERR_UNSUPPORTED, "cuda prog: %zu bytes of shared memory", p->smem);
        AL_CUDA_TRY(cudaFuncSetAttribute(p->kfn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)p->smem), "persist smem");
    }
    int occ = 0;
    AL_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, p->kfn, MK_BT, p->smem), "persist occupancy");
    if (occ < 1) return al_err(AL_ERR_UNSUPPORTED, "cuda prog: the kernel does not fit on a multiprocessor");
    if (blocks_per_sm > 0 && blocks_per_sm < occ) occ = blocks_per_sm;
    p->grid = occ * c->prop.multiProcessorCount;
    if (p->cluster > 1) { /* clusters only where the whole grid fits in them and they divide it */
        int n_cl = 0;
        cudaLaunchConfig_t cfg;
        cudaLaunchAttribute at[2];
        mk_cluster_cfg(p, p->cluster, false, &cfg, at);
        if (p->grid % p->cluster || c->prop.major < 9 || cudaOccupancyMaxActiveClusters(&n_cl, p->kfn, &cfg) != cudaSuccess ||
            n_cl * p->cluster < p->grid) {
            (void)cudaGetLastError();
            p->cluster = 1;
        }
    }
    if (p->part_floats) {
        AL_TRY(al_cuda_alloc(c, (void **)&p->part, sizeof(float) * p->part_floats));
        AL_TRY(al_cuda_alloc(c, (void **)&p->cnt, sizeof(int) * (size_t)p->max_kv));
    }
    AL_TRY(al_cuda_alloc(c, (void **)&p->bar, sizeof(unsigned long long)));
    for (int i = 0; i < p->n_ops; i++) { /* 4 rows per step where every group has >= 2 steps of 2 */
        mmq_args *a = &p->ops[i].u.mv;
        if (p->ops[i].kind != MK_MATVEC || a->ids) continue;
        const int64_t groups2 = (a->end[a->n - 1] + 1) / 2 * (a->glu ? 2 : 1), warp_groups = (int64_t)p->grid * MK_SUB * (4 / p->ops[i].g);
        bool q6 = true; /* measured: 4 rows help the Q6_K LM heads, slow the Q8_0 one and Llama's Q4_K gate/up and down */
        for (int m = 0; m < a->n; m++) q6 = q6 && a->type[m] == AL_TYPE_Q6_K;
        a->R = p->rows == 4 || (p->rows <= 0 && q6 && groups2 >= 2 * warp_groups) ? 4 : 2;
        a->ahead = p->ahead;
    }
    for (int i = 0; i + 1 < p->n_ops; i++) { /* an attention whose output only the next product reads: */
        mk_op *t = &p->ops[i], *n = &p->ops[i + 1]; /* that product merges the splits (no arrival count) */
        if (t->kind != MK_ATTN || n->kind != MK_MATVEC || n->u.mv.nw || n->u.mv.x != t->u.at.a.out || n->u.mv.x_per_j ||
            t->u.at.a.head_dim % 4 || p->no_merge)
            continue;
        const int hd = t->u.at.a.head_dim;
        t->u.at.wo_merge = 1;
        n->u.mv.att_o = p->part;
        n->u.mv.att_ml = p->part + (int64_t)t->u.at.a.n_head * t->u.at.n_split * hd;
        n->u.mv.att_hd = hd;
        n->u.mv.att_ns = t->u.at.n_split;
        n->u.mv.att_ch = t->u.at.ch;
        n->u.mv.att_win = t->u.at.a.window;
    }
    for (int i = 0; i + 1 < p->n_ops; i++) { /* an embedding read by the next product's pre-norm only: */
        mk_op *e = &p->ops[i], *n = &p->ops[i + 1]; /* per-block copies instead of a barrier */
        if (e->kind != MK_EMBED || n->kind != MK_MATVEC || !n->u.mv.nw || n->u.mv.h != e->u.em.out || n->u.mv.z || e->u.em.k % 4)
            continue;
        if (!p->emb) AL_TRY(al_cuda_alloc(c, (void **)&p->emb, sizeof(float) * (size_t)p->grid * (size_t)e->u.em.k));
        e->u.em.blk = p->emb;
        e->sync = 0;
        n->u.mv.h = p->emb;
        n->u.mv.h_blk = 1;
    }
    p->ops[p->n_ops - 1].sync = 0; /* the kernel ends there */
    if (p->tagged) AL_TRY(prog_tag(p));
    p->n_sync = 0;
    for (int i = 0; i < p->n_ops; i++) {
        if (p->ops[i].kind == MK_ATTN) p->ops[i].u.at.part = p->part, p->ops[i].u.at.cnt = p->cnt;
        p->n_sync += p->ops[i].sync == 1; /* sync 2 (an attention's, some positions): counted per run */
    }
    AL_TRY(al_cuda_alloc(c, (void **)&p->d_ops, sizeof(mk_op) * (size_t)p->n_ops));
    return al_cuda_upload(c, p->d_ops, p->ops, sizeof(mk_op) * (size_t)p->n_ops);
}

extern "C" al_status al_cuda_prog_run(al_cuda_prog *p, int pos, int32_t token) {
    if (!p->ready || !p->d_ops) return al_err(AL_ERR_INVALID, "cuda prog: not finished");
    if (pos < 0 || (p->n_ctx && pos >= p->n_ctx)) return al_err(AL_ERR_RANGE, "cuda prog: position %d outside the cache (%d)", pos, p->n_ctx);
    if (p->n_vocab && (token < 0 || token >= p->n_vocab)) return al_err(AL_ERR_RANGE, "cuda prog: token %d out of [0, %d)", token, p->n_vocab);
    const mk_op *ops = p->d_ops;
    int n_ops = p->n_ops;
    unsigned long long *bar = p->bar, base = p->epoch, *tm = p->tm;
    if (tm) AL_CUDA_TRY(cudaMemsetAsync(tm + mk_tm_ph(n_ops), 0, sizeof(unsigned long long) * MK_NPH, p->c->stream), "timing reset");
    int sub_bytes = (int)p->sub_smem, poller = p->poller, pre_flags = (p->no_unit_pre ? 0 : MK_PRE_UNITS) | (p->norm_prefetch ? MK_PRE_NORM : 0);
    unsigned tag0 = p->tag0;
    int cl = p->cluster > 1 ? p->cluster : 1;
    void *args[] = {(void *)&ops,       (void *)&n_ops,  (void *)&pos,       (void *)&token, (void *)&bar, (void *)&base,
                    (void *)&tm,        (void *)&sub_bytes, (void *)&poller, (void *)&pre_flags, (void *)&tag0, (void *)&cl};
    if (cl > 1) {
        cudaLaunchConfig_t cfg;
        cudaLaunchAttribute at[2];
        mk_cluster_cfg(p, cl, true, &cfg, at);
        AL_CUDA_TRY(cudaLaunchKernelExC(&cfg, p->kfn, args), "persistent decode kernel (clusters)");
    } else {
        AL_CUDA_TRY(cudaLaunchCooperativeKernel(p->kfn, dim3((unsigned)p->grid), dim3(MK_BT), args, p->smem,
                                                p->c->stream),
                    "persistent decode kernel");
    }
    int n_sync = p->n_sync;
    for (int i = 0; i < p->n_ops; i++) n_sync += p->ops[i].sync == 2 && mk_attn_counts(p->ops[i].u.at, pos);
    p->epoch += (unsigned long long)n_sync * (unsigned long long)(p->grid / cl);
    if (p->tagged) { /* the next run's tags; before they would wrap, every copy back to tag 0 */
        p->tag0 += (unsigned)n_ops;
        if (p->tag0 > 0xFFFFFFFFu - (unsigned)n_ops - 1u) {
            for (int i = 0; i < p->n_shadow; i++)
                AL_CUDA_TRY(cudaMemsetAsync(p->shadow[i].words, 0, sizeof(uint2) * (size_t)p->shadow[i].n, p->c->stream), "tag reset");
            p->tag0 = 1;
        }
    }
    return al_ok();
}

extern "C" void al_cuda_prog_set_rows(al_cuda_prog *p, int rows) { p->rows = rows; }
extern "C" void al_cuda_prog_set_cluster(al_cuda_prog *p, int blocks) { p->cluster = blocks == 2 || blocks == 4 ? blocks : 1; }
extern "C" int al_cuda_prog_cluster(const al_cuda_prog *p) { return p->cluster > 1 ? p->cluster : 1; }
extern "C" void al_cuda_prog_set_merge(al_cuda_prog *p, bool on) { p->no_merge = !on; }
extern "C" void al_cuda_prog_set_unit_pre(al_cuda_prog *p, bool on) { p->no_unit_pre = !on; }
extern "C" void al_cuda_prog_set_poller(al_cuda_prog *p, int sub) { p->poller = (sub >= 0 && sub < MK_SUB ? sub : MK_POLLER) * MK_T; }
extern "C" void al_cuda_prog_set_attn_split(al_cuda_prog *p, int keys) { p->attn_ch = keys; }
extern "C" void al_cuda_prog_set_kernel_ref(al_cuda_prog *p, bool on) { p->kernel_ref = on; }
extern "C" void al_cuda_prog_set_prefetch_ahead(al_cuda_prog *p, int steps) { p->ahead = steps < 1 ? 1 : steps > 4 ? 4 : steps; }
extern "C" void al_cuda_prog_set_norm_prefetch(al_cuda_prog *p, bool on) { p->norm_prefetch = on; }
extern "C" void al_cuda_prog_set_tagged(al_cuda_prog *p, int level) {
    p->tagged = level > 0 && (level & AL_TAG_EDGES) && level <= (AL_TAG_EDGES | 7) ? (level == AL_TAG_EDGES ? AL_TAG_OFF : level)
                : level < AL_TAG_OFF ? AL_TAG_OFF : level > AL_TAG_FULL ? AL_TAG_FULL : level;
}
extern "C" int al_cuda_prog_tag_level(const al_cuda_prog *p) { return p ? p->tagged : AL_TAG_OFF; }
extern "C" void al_cuda_prog_set_tag_nap(al_cuda_prog *p, int ns) {
    p->tag_mode = (p->tag_mode & ~MMQ_TAG_NAP) | (ns < 0 ? 0 : ns > 1000 ? 1000 : ns);
}
extern "C" void al_cuda_prog_set_tag_scope(al_cuda_prog *p, bool gpu) {
    p->tag_mode = (p->tag_mode & ~MMQ_TAG_GPU) | (gpu ? MMQ_TAG_GPU : 0);
}
extern "C" al_status al_cuda_prog_tag_failed(al_cuda_prog *p, bool *failed) {
    int f = 0;
    if (p->tag_fail) AL_TRY(al_cuda_download(p->c, &f, p->tag_fail, sizeof f));
    *failed = f != 0;
    return al_ok();
}

extern "C" void al_cuda_prog_shape(const al_cuda_prog *p, int *n_ops, int *n_sync, int *n_blocks) {
    if (n_ops) *n_ops = p ? p->n_ops : 0;
    if (n_sync) *n_sync = p ? p->n_sync : 0;
    if (n_blocks) *n_blocks = p ? p->grid : 0;
}

extern "C" al_status al_cuda_prog_timing(al_cuda_prog *p, bool on) {
    if (!p->ready) return al_err(AL_ERR_INVALID, "cuda prog: not finished");
    if (!on) {
        al_cuda_release(p->c, p->tm);
        p->tm = NULL;
        return al_ok();
    }
    if (!p->tm) { /* zeroed: the per-block stamps of points an op never reaches (input, for non-products) stay 0 */
        const size_t bytes = sizeof(unsigned long long) * mk_tm_len(p->n_ops, p->grid);
        AL_TRY(al_cuda_alloc(p->c, (void **)&p->tm, bytes));
        AL_TRY(al_cuda_memset(p->c, p->tm, 0, bytes));
    }
    return al_ok();
}

/* the timing buffer of the last run, downloaded: stamps of block 0 t[0 .. n_ops], per-block stamps
 * at mk_tm_blk (a malloc'ed copy the caller frees, or NULL) */
static unsigned long long *prog_tm(al_cuda_prog *p, al_status *st) {
    const size_t n = mk_tm_len(p->n_ops, p->grid);
    unsigned long long *t = (unsigned long long *)malloc(sizeof(unsigned long long) * n);
    *st = !p->tm ? al_err(AL_ERR_INVALID, "cuda prog: timing is off")
          : !t   ? al_err(AL_ERR_NOMEM, "cuda prog: out of memory")
                 : al_cuda_download(p->c, t, p->tm, sizeof(unsigned long long) * n);
    if (al_failed(st)) free(t);
    return al_failed(st) ? NULL : t;
}

extern "C" al_status al_cuda_prog_block_times(al_cuda_prog *p, double *out) {
    al_status st;
    unsigned long long *t = prog_tm(p, &st);
    if (!t) return st;
    const unsigned long long *b = t + mk_tm_blk(p->n_ops);
    for (size_t i = 0; i < 3 * (size_t)p->n_ops * (size_t)p->grid; i++) out[i] = b[i] >= t[0] ? (double)(b[i] - t[0]) * 1e-3 : 0.0;
    free(t);
    return st;
}

extern "C" al_status al_cuda_prog_times(al_cuda_prog *p, al_cuda_prog_time *out) {
    al_status st;
    unsigned long long *t = prog_tm(p, &st);
    if (!t) return st;
    const int n = p->n_ops;
    const unsigned long long *b = t + mk_tm_blk(n);
    for (int i = 0; i < n; i++) { /* from block 0 entering op i (t[i]) to the latest block reaching each point (0: none later) */
        unsigned long long last[3] = {0, 0, 0};
        for (int k = 0; k < p->grid; k++)
            for (int w = 0; w < 3; w++) {
                const unsigned long long v = b[3 * ((size_t)i * p->grid + k) + w];
                if (v > last[w]) last[w] = v;
            }
#define SINCE(w) (last[w] > t[i] ? (double)(last[w] - t[i]) * 1e-3 : 0.0)
        out[i].us = (double)(t[i + 1] - t[i]) * 1e-3;
        out[i].work = SINCE(MK_DONE);
        out[i].enter = SINCE(MK_ENTER);
        out[i].input = SINCE(MK_INPUT);
#undef SINCE
    }
    free(t);
    return st;
}

extern "C" al_status al_cuda_prog_attn_phases(al_cuda_prog *p, double us[7]) {
    if (!p->tm) return al_err(AL_ERR_INVALID, "cuda prog: timing is off");
    unsigned long long t[MK_NPH];
    AL_TRY(al_cuda_download(p->c, t, p->tm + mk_tm_ph(p->n_ops), sizeof t));
    int khz = 0;
    AL_CUDA_TRY(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, p->c->device), "clock rate");
    const double per = t[MK_NPH - 1] && khz > 0 ? 1e3 / ((double)khz * (double)t[MK_NPH - 1]) : 0.0;
    for (int k = 0; k < 7; k++) us[k] = (double)t[k] * per;
    return al_ok();
}

extern "C" void al_cuda_prog_op_name(const al_cuda_prog *p, int i, char *buf, size_t size) {
    if (!p || i < 0 || i >= p->n_ops) {
        snprintf(buf, size, "?");
        return;
    }
    const mk_op *o = &p->ops[i];
    switch (o->kind) {
    case MK_MATVEC: {
        const mmq_args &a = o->u.mv;
        snprintf(buf, size, "matvec%s%s k %lld rows %lld%s", a.glu ? " glu" : "", a.act ? " act" : "", (long long)a.k,
                 (long long)a.end[a.n - 1], a.nw ? (a.z ? " +gated norm" : " +norm") : "");
        break;
    }
    case MK_ATTN: snprintf(buf, size, "attention hd %d heads %d/%d", o->u.at.a.head_dim, o->u.at.a.n_head, o->u.at.a.n_head_kv); break;
    case MK_SSM: snprintf(buf, size, "ssm step H %d P %d N %d", o->u.ss.H, o->u.ss.P, o->u.ss.N); break;
    case MK_EMBED: snprintf(buf, size, "embedding %s k %d", al_type_name((al_type)o->u.em.type), o->u.em.k); break;
    default: snprintf(buf, size, "conv shift"); break;
    }
}
