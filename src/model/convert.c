/*
 * convert.c — `alloy quantize`: GGUF -> GGUF and HF folder -> GGUF, to one type or a mixed recipe
 * (Q4_K_M / Q5_K_M as llama.cpp defines them: attn_v and ffn_down of a subset of layers and the
 * output matrix keep more bits).
 *
 * Which tensors are quantized: matrices (ndim >= 2) except norms, the Mamba conv kernel and
 * SSM parameters; a row not divisible by the target block falls back to Q8_0, then F16, then F32.
 * HF sources are renamed to GGUF names (names_hf.c); llama q/k rows are permuted for llama.cpp's
 * interleaved RoPE; A_log becomes A = -exp(A_log); jamba experts are stacked into one 3-D tensor
 * per projection; zamba2 adapters are filed under the layer that uses them.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "alloy/quant.h"
#include "alloy/tokenizer.h"
#include "model/model_internal.h"

typedef struct conv_ctx {
    al_gguf_writer *w;
    void **bufs;
    int n_bufs, cap_bufs;
    al_pool *pool;
    al_type base;
    bool recipe_m;     /* *_K_M recipe */
    int n_layer;
    size_t bytes_in, bytes_out;
} conv_ctx;

static void *keep(conv_ctx *c, size_t bytes) {
    if (c->n_bufs == c->cap_bufs) {
        int cap = c->cap_bufs ? 2 * c->cap_bufs : 64;
        void **b = realloc(c->bufs, (size_t)cap * sizeof *b);
        if (!b) return NULL;
        c->bufs = b;
        c->cap_bufs = cap;
    }
    void *p = al_alloc(NULL, bytes ? bytes : 1);
    if (p) c->bufs[c->n_bufs++] = p;
    return p;
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static int layer_of(const char *name) {
    int il;
    return sscanf(name, "blk.%d.", &il) == 1 ? il : -1;
}

/* llama.cpp's use_more_bits(i, n): the first and last eighth, and every third layer between. */
static bool more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

static al_type pick_type(const conv_ctx *c, const char *name, int ndim, int64_t ne0, al_type src) {
    if (ndim < 2 || strstr(name, "norm") || strstr(name, "ssm_conv1d") || ends_with(name, "ssm_a") ||
        ends_with(name, "ssm_d") || ends_with(name, ".bias") || strstr(name, "rope_freqs") || strstr(name, "zamba_adapt"))
        return AL_TYPE_F32;
    al_type t = c->base;
    if (c->recipe_m) {
        int il = layer_of(name);
        if (!strcmp(name, "output.weight")) t = AL_TYPE_Q6_K;
        else if ((strstr(name, "attn_v.weight") || strstr(name, "ffn_down")) && il >= 0 && more_bits(il, c->n_layer))
            t = AL_TYPE_Q6_K;
    }
    al_type chain[4] = {t, AL_TYPE_Q8_0, AL_TYPE_F16, AL_TYPE_F32};
    for (int i = 0; i < 4; i++) {
        const al_type_traits *tr = al_type_traits_get(chain[i]);
        if (tr->from_float && ne0 % tr->block_size == 0) {
            /* never "quantize" to more bits than the source float type has */
            if (chain[i] == AL_TYPE_F32 && (src == AL_TYPE_F16 || src == AL_TYPE_BF16) && c->base != AL_TYPE_F32) return src;
            return chain[i];
        }
    }
    return AL_TYPE_F32;
}

/* Adds a tensor given as float32 data (owned by the context): converts to the picked type. */
static al_status add_f32(conv_ctx *c, const char *name, int ndim, const int64_t *ne, const float *x, al_type src_type) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= ne[i];
    al_type t = pick_type(c, name, ndim, ne[0], src_type);
    size_t bytes = al_type_row_size(t, ne[0]) * (size_t)(n / ne[0]);
    void *dst = keep(c, bytes);
    if (!dst) return al_err(AL_ERR_NOMEM, "%s: out of memory", name);
    AL_TRY(al_quantize_rows(t, x, dst, n / ne[0], ne[0], NULL, c->pool));
    c->bytes_out += bytes;
    return al_gguf_writer_add_tensor(c->w, name, t, ndim, ne, dst);
}

static al_status to_f32(conv_ctx *c, const al_tensor *t, float **out) {
    int64_t n = al_tensor_nelements(t);
    float *x = keep(c, (size_t)n * sizeof(float));
    if (!x) return al_err(AL_ERR_NOMEM, "out of memory converting a tensor");
    AL_TRY(al_dequantize_rows(t->type, t->data, x, n / t->ne[0], t->ne[0], c->pool));
    c->bytes_in += al_tensor_nbytes(t);
    *out = x;
    return al_ok();
}

