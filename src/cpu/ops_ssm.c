/*
 * ops_ssm.c — state-space operators: causal depthwise conv, the Mamba-2 scan (chunked SSD for
 * prefill, one-step recurrence for decode) and the Mamba-1 selective scan.
 *
 * Mamba-2 per head h (group g), with a_t = dt_t * A_h and state S [P][N]:
 *   S_t = exp(a_t) S_{t-1} + dt_t x_t ⊗ B_t,   y_t = S_t C_t + D_h x_t.
 * Chunked form over a chunk [c0, c0+L) with cumulative sums Λ_t = Σ_{s<=t} a_s:
 *   y_t = exp(Λ_t) S_{c0-1} C_t + Σ_{s<=t} exp(Λ_t - Λ_s) dt_s (C_t·B_s) x_s + D x_t
 *   S_end = exp(Λ_last) S_{c0-1} + Σ_s exp(Λ_last - Λ_s) dt_s x_s ⊗ B_s
 */
#include <math.h>
#include <string.h>

#include "alloy/cpu.h"
#include "alloy/ops.h"

void al_op_conv1d_causal(const float *x, int64_t n_tok, int ch, int k, const float *w, const float *b, float *state,
                         float *y, bool apply_silu) {
    /* window[j] for j in [0, k): input at time t - (k-1) + j */
    for (int64_t t = 0; t < n_tok; t++) {
        for (int c = 0; c < ch; c++) {
            float acc = b ? b[c] : 0.0f;
            for (int j = 0; j < k; j++) {
                int64_t src = t - (k - 1) + j;
                float v = src >= 0 ? x[src * ch + c] : state[(int64_t)(k - 1 + src) * ch + c];
                acc += w[(int64_t)c * k + j] * v;
            }
            y[t * ch + c] = apply_silu ? acc / (1.0f + expf(-acc)) : acc;
        }
    }
    /* new state: last k-1 inputs (from state and x) */
    int km1 = k - 1;
    if (km1 <= 0) return;
    if (n_tok >= km1) {
        memcpy(state, x + (n_tok - km1) * ch, (size_t)km1 * (size_t)ch * sizeof(float));
    } else {
        memmove(state, state + n_tok * ch, (size_t)(km1 - n_tok) * (size_t)ch * sizeof(float));
        memcpy(state + (km1 - n_tok) * ch, x, (size_t)n_tok * (size_t)ch * sizeof(float));
    }
}

typedef struct ssd_job {
    const al_ssd_args *a;
    al_vec_dot_fn dot; /* float32 dot of the best ISA */
} ssd_job;

static void ssd_step_head(const al_ssd_args *a, int h, al_vec_dot_fn dot) {
    int P = a->P, N = a->N, g = h / (a->H / a->G);
    float *S = a->state + (int64_t)h * P * N;
    for (int64_t t = 0; t < a->n_tok; t++) {
        float dt = a->dt[t * a->dt_stride + h];
        float dA = expf(dt * a->A[h]);
        const float *x = a->x + t * a->x_stride + (int64_t)h * P;
        const float *B = a->B + t * a->bc_stride + (int64_t)g * N;
        const float *C = a->C + t * a->bc_stride + (int64_t)g * N;
        float *y = a->y + t * (int64_t)a->H * P + (int64_t)h * P;
        float dskip = a->D ? a->D[h] : 0.0f;
        for (int p = 0; p < P; p++) {
            float *s = S + (int64_t)p * N;
            float xv = dt * x[p], acc;
            for (int n = 0; n < N; n++) s[n] = s[n] * dA + xv * B[n];
            dot(N, &acc, s, C);
            y[p] = acc + dskip * x[p];
        }
    }
}

