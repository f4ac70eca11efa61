/*
 * session_internal.h — a sequence's state (caches), the scratch a forward pass needs, and the
 * batched forward pass over several sequences (forward.c), shared by sessions and the engine.
 */
#ifndef ALLOY_SESSION_INTERNAL_H
#define ALLOY_SESSION_INTERNAL_H

#include "alloy/engine.h"
#include "model/model_internal.h"

typedef struct layer_cache {
    float *k, *v;   /* [n_ctx][n_head_kv * head_dim] */
    float *conv;    /* [d_conv - 1][conv_ch] */
    float *ssm;     /* Mamba-2: [H][P][N]; Mamba-1: [d_inner][N] */
} layer_cache;

/* Activations for up to `rows` tokens at once; every buffer is [rows][width]. */
typedef struct al_scratch {
    int rows, n_ctx, nth;
    size_t w_small, w_big;
    float *h, *xn, *t0, *t1, *t2, *t3, *emb0, *big, *xin, *delta;
    int32_t *positions;   /* [rows] absolute position of each row */
    float *attn_scratch;  /* [nth][n_ctx] */
    float *ssd_scratch;   /* [nth][chunk*chunk + 2*chunk] */
    float *logit_rows;    /* [rows][n_embd] normalized rows that need logits */
} al_scratch;

al_status al_scratch_init(al_scratch *sc, const al_model *m, int rows, int n_ctx);
void al_scratch_free(al_scratch *sc);

struct al_session {
    al_model *m;
    int n_ctx, pos;
    layer_cache *lc;
    float *inv_freq;      /* [rope_dim/2] */
    al_scratch sc;        /* for al_session_eval */
    float *snap;          /* al_session_snapshot: the conv and SSM states of every layer, in layer order */
    int snap_pos;         /* its position; -1: none */
};

/* One sequence's part of a batched forward pass. */
typedef struct al_fwd_item {
    al_session *s;
    const int32_t *tok;
    int n;
    float *logits;        /* [n or 1][n_vocab], or NULL */
    bool all_logits;
} al_fwd_item;

/* Runs the items (total rows <= sc->rows, each item's n_ctx <= sc->n_ctx) through the model in one
 * pass: shared matrix products over all rows, per-sequence attention and SSM scans. Advances each
 * session's position. */
al_status al_forward_batch(al_model *m, al_scratch *sc, al_fwd_item *items, int n_items);

/* Floats of layer il's conv and SSM states (0 for layers without recurrent state); of all those of
 * layers [l0, l1). */
void al_layer_state_sizes(const al_hparams *hp, int il, size_t *conv, size_t *ssm);
size_t al_layers_state_size(const al_hparams *hp, int l0, int l1);

/* A session holding the caches of layers [0, n_layers) only: the CPU part of a model whose later
 * layers run elsewhere (partial GPU offload), evaluated with al_forward_hidden. */
al_status al_session_init_layers(al_session **out, al_model *m, int n_ctx, int n_layers);

/* One sequence's n tokens (n <= sc->rows) through the embedding and layers [0, n_layers) (n_layers
 * <= n_layer; no final norm, no LM head): the
 * residual stream after them into h[n][n_embd] and, for zamba2 (whose shared blocks read the
 * embeddings), the embeddings into emb[n][n_embd] (else emb may be NULL). Advances s's position. */
al_status al_forward_hidden(al_model *m, al_scratch *sc, al_session *s, const int32_t *tok, int n, int n_layers, float *h,
                            float *emb);

/* The engine's CPU backend (engine_cpu.c): al_session slots, decode through al_forward_batch. */
al_status al_engine_cpu_backend(al_model *m, int n_parallel, al_engine_backend *out);

#endif
