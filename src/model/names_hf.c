/*
 * names_hf.c — maps Hugging Face tensor names onto llama.cpp's GGUF names, per architecture.
 *
 * A HF name is "<prefix><layer>.<suffix>" (prefix model.layers. / backbone.layers.) or a global
 * name. Each table row maps a suffix to a GGUF suffix and a transform:
 *   AL_XF_NEG_EXP        A_log -> A = -exp(A_log), applied by the loader and the converter;
 *   AL_XF_PERMUTE_Q/K    llama q/k rows reordered for llama.cpp's interleaved RoPE; applied only by
 *                        the converter (the HF loader keeps HF order and uses NEOX RoPE instead).
 * "%E" in a row stands for an expert index (jamba's per-expert HF tensors).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"

typedef struct name_row {
    const char *hf;   /* suffix after "<prefix>L.", or the full global name */
    const char *gguf; /* "blk.L." is prepended for layer rows */
    al_hf_xform xf;
} name_row;

static const name_row global_rows[] = {
    {"model.embed_tokens.weight", "token_embd.weight", AL_XF_NONE},
    {"backbone.embeddings.weight", "token_embd.weight", AL_XF_NONE},
    {"backbone.embedding.weight", "token_embd.weight", AL_XF_NONE},
    {"model.norm.weight", "output_norm.weight", AL_XF_NONE},
    {"model.final_layernorm.weight", "output_norm.weight", AL_XF_NONE},
    {"backbone.norm_f.weight", "output_norm.weight", AL_XF_NONE},
    {"lm_head.weight", "output.weight", AL_XF_NONE},
    {NULL, NULL, 0},
};

static const name_row dense_rows[] = {
    {"input_layernorm.weight", "attn_norm.weight", AL_XF_NONE},
    {"post_attention_layernorm.weight", "ffn_norm.weight", AL_XF_NONE},
    {"self_attn.q_proj.weight", "attn_q.weight", AL_XF_PERMUTE_Q},
    {"self_attn.k_proj.weight", "attn_k.weight", AL_XF_PERMUTE_K},
    {"self_attn.v_proj.weight", "attn_v.weight", AL_XF_NONE},
    {"self_attn.o_proj.weight", "attn_output.weight", AL_XF_NONE},
    {"self_attn.q_proj.bias", "attn_q.bias", AL_XF_NONE},
    {"self_attn.k_proj.bias", "attn_k.bias", AL_XF_NONE},
    {"self_attn.v_proj.bias", "attn_v.bias", AL_XF_NONE},
    {"self_attn.o_proj.bias", "attn_output.bias", AL_XF_NONE},
    {"self_attn.q_norm.weight", "attn_q_norm.weight", AL_XF_NONE},
    {"self_attn.k_norm.weight", "attn_k_norm.weight", AL_XF_NONE},
    {"mlp.gate_proj.weight", "ffn_gate.weight", AL_XF_NONE},
    {"mlp.up_proj.weight", "ffn_up.weight", AL_XF_NONE},
    {"mlp.down_proj.weight", "ffn_down.weight", AL_XF_NONE},
    {NULL, NULL, 0},
};

/* mamba2 and nemotron_h: "backbone.layers.L.{norm,mixer.*}" */
static const name_row mamba2_rows[] = {
    {"norm.weight", "attn_norm.weight", AL_XF_NONE},
    {"mixer.in_proj.weight", "ssm_in.weight", AL_XF_NONE},
    {"mixer.conv1d.weight", "ssm_conv1d.weight", AL_XF_NONE},
    {"mixer.conv1d.bias", "ssm_conv1d.bias", AL_XF_NONE},
    {"mixer.A_log", "ssm_a", AL_XF_NEG_EXP},
    {"mixer.D", "ssm_d", AL_XF_NONE},
    {"mixer.dt_bias", "ssm_dt.bias", AL_XF_NONE},
    {"mixer.norm.weight", "ssm_norm.weight", AL_XF_NONE},
    {"mixer.out_proj.weight", "ssm_out.weight", AL_XF_NONE},
    /* nemotron_h attention and MLP layers */
    {"mixer.q_proj.weight", "attn_q.weight", AL_XF_NONE},
    {"mixer.k_proj.weight", "attn_k.weight", AL_XF_NONE},
    {"mixer.v_proj.weight", "attn_v.weight", AL_XF_NONE},
    {"mixer.o_proj.weight", "attn_output.weight", AL_XF_NONE},
    {"mixer.up_proj.weight", "ffn_up.weight", AL_XF_NONE},
    {"mixer.down_proj.weight", "ffn_down.weight", AL_XF_NONE},
    {NULL, NULL, 0},
};

