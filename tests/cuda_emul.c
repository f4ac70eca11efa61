/*
 * cuda_emul.c — the device API of alloy/cuda.h that the GPU forward pass (src/cuda/cuda_model.c)
 * and the GPU serving backend (src/cuda/cuda_engine.c) call, emulated on the CPU with the CPU
 * reference ops, for testing those files' host logic (buffers, layer order, positions, per-session
 * state, batched decode, the engine backend) where there is no GPU — in CI. Test-only: linked into
 * test_cuda_models_emul in builds without nvcc, never into liballoy.
 *
 * "Device" memory is host memory; every op runs at once (the stream is synchronous) unless a graph
 * is being captured: then each op's arguments are recorded as they are at the call (values, and
 * pointers to memory read at replay), as CUDA graphs record kernel parameters, and
 * al_cuda_graph_launch replays them — so host values baked into a captured step show up as wrong
 * results here as on a GPU. Synchronising, host copies and growing the scratch inside a capture are
 * errors, as in CUDA. The fused decode products (al_cuda_matvec_*: residual add, RMSNorm or the
 * Mamba-2 gate, then the products) exist for the integer kernels' types (Q8_0, Q4_K, Q5_K, Q6_K) as
 * on the GPU, and a persistent program is its recorded ops run in order at al_cuda_prog_run (token
 * and position of the run read by the embedding, attention and SSM ops), so the forward pass's
 * recording path runs too. Products are al_cpu_matmul (the CPU's int8 activation path for
 * quantized weights, as the GPU's). Nothing here measures the GPU's kernels: test_cuda_ops and
 * test_cuda_models on a device do.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloy/cuda.h"
#include "alloy/ops.h"
#include "alloy/quant.h"

/* one recorded op: run(c, args) */
typedef al_status (*emu_fn)(al_cuda *c, const void *args);
typedef struct emu_op {
    emu_fn run;
    void *args;
} emu_op;

struct al_cuda_graph {
    emu_op *ops;
    int n, cap;
};

struct al_cuda {
    al_cpu *cpu;
    void *scratch;
    size_t scratch_size;
    uint64_t scratch_gen;
    al_cuda_graph *cap; /* the graph being captured, or NULL */
    al_status cap_err;  /* the first error inside the capture */
};

static void graph_free(al_cuda_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n; i++) free(g->ops[i].args);
    free(g->ops);
    free(g);
}

static al_status graph_add(al_cuda_graph *g, emu_fn run, const void *args, size_t size) {
    if (g->n == g->cap) {
        int cap = g->cap ? 2 * g->cap : 64;
        emu_op *o = realloc(g->ops, sizeof *o * (size_t)cap);
        if (!o) return al_err(AL_ERR_NOMEM, "emulated CUDA device: out of memory");
        g->ops = o;
        g->cap = cap;
    }
    void *a = malloc(size);
    if (!a) return al_err(AL_ERR_NOMEM, "emulated CUDA device: out of memory");
    memcpy(a, args, size);
    g->ops[g->n++] = (emu_op){run, a};
    return al_ok();
}

/* runs an op now, or records it into the graph being captured */
static al_status enqueue(al_cuda *c, emu_fn run, const void *args, size_t size) {
    if (!c->cap) return run(c, args);
    al_status st = graph_add(c->cap, run, args, size);
    if (al_failed(&st)) c->cap_err = st;
    return st;
}

/* an op taking the arguments of struct a_<name>, run by r_<name> */
#define ENQ(c, name, ...) enqueue((c), r_##name, &(a_##name){__VA_ARGS__}, sizeof(a_##name))

static al_status in_capture(al_cuda *c, const char *what) {
    if (!c->cap) return al_ok();
    return c->cap_err = al_err(AL_ERR_IO, "emulated CUDA device: %s during graph capture", what);
}


int al_cuda_device_count(void) { return 1; }

al_status al_cuda_init(al_cuda **out, int device) {
    *out = NULL;
    if (device != 0) return al_err(AL_ERR_NOT_FOUND, "emulated CUDA device: no device %d", device);
    al_cuda *c = calloc(1, sizeof *c);
    if (!c) return al_err(AL_ERR_NOMEM, "emulated CUDA device: out of memory");
    al_status st = al_cpu_init(&c->cpu, 1, al_isa_best());
    if (al_failed(&st)) {
        free(c);
        return st;
    }
    *out = c;
    return al_ok();
}

void al_cuda_free(al_cuda *c) {
    if (!c) return;
    graph_free(c->cap);
    al_cpu_free(c->cpu);
    free(c->scratch);
    free(c);
}

al_status al_cuda_sync(al_cuda *c) { return in_capture(c, "synchronize"); }
void al_cuda_describe(const al_cuda *c, char *buf, size_t size) { (void)c, snprintf(buf, size, "emulated CUDA device (CPU)"); }

al_status al_cuda_alloc(al_cuda *c, void **out, size_t bytes) {
    (void)c;
    *out = calloc(1, bytes ? bytes : 1);
    return *out ? al_ok() : al_err(AL_ERR_NOMEM, "emulated CUDA device: out of memory (%zu bytes)", bytes);
}
void al_cuda_release(al_cuda *c, void *p) { (void)c, free(p); }
al_status al_cuda_upload(al_cuda *c, void *dst, const void *src, size_t bytes) {
    AL_TRY(in_capture(c, "synchronous copy"));
    if (bytes) memcpy(dst, src, bytes);
    return al_ok();
}
al_status al_cuda_download(al_cuda *c, void *dst, const void *src, size_t bytes) { return al_cuda_upload(c, dst, src, bytes); }

