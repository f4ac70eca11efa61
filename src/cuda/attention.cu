/*
 * attention.cu — causal (optionally sliding-window) GQA attention over an F32 or F16 KV cache.
 *
 * Prefill (n_tok > 1): flash-attention style. A block of 4 warps takes 16 queries of one head (4 per
 * warp) and walks key tiles of 32 through shared memory; lane j scores key j for the warp's 4
 * queries, the softmax is kept online (running max m, sum l, rescaled accumulator o, lane-owned
 * slices of head_dim), so nothing of size n_kv is materialised.
 * Decode (n_tok == 1): split-K. Block (head, split) scores keys [split*CH, split*CH + CH), writes
 * its unnormalised o with its (m, l); a combine kernel merges the splits. The number of splits is
 * fixed by the cache capacity, and the live length is read from device memory when given, so the
 * launch can sit in a CUDA graph replayed at any position.
 */
#include <float.h>

#include "cuda/cuda_impl.cuh"

#define FA_BQ 16  /* queries per block */
#define FA_BK 32  /* keys per tile */
#define DEC_CH 64 /* keys per decode split */

template <int D, typename KV>
__global__ void __launch_bounds__(128) k_flash(const float *__restrict__ q, const KV *__restrict__ kc, const KV *__restrict__ vc,
                                               float *__restrict__ out, int64_t n_tok, int64_t n_past, int n_head, int n_head_kv,
                                               int hd, int window, float scale) {
    al_pdl_begin();
    extern __shared__ float smem[];
    float *qs = smem;                     /* [FA_BQ][D] */
    float *ks = qs + FA_BQ * D;           /* [FA_BK][D + 1] */
    float *vs = ks + FA_BK * (D + 1);     /* [FA_BK][D] */
    constexpr int C = D / 32;             /* dims per lane */
    const int h = blockIdx.y, hk = h / (n_head / n_head_kv);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t t0 = (int64_t)blockIdx.x * FA_BQ;
    const int64_t kv_row = (int64_t)n_head_kv * hd;

    for (int i = threadIdx.x; i < FA_BQ * D; i += blockDim.x) {
        const int qi = i / D, d = i - qi * D;
        const int64_t t = t0 + qi;
        qs[i] = (t < n_tok && d < hd) ? q[(t * n_head + h) * hd + d] * scale : 0.0f;
    }
    float m[4], l[4], o[4][C];
#pragma unroll
    for (int r = 0; r < 4; r++) {
        m[r] = -INFINITY, l[r] = 0.0f;
#pragma unroll
        for (int c = 0; c < C; c++) o[r][c] = 0.0f;
    }
    const int64_t t_last = (t0 + FA_BQ - 1 < n_tok ? t0 + FA_BQ - 1 : n_tok - 1);
    const int64_t p_first = n_past + t0, p_last = n_past + t_last;
    int64_t kbeg = 0;
    if (window > 0 && p_first - window + 1 > 0) kbeg = ((p_first - window + 1) / FA_BK) * FA_BK;
    for (int64_t kb = kbeg; kb <= p_last; kb += FA_BK) {
        __syncthreads();
        for (int i = threadIdx.x; i < FA_BK * D; i += blockDim.x) {
            const int j = i / D, d = i - j * D;
            const int64_t kj = kb + j;
            float kv = 0.0f, vv = 0.0f;
            if (kj <= p_last && d < hd) {
                kv = al_kv_f<KV>(kc[kj * kv_row + (int64_t)hk * hd + d]);
                vv = al_kv_f<KV>(vc[kj * kv_row + (int64_t)hk * hd + d]);
            }
            ks[j * (D + 1) + d] = kv;
            vs[j * D + d] = vv;
        }
        __syncthreads();
        float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        const float *kr = ks + lane * (D + 1);
        const float *qw = qs + warp * 4 * D;
#pragma unroll 8
        for (int d = 0; d < D; d++) {
            const float kd = kr[d];
#pragma unroll
            for (int r = 0; r < 4; r++) s[r] = fmaf(qw[r * D + d], kd, s[r]);
        }
        const int64_t kj = kb + lane;
#pragma unroll
        for (int r = 0; r < 4; r++) {
            const int64_t p = n_past + t0 + warp * 4 + r;
            const bool ok = kj <= p && (window <= 0 || kj > p - window);
            const float sv = ok ? s[r] : -INFINITY;
            const float mt = al_warp_max(sv);
            const float mn = fmaxf(m[r], mt);
            if (mn == -INFINITY) continue; /* nothing visible yet (warp-uniform) */
            const float pj = ok ? expf(sv - mn) : 0.0f;
            const float corr = expf(m[r] - mn);
            l[r] = l[r] * corr + al_warp_sum(pj);
            m[r] = mn;
#pragma unroll
            for (int c = 0; c < C; c++) o[r][c] *= corr;
#pragma unroll 8
            for (int j = 0; j < FA_BK; j++) {
                const float pb = __shfl_sync(0xffffffffu, pj, j);
#pragma unroll
                for (int c = 0; c < C; c++) o[r][c] = fmaf(pb, vs[j * D + lane + 32 * c], o[r][c]);
            }
        }
    }
#pragma unroll
    for (int r = 0; r < 4; r++) {
        const int64_t t = t0 + warp * 4 + r;
        if (t >= n_tok) continue;
        const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
#pragma unroll
        for (int c = 0; c < C; c++) {
            const int d = lane + 32 * c;
            if (d < hd) out[(t * n_head + h) * hd + d] = o[r][c] * inv;
        }
    }
}

