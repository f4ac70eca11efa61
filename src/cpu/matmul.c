/*
 * matmul.c — al_cpu (thread pool + scratch) and al_cpu_matmul: Y[m][n_out] = X[m][k] · W[n_out][k]ᵀ.
 *
 * Plan of one call:
 *  1. X rows are converted to W's vec_dot_type into scratch (F32 activations are used in place).
 *  2. One parallel section computes tiles of (RB weight rows) × (CB activation rows). Threads take
 *     tiles from a shared atomic counter (first tile = thread id), so a slow thread never leaves
 *     the others idle at the end. Inside a tile each weight row is dotted with AL_DOT_NR
 *     activation rows per kernel call: the weight block is decoded once per NR rows, and the
 *     CB activation rows stay in L2 while RB weight rows stream through.
 *     Decode (m = 1): CB = 1 and RB is sized for ~8 tiles per thread.
 *  3. With OpenBLAS and float weights and large m, sgemm does the work instead (F16/BF16 weights
 *     are widened to F32 a slab of rows at a time, in parallel, into scratch).
 */
#include <stdatomic.h>
#include <string.h>

#include "cpu/cpu_impl.h"

#if defined(ALLOY_HAVE_OPENBLAS)
#include <cblas.h>
#endif

struct al_cpu {
    al_pool *pool;
    al_isa isa;
    void *scratch;
    size_t scratch_size;
};

al_status al_cpu_init(al_cpu **out, int n_threads, al_isa isa) {
    *out = NULL;
    if (isa == AL_ISA_AUTO) isa = al_isa_best();
    if (!al_isa_supported(isa))
        return al_err(AL_ERR_UNSUPPORTED, "cpu: ISA %s is not available on this machine/build", al_isa_name(isa));
    al_cpu *c = al_calloc(NULL, 1, sizeof *c);
    if (!c) return al_err(AL_ERR_NOMEM, "cpu: out of memory");
    al_status st = al_pool_init(&c->pool, n_threads);
    if (al_failed(&st)) {
        al_free(NULL, c);
        return al_err_wrap(st, "cpu");
    }
    c->isa = isa;
    *out = c;
    return al_ok();
}

void al_cpu_free(al_cpu *c) {
    if (!c) return;
    al_pool_free(c->pool);
    al_free(NULL, c->scratch);
    al_free(NULL, c);
}

al_pool *al_cpu_pool(al_cpu *c) { return c ? c->pool : NULL; }
al_isa al_cpu_isa(const al_cpu *c) { return c ? c->isa : AL_ISA_SCALAR; }
int al_cpu_threads(const al_cpu *c) { return c ? al_pool_size(c->pool) : 1; }

static al_status scratch_reserve(al_cpu *c, size_t size) {
    if (size <= c->scratch_size) return al_ok();
    size_t want = size + size / 4;
    void *p = al_alloc(NULL, want);
    if (!p) return al_err(AL_ERR_NOMEM, "cpu: cannot allocate %zu bytes of scratch", want);
    al_free(NULL, c->scratch);
    c->scratch = p;
    c->scratch_size = want;
    return al_ok();
}

/* ---- activation conversion ------------------------------------------------------------------ */

typedef struct act_job {
    al_type vt;
    al_isa isa;
    const float *X;
    int64_t ldx, k, m;
    char *out;
    size_t row_size;
} act_job;

static void act_task(void *arg, int ith, int nth) {
    act_job *j = arg;
    int64_t lo, hi;
    al_split(j->m, ith, nth, &lo, &hi);
    for (int64_t r = lo; r < hi; r++)
        (void)al_quantize_act(j->vt, j->X + r * j->ldx, j->out + (size_t)r * j->row_size, j->k, j->isa);
}

/* ---- tiled dot section ---------------------------------------------------------------------- */

/* One weight matrix of a (possibly fused) product; tiles of all parts share one counter. */
typedef struct mm_part {
    al_dot_nr_fn dotn;
    const char *w;
    size_t w_stride;
    float *Y;
    int64_t ldy, n_out;
    int64_t rb, n_rt, tile0; /* rows per tile, row tiles, index of the part's first tile */
} mm_part;

enum { MM_MAX_PARTS = 4 };

typedef struct mm_job {
    mm_part part[MM_MAX_PARTS];
    int n_parts;
    const char *y;
    size_t y_stride;
    int64_t k, m, cb, n_ct, n_tiles;
    _Atomic int64_t next;
} mm_job;