typedef struct a_copy {
    void *dst;
    const void *src;
    size_t bytes;
} a_copy;
static al_status r_copy(al_cuda *c, const void *p) {
    const a_copy *a = p;
    (void)c;
    if (a->bytes) memmove(a->dst, a->src, a->bytes);
    return al_ok();
}
al_status al_cuda_copy_async(al_cuda *c, void *dst, const void *src, size_t bytes) { return ENQ(c, copy, dst, src, bytes); }
al_status al_cuda_host_alloc(void **out, size_t bytes) { return al_cuda_alloc(NULL, out, bytes); }
void al_cuda_host_free(void *p) { free(p); }

typedef struct a_memset {
    void *p;
    int value;
    size_t bytes;
} a_memset;
static al_status r_memset(al_cuda *c, const void *p) {
    const a_memset *a = p;
    (void)c;
    memset(a->p, a->value, a->bytes);
    return al_ok();
}
al_status al_cuda_memset(al_cuda *c, void *p, int value, size_t bytes) { return ENQ(c, memset, p, value, bytes); }

al_status al_cuda_scratch(al_cuda *c, size_t bytes, void **out) {
    if (bytes > c->scratch_size) {
        AL_TRY(in_capture(c, "growing the scratch"));
        free(c->scratch);
        c->scratch = malloc(bytes);
        c->scratch_size = c->scratch ? bytes : 0;
        c->scratch_gen++;
        if (!c->scratch) return al_err(AL_ERR_NOMEM, "emulated CUDA device: scratch of %zu bytes", bytes);
    }
    *out = c->scratch;
    return al_ok();
}
uint64_t al_cuda_scratch_gen(const al_cuda *c) { return c->scratch_gen; }

/* ---- graphs: recorded ops, replayed in order ---- */
al_status al_cuda_graph_begin(al_cuda *c) {
    if (c->cap) return al_err(AL_ERR_INVALID, "emulated CUDA device: a capture is already running");
    c->cap = calloc(1, sizeof *c->cap);
    c->cap_err = al_ok();
    return c->cap ? al_ok() : al_err(AL_ERR_NOMEM, "emulated CUDA device: out of memory");
}
al_status al_cuda_graph_end(al_cuda *c, al_cuda_graph **out) {
    *out = NULL;
    al_cuda_graph *g = c->cap;
    c->cap = NULL;
    if (!g) return al_err(AL_ERR_INVALID, "emulated CUDA device: no capture running");
    if (al_failed(&c->cap_err)) {
        graph_free(g);
        return c->cap_err;
    }
    *out = g;
    return al_ok();
}
al_status al_cuda_graph_launch(al_cuda *c, al_cuda_graph *g) {
    AL_TRY(in_capture(c, "graph launch"));
    for (int i = 0; i < g->n; i++) AL_TRY(g->ops[i].run(c, g->ops[i].args));
    return al_ok();
}
void al_cuda_graph_free(al_cuda_graph *g) { graph_free(g); }

/* ---- weights: contiguous matrices of rows ---- */

static al_status weight_copy(const al_tensor *t, int64_t n_mat, const al_tensor *stack, al_cuda_weight *w) {
    memset(w, 0, sizeof *w);
    w->type = t->type;
    w->k = t->ne[0];
    w->n_out = t->ne[1];
    w->n_mat = n_mat;
    w->row_bytes = al_type_row_size(t->type, t->ne[0]);
    w->mat_bytes = w->row_bytes * (size_t)w->n_out;
    char *p = malloc(w->mat_bytes * (size_t)n_mat);
    if (!p) return al_err(AL_ERR_NOMEM, "emulated CUDA device: weight of %zu bytes", w->mat_bytes * (size_t)n_mat);
    for (int64_t i = 0; i < n_mat; i++) {
        const al_tensor *src = stack ? &stack[i] : t;
        const char *base = (const char *)src->data + (stack ? 0 : (size_t)i * src->nb[2]);
        for (int64_t r = 0; r < w->n_out; r++)
            memcpy(p + (size_t)i * w->mat_bytes + (size_t)r * w->row_bytes, base + (size_t)r * src->nb[1], w->row_bytes);
    }
    w->data = p;
    return al_ok();
}

al_status al_cuda_weight_upload(al_cuda *c, const al_tensor *t, al_cuda_weight *out) {
    (void)c;
    return weight_copy(t, t->ndim >= 3 ? t->ne[2] : 1, NULL, out);
}

al_status al_cuda_weight_upload_stack(al_cuda *c, const al_tensor *ts, int n, al_cuda_weight *out) {
    (void)c;
    if (n <= 0) return al_err(AL_ERR_INVALID, "cuda upload: empty stack");
    for (int i = 1; i < n; i++)
        if (ts[i].type != ts[0].type || ts[i].ne[0] != ts[0].ne[0] || ts[i].ne[1] != ts[0].ne[1])
            return al_err(AL_ERR_INVALID, "cuda upload: stacked tensors differ in shape or type");
    return weight_copy(&ts[0], n, ts, out);
}

void al_cuda_weight_free(al_cuda *c, al_cuda_weight *w) {
    (void)c;
    if (!w) return;
    free(w->data);
    memset(w, 0, sizeof *w);
}

/* matrix i of W as a borrowed 2-D tensor */
static al_tensor mat_view(const al_cuda_weight *W, int64_t i) {
    al_tensor t;
    const int64_t ne[2] = {W->k, W->n_out};
    al_tensor_view(&t, W->type, 2, ne, (char *)W->data + (size_t)i * W->mat_bytes);
    return t;
}

typedef struct a_matmul {
    const al_cuda_weight *W;
    const float *X;
    int64_t ldx;
    float *Y;
    int64_t ldy, m;
} a_matmul;
static al_status r_matmul(al_cuda *c, const void *p) {
    const a_matmul *a = p;
    const al_tensor t = mat_view(a->W, 0);
    return al_cpu_matmul(c->cpu, &t, a->X, a->ldx, a->Y, a->ldy, a->m);
}
al_status al_cuda_matmul(al_cuda *c, const al_cuda_weight *W, const float *X, int64_t ldx, float *Y, int64_t ldy, int64_t m) {
    return ENQ(c, matmul, W, X, ldx, Y, ldy, m);
}

