/*
 * hparams.c — hyper-parameters from HF config.json and from GGUF metadata (llama.cpp keys), and
 * their validation. Layer kinds (mixer + FFN per layer) are resolved here for every architecture.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/model_internal.h"

static const char *const arch_names[AL_ARCH_COUNT] = {
    [AL_ARCH_LLAMA] = "llama",   [AL_ARCH_QWEN2] = "qwen2",           [AL_ARCH_QWEN3] = "qwen3",
    [AL_ARCH_MAMBA2] = "mamba2", [AL_ARCH_NEMOTRON_H] = "nemotron_h", [AL_ARCH_ZAMBA2] = "zamba2",
    [AL_ARCH_JAMBA] = "jamba",   [AL_ARCH_ALLOY] = "alloy",
};

const char *al_arch_name(al_arch a) { return (unsigned)a < AL_ARCH_COUNT ? arch_names[a] : "?"; }

bool al_arch_from_name(const char *name, al_arch *out) {
    for (int i = 0; i < AL_ARCH_COUNT; i++) {
        if (!strcmp(name, arch_names[i])) {
            *out = (al_arch)i;
            return true;
        }
    }
    return false;
}

/* ---- HF config.json ------------------------------------------------------------------------- */

static int jint(json_t *cfg, const char *key, int def) {
    json_t *v = json_object_get(cfg, key);
    if (json_is_integer(v)) return (int)json_integer_value(v);
    if (json_is_real(v)) return (int)json_real_value(v);
    return def;
}
static double jnum(json_t *cfg, const char *key, double def) {
    json_t *v = json_object_get(cfg, key);
    return json_is_number(v) ? json_number_value(v) : def;
}
static bool jbool(json_t *cfg, const char *key, bool def) {
    json_t *v = json_object_get(cfg, key);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

/* rope_parameters (transformers 5) or rope_scaling + rope_theta (4.x). */
static void hf_rope(al_hparams *hp, json_t *cfg) {
    json_t *rp = json_object_get(cfg, "rope_parameters");
    if (!json_is_object(rp)) rp = json_object_get(cfg, "rope_scaling");
    hp->rope_theta = (float)jnum(cfg, "rope_theta", 10000.0);
    if (json_is_object(rp)) {
        hp->rope_theta = (float)jnum(rp, "rope_theta", hp->rope_theta);
        json_t *type = json_object_get(rp, "rope_type");
        if (!type) type = json_object_get(rp, "type");
        if (json_is_string(type) && !strcmp(json_string_value(type), "llama3")) {
            hp->rope_factor = (float)jnum(rp, "factor", 8.0);
            hp->rope_low_freq = (float)jnum(rp, "low_freq_factor", 1.0);
            hp->rope_high_freq = (float)jnum(rp, "high_freq_factor", 4.0);
            hp->rope_orig_ctx = jint(rp, "original_max_position_embeddings", 8192);
        }
    }
}

/* time_step_limit: [min, max], max may be {"__float__": "Infinity"}. */
static void hf_dt_limit(al_hparams *hp, json_t *cfg) {
    hp->ssm_dt_min = 0.0f;
    hp->ssm_dt_max = INFINITY;
    json_t *lim = json_object_get(cfg, "time_step_limit");
    if (json_is_array(lim) && json_array_size(lim) == 2) {
        if (json_is_number(json_array_get(lim, 0))) hp->ssm_dt_min = (float)json_number_value(json_array_get(lim, 0));
        if (json_is_number(json_array_get(lim, 1))) hp->ssm_dt_max = (float)json_number_value(json_array_get(lim, 1));
    }
}

static const char *jstr_at(json_t *arr, size_t i) {
    json_t *v = json_array_get(arr, i);
    return json_is_string(v) ? json_string_value(v) : "";
}

al_status al_hparams_from_hf(al_hparams *hp, json_t *cfg) {
    memset(hp, 0, sizeof *hp);
    json_t *mt = json_object_get(cfg, "model_type");
    if (!json_is_string(mt)) return al_err(AL_ERR_FORMAT, "config.json: no model_type");
    const char *type = json_string_value(mt);
    if (!al_arch_from_name(type, &hp->arch)) return al_err(AL_ERR_UNSUPPORTED, "config.json: model_type '%s' is not supported", type);

    hp->n_vocab = jint(cfg, "vocab_size", 0);
    hp->n_embd = jint(cfg, "hidden_size", 0);
    hp->n_layer = jint(cfg, "num_hidden_layers", 0);
    json_t *kinds0 = json_object_get(cfg, "layers_block_type");
    if (hp->n_layer == 0 && json_is_array(kinds0)) hp->n_layer = (int)json_array_size(kinds0);
    hp->n_ctx_train = jint(cfg, "max_position_embeddings", 4096);
    hp->norm_eps = (float)jnum(cfg, "rms_norm_eps", jnum(cfg, "layer_norm_epsilon", 1e-5));
    hp->tie_embeddings = jbool(cfg, "tie_word_embeddings", false);
    hp->n_head = jint(cfg, "num_attention_heads", 0);
    hp->n_head_kv = jint(cfg, "num_key_value_heads", hp->n_head);
    hp->head_dim = jint(cfg, "head_dim", hp->n_head ? hp->n_embd / hp->n_head : 0);
    hp->n_ff = jint(cfg, "intermediate_size", 0);
    hp->ffn_act = AL_ACT_SILU;
    hp->rope_mode = AL_ROPE_NEOX; /* HF applies rotate_half to unpermuted weights */
    hf_rope(hp, cfg);
    hp->rope_dim = hp->head_dim;
    if (hp->n_layer <= 0 || hp->n_layer > AL_MAX_LAYERS)
        return al_err(AL_ERR_FORMAT, "config.json: num_hidden_layers %d out of range", hp->n_layer);

    switch (hp->arch) {
    case AL_ARCH_LLAMA:
    case AL_ARCH_QWEN2:
    case AL_ARCH_QWEN3:
        hp->qk_norm = hp->arch == AL_ARCH_QWEN3;
        hp->attn_bias = hp->arch == AL_ARCH_QWEN2 || jbool(cfg, "attention_bias", false);
        if (jbool(cfg, "use_sliding_window", false)) hp->sliding_window = jint(cfg, "sliding_window", 0);
        for (int i = 0; i < hp->n_layer; i++) {
            hp->layer_mixer[i] = AL_MIXER_ATTN;
            hp->layer_ffn[i] = AL_FFN_SWIGLU;
        }
        break;
    case AL_ARCH_MAMBA2:
    case AL_ARCH_NEMOTRON_H: {
        bool nem = hp->arch == AL_ARCH_NEMOTRON_H;
        hp->ssm_d_conv = jint(cfg, "conv_kernel", 4);
        hp->ssm_d_state = jint(cfg, nem ? "ssm_state_size" : "state_size", 128);
        hp->ssm_n_group = jint(cfg, "n_groups", 1);
        hp->ssm_n_head = jint(cfg, nem ? "mamba_num_heads" : "num_heads", 0);
        hp->ssm_head_dim = jint(cfg, nem ? "mamba_head_dim" : "head_dim", 64);
        hp->ssm_d_inner = hp->ssm_n_head * hp->ssm_head_dim;
        hp->ssm_chunk = jint(cfg, "chunk_size", 256);
        /* HF Mamba2's gated norm spans all of d_inner; Nemotron-H's is grouped by n_groups */
        hp->ssm_norm_groups = nem ? hp->ssm_n_group : 1;
        hf_dt_limit(hp, cfg);
        if (nem) hp->ssm_dt_floor_prefill = (float)jnum(cfg, "time_step_min", 0.0);
        if (!nem) {
            hp->n_head = hp->n_head_kv = hp->head_dim = 0;
            for (int i = 0; i < hp->n_layer; i++) hp->layer_mixer[i] = AL_MIXER_MAMBA2;
            break;
        }
        hp->head_dim = jint(cfg, "head_dim", hp->n_embd / (hp->n_head ? hp->n_head : 1));
        hp->rope_mode = AL_ROPE_NONE;
        hp->ffn_act = AL_ACT_RELU2;
        json_t *kinds = json_object_get(cfg, "layers_block_type");
        json_t *pattern = json_object_get(cfg, "hybrid_override_pattern");
        for (int i = 0; i < hp->n_layer; i++) {
            char k = 'M';
            if (json_is_array(kinds)) {
                const char *s = jstr_at(kinds, (size_t)i);
                k = !strcmp(s, "mlp") ? '-' : (!strcmp(s, "attention") || !strcmp(s, "full_attention")) ? '*'
                    : !strcmp(s, "moe") ? 'E' : 'M';
            } else if (json_is_string(pattern) && (size_t)i < strlen(json_string_value(pattern))) {
                k = json_string_value(pattern)[i];
            }
            if (k == '*') hp->layer_mixer[i] = AL_MIXER_ATTN;
            else if (k == '-') hp->layer_ffn[i] = AL_FFN_RELU2;
            else if (k == 'M') hp->layer_mixer[i] = AL_MIXER_MAMBA2;
            else return al_err(AL_ERR_UNSUPPORTED, "nemotron_h: layer kind '%c' not supported", k);
        }
        break;
    }
    case AL_ARCH_ZAMBA2: {
        hp->ssm_d_conv = jint(cfg, "mamba_d_conv", 4);
        hp->ssm_d_state = jint(cfg, "mamba_d_state", 64);
        hp->ssm_n_group = jint(cfg, "mamba_ngroups", 1);
        hp->ssm_head_dim = jint(cfg, "mamba_headdim", 64);
        hp->ssm_d_inner = jint(cfg, "mamba_expand", 2) * hp->n_embd;
        hp->ssm_n_head = jint(cfg, "n_mamba_heads", hp->ssm_d_inner / hp->ssm_head_dim);
        hp->ssm_chunk = jint(cfg, "chunk_size", 256);
        hp->ssm_norm_groups = hp->ssm_n_group;
        hf_dt_limit(hp, cfg);
        hp->ssm_dt_floor_prefill = (float)jnum(cfg, "time_step_min", 0.0);
        hp->zamba_attn_dim = jint(cfg, "attention_hidden_size", 2 * hp->n_embd);
        hp->head_dim = jint(cfg, "attention_head_dim", hp->zamba_attn_dim / (hp->n_head ? hp->n_head : 1));
        hp->rope_dim = hp->head_dim;
        hp->rope_mode = jbool(cfg, "use_mem_rope", false) ? AL_ROPE_NEOX : AL_ROPE_NONE;
        hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim / 2.0f);
        hp->zamba_n_mem_blocks = jint(cfg, "num_mem_blocks", 1);
        hp->zamba_adapter_rank = jbool(cfg, "use_shared_attention_adapter", false) ? jint(cfg, "adapter_rank", 128) : 0;
        json_t *act = json_object_get(cfg, "hidden_act");
        hp->ffn_act = json_is_string(act) && !strcmp(json_string_value(act), "gelu") ? AL_ACT_GELU_ERF : AL_ACT_GELU_TANH;
        json_t *kinds = json_object_get(cfg, "layers_block_type");
        for (int i = 0; i < hp->n_layer; i++) {
            hp->layer_mixer[i] = AL_MIXER_MAMBA2;
            hp->layer_shared[i] = json_is_array(kinds) && !strcmp(jstr_at(kinds, (size_t)i), "hybrid");
        }
        break;
    }
    case AL_ARCH_JAMBA: {
        hp->ssm_d_conv = jint(cfg, "mamba_d_conv", 4);
        hp->ssm_d_state = jint(cfg, "mamba_d_state", 16);
        hp->ssm_d_inner = jint(cfg, "mamba_expand", 2) * hp->n_embd;
        hp->ssm_dt_rank = jint(cfg, "mamba_dt_rank", (hp->n_embd + 15) / 16);
        hp->ssm_dt_bc_norm = true;
        hp->rope_mode = AL_ROPE_NONE;
        hp->n_expert = jint(cfg, "num_experts", 1);
        hp->n_expert_used = jint(cfg, "num_experts_per_tok", 1);
        hp->n_ff_expert = hp->n_ff;
        int ap = jint(cfg, "attn_layer_period", 8), ao = jint(cfg, "attn_layer_offset", 4);
        int ep = jint(cfg, "expert_layer_period", 2), eo = jint(cfg, "expert_layer_offset", 1);
        for (int i = 0; i < hp->n_layer; i++) {
            hp->layer_mixer[i] = (ap > 0 && i % ap == ao) ? AL_MIXER_ATTN : AL_MIXER_MAMBA1;
            hp->layer_ffn[i] = (hp->n_expert > 1 && ep > 0 && i % ep == eo) ? AL_FFN_MOE : AL_FFN_SWIGLU;
        }
        break;
    }
    default:
        return al_err(AL_ERR_UNSUPPORTED, "config.json: %s from HF is not supported", type);
    }
    return al_hparams_validate(hp);
}