/* llama.cpp's permute for llama q/k: within each head, rows [0..hd/2) and [hd/2..hd) interleave. */
static void permute_qk(float *x, int64_t rows, int64_t cols, int n_head) {
    int64_t hd = rows / n_head;
    float *tmp = malloc(sizeof(float) * (size_t)(rows * cols));
    if (!tmp) return;
    memcpy(tmp, x, sizeof(float) * (size_t)(rows * cols));
    for (int h = 0; h < n_head; h++)
        for (int64_t i = 0; i < hd / 2; i++)
            for (int j = 0; j < 2; j++)
                memcpy(x + (h * hd + 2 * i + j) * cols, tmp + (h * hd + j * (hd / 2) + i) * cols, sizeof(float) * (size_t)cols);
    free(tmp);
}

static al_status put_u32_layers(al_gguf_writer *w, const char *key, const int *v, int n, bool as_array) {
    if (!as_array) return al_gguf_writer_set_u32(w, key, (uint32_t)v[0]);
    uint32_t *a = malloc(sizeof(uint32_t) * (size_t)n);
    if (!a) return al_err(AL_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) a[i] = (uint32_t)v[i];
    al_status st = al_gguf_writer_set_arr(w, key, AL_GGUF_UINT32, a, (uint64_t)n);
    free(a);
    return st;
}

