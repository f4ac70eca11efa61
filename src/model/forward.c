/*
 * forward.c — the session (caches + scratch) and the forward pass shared by every architecture.
 *
 * A layer is: [zamba2 shared block] -> [mixer: attention | Mamba-2 | Mamba-1] -> [FFN: SwiGLU |
 * ReLU² | MoE], each sub-block pre-norm with a residual. Tokens are processed in micro-batches of
 * at most `ubatch`; activations are float32 rows [n_tok][width].
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloy/ops.h"
#include "model/model_internal.h"

typedef struct layer_cache {
    float *k, *v;        /* [n_ctx][n_head_kv * head_dim] */
    float *conv;         /* [d_conv - 1][conv_ch] */
    float *ssm;          /* Mamba-2: [H][P][N]; Mamba-1: [d_inner][N] */
} layer_cache;

struct al_session {
    al_model *m;
    int n_ctx, pos, ubatch;
    layer_cache *lc;
    float *inv_freq;     /* [rope_dim/2] */
    int32_t *positions;  /* [ubatch] */
    /* scratch rows, each [ubatch][width] */
    float *h, *xn, *t0, *t1, *t2, *t3, *emb0, *big;
    float *xin, *delta; /* [ubatch][n_embd]: mixer input (zamba2 adds the shared block) and sub-block output */
    float *attn_scratch, *ssd_scratch;
    size_t w_small, w_big;
};

static int imax(int a, int b) { return a > b ? a : b; }

static float *zalloc(size_t n) { return al_calloc(NULL, n ? n : 1, sizeof(float)); }

al_status al_session_init(al_session **out, al_model *m, int n_ctx) {
    *out = NULL;
    const al_hparams *hp = &m->hp;
    if (n_ctx <= 0) n_ctx = hp->n_ctx_train < 8192 ? hp->n_ctx_train : 8192;
    if (n_ctx > (1 << 22)) return al_err(AL_ERR_INVALID, "session: n_ctx %d too large", n_ctx);
    al_session *s = calloc(1, sizeof *s);
    if (!s) return al_err(AL_ERR_NOMEM, "session: out of memory");
    s->m = m;
    s->n_ctx = n_ctx;
    s->ubatch = 256;
    int nth = al_cpu_threads(m->cpu);
    s->lc = calloc((size_t)hp->n_layer, sizeof *s->lc);
    if (!s->lc) goto nomem;
    int64_t kv = (int64_t)hp->n_head_kv * hp->head_dim;
    int64_t conv_ch2 = hp->ssm_d_inner + 2 * (int64_t)hp->ssm_n_group * hp->ssm_d_state;
    for (int il = 0; il < hp->n_layer; il++) {
        layer_cache *c = &s->lc[il];
        if (hp->layer_mixer[il] == AL_MIXER_ATTN || hp->layer_shared[il]) {
            c->k = zalloc((size_t)n_ctx * (size_t)kv);
            c->v = zalloc((size_t)n_ctx * (size_t)kv);
            if (!c->k || !c->v) goto nomem;
        }
        if (hp->layer_mixer[il] == AL_MIXER_MAMBA2) {
            c->conv = zalloc((size_t)(hp->ssm_d_conv - 1) * (size_t)conv_ch2);
            c->ssm = zalloc((size_t)hp->ssm_d_inner * (size_t)hp->ssm_d_state);
            if (!c->conv || !c->ssm) goto nomem;
        }
        if (hp->layer_mixer[il] == AL_MIXER_MAMBA1) {
            c->conv = zalloc((size_t)(hp->ssm_d_conv - 1) * (size_t)hp->ssm_d_inner);
            c->ssm = zalloc((size_t)hp->ssm_d_inner * (size_t)hp->ssm_d_state);
            if (!c->conv || !c->ssm) goto nomem;
        }
    }
    /* widths: small rows hold any per-token vector except the biggest projections */
    int qd = hp->n_head * hp->head_dim;
    int w = imax(2 * hp->n_embd, imax(qd, hp->ssm_d_inner + 2 * hp->ssm_n_group * hp->ssm_d_state));
    w = imax(w, hp->zamba_attn_dim);
    w = imax(w, hp->ssm_dt_rank + 2 * hp->ssm_d_state + 2 * hp->ssm_d_inner);
    s->w_small = (size_t)w;
    int big = imax(2 * hp->n_ff, 2 * hp->ssm_d_inner + 2 * hp->ssm_n_group * hp->ssm_d_state + hp->ssm_n_head);
    big = imax(big, 2 * hp->n_ff_expert);
    big = imax(big, w);
    s->w_big = (size_t)big;
    size_t ub = (size_t)s->ubatch;
    s->h = zalloc(ub * (size_t)hp->n_embd);
    s->emb0 = zalloc(ub * (size_t)hp->n_embd);
    s->xin = zalloc(ub * (size_t)hp->n_embd);
    s->delta = zalloc(ub * (size_t)hp->n_embd);
    s->xn = zalloc(ub * s->w_small);
    s->t0 = zalloc(ub * s->w_small);
    s->t1 = zalloc(ub * s->w_small);
    s->t2 = zalloc(ub * s->w_small);
    s->t3 = zalloc(ub * s->w_big);
    s->big = zalloc(ub * s->w_big);
    s->positions = al_calloc(NULL, ub, sizeof(int32_t));
    s->attn_scratch = zalloc((size_t)nth * (size_t)n_ctx);
    int L = hp->ssm_chunk > 0 ? hp->ssm_chunk : 1;
    s->ssd_scratch = zalloc((size_t)nth * (size_t)(L * L + 2 * L));
    s->inv_freq = zalloc((size_t)(hp->rope_dim > 0 ? hp->rope_dim : 2));
    if (!s->h || !s->emb0 || !s->xin || !s->delta || !s->xn || !s->t0 || !s->t1 || !s->t2 || !s->t3 || !s->big || !s->positions ||
        !s->attn_scratch || !s->ssd_scratch || !s->inv_freq)
        goto nomem;
    if (hp->rope_mode != AL_ROPE_NONE) {
        float *ff = NULL;
        al_status st = al_model_get_f32(m, "rope_freqs.weight", false, hp->rope_dim / 2, &ff);
        if (al_failed(&st)) {
            al_session_free(s);
            return st;
        }
        float *factors = ff;
        if (!factors && hp->rope_factor > 0 && hp->rope_orig_ctx > 0) {
            factors = al_model_own(m, sizeof(float) * (size_t)(hp->rope_dim / 2));
            if (!factors) goto nomem;
            al_hparams_rope_factors(hp, factors);
        }
        al_rope_cfg rc = {hp->rope_mode == AL_ROPE_NORM ? 1 : 2, hp->rope_dim, hp->rope_theta, factors};
        al_rope_inv_freq(&rc, s->inv_freq);
    }
    *out = s;
    return al_ok();
nomem:
    al_session_free(s);
    return al_err(AL_ERR_NOMEM, "session: out of memory for n_ctx %d", n_ctx);
}

