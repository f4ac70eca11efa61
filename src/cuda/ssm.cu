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
 * Two implementations: the tensor-core path (P % 16 == 0, N <= 128: k_ssd_cb + k_ssd_fused, which
 * keeps the state in shared memory and walks the chunks in order, see below) and the fp32 SIMT
 * kernels 1-3 for the other shapes.
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

/* ---- the tensor-core path (P % 16 == 0, N <= 128) ---------------------------------------------
 * k_ssd_cb:    CB[c][g][t][s] = C_t·B_s for the 16×16 tiles on or below the diagonal (s <= t), per
 *              (chunk, group), shared by the group's heads; tiles above the diagonal are neither
 *              written nor used. Rows t >= len of the last chunk are zero.
 * k_ssd_fused: one block per (head h, PT state rows p0..p0+PT), sequential over the chunks with the
 *              state S[PT][N] in shared memory (no global round trip of chunk states). Per chunk,
 *              while the next chunk's inputs arrive by cp.async into the other buffer:
 *                M[t][s] = CB[t][s] exp(Λ_t − Λ_s) dt_s  (s <= t, else 0)  + D δ_ts
 *                y[t][p] = (M·X)[t][p] + (Cs·Sᵀ)[t][p]      Cs[t][n] = exp(Λ_t) C_t[n]
 *                S[p][n] ← exp(Λ_last) S[p][n] + (Xᵀ·Bw)[p][n]   Bw[s][n] = exp(Λ_last − Λ_s) dt_s B_s[n]
 *              with X[s][p] = x_s[h P + p0 + p]. Rows s >= len of the last chunk are zero in Cs, Bw,
 *              X and dt (so Λ stays at Λ_last there), columns N..Np of Cs, Bw and S are zero.
 * The products run on TF32 tensor cores (mma.sync m16n8k8, fp32 accumulation). With SSD_TF32X3 every
 * operand is split into a TF32 head and a TF32 tail and the two cross products are added as well
 * (3× the tensor work, ~fp32 accuracy: the CPU reference and the model tests compare at 1e-4).
 */
#ifndef SSD_TF32X3
#define SSD_TF32X3 1
#endif
#define SSD_TC_T 256 /* threads of k_ssd_fused: 8 warps */
#define SSD_CB_T 128 /* threads of k_ssd_cb: one warp per 16 columns s */
static_assert(SSD_L == 64, "the Λ scan gives each lane two tokens");
static_assert(SSD_CB_T / 32 == SSD_L / 16, "k_ssd_cb: a warp per column tile");

/* TF32 mma.sync m16n8k8 (fp32 accumulation). Fragments, lane = 4 gr + tg:
 *   A 16×8: a0 (gr, tg), a1 (gr + 8, tg), a2 (gr, tg + 4), a3 (gr + 8, tg + 4)
 *   B 8×8:  b0 (k tg, n gr), b1 (k tg + 4, n gr)
 *   C 16×8: c0 (gr, 2 tg), c1 (gr, 2 tg + 1), c2 (gr + 8, 2 tg), c3 (gr + 8, 2 tg + 1) */
/* TF32 tensor cores and cp.async need sm_80: built for an older target these compile to nothing and
 * al_cuda_ssd never launches the kernels that use them (prop.major < 8) */
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#define SSD_TC_ARCH 0
#else
#define SSD_TC_ARCH 1
#endif
__device__ __forceinline__ uint32_t tc_tf32(float v) {
    uint32_t r = __float_as_uint(v);
#if SSD_TC_ARCH
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(v));
#endif
    return r;
}
/* v ≈ head + tail, both TF32 (the tail is 0 without SSD_TF32X3) */
__device__ __forceinline__ void tc_split(float v, uint32_t &hi, uint32_t &lo) {
    hi = tc_tf32(v);
#if SSD_TF32X3
    lo = tc_tf32(v - __uint_as_float(hi));
#else
    lo = 0u;
#endif
}
__device__ __forceinline__ void tc_mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if SSD_TC_ARCH
    asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
    (void)d, (void)a, (void)b0, (void)b1;
    __trap();