al_status al_cuda_matmul_n(al_cuda *c, const al_cuda_weight *const *W, int n, const float *X, int64_t ldx, float *const *Y,
                           int64_t m) {
    for (int i = 0; i < n; i++) AL_TRY(al_cuda_matmul(c, W[i], X, ldx, Y[i], W[i]->n_out, m));
    return al_ok();
}

typedef struct a_matmul_id {
    const al_cuda_weight *W;
    const float *X;
    int64_t ldx;
    bool x_per_id;
    float *Y;
    int64_t ldy;
    const int32_t *ids;
    int n_ids;
} a_matmul_id;
static al_status r_matmul_id(al_cuda *c, const void *p) {
    const a_matmul_id *a = p;
    for (int j = 0; j < a->n_ids; j++) {
        const int32_t id = a->ids[j];
        if (id < 0 || id >= a->W->n_mat) return al_err(AL_ERR_RANGE, "matmul_id: id %d of %lld", id, (long long)a->W->n_mat);
        const al_tensor t = mat_view(a->W, id);
        AL_TRY(al_cpu_matmul(c->cpu, &t, a->X + (a->x_per_id ? j * a->ldx : 0), a->ldx, a->Y + j * a->ldy, a->ldy, 1));
    }
    return al_ok();
}
al_status al_cuda_matmul_id(al_cuda *c, const al_cuda_weight *W, const float *X, int64_t ldx, bool x_per_id, float *Y,
                            int64_t ldy, const int32_t *ids, int n_ids) {
    return ENQ(c, matmul_id, W, X, ldx, x_per_id, Y, ldy, ids, n_ids);
}

typedef struct a_get_rows {
    const al_cuda_weight *W;
    const int32_t *ids;
    int64_t n;
    float *out;
    int64_t ldo;
} a_get_rows;
static al_status r_get_rows(al_cuda *c, const void *p) {
    const a_get_rows *a = p;
    (void)c;
    for (int64_t t = 0; t < a->n; t++)
        AL_TRY(al_dequantize_row(a->W->type, (const char *)a->W->data + (size_t)a->ids[t] * a->W->row_bytes, a->out + t * a->ldo,
                                 a->W->k));
    return al_ok();
}
al_status al_cuda_get_rows(al_cuda *c, const al_cuda_weight *W, const int32_t *ids, int64_t n, float *out, int64_t ldo) {
    return ENQ(c, get_rows, W, ids, n, out, ldo);
}

/* ---- element-wise and normalisation ---- */

typedef struct a_rms {
    const float *x;
    int64_t ldx;
    const float *w;
    float *y;
    int64_t ldy, rows, n, group;
    float eps;
} a_rms;
static al_status r_rms(al_cuda *c, const void *p) {
    const a_rms *a = p;
    (void)c;
    for (int64_t r = 0; r < a->rows; r++) al_op_rms_norm(a->x + r * a->ldx, a->w, a->y + r * a->ldy, 1, a->n, a->group, a->eps);
    return al_ok();
}
al_status al_cuda_rms_norm(al_cuda *c, const float *x, int64_t ldx, const float *w, float *y, int64_t ldy, int64_t rows,
                           int64_t n, int64_t group, float eps) {
    return ENQ(c, rms, x, ldx, w, y, ldy, rows, n, group, eps);
}

typedef struct a_add_rms {
    float *h;
    const float *d, *w;
    float *y;
    int64_t rows, n;
    float eps;
} a_add_rms;
static al_status r_add_rms(al_cuda *c, const void *p) {
    const a_add_rms *a = p;
    (void)c;
    al_op_add(a->h, a->d, a->h, a->rows * a->n);
    al_op_rms_norm(a->h, a->w, a->y, a->rows, a->n, a->n, a->eps);
    return al_ok();
}
al_status al_cuda_add_rms_norm(al_cuda *c, float *h, const float *d, const float *w, float *y, int64_t rows, int64_t n,
                               float eps) {
    return ENQ(c, add_rms, h, d, w, y, rows, n, eps);
}

static void act_apply(al_cuda_act_kind act, const float *x, float *y, int64_t n) {
    switch (act) {
    case AL_CUDA_ACT_SILU: al_op_silu(x, y, n); break;
    case AL_CUDA_ACT_GELU_TANH: al_op_gelu_tanh(x, y, n); break;
    case AL_CUDA_ACT_GELU_ERF: al_op_gelu_erf(x, y, n); break;
    case AL_CUDA_ACT_RELU2: al_op_relu2(x, y, n); break;
    }
}

typedef struct a_gated {
    float *y;
    int64_t ldy;
    const float *z;
    int64_t ldz;
    const float *w;
    int64_t rows, n, group;
    float eps;
} a_gated;
static al_status r_gated(al_cuda *c, const void *p) {
    const a_gated *a = p;
    (void)c;
    float *g = malloc(sizeof(float) * (size_t)a->n);
    if (!g) return al_err(AL_ERR_NOMEM, "emulated CUDA device: out of memory");
    for (int64_t r = 0; r < a->rows; r++) {
        al_op_silu(a->z + r * a->ldz, g, a->n);
        for (int64_t i = 0; i < a->n; i++) g[i] *= a->y[r * a->ldy + i];
        al_op_rms_norm(g, a->w, a->y + r * a->ldy, 1, a->n, a->group, a->eps);
    }
    free(g);
    return al_ok();
}
al_status al_cuda_gated_rms_norm(al_cuda *c, float *y, int64_t ldy, const float *z, int64_t ldz, const float *w, int64_t rows,
                                 int64_t n, int64_t group, float eps) {
    return ENQ(c, gated, y, ldy, z, ldz, w, rows, n, group, eps);
}

