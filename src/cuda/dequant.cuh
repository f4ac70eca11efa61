/*
 * dequant.cuh (internal) — device-side readers of the GGUF block layouts of format/quant_blocks.h,
 * and of the split-row layout (alloy/quant.h) that Q6_K and Q8_0 weights have on the GPU.
 *
 * load8<T>(row, k, i8, v): elements [8 i8, 8 i8 + 8) of a row of k elements of type T as float
 * (i8 < k / 8). Eight consecutive elements always lie in one sub-block, so one scale serves all
 * eight. Block starts are only 2-byte aligned for the 18- and 22-byte blocks, hence the 16-bit loads
 * there; split rows (Q6_K, Q8_0) are 16-byte aligned, their quants 8-byte aligned pieces.
 * Values match al_dequantize_row exactly up to float rounding of d * scale * q. Q2_K (84 bytes) and
 * Q3_K (110) blocks are 4- and 2-byte aligned: 16-bit loads.
 */
#ifndef ALLOY_CUDA_DEQUANT_CUH
#define ALLOY_CUDA_DEQUANT_CUH

#include "cuda/cuda_impl.cuh"

/* AL_HD: the readers below also compile for the host, so that tests/test_cuda_host.cu checks their
 * arithmetic without a GPU; the intrinsics they use go through these wrappers (host: the same
 * function in C). */
#define AL_HD __host__ __device__ __forceinline__
#ifdef __CUDA_ARCH__
#define AL_UNROLL _Pragma("unroll")
#else
#define AL_UNROLL /* the host compiler does not know the pragma */
#endif
/* c + the dot product of the 4 signed bytes of a and of b */
AL_HD int al_dp4a(int a, int b, int c) {
#ifdef __CUDA_ARCH__
    return __dp4a(a, b, c);
#else
    for (int i = 0; i < 4; i++) c += (int)(int8_t)(a >> (8 * i)) * (int)(int8_t)(b >> (8 * i));
    return c;
#endif
}
/* byte i of the result = byte (selector nibble i & 7) of b:a */
AL_HD uint32_t al_byte_perm(uint32_t a, uint32_t b, uint32_t sel) {
#ifdef __CUDA_ARCH__
    return __byte_perm(a, b, sel);
#else
    const uint64_t v = ((uint64_t)b << 32) | a;
    uint32_t r = 0;
    for (int i = 0; i < 4; i++) r |= (uint32_t)((v >> (8 * ((sel >> (4 * i)) & 7))) & 0xFF) << (8 * i);
    return r;
#endif
}

AL_HD float al_h2f(const uint8_t *p) { return __half2float(*(const __half *)p); }

/* 8 bytes from a 2-byte aligned address */
AL_HD uint64_t al_ld8_a2(const uint8_t *p) {
    const uint16_t *q = (const uint16_t *)p;
    return (uint64_t)q[0] | ((uint64_t)q[1] << 16) | ((uint64_t)q[2] << 32) | ((uint64_t)q[3] << 48);
}
AL_HD uint64_t al_ld8_a8(const uint8_t *p) { return *(const uint64_t *)p; }
AL_HD uint32_t al_ld4_a2(const uint8_t *p) {
    const uint16_t *q = (const uint16_t *)p;
    return (uint32_t)q[0] | ((uint32_t)q[1] << 16);
}
AL_HD int al_byte(uint64_t v, int i) { return (int)((v >> (8 * i)) & 0xFF); }

/* IQ4_NL codebook lookup without memory: the 16 int8 values packed in 4 words, picked by prmt. */
AL_HD float al_iq4nl(int nib) {
    const uint32_t t0 = 0xBFAD9881u, t1 = 0xF6EADDCFu, t2 = 0x26190D01u, t3 = 0x71594535u;
    uint32_t w = nib < 8 ? al_byte_perm(t0, t1, (uint32_t)nib) : al_byte_perm(t2, t3, (uint32_t)(nib - 8));
    return (float)(int8_t)(w & 0xFF);
}

template <int T> struct al_qt;

/* 32-blocks of an f16 scale d and 16 bytes of nibbles (Q4_0, IQ4_NL): elements 8 (i8 & 3) .. + 8 of
 * the block, as (nib - 8) d or codebook[nib] d */
