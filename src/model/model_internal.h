/*
 * model_internal.h — hyper-parameters, weights and the weight-source abstraction shared by the
 * loaders (GGUF, HF), the forward pass and the GGUF converter.
 *
 * Naming: weights are looked up by their GGUF (llama.cpp) names, e.g. "blk.3.attn_q.weight".
 * The HF loader maps HF names onto these (model/names_hf.c) so one code path builds the model.
 * Shapes below are in ggml order: {ne0, ne1} = {in_features, out_features} for matrices.
 */
#ifndef ALLOY_MODEL_INTERNAL_H
#define ALLOY_MODEL_INTERNAL_H

#include <jansson.h>

#include "alloy/gguf.h"
#include "alloy/model.h"
#include "alloy/safetensors.h"

#define AL_MAX_LAYERS 256

typedef enum al_mixer { AL_MIXER_NONE = 0, AL_MIXER_ATTN, AL_MIXER_MAMBA2, AL_MIXER_MAMBA1 } al_mixer;
typedef enum al_ffn { AL_FFN_NONE = 0, AL_FFN_SWIGLU, AL_FFN_RELU2, AL_FFN_MOE } al_ffn;
typedef enum al_rope_mode { AL_ROPE_NONE = 0, AL_ROPE_NORM, AL_ROPE_NEOX } al_rope_mode;
typedef enum al_act { AL_ACT_SILU = 0, AL_ACT_GELU_TANH, AL_ACT_GELU_ERF, AL_ACT_RELU2 } al_act;

typedef struct al_hparams {
    al_arch arch;
    int n_vocab, n_embd, n_layer, n_ctx_train;
    float norm_eps;
    bool tie_embeddings;

    /* attention (per-layer kinds below decide where it is used) */
    int n_head, n_head_kv, head_dim;
    float attn_scale;        /* 0: 1/sqrt(head_dim) */
    int sliding_window;      /* 0: none */
    al_rope_mode rope_mode;
    int rope_dim;            /* rotated dims per head (<= head_dim) */
    float rope_theta;
    /* llama3 rope scaling (rope_type "llama3"); factor 0 = none */
    float rope_factor, rope_low_freq, rope_high_freq;
    int rope_orig_ctx;
    bool qk_norm;            /* qwen3 */
    bool attn_bias;          /* qwen2: q/k/v biases */

    /* dense FFN */
    int n_ff;
    al_act ffn_act;

    /* Mamba-2 */
    int ssm_d_conv, ssm_d_inner, ssm_d_state, ssm_n_group, ssm_n_head, ssm_head_dim;
    int ssm_norm_groups;     /* groups of the gated RMSNorm (1 = over all of d_inner) */
    int ssm_chunk;           /* SSD chunk length for prefill */
    float ssm_dt_min, ssm_dt_max; /* clamp of dt after softplus (time_step_limit) */
    float ssm_dt_floor_prefill;   /* HF nemotron_h/zamba2 clamp dt >= time_step_min in prefill only */
    /* Mamba-1 (jamba) */
    int ssm_dt_rank;
    bool ssm_dt_bc_norm;     /* jamba: RMSNorm on dt, B, C */

    /* MoE */
    int n_expert, n_expert_used, n_ff_expert;

    /* zamba2 */
    int zamba_attn_dim;      /* attention_hidden_size (= 2 * n_embd) */
    int zamba_n_mem_blocks;
    int zamba_adapter_rank;

    al_mixer layer_mixer[AL_MAX_LAYERS];
    al_ffn layer_ffn[AL_MAX_LAYERS];
    bool layer_shared[AL_MAX_LAYERS]; /* zamba2: hybrid layer (shared transformer first) */
} al_hparams;

/* One attention block's weights (matrices borrowed or owned; vectors owned f32 or NULL). */
typedef struct al_attn_w {
    al_tensor wq, wk, wv, wo;         /* {n_in, n_head*hd}, ..., {n_head*hd, n_embd} */
    float *bq, *bk, *bv, *bo;         /* optional biases */
    float *q_norm, *k_norm;           /* [head_dim] (qwen3) */
} al_attn_w;

typedef struct al_mamba2_w {
    al_tensor in_proj;   /* {n_embd, 2*d_inner + 2*n_group*d_state + n_head} */
    float *conv_w;       /* [conv_ch][d_conv], conv_ch = d_inner + 2*n_group*d_state */
    float *conv_b;       /* [conv_ch] */
    float *A;            /* [n_head], = -exp(A_log) */
    float *D;            /* [n_head] */
    float *dt_bias;      /* [n_head] */
    float *norm;         /* [d_inner] */
    al_tensor out_proj;  /* {d_inner, n_embd} */
} al_mamba2_w;

typedef struct al_mamba1_w {
    al_tensor in_proj;   /* {n_embd, 2*d_inner} */
    float *conv_w, *conv_b; /* [d_inner][d_conv], [d_inner] */
    al_tensor x_proj;    /* {d_inner, dt_rank + 2*d_state} */
    al_tensor dt_proj;   /* {dt_rank, d_inner} */
    float *dt_bias;      /* [d_inner] */
    float *A;            /* [d_inner][d_state], = -exp(A_log) */
    float *D;            /* [d_inner] */
    float *dt_norm, *b_norm, *c_norm; /* jamba: [dt_rank], [d_state], [d_state] */
    al_tensor out_proj;  /* {d_inner, n_embd} */
} al_mamba1_w;

typedef struct al_ffn_w {
    al_tensor gate, up, down; /* {n_embd, n_ff}, {n_embd, n_ff}, {n_ff, n_embd} */
    /* MoE: router {n_embd, n_expert}; experts stacked per expert */
    al_tensor router;
    al_tensor *exp_gate, *exp_up, *exp_down; /* [n_expert] views */
} al_ffn_w;