static void mm_tile(const mm_job *j, int64_t t) {
    int p = 0;
    while (p + 1 < j->n_parts && t >= j->part[p + 1].tile0) p++;
    const mm_part *pt = &j->part[p];
    t -= pt->tile0;
    const int64_t r0 = (t % pt->n_rt) * pt->rb, c0 = (t / pt->n_rt) * j->cb;
    const int64_t r1 = r0 + pt->rb < pt->n_out ? r0 + pt->rb : pt->n_out;
    const int64_t c1 = c0 + j->cb < j->m ? c0 + j->cb : j->m;
    for (int64_t r = r0; r < r1; r++) {
        const char *wr = pt->w + (size_t)r * pt->w_stride;
        for (int64_t c = c0; c < c1; c += AL_DOT_NR) {
            const int nr = c1 - c < AL_DOT_NR ? (int)(c1 - c) : AL_DOT_NR;
            pt->dotn(j->k, pt->Y + c * pt->ldy + r, (size_t)pt->ldy, wr, j->y + (size_t)c * j->y_stride, j->y_stride, nr);
        }
    }
}

static void mm_task(void *arg, int ith, int nth) {
    mm_job *j = arg;
    for (int64_t t = ith; t < j->n_tiles; t = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed))
        mm_tile(j, t);
    (void)nth;
}

/* ---- OpenBLAS path for float weights ------------------------------------------------------------ */

#if defined(ALLOY_HAVE_OPENBLAS)
enum { BLAS_MIN_M = 16, BLAS_SLAB = 256 };

typedef struct widen_job {
    al_type t;
    al_isa isa;
    const char *w;
    size_t w_stride;
    int64_t k, rows;
    float *out;
} widen_job;

static void widen_task(void *arg, int ith, int nth) {
    widen_job *j = arg;
    int64_t lo, hi;
    al_split(j->rows, ith, nth, &lo, &hi);
    for (int64_t r = lo; r < hi; r++) al_widen_row(j->t, j->isa, j->w + (size_t)r * j->w_stride, j->out + r * j->k, j->k);
}

static al_status matmul_blas(al_cpu *c, const al_tensor *W, const float *X, int64_t ldx, float *Y, int64_t ldy,
                             int64_t m) {
    const int64_t k = W->ne[0], n_out = W->ne[1];
    if (W->type == AL_TYPE_F32 && W->nb[1] % sizeof(float) == 0) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)m, (blasint)n_out, (blasint)k, 1.0f, X,
                    (blasint)ldx, W->data, (blasint)(W->nb[1] / sizeof(float)), 0.0f, Y, (blasint)ldy);
        return al_ok();
    }
    const int64_t slab = n_out < BLAS_SLAB ? n_out : BLAS_SLAB;
    AL_TRY(scratch_reserve(c, (size_t)slab * (size_t)k * sizeof(float)));
    for (int64_t r0 = 0; r0 < n_out; r0 += slab) {
        const int64_t rows = n_out - r0 < slab ? n_out - r0 : slab;
        widen_job wj = {W->type, c->isa, (const char *)W->data + (size_t)r0 * W->nb[1], W->nb[1], k, rows, c->scratch};
        al_pool_run(c->pool, widen_task, &wj, 0);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)m, (blasint)rows, (blasint)k, 1.0f, X,
                    (blasint)ldx, c->scratch, (blasint)k, 0.0f, Y + r0, (blasint)ldy);
    }
    return al_ok();
}
#endif

/* ---- entry -------------------------------------------------------------------------------------- */

static al_status check_weight(const al_cpu *c, const al_tensor *W, int64_t m, int64_t ldx, int64_t ldy) {
    if (!W) return al_err(AL_ERR_INVALID, "matmul: NULL argument");
    if (W->ndim > 2 && (W->ne[2] != 1 || W->ne[3] != 1))
        return al_err(AL_ERR_INVALID, "matmul: weight must be 2-D, got [%lld,%lld,%lld,%lld]", (long long)W->ne[0],
                      (long long)W->ne[1], (long long)W->ne[2], (long long)W->ne[3]);
    const int64_t k = W->ne[0], n_out = W->ndim >= 2 ? W->ne[1] : 1;
    if (m < 0 || k <= 0 || n_out <= 0 || ldx < k || ldy < n_out)
        return al_err(AL_ERR_INVALID, "matmul: bad shape k=%lld n_out=%lld m=%lld ldx=%lld ldy=%lld", (long long)k,
                      (long long)n_out, (long long)m, (long long)ldx, (long long)ldy);
    if (!al_dot_nr_get(W->type, c->isa))
        return al_err(AL_ERR_UNSUPPORTED, "matmul: no dot kernel for weight type %s", al_type_name(W->type));
    const size_t wrow = al_type_row_size(W->type, k);
    if (wrow == 0 || (n_out > 1 && W->nb[1] < wrow))
        return al_err(AL_ERR_INVALID, "matmul: %s row of %lld elements is not whole blocks or rows overlap",
                      al_type_name(W->type), (long long)k);
    if (al_type_row_size(al_dot_act_type(W->type), k) == 0)
        return al_err(AL_ERR_INVALID, "matmul: k=%lld is not a multiple of the %s block", (long long)k,
                      al_type_name(al_dot_act_type(W->type)));
    return al_ok();
}