static const name_row jamba_rows[] = {
    {"input_layernorm.weight", "attn_norm.weight", AL_XF_NONE},
    {"pre_ff_layernorm.weight", "ffn_norm.weight", AL_XF_NONE},
    {"self_attn.q_proj.weight", "attn_q.weight", AL_XF_NONE},
    {"self_attn.k_proj.weight", "attn_k.weight", AL_XF_NONE},
    {"self_attn.v_proj.weight", "attn_v.weight", AL_XF_NONE},
    {"self_attn.o_proj.weight", "attn_output.weight", AL_XF_NONE},
    {"mamba.in_proj.weight", "ssm_in.weight", AL_XF_NONE},
    {"mamba.conv1d.weight", "ssm_conv1d.weight", AL_XF_NONE},
    {"mamba.conv1d.bias", "ssm_conv1d.bias", AL_XF_NONE},
    {"mamba.x_proj.weight", "ssm_x.weight", AL_XF_NONE},
    {"mamba.dt_proj.weight", "ssm_dt.weight", AL_XF_NONE},
    {"mamba.dt_proj.bias", "ssm_dt.bias", AL_XF_NONE},
    {"mamba.A_log", "ssm_a", AL_XF_NEG_EXP},
    {"mamba.D", "ssm_d", AL_XF_NONE},
    {"mamba.out_proj.weight", "ssm_out.weight", AL_XF_NONE},
    {"mamba.dt_layernorm.weight", "ssm_dt_norm.weight", AL_XF_NONE},
    {"mamba.b_layernorm.weight", "ssm_b_norm.weight", AL_XF_NONE},
    {"mamba.c_layernorm.weight", "ssm_c_norm.weight", AL_XF_NONE},
    {"feed_forward.gate_proj.weight", "ffn_gate.weight", AL_XF_NONE},
    {"feed_forward.up_proj.weight", "ffn_up.weight", AL_XF_NONE},
    {"feed_forward.down_proj.weight", "ffn_down.weight", AL_XF_NONE},
    {"feed_forward.router.weight", "ffn_gate_inp.weight", AL_XF_NONE},
    {"feed_forward.experts.%E.gate_proj.weight", "ffn_gate_exps.%E.weight", AL_XF_NONE},
    {"feed_forward.experts.%E.up_proj.weight", "ffn_up_exps.%E.weight", AL_XF_NONE},
    {"feed_forward.experts.%E.down_proj.weight", "ffn_down_exps.%E.weight", AL_XF_NONE},
    {NULL, NULL, 0},
};

/* zamba2: plain mamba layers "model.layers.L.{input_layernorm,mamba.*}", hybrid layers
 * "model.layers.L.{linear, mamba_decoder.*, shared_transformer.*}" */
