/*
 * cuda_emul.c — the device API of alloy/cuda.h that the GPU forward pass (src/cuda/cuda_model.c)
 * and the GPU serving backend (src/cuda/cuda_engine.c) call, emulated on the CPU with the CPU
 * reference ops, for testing those files' host logic (buffers, layer order, positions, per-session
 * state, batched decode, the engine backend) where there is no GPU — in CI. Test-only: linked into
 * test_cuda_models_emul in builds without nvcc, never into liballoy.
 *
 * "Device" memory is host memory; every op runs at once (the stream is synchronous). There are no
 * CUDA graphs and no persistent kernel (both report AL_ERR_UNSUPPORTED, so the forward pass takes
 * its eager path), and the fused decode products (al_cuda_matvec_*) are unsupported, so the plain
 * norm + product path runs. Products are al_cpu_matmul (the CPU's int8 activation path for
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

struct al_cuda {
    al_cpu *cpu;
    void *scratch;
    size_t scratch_size;
    uint64_t scratch_gen;
};

static al_status unsupported(const char *what) {
    return al_err(AL_ERR_UNSUPPORTED, "emulated CUDA device: no %s", what);
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
    al_cpu_free(c->cpu);
    free(c->scratch);
    free(c);
}

al_status al_cuda_sync(al_cuda *c) { return (void)c, al_ok(); }
void al_cuda_describe(const al_cuda *c, char *buf, size_t size) { (void)c, snprintf(buf, size, "emulated CUDA device (CPU)"); }

al_status al_cuda_alloc(al_cuda *c, void **out, size_t bytes) {
    (void)c;
    *out = calloc(1, bytes ? bytes : 1);
    return *out ? al_ok() : al_err(AL_ERR_NOMEM, "emulated CUDA device: out of memory (%zu bytes)", bytes);
}
void al_cuda_release(al_cuda *c, void *p) { (void)c, free(p); }
al_status al_cuda_upload(al_cuda *c, void *dst, const void *src, size_t bytes) {
    (void)c;
    if (bytes) memcpy(dst, src, bytes);
    return al_ok();
}
al_status al_cuda_download(al_cuda *c, void *dst, const void *src, size_t bytes) { return al_cuda_upload(c, dst, src, bytes); }
al_status al_cuda_copy_async(al_cuda *c, void *dst, const void *src, size_t bytes) { return al_cuda_upload(c, dst, src, bytes); }
al_status al_cuda_host_alloc(void **out, size_t bytes) { return al_cuda_alloc(NULL, out, bytes); }
void al_cuda_host_free(void *p) { free(p); }
al_status al_cuda_memset(al_cuda *c, void *p, int value, size_t bytes) {
    (void)c;
    memset(p, value, bytes);
    return al_ok();
}
al_status al_cuda_scratch(al_cuda *c, size_t bytes, void **out) {
    if (bytes > c->scratch_size) {
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

/* ---- graphs: none ---- */
al_status al_cuda_graph_begin(al_cuda *c) { return (void)c, unsupported("CUDA graphs"); }
al_status al_cuda_graph_end(al_cuda *c, al_cuda_graph **out) {
    (void)c;
    *out = NULL;
    return unsupported("CUDA graphs");
}
al_status al_cuda_graph_launch(al_cuda *c, al_cuda_graph *g) { return (void)c, (void)g, unsupported("CUDA graphs"); }
void al_cuda_graph_free(al_cuda_graph *g) { (void)g; }

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

al_status al_cuda_matmul(al_cuda *c, const al_cuda_weight *W, const float *X, int64_t ldx, float *Y, int64_t ldy, int64_t m) {
    const al_tensor t = mat_view(W, 0);
    return al_cpu_matmul(c->cpu, &t, X, ldx, Y, ldy, m);
}

al_status al_cuda_matmul_n(al_cuda *c, const al_cuda_weight *const *W, int n, const float *X, int64_t ldx, float *const *Y,
                           int64_t m) {
    for (int i = 0; i < n; i++) AL_TRY(al_cuda_matmul(c, W[i], X, ldx, Y[i], W[i]->n_out, m));
    return al_ok();
}

