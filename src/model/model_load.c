/*
 * model_load.c — builds an al_model from a GGUF file, an HF folder (config.json) or an Alloy folder
 * (config.yaml, config_alloy.c): hyper-parameters, then every weight looked up by GGUF name
 * through the weight source (model_internal.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloy/quant.h"
#include "alloy/tokenizer.h"
#include "model/model_internal.h"

void *al_model_own(al_model *m, size_t bytes) {
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? 2 * m->cap_owned : 64;
        void **o = realloc(m->owned, (size_t)cap * sizeof *o);
        if (!o) return NULL;
        m->owned = o;
        m->cap_owned = cap;
    }
    void *p = al_calloc(NULL, 1, bytes ? bytes : 1);
    if (p) m->owned[m->n_owned++] = p;
    return p;
}

/* Looks up a GGUF name in the source: a borrowed tensor view (+ transform for HF). */
static al_status src_find(al_model *m, const char *name, bool *found, al_tensor *t, al_hf_xform *xf) {
    *found = false;
    *xf = AL_XF_NONE;
    if (m->src.gguf) {
        int64_t i = al_gguf_find_tensor(m->src.gguf, name);
        if (i < 0) return al_ok();
        AL_TRY(al_gguf_tensor_view(m->src.gguf, i, t));
        *found = true;
        return al_ok();
    }
    for (int64_t i = 0; i < m->src.map_count; i++) {
        const al_hf_map *mp = &m->src.map[i];
        if (strcmp(mp->gguf_name, name) != 0) continue;
        const al_st_tensor *st = mp->t;
        if (st->type == AL_TYPE_COUNT) return al_err(AL_ERR_UNSUPPORTED, "%s: dtype %s not supported", st->name, st->dtype);
        int64_t ne[AL_MAX_DIMS];
        int nd = st->ndim ? st->ndim : 1;
        for (int d = 0; d < nd; d++) ne[d] = st->ndim ? st->ne[d] : 1;
        AL_TRY(al_tensor_view(t, st->type, nd, ne, (void *)st->data));
        *xf = mp->xf;
        *found = true;
        return al_ok();
    }
    return al_ok();
}

al_status al_model_get_matrix(al_model *m, const char *name, bool required, al_tensor *t) {
    memset(t, 0, sizeof *t);
    bool found;
    al_hf_xform xf;
    AL_TRY(src_find(m, name, &found, t, &xf));
    if (!found) {
        memset(t, 0, sizeof *t);
        return required ? al_err(AL_ERR_NOT_FOUND, "tensor %s missing", name) : al_ok();
    }
    if (!al_type_traits_get(t->type)->to_float)
        return al_err(AL_ERR_UNSUPPORTED, "tensor %s: type %s cannot be used as a weight", name, al_type_name(t->type));
    return al_ok();
}

al_status al_model_get_f32(al_model *m, const char *name, bool required, int64_t n, float **out) {
    *out = NULL;
    al_tensor t;
    bool found;
    al_hf_xform xf;
    AL_TRY(src_find(m, name, &found, &t, &xf));
    if (!found) return required ? al_err(AL_ERR_NOT_FOUND, "tensor %s missing", name) : al_ok();
    int64_t ne = al_tensor_nelements(&t);
    if (ne != n) return al_err(AL_ERR_FORMAT, "tensor %s: %lld elements, expected %lld", name, (long long)ne, (long long)n);
    float *v = al_model_own(m, (size_t)n * sizeof(float));
    if (!v) return al_err(AL_ERR_NOMEM, "tensor %s: out of memory", name);
    AL_TRY(al_dequantize_rows(t.type, t.data, v, al_tensor_nelements(&t) / t.ne[0], t.ne[0], NULL));
    if (xf == AL_XF_NEG_EXP)
        for (int64_t i = 0; i < n; i++) v[i] = -expf(v[i]);
    *out = v;
    return al_ok();
}