static const name_row zamba2_rows[] = {
    {"input_layernorm.weight", "attn_norm.weight", AL_XF_NONE},
    {"mamba_decoder.input_layernorm.weight", "attn_norm.weight", AL_XF_NONE},
    {"mamba.in_proj.weight", "ssm_in.weight", AL_XF_NONE},
    {"mamba.conv1d.weight", "ssm_conv1d.weight", AL_XF_NONE},
    {"mamba.conv1d.bias", "ssm_conv1d.bias", AL_XF_NONE},
    {"mamba.A_log", "ssm_a", AL_XF_NEG_EXP},
    {"mamba.D", "ssm_d", AL_XF_NONE},
    {"mamba.dt_bias", "ssm_dt.bias", AL_XF_NONE},
    {"mamba.norm.weight", "ssm_norm.weight", AL_XF_NONE},
    {"mamba.out_proj.weight", "ssm_out.weight", AL_XF_NONE},
    {"mamba_decoder.mamba.in_proj.weight", "ssm_in.weight", AL_XF_NONE},
    {"mamba_decoder.mamba.conv1d.weight", "ssm_conv1d.weight", AL_XF_NONE},
    {"mamba_decoder.mamba.conv1d.bias", "ssm_conv1d.bias", AL_XF_NONE},
    {"mamba_decoder.mamba.A_log", "ssm_a", AL_XF_NEG_EXP},
    {"mamba_decoder.mamba.D", "ssm_d", AL_XF_NONE},
    {"mamba_decoder.mamba.dt_bias", "ssm_dt.bias", AL_XF_NONE},
    {"mamba_decoder.mamba.norm.weight", "ssm_norm.weight", AL_XF_NONE},
    {"mamba_decoder.mamba.out_proj.weight", "ssm_out.weight", AL_XF_NONE},
    {"linear.weight", "zamba_linear.weight", AL_XF_NONE},
    /* adapters: list index %E is this layer's slot in the shared block */
    {"shared_transformer.self_attn.linear_q_adapter_list.%E.0.weight", "zamba_adapt_q.%E.0.weight", AL_XF_NONE},
    {"shared_transformer.self_attn.linear_q_adapter_list.%E.1.weight", "zamba_adapt_q.%E.1.weight", AL_XF_NONE},
    {"shared_transformer.self_attn.linear_k_adapter_list.%E.0.weight", "zamba_adapt_k.%E.0.weight", AL_XF_NONE},
    {"shared_transformer.self_attn.linear_k_adapter_list.%E.1.weight", "zamba_adapt_k.%E.1.weight", AL_XF_NONE},
    {"shared_transformer.self_attn.linear_v_adapter_list.%E.0.weight", "zamba_adapt_v.%E.0.weight", AL_XF_NONE},
    {"shared_transformer.self_attn.linear_v_adapter_list.%E.1.weight", "zamba_adapt_v.%E.1.weight", AL_XF_NONE},
    {"shared_transformer.feed_forward.gate_up_proj_adapter_list.%E.0.weight", "zamba_adapt_ff.%E.0.weight", AL_XF_NONE},
    {"shared_transformer.feed_forward.gate_up_proj_adapter_list.%E.1.weight", "zamba_adapt_ff.%E.1.weight", AL_XF_NONE},
    /* the shared block itself (stored under its first hybrid layer); renamed to "shared." below */
    {"shared_transformer.input_layernorm.weight", "@attn_norm.weight", AL_XF_NONE},
    {"shared_transformer.self_attn.q_proj.weight", "@attn_q.weight", AL_XF_NONE},
    {"shared_transformer.self_attn.k_proj.weight", "@attn_k.weight", AL_XF_NONE},
    {"shared_transformer.self_attn.v_proj.weight", "@attn_v.weight", AL_XF_NONE},
    {"shared_transformer.self_attn.o_proj.weight", "@attn_output.weight", AL_XF_NONE},
    {"shared_transformer.pre_ff_layernorm.weight", "@ffn_norm.weight", AL_XF_NONE},
    {"shared_transformer.feed_forward.gate_up_proj.weight", "@ffn_gate_up.weight", AL_XF_NONE},
    {"shared_transformer.feed_forward.down_proj.weight", "@ffn_down.weight", AL_XF_NONE},
    {NULL, NULL, 0},
};

static const name_row *rows_for(al_arch a) {
    switch (a) {
    case AL_ARCH_LLAMA:
    case AL_ARCH_QWEN2:
    case AL_ARCH_QWEN3:
        return dense_rows;
    case AL_ARCH_MAMBA2:
    case AL_ARCH_NEMOTRON_H:
        return mamba2_rows;
    case AL_ARCH_JAMBA:
        return jamba_rows;
    case AL_ARCH_ZAMBA2:
        return zamba2_rows;
    default:
        return NULL;
    }
}

