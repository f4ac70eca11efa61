/* ops_attn.c — causal (optionally sliding-window) attention with GQA over a float32 KV cache. */
#include <float.h>
#include <math.h>

#include "alloy/cpu.h"
#include "alloy/ops.h"

typedef struct attn_job {
    const al_attn_args *a;
    al_vec_dot_fn dot; /* float32 dot of the best ISA */
} attn_job;

static void attn_task(void *arg, int ith, int nth) {
    const al_attn_args *a = ((attn_job *)arg)->a;
    al_vec_dot_fn dot = ((attn_job *)arg)->dot;
    int64_t total = a->n_tok * a->n_head, lo, hi;
    al_split(total, ith, nth, &lo, &hi);
    int hd = a->head_dim, group = a->n_head / a->n_head_kv;
    int64_t kv_row = (int64_t)a->n_head_kv * hd;
    float *sc = a->scratch + (size_t)ith * (size_t)(a->n_past + a->n_tok);
    for (int64_t job = lo; job < hi; job++) {
        int64_t t = job / a->n_head;
        int h = (int)(job % a->n_head), hk = h / group;
        int64_t p = a->n_past + t;
        int64_t j0 = a->window > 0 && p - a->window + 1 > 0 ? p - a->window + 1 : 0;
        const float *q = a->q + (t * a->n_head + h) * hd;
        float mx = -FLT_MAX;
        for (int64_t j = j0; j <= p; j++) {
            const float *k = a->kc + j * kv_row + (int64_t)hk * hd;
            float s;
            dot(hd, &s, q, k);
            s *= a->scale;
            sc[j] = s;
            if (s > mx) mx = s;
        }
        float sum = 0;
        for (int64_t j = j0; j <= p; j++) {
            sc[j] = expf(sc[j] - mx);
            sum += sc[j];
        }
        float inv = 1.0f / sum;
        float *o = a->out + (t * a->n_head + h) * hd;
        for (int d = 0; d < hd; d++) o[d] = 0;
        for (int64_t j = j0; j <= p; j++) {
            const float *v = a->vc + j * kv_row + (int64_t)hk * hd;
            float w = sc[j] * inv;
            for (int d = 0; d < hd; d++) o[d] += w * v[d];
        }
    }
}

void al_op_attention(al_pool *pool, const al_attn_args *a) {
    attn_job j = {a, al_vec_dot_get(AL_TYPE_F32, a->isa)};
    int64_t total = a->n_tok * a->n_head;
    al_pool_run(pool, attn_task, &j, total < al_pool_size(pool) ? (int)total : 0);
}
