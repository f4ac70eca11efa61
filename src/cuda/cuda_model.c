/*
 * cuda_model.c — the GPU forward pass: al_cuda_model (weights on the device) and al_cuda_session
 * (KV / conv / SSM state and activations on the device). It mirrors model/forward.c layer by layer,
 * calling the ops of alloy/cuda.h instead of the CPU ops; activations stay on the device from the
 * embedding lookup to the logits, which are the only thing copied back.
 *
 * Design: a separate object pair rather than a switch inside al_session, so the CPU path is left
 * exactly as it is and a program can run both on one model (the tests do). The interface is the
 * same as al_session's (eval / reset / pos).
 *
 * Decode (n == 1): the token and its position are copied into device memory first, and every kernel
 * of the step reads them from there (embedding row, RoPE positions, KV row, attention length).
 * Where every op of the step has a recorded form (prog_build: forward_body run once with s->rec at
 * session start), the step after the embedding lookup is one persistent kernel (al_cuda_prog).
 * Otherwise the whole step — all layers and the LM head — is captured once into a CUDA graph and
 * replayed: the first decode step of a session runs eagerly (sizing the context's scratch), the
 * second captures; a graph is re-captured when the scratch has moved since (al_cuda_scratch_gen).
 *
 * Partial offload (al_cuda_model_init_layers, llama.cpp's -ngl N): only layers [first, n_layer), the
 * final norm and the LM head are on the device; each session also holds a CPU al_session with the
 * caches of layers [0, first), which runs the embedding and those layers for every token
 * (al_forward_hidden) before the residual stream is copied up into s->h. The device part is then the
 * same forward_body from layer `first` (graph-captured for decode; no persistent kernel).
 *
 * Batched decode (al_cuda_session_decode_batch): one token of each of n sessions as the n rows of
 * one forward pass of the first session (its activation buffers; s->bat names the sessions, row i
 * being bat[i]). Row-wise ops and the products run on all rows (the products in groups of at most
 * MM_ROWS rows, the integer kernels' limit, so each weight is read once per group); ops that touch a
 * sequence's state (K/V rows and attention, conv and SSM steps) run once per row on bat[i]'s caches at
 * the row's position, read from device memory (d_pos[i]). So the pass of one set of sessions is
 * replayable: the leader captures it into a CUDA graph right after its first eager run and replays it
 * while the same sessions (by id) come back in the same order, up to BATCH_GRAPHS sets per leader.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloy/cuda.h"
#include "alloy/ops.h"
#include "model/session_internal.h"

#define UBATCH 2048 /* default prefill micro-batch: each quantized weight is dequantized once per micro-batch */
#define LOGIT_ROWS 64 /* rows of logits computed per LM-head product when all are requested */
#define MM_ROWS 4     /* rows per product in batched decode: the integer matrix-vector kernels' limit */
#define BATCH_MAX 64  /* sessions per batched decode (<= LOGIT_ROWS) */
#define BATCH_GRAPHS 8 /* captured batched-decode graphs kept per leading session (least recently used out) */

typedef struct g_attn {
    al_cuda_weight wq, wk, wv, wo;
    float *bq, *bk, *bv, *bo, *q_norm, *k_norm;
} g_attn;
typedef struct g_m2 {
    al_cuda_weight in_proj, out_proj;
    float *conv_w, *conv_b, *A, *D, *dt_bias, *norm;
} g_m2;
typedef struct g_m1 {
    al_cuda_weight in_proj, x_proj, dt_proj, out_proj;
    float *conv_w, *conv_b, *dt_bias, *A, *D, *dt_norm, *b_norm, *c_norm;
} g_m1;
typedef struct g_ffn {
    al_cuda_weight gate, up, down, router, exp_gate, exp_up, exp_down;
} g_ffn;
typedef struct g_layer {
    float *attn_norm, *ffn_norm;
    g_attn attn;
    g_m2 m2;
    g_m1 m1;
    g_ffn ffn;
    al_cuda_weight z_linear, z_ad[4][2]; /* q, k, v, ff adapters: [0] down, [1] up */
    int z_block;
} g_layer;
typedef struct g_zshared {
    float *attn_norm, *ffn_norm;
    g_attn attn;
    al_cuda_weight gate_up, down;
} g_zshared;

struct al_cuda_model {
    al_cuda *cu;
    al_model *m;
    al_cuda_weight tok_embd, output;
    bool output_is_embd;
    float *out_norm, *inv_freq;
    g_layer *layers;
    g_zshared *zs;
    int n_zs;
    uint64_t next_session_id; /* sessions are told apart by id, never by (reusable) address */
    int first;                /* layers [first, n_layer) are on the device, [0, first) run on the CPU */
    size_t bytes;
    void **vecs; /* device vectors, freed with the model */
    int n_vecs, cap_vecs;
};

/* ---- model upload ---- */

static al_status up_vec(al_cuda_model *cm, const float *host, int64_t n, float **out) {
    *out = NULL;
    if (!host) return al_ok();
    if (cm->n_vecs == cm->cap_vecs) {
        int cap = cm->cap_vecs ? 2 * cm->cap_vecs : 64;
        void **nv = realloc(cm->vecs, sizeof(void *) * (size_t)cap);
        if (!nv) return al_err(AL_ERR_NOMEM, "cuda model: out of memory");
        cm->vecs = nv;
        cm->cap_vecs = cap;
    }
    void *p;
    AL_TRY(al_cuda_alloc(cm->cu, &p, sizeof(float) * (size_t)n));
    cm->vecs[cm->n_vecs++] = p;
    cm->bytes += sizeof(float) * (size_t)n;
    *out = p;
    return al_cuda_upload(cm->cu, p, host, sizeof(float) * (size_t)n);
}

static al_status up_mat(al_cuda_model *cm, const al_tensor *t, al_cuda_weight *w) {
    memset(w, 0, sizeof *w);
    if (!t->data) return al_ok();
    AL_TRY(al_cuda_weight_upload(cm->cu, t, w));
    cm->bytes += w->mat_bytes * (size_t)w->n_mat;
    return al_ok();
}

static al_status up_attn(al_cuda_model *cm, const al_attn_w *a, g_attn *g) {
    const al_hparams *hp = &cm->m->hp;
    AL_TRY(up_mat(cm, &a->wq, &g->wq));
    AL_TRY(up_mat(cm, &a->wk, &g->wk));
    AL_TRY(up_mat(cm, &a->wv, &g->wv));
    AL_TRY(up_mat(cm, &a->wo, &g->wo));
    AL_TRY(up_vec(cm, a->bq, a->wq.ne[1], &g->bq));
    AL_TRY(up_vec(cm, a->bk, a->wk.ne[1], &g->bk));
    AL_TRY(up_vec(cm, a->bv, a->wv.ne[1], &g->bv));
    AL_TRY(up_vec(cm, a->bo, a->wo.ne[1], &g->bo));
    AL_TRY(up_vec(cm, a->q_norm, hp->head_dim, &g->q_norm));
    AL_TRY(up_vec(cm, a->k_norm, hp->head_dim, &g->k_norm));
    return al_ok();
}

