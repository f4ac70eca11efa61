/*
 * alloy/cuda.h — the CUDA backend: device context, device buffers, quantized weights on the GPU,
 * GPU twins of every operator of alloy/ops.h plus the matrix products of alloy/cpu.h, and a GPU
 * forward pass (al_cuda_model / al_cuda_session) with the interface of al_session.
 *
 * Built only when nvcc is found (ALLOY_HAVE_CUDA is then defined for liballoy and its users).
 *
 * Contract
 *  - An al_cuda is one device, one stream and one cuBLAS handle. Every op below is enqueued on that
 *    stream and returns at once (asynchronous); al_cuda_sync waits and reports a device fault.
 *    One al_cuda is used by one host thread at a time.
 *  - Pointers passed to ops are DEVICE pointers (al_cuda_alloc) unless a comment says "host".
 *    Activations are float32, row-major, last index fastest, with explicit row strides (in
 *    elements) where an op reads from or writes into a wider row.
 *  - Ops may use the context's scratch buffer; it only grows, and growing it synchronizes the
 *    device. al_cuda_scratch_gen tells graph owners when pointers captured earlier became stale.
 *  - Shapes and semantics of every op equal its CPU twin in alloy/ops.h (tests compare them);
 *    accumulation is in float32. al_cuda_matmul of quantized or F16/BF16 weights with m > 4 runs
 *    through cuBLAS in half precision (F16 tiles dequantized on the fly, F32 accumulation);
 *    with F32 weights it stays in float32 (no TF32); m <= 4 is float32 throughout.
 *  - Errors: invalid shapes or unsupported types return AL_ERR_INVALID / AL_ERR_UNSUPPORTED before
 *    anything is enqueued; CUDA failures return AL_ERR_IO with the CUDA error string.
 */
#ifndef ALLOY_CUDA_H
#define ALLOY_CUDA_H

#include "alloy/core.h"
#include "alloy/engine.h"
#include "alloy/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- device context ------------------------------------------------------------------------ */

typedef struct al_cuda al_cuda;

/* Number of usable CUDA devices; 0 when there is no device or no driver (never an error). */
int al_cuda_device_count(void);
al_status al_cuda_init(al_cuda **out, int device);
/* Programmatic dependent launch (on by default on sm_90+): kernels of a stream overlap their start
 * with the previous kernel's end; results are the same either way (off: plain launches). */
void al_cuda_set_pdl(al_cuda *c, bool on);
bool al_cuda_pdl(const al_cuda *c);
/* Products of m = 2 .. 4 activation rows (batched decode) over a matrix of at least `bytes` bytes run
 * every row in each block, so that the matrix is streamed once instead of once per row (default: half
 * of the L2 cache, i.e. LM heads, also when bytes < 0; 0: every matrix, as tests use it). Results are
 * the same either way. */
void al_cuda_set_mmq_multi_min(al_cuda *c, int64_t bytes);
void al_cuda_free(al_cuda *c);
al_status al_cuda_sync(al_cuda *c);
/* "NVIDIA H100 80GB HBM3, sm_90, 132 SMs" */
void al_cuda_describe(const al_cuda *c, char *buf, size_t size);
/* The cudaStream_t of the context (as void * so this header needs no CUDA headers). */
void *al_cuda_stream(al_cuda *c);

/* ---- buffers (device memory, zero-filled on allocation) ------------------------------------- */
al_status al_cuda_alloc(al_cuda *c, void **out, size_t bytes);
void al_cuda_release(al_cuda *c, void *p); /* NULL ok; synchronizes the device */
/* Synchronous copies (host memory may be pageable). */
al_status al_cuda_upload(al_cuda *c, void *dst, const void *host_src, size_t bytes);
al_status al_cuda_download(al_cuda *c, void *host_dst, const void *src, size_t bytes);
/* Enqueued copy on the stream (host memory should be pinned: al_cuda_host_alloc). */
al_status al_cuda_copy_async(al_cuda *c, void *dst, const void *src, size_t bytes);
al_status al_cuda_host_alloc(void **out, size_t bytes); /* pinned host memory */
void al_cuda_host_free(void *p);
al_status al_cuda_memset(al_cuda *c, void *p, int value, size_t bytes); /* enqueued */
/* Scratch of at least `bytes` owned by the context (valid until the next call that grows it). */
al_status al_cuda_scratch(al_cuda *c, size_t bytes, void **out);
uint64_t al_cuda_scratch_gen(const al_cuda *c); /* bumped whenever the scratch moves */

/* ---- graphs: capture the ops enqueued between begin and end, replay with launch ---------------- */
typedef struct al_cuda_graph al_cuda_graph;
al_status al_cuda_graph_begin(al_cuda *c);
al_status al_cuda_graph_end(al_cuda *c, al_cuda_graph **out); /* also ends a failed capture */
al_status al_cuda_graph_launch(al_cuda *c, al_cuda_graph *g);
void al_cuda_graph_free(al_cuda_graph *g);