/* part: [seq][n_head][n_split][D + 2] = o[D] (unnormalised), m, l; sequence blockIdx.z (kcs / vcs:
 * its caches, q its row, d_n_past[seq] its position; else kc / vc and seq 0) */
template <int D, typename KV>
__global__ void __launch_bounds__(128) k_decode(const float *__restrict__ q, const KV *__restrict__ kc, const KV *__restrict__ vc,
                                                float *__restrict__ part, int n_split, int64_t n_past, const int32_t *d_n_past,
                                                int n_head, int n_head_kv, int hd, int window, float scale,
                                                const void *const *kcs, const void *const *vcs) {
    al_pdl_begin();
    __shared__ float qs[D];
    __shared__ float sc[DEC_CH];
    __shared__ float red[8];
    const int h = blockIdx.x, split = blockIdx.y, seq = blockIdx.z, hk = h / (n_head / n_head_kv);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (kcs) kc = (const KV *)kcs[seq], vc = (const KV *)vcs[seq];
    q += (int64_t)seq * n_head * hd;
    part += (int64_t)seq * n_head * n_split * (D + 2);
    const int64_t pos = d_n_past ? (int64_t)d_n_past[seq] : n_past; /* the query's position */
    const int64_t j0 = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
    int64_t start = (int64_t)split * DEC_CH, end = start + DEC_CH;
    if (end > pos + 1) end = pos + 1;
    if (start < j0) start = j0;
    float *pp = part + ((int64_t)h * n_split + split) * (D + 2);
    if (start >= end) {
        if (threadIdx.x == 0) pp[D] = -INFINITY, pp[D + 1] = 0.0f;
        return;
    }
    const int n = (int)(end - start);
    const int64_t kv_row = (int64_t)n_head_kv * hd;
    for (int d = threadIdx.x; d < D; d += blockDim.x) qs[d] = d < hd ? q[(int64_t)h * hd + d] * scale : 0.0f;
    __syncthreads();
    for (int i = warp; i < n; i += 4) {
        const KV *kr = kc + (start + i) * kv_row + (int64_t)hk * hd;
        float s = 0.0f;
        for (int d = lane; d < hd; d += 32) s = fmaf(qs[d], al_kv_f<KV>(kr[d]), s);
        s = al_warp_sum(s);
        if (lane == 0) sc[i] = s;
    }
    __syncthreads();
    float mx = -INFINITY;
    for (int i = threadIdx.x; i < n; i += blockDim.x) mx = fmaxf(mx, sc[i]);
    mx = al_warp_max(mx);
    if (lane == 0) red[warp] = mx;
    __syncthreads();
    mx = fmaxf(fmaxf(red[0], red[1]), fmaxf(red[2], red[3]));
    __syncthreads();
    float sum = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const float p = expf(sc[i] - mx);
        sc[i] = p;
        sum += p;
    }
    sum = al_warp_sum(sum);
    if (lane == 0) red[4 + warp] = sum;
    __syncthreads();
    sum = red[4] + red[5] + red[6] + red[7];
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float acc = 0.0f;
        if (d < hd) {
            const KV *vr = vc + start * kv_row + (int64_t)hk * hd + d;
            for (int i = 0; i < n; i++) acc = fmaf(sc[i], al_kv_f<KV>(vr[(int64_t)i * kv_row]), acc);
        }
        pp[d] = acc;
    }
    if (threadIdx.x == 0) pp[D] = mx, pp[D + 1] = sum;
}