static al_status up_layer(al_cuda_model *cm, int il) {
    const al_hparams *hp = &cm->m->hp;
    const al_layer_w *L = &cm->m->layers[il];
    g_layer *g = &cm->layers[il];
    int64_t d = hp->n_embd, di = hp->ssm_d_inner, N = hp->ssm_d_state, H = hp->ssm_n_head;
    AL_TRY(up_vec(cm, L->attn_norm, d, &g->attn_norm));
    AL_TRY(up_vec(cm, L->ffn_norm, d, &g->ffn_norm));
    al_mixer mx = hp->layer_mixer[il];
    if (mx == AL_MIXER_ATTN) AL_TRY(up_attn(cm, &L->attn, &g->attn));
    if (mx == AL_MIXER_MAMBA2) {
        int64_t ch = di + 2 * (int64_t)hp->ssm_n_group * N;
        AL_TRY(up_mat(cm, &L->m2.in_proj, &g->m2.in_proj));
        AL_TRY(up_mat(cm, &L->m2.out_proj, &g->m2.out_proj));
        AL_TRY(up_vec(cm, L->m2.conv_w, ch * hp->ssm_d_conv, &g->m2.conv_w));
        AL_TRY(up_vec(cm, L->m2.conv_b, ch, &g->m2.conv_b));
        AL_TRY(up_vec(cm, L->m2.A, H, &g->m2.A));
        AL_TRY(up_vec(cm, L->m2.D, H, &g->m2.D));
        AL_TRY(up_vec(cm, L->m2.dt_bias, H, &g->m2.dt_bias));
        AL_TRY(up_vec(cm, L->m2.norm, di, &g->m2.norm));
    }
    if (mx == AL_MIXER_MAMBA1) {
        int64_t r = hp->ssm_dt_rank;
        AL_TRY(up_mat(cm, &L->m1.in_proj, &g->m1.in_proj));
        AL_TRY(up_mat(cm, &L->m1.x_proj, &g->m1.x_proj));
        AL_TRY(up_mat(cm, &L->m1.dt_proj, &g->m1.dt_proj));
        AL_TRY(up_mat(cm, &L->m1.out_proj, &g->m1.out_proj));
        AL_TRY(up_vec(cm, L->m1.conv_w, di * hp->ssm_d_conv, &g->m1.conv_w));
        AL_TRY(up_vec(cm, L->m1.conv_b, di, &g->m1.conv_b));
        AL_TRY(up_vec(cm, L->m1.dt_bias, di, &g->m1.dt_bias));
        AL_TRY(up_vec(cm, L->m1.A, di * N, &g->m1.A));
        AL_TRY(up_vec(cm, L->m1.D, di, &g->m1.D));
        AL_TRY(up_vec(cm, L->m1.dt_norm, r, &g->m1.dt_norm));
        AL_TRY(up_vec(cm, L->m1.b_norm, N, &g->m1.b_norm));
        AL_TRY(up_vec(cm, L->m1.c_norm, N, &g->m1.c_norm));
    }
    al_ffn ff = hp->layer_ffn[il];
    if (ff == AL_FFN_SWIGLU || ff == AL_FFN_RELU2) {
        AL_TRY(up_mat(cm, &L->ffn.gate, &g->ffn.gate));
        AL_TRY(up_mat(cm, &L->ffn.up, &g->ffn.up));
        AL_TRY(up_mat(cm, &L->ffn.down, &g->ffn.down));
    } else if (ff == AL_FFN_MOE) {
        AL_TRY(up_mat(cm, &L->ffn.router, &g->ffn.router));
        AL_TRY(al_cuda_weight_upload_stack(cm->cu, L->ffn.exp_gate, hp->n_expert, &g->ffn.exp_gate));
        AL_TRY(al_cuda_weight_upload_stack(cm->cu, L->ffn.exp_up, hp->n_expert, &g->ffn.exp_up));
        AL_TRY(al_cuda_weight_upload_stack(cm->cu, L->ffn.exp_down, hp->n_expert, &g->ffn.exp_down));
        cm->bytes += (g->ffn.exp_gate.mat_bytes + g->ffn.exp_up.mat_bytes + g->ffn.exp_down.mat_bytes) * (size_t)hp->n_expert;
    }
    if (hp->layer_shared[il]) {
        g->z_block = L->z_block;
        AL_TRY(up_mat(cm, &L->z_linear, &g->z_linear));
        const al_tensor *ad[4] = {L->z_adapt_q, L->z_adapt_k, L->z_adapt_v, L->z_adapt_ff};
        for (int k = 0; k < 4; k++)
            for (int j = 0; j < 2; j++) AL_TRY(up_mat(cm, &ad[k][j], &g->z_ad[k][j]));
    }
    return al_ok();
}

static al_status model_upload(al_cuda_model *cm) {
    al_model *m = cm->m;
    const al_hparams *hp = &m->hp;
    cm->output_is_embd = m->output.data == m->tok_embd.data;
    if (cm->first == 0 || cm->output_is_embd) AL_TRY(up_mat(cm, &m->tok_embd, &cm->tok_embd)); /* lookup or LM head */
    if (cm->output_is_embd) cm->output = cm->tok_embd;
    else AL_TRY(up_mat(cm, &m->output, &cm->output));
    AL_TRY(up_vec(cm, m->out_norm, hp->n_embd, &cm->out_norm));
    cm->layers = calloc((size_t)hp->n_layer, sizeof *cm->layers);
    if (!cm->layers) return al_err(AL_ERR_NOMEM, "cuda model: out of memory");
    for (int il = cm->first; il < hp->n_layer; il++) AL_TRY(up_layer(cm, il));
    if (hp->arch == AL_ARCH_ZAMBA2 && m->zshared) {
        cm->n_zs = hp->zamba_n_mem_blocks > 0 ? hp->zamba_n_mem_blocks : 1;
        cm->zs = calloc((size_t)cm->n_zs, sizeof *cm->zs);
        if (!cm->zs) return al_err(AL_ERR_NOMEM, "cuda model: out of memory");
        for (int b = 0; b < cm->n_zs; b++) {
            const al_zshared_w *z = &m->zshared[b];
            g_zshared *g = &cm->zs[b];
            AL_TRY(up_vec(cm, z->attn_norm, 2 * (int64_t)hp->n_embd, &g->attn_norm));
            AL_TRY(up_vec(cm, z->ffn_norm, hp->n_embd, &g->ffn_norm));
            AL_TRY(up_attn(cm, &z->attn, &g->attn));
            AL_TRY(up_mat(cm, &z->gate_up, &g->gate_up));
            AL_TRY(up_mat(cm, &z->down, &g->down));
        }
    }
    /* rotary inverse frequencies, exactly as al_session_init computes them */
    if (hp->rope_mode != AL_ROPE_NONE) {
        float *ff = NULL;
        AL_TRY(al_model_get_f32(m, "rope_freqs.weight", false, hp->rope_dim / 2, &ff));
        float *factors = ff, *own = NULL, *inv = malloc(sizeof(float) * (size_t)(hp->rope_dim / 2 + 1));
        if (!inv) return al_err(AL_ERR_NOMEM, "cuda model: out of memory");
        if (!factors && hp->rope_factor > 0 && hp->rope_orig_ctx > 0) {
            factors = own = malloc(sizeof(float) * (size_t)(hp->rope_dim / 2 + 1));
            if (!own) {
                free(inv);
                return al_err(AL_ERR_NOMEM, "cuda model: out of memory");
            }
            al_hparams_rope_factors(hp, factors);
        }
        al_rope_cfg rc = {hp->rope_mode == AL_ROPE_NORM ? 1 : 2, hp->rope_dim, hp->rope_theta, factors};
        al_rope_inv_freq(&rc, inv);
        al_status st = up_vec(cm, inv, hp->rope_dim / 2, &cm->inv_freq);
        free(inv);
        free(own);
        AL_TRY(st);
    }
    return al_ok();
}

al_status al_cuda_model_init(al_cuda_model **out, al_cuda *c, al_model *m) { return al_cuda_model_init_layers(out, c, m, -1); }

al_status al_cuda_model_init_layers(al_cuda_model **out, al_cuda *c, al_model *m, int n_gpu_layers) {
    *out = NULL;
    al_cuda_model *cm = calloc(1, sizeof *cm);
    if (!cm) return al_err(AL_ERR_NOMEM, "cuda model: out of memory");
    cm->cu = c;
    cm->m = m;
    const int L = m->hp.n_layer;
    cm->first = n_gpu_layers < 0 || n_gpu_layers >= L ? 0 : L - n_gpu_layers;
    al_status st = model_upload(cm);
    if (al_failed(&st)) {
        al_cuda_model_free(cm);
        return al_err_wrap(st, "uploading %s", al_model_path(m));
    }
    *out = cm;
    return al_ok();
}

static void free_attn(al_cuda *c, g_attn *a) {
    al_cuda_weight_free(c, &a->wq);
    al_cuda_weight_free(c, &a->wk);
    al_cuda_weight_free(c, &a->wv);
    al_cuda_weight_free(c, &a->wo);
}

void al_cuda_model_free(al_cuda_model *cm) {
    if (!cm) return;
    al_cuda *c = cm->cu;
    if (cm->layers) {
        for (int il = 0; il < cm->m->hp.n_layer; il++) {
            g_layer *g = &cm->layers[il];
            free_attn(c, &g->attn);
            al_cuda_weight *ws[] = {&g->m2.in_proj, &g->m2.out_proj, &g->m1.in_proj, &g->m1.x_proj, &g->m1.dt_proj,
                                    &g->m1.out_proj, &g->ffn.gate, &g->ffn.up, &g->ffn.down, &g->ffn.router,
                                    &g->ffn.exp_gate, &g->ffn.exp_up, &g->ffn.exp_down, &g->z_linear};
            for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) al_cuda_weight_free(c, ws[i]);
            for (int k = 0; k < 4; k++)
                for (int j = 0; j < 2; j++) al_cuda_weight_free(c, &g->z_ad[k][j]);
        }
        free(cm->layers);
    }
    for (int b = 0; b < cm->n_zs; b++) {
        free_attn(c, &cm->zs[b].attn);
        al_cuda_weight_free(c, &cm->zs[b].gate_up);
        al_cuda_weight_free(c, &cm->zs[b].down);
    }
    free(cm->zs);
    if (!cm->output_is_embd) al_cuda_weight_free(c, &cm->output);
    al_cuda_weight_free(c, &cm->tok_embd);
    for (int i = 0; i < cm->n_vecs; i++) al_cuda_release(c, cm->vecs[i]);
    free(cm->vecs);
    free(cm);
}

size_t al_cuda_model_bytes(const al_cuda_model *cm) { return cm->bytes; }
int al_cuda_model_gpu_layers(const al_cuda_model *cm) { return cm->m->hp.n_layer - cm->first; }

/* ---- session ---- */

typedef struct g_cache {
    void *k, *v;
    float *conv, *ssm;
} g_cache;

