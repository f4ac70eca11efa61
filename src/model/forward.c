/*
 * forward.c — the forward pass shared by every architecture, batched over several sequences.
 *
 * A layer is: [zamba2 shared block] -> [mixer: attention | Mamba-2 | Mamba-1] -> [FFN: SwiGLU |
 * ReLU² | GELU-GLU | MoE], each sub-block pre-norm with a residual. The rows of all items are
 * concatenated ([R][width], item i owning rows [off_i, off_i + n_i)); matrix products, norms and
 * FFNs run over all R rows at once, attention and the SSM scans per item with its own cache.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloy/ops.h"
#include "model/session_internal.h"

typedef struct fwd {
    al_model *m;
    const al_hparams *hp;
    al_scratch *sc;
    al_fwd_item *items;
    int n_items;
    int off[1024]; /* first row of each item */
    int64_t R;     /* total rows */
} fwd;

/* Y[rows][n] += bias[n] (bias may be NULL) */
static void add_bias(float *Y, const float *bias, int64_t rows, int64_t n) {
    if (!bias) return;
    for (int64_t t = 0; t < rows; t++) al_op_add(Y + t * n, bias, Y + t * n, n);
}

/* Y[R][W.ne1] = X[R][W.ne0] · Wᵀ (+ bias). X rows have stride ldx. */
static al_status mm(fwd *f, const al_tensor *W, const float *X, int64_t ldx, float *Y, int64_t n, const float *bias) {
    AL_TRY(al_cpu_matmul(f->m->cpu, W, X, ldx, Y, W->ne[1], n));
    add_bias(Y, bias, n, W->ne[1]);
    return al_ok();
}

/* Y[i] = X · W[i]ᵀ for n weights sharing X (one activation conversion, one parallel section). */
static al_status mm_n(fwd *f, int n, const al_tensor *const *W, const float *X, int64_t ldx, float *const *Y, int64_t rows) {
    int64_t ldy[4];
    for (int i = 0; i < n; i++) ldy[i] = W[i]->ne[1];
    return al_cpu_matmul_n(f->m->cpu, n, W, X, ldx, Y, ldy, rows);
}

/* Y += (X·A0ᵀ)·A1ᵀ : zamba2's low-rank adapter. */
static al_status mm_adapter(fwd *f, const al_tensor *A, const float *X, int64_t ldx, float *Y, int64_t n) {
    if (!A[0].data) return al_ok();
    float *tmp = f->sc->big;
    AL_TRY(mm(f, &A[0], X, ldx, tmp, n, NULL));
    int64_t r = A[0].ne[1], o = A[1].ne[1];
    float *tmp2 = f->sc->big + (size_t)n * (size_t)r;
    AL_TRY(mm(f, &A[1], tmp, r, tmp2, n, NULL));
    for (int64_t i = 0; i < n * o; i++) Y[i] += tmp2[i];
    return al_ok();
}