/* ---- GGUF metadata (llama.cpp keys) --------------------------------------------------------- */

static bool gkey_u32(const al_gguf *g, const char *arch, const char *suffix, uint32_t *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return al_gguf_get_u32(g, key, out);
}
static int gint(const al_gguf *g, const char *arch, const char *suffix, int def) {
    uint32_t v;
    return gkey_u32(g, arch, suffix, &v) ? (int)v : def;
}
static float gflt(const al_gguf *g, const char *arch, const char *suffix, float def) {
    char key[128];
    float v;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return al_gguf_get_f32(g, key, &v) ? v : def;
}
/* Per-layer value: a scalar applies to all layers, an array gives one per layer. */
static bool glayer(const al_gguf *g, const char *arch, const char *suffix, int n_layer, int *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    al_gguf_value arr;
    if (al_gguf_get_arr(g, key, &arr)) {
        if (arr.count != (uint64_t)n_layer) return false;
        for (int i = 0; i < n_layer; i++) {
            al_gguf_value v = al_gguf_arr_at(&arr, (uint64_t)i);
            out[i] = (int)al_gguf_value_i64(&v);
        }
        return true;
    }
    uint32_t v;
    if (!al_gguf_get_u32(g, key, &v)) return false;
    for (int i = 0; i < n_layer; i++) out[i] = (int)v;
    return true;
}