struct al_cuda_session {
    al_cuda_model *cm;
    al_cuda *cu;
    const al_hparams *hp;
    int n_ctx, pos, ubatch;
    al_type kv_type;
    bool use_graph, graph_failed;
    bool fuse; /* decode: residual add + RMSNorm computed inside the next products (al_cuda_matvec_*) */
    al_status graph_why;
    float *h_logits; /* pinned [n_vocab] */
    g_cache *lc;
    float *h, *h2, *emb0, *xin, *delta, *xn, *t0, *t1, *t2, *t3, *big, *logits;
    size_t w_small, w_big;
    int32_t *d_stage;  /* [1 + ubatch]: n_past, then token ids */
    int32_t *h_stage;  /* pinned twin */
    int32_t *d_pos;    /* [ubatch] positions */
    void **d_kvtab, **h_kvtab; /* batched decode led by this session: [n_layer][2][BATCH_MAX] K / V cache of each row (device, pinned twin) */
    int32_t *moe_ids;  /* [ubatch][n_expert_used] */
    float *moe_w;
    al_cuda_graph *graph;
    uint64_t graph_gen;
    int n_decode_eager;
    al_cuda_prog *prog; /* persistent decode (NULL: graph or eager); rec: forward_body records into it */
    bool rec;
    al_status prog_why;
    al_cuda_session *const *bat; /* batched decode (NULL otherwise): row i of this pass is bat[i]'s token */
    uint64_t id;                 /* unique per model */
    al_session *cpu;             /* partial offload: layers [0, cm->first) on the CPU (else NULL) */
    float *snap;                 /* al_cuda_session_snapshot: conv and SSM states of the device layers */
    int snap_pos;                /* -1: none */
    float *h_host, *emb_host;    /* pinned [ubatch][n_embd]: their output (emb: zamba2's embeddings) */
    struct bgraph {              /* captured batched decode passes led by this session */
        al_cuda_graph *g;
        uint64_t gen, used;      /* scratch generation at capture; last use (bclock) */
        int n;
        uint64_t ids[BATCH_MAX]; /* the sessions of rows 0 .. n-1 */
    } bg[BATCH_GRAPHS];
    uint64_t bclock;
    bool bg_failed;              /* a batched capture failed: batched decode stays eager */
    al_status bg_why;
};

static void prog_build(al_cuda_session *s, const al_cuda_session_params *p);

/* bytes of layer il's conv and SSM states (0 for layers without them) */
static void state_bytes(const al_hparams *hp, int il, size_t *conv, size_t *ssm) {
    al_layer_state_sizes(hp, il, conv, ssm);
    *conv *= sizeof(float);
    *ssm *= sizeof(float);
}

al_cuda_session_params al_cuda_session_default_params(void) {
    al_cuda_session_params p = {.kv_type = AL_TYPE_F16, .use_graph = true, .persistent = true, .persist_poller = -1,
                                .persist_tagged = AL_TAG_AUTO}; /* the rest 0 / false */
    return p;
}

static int imax(int a, int b) { return a > b ? a : b; }

static al_status dalloc(al_cuda_session *s, void *pp, size_t bytes) {
    return al_cuda_alloc(s->cu, (void **)pp, bytes);
}

al_status al_cuda_session_init(al_cuda_session **out, al_cuda_model *cm, const al_cuda_session_params *p) {
    *out = NULL;
    al_cuda_session_params def = al_cuda_session_default_params();
    if (!p) p = &def;
    const al_hparams *hp = &cm->m->hp;
    int n_ctx = p->n_ctx;
    if (n_ctx <= 0) n_ctx = hp->n_ctx_train < 8192 ? hp->n_ctx_train : 8192;
    if (n_ctx > (1 << 22)) return al_err(AL_ERR_INVALID, "cuda session: n_ctx %d too large", n_ctx);
    if (p->kv_type != AL_TYPE_F16 && p->kv_type != AL_TYPE_F32)
        return al_err(AL_ERR_UNSUPPORTED, "cuda session: KV cache type %s (F16 or F32)", al_type_name(p->kv_type));
    al_cuda_session *s = calloc(1, sizeof *s);
    if (!s) return al_err(AL_ERR_NOMEM, "cuda session: out of memory");
    s->cm = cm;
    s->cu = cm->cu;
    s->hp = hp;
    s->id = ++cm->next_session_id;
    s->snap_pos = -1;
    s->n_ctx = n_ctx;
    s->ubatch = p->ubatch > 0 ? p->ubatch : UBATCH;
    if (s->ubatch > n_ctx) s->ubatch = n_ctx; /* scratch grows with the micro-batch */
    s->kv_type = p->kv_type;
    s->use_graph = p->use_graph;
    s->fuse = hp->arch != AL_ARCH_ZAMBA2 && hp->n_embd <= 8192;
    for (int il = 0; il < hp->n_layer; il++)
        if (hp->layer_shared[il] || hp->layer_mixer[il] == AL_MIXER_MAMBA1 || hp->layer_ffn[il] == AL_FFN_MOE) s->fuse = false;
    al_status st = al_ok();
#define A(ptr, bytes) do { if (!al_failed(&st)) st = dalloc(s, &(ptr), (bytes)); } while (0)
    s->lc = calloc((size_t)hp->n_layer, sizeof *s->lc);
    if (!s->lc) st = al_err(AL_ERR_NOMEM, "cuda session: out of memory");
    size_t kvb = (size_t)n_ctx * (size_t)hp->n_head_kv * (size_t)hp->head_dim * (p->kv_type == AL_TYPE_F16 ? 2 : 4);
    for (int il = cm->first; il < hp->n_layer && !al_failed(&st); il++) {
        g_cache *c = &s->lc[il];
        if (hp->layer_mixer[il] == AL_MIXER_ATTN || hp->layer_shared[il]) {
            A(c->k, kvb);
            A(c->v, kvb);
        }
        size_t nc, ns;
        state_bytes(hp, il, &nc, &ns);
        if (nc) {
            A(c->conv, nc);
            A(c->ssm, ns);
        }
    }
    /* widths as the CPU session; MoE decode also holds the gate/up rows of all chosen experts */
    al_hparams_widths(hp, &s->w_small, &s->w_big);
    const size_t moe = 2 * (size_t)hp->n_ff_expert * (size_t)imax(1, hp->n_expert_used);
    if (moe > s->w_big) s->w_big = moe;
    size_t ub = (size_t)s->ubatch, f = sizeof(float), d = (size_t)hp->n_embd;
    A(s->h, ub * d * f);
    A(s->h2, d * f);
    A(s->emb0, ub * d * f);
    A(s->xin, ub * d * f);
    A(s->delta, ub * d * f);
    A(s->xn, ub * s->w_small * f);
    A(s->t0, ub * s->w_small * f);
    A(s->t1, ub * s->w_small * f);
    A(s->t2, ub * s->w_small * f);
    A(s->t3, ub * s->w_big * f);
    A(s->big, ub * s->w_big * f);
    A(s->logits, (size_t)LOGIT_ROWS * (size_t)hp->n_vocab * f);
    A(s->d_stage, (ub + 1) * sizeof(int32_t));
    A(s->d_pos, ub * sizeof(int32_t));
    A(s->d_kvtab, (size_t)hp->n_layer * 2 * BATCH_MAX * sizeof(void *));
    A(s->moe_ids, ub * (size_t)imax(1, hp->n_expert_used) * sizeof(int32_t));
    A(s->moe_w, ub * (size_t)imax(1, hp->n_expert_used) * f);
#undef A
    if (!al_failed(&st)) st = al_cuda_host_alloc((void **)&s->h_stage, (ub + 1) * sizeof(int32_t));
    if (!al_failed(&st)) st = al_cuda_host_alloc((void **)&s->h_logits, sizeof(float) * (size_t)hp->n_vocab);
    if (!al_failed(&st)) st = al_cuda_host_alloc((void **)&s->h_kvtab, (size_t)hp->n_layer * 2 * BATCH_MAX * sizeof(void *));
    if (!al_failed(&st) && cm->first > 0) {
        st = al_session_init_layers(&s->cpu, cm->m, n_ctx, cm->first);
        if (!al_failed(&st)) st = al_cuda_host_alloc((void **)&s->h_host, ub * d * f);
        if (!al_failed(&st) && hp->arch == AL_ARCH_ZAMBA2) st = al_cuda_host_alloc((void **)&s->emb_host, ub * d * f);
    }
    if (al_failed(&st)) {
        al_cuda_session_free(s);
        return al_err_wrap(st, "cuda session (n_ctx %d)", n_ctx);
    }
    if (p->persistent && cm->first == 0) prog_build(s, p);
    else if (p->persistent) s->prog_why = al_err(AL_ERR_UNSUPPORTED, "persistent decode: %d layers run on the CPU", cm->first);
    else s->prog_why = al_err(AL_ERR_UNSUPPORTED, "persistent decode is off");
    *out = s;
    return al_ok();
}

