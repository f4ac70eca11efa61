/* ops.cu — norms, activations, rotary embeddings, small glue ops, causal conv and MoE routing. */
#include <float.h>

#include "cuda/cuda_impl.cuh"

/* block-wide sum over blockDim.x (multiple of 32, <= 1024); every thread gets the result */
__device__ float block_sum(float v, float *sh) {
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = al_warp_sum(v);
    __syncthreads();
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : 0.0f;
    return al_warp_sum(v);
}

/* one block per (row, group): y = x / rms * w; z != NULL: x is first multiplied by silu(z). Groups of
 * up to 8 values per thread are read once (held in registers), larger ones twice. */
#define RMS_PER_T 8
__global__ void k_rms_norm(const float *x, int64_t ldx, const float *z, int64_t ldz, const float *__restrict__ w, float *y,
                           int64_t ldy, int64_t n, int64_t group, float eps) {
    al_pdl_begin();
    __shared__ float sh[32];
    const int64_t r = blockIdx.x, g0 = (int64_t)blockIdx.y * group;
    const float *xr = x + r * ldx + g0;
    const float *zr = z ? z + r * ldz + g0 : NULL;
    float *yr = y + r * ldy + g0;
    const bool held = group <= (int64_t)RMS_PER_T * blockDim.x;
    float v[RMS_PER_T];
    float ss = 0.0f;
    if (held) {
#pragma unroll
        for (int u = 0; u < RMS_PER_T; u++) {
            const int64_t i = threadIdx.x + (int64_t)u * blockDim.x;
            v[u] = 0.0f;
            if (i < group) {
                v[u] = xr[i];
                if (zr) v[u] *= al_silu(zr[i]);
            }
            ss += v[u] * v[u];
        }
    } else {
        for (int64_t i = threadIdx.x; i < group; i += blockDim.x) {
            float t = xr[i];
            if (zr) t *= al_silu(zr[i]);
            ss += t * t;
        }
    }
    ss = block_sum(ss, sh);
    const float inv = 1.0f / sqrtf(ss / (float)group + eps);
    if (held) {
#pragma unroll
        for (int u = 0; u < RMS_PER_T; u++) {
            const int64_t i = threadIdx.x + (int64_t)u * blockDim.x;
            if (i < group) yr[i] = w ? (v[u] * inv) * w[g0 + i] : v[u] * inv;
        }
        return;
    }
    for (int64_t i = threadIdx.x; i < group; i += blockDim.x) {
        float t = xr[i];
        if (zr) t *= al_silu(zr[i]);
        t *= inv;
        yr[i] = w ? t * w[g0 + i] : t;
    }
}

static al_status rms_launch(al_cuda *c, const float *x, int64_t ldx, const float *z, int64_t ldz, const float *w, float *y,
                            int64_t ldy, int64_t rows, int64_t n, int64_t group, float eps) {
    if (group <= 0 || group > n) group = n;
    if (n % group) return al_err(AL_ERR_INVALID, "cuda rms_norm: n %lld not a multiple of group %lld", (long long)n, (long long)group);
    if (rows == 0 || n == 0) return al_ok();
    int threads = group >= 1024 ? 1024 : group >= 256 ? 256 : group >= 128 ? 128 : 64;
    if (threads > 1024) threads = 1024;
    dim3 grid((unsigned)rows, (unsigned)(n / group));
    return al_cuda_status(al_launch(c, k_rms_norm, grid, threads, 0, x, ldx, z, ldz, w, y, ldy, n, group, eps), "rms_norm");
}

extern "C" al_status al_cuda_rms_norm(al_cuda *c, const float *x, int64_t ldx, const float *w, float *y, int64_t ldy,
                                      int64_t rows, int64_t n, int64_t group, float eps) {
    return rms_launch(c, x, ldx, NULL, 0, w, y, ldy, rows, n, group, eps);
}

extern "C" al_status al_cuda_gated_rms_norm(al_cuda *c, float *y, int64_t ldy, const float *z, int64_t ldz, const float *w,
                                            int64_t rows, int64_t n, int64_t group, float eps) {
    return rms_launch(c, y, ldy, z, ldz, w, y, ldy, rows, n, group, eps);
}


__global__ void k_glu(int act, const float *g, int64_t ldg, const float *u, int64_t ldu, float *y, int64_t ldy, int64_t rows,
                      int64_t n) {
    al_pdl_begin();
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= rows * n) return;
    const int64_t r = idx / n, i = idx - r * n;
    float v = al_act_f(act, g[r * ldg + i]);
    if (u) v *= u[r * ldu + i];
    y[r * ldy + i] = v;
}

