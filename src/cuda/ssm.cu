/*
 * ssm.cu — the Mamba-2 scan (chunked SSD for prefill, fused one-step update for decode) and the
 * Mamba-1 selective scan.
 *
 * Mamba-2 per head h (group g), a_t = dt_t A_h, state S [P][N]:
 *   S_t = exp(a_t) S_{t-1} + dt_t x_t ⊗ B_t,   y_t = S_t C_t + D_h x_t.
 * Chunked (chunks of SSD_L tokens, Λ_t = Σ_{s<=t in chunk} a_s):
 *   1. chunk_state: local end state  Sc = Σ_s exp(Λ_last − Λ_s) dt_s x_s ⊗ B_s  (from zero), per (chunk, head);
 *   2. state_pass:  sequential over chunks: S_in[c] = S; S = exp(Λ_last,c) S + Sc[c]  (per state element);
 *   3. chunk_out:   y_t = exp(Λ_t) C_t·S_in + Σ_{s<=t} (C_t·B_s) exp(Λ_t − Λ_s) dt_s x_s + D x_t
 *      (the intra-chunk part as an L×L masked matrix times the chunk's x).
 */
#include "cuda/cuda_impl.cuh"

#define SSD_L 64   /* chunk length */
#define SSD_NT 32  /* state columns per tile */
#define SSD_T 256  /* threads per block */

/* lam[t] = Σ_{s<=t} dt_s A, dts[t] = dt_t for t < len (thread 0 scans: 64 adds, as the CPU) */
__device__ void ssd_prefix(const float *dt, int64_t dt_stride, int64_t c0, int len, int h, float A, float *lam, float *dts) {
    if (threadIdx.x < len) dts[threadIdx.x] = dt[(c0 + threadIdx.x) * dt_stride + h];
    __syncthreads();
    if (threadIdx.x == 0) {
        float acc = 0.0f;
        for (int t = 0; t < len; t++) {
            acc += dts[t] * A;
            lam[t] = acc;
        }
    }
    __syncthreads();
}

__global__ void __launch_bounds__(SSD_T) k_ssd_chunk_state(al_cuda_ssd_args a, float *states, float *decay) {
    extern __shared__ float sm[];
    float *lam = sm, *dts = lam + SSD_L;
    float *xw = dts + SSD_L;             /* [SSD_L][P] */
    float *bt = xw + SSD_L * a.P;        /* [SSD_L][SSD_NT] */
    const int c = blockIdx.x, h = blockIdx.y, P = a.P, N = a.N, g = h / (a.H / a.G);
    const int64_t c0 = (int64_t)c * SSD_L;
    const int len = (int)(a.n_tok - c0 < SSD_L ? a.n_tok - c0 : SSD_L);
    ssd_prefix(a.dt, a.dt_stride, c0, len, h, a.A[h], lam, dts);
    const float last = lam[len - 1];
    for (int i = threadIdx.x; i < SSD_L * P; i += SSD_T) {
        const int s = i / P, p = i - s * P;
        xw[i] = s < len ? expf(last - lam[s]) * dts[s] * a.x[(c0 + s) * a.x_stride + (int64_t)h * P + p] : 0.0f;
    }
    float *out = states + ((int64_t)c * a.H + h) * P * N;
    for (int n0 = 0; n0 < N; n0 += SSD_NT) {
        __syncthreads();
        for (int i = threadIdx.x; i < SSD_L * SSD_NT; i += SSD_T) {
            const int s = i / SSD_NT, n = i - s * SSD_NT;
            bt[i] = (s < len && n0 + n < N) ? a.B[(c0 + s) * a.bc_stride + (int64_t)g * N + n0 + n] : 0.0f;
        }
        __syncthreads();
        for (int i = threadIdx.x; i < P * SSD_NT; i += SSD_T) {
            const int p = i / SSD_NT, n = i - p * SSD_NT;
            float acc = 0.0f;
            for (int s = 0; s < len; s++) acc = fmaf(xw[s * P + p], bt[s * SSD_NT + n], acc);
            if (n0 + n < N) out[(int64_t)p * N + n0 + n] = acc;
        }
    }
    if (threadIdx.x == 0) decay[(int64_t)c * a.H + h] = last;
}

