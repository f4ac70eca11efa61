/*
 * session.c — a sequence's caches (KV for attention layers, conv + SSM state for Mamba layers)
 * and the scratch activations of a forward pass.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloy/ops.h"
#include "model/session_internal.h"

static int imax(int a, int b) { return a > b ? a : b; }

static float *zalloc(size_t n) { return al_calloc(NULL, n ? n : 1, sizeof(float)); }

void al_hparams_widths(const al_hparams *hp, size_t *w_small, size_t *w_big) {
    int qd = hp->n_head * hp->head_dim;
    int w = imax(2 * hp->n_embd, imax(qd, hp->ssm_d_inner + 2 * hp->ssm_n_group * hp->ssm_d_state));
    w = imax(w, hp->zamba_attn_dim);
    w = imax(w, hp->ssm_dt_rank + 2 * hp->ssm_d_state + 2 * hp->ssm_d_inner);
    w = imax(w, hp->n_expert);
    int big = imax(2 * hp->n_ff, 2 * hp->ssm_d_inner + 2 * hp->ssm_n_group * hp->ssm_d_state + hp->ssm_n_head);
    big = imax(big, 2 * hp->n_ff_expert);
    *w_small = (size_t)w;
    *w_big = (size_t)imax(big, w);
}

al_status al_scratch_init(al_scratch *sc, const al_model *m, int rows, int n_ctx) {
    const al_hparams *hp = &m->hp;
    memset(sc, 0, sizeof *sc);
    sc->rows = rows;
    sc->n_ctx = n_ctx;
    sc->nth = al_cpu_threads(m->cpu);
    al_hparams_widths(hp, &sc->w_small, &sc->w_big);
    size_t r = (size_t)rows, d = (size_t)hp->n_embd;
    sc->h = zalloc(r * d);
    sc->emb0 = zalloc(r * d);
    sc->xin = zalloc(r * d);
    sc->delta = zalloc(r * d);
    sc->logit_rows = zalloc(r * d);
    sc->xn = zalloc(r * sc->w_small);
    sc->t0 = zalloc(r * sc->w_small);
    sc->t1 = zalloc(r * sc->w_small);
    sc->t2 = zalloc(r * sc->w_small);
    sc->t3 = zalloc(r * sc->w_big);
    sc->big = zalloc(r * sc->w_big);
    sc->positions = al_calloc(NULL, r, sizeof(int32_t));
    sc->attn_scratch = zalloc((size_t)sc->nth * (size_t)n_ctx);
    int L = hp->ssm_chunk > 0 ? hp->ssm_chunk : 1;
    sc->ssd_scratch = zalloc((size_t)sc->nth * (size_t)(L * L + 2 * L));
    if (!sc->h || !sc->emb0 || !sc->xin || !sc->delta || !sc->logit_rows || !sc->xn || !sc->t0 || !sc->t1 || !sc->t2 ||
        !sc->t3 || !sc->big || !sc->positions || !sc->attn_scratch || !sc->ssd_scratch) {
        al_scratch_free(sc);
        return al_err(AL_ERR_NOMEM, "scratch: out of memory for %d rows", rows);
    }
    return al_ok();
}

void al_scratch_free(al_scratch *sc) {
    float *bufs[] = {sc->h, sc->emb0, sc->xin, sc->delta, sc->logit_rows, sc->xn, sc->t0, sc->t1, sc->t2, sc->t3, sc->big,
                     sc->attn_scratch, sc->ssd_scratch};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) al_free(NULL, bufs[i]);
    al_free(NULL, sc->positions);
    memset(sc, 0, sizeof *sc);
}

al_status al_session_init(al_session **out, al_model *m, int n_ctx) { return al_session_init_layers(out, m, n_ctx, m->hp.n_layer); }

al_status al_session_init_layers(al_session **out, al_model *m, int n_ctx, int n_layers) {
    *out = NULL;
    const al_hparams *hp = &m->hp;
    if (n_layers < 0 || n_layers > hp->n_layer) return al_err(AL_ERR_INVALID, "session: %d of %d layers", n_layers, hp->n_layer);
    if (n_ctx <= 0) n_ctx = hp->n_ctx_train < 8192 ? hp->n_ctx_train : 8192;
    if (n_ctx > (1 << 22)) return al_err(AL_ERR_INVALID, "session: n_ctx %d too large", n_ctx);
    al_session *s = calloc(1, sizeof *s);
    if (!s) return al_err(AL_ERR_NOMEM, "session: out of memory");
    s->m = m;
    s->n_ctx = n_ctx;
    s->snap_pos = -1;
    s->lc = calloc((size_t)hp->n_layer, sizeof *s->lc);
    if (!s->lc) goto nomem;
    int64_t kv = (int64_t)hp->n_head_kv * hp->head_dim;
    for (int il = 0; il < n_layers; il++) {
        layer_cache *c = &s->lc[il];
        if (hp->layer_mixer[il] == AL_MIXER_ATTN || hp->layer_shared[il]) {
            c->k = zalloc((size_t)n_ctx * (size_t)kv);
            c->v = zalloc((size_t)n_ctx * (size_t)kv);
            if (!c->k || !c->v) goto nomem;
        }
        size_t nc, ns;
        al_layer_state_sizes(hp, il, &nc, &ns);
        if (nc) {
            c->conv = zalloc(nc);
            c->ssm = zalloc(ns);
            if (!c->conv || !c->ssm) goto nomem;
        }
    }
    s->inv_freq = zalloc((size_t)(hp->rope_dim > 0 ? hp->rope_dim : 2));
    if (!s->inv_freq) goto nomem;
    al_status st = al_scratch_init(&s->sc, m, 256, n_ctx);
    if (al_failed(&st)) {
        al_session_free(s);
        return st;
    }
    if (hp->rope_mode != AL_ROPE_NONE) {
        float *factors = NULL;
        st = al_model_get_f32(m, "rope_freqs.weight", false, hp->rope_dim / 2, &factors);
        if (al_failed(&st)) {
            al_session_free(s);
            return st;
        }
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
    al_free(NULL, s->inv_freq);
    al_free(NULL, s->snap);
    al_scratch_free(&s->sc);
    free(s);
}

void al_session_reset(al_session *s) {
    const al_hparams *hp = &s->m->hp;
    for (int il = 0; il < hp->n_layer; il++) {
        layer_cache *c = &s->lc[il];
        size_t nc, ns;
        al_layer_state_sizes(hp, il, &nc, &ns);
        if (c->conv) memset(c->conv, 0, nc * sizeof(float));
        if (c->ssm) memset(c->ssm, 0, ns * sizeof(float));
    }
    s->pos = 0;
    s->snap_pos = -1;
}

int al_session_pos(const al_session *s) { return s->pos; }

bool al_model_can_truncate(const al_model *m) { return al_layers_state_size(&m->hp, 0, m->hp.n_layer) == 0; }

al_status al_session_truncate(al_session *s, int n) {
    if (n < 0 || n > s->pos) return al_err(AL_ERR_RANGE, "truncate: %d of %d tokens", n, s->pos);
    if (!al_model_can_truncate(s->m)) return al_err(AL_ERR_UNSUPPORTED, "truncate: the model keeps recurrent (SSM) state");
    s->pos = n;
    if (s->snap_pos > n) s->snap_pos = -1;
    return al_ok();
}

void al_layer_state_sizes(const al_hparams *hp, int il, size_t *conv, size_t *ssm) {
    const int64_t conv_ch2 = hp->ssm_d_inner + 2 * (int64_t)hp->ssm_n_group * hp->ssm_d_state;
    const al_mixer mx = hp->layer_mixer[il];
    const bool rec = mx == AL_MIXER_MAMBA1 || mx == AL_MIXER_MAMBA2;
    *conv = rec ? (size_t)(hp->ssm_d_conv - 1) * (size_t)(mx == AL_MIXER_MAMBA2 ? conv_ch2 : hp->ssm_d_inner) : 0;
    *ssm = rec ? (size_t)hp->ssm_d_inner * (size_t)hp->ssm_d_state : 0;
}

size_t al_layers_state_size(const al_hparams *hp, int l0, int l1) {
    size_t n = 0;
    for (int il = l0; il < l1; il++) {
        size_t nc, ns;
        al_layer_state_sizes(hp, il, &nc, &ns);
        n += nc + ns;
    }
    return n;
}

/* copies every layer's recurrent state to (save) or from the snapshot */
static void snap_copy(al_session *s, bool save) {
    const al_hparams *hp = &s->m->hp;
    float *p = s->snap;
    for (int il = 0; il < hp->n_layer; il++) {
        size_t nc, ns;
        al_layer_state_sizes(hp, il, &nc, &ns);
        layer_cache *c = &s->lc[il];
        if (!c->conv || !c->ssm) continue; /* layers this session does not hold */
        memcpy(save ? p : c->conv, save ? c->conv : p, sizeof(float) * nc);
        memcpy(save ? p + nc : c->ssm, save ? c->ssm : p + nc, sizeof(float) * ns);
        p += nc + ns;
    }
}