#endif
}
/* One k-step (8) of a warp's 16×16 tile: hi[j] (columns 8 j .. 8 j + 8) += A·B with the heads, lo[j] +=
 * the two head×tail cross terms (SSD_TF32X3). pa = &A(gr, tg), A(r, k) = pa[(r - gr) ars + (k - tg) aks];
 * pb = &B(tg, gr), B(k, n) = pb[(k - tg) bks + (n - gr) bns]; r, k, n relative to the tile and step. */
__device__ __forceinline__ void tc_step16(float (&hi)[2][4], float (&lo)[2][4], const float *pa, int ars, int aks,
                                          const float *pb, int bks, int bns) {
    uint32_t ah[4], al[4];
    tc_split(pa[0], ah[0], al[0]);
    tc_split(pa[8 * ars], ah[1], al[1]);
    tc_split(pa[4 * aks], ah[2], al[2]);
    tc_split(pa[8 * ars + 4 * aks], ah[3], al[3]);
#pragma unroll
    for (int j = 0; j < 2; j++) {
        const float *b = pb + 8 * j * bns;
        uint32_t bh0, bl0, bh1, bl1;
        tc_split(b[0], bh0, bl0);
        tc_split(b[4 * bks], bh1, bl1);
#if SSD_TF32X3
        tc_mma(lo[j], al, bh0, bh1);
        tc_mma(lo[j], ah, bl0, bl1);
#endif
        tc_mma(hi[j], ah, bh0, bh1);
    }
}
/* A 16×16 tile as two k-parities of head and tail accumulators: acc[parity][half j][c] */
struct tc_tile {
    float hi[2][2][4], lo[2][2][4];
};
__device__ __forceinline__ void tc_zero(tc_tile &T) {
#pragma unroll
    for (int p = 0; p < 2; p++)
#pragma unroll
        for (int j = 0; j < 2; j++)
#pragma unroll
            for (int c = 0; c < 4; c++) T.hi[p][j][c] = T.lo[p][j][c] = 0.0f;
}
/* element c of half j: row gr + 8 (c >> 1), column 8 j + 2 tg + (c & 1) of the tile */
__device__ __forceinline__ float tc_get(const tc_tile &T, int j, int c) {
    return (T.hi[0][j][c] + T.hi[1][j][c]) + (T.lo[0][j][c] + T.lo[1][j][c]);
}
/* the tile into out[r ld + col] (ld even, out 8-byte aligned) */
__device__ __forceinline__ void tc_store(const tc_tile &T, float *out, int ld, int gr, int tg) {
#pragma unroll
    for (int j = 0; j < 2; j++)
#pragma unroll
        for (int h = 0; h < 2; h++)
            *reinterpret_cast<float2 *>(out + (gr + 8 * h) * ld + 8 * j + 2 * tg) = make_float2(tc_get(T, j, 2 * h), tc_get(T, j, 2 * h + 1));
}

#if SSD_TC_ARCH
__device__ __forceinline__ void cp_async4(float *dst, const float *src) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"((unsigned)__cvta_generic_to_shared(dst)), "l"(src) : "memory");
}
__device__ __forceinline__ void cp_async16(float *dst, const float *src) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"((unsigned)__cvta_generic_to_shared(dst)), "l"(src) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }
#else
__device__ __forceinline__ void cp_async4(float *dst, const float *src) { *dst = *src; }
__device__ __forceinline__ void cp_async16(float *dst, const float *src) { *(float4 *)dst = *(const float4 *)src; }
__device__ __forceinline__ void cp_async_commit() {}
__device__ __forceinline__ void cp_async_wait_all() {}
#endif

/* dst[r][q] (row stride ldd) = src[r * lds + q] for r < rows_valid, q < cols; zero for the other
 * r < rows, q < cols_pad. By cp.async (the caller waits); 16-byte pieces when vec (src rows 16-byte
 * aligned, cols % 4 == 0, cols_pad % 4 == 0, dst rows 16-byte aligned). Every thread takes part. */