al_status al_hparams_to_gguf(const al_hparams *hp, al_gguf_writer *w) {
    const char *a = al_arch_name(hp->arch);
    char k[128];
#define KEY(s) (snprintf(k, sizeof k, "%s.%s", a, s), k)
    AL_TRY(al_gguf_writer_set_str(w, "general.architecture", a));
    AL_TRY(al_gguf_writer_set_u32(w, "general.quantization_version", 2));
    AL_TRY(al_gguf_writer_set_u32(w, KEY("context_length"), (uint32_t)hp->n_ctx_train));
    AL_TRY(al_gguf_writer_set_u32(w, KEY("embedding_length"), (uint32_t)hp->n_embd));
    AL_TRY(al_gguf_writer_set_u32(w, KEY("block_count"), (uint32_t)hp->n_layer));
    AL_TRY(al_gguf_writer_set_u32(w, KEY("vocab_size"), (uint32_t)hp->n_vocab));
    AL_TRY(al_gguf_writer_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), hp->norm_eps));
    int ff[AL_MAX_LAYERS], kv[AL_MAX_LAYERS], hd[AL_MAX_LAYERS];
    bool hybrid_ff = false, hybrid_kv = false;
    for (int i = 0; i < hp->n_layer; i++) {
        bool attn = hp->layer_mixer[i] == AL_MIXER_ATTN;
        ff[i] = hp->layer_ffn[i] == AL_FFN_SWIGLU || hp->layer_ffn[i] == AL_FFN_RELU2 || hp->layer_ffn[i] == AL_FFN_MOE ? hp->n_ff : 0;
        kv[i] = attn ? hp->n_head_kv : 0;
        hd[i] = attn ? hp->n_head : 0;
        hybrid_ff |= ff[i] != ff[0];
        hybrid_kv |= kv[i] != kv[0];
    }
    if (hp->arch == AL_ARCH_ZAMBA2) {
        for (int i = 0; i < hp->n_layer; i++) hd[i] = hp->n_head, kv[i] = hp->n_head_kv, ff[i] = hp->n_ff;
        hybrid_kv = hybrid_ff = false;
    }
    if (hp->n_ff > 0) AL_TRY(put_u32_layers(w, KEY("feed_forward_length"), ff, hp->n_layer, hybrid_ff));
    if (hp->n_head > 0) {
        AL_TRY(put_u32_layers(w, KEY("attention.head_count"), hd, hp->n_layer, hybrid_kv));
        AL_TRY(put_u32_layers(w, KEY("attention.head_count_kv"), kv, hp->n_layer, hybrid_kv));
        AL_TRY(al_gguf_writer_set_u32(w, KEY("attention.key_length"), (uint32_t)hp->head_dim));
        AL_TRY(al_gguf_writer_set_u32(w, KEY("attention.value_length"), (uint32_t)hp->head_dim));
    }
    if (hp->rope_mode != AL_ROPE_NONE) {
        AL_TRY(al_gguf_writer_set_f32(w, KEY("rope.freq_base"), hp->rope_theta));
        AL_TRY(al_gguf_writer_set_u32(w, KEY("rope.dimension_count"), (uint32_t)hp->rope_dim));
    }
    if (hp->sliding_window > 0) AL_TRY(al_gguf_writer_set_u32(w, KEY("attention.sliding_window"), (uint32_t)hp->sliding_window));
    if (hp->n_expert > 0) {
        AL_TRY(al_gguf_writer_set_u32(w, KEY("expert_count"), (uint32_t)hp->n_expert));
        AL_TRY(al_gguf_writer_set_u32(w, KEY("expert_used_count"), (uint32_t)hp->n_expert_used));
        AL_TRY(al_gguf_writer_set_u32(w, KEY("expert_feed_forward_length"), (uint32_t)hp->n_ff_expert));
    }
    if (hp->ssm_d_inner > 0) {
        AL_TRY(al_gguf_writer_set_u32(w, KEY("ssm.conv_kernel"), (uint32_t)hp->ssm_d_conv));
        AL_TRY(al_gguf_writer_set_u32(w, KEY("ssm.inner_size"), (uint32_t)hp->ssm_d_inner));
        AL_TRY(al_gguf_writer_set_u32(w, KEY("ssm.state_size"), (uint32_t)hp->ssm_d_state));
        AL_TRY(al_gguf_writer_set_u32(w, KEY("ssm.time_step_rank"), (uint32_t)(hp->ssm_dt_rank ? hp->ssm_dt_rank : hp->ssm_n_head)));
        AL_TRY(al_gguf_writer_set_u32(w, KEY("ssm.group_count"), (uint32_t)hp->ssm_n_group));
        if (hp->ssm_n_head > 0) {
            AL_TRY(al_gguf_writer_set_u32(w, KEY("ssm.chunk_size"), (uint32_t)hp->ssm_chunk));
            AL_TRY(al_gguf_writer_set_u32(w, KEY("ssm.norm_group_count"), (uint32_t)hp->ssm_norm_groups));
            if (hp->ssm_dt_min > 0) AL_TRY(al_gguf_writer_set_f32(w, KEY("ssm.dt_min"), hp->ssm_dt_min));
            if (hp->ssm_dt_floor_prefill > 0) AL_TRY(al_gguf_writer_set_f32(w, KEY("ssm.dt_floor_prefill"), hp->ssm_dt_floor_prefill));
            if (isfinite(hp->ssm_dt_max)) AL_TRY(al_gguf_writer_set_f32(w, KEY("ssm.dt_max"), hp->ssm_dt_max));
        }
    }
    if (hp->arch == AL_ARCH_ALLOY) {
        char pat[AL_MAX_LAYERS + 1];
        for (int i = 0; i < hp->n_layer; i++) pat[i] = hp->layer_mixer[i] == AL_MIXER_ATTN ? 'A' : 'M';
        pat[hp->n_layer] = '\0';
        AL_TRY(al_gguf_writer_set_str(w, KEY("layer_pattern"), pat));
        if (hp->ffn_act != AL_ACT_SILU) AL_TRY(al_gguf_writer_set_str(w, KEY("feed_forward_activation"), al_act_name(hp->ffn_act)));
    }
    if (hp->arch == AL_ARCH_ZAMBA2) {
        AL_TRY(al_gguf_writer_set_u32(w, KEY("zamba.attention_dim"), (uint32_t)hp->zamba_attn_dim));
        AL_TRY(al_gguf_writer_set_u32(w, KEY("zamba.mem_block_count"), (uint32_t)hp->zamba_n_mem_blocks));
        AL_TRY(al_gguf_writer_set_u32(w, KEY("zamba.adapter_rank"), (uint32_t)hp->zamba_adapter_rank));
    }
#undef KEY
    return al_ok();
}

/* zamba2: HF adapters live under the block's first hybrid layer with a slot index; GGUF files them
 * under the hybrid layer that uses them, slot 0. */
static void zamba_adapter_name(const al_hparams *hp, const char *gguf, char *out, size_t size) {
    int owner, slot;
    char kind[8], rest[32];
    if (sscanf(gguf, "blk.%d.zamba_adapt_%7[a-z].%d.%31s", &owner, kind, &slot, rest) != 4) {
        snprintf(out, size, "%s", gguf);
        return;
    }
    int nb = hp->zamba_n_mem_blocks > 0 ? hp->zamba_n_mem_blocks : 1;
    int hyb[AL_MAX_LAYERS], nh = 0, block = -1;
    for (int l = 0; l < hp->n_layer; l++)
        if (hp->layer_shared[l]) hyb[nh++] = l;
    for (int j = 0; j < nh; j++)
        if (hyb[j] == owner) block = j % nb;
    int j = slot * nb + (block < 0 ? 0 : block);
    snprintf(out, size, "blk.%d.zamba_adapt_%s.0.%s", j < nh ? hyb[j] : owner, kind, rest);
}