void al_session_free(al_session *s) {
    if (!s) return;
    if (s->lc) {
        for (int il = 0; il < s->m->hp.n_layer; il++) {
            al_free(NULL, s->lc[il].k);
            al_free(NULL, s->lc[il].v);
            al_free(NULL, s->lc[il].conv);
            al_free(NULL, s->lc[il].ssm);
        }
        free(s->lc);
    }
    float *bufs[] = {s->h, s->emb0, s->xin, s->delta, s->xn, s->t0, s->t1, s->t2, s->t3, s->big, s->attn_scratch, s->ssd_scratch, s->inv_freq};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) al_free(NULL, bufs[i]);
    al_free(NULL, s->positions);
    free(s);
}

void al_session_reset(al_session *s) {
    const al_hparams *hp = &s->m->hp;
    int64_t conv_ch2 = hp->ssm_d_inner + 2 * (int64_t)hp->ssm_n_group * hp->ssm_d_state;
    for (int il = 0; il < hp->n_layer; il++) {
        layer_cache *c = &s->lc[il];
        size_t cw = hp->layer_mixer[il] == AL_MIXER_MAMBA2 ? (size_t)conv_ch2 : (size_t)hp->ssm_d_inner;
        if (c->conv) memset(c->conv, 0, (size_t)(hp->ssm_d_conv - 1) * cw * sizeof(float));
        if (c->ssm) memset(c->ssm, 0, (size_t)hp->ssm_d_inner * (size_t)hp->ssm_d_state * sizeof(float));
    }
    s->pos = 0;
}

int al_session_pos(const al_session *s) { return s->pos; }
int al_session_n_ctx(const al_session *s) { return s->n_ctx; }

/* ---- building blocks ---- */