/* head blockIdx.x of sequence blockIdx.y (part and out rows of gridDim.x heads per sequence) */
template <int D>
__global__ void k_decode_combine(const float *__restrict__ part, int n_split, int hd, float *__restrict__ out) {
    al_pdl_begin();
    const int h = blockIdx.x, seq = blockIdx.y;
    const float *ph = part + ((int64_t)seq * gridDim.x + h) * n_split * (D + 2);
    out += (int64_t)seq * gridDim.x * hd;
    float M = -INFINITY;
    for (int s = 0; s < n_split; s++) M = fmaxf(M, ph[s * (D + 2) + D]);
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float L = 0.0f, acc = 0.0f;
        for (int s = 0; s < n_split; s++) {
            const float ms = ph[s * (D + 2) + D];
            if (ms == -INFINITY) continue;
            const float w = expf(ms - M);
            L += w * ph[s * (D + 2) + D + 1];
            acc += w * ph[s * (D + 2) + d];
        }
        out[(int64_t)h * hd + d] = L > 0.0f ? acc / L : 0.0f;
    }
}

template <int D, typename KV> static al_status attn_run(al_cuda *c, const al_cuda_attn_args *a) {
    const KV *kc = (const KV *)a->kc, *vc = (const KV *)a->vc;
    if (a->n_tok == 1) {
        const int n_split = (int)al_cdiv(a->n_ctx, DEC_CH), ns = a->n_seq > 1 ? a->n_seq : 1;
        void *s;
        AL_TRY(al_cuda_scratch(c, sizeof(float) * (size_t)ns * (size_t)a->n_head * (size_t)n_split * (D + 2), &s));
        float *part = (float *)s;
        AL_CUDA_TRY(al_launch(c, (k_decode<D, KV>), dim3((unsigned)a->n_head, (unsigned)n_split, (unsigned)ns), 128, 0,
            a->q, kc, vc, part, n_split, a->n_past, a->d_n_past, a->n_head, a->n_head_kv, a->head_dim, a->window, a->scale,
            ns > 1 ? a->kcs : NULL, ns > 1 ? a->vcs : NULL), "attention decode");
        return al_cuda_status(al_launch(c, k_decode_combine<D>, dim3((unsigned)a->n_head, (unsigned)ns), D < 128 ? D : 128, 0, part,
                                        n_split, a->head_dim, a->out), "attention combine");
    }
    const size_t smem = sizeof(float) * (size_t)(FA_BQ * D + FA_BK * (D + 1) + FA_BK * D);
    if (smem > 48 * 1024)
        AL_TRY(al_cuda_status(cudaFuncSetAttribute(k_flash<D, KV>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem),
                              "flash smem attribute"));
    dim3 grid(al_cdiv(a->n_tok, FA_BQ), (unsigned)a->n_head);
    AL_CUDA_TRY(al_launch(c, (k_flash<D, KV>), grid, 128, smem, a->q, kc, vc, a->out, a->n_tok, a->n_past, a->n_head, a->n_head_kv,
                                                   a->head_dim, a->window, a->scale), "launch k_flash");
    AL_CUDA_LAUNCHED("flash attention");
}

