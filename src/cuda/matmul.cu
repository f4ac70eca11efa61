/*
 * matmul.cu — Y = X · Wᵀ for weights in their stored (quantized) type.
 *  - m <= 4, every quantized type (k_mmq; k_mmq<true> where Q2_K / Q3_K take part, which need more
 *    registers): each block quantizes the activation row (m >= 2 over a large matrix: every row, so
 *    that each weight row is read from memory once for all of them; al_cuda_set_mmq_multi_min) to int8
 *    blocks of 32 in shared memory (mmq.cuh; with al_cuda_matvec_* also the residual add + RMSNorm
 *    before it), then groups of one, two or four warps (by k) take pairs of rows, each lane 32- or
 *    64-element chunks with 128-bit loads and __dp4a; the block strides over rows (decode).
 *  - m <= 4, float types (and rows longer than MMQ_MAX_K): a block of 4 warps per 2 output rows, split
 *    over k, each lane dequantizing 8 elements per step (one sub-block slice) against float activations.
 *  - m > 4: quantized W is dequantized to F16 in row chunks into scratch, X converted to F16, and
 *    cuBLAS runs the GEMM with F32 accumulation; F16/BF16 weights go to cuBLAS as they are; F32
 *    weights use SGEMM (float32, no TF32).
 *  - the same readers serve embedding lookups (get_rows) and MoE matrix-vector with device ids.
 */
#include <string.h>

#include "alloy/quant.h"
#include "cuda/mmq_kernel.cuh"

#define MMV_ROWS 4 /* warps (= output rows) per block */

/* One block of MMV_ROWS warps per MMV_RPW rows, split over k: warp y takes the 8-element slices
 * y*32 + lane, step 32*MMV_ROWS, so even long rows of few outputs keep many loads in flight; the x
 * slice is loaded once for the block's rows; partial sums meet in shared memory. */
#define MMV_RPW 2
template <int T>
__device__ __forceinline__ void mmv_rows(const uint8_t *__restrict__ w, size_t row_bytes, int nr, int64_t k,
                                         const float *__restrict__ x, float *__restrict__ y) {
    __shared__ float red[MMV_ROWS][MMV_RPW];
    const bool al16 = ((uintptr_t)x & 15) == 0;
    const int64_t n8 = k >> 3;
    float acc[MMV_RPW];
#pragma unroll
    for (int r = 0; r < MMV_RPW; r++) acc[r] = 0.0f;
#pragma unroll 2
    for (int64_t i = threadIdx.y * 32 + threadIdx.x; i < n8; i += 32 * MMV_ROWS) {
        float xv[8];
        if (al16) {
            const float4 a = __ldg((const float4 *)x + 2 * i), b = __ldg((const float4 *)x + 2 * i + 1);
            xv[0] = a.x, xv[1] = a.y, xv[2] = a.z, xv[3] = a.w, xv[4] = b.x, xv[5] = b.y, xv[6] = b.z, xv[7] = b.w;
        } else {
#pragma unroll
            for (int t = 0; t < 8; t++) xv[t] = __ldg(x + 8 * i + t);
        }
        float v[MMV_RPW][8];
#pragma unroll
        for (int r = 0; r < MMV_RPW; r++)
            if (r < nr) al_qt<T>::load8(w + (size_t)r * row_bytes, k, i, v[r]);
#pragma unroll
        for (int r = 0; r < MMV_RPW; r++)
            if (r < nr) {
#pragma unroll
                for (int t = 0; t < 8; t++) acc[r] = fmaf(v[r][t], xv[t], acc[r]);
            }
    }
#pragma unroll
    for (int r = 0; r < MMV_RPW; r++) {
        const float a = al_warp_sum(acc[r]);
        if (threadIdx.x == 0) red[threadIdx.y][r] = a;
    }
    __syncthreads();
    if (threadIdx.y == 0 && threadIdx.x < nr) {
        float sum = 0.0f;
#pragma unroll
        for (int j = 0; j < MMV_ROWS; j++) sum += red[j][threadIdx.x];
        y[threadIdx.x] = sum;
    }
}