extern "C" al_status al_cuda_glu(al_cuda *c, al_cuda_act_kind act, const float *g, int64_t ldg, const float *u, int64_t ldu,
                                 float *y, int64_t ldy, int64_t rows, int64_t n) {
    if (rows * n == 0) return al_ok();
    return al_cuda_status(al_launch(c, k_glu, al_cdiv(rows * n, 256), 256, 0, (int)act, g, ldg, u, ldu, y, ldy, rows, n), "glu");
}

extern "C" al_status al_cuda_act(al_cuda *c, al_cuda_act_kind act, const float *x, float *y, int64_t n) {
    return al_cuda_glu(c, act, x, n, NULL, 0, y, n, 1, n);
}

extern "C" al_status al_cuda_swiglu(al_cuda *c, const float *gate, const float *up, float *y, int64_t n) {
    if (n == 0) return al_ok();
    return al_cuda_status(al_launch(c, k_glu, al_cdiv(n, 256), 256, 0, AL_CUDA_ACT_SILU, gate, n, up, n, y, n, 1, n), "swiglu");
}

__global__ void k_add(const float *a, const float *b, float *y, int64_t n) {
    al_pdl_begin();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a[i] + b[i];
}
extern "C" al_status al_cuda_add(al_cuda *c, const float *a, const float *b, float *y, int64_t n) {
    if (n == 0) return al_ok();
    return al_cuda_status(al_launch(c, k_add, al_cdiv(n, 256), 256, 0, a, b, y, n), "add");
}

__global__ void k_add_bias(float *y, int64_t ldy, const float *b, int64_t rows, int64_t n) {
    al_pdl_begin();
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= rows * n) return;
    const int64_t r = idx / n, i = idx - r * n;
    y[r * ldy + i] += b[i];
}
extern "C" al_status al_cuda_add_bias(al_cuda *c, float *y, int64_t ldy, const float *b, int64_t rows, int64_t n) {
    if (rows * n == 0) return al_ok();
    return al_cuda_status(al_launch(c, k_add_bias, al_cdiv(rows * n, 256), 256, 0, y, ldy, b, rows, n), "add_bias");
}

__global__ void k_concat(const float *a, int64_t na, const float *b, int64_t nb, float *y, int64_t rows) {
    al_pdl_begin();
    const int64_t w = na + nb, idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= rows * w) return;
    const int64_t r = idx / w, i = idx - r * w;
    y[idx] = i < na ? a[r * na + i] : b[r * nb + i - na];
}
extern "C" al_status al_cuda_concat(al_cuda *c, const float *a, int64_t na, const float *b, int64_t nb, float *y, int64_t rows) {
    if (rows * (na + nb) == 0) return al_ok();
    return al_cuda_status(al_launch(c, k_concat, al_cdiv(rows * (na + nb), 256), 256, 0, a, na, b, nb, y, rows), "concat");
}

/* ---- rope ---- */

__global__ void k_rope(float *x, int64_t n_tok, int n_head, int head_dim, const int32_t *pos, int mode, int half,
                       const float *inv_freq) {
    al_pdl_begin();
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n_tok * n_head * half) return;
    const int i = (int)(idx % half);
    const int64_t th = idx / half, t = th / n_head;
    al_rope_pair(x + th * head_dim, i, half, mode, pos[t], inv_freq);
}

extern "C" al_status al_cuda_rope(al_cuda *c, float *x, int64_t n_tok, int n_head, int head_dim, const int32_t *pos, int mode,
                                  int n_dims, const float *inv_freq) {
    if (n_dims > head_dim || n_dims % 2 || (mode != 1 && mode != 2)) return al_err(AL_ERR_INVALID, "cuda rope: bad config");
    const int64_t n = n_tok * n_head * (n_dims / 2);
    if (n == 0) return al_ok();
    return al_cuda_status(al_launch(c, k_rope, al_cdiv(n, 256), 256, 0, x, n_tok, n_head, head_dim, pos, mode, n_dims / 2, inv_freq), "rope");
}