typedef struct al_layer_w {
    float *attn_norm;    /* [n_embd] norm before the mixer (or the only norm) */
    float *ffn_norm;     /* [n_embd] norm before the FFN */
    al_attn_w attn;
    al_mamba2_w m2;
    al_mamba1_w m1;
    al_ffn_w ffn;
    /* zamba2 hybrid layer: per-layer adapters and output linear of the shared block */
    al_tensor z_linear;                       /* {n_embd, n_embd} */
    al_tensor z_adapt_q[2], z_adapt_k[2], z_adapt_v[2], z_adapt_ff[2]; /* [0]: down, [1]: up */
    int z_block;                              /* which shared block */
} al_layer_w;

/* zamba2's shared transformer block (num_mem_blocks of them) */
typedef struct al_zshared_w {
    float *attn_norm;    /* [2*n_embd] */
    al_attn_w attn;      /* q,k,v: {2 n_embd, attn_dim}; o: {attn_dim, n_embd} */
    float *ffn_norm;     /* [n_embd] */
    al_tensor gate_up;   /* {n_embd, 2*n_ff} */
    al_tensor down;      /* {n_ff, n_embd} */
} al_zshared_w;

/* Where weights come from: GGUF tensors, or HF tensors renamed to GGUF names. */
typedef struct al_wsource {
    al_gguf *gguf;
    al_hf *hf;
    /* HF only: GGUF name -> HF tensor + transform */
    struct al_hf_map *map;
    int64_t map_count;
} al_wsource;

struct al_model {
    al_hparams hp;
    al_wsource src;
    char path[1024];
    al_cpu *cpu;
    al_logger log;
    bool has_log;

    struct al_tokenizer *tok;
    al_status tok_status;   /* why tok is NULL */

    al_tensor tok_embd;   /* {n_embd, n_vocab} */
    float *out_norm;      /* [n_embd] */
    al_tensor output;     /* {n_embd, n_vocab}; = tok_embd when tied */
    al_layer_w *layers;   /* [n_layer] */
    al_zshared_w *zshared; /* [zamba_n_mem_blocks] */

    /* owned f32 buffers (vectors, transformed tensors), freed with the model */
    void **owned;
    int n_owned, cap_owned;
};

/* ---- weight loading helpers (model_load.c) ---- */
/* Finds a matrix by GGUF name; borrowed view. required=false: returns OK with t->data NULL. */
al_status al_model_get_matrix(al_model *m, const char *name, bool required, al_tensor *t);
/* Finds a vector/small tensor and returns it converted to owned f32 with n elements checked. */
al_status al_model_get_f32(al_model *m, const char *name, bool required, int64_t n, float **out);
void *al_model_own(al_model *m, size_t bytes); /* zeroed, freed with the model */

/* ---- hyper-parameters ---- */
al_status al_hparams_from_gguf(al_hparams *hp, const al_gguf *g);
al_status al_hparams_from_hf(al_hparams *hp, json_t *config);
al_status al_hparams_validate(const al_hparams *hp);
/* alloy arch: "MAMA..." -> per-layer mixers (M: Mamba-2, A: attention), each layer with a SwiGLU FFN. */
al_status al_hparams_set_pattern(al_hparams *hp, const char *pattern);
/* llama3 rope scaling: factors[rope_dim/2] dividing each frequency (hp->rope_factor > 0). */
void al_hparams_rope_factors(const al_hparams *hp, float *factors);
/* widest activation rows of the session scratch: small (projections, SSM inputs), big (FFN / in_proj) */
void al_hparams_widths(const al_hparams *hp, size_t *w_small, size_t *w_big);
/* Writes a random-weight model of shape hp (attention / Mamba-2 mixers, SwiGLU or ReLU² FFNs) with
 * the tokenizer.* metadata of `tokenizer_gguf` (may be NULL) to out_path. */
al_status al_model_create_random(const al_hparams *hp, const char *tokenizer_gguf, const char *out_path, const char *type,
                                 uint64_t seed);
/* Writes hp as llama.cpp-style GGUF metadata (convert.c). */
al_status al_hparams_to_gguf(const al_hparams *hp, struct al_gguf_writer *w);

/* ---- Alloy model folders: config.yaml + safetensors with GGUF names (config_alloy.c) ---- */
/* Hyper-parameters from the config.yaml tree (docs/alloy-config.md); every bad key is an error. */
al_status al_hparams_from_alloy_config(al_hparams *hp, json_t *cfg);
/* GGUF-name view of the folder's tensors (identity, ssm_a_log -> ssm_a); foreign names are an error. */
al_status al_alloy_build_map(const al_hparams *hp, const al_hf *hf, struct al_hf_map **out, int64_t *count);
/* FFN activation names as written in config.yaml and alloy.feed_forward_activation. */
const char *al_act_name(al_act a);
bool al_act_from_name(const char *name, al_act *out);

/* ---- HF -> GGUF names (names_hf.c) ---- */
typedef enum al_hf_xform { AL_XF_NONE = 0, AL_XF_NEG_EXP, AL_XF_PERMUTE_Q, AL_XF_PERMUTE_K } al_hf_xform;
typedef struct al_hf_map {
    char gguf_name[128];
    const al_st_tensor *t;
    al_hf_xform xf;
} al_hf_map;
/* Builds the GGUF-name view of every HF tensor for hp->arch; unknown HF tensors are an error. */
al_status al_hf_build_map(const al_hparams *hp, const al_hf *hf, al_hf_map **out, int64_t *count);

#endif