/* states[c] (local end states) are replaced by the state entering chunk c; a.state gets the final one */
__global__ void k_ssd_state_pass(al_cuda_ssd_args a, int nc, float *states, const float *decay) {
    const int h = blockIdx.x;
    const int64_t PN = (int64_t)a.P * a.N, e = (int64_t)blockIdx.y * blockDim.x + threadIdx.x;
    if (e >= PN) return;
    float S = a.state[(int64_t)h * PN + e];
    for (int c = 0; c < nc; c++) {
        float *sp = states + ((int64_t)c * a.H + h) * PN + e;
        const float loc = *sp;
        *sp = S;
        S = S * expf(decay[(int64_t)c * a.H + h]) + loc;
    }
    a.state[(int64_t)h * PN + e] = S;
}

#define SSD_MAXR (SSD_L * 128 / SSD_T) /* accumulators per thread for P <= 128 */

__global__ void __launch_bounds__(SSD_T) k_ssd_chunk_out(al_cuda_ssd_args a, const float *states) {
    extern __shared__ float sm[];
    const int P = a.P, N = a.N;
    float *lam = sm, *dts = lam + SSD_L;
    float *M = dts + SSD_L;                         /* [SSD_L][SSD_L + 1] */
    float *R = M + SSD_L * (SSD_L + 1);             /* reused region */
    float *ct = R, *bt = R + SSD_L * (SSD_NT + 1);  /* phase 1: C, B tiles [SSD_L][SSD_NT + 1] */
    float *st = R + SSD_L * (SSD_NT + 1);           /* phase 2: S_in tile [P][SSD_NT + 1] */
    float *xs = R;                                  /* phase 3: x [SSD_L][P] */
    const int c = blockIdx.x, h = blockIdx.y, g = h / (a.H / a.G);
    const int64_t c0 = (int64_t)c * SSD_L;
    const int len = (int)(a.n_tok - c0 < SSD_L ? a.n_tok - c0 : SSD_L);
    ssd_prefix(a.dt, a.dt_stride, c0, len, h, a.A[h], lam, dts);
    const float *Sin = states + ((int64_t)c * a.H + h) * P * N;
    const float *Cb = a.C + c0 * a.bc_stride + (int64_t)g * N, *Bb = a.B + c0 * a.bc_stride + (int64_t)g * N;

    /* phase 1: M[t][s] = (C_t·B_s) exp(Λ_t − Λ_s) dt_s, s <= t */
    constexpr int R1 = SSD_L * SSD_L / SSD_T;
    float cb[R1];
#pragma unroll
    for (int r = 0; r < R1; r++) cb[r] = 0.0f;
    for (int n0 = 0; n0 < N; n0 += SSD_NT) {
        __syncthreads();
        for (int i = threadIdx.x; i < SSD_L * SSD_NT; i += SSD_T) {
            const int t = i / SSD_NT, n = i - t * SSD_NT;
            const bool ok = t < len && n0 + n < N;
            ct[t * (SSD_NT + 1) + n] = ok ? Cb[t * a.bc_stride + n0 + n] : 0.0f;
            bt[t * (SSD_NT + 1) + n] = ok ? Bb[t * a.bc_stride + n0 + n] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int r = 0; r < R1; r++) {
            const int idx = threadIdx.x + SSD_T * r, t = idx / SSD_L, s = idx % SSD_L;
            float acc = cb[r];
#pragma unroll 8
            for (int n = 0; n < SSD_NT; n++) acc = fmaf(ct[t * (SSD_NT + 1) + n], bt[s * (SSD_NT + 1) + n], acc);
            cb[r] = acc;
        }
    }
#pragma unroll
    for (int r = 0; r < R1; r++) {
        const int idx = threadIdx.x + SSD_T * r, t = idx / SSD_L, s = idx % SSD_L;
        M[t * (SSD_L + 1) + s] = (s <= t && t < len) ? cb[r] * expf(lam[t] - lam[s]) * dts[s] : 0.0f;
    }

    /* phase 2: y[t][p] = exp(Λ_t) Σ_n C_t[n] S_in[p][n] */
    float y[SSD_MAXR];
#pragma unroll
    for (int r = 0; r < SSD_MAXR; r++) y[r] = 0.0f;
    const int LP = SSD_L * P;
    for (int n0 = 0; n0 < N; n0 += SSD_NT) {
        __syncthreads();
        for (int i = threadIdx.x; i < SSD_L * SSD_NT; i += SSD_T) {
            const int t = i / SSD_NT, n = i - t * SSD_NT;
            ct[t * (SSD_NT + 1) + n] = (t < len && n0 + n < N) ? Cb[t * a.bc_stride + n0 + n] : 0.0f;
        }
        for (int i = threadIdx.x; i < P * SSD_NT; i += SSD_T) {
            const int p = i / SSD_NT, n = i - p * SSD_NT;
            st[p * (SSD_NT + 1) + n] = n0 + n < N ? Sin[(int64_t)p * N + n0 + n] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int r = 0; r < SSD_MAXR; r++) {
            const int idx = threadIdx.x + SSD_T * r;
            if (idx < LP) {
                const int t = idx / P, p = idx - t * P;
                float acc = y[r];
#pragma unroll 8
                for (int n = 0; n < SSD_NT; n++) acc = fmaf(ct[t * (SSD_NT + 1) + n], st[p * (SSD_NT + 1) + n], acc);
                y[r] = acc;
            }
        }
    }
    __syncthreads();
    /* phase 3: y += M · x + D x */
    for (int i = threadIdx.x; i < LP; i += SSD_T) {
        const int s = i / P, p = i - s * P;
        xs[i] = s < len ? a.x[(c0 + s) * a.x_stride + (int64_t)h * P + p] : 0.0f;
    }
    __syncthreads();
    const float Dh = a.D ? a.D[h] : 0.0f;
#pragma unroll
    for (int r = 0; r < SSD_MAXR; r++) {
        const int idx = threadIdx.x + SSD_T * r;
        if (idx < LP) {
            const int t = idx / P, p = idx - t * P;
            if (t < len) {
                float acc = y[r] * expf(lam[t]);
                for (int s = 0; s <= t; s++) acc = fmaf(M[t * (SSD_L + 1) + s], xs[s * P + p], acc);
                acc = fmaf(Dh, xs[t * P + p], acc);
                a.y[(c0 + t) * (int64_t)a.H * P + (int64_t)h * P + p] = acc;
            }
        }
    }
}