__global__ void k_positions(int32_t *pos, int64_t n, const int32_t *base, int32_t base_host) {
    al_pdl_begin();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) pos[i] = (base ? *base : base_host) + (int32_t)i;
}
extern "C" al_status al_cuda_positions(al_cuda *c, int32_t *pos, int64_t n, const int32_t *base, int32_t base_host) {
    if (n == 0) return al_ok();
    return al_cuda_status(al_launch(c, k_positions, al_cdiv(n, 256), 256, 0, pos, n, base, base_host), "positions");
}

/* ---- causal depthwise conv (+ bias + SiLU); state[k-1][ch] holds the previous k-1 inputs ---- */

/* thread = (channel, tile of CONV_TT tokens): the window slides in registers, so each input is read
 * once per tile instead of k times; consecutive threads take consecutive channels (coalesced) */
#define CONV_TT 16
__global__ void k_conv1d(const float *__restrict__ x, int64_t ldx, int64_t n_tok, int ch, int k, const float *__restrict__ w,
                         const float *__restrict__ b, const float *__restrict__ state, float *__restrict__ y, int64_t ldy,
                         int silu) {
    al_pdl_begin();
    const int cc = blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t t0 = (int64_t)blockIdx.y * CONV_TT;
    if (cc >= ch) return;
    float wk[17], win[17];
    for (int j = 0; j < k; j++) wk[j] = w[(int64_t)cc * k + j];
    const float bias = b ? b[cc] : 0.0f;
    /* win[0 .. k-2] = inputs t0-k+1 .. t0-1 (from the state before the sequence) */
    for (int j = 0; j < k - 1; j++) {
        const int64_t src = t0 - (k - 1) + j;
        win[j] = src >= 0 ? x[src * ldx + cc] : state[(k - 1 + src) * ch + cc];
    }
    for (int tt = 0; tt < CONV_TT; tt++) {
        const int64_t t = t0 + tt;
        if (t >= n_tok) break;
        win[k - 1] = x[t * ldx + cc];
        float acc = bias;
        for (int j = 0; j < k; j++) acc = fmaf(wk[j], win[j], acc);
        y[t * ldy + cc] = silu ? al_silu(acc) : acc;
        for (int j = 0; j < k - 1; j++) win[j] = win[j + 1];
    }
}

/* one thread per channel: new state = last k-1 of [old state | x] */
__global__ void k_conv_state(const float *__restrict__ x, int64_t ldx, int64_t n_tok, int ch, int km1, float *state) {
    al_pdl_begin();
    const int cc = blockIdx.x * blockDim.x + threadIdx.x;
    if (cc < ch) al_conv_state_update(x, ldx, n_tok, ch, km1, state, cc);
}

/* one token (decode): conv + state shift in one pass, a thread per channel */
__global__ void k_conv_step(const float *__restrict__ x, int ch, int k, const float *__restrict__ w, const float *__restrict__ b,
                            float *state, float *__restrict__ y, int silu) {
    al_pdl_begin();
    const int cc = blockIdx.x * blockDim.x + threadIdx.x;
    if (cc >= ch) return;
    float win[17];
    for (int i = 0; i < k - 1; i++) win[i] = state[(int64_t)i * ch + cc];
    win[k - 1] = x[cc];
    float acc = b ? b[cc] : 0.0f;
    for (int j = 0; j < k; j++) acc = fmaf(w[(int64_t)cc * k + j], win[j], acc);
    y[cc] = silu ? al_silu(acc) : acc;
    for (int i = 0; i < k - 1; i++) state[(int64_t)i * ch + cc] = win[i + 1];
}

extern "C" al_status al_cuda_conv1d_causal(al_cuda *c, const float *x, int64_t ldx, int64_t n_tok, int ch, int k,
                                           const float *w, const float *b, float *state, float *y, int64_t ldy,
                                           bool apply_silu) {
    if (k < 1 || k > 17 || ch <= 0) return al_err(AL_ERR_INVALID, "cuda conv1d: kernel %d / channels %d", k, ch);
    if (n_tok == 0) return al_ok();
    if (n_tok == 1) {
        return al_cuda_status(al_launch(c, k_conv_step, al_cdiv(ch, 128), 128, 0, x, ch, k, w, b, state, y, apply_silu ? 1 : 0),
                              "conv_step");
    }
    AL_CUDA_TRY(al_launch(c, k_conv1d, dim3(al_cdiv(ch, 128), al_cdiv(n_tok, CONV_TT)), 128, 0, x, ldx, n_tok, ch, k, w, b, state, y, ldy, apply_silu ? 1 : 0), "conv1d");
    if (k > 1) {
        return al_cuda_status(al_launch(c, k_conv_state, al_cdiv(ch, 256), 256, 0, x, ldx, n_tok, ch, k - 1, state), "conv_state");
    }
    return al_ok();
}