al_status al_hparams_from_gguf(al_hparams *hp, const al_gguf *g) {
    memset(hp, 0, sizeof *hp);
    al_str as;
    if (!al_gguf_get_str(g, "general.architecture", &as)) return al_err(AL_ERR_FORMAT, "gguf: no general.architecture");
    char arch[64];
    snprintf(arch, sizeof arch, "%.*s", (int)(as.len < 63 ? as.len : 63), as.ptr);
    if (!al_arch_from_name(arch, &hp->arch)) return al_err(AL_ERR_UNSUPPORTED, "gguf: architecture '%s' is not supported", arch);

    hp->n_embd = gint(g, arch, "embedding_length", 0);
    hp->n_layer = gint(g, arch, "block_count", 0);
    hp->n_ctx_train = gint(g, arch, "context_length", 4096);
    hp->n_vocab = gint(g, arch, "vocab_size", 0);
    if (hp->n_vocab == 0) {
        al_gguf_value toks;
        if (al_gguf_get_arr(g, "tokenizer.ggml.tokens", &toks)) hp->n_vocab = (int)toks.count;
    }
    if (hp->n_layer <= 0 || hp->n_layer > AL_MAX_LAYERS) return al_err(AL_ERR_FORMAT, "gguf: block_count %d out of range", hp->n_layer);
    hp->norm_eps = gflt(g, arch, "attention.layer_norm_rms_epsilon", 1e-5f);
    hp->rope_theta = gflt(g, arch, "rope.freq_base", 10000.0f);
    hp->ffn_act = AL_ACT_SILU;

    int head[AL_MAX_LAYERS] = {0}, head_kv[AL_MAX_LAYERS] = {0}, ff[AL_MAX_LAYERS] = {0};
    glayer(g, arch, "attention.head_count", hp->n_layer, head);
    if (!glayer(g, arch, "attention.head_count_kv", hp->n_layer, head_kv)) memcpy(head_kv, head, sizeof head);
    glayer(g, arch, "feed_forward_length", hp->n_layer, ff);
    for (int i = 0; i < hp->n_layer; i++) {
        if (head[i] > hp->n_head) hp->n_head = head[i];
        if (head_kv[i] > hp->n_head_kv) hp->n_head_kv = head_kv[i];
        if (ff[i] > hp->n_ff) hp->n_ff = ff[i];
    }
    hp->head_dim = gint(g, arch, "attention.key_length", hp->n_head ? hp->n_embd / hp->n_head : 0);
    hp->rope_dim = gint(g, arch, "rope.dimension_count", hp->head_dim);
    hp->sliding_window = gint(g, arch, "attention.sliding_window", 0);
    hp->n_expert = gint(g, arch, "expert_count", 0);
    hp->n_expert_used = gint(g, arch, "expert_used_count", 0);
    hp->n_ff_expert = gint(g, arch, "expert_feed_forward_length", hp->n_ff);
    hp->ssm_d_conv = gint(g, arch, "ssm.conv_kernel", 0);
    hp->ssm_d_inner = gint(g, arch, "ssm.inner_size", 0);
    hp->ssm_d_state = gint(g, arch, "ssm.state_size", 0);
    hp->ssm_n_group = gint(g, arch, "ssm.group_count", 1);
    hp->ssm_dt_rank = gint(g, arch, "ssm.time_step_rank", 0);
    hp->ssm_chunk = gint(g, arch, "ssm.chunk_size", 256);
    hp->ssm_dt_min = gflt(g, arch, "ssm.dt_min", 0.0f);
    hp->ssm_dt_max = gflt(g, arch, "ssm.dt_max", INFINITY);
    hp->ssm_dt_floor_prefill = gflt(g, arch, "ssm.dt_floor_prefill", 0.0f);
    hp->tie_embeddings = al_gguf_find_tensor(g, "output.weight") < 0;

    switch (hp->arch) {
    case AL_ARCH_LLAMA:
    case AL_ARCH_QWEN2:
    case AL_ARCH_QWEN3:
        hp->rope_mode = hp->arch == AL_ARCH_LLAMA ? AL_ROPE_NORM : AL_ROPE_NEOX;
        hp->qk_norm = hp->arch == AL_ARCH_QWEN3;
        hp->attn_bias = al_gguf_find_tensor(g, "blk.0.attn_q.bias") >= 0;
        for (int i = 0; i < hp->n_layer; i++) {
            hp->layer_mixer[i] = AL_MIXER_ATTN;
            hp->layer_ffn[i] = AL_FFN_SWIGLU;
        }
        break;
    case AL_ARCH_MAMBA2:
    case AL_ARCH_NEMOTRON_H:
    case AL_ARCH_ZAMBA2:
        /* llama.cpp: time_step_rank holds the number of SSM heads for Mamba-2 */
        hp->ssm_n_head = hp->ssm_dt_rank;
        hp->ssm_dt_rank = 0;
        hp->ssm_head_dim = hp->ssm_n_head ? hp->ssm_d_inner / hp->ssm_n_head : 0;
        hp->ssm_norm_groups = gint(g, arch, "ssm.norm_group_count", hp->arch == AL_ARCH_MAMBA2 ? 1 : hp->ssm_n_group);
        hp->rope_mode = AL_ROPE_NONE;
        if (hp->arch == AL_ARCH_NEMOTRON_H) {
            hp->ffn_act = AL_ACT_RELU2;
            for (int i = 0; i < hp->n_layer; i++) {
                if (head_kv[i] > 0) hp->layer_mixer[i] = AL_MIXER_ATTN;
                else if (ff[i] > 0) hp->layer_ffn[i] = AL_FFN_RELU2;
                else hp->layer_mixer[i] = AL_MIXER_MAMBA2;
            }
        } else if (hp->arch == AL_ARCH_ZAMBA2) {
            hp->zamba_attn_dim = gint(g, arch, "zamba.attention_dim", 2 * hp->n_embd);
            hp->zamba_n_mem_blocks = gint(g, arch, "zamba.mem_block_count", 1);
            hp->zamba_adapter_rank = gint(g, arch, "zamba.adapter_rank", 0);
            hp->rope_mode = gint(g, arch, "rope.dimension_count", 0) > 0 ? AL_ROPE_NEOX : AL_ROPE_NONE;
            hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim / 2.0f);
            hp->ffn_act = AL_ACT_GELU_ERF;
            for (int i = 0; i < hp->n_layer; i++) {
                char name[64];
                snprintf(name, sizeof name, "blk.%d.zamba_linear.weight", i);
                hp->layer_mixer[i] = AL_MIXER_MAMBA2;
                hp->layer_shared[i] = al_gguf_find_tensor(g, name) >= 0;
            }
        } else {
            for (int i = 0; i < hp->n_layer; i++) hp->layer_mixer[i] = AL_MIXER_MAMBA2;
        }
        break;
    case AL_ARCH_ALLOY: {
        al_str pat;
        char buf[AL_MAX_LAYERS + 1];
        if (!al_gguf_get_str(g, "alloy.layer_pattern", &pat) || pat.len != (uint64_t)hp->n_layer)
            return al_err(AL_ERR_FORMAT, "gguf: alloy.layer_pattern missing or not block_count letters");
        memcpy(buf, pat.ptr, pat.len);
        buf[pat.len] = '\0';
        hp->ssm_n_head = hp->ssm_dt_rank;
        hp->ssm_dt_rank = 0;
        hp->ssm_head_dim = hp->ssm_n_head ? hp->ssm_d_inner / hp->ssm_n_head : 0;
        hp->ssm_norm_groups = gint(g, arch, "ssm.norm_group_count", hp->ssm_n_group);
        hp->rope_mode = AL_ROPE_NEOX;
        AL_TRY(al_hparams_set_pattern(hp, buf));
        al_str act;
        if (al_gguf_get_str(g, "alloy.feed_forward_activation", &act)) {
            char an[16];
            snprintf(an, sizeof an, "%.*s", (int)(act.len < 15 ? act.len : 15), act.ptr);
            if (act.len > 15 || !al_act_from_name(an, &hp->ffn_act))
                return al_err(AL_ERR_FORMAT, "gguf: alloy.feed_forward_activation '%s' is not silu, gelu_tanh, gelu or relu2", an);
            if (hp->ffn_act == AL_ACT_RELU2)
                for (int i = 0; i < hp->n_layer; i++) hp->layer_ffn[i] = AL_FFN_RELU2;
        }
        break;
    }
    case AL_ARCH_JAMBA:
        hp->rope_mode = AL_ROPE_NONE;
        hp->ssm_dt_bc_norm = true;
        for (int i = 0; i < hp->n_layer; i++) {
            char name[64];
            hp->layer_mixer[i] = head_kv[i] > 0 ? AL_MIXER_ATTN : AL_MIXER_MAMBA1;
            snprintf(name, sizeof name, "blk.%d.ffn_gate_inp.weight", i);
            hp->layer_ffn[i] = al_gguf_find_tensor(g, name) >= 0 ? AL_FFN_MOE : AL_FFN_SWIGLU;
        }
        break;
    default:
        return al_err(AL_ERR_UNSUPPORTED, "gguf: architecture %s not supported", arch);
    }
    /* llama3 rope scaling lives in the rope_freqs tensor; the factors are recomputed from keys if present */
    hp->rope_factor = gflt(g, arch, "rope.scaling.factor", 0.0f);
    return al_hparams_validate(hp);
}