static al_status want_shape(const char *name, const al_tensor *t, int64_t ne0, int64_t ne1) {
    if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != 1 || t->ne[3] != 1)
        return al_err(AL_ERR_FORMAT, "tensor %s: shape {%lld, %lld, %lld}, expected {%lld, %lld}", name, (long long)t->ne[0],
                      (long long)t->ne[1], (long long)t->ne[2], (long long)ne0, (long long)ne1);
    return al_ok();
}

static al_status get_mat(al_model *m, int layer, const char *suffix, int64_t ne0, int64_t ne1, bool required, al_tensor *t) {
    char name[128];
    if (layer >= 0) snprintf(name, sizeof name, "blk.%d.%s", layer, suffix);
    else snprintf(name, sizeof name, "%s", suffix);
    AL_TRY(al_model_get_matrix(m, name, required, t));
    if (!t->data) return al_ok();
    return want_shape(name, t, ne0, ne1);
}

static al_status get_vec(al_model *m, int layer, const char *suffix, int64_t n, bool required, float **v) {
    char name[128];
    if (layer >= 0) snprintf(name, sizeof name, "blk.%d.%s", layer, suffix);
    else snprintf(name, sizeof name, "%s", suffix);
    return al_model_get_f32(m, name, required, n, v);
}

static al_status load_attn(al_model *m, int il, const char *pfx, int n_in, int n_out, al_attn_w *a) {
    const al_hparams *hp = &m->hp;
    int64_t q = (int64_t)hp->n_head * hp->head_dim, kv = (int64_t)hp->n_head_kv * hp->head_dim;
    char s[96];
#define SFX(x) (snprintf(s, sizeof s, "%s%s", pfx, x), s)
    AL_TRY(get_mat(m, il, SFX("attn_q.weight"), n_in, q, true, &a->wq));
    AL_TRY(get_mat(m, il, SFX("attn_k.weight"), n_in, kv, true, &a->wk));
    AL_TRY(get_mat(m, il, SFX("attn_v.weight"), n_in, kv, true, &a->wv));
    AL_TRY(get_mat(m, il, SFX("attn_output.weight"), q, n_out, true, &a->wo));
    AL_TRY(get_vec(m, il, SFX("attn_q.bias"), q, hp->attn_bias, &a->bq));
    AL_TRY(get_vec(m, il, SFX("attn_k.bias"), kv, hp->attn_bias, &a->bk));
    AL_TRY(get_vec(m, il, SFX("attn_v.bias"), kv, hp->attn_bias, &a->bv));
    AL_TRY(get_vec(m, il, SFX("attn_output.bias"), n_out, false, &a->bo));
    AL_TRY(get_vec(m, il, SFX("attn_q_norm.weight"), hp->head_dim, hp->qk_norm, &a->q_norm));
    AL_TRY(get_vec(m, il, SFX("attn_k_norm.weight"), hp->head_dim, hp->qk_norm, &a->k_norm));
#undef SFX
    return al_ok();
}

static al_status load_mamba2(al_model *m, int il, al_mamba2_w *w) {
    const al_hparams *hp = &m->hp;
    int64_t ng = (int64_t)hp->ssm_n_group * hp->ssm_d_state;
    int64_t conv_ch = hp->ssm_d_inner + 2 * ng;
    int64_t proj = 2 * (int64_t)hp->ssm_d_inner + 2 * ng + hp->ssm_n_head;
    AL_TRY(get_mat(m, il, "ssm_in.weight", hp->n_embd, proj, true, &w->in_proj));
    AL_TRY(get_vec(m, il, "ssm_conv1d.weight", conv_ch * hp->ssm_d_conv, true, &w->conv_w));
    AL_TRY(get_vec(m, il, "ssm_conv1d.bias", conv_ch, false, &w->conv_b));
    AL_TRY(get_vec(m, il, "ssm_a", hp->ssm_n_head, true, &w->A));
    AL_TRY(get_vec(m, il, "ssm_d", hp->ssm_n_head, true, &w->D));
    AL_TRY(get_vec(m, il, "ssm_dt.bias", hp->ssm_n_head, true, &w->dt_bias));
    AL_TRY(get_vec(m, il, "ssm_norm.weight", hp->ssm_d_inner, true, &w->norm));
    AL_TRY(get_mat(m, il, "ssm_out.weight", hp->ssm_d_inner, hp->n_embd, true, &w->out_proj));
    return al_ok();
}