template <bool NL> AL_HD void al_load8_nib32(const uint8_t *row, int64_t i8, float *v) {
    const uint8_t *b = row + (i8 >> 2) * 18;
    int s = (int)(i8 & 3);
    float d = al_h2f(b);
    uint64_t q = al_ld8_a2(b + 2 + (s & 1) * 8);
    int sh = (s >> 1) * 4;
AL_UNROLL
    for (int j = 0; j < 8; j++) {
        const int nib = (al_byte(q, j) >> sh) & 0xF;
        v[j] = NL ? al_iq4nl(nib) * d : (float)(nib - 8) * d;
    }
}
template <> struct al_qt<AL_TYPE_Q4_0> {
    static constexpr int bs = 32, bytes = 18;
    __host__ __device__ static void load8(const uint8_t *row, int64_t /* k */, int64_t i8, float *v) { al_load8_nib32<false>(row, i8, v); }
};
template <> struct al_qt<AL_TYPE_Q4_1> {
    static constexpr int bs = 32, bytes = 20;
    __host__ __device__ static void load8(const uint8_t *row, int64_t /* k */, int64_t i8, float *v) {
        const uint8_t *b = row + (i8 >> 2) * bytes;
        int s = (int)(i8 & 3);
        float d = al_h2f(b), m = al_h2f(b + 2);
        uint64_t q = al_ld8_a2(b + 4 + (s & 1) * 8);
        int sh = (s >> 1) * 4;
AL_UNROLL
        for (int j = 0; j < 8; j++) v[j] = (float)((al_byte(q, j) >> sh) & 0xF) * d + m;
    }
};
/* Q5_0 / Q5_1 (MIN: an f16 min after d): d [m] qh[4] qs[16]; value (5-bit q - 16) d, or q d + m */
template <bool MIN> AL_HD void al_load8_q5(const uint8_t *row, int64_t i8, float *v) {
    const uint8_t *b = row + (i8 >> 2) * (MIN ? 24 : 22);
    int s = (int)(i8 & 3);
    float d = al_h2f(b), m = MIN ? al_h2f(b + 2) : 0.0f;
    uint32_t qh = al_ld4_a2(b + (MIN ? 4 : 2));
    int j0 = (s & 1) * 8, hi = s >> 1;
    uint64_t q = al_ld8_a2(b + (MIN ? 8 : 6) + j0);
AL_UNROLL
    for (int j = 0; j < 8; j++) {
        int nib = (al_byte(q, j) >> (4 * hi)) & 0xF;
        int h = (int)((qh >> (j0 + j + 16 * hi)) & 1u) << 4;
        v[j] = MIN ? (float)(nib | h) * d + m : (float)((nib | h) - 16) * d;
    }
}
template <> struct al_qt<AL_TYPE_Q5_0> {
    static constexpr int bs = 32, bytes = 22;
    __host__ __device__ static void load8(const uint8_t *row, int64_t /* k */, int64_t i8, float *v) { al_load8_q5<false>(row, i8, v); }
};
template <> struct al_qt<AL_TYPE_Q5_1> {
    static constexpr int bs = 32, bytes = 24;
    __host__ __device__ static void load8(const uint8_t *row, int64_t /* k */, int64_t i8, float *v) { al_load8_q5<true>(row, i8, v); }
};
template <> struct al_qt<AL_TYPE_Q8_0> {
    static constexpr int bs = 32; /* split rows: no per-block stride */
    __host__ __device__ static void load8(const uint8_t *row, int64_t k, int64_t i8, float *v) {
        const int64_t b = i8 >> 2; /* split row: quants [nb][32], d [nb] */
        const float d = al_h2f(row + 32 * (k >> 5) + 2 * b);
        const uint64_t q = al_ld8_a8(row + 8 * i8);
AL_UNROLL
        for (int j = 0; j < 8; j++) v[j] = (float)(int8_t)al_byte(q, j) * d;
    }
};
template <> struct al_qt<AL_TYPE_IQ4_NL> {
    static constexpr int bs = 32, bytes = 18;
    __host__ __device__ static void load8(const uint8_t *row, int64_t /* k */, int64_t i8, float *v) { al_load8_nib32<true>(row, i8, v); }
};

/* Q2_K / Q3_K: element e of a super-block is bits 2j of quant byte 32n + 16 half + l (n = e / 128,
 * j = e / 32 % 4, half = e / 16 % 2, l = e % 16), with scale is = 8n + 2j + half of its 16-group;
 * Q3_K's third bit (set: +0, clear: -4) is bit 4n + j of hmask byte 16 half + l. */