/* Attention over xn[R][n_in] (normalized) -> out[R][n_out]; L: zamba2 layer with adapters or NULL. */
static al_status attention(fwd *f, int il, const al_attn_w *a, const al_layer_w *L, int64_t n_in, const float *xn, float *out) {
    const al_hparams *hp = f->hp;
    al_scratch *sc = f->sc;
    int64_t R = f->R, qd = (int64_t)hp->n_head * hp->head_dim, kvd = (int64_t)hp->n_head_kv * hp->head_dim;
    float *q = sc->t0, *k = sc->t1, *v = sc->t2, *ao = sc->t3;
    const al_tensor *wqkv[3] = {&a->wq, &a->wk, &a->wv};
    float *const yqkv[3] = {q, k, v};
    AL_TRY(mm_n(f, 3, wqkv, xn, n_in, yqkv, R));
    add_bias(q, a->bq, R, qd);
    add_bias(k, a->bk, R, kvd);
    add_bias(v, a->bv, R, kvd);
    if (L) {
        AL_TRY(mm_adapter(f, L->z_adapt_q, xn, n_in, q, R));
        AL_TRY(mm_adapter(f, L->z_adapt_k, xn, n_in, k, R));
        AL_TRY(mm_adapter(f, L->z_adapt_v, xn, n_in, v, R));
    }
    if (a->q_norm) al_op_rms_norm(q, a->q_norm, q, R * hp->n_head, hp->head_dim, hp->head_dim, hp->norm_eps);
    if (a->k_norm) al_op_rms_norm(k, a->k_norm, k, R * hp->n_head_kv, hp->head_dim, hp->head_dim, hp->norm_eps);
    float scale = hp->attn_scale > 0 ? hp->attn_scale : 1.0f / sqrtf((float)hp->head_dim);
    for (int i = 0; i < f->n_items; i++) {
        al_session *s = f->items[i].s;
        int64_t o = f->off[i], n = f->items[i].n;
        if (hp->rope_mode != AL_ROPE_NONE) {
            al_rope_cfg rc = {hp->rope_mode == AL_ROPE_NORM ? 1 : 2, hp->rope_dim, hp->rope_theta, NULL};
            al_op_rope(q + o * qd, n, hp->n_head, hp->head_dim, sc->positions + o, &rc, s->inv_freq);
            al_op_rope(k + o * kvd, n, hp->n_head_kv, hp->head_dim, sc->positions + o, &rc, s->inv_freq);
        }
        layer_cache *c = &s->lc[il];
        memcpy(c->k + (size_t)s->pos * (size_t)kvd, k + o * kvd, (size_t)(n * kvd) * sizeof(float));
        memcpy(c->v + (size_t)s->pos * (size_t)kvd, v + o * kvd, (size_t)(n * kvd) * sizeof(float));
        al_attn_args aa = {q + o * qd, c->k, c->v, ao + o * qd, n, s->pos, hp->n_head, hp->n_head_kv, hp->head_dim,
                           hp->sliding_window, scale, sc->attn_scratch, al_cpu_isa(f->m->cpu)};
        al_op_attention(al_cpu_pool(f->m->cpu), &aa);
    }
    return mm(f, &a->wo, ao, qd, out, R, a->bo);
}

static al_status mamba2(fwd *f, int il, const float *xn, float *out) {
    const al_hparams *hp = f->hp;
    const al_mamba2_w *w = &f->m->layers[il].m2;
    al_scratch *sc = f->sc;
    int H = hp->ssm_n_head, P = hp->ssm_head_dim, N = hp->ssm_d_state, G = hp->ssm_n_group;
    int64_t R = f->R, di = hp->ssm_d_inner, gn = (int64_t)G * N, conv_ch = di + 2 * gn, proj = 2 * di + 2 * gn + H;
    float *zx = sc->big; /* [R][proj]: z | xBC | dt */
    AL_TRY(mm(f, &w->in_proj, xn, hp->n_embd, zx, R, NULL));
    float *xbc = sc->t0, *conv = sc->t1, *dt = sc->t2, *y = sc->t3;
    for (int i = 0; i < f->n_items; i++) {
        int64_t o = f->off[i], n = f->items[i].n;
        for (int64_t t = o; t < o + n; t++) {
            memcpy(xbc + t * conv_ch, zx + t * proj + di, (size_t)conv_ch * sizeof(float));
            for (int h = 0; h < H; h++) {
                float v = al_softplus(zx[t * proj + di + conv_ch + h] + w->dt_bias[h]);
                if (n > 1) v = fmaxf(v, hp->ssm_dt_floor_prefill);
                dt[t * H + h] = fminf(fmaxf(v, hp->ssm_dt_min), hp->ssm_dt_max);
            }
        }
        layer_cache *c = &f->items[i].s->lc[il];
        al_op_conv1d_causal(xbc + o * conv_ch, n, (int)conv_ch, hp->ssm_d_conv, w->conv_w, w->conv_b, c->conv,
                            conv + o * conv_ch, true);
        const float *cv = conv + o * conv_ch;
        al_ssd_args sa = {cv, dt + o * H, cv + di, cv + di + gn, w->A, w->D, conv_ch, H, conv_ch, c->ssm, y + o * di,
                          n, H, P, N, G, hp->ssm_chunk, sc->ssd_scratch, al_cpu_isa(f->m->cpu)};
        al_op_ssd(al_cpu_pool(f->m->cpu), &sa);
    }
    /* gated norm: norm(y * silu(z)) over groups of d_inner / norm_groups */
    for (int64_t t = 0; t < R; t++) {
        float *yt = y + t * di;
        const float *z = zx + t * proj;
        for (int64_t i = 0; i < di; i++) yt[i] *= z[i] / (1.0f + expf(-z[i]));
    }
    al_op_rms_norm(y, w->norm, y, R, di, di / hp->ssm_norm_groups, hp->norm_eps);
    return mm(f, &w->out_proj, y, di, out, R, NULL);
}