/* ---- weights ----------------------------------------------------------------------------- */

/* n_mat matrices of n_out rows of k elements in `type`, rows contiguous (row_bytes apart),
 * matrices mat_bytes apart: the GPU image of al_tensor {k, n_out, n_mat}. Q6_K and Q8_0 rows are in
 * the split-row layout of alloy/quant.h (row_bytes = al_split_row_size, a multiple of 16); every
 * other type keeps its GGUF bytes. */
typedef struct al_cuda_weight {
    al_type type;
    int64_t k, n_out, n_mat;
    size_t row_bytes, mat_bytes;
    void *data;
} al_cuda_weight;

/* Types the matrix kernels read: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, Q2_K, Q3_K,
 * Q4_K, Q5_K, Q6_K, IQ4_XS (every quantized one with int8 decode products; Q2_K and Q3_K outside
 * the persistent kernel). */
bool al_cuda_type_supported(al_type t);
/* Copies a (possibly strided, borrowed) tensor of up to 3 dims into device memory. */
al_status al_cuda_weight_upload(al_cuda *c, const al_tensor *t, al_cuda_weight *out);
/* Stacks n equally shaped 2-D tensors (e.g. per-expert views) into one weight with n_mat = n. */
al_status al_cuda_weight_upload_stack(al_cuda *c, const al_tensor *ts, int n, al_cuda_weight *out);
void al_cuda_weight_free(al_cuda *c, al_cuda_weight *w);

/* Y[m][n_out] (row stride ldy) = X[m][k] (row stride ldx) · W[0]ᵀ. m <= 4 reads the quantized
 * blocks directly (decode); m > 4 runs a GEMM (prefill). */
al_status al_cuda_matmul(al_cuda *c, const al_cuda_weight *W, const float *X, int64_t ldx, float *Y, int64_t ldy,
                         int64_t m);
/* Several products of one X (e.g. Q, K, V or gate, up): Y[i] = X · W[i]ᵀ, i < n (<= 4). With m == 1
 * and one quantized type for all it is a single launch; otherwise one al_cuda_matmul each. */
al_status al_cuda_matmul_n(al_cuda *c, const al_cuda_weight *const *W, int n, const float *X, int64_t ldx,
                           float *const *Y, int64_t m);
/* Matrix-vector with the matrix chosen on the device: Y[j] = W[ids[j]] · X[x_per_id ? j : 0]ᵀ for
 * j < n_ids (ids: device int32, each in [0, n_mat)). For MoE decode without a host round trip. */
al_status al_cuda_matmul_id(al_cuda *c, const al_cuda_weight *W, const float *X, int64_t ldx, bool x_per_id, float *Y,
                            int64_t ldy, const int32_t *ids, int n_ids);
/* out[t][0..k) = row ids[t] of W[0], dequantized (embedding lookup). ids must be in range. */
al_status al_cuda_get_rows(al_cuda *c, const al_cuda_weight *W, const int32_t *ids, int64_t n, float *out, int64_t ldo);

/* ---- element-wise and normalisation ops ------------------------------------------------------ */

typedef enum al_cuda_act_kind { AL_CUDA_ACT_SILU = 0, AL_CUDA_ACT_GELU_TANH, AL_CUDA_ACT_GELU_ERF, AL_CUDA_ACT_RELU2 } al_cuda_act_kind;

/* Decode matrix-vector products on the integer path (one activation row), with the RMSNorm before
 * them fused in: x = in->x, or when in->norm != NULL,
 *   v = h + d (d may be NULL; with d, h_out — not aliasing h or d — also receives v), or
 *   v = h ⊙ silu(z) when z != NULL (the gated norm of Mamba-2; d must be NULL),
 *   x = v / rms(v) · norm, the rms taken over groups of `group` elements (0: all of k).
 * One kernel launch each:
 *   matvec_n:   Y[i] = x · W[i]ᵀ, i < n (<= 4; types may differ, k must agree)
 *   matvec_glu: Y = act(x · Wgᵀ) ⊙ (x · Wuᵀ)
 * AL_ERR_UNSUPPORTED when a weight type has no integer kernel (or k / groups are too large for the
 * fused norm): then use al_cuda_rms_norm / al_cuda_matmul_n / al_cuda_glu. */
typedef struct al_cuda_vec_in {
    const float *x;
    const float *h, *d, *norm;
    float eps;
    float *h_out;
    const float *z;
    int64_t group;
} al_cuda_vec_in;
al_status al_cuda_matvec_n(al_cuda *c, const al_cuda_weight *const *W, int n, const al_cuda_vec_in *in, float *const *Y);
al_status al_cuda_matvec_glu(al_cuda *c, al_cuda_act_kind act, const al_cuda_weight *Wg, const al_cuda_weight *Wu,
                             const al_cuda_vec_in *in, float *Y);