typedef struct a_glu {
    al_cuda_act_kind act;
    const float *g;
    int64_t ldg;
    const float *u;
    int64_t ldu;
    float *y;
    int64_t ldy, rows, n;
} a_glu;
static al_status r_glu(al_cuda *c, const void *p) {
    const a_glu *a = p;
    (void)c;
    float *t = malloc(sizeof(float) * (size_t)a->n); /* act(g) apart: y may alias g or u */
    if (!t) return al_err(AL_ERR_NOMEM, "emulated CUDA device: out of memory");
    for (int64_t r = 0; r < a->rows; r++) {
        act_apply(a->act, a->g + r * a->ldg, t, a->n);
        for (int64_t i = 0; i < a->n; i++) a->y[r * a->ldy + i] = a->u ? t[i] * a->u[r * a->ldu + i] : t[i];
    }
    free(t);
    return al_ok();
}
al_status al_cuda_glu(al_cuda *c, al_cuda_act_kind act, const float *g, int64_t ldg, const float *u, int64_t ldu, float *y,
                      int64_t ldy, int64_t rows, int64_t n) {
    return ENQ(c, glu, act, g, ldg, u, ldu, y, ldy, rows, n);
}

typedef struct a_add {
    const float *a, *b;
    float *y;
    int64_t n;
} a_add;
static al_status r_add(al_cuda *c, const void *p) {
    const a_add *a = p;
    (void)c;
    al_op_add(a->a, a->b, a->y, a->n);
    return al_ok();
}
al_status al_cuda_add(al_cuda *c, const float *a, const float *b, float *y, int64_t n) { return ENQ(c, add, a, b, y, n); }

typedef struct a_bias {
    float *y;
    int64_t ldy;
    const float *b;
    int64_t rows, n;
} a_bias;
static al_status r_bias(al_cuda *c, const void *p) {
    const a_bias *a = p;
    (void)c;
    for (int64_t r = 0; r < a->rows; r++) al_op_add(a->y + r * a->ldy, a->b, a->y + r * a->ldy, a->n);
    return al_ok();
}
al_status al_cuda_add_bias(al_cuda *c, float *y, int64_t ldy, const float *b, int64_t rows, int64_t n) {
    return ENQ(c, bias, y, ldy, b, rows, n);
}

typedef struct a_concat {
    const float *a;
    int64_t na;
    const float *b;
    int64_t nb;
    float *y;
    int64_t rows;
} a_concat;
static al_status r_concat(al_cuda *c, const void *p) {
    const a_concat *a = p;
    (void)c;
    for (int64_t r = 0; r < a->rows; r++) {
        memmove(a->y + r * (a->na + a->nb), a->a + r * a->na, sizeof(float) * (size_t)a->na);
        memmove(a->y + r * (a->na + a->nb) + a->na, a->b + r * a->nb, sizeof(float) * (size_t)a->nb);
    }
    return al_ok();
}
al_status al_cuda_concat(al_cuda *c, const float *a, int64_t na, const float *b, int64_t nb, float *y, int64_t rows) {
    return ENQ(c, concat, a, na, b, nb, y, rows);
}

typedef struct a_positions {
    int32_t *pos;
    int64_t n;
    const int32_t *base;
    int32_t base_host;
} a_positions;
static al_status r_positions(al_cuda *c, const void *p) {
    const a_positions *a = p;
    (void)c;
    const int32_t b = a->base ? *a->base : a->base_host;
    for (int64_t t = 0; t < a->n; t++) a->pos[t] = b + (int32_t)t;
    return al_ok();
}
al_status al_cuda_positions(al_cuda *c, int32_t *pos, int64_t n, const int32_t *base, int32_t base_host) {
    return ENQ(c, positions, pos, n, base, base_host);
}

/* ---- attention ---- */

static void row_store(void *cache, al_type kv_type, int64_t row, const float *src, int64_t n) {
    if (kv_type == AL_TYPE_F16) {
        uint16_t *d = (uint16_t *)cache + row * n;
        for (int64_t i = 0; i < n; i++) d[i] = al_f32_to_f16(src[i]);
    } else {
        memcpy((float *)cache + row * n, src, sizeof(float) * (size_t)n);
    }
}

static al_status r_qkv(al_cuda *c, const void *p) {
    const al_cuda_qkv_args *a = p;
    (void)c;
    const int hd = a->head_dim;
    const int64_t kvd = (int64_t)a->n_head_kv * hd, qd = (int64_t)a->n_head * hd;
    const al_rope_cfg rc = {a->rope_mode, a->n_dims, 0.0f, NULL};
    float *kt = malloc(sizeof(float) * (size_t)kvd);
    if (!kt) return al_err(AL_ERR_NOMEM, "emulated CUDA device: out of memory");
    for (int64_t t = 0; t < a->n_tok; t++) {
        float *q = a->q + t * qd;
        memcpy(kt, a->k + t * kvd, sizeof(float) * (size_t)kvd);
        if (a->q_norm) al_op_rms_norm(q, a->q_norm, q, a->n_head, hd, hd, a->eps);
        if (a->k_norm) al_op_rms_norm(kt, a->k_norm, kt, a->n_head_kv, hd, hd, a->eps);
        if (a->rope_mode) {
            al_op_rope(q, 1, a->n_head, hd, &a->pos[t], &rc, a->inv_freq);
            al_op_rope(kt, 1, a->n_head_kv, hd, &a->pos[t], &rc, a->inv_freq);
        }
        row_store(a->kcs ? a->kcs[t] : a->kc, a->kv_type, a->pos[t], kt, kvd); /* tables: read when the op runs */
        row_store(a->vcs ? a->vcs[t] : a->vc, a->kv_type, a->pos[t], a->v + t * kvd, kvd);
    }
    free(kt);
    return al_ok();
}
al_status al_cuda_qkv_post(al_cuda *c, const al_cuda_qkv_args *a) { return enqueue(c, r_qkv, a, sizeof *a); }