static al_status mamba1(fwd *f, int il, const float *xn, float *out) {
    const al_hparams *hp = f->hp;
    const al_mamba1_w *w = &f->m->layers[il].m1;
    al_scratch *sc = f->sc;
    int64_t R = f->R, di = hp->ssm_d_inner, N = hp->ssm_d_state, r = hp->ssm_dt_rank, pw = r + 2 * N;
    float *xz = sc->big; /* [R][2 di]: x | z */
    AL_TRY(mm(f, &w->in_proj, xn, hp->n_embd, xz, R, NULL));
    float *x = sc->t0, *xc = sc->t1, *dbc = sc->t2, *dt = sc->t3;
    for (int64_t t = 0; t < R; t++) memcpy(x + t * di, xz + t * 2 * di, (size_t)di * sizeof(float));
    for (int i = 0; i < f->n_items; i++) {
        int64_t o = f->off[i];
        al_op_conv1d_causal(x + o * di, f->items[i].n, (int)di, hp->ssm_d_conv, w->conv_w, w->conv_b,
                            f->items[i].s->lc[il].conv, xc + o * di, true);
    }
    AL_TRY(mm(f, &w->x_proj, xc, di, dbc, R, NULL));
    if (w->dt_norm) {
        for (int64_t t = 0; t < R; t++) {
            float *row = dbc + t * pw;
            al_op_rms_norm(row, w->dt_norm, row, 1, r, r, hp->norm_eps);
            al_op_rms_norm(row + r, w->b_norm, row + r, 1, N, N, hp->norm_eps);
            al_op_rms_norm(row + r + N, w->c_norm, row + r + N, 1, N, N, hp->norm_eps);
        }
    }
    AL_TRY(mm(f, &w->dt_proj, dbc, pw, dt, R, w->dt_bias));
    for (int64_t i = 0; i < R * di; i++) dt[i] = al_softplus(dt[i]);
    float *y = x; /* the x copy is no longer needed */
    for (int i = 0; i < f->n_items; i++) {
        int64_t o = f->off[i];
        al_op_selective_scan(al_cpu_pool(f->m->cpu), xc + o * di, dt + o * di, w->A, dbc + o * pw + r, dbc + o * pw + r + N,
                             pw, w->D, f->items[i].s->lc[il].ssm, y + o * di, f->items[i].n, (int)di, (int)N);
    }
    for (int64_t t = 0; t < R; t++) {
        const float *z = xz + t * 2 * di + di;
        float *yt = y + t * di;
        for (int64_t i = 0; i < di; i++) yt[i] *= z[i] / (1.0f + expf(-z[i]));
    }
    return mm(f, &w->out_proj, y, di, out, R, NULL);
}

static void activate(al_act act, float *x, int64_t n) {
    switch (act) {
    case AL_ACT_SILU: al_op_silu(x, x, n); break;
    case AL_ACT_GELU_TANH: al_op_gelu_tanh(x, x, n); break;
    case AL_ACT_GELU_ERF: al_op_gelu_erf(x, x, n); break;
    case AL_ACT_RELU2: al_op_relu2(x, x, n); break;
    }
}