/* ---- Mamba-2 dt ---- */

__global__ void k_ssm_dt(const float *raw, int64_t ld_raw, const float *bias, float *dt, int64_t n_tok, int H, float fl,
                         float lo, float hi) {
    al_pdl_begin();
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n_tok * H) return;
    const int64_t t = idx / H;
    const int h = (int)(idx - t * H);
    float v = al_softplus(raw[t * ld_raw + h] + (bias ? bias[h] : 0.0f));
    v = fmaxf(v, fl);
    dt[idx] = fminf(fmaxf(v, lo), hi);
}
extern "C" al_status al_cuda_ssm_dt(al_cuda *c, const float *raw, int64_t ld_raw, const float *bias, float *dt, int64_t n_tok,
                                    int H, float floor_, float lo, float hi) {
    if (n_tok * H == 0) return al_ok();
    return al_cuda_status(al_launch(c, k_ssm_dt, al_cdiv(n_tok * H, 256), 256, 0, raw, ld_raw, bias, dt, n_tok, H, floor_, lo, hi), "ssm_dt");
}

/* ---- MoE ---- */

/* one warp per token: softmax over E (<= 1024) logits, then k argmax passes */
__global__ void k_moe_route(const float *logits, int64_t n_tok, int E, int k, int32_t *ids, float *weights) {
    al_pdl_begin();
    const int64_t t = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (t >= n_tok) return;
    const float *lg = logits + t * E;
    float mx = -FLT_MAX;
    for (int e = lane; e < E; e += 32) mx = fmaxf(mx, lg[e]);
    mx = al_warp_max(mx);
    float sum = 0.0f;
    for (int e = lane; e < E; e += 32) sum += expf(lg[e] - mx);
    sum = al_warp_sum(sum);
    uint32_t used[32] = {0}; /* E <= 1024 */
    for (int j = 0; j < k; j++) {
        float best = -FLT_MAX;
        int bi = 0x7fffffff;
        for (int e = lane; e < E; e += 32) {
            if (used[e >> 5] & (1u << (e & 31))) continue;
            const float v = lg[e];
            if (v > best || (v == best && e < bi)) best = v, bi = e;
        }
        for (int o = 16; o > 0; o >>= 1) {
            const float ob = __shfl_xor_sync(0xffffffffu, best, o);
            const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
            if (ob > best || (ob == best && oi < bi)) best = ob, bi = oi;
        }
        used[bi >> 5] |= 1u << (bi & 31);
        if (lane == 0) {
            ids[t * k + j] = bi;
            weights[t * k + j] = expf(best - mx) / sum;
        }
    }
}

extern "C" al_status al_cuda_moe_route(al_cuda *c, const float *logits, int64_t n_tok, int E, int k, int32_t *ids,
                                       float *weights) {
    if (E <= 0 || E > 1024 || k <= 0 || k > E) return al_err(AL_ERR_INVALID, "cuda moe_route: E %d, k %d", E, k);
    if (n_tok == 0) return al_ok();
    return al_cuda_status(al_launch(c, k_moe_route, al_cdiv(n_tok, 4), 128, 0, logits, n_tok, E, k, ids, weights), "moe_route");
}

__global__ void k_weighted_sum(const float *x, int64_t ldx, const float *w, int k, float *y, int64_t n) {
    al_pdl_begin();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float acc = y[i];
    for (int j = 0; j < k; j++) acc = fmaf(w[j], x[j * ldx + i], acc);
    y[i] = acc;
}
extern "C" al_status al_cuda_weighted_sum(al_cuda *c, const float *x, int64_t ldx, const float *w, int k, float *y, int64_t n) {
    if (n == 0) return al_ok();
    return al_cuda_status(al_launch(c, k_weighted_sum, al_cdiv(n, 256), 256, 0, x, ldx, w, k, y, n), "weighted_sum");
}

/* ---- fused residual add + RMSNorm: one block per row ---- */

__global__ void k_add_rms(float *h, const float *d, const float *__restrict__ w, float *y, int64_t n, float eps) {
    al_pdl_begin();
    __shared__ float sh[32];
    float *hr = h + (int64_t)blockIdx.x * n;
    const float *dr = d + (int64_t)blockIdx.x * n;
    float *yr = y + (int64_t)blockIdx.x * n;
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        const float v = hr[i] + dr[i];
        hr[i] = v;
        ss += v * v;
    }
    ss = block_sum(ss, sh);
    const float inv = 1.0f / sqrtf(ss / (float)n + eps);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = w ? hr[i] * inv * w[i] : hr[i] * inv;
}

