/*
 * config_alloy.c — an Alloy model folder (config.yaml + model.safetensors, or shards with
 * model.safetensors.index.json): the config schema (docs/alloy-config.md) and the tensor names.
 *
 * The YAML itself is read by format/yaml.c into a jansson tree (al_hf_open does that when the
 * folder has config.yaml and no config.json); here that tree is checked strictly: unknown keys,
 * wrong types, out-of-range or inconsistent sizes and unknown pattern letters are errors naming
 * the key. Tensors carry the GGUF names of the alloy layout (docs/gguf-layout.md), so the map is
 * the identity, plus `blk.N.ssm_a_log` (A_log, turned into ssm_a = -exp(A_log)) for trainers.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"

#define CFG "config.yaml"

static const char *const act_names[] = {
    [AL_ACT_SILU] = "silu", [AL_ACT_GELU_TANH] = "gelu_tanh", [AL_ACT_GELU_ERF] = "gelu", [AL_ACT_RELU2] = "relu2"};

const char *al_act_name(al_act a) { return (unsigned)a < sizeof act_names / sizeof act_names[0] ? act_names[a] : "?"; }

bool al_act_from_name(const char *name, al_act *out) {
    for (size_t i = 0; i < sizeof act_names / sizeof act_names[0]; i++) {
        if (act_names[i] && !strcmp(name, act_names[i])) {
            *out = (al_act)i;
            return true;
        }
    }
    return false;
}

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "a mapping";
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a float";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* Every key of obj must be in keys[] (NULL-terminated). sect: "" or "attention." */
static al_status known_keys(json_t *obj, const char *sect, const char *const *keys) {
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        bool ok = false;
        for (int i = 0; keys[i] && !ok; i++) ok = !strcmp(k, keys[i]);
        if (!ok) return al_err(AL_ERR_FORMAT, CFG ": unknown key '%s%.64s'", sect, k);
    }
    return al_ok();
}

/* An integer in [lo, hi]; absent or null: def when !required. */
static al_status get_int(json_t *obj, const char *sect, const char *key, bool required, long long def, long long lo,
                         long long hi, int *out) {
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (!v || json_is_null(v)) {
        if (required) return al_err(AL_ERR_NOT_FOUND, CFG ": missing required key '%s%s'", sect, key);
        *out = (int)def;
        return al_ok();
    }
    if (!json_is_integer(v)) return al_err(AL_ERR_FORMAT, CFG ": %s%s must be an integer, not %s", sect, key, type_name(v));
    long long x = json_integer_value(v);
    if (x < lo || x > hi) return al_err(AL_ERR_RANGE, CFG ": %s%s = %lld is outside [%lld, %lld]", sect, key, x, lo, hi);
    *out = (int)x;
    return al_ok();
}

/* A number (integer or float) in [lo, hi]; absent or null: def. */
static al_status get_num(json_t *obj, const char *sect, const char *key, double def, double lo, double hi, float *out) {
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (!v || json_is_null(v)) {
        *out = (float)def;
        return al_ok();
    }
    if (!json_is_number(v)) return al_err(AL_ERR_FORMAT, CFG ": %s%s must be a number, not %s", sect, key, type_name(v));
    double x = json_number_value(v);
    if (!(x >= lo && x <= hi)) return al_err(AL_ERR_RANGE, CFG ": %s%s = %g is outside [%g, %g]", sect, key, x, lo, hi);
    *out = (float)x;
    return al_ok();
}

static al_status get_bool(json_t *obj, const char *key, bool def, bool *out) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return al_ok();
    }
    if (!json_is_boolean(v)) return al_err(AL_ERR_FORMAT, CFG ": %s must be true or false, not %s", key, type_name(v));
    *out = json_is_true(v);
    return al_ok();
}

static al_status get_str(json_t *obj, const char *sect, const char *key, bool required, const char **out) {
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    *out = NULL;
    if (!v || json_is_null(v))
        return required ? al_err(AL_ERR_NOT_FOUND, CFG ": missing required key '%s%s'", sect, key) : al_ok();
    if (!json_is_string(v)) return al_err(AL_ERR_FORMAT, CFG ": %s%s must be a string, not %s", sect, key, type_name(v));
    *out = json_string_value(v);
    return al_ok();
}