/* One warp per (head, p): lanes hold state columns n = lane + 32 i; sequential over tokens. */
#define STEP_MAXI 8
__global__ void k_ssd_step(al_cuda_ssd_args a) {
    const int h = blockIdx.x, p = blockIdx.y * 8 + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (p >= a.P) return;
    const int P = a.P, N = a.N, g = h / (a.H / a.G);
    float *S = a.state + ((int64_t)h * P + p) * N;
    float s[STEP_MAXI];
#pragma unroll
    for (int i = 0; i < STEP_MAXI; i++) s[i] = (lane + 32 * i < N) ? S[lane + 32 * i] : 0.0f;
    const float A = a.A[h], Dh = a.D ? a.D[h] : 0.0f;
    for (int64_t t = 0; t < a.n_tok; t++) {
        const float dt = a.dt[t * a.dt_stride + h], dA = expf(dt * A);
        const float xv = a.x[t * a.x_stride + (int64_t)h * P + p];
        const float *B = a.B + t * a.bc_stride + (int64_t)g * N, *C = a.C + t * a.bc_stride + (int64_t)g * N;
        float acc = 0.0f;
#pragma unroll
        for (int i = 0; i < STEP_MAXI; i++) {
            const int n = lane + 32 * i;
            if (n < N) {
                s[i] = s[i] * dA + dt * xv * B[n];
                acc = fmaf(s[i], C[n], acc);
            }
        }
        acc = al_warp_sum(acc);
        if (lane == 0) a.y[t * (int64_t)a.H * P + (int64_t)h * P + p] = acc + Dh * xv;
    }
#pragma unroll
    for (int i = 0; i < STEP_MAXI; i++)
        if (lane + 32 * i < N) S[lane + 32 * i] = s[i];
}