static al_status convert_hf(conv_ctx *c, al_model *m) {
    const al_hparams *hp = &m->hp;
    AL_TRY(al_hparams_to_gguf(hp, c->w));
    const al_tokenizer *tok;
    al_status ts = al_model_tokenizer(m, &tok);
    if (!al_failed(&ts)) AL_TRY(al_tokenizer_to_gguf(tok, c->w));
    for (int64_t i = 0; i < m->src.map_count; i++) {
        const al_hf_map *mp = &m->src.map[i];
        const al_st_tensor *st = mp->t;
        int e;
        char kind[8];
        int il;
        if (sscanf(mp->gguf_name, "blk.%d.ffn_%7[a-z]_exps.%d.weight", &il, kind, &e) == 3) {
            if (e != 0) continue; /* stacked when expert 0 is seen */
            al_ffn_w *f = &m->layers[il].ffn;
            al_tensor *parts = !strcmp(kind, "gate") ? f->exp_gate : !strcmp(kind, "up") ? f->exp_up : f->exp_down;
            int64_t per = al_tensor_nelements(&parts[0]);
            float *all = keep(c, sizeof(float) * (size_t)(per * hp->n_expert));
            if (!all) return al_err(AL_ERR_NOMEM, "experts: out of memory");
            for (int x = 0; x < hp->n_expert; x++) {
                float *one;
                AL_TRY(to_f32(c, &parts[x], &one));
                memcpy(all + per * x, one, sizeof(float) * (size_t)per);
            }
            char name[128];
            snprintf(name, sizeof name, "blk.%d.ffn_%s_exps.weight", il, kind);
            int64_t ne[3] = {parts[0].ne[0], parts[0].ne[1], hp->n_expert};
            AL_TRY(add_f32(c, name, 3, ne, all, parts[0].type));
            continue;
        }
        if (st->type == AL_TYPE_COUNT) return al_err(AL_ERR_UNSUPPORTED, "%s: dtype %s", st->name, st->dtype);
        al_tensor t;
        int nd = st->ndim ? st->ndim : 1;
        int64_t ne[AL_MAX_DIMS] = {1, 1, 1, 1};
        for (int d = 0; d < nd; d++) ne[d] = st->ndim ? st->ne[d] : 1;
        AL_TRY(al_tensor_view(&t, st->type, nd, ne, (void *)st->data));
        float *x;
        AL_TRY(to_f32(c, &t, &x));
        int64_t n = al_tensor_nelements(&t);
        if (mp->xf == AL_XF_NEG_EXP)
            for (int64_t j = 0; j < n; j++) x[j] = -expf(x[j]);
        if (mp->xf == AL_XF_PERMUTE_Q) permute_qk(x, ne[1], ne[0], hp->n_head);
        if (mp->xf == AL_XF_PERMUTE_K) permute_qk(x, ne[1], ne[0], hp->n_head_kv);
        /* conv1d [ch][1][k] -> {k, ch}; other squeezes of size-1 dims */
        int nd2 = 0;
        int64_t ne2[AL_MAX_DIMS];
        for (int d = 0; d < nd; d++)
            if (ne[d] != 1 || (d == 0)) ne2[nd2++] = ne[d];
        char name[128];
        if (hp->arch == AL_ARCH_ZAMBA2) zamba_adapter_name(hp, mp->gguf_name, name, sizeof name);
        else snprintf(name, sizeof name, "%s", mp->gguf_name);
        AL_TRY(add_f32(c, name, nd2, ne2, x, st->type));
    }
    if (hp->rope_factor > 0 && hp->rope_orig_ctx > 0) {
        float *f = keep(c, sizeof(float) * (size_t)(hp->rope_dim / 2));
        if (!f) return al_err(AL_ERR_NOMEM, "out of memory");
        al_hparams_rope_factors(hp, f);
        int64_t ne[1] = {hp->rope_dim / 2};
        AL_TRY(add_f32(c, "rope_freqs.weight", 1, ne, f, AL_TYPE_F32));
    }
    return al_ok();
}