__device__ __forceinline__ void ssd_ld_tile(float *dst, int ldd, const float *src, int64_t lds, int rows, int rows_valid,
                                            int cols, int cols_pad, bool vec) {
    if (vec) {
        const int nq = cols_pad / 4;
        for (int i = threadIdx.x; i < rows * nq; i += blockDim.x) {
            const int r = i / nq, q = (i - r * nq) * 4;
            float *d = dst + r * ldd + q;
            if (r < rows_valid && q < cols) cp_async16(d, src + r * lds + q);
            else *reinterpret_cast<float4 *>(d) = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        }
    } else {
        for (int i = threadIdx.x; i < rows * cols_pad; i += blockDim.x) {
            const int r = i / cols_pad, q = i - r * cols_pad;
            float *d = dst + r * ldd + q;
            if (r < rows_valid && q < cols) cp_async4(d, src + r * lds + q);
            else *d = 0.0f;
        }
    }
}

/* k_ssd_fused's shared memory (floats): two chunk buffers [c, b, x, m, dt] of buf floats each, then
 * S, Ys and the per-token factors. Region starts are multiples of 8 floats and strides multiples of 4
 * (16-byte cp.async and float4 access). The strides keep the mma fragment loads free of bank conflicts:
 * ≡ 4 (mod 8) where a fragment reads 8 rows × 4 consecutive k (Cs, M, S as Sᵀ, CB's C and B),
 * ≡ 8 (mod 16) where it reads 4 rows × 8 consecutive columns (X as B or as Xᵀ, Bw). */
struct ssd_lay {
    int ldc, ldb, ldx, ldm, lds, ldy; /* row strides */
    int c, b, x, m, dt, buf;          /* Cs [L][ldc], Bw [L][ldb], X [L][ldx], M [L][ldm], dt [L]; buf: one buffer */
    int s, y, lam, elam, wb, total;   /* S [PT][lds], Ys [L][ldy], lam/elam/wb [L]; total floats */
};
__host__ __device__ inline ssd_lay ssd_layout(int PT, int Np) {
    ssd_lay l;
    l.ldc = Np + 4, l.ldb = Np + 8, l.ldx = PT + 8, l.ldm = SSD_L + 4, l.lds = Np + 4, l.ldy = PT + 4;
    int o = 0;
    l.c = o, o += SSD_L * l.ldc;
    l.b = o, o += SSD_L * l.ldb;
    l.x = o, o += SSD_L * l.ldx;
    l.m = o, o += SSD_L * l.ldm;
    l.dt = o, o += SSD_L;
    l.buf = o;
    o = 2 * l.buf;
    l.s = o, o += PT * l.lds;
    l.y = o, o += SSD_L * l.ldy;
    l.lam = o, o += SSD_L;
    l.elam = o, o += SSD_L;
    l.wb = o, o += SSD_L;
    l.total = o;
    return l;
}

/* chunk c's raw inputs into one buffer (cp.async; the caller commits and later waits) */
__device__ __forceinline__ void ssd_load_chunk(const al_cuda_ssd_args &a, const float *cb, int c, float *buf, const ssd_lay &l,
                                               int h, int g, int p0, int PT, int Np, bool vec_x, bool vec_bc) {
    const int64_t c0 = (int64_t)c * SSD_L;
    const int len = (int)(a.n_tok - c0 < SSD_L ? a.n_tok - c0 : SSD_L);
    const int64_t bc0 = c0 * a.bc_stride + (int64_t)g * a.N;
    ssd_ld_tile(buf + l.c, l.ldc, a.C + bc0, a.bc_stride, SSD_L, len, a.N, Np, vec_bc);
    ssd_ld_tile(buf + l.b, l.ldb, a.B + bc0, a.bc_stride, SSD_L, len, a.N, Np, vec_bc);
    ssd_ld_tile(buf + l.x, l.ldx, a.x + c0 * a.x_stride + (int64_t)h * a.P + p0, a.x_stride, SSD_L, len, PT, PT, vec_x);
    ssd_ld_tile(buf + l.m, l.ldm, cb + ((int64_t)c * a.G + g) * SSD_L * SSD_L, SSD_L, SSD_L, SSD_L, SSD_L, SSD_L, true);
    ssd_ld_tile(buf + l.dt, 1, a.dt + c0 * a.dt_stride + h, a.dt_stride, SSD_L, len, 1, 1, false);
}