template <int T>
__global__ void k_mmv_q(const uint8_t *__restrict__ W, size_t row_bytes, size_t mat_bytes, const int32_t *__restrict__ ids,
                        int64_t k, int64_t n_out, const float *__restrict__ X, int64_t ldx, int x_per_id, float *__restrict__ Y,
                        int64_t ldy) {
    al_pdl_begin();
    const int j = blockIdx.y;
    const int64_t row = (int64_t)blockIdx.x * MMV_RPW; /* uniform per block */
    if (row >= n_out) return;
    const int nr = n_out - row < MMV_RPW ? (int)(n_out - row) : MMV_RPW;
    const uint8_t *w = W + (ids ? (size_t)ids[j] * mat_bytes : 0) + (size_t)row * row_bytes;
    mmv_rows<T>(w, row_bytes, nr, k, X + (x_per_id ? (int64_t)j * ldx : 0), Y + (int64_t)j * ldy + row);
}

/* up to 4 matrices of one type and k sharing x. Rows are numbered back to back, each matrix starting
 * at a multiple of MMV_RPW (beg[i]) so that no block straddles two matrices. */
typedef struct mmv_multi {
    const uint8_t *w[4];
    size_t row_bytes[4];
    float *y[4];
    int64_t beg[4], end[4];
    int n;
} mmv_multi;

template <int T>
__global__ void k_mmv_multi(mmv_multi mm, int64_t k, const float *__restrict__ x) {
    al_pdl_begin();
    const int64_t vrow = (int64_t)blockIdx.x * MMV_RPW;
    int i = 0;
    while (i < mm.n - 1 && vrow >= mm.end[i]) i++;
    if (vrow >= mm.end[i] || vrow < mm.beg[i]) return; /* uniform per block */
    const int64_t row = vrow - mm.beg[i], rows = mm.end[i] - mm.beg[i];
    const int nr = rows - row < MMV_RPW ? (int)(rows - row) : MMV_RPW;
    mmv_rows<T>(mm.w[i] + (size_t)row * mm.row_bytes[i], mm.row_bytes[i], nr, k, x, mm.y[i] + row);
}

template <int T>
__global__ void k_mmv_f(const uint8_t *__restrict__ W, size_t row_bytes, size_t mat_bytes, const int32_t *__restrict__ ids,
                        int64_t k, int64_t n_out, const float *__restrict__ X, int64_t ldx, int x_per_id, float *__restrict__ Y,
                        int64_t ldy) {
    al_pdl_begin();
    const int j = blockIdx.y;
    const int64_t row = (int64_t)blockIdx.x * MMV_ROWS + threadIdx.y;
    if (row >= n_out) return;
    const uint8_t *w = W + (ids ? (size_t)ids[j] * mat_bytes : 0) + (size_t)row * row_bytes;
    const float *x = X + (x_per_id ? (int64_t)j * ldx : 0);
    float acc = 0.0f;
    for (int64_t i = threadIdx.x; i < k; i += 32) acc = fmaf(al_load1<T>(w, i), __ldg(x + i), acc);
    acc = al_warp_sum(acc);
    if (threadIdx.x == 0) Y[(int64_t)j * ldy + row] = acc;
}

/* rows [r0, r0 + nr) of W -> half [nr][k] */
template <int T>
__global__ void k_dequant_f16(const uint8_t *__restrict__ W, size_t row_bytes, int64_t k, int64_t r0, int64_t nr,
                              __half *__restrict__ out) {
    al_pdl_begin();
    const int64_t n8 = k >> 3, idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= nr * n8) return;
    const int64_t r = idx / n8, i = idx - r * n8;
    float v[8];
    al_qt<T>::load8(W + (size_t)(r0 + r) * row_bytes, k, i, v);
    __align__(16) __half h[8];
#pragma unroll
    for (int t = 0; t < 8; t++) h[t] = __float2half_rn(v[t]);
    *(uint4 *)(out + r * k + 8 * i) = *(const uint4 *)h;
}

template <int T>
__global__ void k_get_rows_q(const uint8_t *__restrict__ W, size_t row_bytes, int64_t k, const int32_t *__restrict__ ids,
                             float *__restrict__ out, int64_t ldo) {
    al_pdl_begin();
    const int64_t t = blockIdx.y;
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (k >> 3)) return;
    float v[8];
    al_qt<T>::load8(W + (size_t)ids[t] * row_bytes, k, i, v);
#pragma unroll
    for (int j = 0; j < 8; j++) out[t * ldo + 8 * i + j] = v[j];
}