static al_status convert_gguf(conv_ctx *c, const al_gguf *g) {
    for (int64_t i = 0; i < al_gguf_kv_count(g); i++) {
        al_str k = al_gguf_kv_key(g, i);
        if (k.len == strlen("general.file_type") && !memcmp(k.ptr, "general.file_type", k.len)) continue;
        AL_TRY(al_gguf_writer_copy_kv(c->w, g, i));
    }
    for (int64_t i = 0; i < al_gguf_tensor_count(g); i++) {
        const al_gguf_tensor_info *ti = al_gguf_tensor_info_at(g, i);
        al_tensor t;
        AL_TRY(al_gguf_tensor_view(g, i, &t));
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(ti->name.len < 255 ? ti->name.len : 255), ti->name.ptr);
        if (!al_type_traits_get(t.type)->to_float) return al_err(AL_ERR_UNSUPPORTED, "%s: type %s", name, al_type_name(t.type));
        float *x;
        AL_TRY(to_f32(c, &t, &x));
        AL_TRY(add_f32(c, name, ti->ndim, ti->ne, x, t.type));
    }
    return al_ok();
}

/* llama.cpp's general.file_type values */
static int file_type_of(al_type base, bool m) {
    switch (base) {
    case AL_TYPE_F32: return 0;
    case AL_TYPE_F16: return 1;
    case AL_TYPE_Q4_0: return 2;
    case AL_TYPE_Q4_1: return 3;
    case AL_TYPE_Q8_0: return 7;
    case AL_TYPE_Q5_0: return 8;
    case AL_TYPE_Q5_1: return 9;
    case AL_TYPE_Q2_K: return 10;
    case AL_TYPE_Q3_K: return 12;
    case AL_TYPE_Q4_K: return m ? 15 : 14;
    case AL_TYPE_Q5_K: return m ? 17 : 16;
    case AL_TYPE_Q6_K: return 18;
    case AL_TYPE_IQ4_NL: return 25;
    case AL_TYPE_IQ4_XS: return 30;
    case AL_TYPE_BF16: return 32;
    default: return 0;
    }
}

/* "Q4_K" / "Q4_K_M" / "Q5_K_S" ...: base type and whether the _M recipe applies. */
static al_status parse_type(const char *type_name, conv_ctx *c) {
    char tn[32];
    snprintf(tn, sizeof tn, "%s", type_name);
    size_t L = strlen(tn);
    if (L > 2 && (!strcasecmp(tn + L - 2, "_M") || !strcasecmp(tn + L - 2, "_S"))) {
        c->recipe_m = (tn[L - 1] == 'M' || tn[L - 1] == 'm');
        tn[L - 2] = '\0';
    }
    if (!al_type_from_name(tn, &c->base) || !al_type_traits_get(c->base)->from_float || c->base == AL_TYPE_Q8_K ||
        c->base == AL_TYPE_Q8_1)
        return al_err(AL_ERR_INVALID, "unknown or unsupported weight type '%s'", type_name);
    return al_ok();
}

al_status al_model_convert(const char *in_path, const char *out_path, const char *type_name, int n_threads,
                           size_t *bytes_in, size_t *bytes_out) {
    conv_ctx c = {0};
    AL_TRY(parse_type(type_name, &c));
    al_model_params mp = al_model_default_params();
    mp.n_threads = n_threads;
    al_model *m;
    AL_TRY(al_model_load(&m, in_path, &mp));
    c.n_layer = m->hp.n_layer;
    c.pool = al_cpu_pool(m->cpu);
    al_status st = al_gguf_writer_init(&c.w, NULL);
    if (!al_failed(&st)) st = m->src.gguf ? convert_gguf(&c, m->src.gguf) : convert_hf(&c, m);
    if (!al_failed(&st)) st = al_gguf_writer_set_u32(c.w, "general.file_type", (uint32_t)file_type_of(c.base, c.recipe_m));
    if (!al_failed(&st)) st = al_gguf_writer_write(c.w, out_path);
    al_gguf_writer_free(c.w);
    for (int i = 0; i < c.n_bufs; i++) al_free(NULL, c.bufs[i]);
    free(c.bufs);
    al_model_free(m);
    if (bytes_in) *bytes_in = c.bytes_in;
    if (bytes_out) *bytes_out = c.bytes_out;
    return st;
}

/* ---- random-weight models (the bundled default model, tests, benchmarks of real shapes) ---- */