static al_status r_attn1(al_cuda *c, const al_cuda_attn_args *a) {
    const int64_t n_past = a->d_n_past ? *a->d_n_past : a->n_past, len = n_past + a->n_tok;
    const int64_t kvd = (int64_t)a->n_head_kv * a->head_dim;
    if (len > a->n_ctx) return al_err(AL_ERR_RANGE, "attention: %lld keys in a cache of %d", (long long)len, a->n_ctx);
    const float *kc = a->kc, *vc = a->vc;
    float *kf = NULL, *vf = NULL;
    if (a->kv_type == AL_TYPE_F16) { /* the CPU op reads float32 caches */
        kf = malloc(sizeof(float) * (size_t)(len * kvd));
        vf = malloc(sizeof(float) * (size_t)(len * kvd));
        if (!kf || !vf) {
            free(kf);
            free(vf);
            return al_err(AL_ERR_NOMEM, "emulated CUDA device: out of memory");
        }
        for (int64_t i = 0; i < len * kvd; i++) {
            kf[i] = al_f16_to_f32(((const uint16_t *)a->kc)[i]);
            vf[i] = al_f16_to_f32(((const uint16_t *)a->vc)[i]);
        }
        kc = kf;
        vc = vf;
    }
    float *scratch = malloc(sizeof(float) * (size_t)len);
    al_status st = scratch ? al_ok() : al_err(AL_ERR_NOMEM, "emulated CUDA device: out of memory");
    if (!al_failed(&st)) {
        al_attn_args aa = {a->q, kc, vc, a->out, a->n_tok, n_past, a->n_head, a->n_head_kv, a->head_dim, a->window, a->scale,
                           scratch, al_cpu_isa(c->cpu)};
        al_op_attention(NULL, &aa);
    }
    free(scratch);
    free(kf);
    free(vf);
    return st;
}
/* n_seq >= 2: each sequence on its own, its caches and position read from the device tables now */
static al_status r_attn(al_cuda *c, const void *p) {
    const al_cuda_attn_args *a = p;
    if (a->n_seq <= 1) return r_attn1(c, a);
    const int64_t qd = (int64_t)a->n_head * a->head_dim;
    for (int i = 0; i < a->n_seq; i++) {
        al_cuda_attn_args one = *a;
        one.q = a->q + i * qd;
        one.out = a->out + i * qd;
        one.kc = a->kcs[i];
        one.vc = a->vcs[i];
        one.d_n_past = a->d_n_past + i;
        one.n_seq = 1;
        AL_TRY(r_attn1(c, &one));
    }
    return al_ok();
}
al_status al_cuda_attention(al_cuda *c, const al_cuda_attn_args *a) {
    if (a->n_seq > 1 && (a->n_tok != 1 || !a->d_n_past || !a->kcs || !a->vcs))
        return al_err(AL_ERR_INVALID, "cuda attention: %d sequences need one token each, device positions and cache tables", a->n_seq);
    if (a->n_tok > 1 && a->d_n_past) return al_err(AL_ERR_INVALID, "cuda attention: device n_past only for decode");
    return enqueue(c, r_attn, a, sizeof *a);
}

/* ---- state-space ops ---- */

typedef struct a_conv {
    const float *x;
    int64_t ldx, n_tok;
    int ch, k;
    const float *w, *b;
    float *state, *y;
    int64_t ldy;
    bool silu;
} a_conv;
static al_status r_conv(al_cuda *c, const void *p) {
    const a_conv *a = p;
    (void)c;
    for (int64_t t = 0; t < a->n_tok; t++)
        al_op_conv1d_causal(a->x + t * a->ldx, 1, a->ch, a->k, a->w, a->b, a->state, a->y + t * a->ldy, a->silu);
    return al_ok();
}
al_status al_cuda_conv1d_causal(al_cuda *c, const float *x, int64_t ldx, int64_t n_tok, int ch, int k, const float *w,
                                const float *b, float *state, float *y, int64_t ldy, bool apply_silu) {
    return ENQ(c, conv, x, ldx, n_tok, ch, k, w, b, state, y, ldy, apply_silu);
}

typedef struct a_dt {
    const float *raw;
    int64_t ld_raw;
    const float *bias;
    float *dt;
    int64_t n_tok;
    int H;
    float floor_, lo, hi;
} a_dt;
static al_status r_dt(al_cuda *c, const void *p) {
    const a_dt *a = p;
    (void)c;
    for (int64_t t = 0; t < a->n_tok; t++)
        for (int h = 0; h < a->H; h++) {
            float v = al_softplus(a->raw[t * a->ld_raw + h] + (a->bias ? a->bias[h] : 0.0f));
            v = v > a->floor_ ? v : a->floor_;
            a->dt[t * a->H + h] = v < a->lo ? a->lo : v > a->hi ? a->hi : v;
        }
    return al_ok();
}
al_status al_cuda_ssm_dt(al_cuda *c, const float *raw, int64_t ld_raw, const float *bias, float *dt, int64_t n_tok, int H,
                         float floor_, float lo, float hi) {
    return ENQ(c, dt, raw, ld_raw, bias, dt, n_tok, H, floor_, lo, hi);
}

static al_status r_ssd(al_cuda *c, const void *p) {
    const al_cuda_ssd_args *a = p;
    enum { CHUNK = 64 };
    float *scratch = malloc(sizeof(float) * (CHUNK * CHUNK + 2 * CHUNK));
    if (!scratch) return al_err(AL_ERR_NOMEM, "emulated CUDA device: out of memory");
    al_ssd_args s = {a->x, a->dt, a->B, a->C, a->A, a->D, a->x_stride, a->dt_stride, a->bc_stride, a->state, a->y,
                     a->n_tok, a->H, a->P, a->N, a->G, CHUNK, scratch, al_cpu_isa(c->cpu)};
    al_op_ssd(NULL, &s);
    free(scratch);
    return al_ok();
}
al_status al_cuda_ssd(al_cuda *c, const al_cuda_ssd_args *a) { return enqueue(c, r_ssd, a, sizeof *a); }