al_status al_hparams_validate(const al_hparams *hp) {
    if (hp->n_embd <= 0 || hp->n_embd > 65536) return al_err(AL_ERR_FORMAT, "hparams: n_embd %d out of range", hp->n_embd);
    if (hp->n_vocab <= 0 || hp->n_vocab > 4000000) return al_err(AL_ERR_FORMAT, "hparams: n_vocab %d out of range", hp->n_vocab);
    bool any_attn = false, any_m2 = false, any_m1 = false, any_ffn = false;
    for (int i = 0; i < hp->n_layer; i++) {
        any_attn |= hp->layer_mixer[i] == AL_MIXER_ATTN || hp->layer_shared[i];
        any_m2 |= hp->layer_mixer[i] == AL_MIXER_MAMBA2;
        any_m1 |= hp->layer_mixer[i] == AL_MIXER_MAMBA1;
        any_ffn |= hp->layer_ffn[i] == AL_FFN_SWIGLU || hp->layer_ffn[i] == AL_FFN_RELU2;
    }
    if (any_attn) {
        if (hp->n_head <= 0 || hp->n_head_kv <= 0 || hp->head_dim <= 0 || hp->head_dim > 1024 || hp->n_head % hp->n_head_kv)
            return al_err(AL_ERR_FORMAT, "hparams: bad attention heads %d/%d dim %d", hp->n_head, hp->n_head_kv, hp->head_dim);
        if (hp->rope_mode != AL_ROPE_NONE && (hp->rope_dim <= 0 || hp->rope_dim > hp->head_dim || hp->rope_dim % 2))
            return al_err(AL_ERR_FORMAT, "hparams: bad rope dimension %d", hp->rope_dim);
    }
    if (any_ffn && hp->n_ff <= 0) return al_err(AL_ERR_FORMAT, "hparams: feed-forward length missing");
    if (any_m2) {
        if (hp->ssm_d_conv <= 0 || hp->ssm_d_conv > 64 || hp->ssm_d_state <= 0 || hp->ssm_n_head <= 0 ||
            hp->ssm_n_group <= 0 || hp->ssm_n_head % hp->ssm_n_group || hp->ssm_head_dim * hp->ssm_n_head != hp->ssm_d_inner ||
            hp->ssm_norm_groups <= 0 || hp->ssm_d_inner % hp->ssm_norm_groups || hp->ssm_chunk <= 0)
            return al_err(AL_ERR_FORMAT, "hparams: inconsistent Mamba-2 sizes (conv %d state %d heads %d x %d groups %d inner %d)",
                          hp->ssm_d_conv, hp->ssm_d_state, hp->ssm_n_head, hp->ssm_head_dim, hp->ssm_n_group, hp->ssm_d_inner);
    }
    if (any_m1 && (hp->ssm_d_conv <= 0 || hp->ssm_d_conv > 64 || hp->ssm_d_state <= 0 || hp->ssm_d_inner <= 0 || hp->ssm_dt_rank <= 0))
        return al_err(AL_ERR_FORMAT, "hparams: inconsistent Mamba-1 sizes");
    for (int i = 0; i < hp->n_layer; i++) {
        if (hp->layer_ffn[i] == AL_FFN_MOE &&
            (hp->n_expert <= 0 || hp->n_expert > 1024 || hp->n_expert_used <= 0 || hp->n_expert_used > hp->n_expert))
            return al_err(AL_ERR_FORMAT, "hparams: bad expert counts %d/%d", hp->n_expert_used, hp->n_expert);
    }
    return al_ok();
}