static al_status ffn_dense(fwd *f, const al_ffn_w *w, al_act act, const float *xn, float *out) {
    int64_t R = f->R, nf = w->up.ne[1];
    float *up = f->sc->big, *gate = f->sc->t3;
    if (w->gate.data) {
        const al_tensor *wgu[2] = {&w->gate, &w->up};
        float *const ygu[2] = {gate, up};
        AL_TRY(mm_n(f, 2, wgu, xn, f->hp->n_embd, ygu, R));
        activate(act, gate, R * nf);
        for (int64_t i = 0; i < R * nf; i++) up[i] *= gate[i];
    } else {
        AL_TRY(mm(f, &w->up, xn, f->hp->n_embd, up, R, NULL));
        activate(act, up, R * nf);
    }
    return mm(f, &w->down, up, nf, out, R, NULL);
}

/* MoE (jamba): softmax router, top-k experts per row (weights not renormalised), weighted sum. */
static al_status ffn_moe(fwd *f, const al_ffn_w *w, const float *xn, float *out) {
    const al_hparams *hp = f->hp;
    int E = hp->n_expert, K = hp->n_expert_used;
    int64_t R = f->R, d = hp->n_embd, nf = hp->n_ff_expert;
    float *logits = f->sc->t0; /* [R][E] */
    AL_TRY(mm(f, &w->router, xn, d, logits, R, NULL));
    memset(out, 0, (size_t)(R * d) * sizeof(float));
    float *g = f->sc->big, *u = f->sc->big + nf, *o = f->sc->t1;
    for (int64_t t = 0; t < R; t++) {
        int32_t ids[1024];
        float wt[1024];
        al_op_moe_route(logits + t * E, 1, E, K, ids, wt);
        for (int k = 0; k < K; k++) {
            const int best = ids[k];
            const float *x = xn + t * d;
            AL_TRY(mm(f, &w->exp_gate[best], x, d, g, 1, NULL));
            AL_TRY(mm(f, &w->exp_up[best], x, d, u, 1, NULL));
            al_op_swiglu(g, u, g, nf);
            AL_TRY(mm(f, &w->exp_down[best], g, nf, o, 1, NULL));
            for (int64_t i = 0; i < d; i++) out[t * d + i] += wt[k] * o[i];
        }
    }
    return al_ok();
}

/* zamba2 shared transformer on concat(h, emb0), then the layer's linear: out[R][d]. No residuals
 * inside; the caller adds `out` to the Mamba layer's input. */
static al_status zamba_shared(fwd *f, int il, float *out) {
    const al_hparams *hp = f->hp;
    const al_layer_w *L = &f->m->layers[il];
    const al_zshared_w *z = &f->m->zshared[L->z_block];
    al_scratch *sc = f->sc;
    int64_t R = f->R, d = hp->n_embd, d2 = 2 * d, nf = hp->n_ff;
    float *cat = sc->xn;
    for (int64_t t = 0; t < R; t++) {
        memcpy(cat + t * d2, sc->h + t * d, (size_t)d * sizeof(float));
        memcpy(cat + t * d2 + d, sc->emb0 + t * d, (size_t)d * sizeof(float));
    }
    al_op_rms_norm(cat, z->attn_norm, cat, R, d2, d2, hp->norm_eps);
    AL_TRY(attention(f, il, &z->attn, L, d2, cat, out));
    float *xn = sc->xn;
    al_op_rms_norm(out, z->ffn_norm, xn, R, d, d, hp->norm_eps);
    float *gu = sc->t3;
    AL_TRY(mm(f, &z->gate_up, xn, d, gu, R, NULL));
    AL_TRY(mm_adapter(f, L->z_adapt_ff, xn, d, gu, R));
    float *act = sc->t0; /* act(gate) * up from rows [gate | up] */
    for (int64_t t = 0; t < R; t++) {
        memcpy(act + t * nf, gu + t * 2 * nf, (size_t)nf * sizeof(float));
        activate(hp->ffn_act, act + t * nf, nf);
        for (int64_t i = 0; i < nf; i++) act[t * nf + i] *= gu[t * 2 * nf + nf + i];
    }
    float *ff = sc->t1;
    AL_TRY(mm(f, &z->down, act, nf, ff, R, NULL));
    return mm(f, &L->z_linear, ff, d, out, R, NULL);
}