typedef struct a_scan {
    const float *x, *dt, *A, *B, *C;
    int64_t bc_stride;
    const float *Dskip;
    float *state, *y;
    int64_t n_tok;
    int Dn, N;
} a_scan;
static al_status r_scan(al_cuda *c, const void *p) {
    const a_scan *a = p;
    (void)c;
    al_op_selective_scan(NULL, a->x, a->dt, a->A, a->B, a->C, a->bc_stride, a->Dskip, a->state, a->y, a->n_tok, a->Dn, a->N);
    return al_ok();
}
al_status al_cuda_selective_scan(al_cuda *c, const float *x, const float *dt, const float *A, const float *B, const float *C,
                                 int64_t bc_stride, const float *Dskip, float *state, float *y, int64_t n_tok, int Dn, int N) {
    return ENQ(c, scan, x, dt, A, B, C, bc_stride, Dskip, state, y, n_tok, Dn, N);
}

/* ---- MoE ---- */

typedef struct a_route {
    const float *logits;
    int64_t n_tok;
    int E, k;
    int32_t *ids;
    float *weights;
} a_route;
static al_status r_route(al_cuda *c, const void *p) {
    const a_route *a = p;
    (void)c;
    al_op_moe_route(a->logits, a->n_tok, a->E, a->k, a->ids, a->weights);
    return al_ok();
}
al_status al_cuda_moe_route(al_cuda *c, const float *logits, int64_t n_tok, int E, int k, int32_t *ids, float *weights) {
    return ENQ(c, route, logits, n_tok, E, k, ids, weights);
}

typedef struct a_wsum {
    const float *x;
    int64_t ldx;
    const float *w;
    int k;
    float *y;
    int64_t n;
} a_wsum;
static al_status r_wsum(al_cuda *c, const void *p) {
    const a_wsum *a = p;
    (void)c;
    for (int j = 0; j < a->k; j++)
        for (int64_t i = 0; i < a->n; i++) a->y[i] += a->w[j] * a->x[j * a->ldx + i];
    return al_ok();
}
al_status al_cuda_weighted_sum(al_cuda *c, const float *x, int64_t ldx, const float *w, int k, float *y, int64_t n) {
    return ENQ(c, wsum, x, ldx, w, k, y, n);
}

/* ---- fused decode products: the integer kernels' types only, as on the GPU ---- */

static bool int_type(al_type t) {
    return t == AL_TYPE_Q8_0 || t == AL_TYPE_Q4_K || t == AL_TYPE_Q5_K || t == AL_TYPE_Q6_K;
}

typedef struct a_vec {
    const al_cuda_weight *W[4]; /* matvec_n: W[0..n); glu: W[0] gate, W[1] up; act: W[0] */
    float *Y[4];
    int n, kind;                /* kind 0 matvec_n, 1 glu, 2 act */
    al_cuda_act_kind act;
    al_cuda_vec_in in;
} a_vec;

/* x[k] = the product input: in->x, or the fused residual add / gate and RMSNorm */
static void vec_input(const al_cuda_vec_in *in, int64_t k, float *x) {
    if (!in->norm) {
        memcpy(x, in->x, sizeof(float) * (size_t)k);
        return;
    }
    if (in->z) al_op_silu(in->z, x, k); /* v = h * silu(z) (Mamba-2's gate), or h + d */
    for (int64_t i = 0; i < k; i++) {
        x[i] = in->z ? in->h[i] * x[i] : in->h[i] + (in->d ? in->d[i] : 0.0f);
        if (in->d && in->h_out) in->h_out[i] = x[i];
    }
    al_op_rms_norm(x, in->norm, x, 1, k, in->group > 0 ? in->group : k, in->eps);
}

static al_status r_vec(al_cuda *c, const void *p) {
    const a_vec *a = p;
    const int64_t k = a->W[0]->k;
    float *x = malloc(sizeof(float) * (size_t)k), *u = NULL;
    if (!x) return al_err(AL_ERR_NOMEM, "emulated CUDA device: out of memory");
    vec_input(&a->in, k, x);
    al_status st = al_ok();
    if (a->kind == 0) {
        for (int i = 0; i < a->n && !al_failed(&st); i++) {
            const al_tensor t = mat_view(a->W[i], 0);
            st = al_cpu_matmul(c->cpu, &t, x, k, a->Y[i], a->W[i]->n_out, 1);
        }
    } else {
        const int64_t no = a->W[0]->n_out;
        const al_tensor tg = mat_view(a->W[0], 0);
        st = al_cpu_matmul(c->cpu, &tg, x, k, a->Y[0], no, 1);
        act_apply(a->act, a->Y[0], a->Y[0], no);
        if (a->kind == 1 && !al_failed(&st)) {
            u = malloc(sizeof(float) * (size_t)no);
            const al_tensor tu = mat_view(a->W[1], 0);
            st = u ? al_cpu_matmul(c->cpu, &tu, x, k, u, no, 1) : al_err(AL_ERR_NOMEM, "emulated CUDA device: out of memory");
            for (int64_t i = 0; i < no && !al_failed(&st); i++) a->Y[0][i] *= u[i];
        }
    }
    free(x);
    free(u);
    return st;
}