void al_cuda_session_free(al_cuda_session *s) {
    if (!s) return;
    al_cuda *c = s->cu;
    al_cuda_sync(c);
    al_cuda_graph_free(s->graph);
    for (int i = 0; i < BATCH_GRAPHS; i++) al_cuda_graph_free(s->bg[i].g);
    al_cuda_prog_free(s->prog);
    if (s->lc) {
        for (int il = 0; il < s->hp->n_layer; il++) {
            al_cuda_release(c, s->lc[il].k);
            al_cuda_release(c, s->lc[il].v);
            al_cuda_release(c, s->lc[il].conv);
            al_cuda_release(c, s->lc[il].ssm);
        }
        free(s->lc);
    }
    void *bufs[] = {s->h, s->h2, s->emb0, s->xin, s->delta, s->xn, s->t0, s->t1, s->t2, s->t3, s->big, s->logits,
                    s->d_stage, s->d_pos, s->moe_ids, s->moe_w, s->d_kvtab};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) al_cuda_release(c, bufs[i]);
    al_cuda_host_free(s->h_stage);
    al_cuda_host_free(s->h_logits);
    al_cuda_host_free(s->h_kvtab);
    al_cuda_host_free(s->h_host);
    al_cuda_host_free(s->emb_host);
    al_session_free(s->cpu);
    al_cuda_release(c, s->snap);
    free(s);
}

void al_cuda_session_reset(al_cuda_session *s) {
    for (int il = 0; il < s->hp->n_layer; il++) {
        g_cache *c = &s->lc[il];
        size_t nc, ns;
        state_bytes(s->hp, il, &nc, &ns);
        if (c->conv) al_cuda_memset(s->cu, c->conv, 0, nc);
        if (c->ssm) al_cuda_memset(s->cu, c->ssm, 0, ns);
    }
    if (s->cpu) al_session_reset(s->cpu);
    s->pos = 0;
    s->snap_pos = -1;
}

int al_cuda_session_pos(const al_cuda_session *s) { return s->pos; }

al_status al_cuda_session_truncate(al_cuda_session *s, int n) {
    if (n < 0 || n > s->pos) return al_err(AL_ERR_RANGE, "truncate: %d of %d tokens", n, s->pos);
    if (!al_model_can_truncate(s->cm->m)) return al_err(AL_ERR_UNSUPPORTED, "truncate: the model keeps recurrent (SSM) state");
    if (s->cpu) AL_TRY(al_session_truncate(s->cpu, n));
    s->pos = n;
    if (s->snap_pos > n) s->snap_pos = -1;
    return al_ok();
}

/* every device layer's recurrent state to (save) or from the snapshot, enqueued */
static al_status snap_copy(al_cuda_session *s, bool save) {
    char *p = (char *)s->snap;
    for (int il = s->cm->first; il < s->hp->n_layer; il++) {
        size_t nc, ns;
        state_bytes(s->hp, il, &nc, &ns);
        g_cache *c = &s->lc[il];
        if (!nc) continue;
        AL_TRY(al_cuda_copy_async(s->cu, save ? p : (char *)c->conv, save ? (char *)c->conv : p, nc));
        AL_TRY(al_cuda_copy_async(s->cu, save ? p + nc : (char *)c->ssm, save ? (char *)c->ssm : p + nc, ns));
        p += nc + ns;
    }
    return al_ok();
}

al_status al_cuda_session_snapshot(al_cuda_session *s) {
    if (!s->snap) AL_TRY(al_cuda_alloc(s->cu, (void **)&s->snap, 16 + sizeof(float) * al_layers_state_size(s->hp, s->cm->first, s->hp->n_layer)));
    if (s->cpu) AL_TRY(al_session_snapshot(s->cpu));
    AL_TRY(snap_copy(s, true));
    s->snap_pos = s->pos;
    return al_ok();
}

al_status al_cuda_session_restore(al_cuda_session *s) {
    if (s->snap_pos < 0 || s->snap_pos > s->pos) return al_err(AL_ERR_NOT_FOUND, "restore: no snapshot");
    if (s->cpu) AL_TRY(al_session_restore(s->cpu));
    AL_TRY(snap_copy(s, false));
    s->pos = s->snap_pos;
    return al_ok();
}
int al_cuda_session_n_ctx(const al_cuda_session *s) { return s->n_ctx; }

bool al_cuda_session_graph_active(const al_cuda_session *s, al_status *why) {
    if (why) *why = s->graph_failed ? s->graph_why : al_ok();
    return s->graph != NULL && !s->graph_failed;
}

al_cuda_prog *al_cuda_session_prog(al_cuda_session *s) { return s->prog; }

bool al_cuda_session_persistent_active(const al_cuda_session *s, al_status *why) {
    if (why) *why = s->prog ? al_ok() : s->prog_why;
    return s->prog != NULL;
}

/* ---- building blocks (device pointers throughout) ---- */

static al_status mm(al_cuda_session *s, const al_cuda_weight *W, const float *X, int64_t ldx, float *Y, int64_t n,
                    const float *bias) {
    if (s->rec) {
        if (bias) return al_err(AL_ERR_UNSUPPORTED, "persistent decode: product bias");
        al_cuda_vec_in v;
        memset(&v, 0, sizeof v);
        v.x = X;
        return al_cuda_prog_matvec(s->prog, &W, 1, &v, &Y);
    }
    const int64_t g = s->bat ? MM_ROWS : n;
    for (int64_t r = 0; r < n; r += g)
        AL_TRY(al_cuda_matmul(s->cu, W, X + r * ldx, ldx, Y + r * W->n_out, W->n_out, n - r < g ? n - r : g));
    if (bias) AL_TRY(al_cuda_add_bias(s->cu, Y, W->n_out, bias, n, W->n_out));
    return al_ok();
}

/* The input of a block's first products: rows x[n][ldx] already normalised, or (fused decode, v.norm
 * set) the pending residual add + RMSNorm that the product kernels compute themselves. */
typedef struct g_in {
    const float *x;
    int64_t ldx;
    al_cuda_vec_in v;
} g_in;

static g_in plain_in(const float *x, int64_t ldx) {
    g_in in;
    memset(&in, 0, sizeof in);
    in.x = x;
    in.ldx = ldx;
    return in;
}

/* the block input for the residual stream *hc (+ delta when pending) normed by nw; in fused decode
 * the sum goes to the other residual buffer, which *hc then names */
static al_status block_in(al_cuda_session *s, float **hc, bool pending, const float *nw, int64_t n, g_in *in) {
    const al_hparams *hp = s->hp;
    const int64_t d = hp->n_embd;
    *in = plain_in(s->xn, d);
    if (n == 1 && s->fuse && nw) {
        in->x = NULL;
        in->v.h = *hc;
        in->v.norm = nw;
        in->v.eps = hp->norm_eps;
        if (pending) {
            in->v.d = s->delta;
            in->v.h_out = *hc == s->h ? s->h2 : s->h;
            *hc = in->v.h_out;
        }
        return al_ok();
    }
    if (pending) return al_cuda_add_rms_norm(s->cu, *hc, s->delta, nw, s->xn, n, d, hp->norm_eps);
    return al_cuda_rms_norm(s->cu, *hc, d, nw, s->xn, d, n, d, d, hp->norm_eps);
}

/* materialise a fused input into s->xn (for products without an integer kernel) */
static al_status in_x(al_cuda_session *s, const g_in *in, const float **x) {
    *x = in->x;
    if (!in->v.norm) return al_ok();
    const int64_t d = s->hp->n_embd;
    const float *h = in->v.h;
    if (in->v.d) {
        AL_TRY(al_cuda_add(s->cu, in->v.h, in->v.d, in->v.h_out, d));
        h = in->v.h_out;
    }
    AL_TRY(al_cuda_rms_norm(s->cu, h, d, in->v.norm, s->xn, d, 1, d, d, in->v.eps));
    *x = s->xn;
    return al_ok();
}

/* the block input as al_cuda_vec_in (the fused norm, or plain x) */
static al_cuda_vec_in vec_of(const g_in *in) {
    al_cuda_vec_in v = in->v;
    if (!v.norm) v.x = in->x;
    return v;
}

/* Y[i] = x·W[i]ᵀ, i < nw, for the block input */
static al_status mm_in(al_cuda_session *s, const al_cuda_weight *const *W, int nw, const g_in *in, int64_t n, float *const *Y) {
    if (s->rec) {
        const al_cuda_vec_in v = vec_of(in);
        return al_cuda_prog_matvec(s->prog, W, nw, &v, Y);
    }
    if (in->v.norm) {
        al_status st = al_cuda_matvec_n(s->cu, W, nw, &in->v, Y);
        if (st.code != AL_ERR_UNSUPPORTED) return st;
    }
    const float *x;
    AL_TRY(in_x(s, in, &x));
    if (!s->bat) return al_cuda_matmul_n(s->cu, W, nw, x, in->ldx, Y, n);
    for (int64_t r = 0; r < n; r += MM_ROWS) { /* batched decode: groups of MM_ROWS rows */
        float *Yr[8];
        if (nw > 8) return al_err(AL_ERR_INVALID, "cuda: %d products in one call", nw);
        for (int i = 0; i < nw; i++) Yr[i] = Y[i] + r * W[i]->n_out;
        AL_TRY(al_cuda_matmul_n(s->cu, W, nw, x + r * in->ldx, in->ldx, Yr, n - r < MM_ROWS ? n - r : MM_ROWS));
    }
    return al_ok();
}