al_status al_cuda_matmul_id(al_cuda *c, const al_cuda_weight *W, const float *X, int64_t ldx, bool x_per_id, float *Y,
                            int64_t ldy, const int32_t *ids, int n_ids) {
    for (int j = 0; j < n_ids; j++) {
        if (ids[j] < 0 || ids[j] >= W->n_mat) return al_err(AL_ERR_RANGE, "matmul_id: id %d of %lld", ids[j], (long long)W->n_mat);
        const al_tensor t = mat_view(W, ids[j]);
        AL_TRY(al_cpu_matmul(c->cpu, &t, X + (x_per_id ? j * ldx : 0), ldx, Y + j * ldy, ldy, 1));
    }
    return al_ok();
}

al_status al_cuda_get_rows(al_cuda *c, const al_cuda_weight *W, const int32_t *ids, int64_t n, float *out, int64_t ldo) {
    (void)c;
    for (int64_t t = 0; t < n; t++)
        AL_TRY(al_dequantize_row(W->type, (const char *)W->data + (size_t)ids[t] * W->row_bytes, out + t * ldo, W->k));
    return al_ok();
}

/* ---- fused decode products and persistent programs: none (the forward pass falls back) ---- */
al_status al_cuda_matvec_n(al_cuda *c, const al_cuda_weight *const *W, int n, const al_cuda_vec_in *in, float *const *Y) {
    return (void)c, (void)W, (void)n, (void)in, (void)Y, unsupported("fused decode products");
}
al_status al_cuda_matvec_glu(al_cuda *c, al_cuda_act_kind act, const al_cuda_weight *Wg, const al_cuda_weight *Wu,
                             const al_cuda_vec_in *in, float *Y) {
    return (void)c, (void)act, (void)Wg, (void)Wu, (void)in, (void)Y, unsupported("fused decode products");
}
al_status al_cuda_matvec_act(al_cuda *c, al_cuda_act_kind act, const al_cuda_weight *W, const al_cuda_vec_in *in, float *Y) {
    return (void)c, (void)act, (void)W, (void)in, (void)Y, unsupported("fused decode products");
}
al_status al_cuda_prog_init(al_cuda_prog **out, al_cuda *c) {
    (void)c;
    *out = NULL;
    return unsupported("persistent kernel");
}
void al_cuda_prog_free(al_cuda_prog *p) { (void)p; }
al_status al_cuda_prog_matvec(al_cuda_prog *p, const al_cuda_weight *const *W, int n, const al_cuda_vec_in *in, float *const *Y) {
    return (void)p, (void)W, (void)n, (void)in, (void)Y, unsupported("persistent kernel");
}
al_status al_cuda_prog_matvec_act(al_cuda_prog *p, al_cuda_act_kind act, const al_cuda_weight *W, const al_cuda_vec_in *in,
                                  float *Y) {
    return (void)p, (void)act, (void)W, (void)in, (void)Y, unsupported("persistent kernel");
}
al_status al_cuda_prog_matvec_glu(al_cuda_prog *p, al_cuda_act_kind act, const al_cuda_weight *Wg, const al_cuda_weight *Wu,
                                  const al_cuda_vec_in *in, float *Y) {
    return (void)p, (void)act, (void)Wg, (void)Wu, (void)in, (void)Y, unsupported("persistent kernel");
}
al_status al_cuda_prog_attention(al_cuda_prog *p, const al_cuda_prog_attn *a) {
    return (void)p, (void)a, unsupported("persistent kernel");
}
al_status al_cuda_prog_ssm_step(al_cuda_prog *p, const al_cuda_prog_ssm *a) {
    return (void)p, (void)a, unsupported("persistent kernel");
}
al_status al_cuda_prog_embed(al_cuda_prog *p, const al_cuda_weight *W, float *out) {
    return (void)p, (void)W, (void)out, unsupported("persistent kernel");
}
al_status al_cuda_prog_finish(al_cuda_prog *p, int blocks_per_sm) {
    return (void)p, (void)blocks_per_sm, unsupported("persistent kernel");
}
al_status al_cuda_prog_run(al_cuda_prog *p, int pos, int32_t token) {
    return (void)p, (void)pos, (void)token, unsupported("persistent kernel");
}
void al_cuda_prog_set_rows(al_cuda_prog *p, int rows) { (void)p, (void)rows; }
void al_cuda_prog_set_merge(al_cuda_prog *p, bool on) { (void)p, (void)on; }
void al_cuda_prog_set_unit_pre(al_cuda_prog *p, bool on) { (void)p, (void)on; }
void al_cuda_prog_set_poller(al_cuda_prog *p, int sub) { (void)p, (void)sub; }
void al_cuda_prog_set_prefetch_ahead(al_cuda_prog *p, int steps) { (void)p, (void)steps; }
void al_cuda_prog_set_norm_prefetch(al_cuda_prog *p, bool on) { (void)p, (void)on; }
void al_cuda_prog_set_attn_split(al_cuda_prog *p, int keys) { (void)p, (void)keys; }