static float randn(uint64_t *x) {
    /* Box-Muller over a xorshift64* stream */
    double u1, u2;
    *x ^= *x >> 12, *x ^= *x << 25, *x ^= *x >> 27;
    u1 = ((*x * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
    *x ^= *x >> 12, *x ^= *x << 25, *x ^= *x >> 27;
    u2 = ((*x * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2 * M_PI * u2));
}

typedef enum init_kind { INIT_NORMAL, INIT_ONES, INIT_ZERO, INIT_A, INIT_DT } init_kind;

static al_status add_random(conv_ctx *c, uint64_t *rng, const char *name, int ndim, int64_t ne0, int64_t ne1, init_kind k) {
    int64_t ne[2] = {ne0, ne1}, n = ne0 * (ndim > 1 ? ne1 : 1);
    float *x = keep(c, sizeof(float) * (size_t)n);
    if (!x) return al_err(AL_ERR_NOMEM, "%s: out of memory", name);
    float sd = 1.0f / sqrtf((float)ne0);
    for (int64_t i = 0; i < n; i++) {
        switch (k) {
        case INIT_NORMAL: x[i] = randn(rng) * sd; break;
        case INIT_ONES: x[i] = 1.0f; break;
        case INIT_ZERO: x[i] = 0.0f; break;
        case INIT_A: x[i] = -(float)(1 + i % 16); break;                         /* A = -exp(log(1..16)) */
        case INIT_DT: x[i] = logf(expm1f(0.001f + 0.099f * (float)i / (float)n)); break; /* softplus^-1(dt) */
        }
    }
    return add_f32(c, name, ndim, ne, x, AL_TYPE_F32);
}

/* The tokenizer's token list (and token types, scores) padded to n_vocab entries "[PAD<id>]" of type
 * UNUSED (5) and score 0, as converters do where a model's embedding has more rows than its tokenizer
 * has tokens (e.g. Qwen's 151 936 rows), so every id the model can produce has a token. */
static al_status pad_vocab(al_gguf_writer *w, const al_gguf *tg, int64_t n_vocab) {
    al_gguf_value toks, types, scores;
    if (!al_gguf_get_arr(tg, "tokenizer.ggml.tokens", &toks)) return al_ok();
    const int64_t n = (int64_t)toks.count;
    if (n > n_vocab)
        return al_err(AL_ERR_INVALID, "create: the tokenizer has %lld tokens, more than the model's %lld rows", (long long)n,
                      (long long)n_vocab);
    if (n == n_vocab) return al_ok();
    char **strs = calloc((size_t)n_vocab, sizeof *strs);
    int32_t *ty = malloc(sizeof(int32_t) * (size_t)n_vocab);
    float *sc = malloc(sizeof(float) * (size_t)n_vocab);
    al_status st = strs && ty && sc ? al_ok() : al_err(AL_ERR_NOMEM, "create: out of memory");
    const bool has_types = al_gguf_get_arr(tg, "tokenizer.ggml.token_type", &types) && (int64_t)types.count == n;
    const bool has_scores = al_gguf_get_arr(tg, "tokenizer.ggml.scores", &scores) && (int64_t)scores.count == n;
    for (int64_t i = 0; i < n_vocab && !al_failed(&st); i++) {
        if (i < n) {
            const al_gguf_value v = al_gguf_arr_at(&toks, (uint64_t)i);
            const al_str t = al_gguf_value_str(&v);
            if ((strs[i] = malloc(t.len + 1))) memcpy(strs[i], t.ptr, t.len), strs[i][t.len] = '\0';
            const al_gguf_value tv = has_types ? al_gguf_arr_at(&types, (uint64_t)i) : v;
            const al_gguf_value sv = has_scores ? al_gguf_arr_at(&scores, (uint64_t)i) : v;
            ty[i] = has_types ? (int32_t)al_gguf_value_i64(&tv) : 1;
            sc[i] = has_scores ? (float)al_gguf_value_f64(&sv) : 0.0f;
        } else {
            if ((strs[i] = malloc(32))) snprintf(strs[i], 32, "[PAD%lld]", (long long)i);
            ty[i] = 5;
            sc[i] = 0.0f;
        }
        if (!strs[i]) st = al_err(AL_ERR_NOMEM, "create: out of memory");
    }
    if (!al_failed(&st)) st = al_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)strs, (uint64_t)n_vocab);
    if (!al_failed(&st) && has_types)
        st = al_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", AL_GGUF_INT32, ty, (uint64_t)n_vocab);
    if (!al_failed(&st) && has_scores)
        st = al_gguf_writer_set_arr(w, "tokenizer.ggml.scores", AL_GGUF_FLOAT32, sc, (uint64_t)n_vocab);
    for (int64_t i = 0; strs && i < n_vocab; i++) free(strs[i]);
    free(strs);
    free(ty);
    free(sc);
    return st;
}