extern "C" al_status al_cuda_ssd(al_cuda *c, const al_cuda_ssd_args *a) {
    if (a->H <= 0 || a->G <= 0 || a->H % a->G || a->P <= 0 || a->N <= 0 || a->N > 32 * STEP_MAXI)
        return al_err(AL_ERR_INVALID, "cuda ssd: H %d, G %d, P %d, N %d", a->H, a->G, a->P, a->N);
    if (a->n_tok <= 0) return al_ok();
    if (a->n_tok == 1 || a->P > 128) {
        k_ssd_step<<<dim3((unsigned)a->H, al_cdiv(a->P, 8)), 256, 0, c->stream>>>(*a);
        AL_CUDA_LAUNCHED("ssd step");
    }
    const int nc = (int)al_cdiv(a->n_tok, SSD_L);
    const size_t st_floats = (size_t)nc * (size_t)a->H * (size_t)a->P * (size_t)a->N;
    void *scr;
    AL_TRY(al_cuda_scratch(c, sizeof(float) * (st_floats + (size_t)nc * (size_t)a->H), &scr));
    float *states = (float *)scr, *decay = states + st_floats;
    const size_t sm1 = sizeof(float) * (size_t)(2 * SSD_L + SSD_L * a->P + SSD_L * SSD_NT);
    size_t r_floats = (size_t)SSD_L * a->P;
    if (r_floats < (size_t)2 * SSD_L * (SSD_NT + 1)) r_floats = (size_t)2 * SSD_L * (SSD_NT + 1);
    if (r_floats < (size_t)(SSD_L + a->P) * (SSD_NT + 1)) r_floats = (size_t)(SSD_L + a->P) * (SSD_NT + 1);
    const size_t sm3 = sizeof(float) * ((size_t)2 * SSD_L + (size_t)SSD_L * (SSD_L + 1) + r_floats);
    if (sm1 > 48 * 1024)
        AL_TRY(al_cuda_status(cudaFuncSetAttribute(k_ssd_chunk_state, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sm1), "ssd smem"));
    if (sm3 > 48 * 1024)
        AL_TRY(al_cuda_status(cudaFuncSetAttribute(k_ssd_chunk_out, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sm3), "ssd smem"));
    k_ssd_chunk_state<<<dim3((unsigned)nc, (unsigned)a->H), SSD_T, sm1, c->stream>>>(*a, states, decay);
    AL_TRY(al_cuda_status(cudaGetLastError(), "ssd chunk_state"));
    k_ssd_state_pass<<<dim3((unsigned)a->H, al_cdiv((int64_t)a->P * a->N, 256)), 256, 0, c->stream>>>(*a, nc, states, decay);
    AL_TRY(al_cuda_status(cudaGetLastError(), "ssd state_pass"));
    k_ssd_chunk_out<<<dim3((unsigned)nc, (unsigned)a->H), SSD_T, sm3, c->stream>>>(*a, states);
    AL_CUDA_LAUNCHED("ssd chunk_out");
}

/* ---- Mamba-1: one thread per channel d, state[d][0..N) in registers ---- */
#define SCAN_MAXN 64
__global__ void k_selective_scan(const float *x, const float *dt, const float *A, const float *B, const float *C,
                                 int64_t bc_stride, const float *Dskip, float *state, float *y, int64_t n_tok, int Dn, int N) {
    const int d = blockIdx.x * blockDim.x + threadIdx.x;
    if (d >= Dn) return;
    float s[SCAN_MAXN], Ad[SCAN_MAXN];
#pragma unroll
    for (int n = 0; n < SCAN_MAXN; n++) {
        s[n] = n < N ? state[(int64_t)d * N + n] : 0.0f;
        Ad[n] = n < N ? A[(int64_t)d * N + n] : 0.0f;
    }
    const float ds = Dskip ? Dskip[d] : 0.0f;
    for (int64_t t = 0; t < n_tok; t++) {
        const float dtv = dt[t * Dn + d], xv = x[t * Dn + d];
        const float *Bt = B + t * bc_stride, *Ct = C + t * bc_stride;
        float acc = 0.0f;
#pragma unroll
        for (int n = 0; n < SCAN_MAXN; n++) {
            if (n < N) {
                s[n] = s[n] * expf(dtv * Ad[n]) + dtv * Bt[n] * xv;
                acc = fmaf(s[n], Ct[n], acc);
            }
        }
        y[t * Dn + d] = acc + ds * xv;
    }
#pragma unroll
    for (int n = 0; n < SCAN_MAXN; n++)
        if (n < N) state[(int64_t)d * N + n] = s[n];
}

extern "C" al_status al_cuda_selective_scan(al_cuda *c, const float *x, const float *dt, const float *A, const float *B,
                                            const float *C, int64_t bc_stride, const float *Dskip, float *state, float *y,
                                            int64_t n_tok, int Dn, int N) {
    if (N <= 0 || N > SCAN_MAXN || Dn <= 0) return al_err(AL_ERR_INVALID, "cuda selective_scan: Dn %d, N %d", Dn, N);
    if (n_tok <= 0) return al_ok();
    k_selective_scan<<<al_cdiv(Dn, 128), 128, 0, c->stream>>>(x, dt, A, B, C, bc_stride, Dskip, state, y, n_tok, Dn, N);
    AL_CUDA_LAUNCHED("selective_scan");
}