/* Y += (X·A0ᵀ)·A1ᵀ (zamba2 adapter) */
static al_status mm_adapter(al_cuda_session *s, const al_cuda_weight *A, const float *X, int64_t ldx, float *Y, int64_t n) {
    if (!A[0].data) return al_ok();
    float *tmp = s->big, *tmp2 = s->big + n * A[0].n_out;
    AL_TRY(mm(s, &A[0], X, ldx, tmp, n, NULL));
    AL_TRY(mm(s, &A[1], tmp, A[0].n_out, tmp2, n, NULL));
    return al_cuda_add(s->cu, Y, tmp2, Y, n * A[1].n_out);
}

static al_status attention(al_cuda_session *s, int il, const g_attn *a, const g_layer *L, const g_in *in, int64_t n,
                           float *out) {
    const al_hparams *hp = s->hp;
    g_cache *c = &s->lc[il];
    const int64_t qd = (int64_t)hp->n_head * hp->head_dim, kvd = (int64_t)hp->n_head_kv * hp->head_dim;
    const float eps = hp->norm_eps;
    float *q = s->t0, *k = s->t1, *v = s->t2;
    const al_cuda_weight *W3[3] = {&a->wq, &a->wk, &a->wv};
    float *Y3[3] = {q, k, v};
    AL_TRY(mm_in(s, W3, 3, in, n, Y3));
    const float scale = hp->attn_scale > 0 ? hp->attn_scale : 1.0f / sqrtf((float)hp->head_dim);
    const int rope = hp->rope_mode == AL_ROPE_NONE ? 0 : hp->rope_mode == AL_ROPE_NORM ? 1 : 2;
    if (s->rec) { /* biases, norms, RoPE, cache rows and attention in one op; then wo */
        if (L) return al_err(AL_ERR_UNSUPPORTED, "persistent decode: zamba2 adapters");
        al_cuda_prog_attn pa = {q, k, v, a->bq, a->bk, a->bv, a->q_norm, a->k_norm, c->k, c->v, s->kv_type, s->t3,
                                hp->n_head, hp->n_head_kv, hp->head_dim, hp->sliding_window, s->n_ctx,
                                rope, hp->rope_dim, s->cm->inv_freq, scale, eps};
        AL_TRY(al_cuda_prog_attention(s->prog, &pa));
        return mm(s, &a->wo, s->t3, qd, out, n, a->bo); /* not t1: k is read while out is written */
    }
    if (a->bq) AL_TRY(al_cuda_add_bias(s->cu, q, qd, a->bq, n, qd));
    if (a->bk) AL_TRY(al_cuda_add_bias(s->cu, k, kvd, a->bk, n, kvd));
    if (a->bv) AL_TRY(al_cuda_add_bias(s->cu, v, kvd, a->bv, n, kvd));
    if (L) { /* zamba2: never fused (in->x is set) */
        AL_TRY(mm_adapter(s, L->z_ad[0], in->x, in->ldx, q, n));
        AL_TRY(mm_adapter(s, L->z_ad[1], in->x, in->ldx, k, n));
        AL_TRY(mm_adapter(s, L->z_ad[2], in->x, in->ldx, v, n));
    }
    /* per-head norms, RoPE, K/V into the cache at positions d_pos: all n tokens of this sequence, or
     * (batched decode) row i the token of bat[i] at d_pos[i] == bat[i]->pos into its cache, the caches
     * named by the leader's table (decode_batch fills it), one launch for all rows */
    void *const *kt = s->bat ? s->d_kvtab + (size_t)il * 2 * BATCH_MAX : NULL, *const *vt = kt ? kt + BATCH_MAX : NULL;
    al_cuda_qkv_args qa = {q, k, v, a->q_norm, a->k_norm, eps, n, hp->n_head, hp->n_head_kv, hp->head_dim, s->d_pos, rope,
                           hp->rope_dim, s->cm->inv_freq, kt ? NULL : c->k, kt ? NULL : c->v, s->kv_type, kt, vt};
    AL_TRY(al_cuda_qkv_post(s->cu, &qa));
    float *ao = s->t1; /* over k: every row's K is in its cache now */
    /* decode reads the position from device memory (graphs): single, d_stage[0]; batched, d_pos[i] */
    const int32_t *dnp = s->bat ? s->d_pos : n == 1 ? s->d_stage : NULL;
    int n_ctx = s->n_ctx;
    for (int64_t i = 0; s->bat && i < n; i++) n_ctx = s->bat[i]->n_ctx > n_ctx ? s->bat[i]->n_ctx : n_ctx;
    al_cuda_attn_args aa = {q, c->k, c->v, s->kv_type, ao, s->bat ? 1 : n, s->pos, dnp, n_ctx, hp->n_head, hp->n_head_kv,
                            hp->head_dim, hp->sliding_window, scale, s->bat ? (int)n : 1, (const void *const *)kt,
                            (const void *const *)vt};
    AL_TRY(al_cuda_attention(s->cu, &aa));
    return mm(s, &a->wo, ao, qd, out, n, a->bo);
}

static al_status mamba2(al_cuda_session *s, int il, const g_in *in, int64_t n, float *out) {
    const al_hparams *hp = s->hp;
    const g_m2 *w = &s->cm->layers[il].m2;
    g_cache *c = &s->lc[il];
    const int H = hp->ssm_n_head, P = hp->ssm_head_dim, N = hp->ssm_d_state, G = hp->ssm_n_group;
    const int64_t di = hp->ssm_d_inner, gn = (int64_t)G * N, conv_ch = di + 2 * gn, proj = 2 * di + 2 * gn + H;
    float *zx = s->big, *conv = s->t1, *dt = s->t2, *y = s->t3;
    const al_cuda_weight *W1[1] = {&w->in_proj};
    AL_TRY(mm_in(s, W1, 1, in, n, &zx));
    if (s->rec) {
        if (!(s->fuse && w->norm)) return al_err(AL_ERR_UNSUPPORTED, "persistent decode: Mamba-2 without a gated norm");
        al_cuda_prog_ssm ps = {zx, w->conv_w, w->conv_b, w->A, w->D, w->dt_bias, c->conv, c->ssm, y, H, P, N, G, hp->ssm_d_conv,
                               hp->ssm_dt_min, hp->ssm_dt_max};
        AL_TRY(al_cuda_prog_ssm_step(s->prog, &ps));
    } else {
        AL_TRY(al_cuda_ssm_dt(s->cu, zx + di + conv_ch, proj, w->dt_bias, dt, n, H,
                              n > 1 && !s->bat ? hp->ssm_dt_floor_prefill : -INFINITY, hp->ssm_dt_min, hp->ssm_dt_max));
        /* conv and SSD on the sequence's state: all n tokens, or (batched decode) a step per row's sequence */
        const int64_t seqs = s->bat ? n : 1, nt = s->bat ? 1 : n;
        for (int64_t i = 0; i < seqs; i++) {
            g_cache *bc = s->bat ? &s->bat[i]->lc[il] : c;
            float *ci = conv + i * conv_ch;
            AL_TRY(al_cuda_conv1d_causal(s->cu, zx + i * proj + di, proj, nt, (int)conv_ch, hp->ssm_d_conv, w->conv_w,
                                         w->conv_b, bc->conv, ci, conv_ch, true));
            al_cuda_ssd_args sa = {ci, dt + i * H, ci + di, ci + di + gn, w->A, w->D, conv_ch, H, conv_ch, bc->ssm,
                                   y + i * di, nt, H, P, N, G};
            AL_TRY(al_cuda_ssd(s->cu, &sa));
        }
    }
    if (n == 1 && s->fuse && w->norm) { /* gated norm inside the out_proj kernel */
        al_cuda_vec_in v;
        memset(&v, 0, sizeof v);
        v.h = y;
        v.z = zx;
        v.norm = w->norm;
        v.eps = hp->norm_eps;
        v.group = di / hp->ssm_norm_groups;
        const al_cuda_weight *WO[1] = {&w->out_proj};
        if (s->rec) return al_cuda_prog_matvec(s->prog, WO, 1, &v, &out);
        al_status st = al_cuda_matvec_n(s->cu, WO, 1, &v, &out);
        if (st.code != AL_ERR_UNSUPPORTED) return st;
    }
    AL_TRY(al_cuda_gated_rms_norm(s->cu, y, di, zx, proj, w->norm, n, di, di / hp->ssm_norm_groups, hp->norm_eps));
    return mm(s, &w->out_proj, y, di, out, n, NULL);
}