/* Products of one X with n weights of equal k and activation format, in one parallel section. */
static al_status matmul_parts(al_cpu *c, int n, const al_tensor *const *W, const float *X, int64_t ldx, float *const *Y,
                              const int64_t *ldy, int64_t m) {
    const int64_t k = W[0]->ne[0];
    const al_type vt = al_dot_act_type(W[0]->type);
    const size_t arow = al_type_row_size(vt, k);
    const char *ybase;
    size_t ystride;
    if (vt == AL_TYPE_F32) {
        ybase = (const char *)X;
        ystride = (size_t)ldx * sizeof(float);
    } else {
        size_t need;
        if (!al_mul_ok((size_t)m, arow, &need)) return al_err(AL_ERR_RANGE, "matmul: activation size overflows");
        AL_TRY(scratch_reserve(c, need));
        act_job aj = {vt, c->isa, X, ldx, k, m, c->scratch, arow};
        if (m == 1)
            act_task(&aj, 0, 1);
        else
            al_pool_run(c->pool, act_task, &aj, 0);
        ybase = c->scratch;
        ystride = arow;
    }
    const int nth = al_pool_size(c->pool);
    mm_job j = {.n_parts = n, .y = ybase, .y_stride = ystride, .k = k, .m = m};
    int64_t total_out = 0;
    for (int i = 0; i < n; i++) total_out += W[i]->ndim >= 2 ? W[i]->ne[1] : 1;
    j.cb = m == 1 ? 1 : 16;
    j.n_ct = (m + j.cb - 1) / j.cb;
    for (int i = 0; i < n; i++) {
        mm_part *pt = &j.part[i];
        pt->dotn = al_dot_nr_get(W[i]->type, c->isa);
        pt->w = W[i]->data;
        pt->w_stride = W[i]->nb[1];
        pt->Y = Y[i];
        pt->ldy = ldy[i];
        pt->n_out = W[i]->ndim >= 2 ? W[i]->ne[1] : 1;
        if (m == 1) {
            /* decode streams weights: long contiguous runs per tile beat fine-grained balancing
             * (measured: 2 tiles per thread per part > 8 > 32); each part is split on its own so
             * every thread gets an equal share of every matrix */
            pt->rb = (pt->n_out + 2 * nth - 1) / (2 * nth);
            if (pt->rb < 4) pt->rb = 4;
        } else {
            pt->rb = 16;
            /* keep every thread fed when the problem is small */
            while (pt->rb > 1 && ((total_out + pt->rb - 1) / pt->rb) * j.n_ct < 4 * nth) pt->rb /= 2;
        }
        pt->n_rt = (pt->n_out + pt->rb - 1) / pt->rb;
        pt->tile0 = j.n_tiles;
        j.n_tiles += pt->n_rt * j.n_ct;
    }
    atomic_init(&j.next, nth);
    al_pool_run(c->pool, mm_task, &j, 0);
    return al_ok();
}

al_status al_cpu_matmul(al_cpu *c, const al_tensor *W, const float *X, int64_t ldx, float *Y, int64_t ldy,
                        int64_t m) {
    if (!c || !W || !X || !Y) return al_err(AL_ERR_INVALID, "matmul: NULL argument");
    AL_TRY(check_weight(c, W, m, ldx, ldy));
    if (m == 0) return al_ok();
#if defined(ALLOY_HAVE_OPENBLAS)
    if (m >= BLAS_MIN_M && (W->type == AL_TYPE_F32 || W->type == AL_TYPE_F16 || W->type == AL_TYPE_BF16))
        return matmul_blas(c, W, X, ldx, Y, ldy, m);
#endif
    return matmul_parts(c, 1, &W, X, ldx, &Y, &ldy, m);
}

al_status al_cpu_matmul_n(al_cpu *c, int n, const al_tensor *const *W, const float *X, int64_t ldx, float *const *Y,
                          const int64_t *ldy, int64_t m) {
    if (!c || !W || !X || !Y || !ldy || n <= 0) return al_err(AL_ERR_INVALID, "matmul_n: bad argument");
    for (int i = 0; i < n; i++) {
        if (!Y[i]) return al_err(AL_ERR_INVALID, "matmul_n: NULL output");
        AL_TRY(check_weight(c, W[i], m, ldx, ldy[i]));
    }
    if (m == 0) return al_ok();
    bool fuse = n <= MM_MAX_PARTS;
    for (int i = 1; i < n && fuse; i++)
        fuse = W[i]->ne[0] == W[0]->ne[0] && al_dot_act_type(W[i]->type) == al_dot_act_type(W[0]->type);
#if defined(ALLOY_HAVE_OPENBLAS)
    for (int i = 0; i < n && fuse; i++)
        fuse = !(m >= BLAS_MIN_M && (W[i]->type == AL_TYPE_F32 || W[i]->type == AL_TYPE_F16 || W[i]->type == AL_TYPE_BF16));
#endif
    if (fuse) return matmul_parts(c, n, W, X, ldx, Y, ldy, m);
    for (int i = 0; i < n; i++) AL_TRY(al_cpu_matmul(c, W[i], X, ldx, Y[i], ldy[i], m));
    return al_ok();
}