__global__ void __launch_bounds__(SSD_CB_T) k_ssd_cb(al_cuda_ssd_args a, float *cb, int Np, int vec_bc) {
    extern __shared__ __align__(128) float sm[];
    const int ld = Np + 4;
    float *Ct = sm, *Bt = sm + 16 * ld; /* C rows t0..t0+16: [16][ld]; B rows 0..SSD_L: [SSD_L][ld] */
    const int c = blockIdx.x, g = blockIdx.y, t0 = blockIdx.z * 16, s0 = (threadIdx.x >> 5) * 16;
    const int64_t c0 = (int64_t)c * SSD_L, bc0 = c0 * a.bc_stride + (int64_t)g * a.N;
    const int len = (int)(a.n_tok - c0 < SSD_L ? a.n_tok - c0 : SSD_L);
    const int cvalid = len - t0 < 0 ? 0 : (len - t0 < 16 ? len - t0 : 16);
    ssd_ld_tile(Ct, ld, a.C + bc0 + (int64_t)t0 * a.bc_stride, a.bc_stride, 16, cvalid, a.N, Np, vec_bc);
    ssd_ld_tile(Bt, ld, a.B + bc0, a.bc_stride, SSD_L, len, a.N, Np, vec_bc);
    cp_async_wait_all();
    __syncthreads();
    if (s0 > t0) return; /* above the diagonal */
    /* CB[t][s] = Σ_n C[t][n] B[s][n]: A(r, k) = Ct[r ld + k], B(k, n) = Bt[(s0 + n) ld + k] */
    const int gr = (threadIdx.x & 31) >> 2, tg = threadIdx.x & 3;
    const float *pa = Ct + gr * ld + tg, *pb = Bt + (s0 + gr) * ld + tg;
    tc_tile T;
    tc_zero(T);
    for (int k = 0; k < Np; k += 16) {
        tc_step16(T.hi[0], T.lo[0], pa + k, ld, 1, pb + k, 1, ld);
        tc_step16(T.hi[1], T.lo[1], pa + k + 8, ld, 1, pb + k + 8, 1, ld);
    }
    tc_store(T, cb + (((int64_t)c * a.G + g) * SSD_L + t0) * SSD_L + s0, SSD_L, gr, tg);
}