/* Y[n][W.ne1] = X[n][W.ne0] · Wᵀ (+ bias). X rows have stride ldx. */
static al_status mm(al_session *s, const al_tensor *W, const float *X, int64_t ldx, float *Y, int64_t n, const float *bias) {
    AL_TRY(al_cpu_matmul(s->m->cpu, W, X, ldx, Y, W->ne[1], n));
    if (bias)
        for (int64_t t = 0; t < n; t++) al_op_add(Y + t * W->ne[1], bias, Y + t * W->ne[1], W->ne[1]);
    return al_ok();
}

/* Y += (X·A0ᵀ)·A1ᵀ : zamba2's low-rank adapter. */
static al_status mm_adapter(al_session *s, const al_tensor *A, const float *X, int64_t ldx, float *Y, int64_t n) {
    if (!A[0].data) return al_ok();
    float *tmp = s->big;
    AL_TRY(mm(s, &A[0], X, ldx, tmp, n, NULL));
    int64_t r = A[0].ne[1], o = A[1].ne[1];
    float *tmp2 = s->big + (size_t)n * (size_t)r;
    AL_TRY(mm(s, &A[1], tmp, r, tmp2, n, NULL));
    for (int64_t i = 0; i < n * o; i++) Y[i] += tmp2[i];
    return al_ok();
}

/* Attention over xn[n][n_in] (already normalized) -> out[n][n_out]. */
static al_status attention(al_session *s, int il, const al_attn_w *a, const al_layer_w *L, int64_t n_in, const float *xn,
                           int64_t n, float *out) {
    const al_hparams *hp = &s->m->hp;
    layer_cache *c = &s->lc[il];
    int64_t qd = (int64_t)hp->n_head * hp->head_dim, kvd = (int64_t)hp->n_head_kv * hp->head_dim;
    float *q = s->t0, *k = s->t1, *v = s->t2;
    AL_TRY(mm(s, &a->wq, xn, n_in, q, n, a->bq));
    AL_TRY(mm(s, &a->wk, xn, n_in, k, n, a->bk));
    AL_TRY(mm(s, &a->wv, xn, n_in, v, n, a->bv));
    if (L) { /* zamba2 per-layer adapters */
        AL_TRY(mm_adapter(s, L->z_adapt_q, xn, n_in, q, n));
        AL_TRY(mm_adapter(s, L->z_adapt_k, xn, n_in, k, n));
        AL_TRY(mm_adapter(s, L->z_adapt_v, xn, n_in, v, n));
    }
    if (a->q_norm) al_op_rms_norm(q, a->q_norm, q, n * hp->n_head, hp->head_dim, hp->head_dim, hp->norm_eps);
    if (a->k_norm) al_op_rms_norm(k, a->k_norm, k, n * hp->n_head_kv, hp->head_dim, hp->head_dim, hp->norm_eps);
    if (hp->rope_mode != AL_ROPE_NONE) {
        al_rope_cfg rc = {hp->rope_mode == AL_ROPE_NORM ? 1 : 2, hp->rope_dim, hp->rope_theta, NULL};
        al_op_rope(q, n, hp->n_head, hp->head_dim, s->positions, &rc, s->inv_freq);
        al_op_rope(k, n, hp->n_head_kv, hp->head_dim, s->positions, &rc, s->inv_freq);
    }
    memcpy(c->k + (size_t)s->pos * (size_t)kvd, k, (size_t)(n * kvd) * sizeof(float));
    memcpy(c->v + (size_t)s->pos * (size_t)kvd, v, (size_t)(n * kvd) * sizeof(float));
    float *ao = s->t1; /* k no longer needed */
    al_attn_args aa = {q, c->k, c->v, ao, n, s->pos, hp->n_head, hp->n_head_kv, hp->head_dim, hp->sliding_window,
                       hp->attn_scale > 0 ? hp->attn_scale : 1.0f / sqrtf((float)hp->head_dim), s->attn_scratch};
    al_op_attention(al_cpu_pool(s->m->cpu), &aa);
    return mm(s, &a->wo, ao, qd, out, n, a->bo);
}