static al_status mamba1(al_cuda_session *s, int il, const float *xn, int64_t n, float *out) {
    const al_hparams *hp = s->hp;
    const g_m1 *w = &s->cm->layers[il].m1;
    g_cache *c = &s->lc[il];
    const int64_t di = hp->ssm_d_inner, N = hp->ssm_d_state, r = hp->ssm_dt_rank, pw = r + 2 * N;
    float *xz = s->big, *xc = s->t1, *dbc = s->t2, *dt = s->t3, *y = s->t0;
    AL_TRY(mm(s, &w->in_proj, xn, hp->n_embd, xz, n, NULL));
    /* state-touching steps: all n tokens on this sequence, or (batched decode) one per row's sequence */
    const int64_t seqs = s->bat ? n : 1, nt = s->bat ? 1 : n;
    for (int64_t i = 0; i < seqs; i++)
        AL_TRY(al_cuda_conv1d_causal(s->cu, xz + i * 2 * di, 2 * di, nt, (int)di, hp->ssm_d_conv, w->conv_w, w->conv_b,
                                     s->bat ? s->bat[i]->lc[il].conv : c->conv, xc + i * di, di, true));
    AL_TRY(mm(s, &w->x_proj, xc, di, dbc, n, NULL));
    if (w->dt_norm) {
        AL_TRY(al_cuda_rms_norm(s->cu, dbc, pw, w->dt_norm, dbc, pw, n, r, r, hp->norm_eps));
        AL_TRY(al_cuda_rms_norm(s->cu, dbc + r, pw, w->b_norm, dbc + r, pw, n, N, N, hp->norm_eps));
        AL_TRY(al_cuda_rms_norm(s->cu, dbc + r + N, pw, w->c_norm, dbc + r + N, pw, n, N, N, hp->norm_eps));
    }
    AL_TRY(mm(s, &w->dt_proj, dbc, pw, dt, n, NULL));
    AL_TRY(al_cuda_ssm_dt(s->cu, dt, di, w->dt_bias, dt, n, (int)di, -INFINITY, -INFINITY, INFINITY));
    for (int64_t i = 0; i < seqs; i++)
        AL_TRY(al_cuda_selective_scan(s->cu, xc + i * di, dt + i * di, w->A, dbc + i * pw + r, dbc + i * pw + r + N, pw, w->D,
                                      s->bat ? s->bat[i]->lc[il].ssm : c->ssm, y + i * di, nt, (int)di, (int)N));
    AL_TRY(al_cuda_glu(s->cu, AL_CUDA_ACT_SILU, xz + di, 2 * di, y, di, y, di, n, di)); /* y *= silu(z) */
    return mm(s, &w->out_proj, y, di, out, n, NULL);
}

static al_cuda_act_kind act_of(al_act a) {
    static const al_cuda_act_kind map[] = {[AL_ACT_SILU] = AL_CUDA_ACT_SILU, [AL_ACT_GELU_TANH] = AL_CUDA_ACT_GELU_TANH,
                                           [AL_ACT_GELU_ERF] = AL_CUDA_ACT_GELU_ERF, [AL_ACT_RELU2] = AL_CUDA_ACT_RELU2};
    return map[a];
}

static al_status ffn_dense(al_cuda_session *s, const g_ffn *f, al_act act, const g_in *in, int64_t n, float *out) {
    const int64_t nf = f->up.n_out;
    float *up = s->big, *gate = s->t3;
    if (n == 1) { /* decode: (gate,) up and the activation in one product where possible */
        const al_cuda_vec_in v = vec_of(in);
        const al_cuda_act_kind ak = act_of(act);
        al_status st;
        if (f->gate.data)
            st = s->rec ? al_cuda_prog_matvec_glu(s->prog, ak, &f->gate, &f->up, &v, up)
                        : al_cuda_matvec_glu(s->cu, ak, &f->gate, &f->up, &v, up);
        else
            st = s->rec ? al_cuda_prog_matvec_act(s->prog, ak, &f->up, &v, up) : al_cuda_matvec_act(s->cu, ak, &f->up, &v, up);
        if (!al_failed(&st)) return mm(s, &f->down, up, nf, out, n, NULL);
        if (st.code != AL_ERR_UNSUPPORTED) return st;
    }
    if (f->gate.data) {
        const al_cuda_weight *W2[2] = {&f->up, &f->gate};
        float *Y2[2] = {up, gate};
        AL_TRY(mm_in(s, W2, 2, in, n, Y2));
        AL_TRY(al_cuda_glu(s->cu, act_of(act), gate, nf, up, nf, up, nf, n, nf));
    } else {
        const al_cuda_weight *W1[1] = {&f->up};
        AL_TRY(mm_in(s, W1, 1, in, n, &up));
        AL_TRY(al_cuda_glu(s->cu, act_of(act), up, nf, NULL, 0, up, nf, n, nf));
    }
    return mm(s, &f->down, up, nf, out, n, NULL);
}

/* MoE as the CPU: softmax router, top-k, unrenormalised weights; experts chosen on the device. */
static al_status ffn_moe(al_cuda_session *s, const g_ffn *f, const float *xn, int64_t n, float *out) {
    const al_hparams *hp = s->hp;
    const int E = hp->n_expert, K = hp->n_expert_used;
    const int64_t d = hp->n_embd, nf = hp->n_ff_expert;
    float *logits = s->t0;
    AL_TRY(mm(s, &f->router, xn, d, logits, n, NULL));
    AL_TRY(al_cuda_moe_route(s->cu, logits, n, E, K, s->moe_ids, s->moe_w));
    AL_TRY(al_cuda_memset(s->cu, out, 0, sizeof(float) * (size_t)(n * d)));
    float *g = s->big, *u = s->big + (int64_t)K * nf, *o = s->t1;
    for (int64_t t = 0; t < n; t++) {
        const int32_t *ids = s->moe_ids + t * K;
        AL_TRY(al_cuda_matmul_id(s->cu, &f->exp_gate, xn + t * d, d, false, g, nf, ids, K));
        AL_TRY(al_cuda_matmul_id(s->cu, &f->exp_up, xn + t * d, d, false, u, nf, ids, K));
        AL_TRY(al_cuda_glu(s->cu, AL_CUDA_ACT_SILU, g, nf, u, nf, g, nf, K, nf));
        AL_TRY(al_cuda_matmul_id(s->cu, &f->exp_down, g, nf, true, o, d, ids, K));
        AL_TRY(al_cuda_weighted_sum(s->cu, o, d, s->moe_w + t * K, K, out + t * d, d));
    }
    return al_ok();
}

static al_status zamba_shared(al_cuda_session *s, int il, int64_t n, float *out) {
    const al_hparams *hp = s->hp;
    const g_layer *L = &s->cm->layers[il];
    const g_zshared *z = &s->cm->zs[L->z_block];
    const int64_t d = hp->n_embd, d2 = 2 * d, nf = hp->n_ff;
    float *cat = s->xn;
    AL_TRY(al_cuda_concat(s->cu, s->h, d, s->emb0, d, cat, n));
    AL_TRY(al_cuda_rms_norm(s->cu, cat, d2, z->attn_norm, cat, d2, n, d2, d2, hp->norm_eps));
    g_in zin = plain_in(cat, d2);
    AL_TRY(attention(s, il, &z->attn, L, &zin, n, out));
    float *xn = s->xn;
    AL_TRY(al_cuda_rms_norm(s->cu, out, d, z->ffn_norm, xn, d, n, d, d, hp->norm_eps));
    float *gu = s->t3;
    AL_TRY(mm(s, &z->gate_up, xn, d, gu, n, NULL));
    AL_TRY(mm_adapter(s, L->z_ad[3], xn, d, gu, n));
    float *act = s->t0;
    AL_TRY(al_cuda_glu(s->cu, act_of(hp->ffn_act), gu, 2 * nf, gu + nf, 2 * nf, act, nf, n, nf));
    float *ff = s->t1;
    AL_TRY(mm(s, &z->down, act, nf, ff, n, NULL));
    return mm(s, &L->z_linear, ff, d, out, n, NULL);
}

/* Everything of a micro-batch after the staging copy: embeddings to the final norm (and, for
 * decode, the LM head). Enqueue-only, so it can be captured. */