static al_status load_mamba1(al_model *m, int il, al_mamba1_w *w) {
    const al_hparams *hp = &m->hp;
    int64_t di = hp->ssm_d_inner, ds = hp->ssm_d_state, r = hp->ssm_dt_rank;
    AL_TRY(get_mat(m, il, "ssm_in.weight", hp->n_embd, 2 * di, true, &w->in_proj));
    AL_TRY(get_vec(m, il, "ssm_conv1d.weight", di * hp->ssm_d_conv, true, &w->conv_w));
    AL_TRY(get_vec(m, il, "ssm_conv1d.bias", di, false, &w->conv_b));
    AL_TRY(get_mat(m, il, "ssm_x.weight", di, r + 2 * ds, true, &w->x_proj));
    AL_TRY(get_mat(m, il, "ssm_dt.weight", r, di, true, &w->dt_proj));
    AL_TRY(get_vec(m, il, "ssm_dt.bias", di, true, &w->dt_bias));
    AL_TRY(get_vec(m, il, "ssm_a", di * ds, true, &w->A));
    AL_TRY(get_vec(m, il, "ssm_d", di, true, &w->D));
    AL_TRY(get_vec(m, il, "ssm_dt_norm.weight", r, hp->ssm_dt_bc_norm, &w->dt_norm));
    AL_TRY(get_vec(m, il, "ssm_b_norm.weight", ds, hp->ssm_dt_bc_norm, &w->b_norm));
    AL_TRY(get_vec(m, il, "ssm_c_norm.weight", ds, hp->ssm_dt_bc_norm, &w->c_norm));
    AL_TRY(get_mat(m, il, "ssm_out.weight", di, hp->n_embd, true, &w->out_proj));
    return al_ok();
}

/* Expert e of a stacked GGUF tensor {ne0, ne1, n_expert}, or HF per-expert tensors. */
static al_status get_expert(al_model *m, int il, const char *kind, int e, int64_t ne0, int64_t ne1, al_tensor *t) {
    char name[128];
    snprintf(name, sizeof name, "blk.%d.ffn_%s_exps.weight", il, kind);
    al_tensor all;
    AL_TRY(al_model_get_matrix(m, name, false, &all));
    if (all.data) {
        if (all.ne[0] != ne0 || all.ne[1] != ne1 || all.ne[2] != m->hp.n_expert)
            return al_err(AL_ERR_FORMAT, "tensor %s: bad expert shape", name);
        int64_t ne[2] = {ne0, ne1};
        return al_tensor_view(t, all.type, 2, ne, (char *)all.data + all.nb[2] * (size_t)e);
    }
    snprintf(name, sizeof name, "ffn_%s_exps.%d.weight", kind, e);
    return get_mat(m, il, name, ne0, ne1, true, t);
}