static al_status vec_args(a_vec *a, int kind, al_cuda_act_kind act, const al_cuda_weight *const *W, int n,
                          const al_cuda_vec_in *in, float *const *Y) {
    memset(a, 0, sizeof *a);
    if (n < 1 || n > 4) return al_err(AL_ERR_INVALID, "cuda matvec: %d weights", n);
    for (int i = 0; i < n; i++) {
        if (!int_type(W[i]->type)) return al_err(AL_ERR_UNSUPPORTED, "cuda matvec: no integer kernel for %s", al_type_name(W[i]->type));
        if (W[i]->k != W[0]->k) return al_err(AL_ERR_INVALID, "cuda matvec: k differs");
        a->W[i] = W[i];
        a->Y[i] = kind == 0 ? Y[i] : Y[0];
    }
    a->n = n;
    a->kind = kind;
    a->act = act;
    a->in = *in;
    return al_ok();
}

al_status al_cuda_matvec_n(al_cuda *c, const al_cuda_weight *const *W, int n, const al_cuda_vec_in *in, float *const *Y) {
    a_vec a;
    AL_TRY(vec_args(&a, 0, AL_CUDA_ACT_SILU, W, n, in, Y));
    return enqueue(c, r_vec, &a, sizeof a);
}
al_status al_cuda_matvec_glu(al_cuda *c, al_cuda_act_kind act, const al_cuda_weight *Wg, const al_cuda_weight *Wu,
                             const al_cuda_vec_in *in, float *Y) {
    const al_cuda_weight *W[2] = {Wg, Wu};
    a_vec a;
    AL_TRY(vec_args(&a, 1, act, W, 2, in, &Y));
    return enqueue(c, r_vec, &a, sizeof a);
}
al_status al_cuda_matvec_act(al_cuda *c, al_cuda_act_kind act, const al_cuda_weight *W, const al_cuda_vec_in *in, float *Y) {
    a_vec a;
    AL_TRY(vec_args(&a, 2, act, &W, 1, in, &Y));
    return enqueue(c, r_vec, &a, sizeof a);
}

/* ---- persistent programs: the recorded ops run in order by al_cuda_prog_run ---- */

struct al_cuda_prog {
    al_cuda *c;
    al_cuda_graph ops;
    const al_cuda_weight *embd; /* the embedding table, when recorded */
    int32_t pos, token;         /* of the current run */
    bool finished;
};

al_status al_cuda_prog_init(al_cuda_prog **out, al_cuda *c) {
    *out = calloc(1, sizeof **out);
    if (!*out) return al_err(AL_ERR_NOMEM, "emulated CUDA device: out of memory");
    (*out)->c = c;
    return al_ok();
}
void al_cuda_prog_free(al_cuda_prog *p) {
    if (!p) return;
    for (int i = 0; i < p->ops.n; i++) free(p->ops.ops[i].args);
    free(p->ops.ops);
    free(p);
}
static al_status prog_add(al_cuda_prog *p, emu_fn run, const void *args, size_t size) {
    if (p->finished) return al_err(AL_ERR_INVALID, "cuda prog: recording after finish");
    return graph_add(&p->ops, run, args, size);
}

al_status al_cuda_prog_matvec(al_cuda_prog *p, const al_cuda_weight *const *W, int n, const al_cuda_vec_in *in, float *const *Y) {
    a_vec a;
    AL_TRY(vec_args(&a, 0, AL_CUDA_ACT_SILU, W, n, in, Y));
    return prog_add(p, r_vec, &a, sizeof a);
}
al_status al_cuda_prog_matvec_act(al_cuda_prog *p, al_cuda_act_kind act, const al_cuda_weight *W, const al_cuda_vec_in *in,
                                  float *Y) {
    a_vec a;
    AL_TRY(vec_args(&a, 2, act, &W, 1, in, &Y));
    return prog_add(p, r_vec, &a, sizeof a);
}
al_status al_cuda_prog_matvec_glu(al_cuda_prog *p, al_cuda_act_kind act, const al_cuda_weight *Wg, const al_cuda_weight *Wu,
                                  const al_cuda_vec_in *in, float *Y) {
    const al_cuda_weight *W[2] = {Wg, Wu};
    a_vec a;
    AL_TRY(vec_args(&a, 1, act, W, 2, in, &Y));
    return prog_add(p, r_vec, &a, sizeof a);
}

typedef struct a_pattn {
    al_cuda_prog *p;
    al_cuda_prog_attn a;
} a_pattn;
/* biases, per-head norms and RoPE on copies of q and k, K/V into cache row pos, attention over [0, pos] */
static al_status r_pattn(al_cuda *c, const void *args) {
    const a_pattn *pa = args;
    const al_cuda_prog_attn *a = &pa->a;
    const int64_t qd = (int64_t)a->n_head * a->head_dim, kvd = (int64_t)a->n_head_kv * a->head_dim;
    float *q = malloc(sizeof(float) * (size_t)(qd + 2 * kvd));
    if (!q) return al_err(AL_ERR_NOMEM, "emulated CUDA device: out of memory");
    float *k = q + qd, *v = k + kvd;
    memcpy(q, a->q, sizeof(float) * (size_t)qd);
    memcpy(k, a->k, sizeof(float) * (size_t)kvd);
    memcpy(v, a->v, sizeof(float) * (size_t)kvd);
    if (a->bq) al_op_add(q, a->bq, q, qd);
    if (a->bk) al_op_add(k, a->bk, k, kvd);
    if (a->bv) al_op_add(v, a->bv, v, kvd);
    const int32_t pos = pa->p->pos;
    al_cuda_qkv_args qa = {q, k, v, a->q_norm, a->k_norm, a->eps, 1, a->n_head, a->n_head_kv, a->head_dim, &pos,
                           a->rope_mode, a->n_dims, a->inv_freq, a->kc, a->vc, a->kv_type, NULL, NULL};
    al_status st = r_qkv(c, &qa);
    al_cuda_attn_args aa = {q, a->kc, a->vc, a->kv_type, a->out, 1, pos, NULL, a->n_ctx, a->n_head, a->n_head_kv,
                            a->head_dim, a->window, a->scale, 1, NULL, NULL};
    if (!al_failed(&st)) st = r_attn(c, &aa);
    free(q);
    return st;
}
al_status al_cuda_prog_attention(al_cuda_prog *p, const al_cuda_prog_attn *a) {
    if (a->head_dim > 256) return al_err(AL_ERR_UNSUPPORTED, "cuda prog: head_dim %d", a->head_dim);
    a_pattn pa = {p, *a};
    return prog_add(p, r_pattn, &pa, sizeof pa);
}