template <int T>
__global__ void k_get_rows_f(const uint8_t *__restrict__ W, size_t row_bytes, int64_t k, const int32_t *__restrict__ ids,
                             float *__restrict__ out, int64_t ldo) {
    al_pdl_begin();
    const int64_t t = blockIdx.y;
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= k) return;
    out[t * ldo + i] = al_load1<T>(W + (size_t)ids[t] * row_bytes, i);
}

__global__ void k_to_f16(const float *__restrict__ x, int64_t ldx, int64_t m, int64_t k, __half *__restrict__ y) {
    al_pdl_begin();
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= m * k) return;
    const int64_t r = idx / k, i = idx - r * k;
    y[idx] = __float2half_rn(x[r * ldx + i]);
}
__global__ void k_to_bf16(const float *__restrict__ x, int64_t ldx, int64_t m, int64_t k, __nv_bfloat16 *__restrict__ y) {
    al_pdl_begin();
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= m * k) return;
    const int64_t r = idx / k, i = idx - r * k;
    y[idx] = __float2bfloat16_rn(x[r * ldx + i]);
}


/* ---- integer path (mmq_kernel.cuh) ---- */

/* K23: with Q2_K / Q3_K products, a kernel of its own (their code takes k_mmq from 96 to 118 registers).
 * ALL == false: activation row blockIdx.y (one grid row per activation row, each reading the whole
 * matrix); true: rows 0 .. ny - 1 in every block, their inputs stride bytes apart (a kernel of its own
 * too: the loop over rows takes the one-row kernel from 96 to 117 registers) */
template <bool K23, bool ALL> __global__ void __launch_bounds__(128) k_mmq(mmq_args a, int g, int ny, unsigned stride) {
    extern __shared__ __align__(16) uint8_t mmq_sh[];
    const int tid = threadIdx.y * 32 + threadIdx.x;
    al_pdl_trigger();
    mmq_prefetch_first(a, g, blockIdx.x, tid);
    al_pdl_wait();
    mmq_block<K23>(a, g, blockIdx.x, gridDim.x, ALL ? 0 : (int)blockIdx.y, ALL ? ny : 1, stride, tid, mmq_sh);
}

#define MMQ_MULTI_SMEM (48u << 10) /* the ny >= 2 path while all rows' inputs fit the default dynamic limit */

/* a.w.., a.n, a.type, a.glu, ids, norm etc. set by the caller; launches over ny activation rows */
static al_status mmq_launch(al_cuda *c, mmq_args *a, const float *X, int64_t ldx, int ny) {
    const int64_t k = a->k;
    a->x = X;
    a->ldx = ldx;
    const size_t one = mmq_smem(a);
    /* several activation rows (batched decode) of a matrix of at least c->mmq_multi_min bytes (default:
     * half of L2, i.e. an LM head): every block takes them all, so that the matrix is streamed once;
     * smaller matrices are shared through L2 by one grid row per activation row, which measured faster
     * (docs/benchmarks-cuda.md v13) */
    size_t bytes = 0;
    for (int i = 0; i < a->n; i++) bytes += (size_t)(a->end[i] - a->beg[i]) * (size_t)a->row_bytes[i];
    const bool multi = ny >= 2 && !a->ids && !a->nw && (size_t)ny * one <= MMQ_MULTI_SMEM && bytes >= c->mmq_multi_min;
    const size_t smem = multi ? (size_t)ny * one : one;
    const int g = mmq_warps(k);
    const int rpb = (4 / g) * (a->glu ? a->R / 2 : a->R);
    const bool k23 = mmq_args_type_set(a) == MMQ_TS_ALL;
    void (*const kern[4])(mmq_args, int, int, unsigned) = {k_mmq<false, false>, k_mmq<true, false>, k_mmq<false, true>, k_mmq<true, true>};
    const int ki = (int)k23 + 2 * (int)multi;
    if (smem != c->mmq_occ_smem[ki]) { /* blocks of that k_mmq resident per SM with this much shared memory */
        int nb = 0;
        AL_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&nb, kern[ki], 128, smem), "mmq occupancy");
        c->mmq_occ[ki] = nb > 0 ? nb : 1;
        c->mmq_occ_smem[ki] = smem;
    }
    const int64_t nblk = al_cdiv(a->end[a->n - 1], rpb), cap = (int64_t)c->prop.multiProcessorCount * c->mmq_occ[ki];
    const dim3 grid((unsigned)(nblk < cap ? nblk : cap), multi ? 1u : (unsigned)ny), block(32, 4);
    AL_CUDA_TRY(al_launch(c, kern[ki], grid, block, smem, *a, g, multi ? ny : 1, (unsigned)one), "mmq");
    return al_ok();
}