static al_status mamba2(al_session *s, int il, const float *xn, int64_t n, float *out) {
    const al_hparams *hp = &s->m->hp;
    const al_mamba2_w *w = &s->m->layers[il].m2;
    layer_cache *c = &s->lc[il];
    int H = hp->ssm_n_head, P = hp->ssm_head_dim, N = hp->ssm_d_state, G = hp->ssm_n_group;
    int64_t di = hp->ssm_d_inner, gn = (int64_t)G * N, conv_ch = di + 2 * gn, proj = 2 * di + 2 * gn + H;
    float *zx = s->big; /* [n][proj]: z | xBC | dt */
    AL_TRY(mm(s, &w->in_proj, xn, hp->n_embd, zx, n, NULL));
    float *xbc = s->t0, *conv = s->t1, *dt = s->t2, *y = s->t3;
    for (int64_t t = 0; t < n; t++) {
        memcpy(xbc + t * conv_ch, zx + t * proj + di, (size_t)conv_ch * sizeof(float));
        for (int h = 0; h < H; h++) {
            float v = al_softplus(zx[t * proj + di + conv_ch + h] + w->dt_bias[h]);
            if (n > 1) v = fmaxf(v, hp->ssm_dt_floor_prefill);
            dt[t * H + h] = fminf(fmaxf(v, hp->ssm_dt_min), hp->ssm_dt_max);
        }
    }
    al_op_conv1d_causal(xbc, n, (int)conv_ch, hp->ssm_d_conv, w->conv_w, w->conv_b, c->conv, conv, true);
    al_ssd_args sa = {conv, dt, conv + di, conv + di + gn, w->A, w->D, conv_ch, H, conv_ch, c->ssm, y, n, H, P, N, G,
                      hp->ssm_chunk, s->ssd_scratch};
    al_op_ssd(al_cpu_pool(s->m->cpu), &sa);
    /* gated norm: norm(y * silu(z)) over groups of d_inner / norm_groups */
    for (int64_t t = 0; t < n; t++) {
        float *yt = y + t * di;
        const float *z = zx + t * proj;
        for (int64_t i = 0; i < di; i++) yt[i] *= z[i] / (1.0f + expf(-z[i]));
    }
    al_op_rms_norm(y, w->norm, y, n, di, di / hp->ssm_norm_groups, hp->norm_eps);
    return mm(s, &w->out_proj, y, di, out, n, NULL);
}

static al_status mamba1(al_session *s, int il, const float *xn, int64_t n, float *out) {
    const al_hparams *hp = &s->m->hp;
    const al_mamba1_w *w = &s->m->layers[il].m1;
    layer_cache *c = &s->lc[il];
    int64_t di = hp->ssm_d_inner, N = hp->ssm_d_state, r = hp->ssm_dt_rank;
    float *xz = s->big; /* [n][2 di]: x | z */
    AL_TRY(mm(s, &w->in_proj, xn, hp->n_embd, xz, n, NULL));
    float *x = s->t0, *xc = s->t1, *dbc = s->t2, *dt = s->t3;
    for (int64_t t = 0; t < n; t++) memcpy(x + t * di, xz + t * 2 * di, (size_t)di * sizeof(float));
    al_op_conv1d_causal(x, n, (int)di, hp->ssm_d_conv, w->conv_w, w->conv_b, c->conv, xc, true);
    int64_t pw = r + 2 * N;
    AL_TRY(mm(s, &w->x_proj, xc, di, dbc, n, NULL));
    if (w->dt_norm) {
        for (int64_t t = 0; t < n; t++) {
            float *row = dbc + t * pw;
            al_op_rms_norm(row, w->dt_norm, row, 1, r, r, hp->norm_eps);
            al_op_rms_norm(row + r, w->b_norm, row + r, 1, N, N, hp->norm_eps);
            al_op_rms_norm(row + r + N, w->c_norm, row + r + N, 1, N, N, hp->norm_eps);
        }
    }
    AL_TRY(mm(s, &w->dt_proj, dbc, pw, dt, n, w->dt_bias));
    for (int64_t i = 0; i < n * di; i++) dt[i] = al_softplus(dt[i]);
    float *y = x; /* x copy no longer needed */
    al_op_selective_scan(al_cpu_pool(s->m->cpu), xc, dt, w->A, dbc + r, dbc + r + N, pw, w->D, c->ssm, y, n, (int)di, (int)N);
    for (int64_t t = 0; t < n; t++) {
        const float *z = xz + t * 2 * di + di;
        float *yt = y + t * di;
        for (int64_t i = 0; i < di; i++) yt[i] *= z[i] / (1.0f + expf(-z[i]));
    }
    return mm(s, &w->out_proj, y, di, out, n, NULL);
}

static void activate(al_act act, float *x, int64_t n) {
    switch (act) {
    case AL_ACT_SILU: al_op_silu(x, x, n); break;
    case AL_ACT_GELU_TANH: al_op_gelu_tanh(x, x, n); break;
    case AL_ACT_GELU_ERF: al_op_gelu_erf(x, x, n); break;
    case AL_ACT_RELU2: al_op_relu2(x, x, n); break;
    }
}