/* Q3_K's 6-bit scale is (0..15) from the 12 packed bytes sc, minus 32 */
AL_HD int al_scale_q3k(const uint8_t *sc, int is) {
    const int a = is >> 2, b = is & 3;
    return (int)(((sc[4 * (a & 1) + b] >> (4 * (a >> 1))) & 0xF) | (((sc[8 + b] >> (2 * a)) & 3) << 4)) - 32;
}
template <> struct al_qt<AL_TYPE_Q2_K> {
    static constexpr int bs = 256, bytes = 84;
    __host__ __device__ static void load8(const uint8_t *row, int64_t /* k */, int64_t i8, float *v) {
        const uint8_t *b = row + (i8 >> 5) * bytes; /* scales[16] qs[64] d dmin */
        const int e0 = (int)(i8 & 31) * 8, n = e0 >> 7, j = (e0 >> 5) & 3, half = (e0 >> 4) & 1, l0 = e0 & 15;
        const int sc = b[8 * n + 2 * j + half];
        const float d = al_h2f(b + 80) * (float)(sc & 0xF), m = al_h2f(b + 82) * (float)(sc >> 4);
        const uint64_t q = al_ld8_a2(b + 16 + 32 * n + 16 * half + l0);
AL_UNROLL
        for (int t = 0; t < 8; t++) v[t] = d * (float)((al_byte(q, t) >> (2 * j)) & 3) - m;
    }
};
template <> struct al_qt<AL_TYPE_Q3_K> {
    static constexpr int bs = 256, bytes = 110;
    __host__ __device__ static void load8(const uint8_t *row, int64_t /* k */, int64_t i8, float *v) {
        const uint8_t *b = row + (i8 >> 5) * bytes; /* hmask[32] qs[64] scales[12] d */
        const int e0 = (int)(i8 & 31) * 8, n = e0 >> 7, j = (e0 >> 5) & 3, half = (e0 >> 4) & 1, l0 = e0 & 15;
        const float d = al_h2f(b + 108) * (float)al_scale_q3k(b + 96, 8 * n + 2 * j + half);
        const uint64_t q = al_ld8_a2(b + 32 + 32 * n + 16 * half + l0), h = al_ld8_a2(b + 16 * half + l0);
AL_UNROLL
        for (int t = 0; t < 8; t++)
            v[t] = d * (float)((int)((al_byte(q, t) >> (2 * j)) & 3) - (((al_byte(h, t) >> (4 * n + j)) & 1) ? 0 : 4));
    }
};

/* Q4_K / Q5_K 6-bit scale and min of sub-block j (0..7) */
AL_HD void al_scale_min_k4(int j, const uint8_t *q, int *d, int *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}
/* al_scale_min_k4 of sub-blocks 2j and 2j + 1 (j < 4) from the block's 16-byte header hd (d, dmin, then
 * the 12 scale bytes as words s0, s1, s2), as byte pairs of those words: sc[2] / mn[2]; branch-free in
 * the lane, so that the lanes of a warp at different j do not diverge */
AL_HD void al_scale_min_k4_pair(uint4 hd, int j, int *sc, int *mn) {
    const int sh = 16 * (j & 1);
    const unsigned a0 = hd.y >> sh, a1 = hd.z >> sh, a2 = hd.w >> sh;
    const unsigned dp = j < 2 ? a0 & 0x3F3Fu : (a2 & 0x0F0Fu) | ((a0 >> 2) & 0x3030u);
    const unsigned mp = j < 2 ? a1 & 0x3F3Fu : ((a2 >> 4) & 0x0F0Fu) | ((a1 >> 2) & 0x3030u);
    sc[0] = (int)(dp & 0xFFu), sc[1] = (int)(dp >> 8), mn[0] = (int)(mp & 0xFFu), mn[1] = (int)(mp >> 8);
}

