/*
 * alloy/ops.h — the model operators of the CPU reference backend (float32 activations).
 *
 * Contract
 *  - Each op is a pure function of its inputs: outputs are separate arrays (they may alias an
 *    input only where stated), so every op can get a backward pass and a GPU twin tested against it.
 *  - Shapes are given explicitly, row-major with the last index fastest, e.g. x[n_tok][n].
 *  - State arguments (KV cache, conv state, SSM state) are read and updated in place; they are
 *    the only mutated inputs, and are documented per op.
 *  - `pool` may be NULL (single thread). `scratch` sizes are given per op.
 */
#ifndef ALLOY_OPS_H
#define ALLOY_OPS_H

#include "alloy/core.h"
#include "alloy/cpu.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y[r][i] = x[r][i] / rms(x[r][group of i]) * w[i]; groups of `group` elements (group = n: whole row).
 * w may be NULL (no scale). y may alias x. */
void al_op_rms_norm(const float *x, const float *w, float *y, int64_t rows, int64_t n, int64_t group, float eps);

/* Element-wise activations; y may alias x. */
void al_op_silu(const float *x, float *y, int64_t n);
void al_op_relu2(const float *x, float *y, int64_t n);        /* relu(x)^2 */
void al_op_gelu_erf(const float *x, float *y, int64_t n);     /* x/2 (1 + erf(x/sqrt 2)) */
void al_op_gelu_tanh(const float *x, float *y, int64_t n);
float al_softplus(float x);                                    /* log(1 + e^x), torch threshold 20 */
/* y[i] = silu(gate[i]) * up[i]; y may alias gate or up */
void al_op_swiglu(const float *gate, const float *up, float *y, int64_t n);
void al_op_add(const float *a, const float *b, float *y, int64_t n); /* y may alias a or b */

/* MoE routing of n_tok tokens over E <= 1024 experts: softmax of logits[t][E], then the k most
 * probable experts (ties: the lowest index) into ids[t][k] with their probabilities (not
 * renormalised) in weights[t][k]. */
void al_op_moe_route(const float *logits, int64_t n_tok, int E, int k, int32_t *ids, float *weights);

/* ---- rotary embeddings ---- */
typedef struct al_rope_cfg {
    int mode;           /* 1: NORM (adjacent pairs), 2: NEOX (halves) */
    int n_dims;         /* rotated dims (even, <= head_dim) */
    float theta;        /* freq base */
    const float *freq_factors; /* [n_dims/2] divisors of the frequencies (llama3), or NULL */
} al_rope_cfg;
/* Fills inv_freq[n_dims/2] (theta^(-2i/n_dims) / freq_factor[i]). */
void al_rope_inv_freq(const al_rope_cfg *cfg, float *inv_freq);
/* x[n_tok][n_head][head_dim] rotated in place by position pos[t]. */
void al_op_rope(float *x, int64_t n_tok, int n_head, int head_dim, const int32_t *pos, const al_rope_cfg *cfg,
                const float *inv_freq);

/* ---- attention ----
 * q[n_tok][n_head][hd]; kc/vc: caches [n_ctx][n_head_kv][hd] holding positions [0, n_past + n_tok).
 * Token t (position n_past + t) attends causally to positions j <= n_past + t, and only to
 * j > n_past + t - window when window > 0. out[n_tok][n_head][hd]. scratch: nth * (n_past+n_tok) floats. */
typedef struct al_attn_args {
    const float *q, *kc, *vc;
    float *out;
    int64_t n_tok, n_past;
    int n_head, n_head_kv, head_dim, window;
    float scale;
    float *scratch;
    al_isa isa;          /* kernels for the dot products (al_cpu_isa of the caller's al_cpu) */
} al_attn_args;
void al_op_attention(al_pool *pool, const al_attn_args *a);

/* ---- state-space ops ---- */
/* Depthwise causal conv over time: x[n_tok][ch], w[ch][k], b[ch] or NULL, state[k-1][ch] holds
 * the previous k-1 inputs (updated). y[n_tok][ch] = silu(conv) if apply_silu. */
void al_op_conv1d_causal(const float *x, int64_t n_tok, int ch, int k, const float *w, const float *b, float *state,
                         float *y, bool apply_silu);

/* Mamba-2 selective state-space scan for one sequence.
 * x[n_tok][x_stride] (head h uses x[t][h*P .. h*P+P)), dt[n_tok][dt_stride] (post softplus/clamp, first
 * H entries), B/C[n_tok][bc_stride] (group g uses [g*N, g*N+N)), A[H] (negative), D[H] or NULL;
 * state[H][P][N] updated; y[n_tok][H*P]. Heads map to groups as g = h / (H / G).
 * chunk > 1 and n_tok > 1: chunked SSD (intra-chunk matrix form, inter-chunk recurrence);
 * otherwise the per-step recurrence. scratch: nth * (chunk*chunk + 2*chunk) floats. */
typedef struct al_ssd_args {
    const float *x, *dt, *B, *C, *A, *D;
    int64_t x_stride, dt_stride, bc_stride;
    float *state, *y;
    int64_t n_tok;
    int H, P, N, G, chunk;
    float *scratch;
    al_isa isa;          /* kernels for the dot products */
} al_ssd_args;
void al_op_ssd(al_pool *pool, const al_ssd_args *a);

/* Mamba-1 selective scan: x[n_tok][Dn], dt[n_tok][Dn] (post softplus), A[Dn][N], B/C[n_tok][bc_stride]
 * (first N used), Dskip[Dn]; state[Dn][N] updated; y[n_tok][Dn]. */
void al_op_selective_scan(al_pool *pool, const float *x, const float *dt, const float *A, const float *B, const float *C,
                          int64_t bc_stride, const float *Dskip, float *state, float *y, int64_t n_tok, int Dn, int N);

#ifdef __cplusplus
}
#endif
#endif