/* ---- dispatch ---- */

static al_status mmv_launch(al_cuda *c, const al_cuda_weight *W, const int32_t *ids, const float *X, int64_t ldx,
                            int x_per_id, float *Y, int64_t ldy, int ny) {
    if (mmq_ok(W)) {
        mmq_args a;
        memset(&a, 0, sizeof a);
        a.w[0] = (const uint8_t *)W->data;
        a.row_bytes[0] = (int64_t)W->row_bytes;
        a.y[0] = Y;
        a.end[0] = W->n_out;
        a.type[0] = W->type;
        a.n = 1;
        a.R = 2;
        a.mat_bytes = W->mat_bytes;
        a.ids = ids;
        a.ldy = ldy;
        a.k = W->k;
        a.x_per_j = x_per_id;
        return mmq_launch(c, &a, X, ldx, ny);
    }
    const bool q = al_type_traits_get(W->type)->is_quantized;
    dim3 grid(al_cdiv(W->n_out, q ? MMV_RPW : MMV_ROWS), (unsigned)ny), block(32, MMV_ROWS);
    const uint8_t *w = (const uint8_t *)W->data;
#define CASE_Q(T)                                                                                  \
    case T:                                                                                        \
        AL_CUDA_TRY(al_launch(c, k_mmv_q<T>, grid, block, 0, w, W->row_bytes, W->mat_bytes, ids, W->k, W->n_out, X, ldx, x_per_id, Y, ldy), "launch k_mmv_q"); \
        break;
#define CASE_F(T)                                                                                  \
    case T:                                                                                        \
        AL_CUDA_TRY(al_launch(c, k_mmv_f<T>, grid, block, 0, w, W->row_bytes, W->mat_bytes, ids, W->k, W->n_out, X, ldx, x_per_id, Y, ldy), "launch k_mmv_f"); \
        break;
    switch (W->type) {
        AL_CUDA_QUANT_TYPES(CASE_Q)
        AL_CUDA_FLOAT_TYPES(CASE_F)
    default: return al_err(AL_ERR_UNSUPPORTED, "cuda matmul: type %s", al_type_name(W->type));
    }
#undef CASE_Q
#undef CASE_F
    AL_CUDA_LAUNCHED("mmv");
}

static al_status dequant_f16(al_cuda *c, const al_cuda_weight *W, int64_t r0, int64_t nr, __half *out) {
    int64_t n = nr * (W->k >> 3);
    const uint8_t *w = (const uint8_t *)W->data;
#define CASE_Q(T)                                                                                  \
    case T: AL_CUDA_TRY(al_launch(c, k_dequant_f16<T>, al_cdiv(n, 256), 256, 0, w, W->row_bytes, W->k, r0, nr, out), "launch k_dequant_f16"); break;
    switch (W->type) {
        AL_CUDA_QUANT_TYPES(CASE_Q)
    default: return al_err(AL_ERR_UNSUPPORTED, "cuda dequant: type %s", al_type_name(W->type));
    }
#undef CASE_Q
    AL_CUDA_LAUNCHED("dequant_f16");
}

static al_status blas_status(cublasStatus_t s, const char *what) {
    return s == CUBLAS_STATUS_SUCCESS ? al_ok() : al_err(AL_ERR_IO, "cuda: %s failed (cublas status %d)", what, (int)s);
}

static al_status check_mm(const al_cuda_weight *W, int64_t ldx, int64_t ldy, int64_t m) {
    if (!W || !W->data) return al_err(AL_ERR_INVALID, "cuda matmul: no weight");
    if (m < 0 || ldx < W->k || ldy < W->n_out) return al_err(AL_ERR_INVALID, "cuda matmul: bad strides");
    if (!al_cuda_type_supported(W->type)) return al_err(AL_ERR_UNSUPPORTED, "cuda matmul: type %s", al_type_name(W->type));
    return al_ok();
}