/* ---- element-wise and normalisation ---- */

al_status al_cuda_rms_norm(al_cuda *c, const float *x, int64_t ldx, const float *w, float *y, int64_t ldy, int64_t rows,
                           int64_t n, int64_t group, float eps) {
    (void)c;
    for (int64_t r = 0; r < rows; r++) al_op_rms_norm(x + r * ldx, w, y + r * ldy, 1, n, group, eps);
    return al_ok();
}

al_status al_cuda_add_rms_norm(al_cuda *c, float *h, const float *d, const float *w, float *y, int64_t rows, int64_t n,
                               float eps) {
    (void)c;
    al_op_add(h, d, h, rows * n);
    al_op_rms_norm(h, w, y, rows, n, n, eps);
    return al_ok();
}

static void act_apply(al_cuda_act_kind act, const float *x, float *y, int64_t n) {
    switch (act) {
    case AL_CUDA_ACT_SILU: al_op_silu(x, y, n); break;
    case AL_CUDA_ACT_GELU_TANH: al_op_gelu_tanh(x, y, n); break;
    case AL_CUDA_ACT_GELU_ERF: al_op_gelu_erf(x, y, n); break;
    case AL_CUDA_ACT_RELU2: al_op_relu2(x, y, n); break;
    }
}

al_status al_cuda_gated_rms_norm(al_cuda *c, float *y, int64_t ldy, const float *z, int64_t ldz, const float *w, int64_t rows,
                                 int64_t n, int64_t group, float eps) {
    (void)c;
    float *g = malloc(sizeof(float) * (size_t)n);
    if (!g) return al_err(AL_ERR_NOMEM, "emulated CUDA device: out of memory");
    for (int64_t r = 0; r < rows; r++) {
        al_op_silu(z + r * ldz, g, n);
        for (int64_t i = 0; i < n; i++) g[i] *= y[r * ldy + i];
        al_op_rms_norm(g, w, y + r * ldy, 1, n, group, eps);
    }
    free(g);
    return al_ok();
}

al_status al_cuda_glu(al_cuda *c, al_cuda_act_kind act, const float *g, int64_t ldg, const float *u, int64_t ldu, float *y,
                      int64_t ldy, int64_t rows, int64_t n) {
    (void)c;
    float *a = malloc(sizeof(float) * (size_t)n); /* act(g) apart: y may alias g or u */
    if (!a) return al_err(AL_ERR_NOMEM, "emulated CUDA device: out of memory");
    for (int64_t r = 0; r < rows; r++) {
        act_apply(act, g + r * ldg, a, n);
        for (int64_t i = 0; i < n; i++) y[r * ldy + i] = u ? a[i] * u[r * ldu + i] : a[i];
    }
    free(a);
    return al_ok();
}

al_status al_cuda_add(al_cuda *c, const float *a, const float *b, float *y, int64_t n) {
    (void)c;
    al_op_add(a, b, y, n);
    return al_ok();
}

al_status al_cuda_add_bias(al_cuda *c, float *y, int64_t ldy, const float *b, int64_t rows, int64_t n) {
    (void)c;
    for (int64_t r = 0; r < rows; r++) al_op_add(y + r * ldy, b, y + r * ldy, n);
    return al_ok();
}

al_status al_cuda_concat(al_cuda *c, const float *a, int64_t na, const float *b, int64_t nb, float *y, int64_t rows) {
    (void)c;
    for (int64_t r = 0; r < rows; r++) {
        memmove(y + r * (na + nb), a + r * na, sizeof(float) * (size_t)na);
        memmove(y + r * (na + nb) + na, b + r * nb, sizeof(float) * (size_t)nb);
    }
    return al_ok();
}