/* Y = act(x · Wᵀ) (one weight; the activation applied to each output) */
al_status al_cuda_matvec_act(al_cuda *c, al_cuda_act_kind act, const al_cuda_weight *W, const al_cuda_vec_in *in, float *Y);


/* al_op_rms_norm with row strides: y[r*ldy + i] = x[r*ldx + i] / rms(group) * w[i]; w may be NULL;
 * y may alias x (same stride). */
al_status al_cuda_rms_norm(al_cuda *c, const float *x, int64_t ldx, const float *w, float *y, int64_t ldy, int64_t rows,
                           int64_t n, int64_t group, float eps);
/* Residual add fused with the next norm: h += d (rows of n, contiguous), y = rms(h) * w. */
al_status al_cuda_add_rms_norm(al_cuda *c, float *h, const float *d, const float *w, float *y, int64_t rows, int64_t n,
                               float eps);
/* Mamba-2 gated norm: y = rms_group(y * silu(z)) * w, in place on y[rows][ldy]; z[rows][ldz]. */
al_status al_cuda_gated_rms_norm(al_cuda *c, float *y, int64_t ldy, const float *z, int64_t ldz, const float *w,
                                 int64_t rows, int64_t n, int64_t group, float eps);
al_status al_cuda_act(al_cuda *c, al_cuda_act_kind act, const float *x, float *y, int64_t n); /* y may alias x */
/* y[i] = silu(gate[i]) * up[i] (al_op_swiglu) */
al_status al_cuda_swiglu(al_cuda *c, const float *gate, const float *up, float *y, int64_t n);
/* y[r][i] = act(g[r][i]) * u[r][i] with row strides ldg, ldu, ldy; u == NULL: act only. y may alias g or u. */
al_status al_cuda_glu(al_cuda *c, al_cuda_act_kind act, const float *g, int64_t ldg, const float *u, int64_t ldu, float *y,
                      int64_t ldy, int64_t rows, int64_t n);
al_status al_cuda_add(al_cuda *c, const float *a, const float *b, float *y, int64_t n); /* y may alias a or b */
/* y[r][i] += b[i] for rows of stride ldy */
al_status al_cuda_add_bias(al_cuda *c, float *y, int64_t ldy, const float *b, int64_t rows, int64_t n);
/* y[r][0..na) = a[r][..], y[r][na..na+nb) = b[r][..] (zamba2's [h, emb] concat) */
al_status al_cuda_concat(al_cuda *c, const float *a, int64_t na, const float *b, int64_t nb, float *y, int64_t rows);

/* ---- rotary embeddings: al_op_rope on x[n_tok][n_head][head_dim] in place -------------------
 * mode 1 NORM, 2 NEOX; pos: device int32 [n_tok]; inv_freq: device float [n_dims/2]. */
al_status al_cuda_rope(al_cuda *c, float *x, int64_t n_tok, int n_head, int head_dim, const int32_t *pos, int mode,
                       int n_dims, const float *inv_freq);
/* pos[t] = *base + t (device); base NULL: pos[t] = base_host + t. */
al_status al_cuda_positions(al_cuda *c, int32_t *pos, int64_t n, const int32_t *base, int32_t base_host);

/* ---- attention ------------------------------------------------------------------------------
 * The cache holds rows [n_ctx][n_head_kv * head_dim] in kv_type (AL_TYPE_F32 or AL_TYPE_F16).
 * al_cuda_kv_store writes src[n_tok][ld_src] into rows [n_past, n_past + n_tok). al_cuda_attention
 * is al_op_attention on that cache: n_tok > 1 runs a flash-attention kernel (online softmax over
 * key tiles); n_tok == 1 a split-K decode kernel plus a combine pass. When d_n_past is non-NULL
 * (device int32) it replaces n_past, so a captured graph can be replayed at any position. */
typedef struct al_cuda_attn_args {
    const float *q;           /* [n_tok][n_head][head_dim] */
    const void *kc, *vc;      /* caches */
    al_type kv_type;
    float *out;               /* [n_tok][n_head][head_dim] */
    int64_t n_tok, n_past;
    const int32_t *d_n_past;  /* NULL or device */
    int n_ctx;                /* cache capacity (rows) */
    int n_head, n_head_kv, head_dim, window;
    float scale;
    /* n_seq >= 2 (batched decode): n_seq sequences of one token each (n_tok 1): q and out row i, position
     * d_n_past[i], caches kcs[i] / vcs[i] (device arrays of n_seq pointers; kc / vc unused); n_ctx the
     * largest capacity among them. One launch for all. 0 or 1: the fields above alone. */
    int n_seq;
    const void *const *kcs, *const *vcs;
} al_cuda_attn_args;
al_status al_cuda_attention(al_cuda *c, const al_cuda_attn_args *a);
/* Decode/prefill glue of one attention layer in one launch, per token t (position pos[t], device):
 * q[t] heads and k[t] heads get the per-head RMSNorm (q_norm / k_norm, NULL: none) then RoPE (mode 0:
 * none, 1 NORM, 2 NEOX over n_dims with inv_freq), q in place; k and v[t] are stored into cache row
 * pos[t]. Equals rms_norm + rope + kv_store. */