template <> struct al_qt<AL_TYPE_Q4_K> {
    static constexpr int bs = 256, bytes = 144;
    __host__ __device__ static void load8(const uint8_t *row, int64_t /* k */, int64_t i8, float *v) {
        const uint8_t *b = row + (i8 >> 5) * bytes;
        int e0 = (int)(i8 & 31) * 8, j = e0 >> 6, l = e0 & 63, hi = l >> 5;
        int sc, mn;
        al_scale_min_k4(2 * j + hi, b + 4, &sc, &mn);
        float d = al_h2f(b) * (float)sc, m = al_h2f(b + 2) * (float)mn;
        uint64_t q = al_ld8_a8(b + 16 + 32 * j + (l & 31));
AL_UNROLL
        for (int t = 0; t < 8; t++) v[t] = d * (float)((al_byte(q, t) >> (4 * hi)) & 0xF) - m;
    }
};
template <> struct al_qt<AL_TYPE_Q5_K> {
    static constexpr int bs = 256, bytes = 176;
    __host__ __device__ static void load8(const uint8_t *row, int64_t /* k */, int64_t i8, float *v) {
        const uint8_t *b = row + (i8 >> 5) * bytes;
        int e0 = (int)(i8 & 31) * 8, j = e0 >> 6, l = e0 & 63, hi = l >> 5;
        int sc, mn;
        al_scale_min_k4(2 * j + hi, b + 4, &sc, &mn);
        float d = al_h2f(b) * (float)sc, m = al_h2f(b + 2) * (float)mn;
        uint64_t q = al_ld8_a8(b + 48 + 32 * j + (l & 31));
        uint64_t h = al_ld8_a8(b + 16 + (l & 31));
        int bit = 2 * j + hi;
AL_UNROLL
        for (int t = 0; t < 8; t++)
            v[t] = d * (float)(((al_byte(q, t) >> (4 * hi)) & 0xF) | (((al_byte(h, t) >> bit) & 1) << 4)) - m;
    }
};
template <> struct al_qt<AL_TYPE_Q6_K> {
    static constexpr int bs = 256; /* split rows: no per-block stride */
    __host__ __device__ static void load8(const uint8_t *row, int64_t k, int64_t i8, float *v) {
        const int64_t blk = i8 >> 5, nb = k >> 8; /* split row: quants [nb][192], scales [nb][16], d [nb] */
        const uint8_t *b = row + blk * 192;
        int e0 = (int)(i8 & 31) * 8, n = e0 >> 7, rr = e0 & 127, qq = rr >> 5, l = rr & 31;
        uint64_t ql = al_ld8_a8(b + 64 * n + l + (qq & 1) * 32);
        uint64_t qh = al_ld8_a8(b + 128 + 32 * n + l);
        float d = al_h2f(row + 208 * nb + 2 * blk) * (float)(int8_t)row[192 * nb + 16 * blk + 8 * n + l / 16 + 2 * qq];
        int sh = (qq >> 1) * 4;
AL_UNROLL
        for (int t = 0; t < 8; t++)
            v[t] = d * (float)((((al_byte(ql, t) >> sh) & 0xF) | (((al_byte(qh, t) >> (2 * qq)) & 3) << 4)) - 32);
    }
};
template <> struct al_qt<AL_TYPE_IQ4_XS> {
    static constexpr int bs = 256, bytes = 136;
    __host__ __device__ static void load8(const uint8_t *row, int64_t /* k */, int64_t i8, float *v) {
        const uint8_t *b = row + (i8 >> 5) * bytes;
        int e0 = (int)(i8 & 31) * 8, ib = e0 >> 5, rr = e0 & 31;
        uint32_t sh = *(const uint16_t *)(b + 2);
        int ls = ((b[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) | (int)(((sh >> (2 * ib)) & 3u) << 4);
        float dl = al_h2f(b) * (float)(ls - 32);
        uint64_t q = al_ld8_a8(b + 8 + 16 * ib + (rr & 15));
        int s = (rr >> 4) * 4;
AL_UNROLL
        for (int t = 0; t < 8; t++) v[t] = dl * al_iq4nl((al_byte(q, t) >> s) & 0xF);
    }
};

/* float types, element-wise */
template <int T> AL_HD float al_load1(const uint8_t *row, int64_t i);
template <> AL_HD float al_load1<AL_TYPE_F32>(const uint8_t *row, int64_t i) { return ((const float *)row)[i]; }
template <> AL_HD float al_load1<AL_TYPE_F16>(const uint8_t *row, int64_t i) {
    return __half2float(((const __half *)row)[i]);
}
template <> AL_HD float al_load1<AL_TYPE_BF16>(const uint8_t *row, int64_t i) {
    return __bfloat162float(((const __nv_bfloat16 *)row)[i]);
}

/* Calls F.template operator()<T>() for the type t; returns false for unsupported types. */
#define AL_CUDA_QUANT_TYPES(X)                                                                     \
    X(AL_TYPE_Q4_0) X(AL_TYPE_Q4_1) X(AL_TYPE_Q5_0) X(AL_TYPE_Q5_1) X(AL_TYPE_Q8_0) X(AL_TYPE_IQ4_NL) \
    X(AL_TYPE_Q2_K) X(AL_TYPE_Q3_K) X(AL_TYPE_Q4_K) X(AL_TYPE_Q5_K) X(AL_TYPE_Q6_K) X(AL_TYPE_IQ4_XS)
#define AL_CUDA_FLOAT_TYPES(X) X(AL_TYPE_F32) X(AL_TYPE_F16) X(AL_TYPE_BF16)

#endif