al_status al_session_snapshot(al_session *s) {
    if (!s->snap) {
        const size_t n = 1 + al_layers_state_size(&s->m->hp, 0, s->m->hp.n_layer);
        if (!(s->snap = zalloc(n))) return al_err(AL_ERR_NOMEM, "snapshot: out of memory (%zu floats)", n);
    }
    snap_copy(s, true);
    s->snap_pos = s->pos;
    return al_ok();
}

al_status al_session_restore(al_session *s) {
    if (s->snap_pos < 0 || s->snap_pos > s->pos) return al_err(AL_ERR_NOT_FOUND, "restore: no snapshot");
    snap_copy(s, false);
    s->pos = s->snap_pos;
    return al_ok();
}

int al_session_snapshot_pos(const al_session *s) { return s->snap_pos; }
int al_session_n_ctx(const al_session *s) { return s->n_ctx; }

al_status al_session_eval(al_session *s, const int32_t *tokens, int n, float *logits, bool all_logits) {
    if (n <= 0) return al_err(AL_ERR_INVALID, "eval: no tokens");
    if (s->pos + n > s->n_ctx) return al_err(AL_ERR_RANGE, "eval: context full (%d + %d > %d)", s->pos, n, s->n_ctx);
    int64_t V = s->m->hp.n_vocab;
    for (int i = 0; i < n; i += s->sc.rows) {
        int cnt = n - i < s->sc.rows ? n - i : s->sc.rows;
        bool last = i + cnt == n;
        al_fwd_item it = {s, tokens + i, cnt, all_logits ? logits + (size_t)i * (size_t)V : (last ? logits : NULL), all_logits};
        AL_TRY(al_forward_batch(s->m, &s->sc, &it, 1));
    }
    return al_ok();
}