typedef struct al_cuda_qkv_args {
    float *q;
    const float *k, *v;        /* [n_tok][n_head(_kv) * head_dim] */
    const float *q_norm, *k_norm;
    float eps;
    int64_t n_tok;
    int n_head, n_head_kv, head_dim;
    const int32_t *pos;
    int rope_mode, n_dims;
    const float *inv_freq;
    void *kc, *vc;
    al_type kv_type;
    /* batched decode: token t's caches kcs[t] / vcs[t] (device arrays of n_tok pointers) instead of kc / vc */
    void *const *kcs, *const *vcs;
} al_cuda_qkv_args;
al_status al_cuda_qkv_post(al_cuda *c, const al_cuda_qkv_args *a);
al_status al_cuda_kv_store(al_cuda *c, void *cache, al_type kv_type, int64_t row, const float *src, int64_t ld_src,
                           int64_t n_tok, int64_t n_past, const int32_t *d_n_past);

/* ---- state-space ops ---------------------------------------------------------------------- */
/* al_op_conv1d_causal (conv + bias + SiLU fused) with row strides; state[k-1][ch] updated. */
al_status al_cuda_conv1d_causal(al_cuda *c, const float *x, int64_t ldx, int64_t n_tok, int ch, int k, const float *w,
                                const float *b, float *state, float *y, int64_t ldy, bool apply_silu);
/* Mamba-2 dt: dt[t][h] = clamp(max(softplus(raw[t][h] + bias[h]), floor), lo, hi); bias may be NULL. */
al_status al_cuda_ssm_dt(al_cuda *c, const float *raw, int64_t ld_raw, const float *bias, float *dt, int64_t n_tok, int H,
                         float floor_, float lo, float hi);
/* al_op_ssd: n_tok > 1 runs the chunked SSD scan (chunk-local states, a sequential pass over chunk
 * states, then the intra-chunk matrix form plus the carried state); n_tok == 1 the fused one-step
 * update. Shapes as al_ssd_args (chunk is chosen by the GPU code; the result is the same). */
typedef struct al_cuda_ssd_args {
    const float *x, *dt, *B, *C, *A, *D;
    int64_t x_stride, dt_stride, bc_stride;
    float *state, *y;
    int64_t n_tok;
    int H, P, N, G;
} al_cuda_ssd_args;
al_status al_cuda_ssd(al_cuda *c, const al_cuda_ssd_args *a);
/* al_op_selective_scan (Mamba-1). */
al_status al_cuda_selective_scan(al_cuda *c, const float *x, const float *dt, const float *A, const float *B,
                                 const float *C, int64_t bc_stride, const float *Dskip, float *state, float *y,
                                 int64_t n_tok, int Dn, int N);

/* ---- MoE ------------------------------------------------------------------------------------
 * Routing as the CPU forward: softmax over E logits[n_tok][E], the top-k experts by probability
 * (ties: lowest index), weights = their probabilities (not renormalised). ids/weights [n_tok][k]. */
al_status al_cuda_moe_route(al_cuda *c, const float *logits, int64_t n_tok, int E, int k, int32_t *ids, float *weights);
/* y[i] += Σ_j w[j] * x[j][i] over j < k rows of stride ldx (w: device). */
al_status al_cuda_weighted_sum(al_cuda *c, const float *x, int64_t ldx, const float *w, int k, float *y, int64_t n);

/* ---- persistent decode programs -------------------------------------------------------------
 * A decode step as one kernel launch: ops are recorded into an al_cuda_prog, then the whole list
 * runs in one cooperative kernel whose blocks stay resident and meet at a grid-wide barrier after
 * each op (no launch or dependency latency between ops; each block prefetches its share of the next
 * op's weights into L2 before the barrier). Each op computes what the same-named op above does.
 *  - While a program records (al_cuda_prog_init .. al_cuda_prog_finish) the context refuses every
 *    other kernel launch (AL_ERR_IO), so a caller recording a forward pass learns of any op that has
 *    no recorded form instead of running it.
 *  - Pointers are captured at record time: buffers must outlive the program. The position of the
 *    decoded token is read at run time from device memory (d_pos[0]).
 *  - Ops that do not fit (a weight type without an integer kernel, head_dim > 256, …) return
 *    AL_ERR_UNSUPPORTED and record nothing. */
typedef struct al_cuda_prog al_cuda_prog;