static al_status embed(fwd *f) {
    const al_model *m = f->m;
    int64_t d = m->hp.n_embd;
    for (int i = 0; i < f->n_items; i++) {
        const al_fwd_item *it = &f->items[i];
        for (int t = 0; t < it->n; t++) {
            int32_t id = it->tok[t];
            if (id < 0 || id >= m->hp.n_vocab) return al_err(AL_ERR_RANGE, "token id %d out of [0, %d)", id, m->hp.n_vocab);
            const char *row = (const char *)m->tok_embd.data + m->tok_embd.nb[1] * (size_t)id;
            AL_TRY(al_dequantize_row(m->tok_embd.type, row, f->sc->h + (f->off[i] + t) * d, d));
            f->sc->positions[f->off[i] + t] = it->s->pos + t;
        }
    }
    return al_ok();
}

/* the final norm and LM head over the rows whose logits the items want, into their arrays */
static al_status logits_out(fwd *f) {
    al_model *m = f->m;
    al_scratch *sc = f->sc;
    al_fwd_item *items = f->items;
    const int n_items = f->n_items;
    const al_hparams *hp = &m->hp;
    const int64_t d = hp->n_embd;
    int64_t nl = 0; /* the rows, gathered for one product over all */
    for (int i = 0; i < n_items; i++) {
        if (!items[i].logits) continue;
        int64_t first = items[i].all_logits ? 0 : items[i].n - 1;
        for (int64_t t = first; t < items[i].n; t++)
            memcpy(sc->logit_rows + nl++ * d, sc->h + (f->off[i] + t) * d, (size_t)d * sizeof(float));
    }
    if (nl > 0) {
        al_op_rms_norm(sc->logit_rows, m->out_norm, sc->logit_rows, nl, d, d, hp->norm_eps);
        int64_t V = hp->n_vocab;
        bool direct = n_items == 1; /* write straight into the caller's array */
        float *dst = direct ? items[0].logits : al_alloc(NULL, sizeof(float) * (size_t)(nl * V));
        if (!dst) return al_err(AL_ERR_NOMEM, "forward: out of memory for logits");
        al_status st = mm(f, &m->output, sc->logit_rows, d, dst, nl, NULL);
        if (!direct) {
            int64_t r = 0;
            for (int i = 0; i < n_items && !al_failed(&st); i++) {
                if (!items[i].logits) continue;
                int64_t cnt = items[i].all_logits ? items[i].n : 1;
                memcpy(items[i].logits, dst + r * V, sizeof(float) * (size_t)(cnt * V));
                r += cnt;
            }
            al_free(NULL, dst);
        }
        return st;
    }
    return al_ok();
}