static al_status load_ffn(al_model *m, int il, al_ffn kind, al_ffn_w *f) {
    const al_hparams *hp = &m->hp;
    if (kind == AL_FFN_SWIGLU || kind == AL_FFN_RELU2) {
        if (kind == AL_FFN_SWIGLU) AL_TRY(get_mat(m, il, "ffn_gate.weight", hp->n_embd, hp->n_ff, true, &f->gate));
        AL_TRY(get_mat(m, il, "ffn_up.weight", hp->n_embd, hp->n_ff, true, &f->up));
        AL_TRY(get_mat(m, il, "ffn_down.weight", hp->n_ff, hp->n_embd, true, &f->down));
    } else if (kind == AL_FFN_MOE) {
        int ne = hp->n_expert;
        AL_TRY(get_mat(m, il, "ffn_gate_inp.weight", hp->n_embd, ne, true, &f->router));
        f->exp_gate = al_model_own(m, (size_t)ne * sizeof(al_tensor));
        f->exp_up = al_model_own(m, (size_t)ne * sizeof(al_tensor));
        f->exp_down = al_model_own(m, (size_t)ne * sizeof(al_tensor));
        if (!f->exp_gate || !f->exp_up || !f->exp_down) return al_err(AL_ERR_NOMEM, "experts: out of memory");
        for (int e = 0; e < ne; e++) {
            AL_TRY(get_expert(m, il, "gate", e, hp->n_embd, hp->n_ff_expert, &f->exp_gate[e]));
            AL_TRY(get_expert(m, il, "up", e, hp->n_embd, hp->n_ff_expert, &f->exp_up[e]));
            AL_TRY(get_expert(m, il, "down", e, hp->n_ff_expert, hp->n_embd, &f->exp_down[e]));
        }
    }
    return al_ok();
}

/* zamba2: hybrid layer il is the j-th hybrid layer; its adapters and shared block. */
static al_status load_zamba_layer(al_model *m, int il, int j, al_layer_w *L) {
    const al_hparams *hp = &m->hp;
    int nb = hp->zamba_n_mem_blocks > 0 ? hp->zamba_n_mem_blocks : 1;
    L->z_block = j % nb;
    AL_TRY(get_mat(m, il, "zamba_linear.weight", hp->n_embd, hp->n_embd, true, &L->z_linear));
    if (hp->zamba_adapter_rank <= 0) return al_ok();
    /* GGUF: adapters stored per layer as slot 0; HF: stored under the block's first hybrid layer,
     * slot = j / nb (the layer's index among the layers sharing the block). */
    int owner = il, slot = 0;
    char probe[128];
    snprintf(probe, sizeof probe, "blk.%d.zamba_adapt_q.0.0.weight", il);
    al_tensor t;
    AL_TRY(al_model_get_matrix(m, probe, false, &t));
    if (!t.data) {
        int k = 0;
        for (int l = 0; l < hp->n_layer; l++) {
            if (!hp->layer_shared[l]) continue;
            if (k++ % nb == L->z_block) { owner = l; break; }
        }
        slot = j / nb;
    }
    int r = hp->zamba_adapter_rank, d2 = 2 * hp->n_embd;
    int64_t q = (int64_t)hp->n_head * hp->head_dim, kv = (int64_t)hp->n_head_kv * hp->head_dim;
    char s[96];
    const char *kinds[4] = {"q", "k", "v", "ff"};
    al_tensor *dst[4] = {L->z_adapt_q, L->z_adapt_k, L->z_adapt_v, L->z_adapt_ff};
    int64_t outs[4] = {q, kv, kv, 2 * (int64_t)hp->n_ff};
    int64_t ins[4] = {d2, d2, d2, hp->n_embd};
    for (int k = 0; k < 4; k++) {
        snprintf(s, sizeof s, "zamba_adapt_%s.%d.0.weight", kinds[k], slot);
        AL_TRY(get_mat(m, owner, s, ins[k], r, true, &dst[k][0]));
        snprintf(s, sizeof s, "zamba_adapt_%s.%d.1.weight", kinds[k], slot);
        AL_TRY(get_mat(m, owner, s, r, outs[k], true, &dst[k][1]));
    }
    return al_ok();
}