static al_status forward_body(al_cuda_session *s, int64_t n, bool lm_head_1) {
    al_cuda_model *cm = s->cm;
    const al_hparams *hp = s->hp;
    const int64_t d = hp->n_embd;
    al_cuda *c = s->cu;
    if (s->rec) { /* the persistent kernel takes token and position as arguments (decode_step) */
        AL_TRY(al_cuda_prog_embed(s->prog, &cm->tok_embd, s->h));
    } else {
        if (cm->first == 0) { /* else cpu_front has put the CPU layers' output in s->h (and s->emb0) */
            AL_TRY(al_cuda_get_rows(c, &cm->tok_embd, s->d_stage + 1, n, s->h, d));
            if (hp->arch == AL_ARCH_ZAMBA2) AL_TRY(al_cuda_copy_async(c, s->emb0, s->h, sizeof(float) * (size_t)(n * d)));
        }
        if (!s->bat) AL_TRY(al_cuda_positions(c, s->d_pos, n, s->d_stage, 0)); /* batched: staged per row */
    }
    /* h += delta is deferred into the next norm (al_cuda_add_rms_norm, or the fused products of
     * decode, which move the residual stream between s->h and s->h2: hc names where it is) */
    float *hc = s->h;
    bool pending = false;
    for (int il = cm->first; il < hp->n_layer; il++) {
        const g_layer *L = &cm->layers[il];
        al_mixer mx = hp->layer_mixer[il];
        al_ffn ff = hp->layer_ffn[il];
        if (hp->layer_shared[il]) { /* zamba2: never fused, so hc == s->h */
            if (pending) AL_TRY(al_cuda_add(c, s->h, s->delta, s->h, n * d));
            pending = false;
            AL_TRY(zamba_shared(s, il, n, s->delta));
            AL_TRY(al_cuda_add(c, s->h, s->delta, s->xin, n * d));
        }
        if (mx != AL_MIXER_NONE) {
            g_in in = plain_in(s->xn, d);
            if (hp->layer_shared[il]) AL_TRY(al_cuda_rms_norm(c, s->xin, d, L->attn_norm, s->xn, d, n, d, d, hp->norm_eps));
            else AL_TRY(block_in(s, &hc, pending, L->attn_norm, n, &in));
            if (mx == AL_MIXER_ATTN) AL_TRY(attention(s, il, &L->attn, NULL, &in, n, s->delta));
            else if (mx == AL_MIXER_MAMBA2) AL_TRY(mamba2(s, il, &in, n, s->delta));
            else AL_TRY(mamba1(s, il, s->xn, n, s->delta));
            pending = true;
        }
        if (ff != AL_FFN_NONE) {
            const float *nw = L->ffn_norm ? L->ffn_norm : L->attn_norm;
            g_in in;
            AL_TRY(block_in(s, &hc, pending, nw, n, &in));
            if (ff == AL_FFN_MOE) AL_TRY(ffn_moe(s, &L->ffn, s->xn, n, s->delta));
            else AL_TRY(ffn_dense(s, &L->ffn, ff == AL_FFN_RELU2 ? AL_ACT_RELU2 : hp->ffn_act, &in, n, s->delta));
            pending = true;
        }
    }
    if (lm_head_1 && n == 1) {
        g_in in;
        AL_TRY(block_in(s, &hc, pending, cm->out_norm, 1, &in));
        const al_cuda_weight *WO[1] = {&cm->output};
        return mm_in(s, WO, 1, &in, 1, &s->logits);
    }
    if (pending) AL_TRY(al_cuda_add(c, hc, s->delta, hc, n * d));
    if (lm_head_1) {
        AL_TRY(al_cuda_rms_norm(c, hc + (n - 1) * d, d, cm->out_norm, s->xn, d, 1, d, d, hp->norm_eps));
        AL_TRY(mm(s, &cm->output, s->xn, d, s->logits, 1, NULL));
    }
    return al_ok();
}

/* persist_tagged AL_TAG_AUTO: the tagged hand-off saves a fixed ~1.4 us grid barrier per op, while
 * its {value, tag} words double what every block reads of an op's input (k floats) and each reader
 * polls its own: on an H100 (docs/benchmarks-cuda.md v16, v18, v20) level 3 gained 3 % for Qwen3-0.6B
 * (k = 1024) and lost 12 % for Llama-3.2-1B (2048), 1 % for Mamba2-1.3B, and Qwen3 gained 1 % more
 * where QKV -> attention keeps its barrier (edges product -> product and attention -> wo); so those
 * edges for transformers with n_embd <= 1024 and no SSM layers, else off */
static int tag_auto(const al_cuda_session *s) {
    if (s->hp->n_embd > 1024) return AL_TAG_OFF;
    for (int il = s->cm->first; il < s->hp->n_layer; il++)
        if (s->cm->layers[il].m2.in_proj.data || s->cm->layers[il].m1.in_proj.data) return AL_TAG_OFF;
    return AL_TAG_SMALL;
}

/* Records the decode step (forward_body with s->rec) into the persistent program; on any op without
 * a recorded form decode stays on the graph path and s->prog_why says why. */
static void prog_build(al_cuda_session *s, const al_cuda_session_params *p) {
    if (!s->fuse) {
        s->prog_why = al_err(AL_ERR_UNSUPPORTED, "persistent decode: zamba2, Mamba-1 and MoE layers are not fused");
        return;
    }
    al_status st = al_cuda_prog_init(&s->prog, s->cu);
    if (!al_failed(&st)) {
        al_cuda_prog_set_attn_split(s->prog, p->persist_attn_keys);
        s->rec = true;
        st = forward_body(s, 1, true);
        s->rec = false;
        al_cuda_prog_set_rows(s->prog, p->persist_rows);
        al_cuda_prog_set_merge(s->prog, !p->persist_no_merge);
        al_cuda_prog_set_unit_pre(s->prog, !p->persist_no_unit_pre);
        al_cuda_prog_set_poller(s->prog, p->persist_poller);
        al_cuda_prog_set_cluster(s->prog, p->persist_cluster);
        al_cuda_prog_set_prefetch_ahead(s->prog, p->persist_ahead);
        al_cuda_prog_set_norm_prefetch(s->prog, p->persist_norm_prefetch);
        al_cuda_prog_set_tagged(s->prog, p->persist_tagged < 0 ? tag_auto(s) : p->persist_tagged);
        al_cuda_prog_set_tag_scope(s->prog, p->persist_tag_gpu);
        al_cuda_prog_set_tag_nap(s->prog, p->persist_tag_nap);
        al_cuda_prog_set_kernel_ref(s->prog, p->persist_kernel_ref);
        al_status fin = al_cuda_prog_finish(s->prog, p->persist_blocks_per_sm);
        if (!al_failed(&st)) st = fin;
    }
    if (al_failed(&st)) {
        al_cuda_prog_free(s->prog);
        s->prog = NULL;
        s->prog_why = st;
    }
}

static al_status stage(al_cuda_session *s, const int32_t *tok, int64_t n) {
    s->h_stage[0] = s->pos;
    memcpy(s->h_stage + 1, tok, sizeof(int32_t) * (size_t)n);
    return al_cuda_copy_async(s->cu, s->d_stage, s->h_stage, sizeof(int32_t) * (size_t)(n + 1));
}

/* Partial offload: the CPU layers of row i's tokens (n of them, session b) into row i.. of the leader
 * s's pinned buffers; then (last) the rows [0, rows) up into s->h and s->emb0, enqueued before the
 * device part (outside any graph). */
static al_status cpu_front(al_cuda_session *s, al_cuda_session *b, int64_t row, const int32_t *tok, int64_t n) {
    const int64_t d = s->hp->n_embd;
    for (int64_t i = 0; i < n;) {
        const int cnt = (int)(n - i < b->cpu->sc.rows ? n - i : b->cpu->sc.rows);
        AL_TRY(al_forward_hidden(s->cm->m, &b->cpu->sc, b->cpu, tok + i, cnt, s->cm->first, s->h_host + (row + i) * d,
                                 s->emb_host ? s->emb_host + (row + i) * d : NULL));
        i += cnt;
    }
    return al_ok();
}

static al_status cpu_upload(al_cuda_session *s, int64_t rows) {
    const size_t bytes = sizeof(float) * (size_t)(rows * s->hp->n_embd);
    AL_TRY(al_cuda_copy_async(s->cu, s->h, s->h_host, bytes));
    return s->emb_host ? al_cuda_copy_async(s->cu, s->emb0, s->emb_host, bytes) : al_ok();
}

/* logits: copied out of the pinned buffer (or NULL); ref: set to the pinned buffer itself (or NULL) */
static al_status decode_step(al_cuda_session *s, const int32_t *tok, float *logits, const float **ref) {
    al_cuda *c = s->cu;
    if (s->cpu) {
        AL_TRY(cpu_front(s, s, 0, tok, 1));
        AL_TRY(cpu_upload(s, 1));
    }
    bool can_graph = s->use_graph && !s->graph_failed;
    if (!s->prog) AL_TRY(stage(s, tok, 1)); /* the graph and eager paths read token and position from device memory */
    if (s->prog) {
        AL_TRY(al_cuda_prog_run(s->prog, s->pos, tok[0])); /* no staging copy, no embedding launch */
    } else if (can_graph && s->graph && s->graph_gen == al_cuda_scratch_gen(c)) {
        AL_TRY(al_cuda_graph_launch(c, s->graph));
    } else {
        AL_TRY(forward_body(s, 1, true));
        if (can_graph) {
            /* capture the step just run (enqueue only; nothing executes) for the next calls */
            AL_TRY(al_cuda_sync(c));
            al_cuda_graph_free(s->graph);
            s->graph = NULL;
            al_status st = al_cuda_graph_begin(c);
            if (!al_failed(&st)) {
                al_status sb = forward_body(s, 1, true);
                st = al_cuda_graph_end(c, &s->graph);
                if (al_failed(&sb)) st = sb;
            }
            if (al_failed(&st)) {
                al_cuda_graph_free(s->graph);
                s->graph = NULL;
                s->graph_failed = true; /* keep running eagerly */
                s->graph_why = st;
                (void)al_cuda_sync(c); /* clears the capture error */
            } else {
                s->graph_gen = al_cuda_scratch_gen(c);
            }
        }
    }
    if (logits || ref) AL_TRY(al_cuda_copy_async(c, s->h_logits, s->logits, sizeof(float) * (size_t)s->hp->n_vocab));
    AL_TRY(al_cuda_sync(c));
    if (logits && logits != s->h_logits) memcpy(logits, s->h_logits, sizeof(float) * (size_t)s->hp->n_vocab);
    if (ref) *ref = s->h_logits;
    s->pos += 1;
    return al_ok();
}