/* dt, the conv step (+ SiLU) and the SSD step of Mamba-2 for the token of the run */
static al_status r_pssm(al_cuda *c, const void *args) {
    const al_cuda_prog_ssm *a = args;
    const int64_t di = (int64_t)a->H * a->P, gn = (int64_t)a->G * a->N, ch = di + 2 * gn;
    float *dt = malloc(sizeof(float) * (size_t)(a->H + ch));
    if (!dt) return al_err(AL_ERR_NOMEM, "emulated CUDA device: out of memory");
    float *xbc = dt + a->H;
    a_dt d = {a->zx + di + ch, 0, a->dt_bias, dt, 1, a->H, -INFINITY, a->dt_lo, a->dt_hi};
    al_status st = r_dt(c, &d);
    al_op_conv1d_causal(a->zx + di, 1, (int)ch, a->d_conv, a->conv_w, a->conv_b, a->conv_state, xbc, true);
    al_cuda_ssd_args sa = {xbc, dt, xbc + di, xbc + di + gn, a->A, a->D, ch, a->H, ch, a->state, a->y, 1, a->H, a->P, a->N, a->G};
    if (!al_failed(&st)) st = r_ssd(c, &sa);
    free(dt);
    return st;
}
al_status al_cuda_prog_ssm_step(al_cuda_prog *p, const al_cuda_prog_ssm *a) { return prog_add(p, r_pssm, a, sizeof *a); }

typedef struct a_pembed {
    al_cuda_prog *p;
    const al_cuda_weight *W;
    float *out;
} a_pembed;
static al_status r_pembed(al_cuda *c, const void *args) {
    const a_pembed *a = args;
    (void)c;
    return al_dequantize_row(a->W->type, (const char *)a->W->data + (size_t)a->p->token * a->W->row_bytes, a->out, a->W->k);
}
al_status al_cuda_prog_embed(al_cuda_prog *p, const al_cuda_weight *W, float *out) {
    if (p->ops.n) return al_err(AL_ERR_INVALID, "cuda prog: the embedding must be recorded first");
    p->embd = W;
    a_pembed a = {p, W, out};
    return prog_add(p, r_pembed, &a, sizeof a);
}
al_status al_cuda_prog_finish(al_cuda_prog *p, int blocks_per_sm) {
    (void)blocks_per_sm;
    if (!p->ops.n) return al_err(AL_ERR_INVALID, "cuda prog: nothing recorded");
    p->finished = true;
    return al_ok();
}
al_status al_cuda_prog_run(al_cuda_prog *p, int pos, int32_t token) {
    if (!p->finished) return al_err(AL_ERR_INVALID, "cuda prog: run before finish");
    if (p->embd && (token < 0 || token >= p->embd->n_out)) return al_err(AL_ERR_RANGE, "cuda prog: token %d", token);
    AL_TRY(in_capture(p->c, "persistent kernel"));
    p->pos = pos;
    p->token = token;
    for (int i = 0; i < p->ops.n; i++) AL_TRY(p->ops.ops[i].run(p->c, p->ops.ops[i].args));
    return al_ok();
}
void al_cuda_prog_set_rows(al_cuda_prog *p, int rows) { (void)p, (void)rows; }
void al_cuda_prog_set_merge(al_cuda_prog *p, bool on) { (void)p, (void)on; }
void al_cuda_prog_set_unit_pre(al_cuda_prog *p, bool on) { (void)p, (void)on; }
void al_cuda_prog_set_poller(al_cuda_prog *p, int sub) { (void)p, (void)sub; }
void al_cuda_prog_set_tagged(al_cuda_prog *p, int level) { (void)p, (void)level; }
int al_cuda_prog_tag_level(const al_cuda_prog *p) { return (void)p, AL_TAG_OFF; } /* every barrier kept */
void al_cuda_prog_set_tag_scope(al_cuda_prog *p, bool gpu) { (void)p, (void)gpu; }
void al_cuda_prog_set_tag_nap(al_cuda_prog *p, int ns) { (void)p, (void)ns; }
al_status al_cuda_prog_tag_failed(al_cuda_prog *p, bool *failed) {
    (void)p;
    *failed = false;
    return al_ok();
}
/* every recorded op, each with a barrier after it (the emulator runs them in order) */
void al_cuda_prog_shape(const al_cuda_prog *p, int *n_ops, int *n_sync, int *n_blocks) {
    if (n_ops) *n_ops = p ? p->ops.n : 0;
    if (n_sync) *n_sync = p ? p->ops.n : 0;
    if (n_blocks) *n_blocks = p ? 1 : 0;
}
void al_cuda_prog_set_cluster(al_cuda_prog *p, int blocks) { (void)p, (void)blocks; }
int al_cuda_prog_cluster(const al_cuda_prog *p) { return (void)p, 1; }
void al_cuda_prog_set_prefetch_ahead(al_cuda_prog *p, int steps) { (void)p, (void)steps; }
void al_cuda_prog_set_norm_prefetch(al_cuda_prog *p, bool on) { (void)p, (void)on; }
void al_cuda_prog_set_attn_split(al_cuda_prog *p, int keys) { (void)p, (void)keys; }
void al_cuda_prog_set_kernel_ref(al_cuda_prog *p, bool on) { (void)p, (void)on; }