static void ssd_chunked_head(const al_ssd_args *a, int h, float *scratch, al_vec_dot_fn dot) {
    int P = a->P, N = a->N, L = a->chunk, g = h / (a->H / a->G);
    float *S = a->state + (int64_t)h * P * N;
    float *lam = scratch;           /* [L] cumulative log decay */
    float *dts = scratch + L;       /* [L] */
    float *M = scratch + 2 * L;     /* [L][L] masked decayed scores */
    float dskip = a->D ? a->D[h] : 0.0f;
    for (int64_t c0 = 0; c0 < a->n_tok; c0 += L) {
        int len = (int)(a->n_tok - c0 < L ? a->n_tok - c0 : L);
        float acc = 0;
        for (int t = 0; t < len; t++) {
            dts[t] = a->dt[(c0 + t) * a->dt_stride + h];
            acc += dts[t] * a->A[h];
            lam[t] = acc;
        }
        /* M[t][s] = (C_t·B_s) exp(Λ_t - Λ_s) dt_s for s <= t */
        for (int t = 0; t < len; t++) {
            const float *C = a->C + (c0 + t) * a->bc_stride + (int64_t)g * N;
            for (int s = 0; s <= t; s++) {
                const float *B = a->B + (c0 + s) * a->bc_stride + (int64_t)g * N;
                float cb;
                dot(N, &cb, C, B);
                M[t * L + s] = cb * expf(lam[t] - lam[s]) * dts[s];
            }
        }
        for (int t = 0; t < len; t++) {
            const float *C = a->C + (c0 + t) * a->bc_stride + (int64_t)g * N;
            const float *xt = a->x + (c0 + t) * a->x_stride + (int64_t)h * P;
            float *y = a->y + (c0 + t) * (int64_t)a->H * P + (int64_t)h * P;
            float e = expf(lam[t]);
            for (int p = 0; p < P; p++) {
                const float *s = S + (int64_t)p * N;
                float inter;
                dot(N, &inter, s, C);
                float intra = 0;
                for (int s2 = 0; s2 <= t; s2++) intra += M[t * L + s2] * a->x[(c0 + s2) * a->x_stride + (int64_t)h * P + p];
                y[p] = e * inter + intra + dskip * xt[p];
            }
        }
        /* state carry */
        float last = lam[len - 1], etot = expf(last);
        for (int p = 0; p < P; p++) {
            float *s = S + (int64_t)p * N;
            for (int n = 0; n < N; n++) s[n] *= etot;
        }
        for (int s2 = 0; s2 < len; s2++) {
            float wgt = expf(last - lam[s2]) * dts[s2];
            const float *B = a->B + (c0 + s2) * a->bc_stride + (int64_t)g * N;
            const float *xs = a->x + (c0 + s2) * a->x_stride + (int64_t)h * P;
            for (int p = 0; p < P; p++) {
                float xv = wgt * xs[p];
                float *s = S + (int64_t)p * N;
                for (int n = 0; n < N; n++) s[n] += xv * B[n];
            }
        }
    }
}

static void ssd_task(void *arg, int ith, int nth) {
    const al_ssd_args *a = ((ssd_job *)arg)->a;
    al_vec_dot_fn dot = ((ssd_job *)arg)->dot;
    int64_t lo, hi;
    al_split(a->H, ith, nth, &lo, &hi);
    float *scratch = a->scratch + (size_t)ith * (size_t)(a->chunk * a->chunk + 2 * a->chunk);
    for (int64_t h = lo; h < hi; h++) {
        if (a->n_tok > 1 && a->chunk > 1) ssd_chunked_head(a, (int)h, scratch, dot);
        else ssd_step_head(a, (int)h, dot);
    }
}

void al_op_ssd(al_pool *pool, const al_ssd_args *a) {
    ssd_job j = {a, al_vec_dot_get(AL_TYPE_F32, a->isa)};
    al_pool_run(pool, ssd_task, &j, a->H < al_pool_size(pool) ? a->H : 0);
}

typedef struct sscan_job {
    const float *x, *dt, *A, *B, *C, *Dskip;
    int64_t bc_stride, n_tok;
    float *state, *y;
    int Dn, N;
} sscan_job;

static void sscan_task(void *arg, int ith, int nth) {
    sscan_job *j = arg;
    int64_t lo, hi;
    al_split(j->Dn, ith, nth, &lo, &hi);
    for (int64_t d = lo; d < hi; d++) {
        float *s = j->state + d * j->N;
        const float *A = j->A + d * j->N;
        for (int64_t t = 0; t < j->n_tok; t++) {
            float dt = j->dt[t * j->Dn + d], xv = j->x[t * j->Dn + d];
            const float *B = j->B + t * j->bc_stride, *C = j->C + t * j->bc_stride;
            float acc = 0;
            for (int n = 0; n < j->N; n++) {
                s[n] = s[n] * expf(dt * A[n]) + dt * B[n] * xv;
                acc += s[n] * C[n];
            }
            j->y[t * j->Dn + d] = acc + (j->Dskip ? j->Dskip[d] * xv : 0.0f);
        }
    }
}

void al_op_selective_scan(al_pool *pool, const float *x, const float *dt, const float *A, const float *B, const float *C,
                          int64_t bc_stride, const float *Dskip, float *state, float *y, int64_t n_tok, int Dn, int N) {
    sscan_job j = {x, dt, A, B, C, Dskip, bc_stride, n_tok, state, y, Dn, N};
    al_pool_run(pool, sscan_task, &j, 0);
}