extern "C" al_status al_cuda_add_rms_norm(al_cuda *c, float *h, const float *d, const float *w, float *y, int64_t rows,
                                          int64_t n, float eps) {
    if (rows * n == 0) return al_ok();
    const int threads = n >= 1024 ? 1024 : n >= 256 ? 256 : 64;
    return al_cuda_status(al_launch(c, k_add_rms, (unsigned)rows, threads, 0, h, d, w, y, n, eps), "add_rms_norm");
}

/* ---- attention glue: per-head norm + RoPE on q and k, k and v into the cache ----
 * block (t, slot): slots [0, nh) are q heads, [nh, nh + nkv) k heads, [nh + nkv, nh + 2 nkv) v heads. */
__global__ void k_qkv_post(al_cuda_qkv_args a) {
    al_pdl_begin();
    __shared__ float xs[256];
    __shared__ float sh[32];
    const int64_t t = blockIdx.x;
    const int slot = blockIdx.y, hd = a.head_dim, nh = a.n_head, nkv = a.n_head_kv;
    const int kind = slot < nh ? 0 : slot < nh + nkv ? 1 : 2;
    const int head = kind == 0 ? slot : kind == 1 ? slot - nh : slot - nh - nkv;
    const float *src = kind == 0 ? a.q + (t * nh + head) * hd : (kind == 1 ? a.k : a.v) + (t * nkv + head) * hd;
    for (int i = threadIdx.x; i < hd; i += blockDim.x) xs[i] = src[i];
    const float *nw = kind == 0 ? a.q_norm : kind == 1 ? a.k_norm : NULL;
    __syncthreads();
    if (nw) { /* uniform per block */
        float ss = 0.0f;
        for (int i = threadIdx.x; i < hd; i += blockDim.x) ss += xs[i] * xs[i];
        ss = block_sum(ss, sh);
        const float inv = 1.0f / sqrtf(ss / (float)hd + a.eps);
        for (int i = threadIdx.x; i < hd; i += blockDim.x) xs[i] = (xs[i] * inv) * nw[i];
        __syncthreads();
    }
    const int32_t p = a.pos[t];
    if (kind < 2 && a.rope_mode) {
        const int half = a.n_dims / 2;
        for (int i = threadIdx.x; i < half; i += blockDim.x) al_rope_pair(xs, i, half, a.rope_mode, p, a.inv_freq);
        __syncthreads();
    }
    if (kind == 0) {
        float *dst = a.q + (t * nh + head) * hd;
        for (int i = threadIdx.x; i < hd; i += blockDim.x) dst[i] = xs[i];
        return;
    }
    const int64_t off = (int64_t)p * nkv * hd + (int64_t)head * hd;
    void *cache = kind == 1 ? (a.kcs ? a.kcs[t] : a.kc) : (a.vcs ? a.vcs[t] : a.vc);
    if (a.kv_type == AL_TYPE_F16)
        for (int i = threadIdx.x; i < hd; i += blockDim.x) ((__half *)cache)[off + i] = al_kv_t<__half>(xs[i]);
    else
        for (int i = threadIdx.x; i < hd; i += blockDim.x) ((float *)cache)[off + i] = xs[i];
}

extern "C" al_status al_cuda_qkv_post(al_cuda *c, const al_cuda_qkv_args *a) {
    if (a->head_dim <= 0 || a->head_dim > 256 || a->n_dims > a->head_dim || a->n_dims % 2 || a->rope_mode < 0 ||
        a->rope_mode > 2 || (a->kv_type != AL_TYPE_F16 && a->kv_type != AL_TYPE_F32) || !a->kcs != !a->vcs)
        return al_err(AL_ERR_INVALID, "cuda qkv_post: head_dim %d, rope %d/%d", a->head_dim, a->rope_mode, a->n_dims);
    if (a->n_tok == 0) return al_ok();
    dim3 grid((unsigned)a->n_tok, (unsigned)(a->n_head + 2 * a->n_head_kv));
    return al_cuda_status(al_launch(c, k_qkv_post, grid, a->head_dim > 64 ? 128 : 64, 0, *a), "qkv_post");
}