typedef struct al_cuda_prog_attn { /* qkv_post + attention for one decode token */
    const float *q, *k, *v;                         /* product outputs [n_head*hd], [n_head_kv*hd] */
    const float *bq, *bk, *bv, *q_norm, *k_norm;    /* optional (NULL) */
    void *kc, *vc;                                  /* caches [n_ctx][n_head_kv][hd]; row pos written */
    al_type kv_type;                                /* F16 or F32 */
    float *out;                                     /* [n_head*hd] */
    int n_head, n_head_kv, head_dim, window, n_ctx;
    int rope_mode, n_dims;                          /* as al_cuda_qkv_args */
    const float *inv_freq;
    float scale, eps;
} al_cuda_prog_attn;

typedef struct al_cuda_prog_ssm { /* Mamba-2 decode: dt, conv1d step + SiLU, SSD step */
    const float *zx;                /* in_proj output [2 di + 2 G N + H]: z | x B C | dt */
    const float *conv_w, *conv_b, *A, *D, *dt_bias;
    float *conv_state;              /* [d_conv - 1][di + 2 G N] (updated in the next op's phase) */
    float *state, *y;               /* [H][P][N], [H * P] (y before the gated norm) */
    int H, P, N, G, d_conv;
    float dt_lo, dt_hi;             /* clamp of softplus(dt + bias) */
} al_cuda_prog_ssm;

al_status al_cuda_prog_init(al_cuda_prog **out, al_cuda *c);
void al_cuda_prog_free(al_cuda_prog *p);
/* al_cuda_matvec_n / al_cuda_matvec_glu; matvec_act: Y = act(x·Wᵀ) for one weight */
al_status al_cuda_prog_matvec(al_cuda_prog *p, const al_cuda_weight *const *W, int n, const al_cuda_vec_in *in,
                              float *const *Y);
al_status al_cuda_prog_matvec_act(al_cuda_prog *p, al_cuda_act_kind act, const al_cuda_weight *W, const al_cuda_vec_in *in,
                                  float *Y);
al_status al_cuda_prog_matvec_glu(al_cuda_prog *p, al_cuda_act_kind act, const al_cuda_weight *Wg, const al_cuda_weight *Wu,
                                  const al_cuda_vec_in *in, float *Y);
al_status al_cuda_prog_attention(al_cuda_prog *p, const al_cuda_prog_attn *a);
al_status al_cuda_prog_ssm_step(al_cuda_prog *p, const al_cuda_prog_ssm *a);
/* out[k] = row `token` (al_cuda_prog_run's) of W, dequantized (recorded first). Where the next op is a
 * product whose pre-norm reads out, every block also writes a copy of its own that the product reads,
 * and no grid barrier follows; otherwise one does. */
al_status al_cuda_prog_embed(al_cuda_prog *p, const al_cuda_weight *W, float *out);
/* Ends recording: uploads the ops and sizes the grid (blocks_per_sm <= 0: as many as fit). */
al_status al_cuda_prog_finish(al_cuda_prog *p, int blocks_per_sm);
/* Enqueues one run on the context's stream: the token at position pos (attention keys [0, pos]);
 * token is range-checked against the embedding table when one was recorded. */
al_status al_cuda_prog_run(al_cuda_prog *p, int pos, int32_t token);
/* ops recorded, grid-wide barriers per run, blocks of the grid */
void al_cuda_prog_shape(const al_cuda_prog *p, int *n_ops, int *n_sync, int *n_blocks);
/* Before al_cuda_prog_finish: weight rows a warp group takes per step in the products, 2 or 4 (more
 * loads in flight, fewer groups); <= 0 (the default): 4 for all-Q6_K products where every group has >= 2
 * steps of 2 rows (the LM heads), else 2. */
void al_cuda_prog_set_rows(al_cuda_prog *p, int rows);
/* Before al_cuda_prog_finish: where an attention's output feeds only the next product (wo), that
 * product merges 2 .. 4 live key splits while loading its input, instead of the attention's last
 * unit of each KV head after an arrival count (on by default). */
void al_cuda_prog_set_merge(al_cuda_prog *p, bool on);
/* Before al_cuda_prog_finish: whether a sub-block prepares its first attention / SSM unit (cached K/V
 * tiles, state rows by cp.async) while the grid barrier before the op is pending (on by default), or
 * only once the barrier is passed. */
void al_cuda_prog_set_unit_pre(al_cuda_prog *p, bool on);
/* Which sub-block's first thread polls the grid barrier (0 .. 3; default 3, any other value 3). Unit
 * u of an op goes to sub-block u / blocks, so sub-block 0 holds the first attention / SSM units and
 * issues their copies while the barrier is pending (al_cuda_prog_set_unit_pre), which delays its
 * poll: sub-block 3 polling measured +1.0-1.6 % tg128 on the H200 (docs/benchmarks-cuda.md v13). */
void al_cuda_prog_set_poller(al_cuda_prog *p, int sub);
/* Before al_cuda_prog_finish: launch in thread-block clusters of `blocks` (2 or 4; else none, the
 * default) whose first block arrives on the grid barrier for the cluster after the cluster barrier
 * (grid / blocks arrivals on the counter instead of grid). Dropped at finish where the GPU cannot
 * hold the whole grid in such clusters (al_cuda_prog_cluster then says 1). */