extern "C" al_status al_cuda_matmul(al_cuda *c, const al_cuda_weight *W, const float *X, int64_t ldx, float *Y, int64_t ldy,
                                    int64_t m) {
    AL_TRY(check_mm(W, ldx, ldy, m));
    if (m == 0) return al_ok();
    if (m <= 4) return mmv_launch(c, W, NULL, X, ldx, 1, Y, ldy, (int)m);
    const float one = 1.0f, zero = 0.0f;
    const int K = (int)W->k, M = (int)m;
    if (W->type == AL_TYPE_F32)
        return blas_status(cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)W->n_out, M, K, &one, (const float *)W->data, K,
                                       X, (int)ldx, &zero, Y, (int)ldy),
                           "sgemm");
    if (W->type == AL_TYPE_BF16) {
        void *s;
        AL_TRY(al_cuda_scratch(c, sizeof(__nv_bfloat16) * (size_t)(m * W->k), &s));
        AL_CUDA_TRY(al_launch(c, k_to_bf16, al_cdiv(m * W->k, 256), 256, 0, X, ldx, m, W->k, (__nv_bfloat16 *)s), "launch k_to_bf16");
        AL_TRY(al_cuda_status(cudaGetLastError(), "to_bf16"));
        return blas_status(cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)W->n_out, M, K, &one, W->data, CUDA_R_16BF, K,
                                        s, CUDA_R_16BF, K, &zero, Y, CUDA_R_32F, (int)ldy, CUBLAS_COMPUTE_32F,
                                        CUBLAS_GEMM_DEFAULT),
                           "gemm bf16");
    }
    /* F16 or quantized: X -> F16; quantized W dequantized in chunks of rows into scratch */
    const size_t xh = (size_t)(m * W->k);
    int64_t chunk = W->n_out;
    if (W->type != AL_TYPE_F16) {
        const size_t budget = (size_t)32 << 20; /* halves of dequantized weights per chunk */
        chunk = (int64_t)(budget / (size_t)W->k);
        if (chunk < 256) chunk = 256;
        if (chunk > W->n_out) chunk = W->n_out;
    }
    const size_t wh = W->type == AL_TYPE_F16 ? 0 : (size_t)chunk * (size_t)W->k;
    void *s;
    AL_TRY(al_cuda_scratch(c, sizeof(__half) * (xh + wh) + 256, &s));
    __half *x16 = (__half *)s;
    __half *w16 = (__half *)s + ((xh + 127) & ~(size_t)127);
    AL_CUDA_TRY(al_launch(c, k_to_f16, al_cdiv(m * W->k, 256), 256, 0, X, ldx, m, W->k, x16), "launch k_to_f16");
    AL_TRY(al_cuda_status(cudaGetLastError(), "to_f16"));
    for (int64_t r0 = 0; r0 < W->n_out; r0 += chunk) {
        const int64_t nr = W->n_out - r0 < chunk ? W->n_out - r0 : chunk;
        const void *A;
        if (W->type == AL_TYPE_F16) A = W->data;
        else {
            AL_TRY(dequant_f16(c, W, r0, nr, w16));
            A = w16;
        }
        AL_TRY(blas_status(cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)nr, M, K, &one, A, CUDA_R_16F, K, x16,
                                        CUDA_R_16F, K, &zero, Y + r0, CUDA_R_32F, (int)ldy, CUBLAS_COMPUTE_32F,
                                        CUBLAS_GEMM_DEFAULT),
                           "gemm f16"));
    }
    return al_ok();
}

extern "C" al_status al_cuda_matmul_id(al_cuda *c, const al_cuda_weight *W, const float *X, int64_t ldx, bool x_per_id,
                                       float *Y, int64_t ldy, const int32_t *ids, int n_ids) {
    AL_TRY(check_mm(W, x_per_id ? ldx : W->k, ldy, n_ids));
    if (!ids) return al_err(AL_ERR_INVALID, "cuda matmul_id: no ids");
    if (n_ids == 0) return al_ok();
    return mmv_launch(c, W, ids, X, ldx, x_per_id ? 1 : 0, Y, ldy, n_ids);
}