static al_status load_zamba_shared(al_model *m) {
    const al_hparams *hp = &m->hp;
    int nb = hp->zamba_n_mem_blocks > 0 ? hp->zamba_n_mem_blocks : 1;
    m->zshared = al_model_own(m, (size_t)nb * sizeof *m->zshared);
    if (!m->zshared) return al_err(AL_ERR_NOMEM, "zamba2: out of memory");
    for (int b = 0; b < nb; b++) {
        al_zshared_w *z = &m->zshared[b];
        char pfx[32], s[96];
        snprintf(pfx, sizeof pfx, "shared.%d.", b);
#define SN(x) (snprintf(s, sizeof s, "%s%s", pfx, x), s)
        AL_TRY(get_vec(m, -1, SN("attn_norm.weight"), 2 * hp->n_embd, true, &z->attn_norm));
        AL_TRY(load_attn(m, -1, pfx, 2 * hp->n_embd, hp->n_embd, &z->attn));
        AL_TRY(get_vec(m, -1, SN("ffn_norm.weight"), hp->n_embd, true, &z->ffn_norm));
        AL_TRY(get_mat(m, -1, SN("ffn_gate_up.weight"), hp->n_embd, 2 * (int64_t)hp->n_ff, true, &z->gate_up));
        AL_TRY(get_mat(m, -1, SN("ffn_down.weight"), hp->n_ff, hp->n_embd, true, &z->down));
#undef SN
    }
    return al_ok();
}

static al_status load_weights(al_model *m) {
    const al_hparams *hp = &m->hp;
    AL_TRY(get_mat(m, -1, "token_embd.weight", hp->n_embd, hp->n_vocab, true, &m->tok_embd));
    AL_TRY(get_vec(m, -1, "output_norm.weight", hp->n_embd, true, &m->out_norm));
    AL_TRY(get_mat(m, -1, "output.weight", hp->n_embd, hp->n_vocab, false, &m->output));
    if (!m->output.data) m->output = m->tok_embd;
    m->layers = al_model_own(m, (size_t)hp->n_layer * sizeof *m->layers);
    if (!m->layers) return al_err(AL_ERR_NOMEM, "layers: out of memory");
    if (hp->arch == AL_ARCH_ZAMBA2) AL_TRY(load_zamba_shared(m));
    for (int il = 0, j = 0; il < hp->n_layer; il++) {
        al_layer_w *L = &m->layers[il];
        al_mixer mx = hp->layer_mixer[il];
        al_ffn ff = hp->layer_ffn[il];
        AL_TRY(get_vec(m, il, "attn_norm.weight", hp->n_embd, true, &L->attn_norm));
        if (mx != AL_MIXER_NONE && ff != AL_FFN_NONE) AL_TRY(get_vec(m, il, "ffn_norm.weight", hp->n_embd, true, &L->ffn_norm));
        if (mx == AL_MIXER_ATTN) AL_TRY(load_attn(m, il, "", hp->n_embd, hp->n_embd, &L->attn));
        if (mx == AL_MIXER_MAMBA2) AL_TRY(load_mamba2(m, il, &L->m2));
        if (mx == AL_MIXER_MAMBA1) AL_TRY(load_mamba1(m, il, &L->m1));
        AL_TRY(load_ffn(m, il, ff, &L->ffn));
        if (hp->layer_shared[il]) AL_TRY(load_zamba_layer(m, il, j++, L));
    }
    return al_ok();
}

/* A missing or unsupported tokenizer is not fatal: logits and benchmarks need none. */
static void load_tokenizer(al_model *m, bool is_dir) {
    if (is_dir) {
        char p[1100];
        snprintf(p, sizeof p, "%s/tokenizer.json", m->path);
        struct stat sb;
        m->tok_status = stat(p, &sb) == 0 ? al_tokenizer_from_hf(&m->tok, m->path)
                                          : al_err(AL_ERR_NOT_FOUND, "%s has no tokenizer.json", m->path);
    } else {
        al_str s;
        m->tok_status = al_gguf_get_str(m->src.gguf, "tokenizer.ggml.model", &s)
                            ? al_tokenizer_from_gguf(&m->tok, m->src.gguf)
                            : al_err(AL_ERR_NOT_FOUND, "%s has no tokenizer metadata", m->path);
    }
    if (al_failed(&m->tok_status)) m->tok = NULL;
}