void al_cuda_prog_set_cluster(al_cuda_prog *p, int blocks);
int al_cuda_prog_cluster(const al_cuda_prog *p);
/* Before al_cuda_prog_finish: how many row steps ahead a product's warps put their weight rows into
 * L2 (1 .. 4; default 1: each step the next step's rows, the first step's while the barrier before
 * the product is pending). */
void al_cuda_prog_set_prefetch_ahead(al_cuda_prog *p, int steps);
/* Before al_cuda_prog_finish: whether the norm weights of a product's fused pre-norm are put into L2
 * while the barrier before it is pending (off by default; otherwise the input stage may wait a DRAM
 * round trip for them, the weights streaming through L2 having evicted them since the last token). */
void al_cuda_prog_set_norm_prefetch(al_cuda_prog *p, bool on);
/* Tagged hand-off levels (al_cuda_prog_set_tagged): which grid barriers may go */
typedef enum al_tag_level {
    AL_TAG_AUTO = -1,    /* session parameter only: AL_TAG_SMALL for transformers of n_embd <= 1024
                          * without SSM layers, else AL_TAG_OFF (measured on an H100: +4 % Qwen3-0.6B;
                          * level 3 -12 % Llama-3.2-1B; docs/benchmarks-cuda.md v18, v20) */
    AL_TAG_OFF = 0,      /* every op ends at a grid barrier (the program's default) */
    AL_TAG_PRODUCTS = 1, /* wo -> gate/up -> down -> next QKV / LM head */
    AL_TAG_ATTN_IN = 2,  /* also QKV -> attention */
    AL_TAG_FULL = 3,     /* also attention -> wo: no barrier inside a transformer layer */
    /* or the edges one by one (an experiment): AL_TAG_EDGES | any of the three kinds (levels 1, 2, 3 are
     * the edges {PP}, {PP, PA}, {PP, PA, AP}); e.g. AL_TAG_EDGES | AL_TAG_E_AP keeps every barrier but
     * the one after each attention */
    AL_TAG_EDGES = 8,
    AL_TAG_E_PP = 1,     /* product -> product */
    AL_TAG_E_PA = 2,     /* product -> attention (QKV -> attention) */
    AL_TAG_E_AP = 4,     /* attention -> product (attention -> wo) */
    AL_TAG_SMALL = AL_TAG_EDGES | AL_TAG_E_PP | AL_TAG_E_AP /* what AL_TAG_AUTO picks for small transformers */
} al_tag_level;
/* Before al_cuda_prog_finish: tagged hand-off up to level (the program's default: off; sessions
 * choose per model, AL_TAG_AUTO; measured in docs/benchmarks-cuda.md v16, v18). Where an op's output is read by the next op (the edges of the level), no grid
 * barrier follows it: the output goes out as {value, op tag} words beside the plain floats, and the
 * readers reload each word until it carries its writer's tag (src/cuda/prog_plan.h has the rules;
 * al_cuda_prog_shape counts the barriers left, not counting an attention's barrier that only
 * positions whose last unit per KV head merges the key splits meet). Out-of-range levels clamp;
 * AL_TAG_EDGES | mask (mask 0 .. 7) selects the edges one by one. */
void al_cuda_prog_set_tagged(al_cuda_prog *p, int level);
/* The level the finished program runs (al_cuda_prog_set_kernel_ref: 0). */
int al_cuda_prog_tag_level(const al_cuda_prog *p);
/* Before al_cuda_prog_finish: tagged words read and written with gpu-scope relaxed accesses (true)
 * or volatile, i.e. system-scope, ones as NCCL's LL protocol (false, default) */
void al_cuda_prog_set_tag_scope(al_cuda_prog *p, bool gpu);
/* Before al_cuda_prog_finish: ns of sleep before each reload of a tagged word not yet there (0 .. 1000,
 * default 0): less polling traffic in L2 while the weights of the products stream through it */
void al_cuda_prog_set_tag_nap(al_cuda_prog *p, int ns);
/* (synchronous) whether a tagged wait of any run so far gave up on a word that never came (~0.2 s):
 * a bug of the plan or the kernel, reported instead of hanging the GPU; the results are then wrong */
al_status al_cuda_prog_tag_failed(al_cuda_prog *p, bool *failed);
/* Before recording attention ops: keys per attention unit, 32 or 64 (<= 0: the default, 64 where
 * the tiles fit in 48 KiB); fewer where shared memory is short. */
void al_cuda_prog_set_attn_split(al_cuda_prog *p, int keys);
/* Before al_cuda_prog_finish: run the barrier program (no tagged hand-off) on the kernel instance that
 * the tagged level would select. The tagged hand-off compiles its own instance, whose floating-point
 * contractions may differ from the default one's by an ulp; this gives its tests a reference that
 * matches levels 1 and 2 bit for bit (tests only). */