extern "C" al_status al_cuda_get_rows(al_cuda *c, const al_cuda_weight *W, const int32_t *ids, int64_t n, float *out,
                                      int64_t ldo) {
    if (!W || !W->data || ldo < W->k) return al_err(AL_ERR_INVALID, "cuda get_rows: bad arguments");
    if (n == 0) return al_ok();
    const uint8_t *w = (const uint8_t *)W->data;
#define CASE_Q(T)                                                                                  \
    case T:                                                                                        \
        AL_CUDA_TRY(al_launch(c, k_get_rows_q<T>, dim3(al_cdiv(W->k >> 3, 128), (unsigned)n), 128, 0, w, W->row_bytes, W->k, ids, out, ldo), "launch k_get_rows_q"); \
        break;
#define CASE_F(T)                                                                                  \
    case T:                                                                                        \
        AL_CUDA_TRY(al_launch(c, k_get_rows_f<T>, dim3(al_cdiv(W->k, 128), (unsigned)n), 128, 0, w, W->row_bytes, W->k, ids, out, ldo), "launch k_get_rows_f"); \
        break;
    switch (W->type) {
        AL_CUDA_QUANT_TYPES(CASE_Q)
        AL_CUDA_FLOAT_TYPES(CASE_F)
    default: return al_err(AL_ERR_UNSUPPORTED, "cuda get_rows: type %s", al_type_name(W->type));
    }
#undef CASE_Q
#undef CASE_F
    AL_CUDA_LAUNCHED("get_rows");
}

extern "C" al_status al_cuda_matmul_n(al_cuda *c, const al_cuda_weight *const *W, int n, const float *X, int64_t ldx,
                                      float *const *Y, int64_t m) {
    if (n < 1 || n > 4) return al_err(AL_ERR_INVALID, "cuda matmul_n: %d weights", n);
    bool same = true, all_mmq = true;
    for (int i = 0; i < n; i++) {
        AL_TRY(check_mm(W[i], ldx, W[i]->n_out, m));
        if (W[i]->type != W[0]->type || W[i]->k != W[0]->k) same = false;
        if (!mmq_ok(W[i]) || W[i]->k != W[0]->k) all_mmq = false;
    }
    if (m == 1 && all_mmq) { /* one launch, types may differ */
        al_cuda_vec_in in;
        memset(&in, 0, sizeof in);
        in.x = X;
        return al_cuda_matvec_n(c, W, n, &in, Y);
    }
    if (!(m == 1 && same && al_type_traits_get(W[0]->type)->is_quantized)) {
        for (int i = 0; i < n; i++) AL_TRY(al_cuda_matmul(c, W[i], X, ldx, Y[i], W[i]->n_out, m));
        return al_ok();
    }
    mmv_multi mm;
    memset(&mm, 0, sizeof mm);
    mm.n = n;
    int64_t v = 0;
    for (int i = 0; i < n; i++) {
        mm.w[i] = (const uint8_t *)W[i]->data;
        mm.row_bytes[i] = W[i]->row_bytes;
        mm.y[i] = Y[i];
        mm.beg[i] = (v + MMV_RPW - 1) / MMV_RPW * MMV_RPW;
        mm.end[i] = v = mm.beg[i] + W[i]->n_out;
    }
    const unsigned grid = al_cdiv(v, MMV_RPW);
    const dim3 block(32, MMV_ROWS);
#define CASE_Q(T) case T: AL_CUDA_TRY(al_launch(c, k_mmv_multi<T>, grid, block, 0, mm, W[0]->k, X), "launch k_mmv_multi"); break;
    switch (W[0]->type) {
        AL_CUDA_QUANT_TYPES(CASE_Q)
    default: return al_err(AL_ERR_UNSUPPORTED, "cuda matmul_n: type %s", al_type_name(W[0]->type));
    }
#undef CASE_Q
    AL_CUDA_LAUNCHED("mmv_multi");
}

extern "C" al_status al_cuda_matvec_n(al_cuda *c, const al_cuda_weight *const *W, int n, const al_cuda_vec_in *in,
                                      float *const *Y) {
    mmq_args a;
    AL_TRY(mmq_args_n(W, n, in, Y, &a));
    return mmq_launch(c, &a, in->x, W[0]->k, 1);
}

extern "C" al_status al_cuda_matvec_act(al_cuda *c, al_cuda_act_kind act, const al_cuda_weight *W, const al_cuda_vec_in *in,
                                        float *Y) {
    mmq_args a;
    AL_TRY(mmq_args_act(act, W, in, Y, &a));
    return mmq_launch(c, &a, in->x, W->k, 1);
}

extern "C" al_status al_cuda_matvec_glu(al_cuda *c, al_cuda_act_kind act, const al_cuda_weight *Wg, const al_cuda_weight *Wu,
                                        const al_cuda_vec_in *in, float *Y) {
    mmq_args a;
    AL_TRY(mmq_args_glu(act, Wg, Wu, in, Y, &a));
    return mmq_launch(c, &a, in->x, Wg->k, 1);
}