al_status al_model_create_random(const al_hparams *hp, const char *tokenizer_gguf, const char *out_path, const char *type,
                                 uint64_t seed) {
    conv_ctx c = {0};
    AL_TRY(parse_type(type, &c));
    AL_TRY(al_hparams_validate(hp));
    AL_TRY(al_pool_init(&c.pool, 0));
    c.n_layer = hp->n_layer;
    uint64_t rng = seed * 0x9e3779b97f4a7c15ull + 1;
    al_gguf *tg = NULL;
    al_status st = al_gguf_writer_init(&c.w, NULL);
    if (!al_failed(&st) && tokenizer_gguf) st = al_gguf_open(&tg, tokenizer_gguf);
    if (!al_failed(&st)) st = al_hparams_to_gguf(hp, c.w);
    for (int64_t i = 0; tg && !al_failed(&st) && i < al_gguf_kv_count(tg); i++) {
        al_str k = al_gguf_kv_key(tg, i);
        if (k.len > 10 && !memcmp(k.ptr, "tokenizer.", 10)) st = al_gguf_writer_copy_kv(c.w, tg, i);
    }
    if (!al_failed(&st) && tg) st = pad_vocab(c.w, tg, hp->n_vocab);
    int64_t d = hp->n_embd, qd = (int64_t)hp->n_head * hp->head_dim, kvd = (int64_t)hp->n_head_kv * hp->head_dim;
    int64_t gn = (int64_t)hp->ssm_n_group * hp->ssm_d_state, di = hp->ssm_d_inner, ch = di + 2 * gn;
    int64_t proj = 2 * di + 2 * gn + hp->ssm_n_head;
    /* a Zephyr-style template when the vocabulary brings none: plain-text role markers, EOS ends a turn */
    if (!al_failed(&st) && (!tg || al_gguf_find_key(tg, "tokenizer.chat_template") < 0))
        st = al_gguf_writer_set_str(c.w, "tokenizer.chat_template",
                                    "{% for m in messages %}{{ '<|' + m['role'] + '|>\\n' + m['content'] + eos_token + '\\n' }}"
                                    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}");
#define R(nm, nd, a, b, k) do { if (!al_failed(&st)) st = add_random(&c, &rng, nm, nd, a, b, k); } while (0)
    R("token_embd.weight", 2, d, hp->n_vocab, INIT_NORMAL);
    R("output_norm.weight", 1, d, 1, INIT_ONES);
    if (!hp->tie_embeddings) R("output.weight", 2, d, hp->n_vocab, INIT_NORMAL);
    for (int il = 0; il < hp->n_layer && !al_failed(&st); il++) {
        char nm[128];
#define L(sfx) (snprintf(nm, sizeof nm, "blk.%d.%s", il, sfx), nm)
        R(L("attn_norm.weight"), 1, d, 1, INIT_ONES);
        if (hp->layer_ffn[il] != AL_FFN_NONE) R(L("ffn_norm.weight"), 1, d, 1, INIT_ONES);
        if (hp->layer_mixer[il] == AL_MIXER_ATTN) {
            R(L("attn_q.weight"), 2, d, qd, INIT_NORMAL);
            R(L("attn_k.weight"), 2, d, kvd, INIT_NORMAL);
            R(L("attn_v.weight"), 2, d, kvd, INIT_NORMAL);
            R(L("attn_output.weight"), 2, qd, d, INIT_NORMAL);
            if (hp->qk_norm) {
                R(L("attn_q_norm.weight"), 1, hp->head_dim, 1, INIT_ONES);
                R(L("attn_k_norm.weight"), 1, hp->head_dim, 1, INIT_ONES);
            }
        } else if (hp->layer_mixer[il] == AL_MIXER_MAMBA2) {
            R(L("ssm_in.weight"), 2, d, proj, INIT_NORMAL);
            R(L("ssm_conv1d.weight"), 2, hp->ssm_d_conv, ch, INIT_NORMAL);
            R(L("ssm_conv1d.bias"), 1, ch, 1, INIT_ZERO);
            R(L("ssm_a"), 1, hp->ssm_n_head, 1, INIT_A);
            R(L("ssm_d"), 1, hp->ssm_n_head, 1, INIT_ONES);
            R(L("ssm_dt.bias"), 1, hp->ssm_n_head, 1, INIT_DT);
            R(L("ssm_norm.weight"), 1, di, 1, INIT_ONES);
            R(L("ssm_out.weight"), 2, di, d, INIT_NORMAL);
        } else if (hp->layer_mixer[il] != AL_MIXER_NONE) {
            st = al_err(AL_ERR_UNSUPPORTED, "create: layer kind not supported");
        }
        if (hp->layer_ffn[il] == AL_FFN_SWIGLU) R(L("ffn_gate.weight"), 2, d, hp->n_ff, INIT_NORMAL);
        if (hp->layer_ffn[il] == AL_FFN_SWIGLU || hp->layer_ffn[il] == AL_FFN_RELU2) {
            R(L("ffn_up.weight"), 2, d, hp->n_ff, INIT_NORMAL);
            R(L("ffn_down.weight"), 2, hp->n_ff, d, INIT_NORMAL);
        }
#undef L
    }
#undef R
    if (!al_failed(&st)) st = al_gguf_writer_set_u32(c.w, "general.file_type", (uint32_t)file_type_of(c.base, c.recipe_m));
    if (!al_failed(&st)) st = al_gguf_writer_write(c.w, out_path);
    al_gguf_writer_free(c.w);
    al_gguf_free(tg);
    al_pool_free(c.pool);
    for (int i = 0; i < c.n_bufs; i++) al_free(NULL, c.bufs[i]);
    free(c.bufs);
    return st;
}