/* A section mapping; *out NULL when absent or null. required: needed by the layer pattern. */
static al_status get_section(json_t *cfg, const char *key, bool required, const char *why, json_t **out) {
    json_t *v = json_object_get(cfg, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return required ? al_err(AL_ERR_NOT_FOUND, CFG ": missing section '%s' (%s)", key, why) : al_ok();
    if (!json_is_object(v)) return al_err(AL_ERR_FORMAT, CFG ": %s must be a mapping, not %s", key, type_name(v));
    *out = v;
    return al_ok();
}

/* layer_pattern, tiled to n_layer when n_layer is a multiple of its length. */
static al_status read_pattern(json_t *cfg, al_hparams *hp) {
    const char *pat;
    AL_TRY(get_str(cfg, "", "layer_pattern", true, &pat));
    size_t len = strlen(pat);
    if (len == 0 || len > AL_MAX_LAYERS)
        return al_err(AL_ERR_RANGE, CFG ": layer_pattern has %zu letters (1 to %d allowed)", len, AL_MAX_LAYERS);
    for (size_t i = 0; i < len; i++)
        if (pat[i] != 'M' && pat[i] != 'A')
            return al_err(AL_ERR_FORMAT, CFG ": layer_pattern letter %zu is '%c' (0x%02x): only M (Mamba-2) and A (attention)",
                          i, pat[i] >= 0x20 && pat[i] < 0x7f ? pat[i] : '?', (unsigned char)pat[i]);
    AL_TRY(get_int(cfg, "", "n_layer", false, (long long)len, 1, AL_MAX_LAYERS, &hp->n_layer));
    if ((size_t)hp->n_layer % len)
        return al_err(AL_ERR_FORMAT, CFG ": n_layer %d is not a multiple of the %zu letters of layer_pattern", hp->n_layer, len);
    char full[AL_MAX_LAYERS + 1];
    for (int i = 0; i < hp->n_layer; i++) full[i] = pat[(size_t)i % len];
    full[hp->n_layer] = '\0';
    return al_hparams_set_pattern(hp, full);
}

static al_status read_attention(json_t *a, al_hparams *hp) {
    static const char *const keys[] = {"n_head", "n_kv_head", "head_dim", "sliding_window", "rope_theta", "rope_dim", NULL};
    const char *s = "attention.";
    AL_TRY(known_keys(a, s, keys));
    AL_TRY(get_int(a, s, "n_head", true, 0, 1, 1024, &hp->n_head));
    AL_TRY(get_int(a, s, "n_kv_head", false, hp->n_head, 1, 1024, &hp->n_head_kv));
    if (hp->n_head % hp->n_head_kv)
        return al_err(AL_ERR_FORMAT, CFG ": attention.n_kv_head %d does not divide n_head %d", hp->n_head_kv, hp->n_head);
    if (!json_object_get(a, "head_dim") && hp->n_embd % hp->n_head)
        return al_err(AL_ERR_FORMAT, CFG ": attention.head_dim missing and d_model %d is not a multiple of n_head %d", hp->n_embd,
                      hp->n_head);
    AL_TRY(get_int(a, s, "head_dim", false, hp->n_embd / hp->n_head, 1, 1024, &hp->head_dim));
    AL_TRY(get_int(a, s, "sliding_window", false, 0, 0, 1 << 24, &hp->sliding_window));
    AL_TRY(get_num(a, s, "rope_theta", 10000.0, 1e-3, 1e12, &hp->rope_theta));
    AL_TRY(get_int(a, s, "rope_dim", false, hp->head_dim, 2, hp->head_dim, &hp->rope_dim));
    if (hp->rope_dim % 2) return al_err(AL_ERR_FORMAT, CFG ": attention.rope_dim %d is odd", hp->rope_dim);
    hp->rope_mode = AL_ROPE_NEOX;
    return al_ok();
}

static al_status read_ffn(json_t *f, al_hparams *hp) {
    static const char *const keys[] = {"size", "activation", NULL};
    const char *s = "ffn.", *act;
    AL_TRY(known_keys(f, s, keys));
    AL_TRY(get_int(f, s, "size", true, 0, 1, 1 << 20, &hp->n_ff));
    AL_TRY(get_str(f, s, "activation", false, &act));
    hp->ffn_act = AL_ACT_SILU;
    if (act && !al_act_from_name(act, &hp->ffn_act))
        return al_err(AL_ERR_FORMAT, CFG ": ffn.activation '%.32s' is not silu, gelu_tanh, gelu or relu2", act);
    if (hp->ffn_act == AL_ACT_RELU2)
        for (int i = 0; i < hp->n_layer; i++) hp->layer_ffn[i] = AL_FFN_RELU2;
    return al_ok();
}

static al_status read_mamba2(json_t *m, al_hparams *hp) {
    static const char *const keys[] = {"d_state", "head_dim", "n_groups", "conv_kernel", "expand", "chunk_size", "norm_groups",
                                       "dt_min", "dt_max", NULL};
    const char *s = "mamba2.";
    int expand;
    AL_TRY(known_keys(m, s, keys));
    AL_TRY(get_int(m, s, "d_state", true, 0, 1, 1024, &hp->ssm_d_state));
    AL_TRY(get_int(m, s, "head_dim", false, 64, 1, 1024, &hp->ssm_head_dim));
    AL_TRY(get_int(m, s, "n_groups", false, 1, 1, 1024, &hp->ssm_n_group));
    AL_TRY(get_int(m, s, "conv_kernel", false, 4, 1, 64, &hp->ssm_d_conv));
    AL_TRY(get_int(m, s, "expand", false, 2, 1, 16, &expand));
    AL_TRY(get_int(m, s, "chunk_size", false, 256, 1, 4096, &hp->ssm_chunk));
    AL_TRY(get_int(m, s, "norm_groups", false, hp->ssm_n_group, 1, 1 << 20, &hp->ssm_norm_groups));
    AL_TRY(get_num(m, s, "dt_min", 0.0, 0.0, 1e6, &hp->ssm_dt_min));
    hp->ssm_dt_max = INFINITY;
    if (json_object_get(m, "dt_max")) AL_TRY(get_num(m, s, "dt_max", 0.0, 1e-12, 1e6, &hp->ssm_dt_max));
    if (hp->ssm_dt_max <= hp->ssm_dt_min)
        return al_err(AL_ERR_FORMAT, CFG ": mamba2.dt_max %g is not above dt_min %g", hp->ssm_dt_max, hp->ssm_dt_min);
    hp->ssm_d_inner = expand * hp->n_embd; /* both bounded: no overflow */
    if (hp->ssm_d_inner % hp->ssm_head_dim)
        return al_err(AL_ERR_FORMAT, CFG ": expand * d_model = %d is not a multiple of mamba2.head_dim %d", hp->ssm_d_inner,
                      hp->ssm_head_dim);
    hp->ssm_n_head = hp->ssm_d_inner / hp->ssm_head_dim;
    if (hp->ssm_n_head % hp->ssm_n_group)
        return al_err(AL_ERR_FORMAT, CFG ": mamba2.n_groups %d does not divide the %d SSM heads", hp->ssm_n_group, hp->ssm_n_head);
    if (hp->ssm_d_inner % hp->ssm_norm_groups)
        return al_err(AL_ERR_FORMAT, CFG ": mamba2.norm_groups %d does not divide d_inner %d", hp->ssm_norm_groups, hp->ssm_d_inner);
    return al_ok();
}

al_status al_hparams_from_alloy_config(al_hparams *hp, json_t *cfg) {
    memset(hp, 0, sizeof *hp);
    if (!json_is_object(cfg)) return al_err(AL_ERR_FORMAT, CFG ": the document must be a mapping");
    static const char *const keys[] = {"architecture", "name", "metadata", "d_model", "n_embd", "n_layer", "layer_pattern",
                                       "vocab_size", "context_length", "norm_eps", "tie_embeddings", "attention", "ffn",
                                       "mamba2", NULL};
    AL_TRY(known_keys(cfg, "", keys));
    const char *arch, *name;
    AL_TRY(get_str(cfg, "", "architecture", true, &arch));
    if (strcmp(arch, "alloy") != 0) return al_err(AL_ERR_UNSUPPORTED, CFG ": architecture '%.32s' is not alloy", arch);
    AL_TRY(get_str(cfg, "", "name", false, &name));
    hp->arch = AL_ARCH_ALLOY;

    if (json_object_get(cfg, "d_model") && json_object_get(cfg, "n_embd"))
        return al_err(AL_ERR_FORMAT, CFG ": give d_model or its alias n_embd, not both");
    AL_TRY(get_int(cfg, "", json_object_get(cfg, "n_embd") ? "n_embd" : "d_model", true, 0, 1, 65536, &hp->n_embd));
    AL_TRY(get_int(cfg, "", "vocab_size", true, 0, 1, 4000000, &hp->n_vocab));
    AL_TRY(get_int(cfg, "", "context_length", false, 4096, 1, 1 << 24, &hp->n_ctx_train));
    AL_TRY(get_num(cfg, "", "norm_eps", 1e-5, 1e-30, 0.5, &hp->norm_eps));
    if (!(hp->norm_eps > 0)) return al_err(AL_ERR_RANGE, CFG ": norm_eps underflows float");
    AL_TRY(get_bool(cfg, "tie_embeddings", false, &hp->tie_embeddings));
    AL_TRY(read_pattern(cfg, hp));

    bool any_attn = false, any_m2 = false;
    for (int i = 0; i < hp->n_layer; i++) {
        any_attn |= hp->layer_mixer[i] == AL_MIXER_ATTN;
        any_m2 |= hp->layer_mixer[i] == AL_MIXER_MAMBA2;
    }
    json_t *a, *f, *m;
    AL_TRY(get_section(cfg, "attention", any_attn, "layer_pattern has A layers", &a));
    AL_TRY(get_section(cfg, "ffn", true, "every layer has an FFN", &f));
    AL_TRY(get_section(cfg, "mamba2", any_m2, "layer_pattern has M layers", &m));
    /* a section for a mixer the pattern does not use is still checked, then ignored */
    if (a) AL_TRY(read_attention(a, hp));
    AL_TRY(read_ffn(f, hp));
    if (m) AL_TRY(read_mamba2(m, hp));
    if (!any_attn) hp->n_head = hp->n_head_kv = hp->head_dim = hp->rope_dim = 0, hp->rope_mode = AL_ROPE_NONE;
    if (!any_m2) {
        hp->ssm_d_conv = hp->ssm_d_inner = hp->ssm_d_state = hp->ssm_n_group = hp->ssm_n_head = hp->ssm_head_dim = 0;
        hp->ssm_norm_groups = hp->ssm_chunk = 0;
    }
    return al_hparams_validate(hp);
}

/* ---- tensor names ------------------------------------------------------------------------ */

typedef enum { FOR_ALL, FOR_ATTN, FOR_M2, FOR_GATED } name_use;

static const struct {
    const char *suffix;
    name_use use;
} layer_names[] = {
    {"attn_norm.weight", FOR_ALL},     {"ffn_norm.weight", FOR_ALL},      {"ffn_up.weight", FOR_ALL},
    {"ffn_down.weight", FOR_ALL},      {"ffn_gate.weight", FOR_GATED},    {"attn_q.weight", FOR_ATTN},
    {"attn_k.weight", FOR_ATTN},       {"attn_v.weight", FOR_ATTN},       {"attn_output.weight", FOR_ATTN},
    {"ssm_in.weight", FOR_M2},         {"ssm_conv1d.weight", FOR_M2},     {"ssm_conv1d.bias", FOR_M2},
    {"ssm_a", FOR_M2},                 {"ssm_a_log", FOR_M2},             {"ssm_d", FOR_M2},
    {"ssm_dt.bias", FOR_M2},           {"ssm_norm.weight", FOR_M2},       {"ssm_out.weight", FOR_M2},
};

/* "blk.<N>.<suffix>" with N written without leading zeros; false if name is not of that form. */
static bool split_layer(const char *name, int *layer, const char **suffix) {
    if (strncmp(name, "blk.", 4) != 0) return false;
    const char *p = name + 4;
    int v = 0, nd = 0;
    while (*p >= '0' && *p <= '9' && nd < 4) v = v * 10 + (*p++ - '0'), nd++;
    if (nd == 0 || *p != '.' || (nd > 1 && name[4] == '0')) return false;
    *layer = v;
    *suffix = p + 1;
    return true;
}

static al_status map_one(const al_hparams *hp, const char *name, al_hf_map *mp) {
    if (strlen(name) >= sizeof mp->gguf_name)
        return al_err(AL_ERR_FORMAT, "tensor name '%.64s...' is too long for the alloy layout", name);
    snprintf(mp->gguf_name, sizeof mp->gguf_name, "%s", name);
    mp->xf = AL_XF_NONE;
    if (!strcmp(name, "token_embd.weight") || !strcmp(name, "output_norm.weight")) return al_ok();
    if (!strcmp(name, "output.weight")) {
        if (hp->tie_embeddings) return al_err(AL_ERR_FORMAT, "tensor output.weight present but tie_embeddings is true");
        return al_ok();
    }
    int il;
    const char *sfx;
    if (!split_layer(name, &il, &sfx)) return al_err(AL_ERR_FORMAT, "tensor '%.80s' is not part of the alloy layout", name);
    if (il >= hp->n_layer) return al_err(AL_ERR_FORMAT, "tensor '%.80s': layer %d of %d", name, il, hp->n_layer);
    bool attn = hp->layer_mixer[il] == AL_MIXER_ATTN;
    for (size_t i = 0; i < sizeof layer_names / sizeof layer_names[0]; i++) {
        if (strcmp(sfx, layer_names[i].suffix) != 0) continue;
        name_use u = layer_names[i].use;
        bool ok = u == FOR_ALL || (u == FOR_ATTN && attn) || (u == FOR_M2 && !attn) ||
                  (u == FOR_GATED && hp->layer_ffn[il] == AL_FFN_SWIGLU);
        if (!ok)
            return al_err(AL_ERR_FORMAT, "tensor '%.80s' does not belong to layer %d (%s%s)", name, il,
                          attn ? "attention" : "Mamba-2", u == FOR_GATED ? ", ungated relu2 FFN" : "");
        if (!strcmp(sfx, "ssm_a_log")) {
            snprintf(mp->gguf_name, sizeof mp->gguf_name, "blk.%d.ssm_a", il);
            mp->xf = AL_XF_NEG_EXP;
        }
        return al_ok();
    }
    return al_err(AL_ERR_FORMAT, "tensor '%.80s' is not part of the alloy layout", name);
}

static int cmp_map(const void *a, const void *b) {
    return strcmp(((const al_hf_map *)a)->gguf_name, ((const al_hf_map *)b)->gguf_name);
}

al_status al_alloy_build_map(const al_hparams *hp, const al_hf *hf, al_hf_map **out, int64_t *count) {
    *out = NULL;
    *count = 0;
    int64_t n = al_hf_tensor_count(hf);
    al_hf_map *map = calloc((size_t)(n ? n : 1), sizeof *map);
    al_hf_map *sorted = calloc((size_t)(n ? n : 1), sizeof *sorted);
    al_status st = map && sorted ? al_ok() : al_err(AL_ERR_NOMEM, "alloy tensor map: out of memory");
    for (int64_t i = 0; i < n && !al_failed(&st); i++) {
        map[i].t = al_hf_tensor_at(hf, i);
        st = map_one(hp, map[i].t->name, &map[i]);
    }
    if (!al_failed(&st) && n) {
        /* ssm_a and ssm_a_log of one layer name the same weight */
        memcpy(sorted, map, (size_t)n * sizeof *map);
        qsort(sorted, (size_t)n, sizeof *sorted, cmp_map);
        for (int64_t i = 1; i < n && !al_failed(&st); i++)
            if (!strcmp(sorted[i].gguf_name, sorted[i - 1].gguf_name))
                st = al_err(AL_ERR_FORMAT, "tensors %s and %s give the same weight", sorted[i - 1].t->name, sorted[i].t->name);
    }
    if (!al_failed(&st) && !hp->tie_embeddings) {
        bool has_out = false;
        for (int64_t i = 0; i < n; i++) has_out |= !strcmp(map[i].gguf_name, "output.weight");
        if (!has_out) st = al_err(AL_ERR_NOT_FOUND, "tie_embeddings is false but output.weight is missing");
    }
    free(sorted);
    if (al_failed(&st)) {
        free(map);
        return st;
    }
    *out = map;
    *count = n;
    return al_ok();
}