/* layers [0, layer_end); with h_out the rows of h (and emb0) go to h_out (emb_out) instead of logits */
static al_status forward(al_model *m, al_scratch *sc, al_fwd_item *items, int n_items, int layer_end, float *h_out,
                         float *emb_out) {
    fwd F = {m, &m->hp, sc, items, n_items, {0}, 0};
    fwd *f = &F;
    const al_hparams *hp = &m->hp;
    if (n_items <= 0 || n_items > 1024) return al_err(AL_ERR_INVALID, "forward: %d items", n_items);
    for (int i = 0; i < n_items; i++) {
        al_fwd_item *it = &items[i];
        if (it->n <= 0) return al_err(AL_ERR_INVALID, "forward: item %d has no tokens", i);
        if (it->s->pos + it->n > it->s->n_ctx || it->s->n_ctx > sc->n_ctx)
            return al_err(AL_ERR_RANGE, "forward: context full (%d + %d > %d)", it->s->pos, it->n, it->s->n_ctx);
        F.off[i] = (int)F.R;
        F.R += it->n;
    }
    if (F.R > sc->rows) return al_err(AL_ERR_RANGE, "forward: %lld rows exceed scratch of %d", (long long)F.R, sc->rows);
    int64_t R = F.R, d = hp->n_embd;
    AL_TRY(embed(f));
    if (hp->arch == AL_ARCH_ZAMBA2) memcpy(sc->emb0, sc->h, (size_t)(R * d) * sizeof(float));
    float *xin = sc->xin, *delta = sc->delta;
    for (int il = 0; il < layer_end; il++) {
        const al_layer_w *L = &m->layers[il];
        al_mixer mx = hp->layer_mixer[il];
        al_ffn ff = hp->layer_ffn[il];
        memcpy(xin, sc->h, (size_t)(R * d) * sizeof(float));
        if (hp->layer_shared[il]) {
            AL_TRY(zamba_shared(f, il, delta));
            al_op_add(xin, delta, xin, R * d);
        }
        if (mx != AL_MIXER_NONE) {
            al_op_rms_norm(xin, L->attn_norm, sc->xn, R, d, d, hp->norm_eps);
            if (mx == AL_MIXER_ATTN) AL_TRY(attention(f, il, &L->attn, NULL, d, sc->xn, delta));
            else if (mx == AL_MIXER_MAMBA2) AL_TRY(mamba2(f, il, sc->xn, delta));
            else AL_TRY(mamba1(f, il, sc->xn, delta));
            al_op_add(sc->h, delta, sc->h, R * d);
        }
        if (ff != AL_FFN_NONE) {
            al_op_rms_norm(sc->h, L->ffn_norm ? L->ffn_norm : L->attn_norm, sc->xn, R, d, d, hp->norm_eps);
            if (ff == AL_FFN_MOE) AL_TRY(ffn_moe(f, &L->ffn, sc->xn, delta));
            else AL_TRY(ffn_dense(f, &L->ffn, ff == AL_FFN_RELU2 ? AL_ACT_RELU2 : hp->ffn_act, sc->xn, delta));
            al_op_add(sc->h, delta, sc->h, R * d);
        }
    }
    if (h_out) { /* the next layers (and the LM head) run elsewhere */
        memcpy(h_out, sc->h, sizeof(float) * (size_t)(R * d));
        if (emb_out && hp->arch == AL_ARCH_ZAMBA2) memcpy(emb_out, sc->emb0, sizeof(float) * (size_t)(R * d));
    } else {
        AL_TRY(logits_out(f));
    }
    for (int i = 0; i < n_items; i++) items[i].s->pos += items[i].n;
    return al_ok();
}

al_status al_forward_batch(al_model *m, al_scratch *sc, al_fwd_item *items, int n_items) {
    return forward(m, sc, items, n_items, m->hp.n_layer, NULL, NULL);
}

al_status al_forward_hidden(al_model *m, al_scratch *sc, al_session *s, const int32_t *tok, int n, int n_layers, float *h,
                            float *emb) {
    if (n_layers < 0 || n_layers > m->hp.n_layer) return al_err(AL_ERR_INVALID, "forward: %d of %d layers", n_layers, m->hp.n_layer);
    for (int il = 0; il < n_layers; il++)
        if ((m->hp.layer_mixer[il] != AL_MIXER_NONE && m->hp.layer_mixer[il] != AL_MIXER_ATTN && !s->lc[il].ssm) ||
            ((m->hp.layer_mixer[il] == AL_MIXER_ATTN || m->hp.layer_shared[il]) && !s->lc[il].k))
            return al_err(AL_ERR_INVALID, "forward: the session has no cache for layer %d", il);
    al_fwd_item it = {s, tok, n, NULL, false};
    return forward(m, sc, &it, 1, n_layers, h, emb);
}
