/*
 * quant.c — the type traits table and row-level dispatch. Per-type kernels live in
 * quant_legacy.c (Q4_0..Q8_1), quant_k.c (K-quants), quant_iq.c (IQ4_NL/IQ4_XS), quant_float.c.
 */
#include <strings.h>

#include "format/quant_impl.h"

static const al_type_traits traits[AL_TYPE_COUNT] = {
    [AL_TYPE_F32] = {"F32", 1, 4, false, al_to_float_f32, al_from_float_f32, AL_TYPE_F32},
    [AL_TYPE_F16] = {"F16", 1, 2, false, al_to_float_f16, al_from_float_f16, AL_TYPE_F32},
    [AL_TYPE_BF16] = {"BF16", 1, 2, false, al_to_float_bf16, al_from_float_bf16, AL_TYPE_F32},
    [AL_TYPE_F64] = {"F64", 1, 8, false, NULL, NULL, AL_TYPE_F64},
    [AL_TYPE_I8] = {"I8", 1, 1, false, NULL, NULL, AL_TYPE_I8},
    [AL_TYPE_I16] = {"I16", 1, 2, false, NULL, NULL, AL_TYPE_I16},
    [AL_TYPE_I32] = {"I32", 1, 4, false, NULL, NULL, AL_TYPE_I32},
    [AL_TYPE_I64] = {"I64", 1, 8, false, NULL, NULL, AL_TYPE_I64},
    [AL_TYPE_Q4_0] = {"Q4_0", AL_QK4_0, sizeof(al_block_q4_0), true, al_to_float_q4_0, al_from_float_q4_0, AL_TYPE_Q8_0},
    [AL_TYPE_Q4_1] = {"Q4_1", AL_QK4_1, sizeof(al_block_q4_1), true, al_to_float_q4_1, al_from_float_q4_1, AL_TYPE_Q8_1},
    [AL_TYPE_Q5_0] = {"Q5_0", AL_QK5_0, sizeof(al_block_q5_0), true, al_to_float_q5_0, al_from_float_q5_0, AL_TYPE_Q8_0},
    [AL_TYPE_Q5_1] = {"Q5_1", AL_QK5_1, sizeof(al_block_q5_1), true, al_to_float_q5_1, al_from_float_q5_1, AL_TYPE_Q8_1},
    [AL_TYPE_Q8_0] = {"Q8_0", AL_QK8_0, sizeof(al_block_q8_0), true, al_to_float_q8_0, al_from_float_q8_0, AL_TYPE_Q8_0},
    [AL_TYPE_Q8_1] = {"Q8_1", AL_QK8_1, sizeof(al_block_q8_1), true, al_to_float_q8_1, al_from_float_q8_1, AL_TYPE_Q8_1},
    [AL_TYPE_Q2_K] = {"Q2_K", AL_QK_K, sizeof(al_block_q2_K), true, al_to_float_q2_K, al_from_float_q2_K, AL_TYPE_Q8_K},
    [AL_TYPE_Q3_K] = {"Q3_K", AL_QK_K, sizeof(al_block_q3_K), true, al_to_float_q3_K, al_from_float_q3_K, AL_TYPE_Q8_K},
    [AL_TYPE_Q4_K] = {"Q4_K", AL_QK_K, sizeof(al_block_q4_K), true, al_to_float_q4_K, al_from_float_q4_K, AL_TYPE_Q8_K},
    [AL_TYPE_Q5_K] = {"Q5_K", AL_QK_K, sizeof(al_block_q5_K), true, al_to_float_q5_K, al_from_float_q5_K, AL_TYPE_Q8_K},
    [AL_TYPE_Q6_K] = {"Q6_K", AL_QK_K, sizeof(al_block_q6_K), true, al_to_float_q6_K, al_from_float_q6_K, AL_TYPE_Q8_K},
    [AL_TYPE_Q8_K] = {"Q8_K", AL_QK_K, sizeof(al_block_q8_K), true, al_to_float_q8_K, al_from_float_q8_K, AL_TYPE_Q8_K},
    [AL_TYPE_IQ4_NL] = {"IQ4_NL", AL_QK4_NL, sizeof(al_block_iq4_nl), true, al_to_float_iq4_nl, al_from_float_iq4_nl, AL_TYPE_Q8_0},
    [AL_TYPE_IQ4_XS] = {"IQ4_XS", AL_QK_K, sizeof(al_block_iq4_xs), true, al_to_float_iq4_xs, al_from_float_iq4_xs, AL_TYPE_Q8_K},
};