__global__ void __launch_bounds__(SSD_TC_T, 1) k_ssd_fused(al_cuda_ssd_args a, const float *cb, int PT, int Np, int vec_x, int vec_bc) {
    extern __shared__ __align__(128) float sm[];
    const ssd_lay l = ssd_layout(PT, Np);
    const int P = a.P, N = a.N, h = blockIdx.y, p0 = blockIdx.x * PT, g = h / (a.H / a.G);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = SSD_TC_T / 32, gr = lane >> 2, tg = lane & 3;
    const int nc = (int)((a.n_tok + SSD_L - 1) / SSD_L);
    const float A = a.A[h], Dh = a.D ? a.D[h] : 0.0f;
    float *S = sm + l.s, *Ys = sm + l.y, *lam = sm + l.lam, *elam = sm + l.elam, *wb = sm + l.wb;
    float *state = a.state + ((int64_t)h * P + p0) * N; /* rows p0..p0+PT of head h: [PT][N] */
    for (int i = threadIdx.x; i < PT * Np; i += SSD_TC_T) {
        const int p = i / Np, n = i - p * Np;
        S[p * l.lds + n] = n < N ? state[(int64_t)p * N + n] : 0.0f;
    }
    ssd_load_chunk(a, cb, 0, sm, l, h, g, p0, PT, Np, vec_x, vec_bc);
    cp_async_commit();
    for (int c = 0; c < nc; c++) {
        float *buf = sm + (c & 1) * l.buf;
        float *Cs = buf + l.c, *Bw = buf + l.b, *X = buf + l.x, *M = buf + l.m, *dts = buf + l.dt;
        const int64_t c0 = (int64_t)c * SSD_L;
        const int len = (int)(a.n_tok - c0 < SSD_L ? a.n_tok - c0 : SSD_L);
        cp_async_wait_all();
        __syncthreads(); /* chunk c is in buf; chunk c-1's buffer is free */
        if (c + 1 < nc) ssd_load_chunk(a, cb, c + 1, sm + ((c + 1) & 1) * l.buf, l, h, g, p0, PT, Np, vec_x, vec_bc);
        cp_async_commit();

        /* Λ_t = Σ_{s<=t} dt_s A (lane holds t = 2 lane, 2 lane + 1); exp(Λ_t); exp(Λ_last − Λ_s) dt_s */
        if (warp == 0) {
            const float d0 = dts[2 * lane], d1 = dts[2 * lane + 1], v0 = d0 * A, v1 = d1 * A;
            float incl = v0 + v1;
#pragma unroll
            for (int o = 1; o < 32; o <<= 1) {
                const float u = __shfl_up_sync(0xffffffffu, incl, o);
                if (lane >= o) incl += u;
            }
            float excl = __shfl_up_sync(0xffffffffu, incl, 1);
            if (lane == 0) excl = 0.0f;
            const float l0 = excl + v0, l1 = l0 + v1, last = __shfl_sync(0xffffffffu, l1, 31);
            lam[2 * lane] = l0, lam[2 * lane + 1] = l1;
            elam[2 * lane] = expf(l0), elam[2 * lane + 1] = expf(l1);
            wb[2 * lane] = expf(last - l0) * d0, wb[2 * lane + 1] = expf(last - l1) * d1;
        }
        __syncthreads();
        const float dec = elam[SSD_L - 1];

        /* in place: C → Cs, B → Bw (rows scaled), CB → M */
        const int nq = Np / 4;
        for (int i = threadIdx.x; i < SSD_L * nq; i += SSD_TC_T) {
            const int t = i / nq, q = (i - t * nq) * 4;
            float4 *pc = reinterpret_cast<float4 *>(Cs + t * l.ldc + q), *pb = reinterpret_cast<float4 *>(Bw + t * l.ldb + q);
            const float ec = elam[t], eb = wb[t];
            float4 v = *pc;
            v.x *= ec, v.y *= ec, v.z *= ec, v.w *= ec;
            *pc = v;
            v = *pb;
            v.x *= eb, v.y *= eb, v.z *= eb, v.w *= eb;
            *pb = v;
        }
        for (int i = threadIdx.x; i < SSD_L * SSD_L; i += SSD_TC_T) {
            const int t = i / SSD_L, s = i - t * SSD_L;
            float *pm = M + t * l.ldm + s;
            *pm = s <= t ? *pm * expf(lam[t] - lam[s]) * dts[s] + (s == t ? Dh : 0.0f) : 0.0f;
        }
        __syncthreads();

        /* Ys[t0..+16][j0..+16] = M·X (columns s < t0 + 16; M is zero beyond) + Cs·Sᵀ (Sᵀ(n, j) = S[j lds + n]) */
        const int ytn = PT / 16, nyt = (SSD_L / 16) * ytn;
        for (int tile = warp; tile < nyt; tile += nw) {
            const int t0 = (tile / ytn) * 16, j0 = (tile % ytn) * 16;
            if (t0 >= len) continue;
            tc_tile T;
            tc_zero(T);
            const float *pm = M + (t0 + gr) * l.ldm + tg, *px = X + tg * l.ldx + j0 + gr;
            for (int k = 0; k < t0 + 16; k += 16) {
                tc_step16(T.hi[0], T.lo[0], pm + k, l.ldm, 1, px + k * l.ldx, l.ldx, 1);
                tc_step16(T.hi[1], T.lo[1], pm + k + 8, l.ldm, 1, px + (k + 8) * l.ldx, l.ldx, 1);
            }
            const float *pc = Cs + (t0 + gr) * l.ldc + tg, *ps = S + (j0 + gr) * l.lds + tg;
            for (int k = 0; k < Np; k += 16) {
                tc_step16(T.hi[0], T.lo[0], pc + k, l.ldc, 1, ps + k, 1, l.lds);
                tc_step16(T.hi[1], T.lo[1], pc + k + 8, l.ldc, 1, ps + k + 8, 1, l.lds);
            }
            tc_store(T, Ys + t0 * l.ldy + j0, l.ldy, gr, tg);
        }
        __syncthreads(); /* every read of S for y is done */

        /* S[i0..+16][n0..+16] = dec S + Xᵀ·Bw (Xᵀ(p, s) = X[s ldx + p]; rows s >= len are zero, so K
         * stops at the 16-row block holding len − 1) */
        const int utn = Np / 16, nut = (PT / 16) * utn;
        for (int tile = warp; tile < nut; tile += nw) {
            const int i0 = (tile / utn) * 16, n0 = (tile % utn) * 16;
            float *st = S + i0 * l.lds + n0;
            tc_tile T;
            tc_zero(T);
#pragma unroll
            for (int j = 0; j < 2; j++)
#pragma unroll
                for (int e = 0; e < 4; e++) T.hi[0][j][e] = dec * st[(gr + 8 * (e >> 1)) * l.lds + 8 * j + 2 * tg + (e & 1)];
            const float *pxt = X + tg * l.ldx + i0 + gr, *pbw = Bw + tg * l.ldb + n0 + gr;
            for (int k = 0; k < len; k += 16) {
                tc_step16(T.hi[0], T.lo[0], pxt + k * l.ldx, 1, l.ldx, pbw + k * l.ldb, l.ldb, 1);
                tc_step16(T.hi[1], T.lo[1], pxt + (k + 8) * l.ldx, 1, l.ldx, pbw + (k + 8) * l.ldb, l.ldb, 1);
            }
            tc_store(T, st, l.lds, gr, tg);
        }
        float *yo = a.y + c0 * (int64_t)a.H * P + (int64_t)h * P + p0;
        for (int i = threadIdx.x; i < len * PT; i += SSD_TC_T) {
            const int t = i / PT, j = i - t * PT;
            yo[(int64_t)t * a.H * P + j] = Ys[t * l.ldy + j];
        }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < PT * N; i += SSD_TC_T) {
        const int p = i / N, n = i - p * N;
        state[(int64_t)p * N + n] = S[p * l.lds + n];
    }
}