al_status al_model_tokenizer(const al_model *m, const al_tokenizer **out) {
    *out = m->tok;
    return m->tok ? al_ok() : m->tok_status;
}

al_model_params al_model_default_params(void) {
    al_model_params p = {0, AL_ISA_AUTO, NULL};
    return p;
}

al_status al_model_load(al_model **out, const char *path, const al_model_params *params) {
    *out = NULL;
    al_model_params def = al_model_default_params();
    if (!params) params = &def;
    al_model *m = calloc(1, sizeof *m);
    if (!m) return al_err(AL_ERR_NOMEM, "model: out of memory");
    snprintf(m->path, sizeof m->path, "%s", path);
    if (params->log) {
        m->log = *params->log;
        m->has_log = true;
    }
    al_status st;
    struct stat sb;
    if (stat(path, &sb) != 0) {
        st = al_err(AL_ERR_IO, "%s: no such file or folder", path);
        goto fail;
    }
    if (S_ISDIR(sb.st_mode)) {
        st = al_hf_open(&m->src.hf, path);
        if (al_failed(&st)) goto fail;
        /* config.yaml (and no config.json): an Alloy model folder with GGUF tensor names */
        bool alloy = !strcmp(al_hf_config_name(m->src.hf), "config.yaml");
        st = alloy ? al_hparams_from_alloy_config(&m->hp, al_hf_config(m->src.hf)) : al_hparams_from_hf(&m->hp, al_hf_config(m->src.hf));
        if (al_failed(&st)) goto fail;
        st = alloy ? al_alloy_build_map(&m->hp, m->src.hf, &m->src.map, &m->src.map_count)
                   : al_hf_build_map(&m->hp, m->src.hf, &m->src.map, &m->src.map_count);
        if (al_failed(&st)) goto fail;
    } else {
        st = al_gguf_open(&m->src.gguf, path);
        if (al_failed(&st)) goto fail;
        st = al_hparams_from_gguf(&m->hp, m->src.gguf);
        if (al_failed(&st)) goto fail;
    }
    st = load_weights(m);
    if (al_failed(&st)) goto fail;
    st = al_cpu_init(&m->cpu, params->n_threads, params->isa);
    if (al_failed(&st)) goto fail;
    load_tokenizer(m, S_ISDIR(sb.st_mode));
    *out = m;
    return al_ok();
fail:
    al_model_free(m);
    return al_err_wrap(st, "loading %s", path);
}

void al_model_free(al_model *m) {
    if (!m) return;
    al_cpu_free(m->cpu);
    al_tokenizer_free(m->tok);
    for (int i = 0; i < m->n_owned; i++) al_free(NULL, m->owned[i]);
    free(m->owned);
    free(m->src.map);
    al_hf_free(m->src.hf);
    al_gguf_free(m->src.gguf);
    free(m);
}

al_arch al_model_arch(const al_model *m) { return m->hp.arch; }
int al_model_n_vocab(const al_model *m) { return m->hp.n_vocab; }
int al_model_n_embd(const al_model *m) { return m->hp.n_embd; }
int al_model_n_layer(const al_model *m) { return m->hp.n_layer; }
int al_model_n_ctx_train(const al_model *m) { return m->hp.n_ctx_train; }
al_cpu *al_model_cpu(al_model *m) { return m->cpu; }
const char *al_model_path(const al_model *m) { return m->path; }

static size_t tbytes(const al_tensor *t) { return t->data ? al_tensor_nbytes(t) : 0; }