void al_cuda_prog_set_kernel_ref(al_cuda_prog *p, bool on);
/* Profiling: with timing on, each run stamps the GPU clock as block 0 enters each op and the times
 * each block entered it, had its input (products: pre-norm and int8 activations done) and finished
 * it; al_cuda_prog_times (synchronous) fills t[n_ops] of the last run, in µs from block 0
 * entering op i: us to block 0 entering op i + 1 (barrier included), work to the last block
 * finishing (us - work: the barrier's own latency), enter to the last block entering, input to the
 * last block having its input (0 for other ops). op_name describes op i ("matvec glu k 1024 rows 3072
 * +norm", "attention …"). */
typedef struct al_cuda_prog_time {
    double us, work, enter, input;
} al_cuda_prog_time;
al_status al_cuda_prog_timing(al_cuda_prog *p, bool on);
al_status al_cuda_prog_times(al_cuda_prog *p, al_cuda_prog_time *t);
void al_cuda_prog_op_name(const al_cuda_prog *p, int i, char *buf, size_t size);
/* With timing on, after a run: t[3 (i n_blocks + b) + w] = µs from the start of the run to block b
 * finishing op i (w = 0), entering it (w = 1, after the barrier before it) and having its input (w =
 * 2, products only; else 0); n_blocks of al_cuda_prog_shape. */
al_status al_cuda_prog_block_times(al_cuda_prog *p, double *t);
/* With timing on: the mean µs (SM clock) of the phases of attention unit 0 in the last run — tiles
 * arrived (the q / k norm weights), q / k heads formed and the K / V tiles arrived, scores, softmax, P·V and partial stores, split arrival (atomic), merge. */
al_status al_cuda_prog_attn_phases(al_cuda_prog *p, double us[7]);

/* ---- the GPU forward pass ------------------------------------------------------------------
 * al_cuda_model uploads every weight of a loaded al_model (in its stored type) to the device.
 * al_cuda_session is the GPU twin of al_session: same eval semantics, logits returned to host
 * memory. Prefill runs in micro-batches of up to 2048 tokens (session parameter ubatch); decode (n == 1) runs as one persistent
 * kernel (al_cuda_prog, recorded at session start) where every op of the model has a recorded form,
 * else it is captured once into a CUDA graph and replayed (position and token live in device memory). */
typedef struct al_cuda_model al_cuda_model;
typedef struct al_cuda_session al_cuda_session;

typedef struct al_cuda_session_params {
    int n_ctx;          /* <= 0: as al_session_init */
    al_type kv_type;    /* AL_TYPE_F16 or AL_TYPE_F32 */
    bool use_graph;     /* capture decode into a CUDA graph */
    bool persistent;    /* decode as one persistent kernel (al_cuda_prog) where every op has one */
    int persist_blocks_per_sm; /* <= 0: as many as fit */
    int persist_rows;          /* al_cuda_prog_set_rows (<= 0: automatic) */
    bool persist_no_merge;     /* al_cuda_prog_set_merge(false) */
    int persist_attn_keys;     /* al_cuda_prog_set_attn_split (0: default) */
    bool persist_no_unit_pre;  /* al_cuda_prog_set_unit_pre(false) */
    int persist_poller;        /* al_cuda_prog_set_poller (default params: -1, the program's default) */
    int persist_cluster;       /* al_cuda_prog_set_cluster (0: none) */
    int persist_ahead;         /* al_cuda_prog_set_prefetch_ahead (<= 0: 1) */
    bool persist_norm_prefetch; /* al_cuda_prog_set_norm_prefetch(true) */
    int persist_tagged;        /* al_cuda_prog_set_tagged: an al_tag_level (default params: AL_TAG_AUTO) */
    bool persist_tag_gpu;      /* al_cuda_prog_set_tag_scope(true) */
    int persist_tag_nap;       /* al_cuda_prog_set_tag_nap */
    bool persist_kernel_ref;   /* al_cuda_prog_set_kernel_ref(true) */
    int ubatch;                /* prefill micro-batch in tokens (<= 0: 2048; at most n_ctx) */
} al_cuda_session_params;
/* n_ctx 0, F16 cache, graphs on, persistent decode on, the program's barrier poller, tagged hand-off AL_TAG_AUTO */
al_cuda_session_params al_cuda_session_default_params(void);

/* The model must outlive the al_cuda_model, which must outlive its sessions. */
al_status al_cuda_model_init(al_cuda_model **out, al_cuda *c, al_model *m);
/* Partial offload (llama.cpp's -ngl N): only the last n_gpu_layers layers, the final norm and the LM
 * head go to the device; every session runs the embedding and the layers before them on the CPU (the
 * model's threads; their caches in host memory) and copies the residual stream up, each eval and
 * decode step. n_gpu_layers < 0 or >= n_layer: every layer (al_cuda_model_init); 0: only the head.
 * Decode then replays the CUDA graph (no persistent kernel). */