static const al_type_traits unknown_traits = {NULL, 0, 0, false, NULL, NULL, AL_TYPE_COUNT};

const al_type_traits *al_type_traits_get(al_type t) {
    if ((unsigned)t >= AL_TYPE_COUNT || !traits[t].name) return &unknown_traits;
    return &traits[t];
}

bool al_type_valid(uint32_t id) { return id < AL_TYPE_COUNT && traits[id].name != NULL; }

const char *al_type_name(al_type t) {
    const char *n = al_type_traits_get(t)->name;
    return n ? n : "?";
}

bool al_type_from_name(const char *name, al_type *out) {
    for (int i = 0; i < AL_TYPE_COUNT; i++) {
        if (traits[i].name && strcasecmp(traits[i].name, name) == 0) {
            *out = (al_type)i;
            return true;
        }
    }
    return false;
}

size_t al_type_row_size(al_type t, int64_t n) {
    const al_type_traits *tr = al_type_traits_get(t);
    if (!tr->name || n < 0 || n % tr->block_size) return 0;
    return (size_t)(n / tr->block_size) * tr->type_size;
}

al_status al_dequantize_row(al_type t, const void *src, float *dst, int64_t n) {
    const al_type_traits *tr = al_type_traits_get(t);
    if (!tr->to_float) return al_err(AL_ERR_UNSUPPORTED, "cannot dequantize type %s", al_type_name(t));
    if (n % tr->block_size) return al_err(AL_ERR_INVALID, "%s: %lld not a multiple of %d", tr->name, (long long)n, tr->block_size);
    tr->to_float(src, dst, n);
    return al_ok();
}

al_status al_quantize_row(al_type t, const float *src, void *dst, int64_t n, const float *imatrix) {
    const al_type_traits *tr = al_type_traits_get(t);
    if (!tr->from_float) return al_err(AL_ERR_UNSUPPORTED, "cannot quantize to type %s", al_type_name(t));
    if (n % tr->block_size) return al_err(AL_ERR_INVALID, "%s: %lld not a multiple of %d", tr->name, (long long)n, tr->block_size);
    tr->from_float(src, dst, n, imatrix);
    return al_ok();
}

typedef struct rows_job {
    const al_type_traits *tr;
    const void *src;
    void *dst;
    int64_t nrows, n;
    size_t row_size;
    const float *imatrix;
    bool quantize;
} rows_job;

static void rows_task(void *arg, int ith, int nth) {
    rows_job *j = arg;
    int64_t lo, hi;
    al_split(j->nrows, ith, nth, &lo, &hi);
    for (int64_t r = lo; r < hi; r++) {
        if (j->quantize)
            j->tr->from_float((const float *)j->src + r * j->n, (char *)j->dst + (size_t)r * j->row_size, j->n, j->imatrix);
        else
            j->tr->to_float((const char *)j->src + (size_t)r * j->row_size, (float *)j->dst + r * j->n, j->n);
    }
}

static al_status rows_run(al_type t, const void *src, void *dst, int64_t nrows, int64_t n, const float *imatrix,
                          al_pool *pool, bool quantize) {
    const al_type_traits *tr = al_type_traits_get(t);
    if (quantize ? !tr->from_float : !tr->to_float)
        return al_err(AL_ERR_UNSUPPORTED, "cannot %s type %s", quantize ? "quantize to" : "dequantize", al_type_name(t));
    if (n % tr->block_size) return al_err(AL_ERR_INVALID, "%s: %lld not a multiple of %d", tr->name, (long long)n, tr->block_size);
    rows_job j = {tr, src, dst, nrows, n, al_type_row_size(t, n), imatrix, quantize};
    al_pool_run(pool, rows_task, &j, 0);
    return al_ok();
}

al_status al_quantize_rows(al_type t, const float *src, void *dst, int64_t nrows, int64_t n_per_row,
                           const float *imatrix, al_pool *pool) {
    return rows_run(t, src, dst, nrows, n_per_row, imatrix, pool, true);
}

al_status al_dequantize_rows(al_type t, const void *src, float *dst, int64_t nrows, int64_t n_per_row, al_pool *pool) {
    return rows_run(t, src, dst, nrows, n_per_row, NULL, pool, false);
}