static al_status ssd_tc(al_cuda *c, const al_cuda_ssd_args *a, int nc, int PT, int Np, size_t smem) {
    void *scr;
    AL_TRY(al_cuda_scratch(c, sizeof(float) * (size_t)nc * (size_t)a->G * SSD_L * SSD_L, &scr));
    float *cb = (float *)scr; /* [nc][G][SSD_L][SSD_L] */
    const int vec_bc = (uintptr_t)a->B % 16 == 0 && (uintptr_t)a->C % 16 == 0 && a->bc_stride % 4 == 0 && a->N % 4 == 0;
    const int vec_x = (uintptr_t)a->x % 16 == 0 && a->x_stride % 4 == 0; /* h P + p0 is a multiple of 16 */
    const size_t smem_cb = sizeof(float) * (size_t)(16 + SSD_L) * (size_t)(Np + 4);
    k_ssd_cb<<<dim3((unsigned)nc, (unsigned)a->G, SSD_L / 16), SSD_CB_T, smem_cb, c->stream>>>(*a, cb, Np, vec_bc);
    AL_TRY(al_cuda_status(cudaGetLastError(), "ssd cb"));
    AL_TRY(al_cuda_status(cudaFuncSetAttribute(k_ssd_fused, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem), "ssd smem"));
    k_ssd_fused<<<dim3((unsigned)(a->P / PT), (unsigned)a->H), SSD_TC_T, smem, c->stream>>>(*a, cb, PT, Np, vec_x, vec_bc);
    AL_CUDA_LAUNCHED("ssd fused");
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
    const int Np = (a->N + 15) / 16 * 16;
    if (a->P % 16 == 0 && Np <= 128 && c->prop.major >= 8) {
        const int PT = a->P % 32 == 0 ? 32 : 16;
        const size_t smem = sizeof(float) * (size_t)ssd_layout(PT, Np).total;
        if (smem <= (size_t)c->prop.sharedMemPerBlockOptin) return ssd_tc(c, a, nc, PT, Np, smem);
    }
    /* the fp32 SIMT path: chunk states to global memory, a pass over them, then the outputs */
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