al_status al_cuda_model_init_layers(al_cuda_model **out, al_cuda *c, al_model *m, int n_gpu_layers);
int al_cuda_model_gpu_layers(const al_cuda_model *cm); /* layers on the device */
void al_cuda_model_free(al_cuda_model *cm);
size_t al_cuda_model_bytes(const al_cuda_model *cm); /* device bytes of the weights */

al_status al_cuda_session_init(al_cuda_session **out, al_cuda_model *cm, const al_cuda_session_params *p);
void al_cuda_session_free(al_cuda_session *s);
void al_cuda_session_reset(al_cuda_session *s);
/* As al_session_truncate: keep the first n tokens (models without conv / SSM state only). */
al_status al_cuda_session_truncate(al_cuda_session *s, int n);
/* As al_session_snapshot / al_session_restore (the snapshot in device memory, enqueued copies). */
al_status al_cuda_session_snapshot(al_cuda_session *s);
al_status al_cuda_session_restore(al_cuda_session *s);
int al_cuda_session_pos(const al_cuda_session *s);
int al_cuda_session_n_ctx(const al_cuda_session *s); /* capacity in tokens */
/* Whether decode replays a CUDA graph; when capture failed, *why (may be NULL) says why. */
bool al_cuda_session_graph_active(const al_cuda_session *s, al_status *why);
/* Whether decode runs the persistent kernel; when not, *why (may be NULL) says why. */
bool al_cuda_session_persistent_active(const al_cuda_session *s, al_status *why);
/* The session's persistent program (NULL when not active), for profiling. */
al_cuda_prog *al_cuda_session_prog(al_cuda_session *s);
/* As al_session_eval; logits is host memory ([n][n_vocab] or [n_vocab]) or NULL. */
al_status al_cuda_session_eval(al_cuda_session *s, const int32_t *tokens, int n, float *logits, bool all_logits);
/* One decode step of token (al_cuda_session_eval of one token without the copy): *logits (if not
 * NULL) points at the session's pinned host buffer [n_vocab], valid until its next eval / decode. */
/* The session's pinned host buffer [n_vocab] that decode copies logits into (al_cuda_session_decode's
 * *logits); alive until the session is freed. Passing it as eval's or decode_batch's logits saves the
 * copy out of it. */
float *al_cuda_session_logits_buffer(al_cuda_session *s);
al_status al_cuda_session_decode(al_cuda_session *s, int32_t token, const float **logits);
/* One decode step of each of n distinct sessions of one al_cuda_model, token tok[i] into ss[i], as
 * the n rows of one forward pass in ss[0]'s buffers: every weight is read once per 4 rows (the
 * integer matrix-vector kernels), attention and SSM steps run per session on its own state. The
 * first pass of a set of sessions (in this order) runs eagerly and, with use_graph, is captured into
 * a CUDA graph that later passes of the same set replay (up to 8 sets per leading session ss[0]);
 * n == 1 is al_cuda_session_decode. logits[i]: host [n_vocab]. n <= al_cuda_session_batch_max(ss[0])
 * (min(64, ubatch / 2)). */
al_status al_cuda_session_decode_batch(al_cuda_session *const *ss, const int32_t *tok, int n, float *const *logits);
int al_cuda_session_batch_max(const al_cuda_session *s);
/* Captured batched-decode graphs led by s; *why (may be NULL): why capture stopped, if it failed. */
int al_cuda_session_batch_graphs(const al_cuda_session *s, al_status *why);

/* ---- serving: the engine's GPU backend --------------------------------------------------------
 * An al_engine_backend (alloy/engine.h) whose slots are al_cuda_sessions of one al_cuda_model on
 * GPU `device`, in a context of its own made here; hand it to al_engine_init_backend (or
 * al_server_params.backend), which owns it from then on. Prefill runs in chunks of
 * session.ubatch tokens (<= 0: 512), the engine's prefill_chunk. A decode call of n slots runs
 *  - batch <= 1: each slot's decode step in turn (its persistent kernel or graph): n streams share
 *    one stream's token rate;
 *  - batch >= 2: groups of up to `batch` slots through al_cuda_session_decode_batch (one forward
 *    pass per group, eager launches), a lone slot through its own decode step.
 * The model must outlive the backend. */
typedef struct al_cuda_serve_params {
    int device;
    int n_gpu_layers;               /* al_cuda_model_init_layers (< 0: all) */
    al_cuda_session_params session; /* every slot's; n_ctx comes from the engine */
    int batch;
} al_cuda_serve_params;
al_cuda_serve_params al_cuda_serve_default_params(void); /* device 0, default session, batch 1 */
al_status al_cuda_engine_backend_init(al_engine_backend *out, al_model *m, const al_cuda_serve_params *p);

#ifdef __cplusplus
}
#endif
#endif