/* act(gate) * up from a fused row [gate | up] of 2 * nf, written to dst[n][nf]. */
static void glu_rows(al_act act, const float *gu, float *dst, int64_t n, int64_t nf) {
    for (int64_t t = 0; t < n; t++) {
        const float *g = gu + t * 2 * nf, *u = g + nf;
        float *d = dst + t * nf;
        memcpy(d, g, (size_t)nf * sizeof(float));
        activate(act, d, nf);
        for (int64_t i = 0; i < nf; i++) d[i] *= u[i];
    }
}

static al_status ffn_dense(al_session *s, const al_ffn_w *f, al_act act, const float *xn, int64_t n, float *out) {
    const al_hparams *hp = &s->m->hp;
    int64_t nf = f->up.ne[1];
    float *up = s->big, *gate = s->t3;
    AL_TRY(mm(s, &f->up, xn, hp->n_embd, up, n, NULL));
    if (f->gate.data) {
        AL_TRY(mm(s, &f->gate, xn, hp->n_embd, gate, n, NULL));
        activate(act, gate, n * nf);
        for (int64_t i = 0; i < n * nf; i++) up[i] *= gate[i];
    } else {
        activate(act, up, n * nf);
    }
    return mm(s, &f->down, up, nf, out, n, NULL);
}

/* MoE: softmax router, top-k experts per token (weights not renormalised), sum of expert MLPs. */
static al_status ffn_moe(al_session *s, const al_ffn_w *f, const float *xn, int64_t n, float *out) {
    const al_hparams *hp = &s->m->hp;
    int E = hp->n_expert, K = hp->n_expert_used;
    int64_t d = hp->n_embd, nf = hp->n_ff_expert;
    float *logits = s->t0; /* [n][E] */
    AL_TRY(mm(s, &f->router, xn, d, logits, n, NULL));
    memset(out, 0, (size_t)(n * d) * sizeof(float));
    float *g = s->big, *u = s->big + nf, *o = s->t1;
    for (int64_t t = 0; t < n; t++) {
        float *lg = logits + t * E, mx = -FLT_MAX, sum = 0;
        for (int e = 0; e < E; e++) mx = fmaxf(mx, lg[e]);
        for (int e = 0; e < E; e++) sum += (lg[e] = expf(lg[e] - mx));
        for (int e = 0; e < E; e++) lg[e] /= sum;
        bool used[1024] = {false};
        for (int k = 0; k < K; k++) {
            int best = -1;
            for (int e = 0; e < E; e++)
                if (!used[e] && (best < 0 || lg[e] > lg[best])) best = e;
            used[best] = true;
            const float *x = xn + t * d;
            AL_TRY(mm(s, &f->exp_gate[best], x, d, g, 1, NULL));
            AL_TRY(mm(s, &f->exp_up[best], x, d, u, 1, NULL));
            al_op_swiglu(g, u, g, nf);
            AL_TRY(mm(s, &f->exp_down[best], g, nf, o, 1, NULL));
            for (int64_t i = 0; i < d; i++) out[t * d + i] += lg[best] * o[i];
        }
    }
    return al_ok();
}

/* zamba2 shared transformer on concat(h, emb0): result (after the layer's linear) in out[n][d]. */
static al_status zamba_shared(al_session *s, int il, int64_t n, float *out) {
    const al_hparams *hp = &s->m->hp;
    const al_layer_w *L = &s->m->layers[il];
    const al_zshared_w *z = &s->m->zshared[L->z_block];
    int64_t d = hp->n_embd, d2 = 2 * d, nf = hp->n_ff;
    float *cat = s->xn;
    for (int64_t t = 0; t < n; t++) {
        memcpy(cat + t * d2, s->h + t * d, (size_t)d * sizeof(float));
        memcpy(cat + t * d2 + d, s->emb0 + t * d, (size_t)d * sizeof(float));
    }
    al_op_rms_norm(cat, z->attn_norm, cat, n, d2, d2, hp->norm_eps);
    AL_TRY(attention(s, il, &z->attn, L, d2, cat, n, out));
    float *xn = s->xn;
    al_op_rms_norm(out, z->ffn_norm, xn, n, d, d, hp->norm_eps);
    float *gu = s->t3;
    AL_TRY(mm(s, &z->gate_up, xn, d, gu, n, NULL));
    AL_TRY(mm_adapter(s, L->z_adapt_ff, xn, d, gu, n));
    float *act = s->t0;
    glu_rows(hp->ffn_act, gu, act, n, nf);
    float *ff = s->t1;
    AL_TRY(mm(s, &z->down, act, nf, ff, n, NULL));
    return mm(s, &L->z_linear, ff, d, out, n, NULL);
}