template <typename KV> static al_status attn_pick(al_cuda *c, const al_cuda_attn_args *a) {
    if (a->head_dim <= 32) return attn_run<32, KV>(c, a);
    if (a->head_dim <= 64) return attn_run<64, KV>(c, a);
    if (a->head_dim <= 128) return attn_run<128, KV>(c, a);
    return attn_run<256, KV>(c, a);
}

extern "C" al_status al_cuda_attention(al_cuda *c, const al_cuda_attn_args *a) {
    if (a->n_head <= 0 || a->n_head_kv <= 0 || a->n_head % a->n_head_kv || a->head_dim <= 0 || a->head_dim > 256)
        return al_err(AL_ERR_INVALID, "cuda attention: heads %d/%d, head_dim %d", a->n_head, a->n_head_kv, a->head_dim);
    if (a->n_tok <= 0) return al_ok();
    if (a->n_seq > 1 && (a->n_tok != 1 || !a->d_n_past || !a->kcs || !a->vcs))
        return al_err(AL_ERR_INVALID, "cuda attention: %d sequences need one token each, device positions and cache tables", a->n_seq);
    if (a->n_tok > 1 && a->d_n_past) return al_err(AL_ERR_INVALID, "cuda attention: device n_past only for decode");
    if (a->n_tok == 1 && a->n_ctx <= 0) return al_err(AL_ERR_INVALID, "cuda attention: decode needs n_ctx");
    if (!a->d_n_past && a->n_past + a->n_tok > (int64_t)a->n_ctx && a->n_ctx > 0)
        return al_err(AL_ERR_RANGE, "cuda attention: %lld positions exceed n_ctx %d", (long long)(a->n_past + a->n_tok), a->n_ctx);
    if (a->kv_type == AL_TYPE_F32) return attn_pick<float>(c, a);
    if (a->kv_type == AL_TYPE_F16) return attn_pick<__half>(c, a);
    return al_err(AL_ERR_UNSUPPORTED, "cuda attention: KV type %s", al_type_name(a->kv_type));
}

template <typename KV>
__global__ void k_kv_store(KV *cache, int64_t row, const float *src, int64_t ld_src, int64_t n_tok, int64_t n_past,
                           const int32_t *d_n_past) {
    al_pdl_begin();
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n_tok * row) return;
    const int64_t t = idx / row, i = idx - t * row;
    const int64_t p = (d_n_past ? (int64_t)*d_n_past : n_past) + t;
    const float v = src[t * ld_src + i];
    cache[p * row + i] = al_kv_t<KV>(v);
}

extern "C" al_status al_cuda_kv_store(al_cuda *c, void *cache, al_type kv_type, int64_t row, const float *src, int64_t ld_src,
                                      int64_t n_tok, int64_t n_past, const int32_t *d_n_past) {
    if (n_tok * row == 0) return al_ok();
    const unsigned g = al_cdiv(n_tok * row, 256);
    if (kv_type == AL_TYPE_F32) AL_CUDA_TRY(al_launch(c, k_kv_store<float>, g, 256, 0, (float *)cache, row, src, ld_src, n_tok, n_past, d_n_past), "launch k_kv_store");
    else if (kv_type == AL_TYPE_F16)
        AL_CUDA_TRY(al_launch(c, k_kv_store<__half>, g, 256, 0, (__half *)cache, row, src, ld_src, n_tok, n_past, d_n_past), "launch k_kv_store");
    else return al_err(AL_ERR_UNSUPPORTED, "cuda kv_store: KV type %s", al_type_name(kv_type));
    AL_CUDA_LAUNCHED("kv_store");
}