void al_hparams_rope_factors(const al_hparams *hp, float *factors) {
    /* llama3 scaling as HF's _compute_llama3_parameters: the divisor applied to each frequency */
    double lo_wl = hp->rope_orig_ctx / hp->rope_low_freq, hi_wl = hp->rope_orig_ctx / hp->rope_high_freq;
    for (int i = 0; i < hp->rope_dim / 2; i++) {
        double f = 1.0 / pow((double)hp->rope_theta, (double)(2 * i) / hp->rope_dim);
        double wl = 2 * M_PI / f, nf;
        if (wl < hi_wl) nf = f;
        else if (wl > lo_wl) nf = f / hp->rope_factor;
        else {
            double sm = (hp->rope_orig_ctx / wl - hp->rope_low_freq) / (hp->rope_high_freq - hp->rope_low_freq);
            nf = (1 - sm) * f / hp->rope_factor + sm * f;
        }
        factors[i] = (float)(f / nf);
    }
}

al_status al_hparams_set_pattern(al_hparams *hp, const char *pattern) {
    if ((int)strlen(pattern) != hp->n_layer) return al_err(AL_ERR_FORMAT, "layer pattern '%s' is not %d letters", pattern, hp->n_layer);
    for (int i = 0; i < hp->n_layer; i++) {
        char c = pattern[i];
        if (c != 'M' && c != 'A') return al_err(AL_ERR_FORMAT, "layer pattern: '%c' is not M or A", c);
        hp->layer_mixer[i] = c == 'M' ? AL_MIXER_MAMBA2 : AL_MIXER_ATTN;
        hp->layer_ffn[i] = AL_FFN_SWIGLU;
    }
    return al_ok();
}