size_t al_model_weight_bytes(const al_model *m) {
    const al_hparams *hp = &m->hp;
    size_t b = tbytes(&m->output); /* embeddings: one row per token, negligible */
    for (int il = 0; il < hp->n_layer; il++) {
        const al_layer_w *L = &m->layers[il];
        const al_attn_w *a = &L->attn;
        b += tbytes(&a->wq) + tbytes(&a->wk) + tbytes(&a->wv) + tbytes(&a->wo);
        b += tbytes(&L->m2.in_proj) + tbytes(&L->m2.out_proj);
        b += tbytes(&L->m1.in_proj) + tbytes(&L->m1.x_proj) + tbytes(&L->m1.dt_proj) + tbytes(&L->m1.out_proj);
        b += tbytes(&L->ffn.gate) + tbytes(&L->ffn.up) + tbytes(&L->ffn.down);
        if (hp->layer_ffn[il] == AL_FFN_MOE && hp->n_expert > 0) {
            size_t e = tbytes(&L->ffn.exp_gate[0]) + tbytes(&L->ffn.exp_up[0]) + tbytes(&L->ffn.exp_down[0]);
            b += e * (size_t)hp->n_expert_used + tbytes(&L->ffn.router);
        }
        if (hp->layer_shared[il]) {
            const al_zshared_w *z = &m->zshared[L->z_block];
            b += tbytes(&z->attn.wq) + tbytes(&z->attn.wk) + tbytes(&z->attn.wv) + tbytes(&z->attn.wo);
            b += tbytes(&z->gate_up) + tbytes(&z->down) + tbytes(&L->z_linear);
        }
    }
    return b;
}

void al_model_describe(const al_model *m, char *buf, size_t size) {
    const al_hparams *hp = &m->hp;
    snprintf(buf, size, "%s %dL d%d vocab %d %s, %.2f MB weights/token", al_arch_name(hp->arch), hp->n_layer, hp->n_embd,
             hp->n_vocab, al_type_name(m->output.type), (double)al_model_weight_bytes(m) / 1e6);
}

int64_t al_model_n_params(const al_model *m) {
    int64_t n = 0;
    if (m->src.gguf) {
        for (int64_t i = 0; i < al_gguf_tensor_count(m->src.gguf); i++) {
            const al_gguf_tensor_info *t = al_gguf_tensor_info_at(m->src.gguf, i);
            int64_t e = 1;
            for (int d = 0; d < t->ndim; d++) e *= t->ne[d];
            n += e;
        }
    } else {
        for (int64_t i = 0; i < m->src.map_count; i++) {
            const al_st_tensor *t = m->src.map[i].t;
            int64_t e = 1;
            for (int d = 0; d < t->ndim; d++) e *= t->shape[d];
            n += e;
        }
    }
    return n;
}

/* llama.cpp's general.file_type values */
static const char *const ftype_names[] = {
    [0] = "F32",     [1] = "F16",     [2] = "Q4_0",    [3] = "Q4_1",    [7] = "Q8_0",    [8] = "Q5_0",
    [9] = "Q5_1",    [10] = "Q2_K",   [11] = "Q3_K_S", [12] = "Q3_K_M", [13] = "Q3_K_L", [14] = "Q4_K_S",
    [15] = "Q4_K_M", [16] = "Q5_K_S", [17] = "Q5_K_M", [18] = "Q6_K",   [25] = "IQ4_NL", [30] = "IQ4_XS",
    [32] = "BF16",
};

const char *al_model_ftype_name(const al_model *m) {
    uint32_t ft;
    if (m->src.gguf && al_gguf_get_u32(m->src.gguf, "general.file_type", &ft) &&
        ft < sizeof ftype_names / sizeof ftype_names[0] && ftype_names[ft])
        return ftype_names[ft];
    return al_type_name(m->layers && m->hp.n_layer > 0 && m->layers[0].ffn.down.data ? m->layers[0].ffn.down.type
                                                                                        : m->output.type);
}