static al_status embed(al_session *s, const int32_t *tok, int64_t n) {
    const al_model *m = s->m;
    int64_t d = m->hp.n_embd;
    for (int64_t t = 0; t < n; t++) {
        if (tok[t] < 0 || tok[t] >= m->hp.n_vocab) return al_err(AL_ERR_RANGE, "token id %d out of [0, %d)", tok[t], m->hp.n_vocab);
        const char *row = (const char *)m->tok_embd.data + m->tok_embd.nb[1] * (size_t)tok[t];
        AL_TRY(al_dequantize_row(m->tok_embd.type, row, s->h + t * d, d));
    }
    return al_ok();
}

static al_status forward_ubatch(al_session *s, const int32_t *tok, int64_t n, float *logits, bool all_logits) {
    al_model *m = s->m;
    const al_hparams *hp = &m->hp;
    int64_t d = hp->n_embd;
    AL_TRY(embed(s, tok, n));
    if (hp->arch == AL_ARCH_ZAMBA2) memcpy(s->emb0, s->h, (size_t)(n * d) * sizeof(float));
    for (int64_t t = 0; t < n; t++) s->positions[t] = (int32_t)(s->pos + t);
    float *xin = s->xin, *delta = s->delta;
    for (int il = 0; il < hp->n_layer; il++) {
        const al_layer_w *L = &m->layers[il];
        al_mixer mx = hp->layer_mixer[il];
        al_ffn ff = hp->layer_ffn[il];
        memcpy(xin, s->h, (size_t)(n * d) * sizeof(float));
        if (hp->layer_shared[il]) {
            AL_TRY(zamba_shared(s, il, n, delta));
            al_op_add(xin, delta, xin, n * d);
        }
        if (mx != AL_MIXER_NONE) {
            al_op_rms_norm(xin, L->attn_norm, s->xn, n, d, d, hp->norm_eps);
            if (mx == AL_MIXER_ATTN) AL_TRY(attention(s, il, &L->attn, NULL, d, s->xn, n, delta));
            else if (mx == AL_MIXER_MAMBA2) AL_TRY(mamba2(s, il, s->xn, n, delta));
            else AL_TRY(mamba1(s, il, s->xn, n, delta));
            al_op_add(s->h, delta, s->h, n * d);
        }
        if (ff != AL_FFN_NONE) {
            al_op_rms_norm(s->h, L->ffn_norm ? L->ffn_norm : L->attn_norm, s->xn, n, d, d, hp->norm_eps);
            if (ff == AL_FFN_MOE) AL_TRY(ffn_moe(s, &L->ffn, s->xn, n, delta));
            else AL_TRY(ffn_dense(s, &L->ffn, ff == AL_FFN_RELU2 ? AL_ACT_RELU2 : hp->ffn_act, s->xn, n, delta));
            al_op_add(s->h, delta, s->h, n * d);
        }
    }
    int64_t first = all_logits ? 0 : n - 1, cnt = all_logits ? n : 1;
    al_op_rms_norm(s->h + first * d, m->out_norm, s->xn, cnt, d, d, hp->norm_eps);
    if (logits) AL_TRY(mm(s, &m->output, s->xn, d, logits, cnt, NULL));
    s->pos += (int)n;
    return al_ok();
}

al_status al_session_eval(al_session *s, const int32_t *tokens, int n, float *logits, bool all_logits) {
    if (n <= 0) return al_err(AL_ERR_INVALID, "eval: no tokens");
    if (s->pos + n > s->n_ctx) return al_err(AL_ERR_RANGE, "eval: context full (%d + %d > %d)", s->pos, n, s->n_ctx);
    int64_t V = s->m->hp.n_vocab;
    for (int i = 0; i < n; i += s->ubatch) {
        int cnt = n - i < s->ubatch ? n - i : s->ubatch;
        bool last = i + cnt == n;
        float *lg = all_logits ? logits + (size_t)i * (size_t)V : (last ? logits : NULL);
        AL_TRY(forward_ubatch(s, tokens + i, cnt, lg, all_logits));
    }
    return al_ok();
}