/* Matches `name` against pattern `pat` where "%E" matches a decimal number stored in *e. */
static bool match_pat(const char *pat, const char *name, int *e) {
    const char *ph = strstr(pat, "%E");
    if (!ph) return strcmp(pat, name) == 0;
    size_t pre = (size_t)(ph - pat);
    if (strncmp(pat, name, pre) != 0) return false;
    const char *p = name + pre;
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p || v < 0 || v > 100000) return false;
    if (strcmp(ph + 2, end) != 0) return false;
    *e = (int)v;
    return true;
}

static void subst(char *out, size_t size, const char *pat, int e) {
    const char *ph = strstr(pat, "%E");
    if (!ph) {
        snprintf(out, size, "%s", pat);
        return;
    }
    snprintf(out, size, "%.*s%d%s", (int)(ph - pat), pat, e, ph + 2);
}

static bool layer_prefix(const char *name, int *layer, const char **rest) {
    static const char *const prefixes[] = {"model.layers.", "backbone.layers.", NULL};
    for (int i = 0; prefixes[i]; i++) {
        size_t n = strlen(prefixes[i]);
        if (strncmp(name, prefixes[i], n) != 0) continue;
        char *end;
        long v = strtol(name + n, &end, 10);
        if (end == name + n || *end != '.' || v < 0 || v >= AL_MAX_LAYERS) return false;
        *layer = (int)v;
        *rest = end + 1;
        return true;
    }
    return false;
}

al_status al_hf_build_map(const al_hparams *hp, const al_hf *hf, al_hf_map **out, int64_t *count) {
    const name_row *rows = rows_for(hp->arch);
    if (!rows) return al_err(AL_ERR_UNSUPPORTED, "no HF name table for %s", al_arch_name(hp->arch));
    int64_t n = al_hf_tensor_count(hf);
    al_hf_map *map = calloc((size_t)(n ? n : 1), sizeof *map);
    if (!map) return al_err(AL_ERR_NOMEM, "HF name map: out of memory");
    int zamba_shared_seen = -1;
    for (int64_t i = 0; i < n; i++) {
        const al_st_tensor *t = al_hf_tensor_at(hf, i);
        al_hf_map *mp = &map[i];
        mp->t = t;
        bool found = false;
        for (const name_row *r = global_rows; r->hf && !found; r++) {
            if (!strcmp(r->hf, t->name)) {
                snprintf(mp->gguf_name, sizeof mp->gguf_name, "%s", r->gguf);
                mp->xf = r->xf;
                found = true;
            }
        }
        int layer;
        const char *rest;
        if (!found && layer_prefix(t->name, &layer, &rest)) {
            for (const name_row *r = rows; r->hf && !found; r++) {
                int e = 0;
                if (!match_pat(r->hf, rest, &e)) continue;
                char g[80];
                subst(g, sizeof g, r->gguf, e);
                if (g[0] == '@') {
                    /* zamba2 shared block: one copy per mem block, found under its first hybrid layer */
                    if (zamba_shared_seen < 0) zamba_shared_seen = layer;
                    int blk = 0;
                    for (int l = 0, k = 0; l < layer; l++) k += hp->layer_shared[l], blk = k;
                    blk = hp->zamba_n_mem_blocks > 0 ? blk % hp->zamba_n_mem_blocks : 0;
                    snprintf(mp->gguf_name, sizeof mp->gguf_name, "shared.%d.%s", blk, g + 1);
                } else {
                    snprintf(mp->gguf_name, sizeof mp->gguf_name, "blk.%d.%s", layer, g);
                }
                mp->xf = r->xf;
                if (hp->arch != AL_ARCH_LLAMA && (mp->xf == AL_XF_PERMUTE_Q || mp->xf == AL_XF_PERMUTE_K)) mp->xf = AL_XF_NONE;
                found = true;
            }
        }
        if (!found) {
            free(map);
            return al_err(AL_ERR_UNSUPPORTED, "%s: HF tensor '%s' has no known mapping", al_arch_name(hp->arch), t->name);
        }
    }
    *out = map;
    *count = n;
    return al_ok();
}