typedef struct preset {
    const char *name;
    al_arch arch;
    int n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab;
    float rope_theta;
    int ssm_heads, ssm_head_dim, ssm_state, ssm_groups;
    const char *pattern; /* alloy only */
} preset;

static const preset presets[] = {
    {"alloy-tiny", AL_ARCH_ALLOY, 128, 4, 4, 2, 32, 384, 0, 10000.0f, 4, 64, 32, 1, "MAMA"},
    {"qwen3-0.6b", AL_ARCH_QWEN3, 1024, 28, 16, 8, 128, 3072, 151936, 1000000.0f, 0, 0, 0, 0, NULL},
    {"llama-3.2-1b", AL_ARCH_LLAMA, 2048, 16, 32, 8, 64, 8192, 128256, 500000.0f, 0, 0, 0, 0, NULL},
    {"mamba2-1.3b", AL_ARCH_MAMBA2, 2048, 48, 0, 0, 0, 0, 50288, 0.0f, 64, 64, 128, 1, NULL},
};

al_status al_model_create_preset(const char *name, const char *tokenizer_gguf, const char *out_path, const char *type,
                                 uint64_t seed) {
    const preset *p = NULL;
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (!strcmp(presets[i].name, name)) p = &presets[i];
    if (!p) return al_err(AL_ERR_NOT_FOUND, "create: no preset '%s' (alloy-tiny, qwen3-0.6b, llama-3.2-1b, mamba2-1.3b)", name);
    al_hparams hp;
    memset(&hp, 0, sizeof hp);
    hp.arch = p->arch;
    hp.n_embd = p->n_embd;
    hp.n_layer = p->n_layer;
    hp.n_ctx_train = 4096;
    hp.norm_eps = 1e-6f;
    hp.tie_embeddings = true;
    hp.n_head = p->n_head;
    hp.n_head_kv = p->n_head_kv;
    hp.head_dim = p->head_dim;
    hp.rope_dim = p->head_dim;
    hp.rope_theta = p->rope_theta;
    hp.rope_mode = p->arch == AL_ARCH_LLAMA ? AL_ROPE_NORM : p->n_head ? AL_ROPE_NEOX : AL_ROPE_NONE;
    hp.qk_norm = p->arch == AL_ARCH_QWEN3;
    hp.n_ff = p->n_ff;
    hp.n_vocab = p->n_vocab;
    hp.ssm_n_head = p->ssm_heads;
    hp.ssm_head_dim = p->ssm_head_dim;
    hp.ssm_d_inner = p->ssm_heads * p->ssm_head_dim;
    hp.ssm_d_state = p->ssm_state;
    hp.ssm_n_group = p->ssm_groups;
    hp.ssm_norm_groups = p->ssm_groups;
    hp.ssm_d_conv = p->ssm_heads ? 4 : 0;
    hp.ssm_chunk = p->ssm_heads ? 64 : 0;
    hp.ssm_dt_max = INFINITY;
    if (hp.n_vocab == 0 && tokenizer_gguf) {
        al_gguf *g;
        AL_TRY(al_gguf_open(&g, tokenizer_gguf));
        al_gguf_value toks;
        if (al_gguf_get_arr(g, "tokenizer.ggml.tokens", &toks)) hp.n_vocab = (int)toks.count;
        al_gguf_free(g);
    }
    if (hp.n_vocab == 0) hp.n_vocab = 32000;
    if (p->pattern) AL_TRY(al_hparams_set_pattern(&hp, p->pattern));
    else
        for (int i = 0; i < hp.n_layer; i++) {
            hp.layer_mixer[i] = p->ssm_heads ? AL_MIXER_MAMBA2 : AL_MIXER_ATTN;
            hp.layer_ffn[i] = p->n_ff ? AL_FFN_SWIGLU : AL_FFN_NONE;
        }
    return al_model_create_random(&hp, tokenizer_gguf, out_path, type, seed);
}