static al_status forward_ubatch(al_cuda_session *s, const int32_t *tok, int64_t n, float *logits, bool all_logits) {
    if (n == 1 && !all_logits) return decode_step(s, tok, logits, NULL);
    al_cuda *c = s->cu;
    const al_hparams *hp = s->hp;
    const int64_t d = hp->n_embd, V = hp->n_vocab;
    if (s->cpu) {
        AL_TRY(cpu_front(s, s, 0, tok, n));
        AL_TRY(cpu_upload(s, n));
    }
    AL_TRY(stage(s, tok, n));
    AL_TRY(forward_body(s, n, false));
    if (logits) {
        int64_t first = all_logits ? 0 : n - 1, cnt = all_logits ? n : 1;
        AL_TRY(al_cuda_rms_norm(c, s->h + first * d, d, s->cm->out_norm, s->xn, d, cnt, d, d, hp->norm_eps));
        for (int64_t r = 0; r < cnt; r += LOGIT_ROWS) {
            int64_t nr = cnt - r < LOGIT_ROWS ? cnt - r : LOGIT_ROWS;
            AL_TRY(mm(s, &s->cm->output, s->xn + r * d, d, s->logits, nr, NULL));
            AL_TRY(al_cuda_download(c, logits + r * V, s->logits, sizeof(float) * (size_t)(nr * V)));
        }
    } else {
        AL_TRY(al_cuda_sync(c));
    }
    s->pos += (int)n;
    return al_ok();
}

/* n tokens fit after pos and are in the vocabulary */
static al_status check_tokens(const al_cuda_session *s, const int32_t *tokens, int n) {
    if (n <= 0) return al_err(AL_ERR_INVALID, "eval: no tokens");
    if (s->pos + n > s->n_ctx) return al_err(AL_ERR_RANGE, "eval: context full (%d + %d > %d)", s->pos, n, s->n_ctx);
    const int V = s->hp->n_vocab;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V) return al_err(AL_ERR_RANGE, "token id %d out of [0, %d)", tokens[i], V);
    return al_ok();
}

float *al_cuda_session_logits_buffer(al_cuda_session *s) { return s->h_logits; }

al_status al_cuda_session_decode(al_cuda_session *s, int32_t token, const float **logits) {
    if (logits) *logits = NULL;
    AL_TRY(check_tokens(s, &token, 1));
    return decode_step(s, &token, NULL, logits);
}

/* The batched pass after the staging copies: forward_body, final norm and LM head (s->bat set). */
static al_status batch_body(al_cuda_session *s, int n) {
    const al_hparams *hp = s->hp;
    const int64_t d = hp->n_embd;
    AL_TRY(forward_body(s, n, false)); /* leaves the final residual stream in s->h */
    AL_TRY(al_cuda_rms_norm(s->cu, s->h, d, s->cm->out_norm, s->xn, d, n, d, d, hp->norm_eps));
    return mm(s, &s->cm->output, s->xn, d, s->logits, n, NULL);
}

/* Captures the pass just run eagerly (enqueue only) for this set of sessions, into e (a stale
 * entry of the same set) or the least recently used slot. A failed capture leaves batched decode
 * eager for this leader; the eager results stand. */
static al_status batch_capture(al_cuda_session *s, al_cuda_session *const *ss, int n, struct bgraph *e) {
    al_cuda *c = s->cu;
    AL_TRY(al_cuda_sync(c));
    if (!e) {
        e = &s->bg[0];
        for (int k = 1; k < BATCH_GRAPHS; k++)
            if (!s->bg[k].g || (e->g && s->bg[k].used < e->used)) e = &s->bg[k];
    }
    al_cuda_graph_free(e->g);
    memset(e, 0, sizeof *e);
    al_status st = al_cuda_graph_begin(c);
    if (!al_failed(&st)) {
        al_status sb = batch_body(s, n);
        st = al_cuda_graph_end(c, &e->g);
        if (al_failed(&sb)) st = sb;
    }
    if (al_failed(&st)) {
        al_cuda_graph_free(e->g);
        e->g = NULL;
        s->bg_failed = true;
        s->bg_why = st;
        (void)al_cuda_sync(c); /* clears the capture error */
        return al_ok();
    }
    e->n = n;
    for (int i = 0; i < n; i++) e->ids[i] = ss[i]->id;
    e->gen = al_cuda_scratch_gen(c);
    e->used = ++s->bclock;
    return al_ok();
}

int al_cuda_session_batch_graphs(const al_cuda_session *s, al_status *why) {
    int n = 0;
    for (int k = 0; k < BATCH_GRAPHS; k++) n += s->bg[k].g != NULL;
    if (why) *why = s->bg_failed ? s->bg_why : al_ok();
    return n;
}

int al_cuda_session_batch_max(const al_cuda_session *s) {
    const int by_stage = s->ubatch / 2; /* tokens and positions share the staging buffer */
    return by_stage < BATCH_MAX ? by_stage : BATCH_MAX;
}

al_status al_cuda_session_decode_batch(al_cuda_session *const *ss, const int32_t *tok, int n, float *const *logits) {
    if (n <= 0) return al_err(AL_ERR_INVALID, "decode batch: no sessions");
    al_cuda_session *s = ss[0];
    if (n > al_cuda_session_batch_max(s))
        return al_err(AL_ERR_INVALID, "decode batch: %d sessions (at most %d for a micro-batch of %d)", n,
                      al_cuda_session_batch_max(s), s->ubatch);
    for (int i = 0; i < n; i++) {
        if (ss[i]->cm != s->cm) return al_err(AL_ERR_INVALID, "decode batch: sessions of different models");
        for (int j = 0; j < i; j++)
            if (ss[j] == ss[i]) return al_err(AL_ERR_INVALID, "decode batch: session %d appears twice", i);
        if (ss[i]->kv_type != s->kv_type) return al_err(AL_ERR_INVALID, "decode batch: sessions of different KV cache types");
        AL_TRY(check_tokens(ss[i], &tok[i], 1));
    }
    if (n == 1) return decode_step(s, tok, logits[0], NULL);
    al_cuda *c = s->cu;
    const int64_t V = s->hp->n_vocab;
    /* staging: [unused, tok[0..n), pos[0..n)]; tokens at d_stage + 1, positions copied to d_pos */
    s->h_stage[0] = 0;
    memcpy(s->h_stage + 1, tok, sizeof(int32_t) * (size_t)n);
    for (int i = 0; i < n; i++) s->h_stage[1 + n + i] = ss[i]->pos;
    AL_TRY(al_cuda_copy_async(c, s->d_stage, s->h_stage, sizeof(int32_t) * (size_t)(n + 1)));
    AL_TRY(al_cuda_copy_async(c, s->d_pos, s->h_stage + 1 + n, sizeof(int32_t) * (size_t)n));
    /* the rows' K / V caches per layer, for the attention ops' one launch over all rows */
    const int L = s->hp->n_layer;
    for (int il = s->cm->first; il < L; il++)
        for (int i = 0; i < n; i++) {
            s->h_kvtab[((size_t)il * 2) * BATCH_MAX + i] = ss[i]->lc[il].k;
            s->h_kvtab[((size_t)il * 2 + 1) * BATCH_MAX + i] = ss[i]->lc[il].v;
        }
    AL_TRY(al_cuda_copy_async(c, s->d_kvtab, s->h_kvtab, (size_t)L * 2 * BATCH_MAX * sizeof(void *)));
    if (s->cpu) {
        for (int i = 0; i < n; i++) AL_TRY(cpu_front(s, ss[i], i, &tok[i], 1));
        AL_TRY(cpu_upload(s, n));
    }
    struct bgraph *e = NULL; /* this set of sessions' captured pass, if any */
    for (int k = 0; k < BATCH_GRAPHS && !e; k++) {
        struct bgraph *b = &s->bg[k];
        bool same = b->g && b->n == n;
        for (int i = 0; same && i < n; i++) same = b->ids[i] == ss[i]->id;
        if (same) e = b;
    }
    s->bat = ss; /* until the LM head: products in groups of MM_ROWS rows */
    al_status st = al_ok();
    if (e && e->gen == al_cuda_scratch_gen(c)) {
        st = al_cuda_graph_launch(c, e->g);
        e->used = ++s->bclock;
    } else {
        st = batch_body(s, n);
        if (!al_failed(&st) && s->use_graph && !s->bg_failed) st = batch_capture(s, ss, n, e);
    }
    s->bat = NULL;
    AL_TRY(st);
    for (int i = 0; i < n; i++) AL_TRY(al_cuda_download(c, logits[i], s->logits + i * V, sizeof(float) * (size_t)V));
    for (int i = 0; i < n; i++) ss[i]->pos += 1;
    return al_ok();
}

al_status al_cuda_session_eval(al_cuda_session *s, const int32_t *tokens, int n, float *logits, bool all_logits) {
    AL_TRY(check_tokens(s, tokens, n));
    const int V = s->hp->n_vocab;
    for (int i = 0; i < n; i += s->ubatch) {
        int cnt = n - i < s->ubatch ? n - i : s->ubatch;
        bool last = i + cnt == n;
        float *lg = all_logits ? logits + (size_t)i * (size_t)V : (last ? logits : NULL);
        AL_TRY(forward_ubatch(s, tokens + i, cnt, lg, all_logits));
    }
    return al_ok();
}