al_status al_cuda_positions(al_cuda *c, int32_t *pos, int64_t n, const int32_t *base, int32_t base_host) {
    (void)c;
    const int32_t b = base ? *base : base_host;
    for (int64_t t = 0; t < n; t++) pos[t] = b + (int32_t)t;
    return al_ok();
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

al_status al_cuda_qkv_post(al_cuda *c, const al_cuda_qkv_args *a) {
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
        row_store(a->kc, a->kv_type, a->pos[t], kt, kvd);
        row_store(a->vc, a->kv_type, a->pos[t], a->v + t * kvd, kvd);
    }
    free(kt);
    return al_ok();
}

al_status al_cuda_attention(al_cuda *c, const al_cuda_attn_args *a) {
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

/* ---- state-space ops ---- */

al_status al_cuda_conv1d_causal(al_cuda *c, const float *x, int64_t ldx, int64_t n_tok, int ch, int k, const float *w,
                                const float *b, float *state, float *y, int64_t ldy, bool apply_silu) {
    (void)c;
    for (int64_t t = 0; t < n_tok; t++) al_op_conv1d_causal(x + t * ldx, 1, ch, k, w, b, state, y + t * ldy, apply_silu);
    return al_ok();
}

al_status al_cuda_ssm_dt(al_cuda *c, const float *raw, int64_t ld_raw, const float *bias, float *dt, int64_t n_tok, int H,
                         float floor_, float lo, float hi) {
    (void)c;
    for (int64_t t = 0; t < n_tok; t++)
        for (int h = 0; h < H; h++) {
            float v = al_softplus(raw[t * ld_raw + h] + (bias ? bias[h] : 0.0f));
            v = v > floor_ ? v : floor_;
            dt[t * H + h] = v < lo ? lo : v > hi ? hi : v;
        }
    return al_ok();
}

al_status al_cuda_ssd(al_cuda *c, const al_cuda_ssd_args *a) {
    enum { CHUNK = 64 };
    float *scratch = malloc(sizeof(float) * (CHUNK * CHUNK + 2 * CHUNK));
    if (!scratch) return al_err(AL_ERR_NOMEM, "emulated CUDA device: out of memory");
    al_ssd_args s = {a->x, a->dt, a->B, a->C, a->A, a->D, a->x_stride, a->dt_stride, a->bc_stride, a->state, a->y,
                     a->n_tok, a->H, a->P, a->N, a->G, CHUNK, scratch, al_cpu_isa(c->cpu)};
    al_op_ssd(NULL, &s);
    free(scratch);
    return al_ok();
}

al_status al_cuda_selective_scan(al_cuda *c, const float *x, const float *dt, const float *A, const float *B, const float *C,
                                 int64_t bc_stride, const float *Dskip, float *state, float *y, int64_t n_tok, int Dn, int N) {
    (void)c;
    al_op_selective_scan(NULL, x, dt, A, B, C, bc_stride, Dskip, state, y, n_tok, Dn, N);
    return al_ok();
}

/* ---- MoE ---- */

al_status al_cuda_moe_route(al_cuda *c, const float *logits, int64_t n_tok, int E, int k, int32_t *ids, float *weights) {
    (void)c;
    for (int64_t t = 0; t < n_tok; t++) {
        const float *l = logits + t * E;
        float mx = l[0];
        for (int e = 1; e < E; e++) mx = l[e] > mx ? l[e] : mx;
        double sum = 0;
        for (int e = 0; e < E; e++) sum += exp((double)(l[e] - mx));
        for (int j = 0; j < k; j++) { /* j-th largest, ties to the lowest index */
            int best = -1;
            for (int e = 0; e < E; e++) {
                bool taken = false;
                for (int i = 0; i < j; i++) taken |= ids[t * k + i] == e;
                if (!taken && (best < 0 || l[e] > l[best])) best = e;
            }
            ids[t * k + j] = best;
            weights[t * k + j] = (float)(exp((double)(l[best] - mx)) / sum);
        }
    }
    return al_ok();
}

al_status al_cuda_weighted_sum(al_cuda *c, const float *x, int64_t ldx, const float *w, int k, float *y, int64_t n) {
    (void)c;
    for (int j = 0; j < k; j++)
        for (int64_t i = 0; i < n; i++) y[i] += w[j] * x[j * ldx + i];
    return al_ok();
}
