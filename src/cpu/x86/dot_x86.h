/*
 * dot_x86.h (internal template) — x86 dot kernels shared by dot_avx2.c and dot_avx512.c.
 * Included once per ISA file, which first defines:
 *   AL_X86_VNNI  1: int8 dot primitive is vpdpbusd (AVX-512 VNNI, 256-bit via VL); 0: maddubs+madd
 *   AL_X86_512   1: legacy 32-blocks run two blocks per 512-bit step; float kernels use zmm
 *   AL_X86_SFX   table / quantizer suffix (avx2, avx512)
 * All kernels take NR (1..AL_DOT_NR, compile-time after inlining) activation rows per weight row
 * and decode each weight block once for all of them.
 *
 * Integer ranges (no saturation anywhere): maddubs(u8 <= 63, s8 in [-127, 127]) pair sums stay
 * below 2 * 63 * 127 < 32767; the sign trick uses |q| <= 127 against |y| <= 127.
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "cpu/cpu_impl.h"

#define FP16(h) _cvtsh_ss(h)
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)

/* ---- primitives ---------------------------------------------------------------------------- */

static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float hsum128(__m128 s) {
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* int32 lanes: sums of 4 adjacent u8 * s8 products */
AL_INLINE __m256i dot_us8(__m256i u, __m256i s) {
#if AL_X86_VNNI
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

/* 32 nibbles of 16 bytes in element order: low nibbles (elements 0..15), then high (16..31) */
AL_INLINE __m256i nibbles32(const uint8_t *qs) {
    __m128i b = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(b, 4), b), _mm256_set1_epi8(0x0f));
}

/* 32 bits -> 32 bytes, 0xff where the bit is set (bit j -> byte j) */
AL_INLINE __m256i bits_to_bytes(uint32_t bits) {
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL, 0x0101010101010101LL, 0);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), shuf);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

/* pshufb masks selecting scale 2c for 8 words then 2c+1 for 8 words (as bytes before widening) */
static const uint8_t k_scale_shuf[8][16] = {
    {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1},         {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
    {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5},         {6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7},
    {8, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9},         {10, 10, 10, 10, 10, 10, 10, 10, 11, 11, 11, 11, 11, 11, 11, 11},
    {12, 12, 12, 12, 12, 12, 12, 12, 13, 13, 13, 13, 13, 13, 13, 13}, {14, 14, 14, 14, 14, 14, 14, 14, 15, 15, 15, 15, 15, 15, 15, 15},
};

/* 16 int16: scale 2c (words 0..7, elements 0..15 of a 32-chunk) and 2c+1 (words 8..15) */
AL_INLINE __m256i scale_pair16(__m128i sc8, int c) {
    return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, _mm_loadu_si128((const __m128i *)k_scale_shuf[c])));
}

#define YROW(T, y, by, r) ((const T *)((const char *)(y) + (size_t)(r) * (by)))

/* ---- legacy 32-blocks with signed values against Q8_0 -------------------------------------- */

AL_INLINE __m256i dec_q4_0(const al_block_q4_0 *b) {
    return _mm256_sub_epi8(nibbles32(b->qs), _mm256_set1_epi8(8));
}
AL_INLINE __m256i dec_q8_0(const al_block_q8_0 *b) { return _mm256_loadu_si256((const __m256i *)b->qs); }
AL_INLINE __m256i dec_q5_0(const al_block_q5_0 *b) {
    uint32_t qh;
    memcpy(&qh, b->qh, 4);
    /* (q4 | h << 4) - 16 == q4 | (h ? 0 : 0xf0) as int8 */
    __m256i hi = _mm256_andnot_si256(bits_to_bytes(qh), _mm256_set1_epi8((char)0xf0));
    return _mm256_or_si256(nibbles32(b->qs), hi);
}
AL_INLINE __m256i dec_iq4_nl(const al_block_iq4_nl *b) {
    const __m256i tab = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)al_kvalues_iq4nl));
    return _mm256_shuffle_epi8(tab, nibbles32(b->qs));
}

/* one 32-block against NR activation rows; acc[r] += dx * dy * dot */
AL_INLINE void ls_step(__m256i q, float dx, const al_block_q8_0 *const *y, int64_t i, __m256 *acc, const int NR) {
    const __m256i aq = _mm256_sign_epi8(q, q);
    AL_UNROLL for (int r = 0; r < NR; r++) {
        const __m256i qy = _mm256_loadu_si256((const __m256i *)y[r][i].qs);
        const __m256i p = dot_us8(aq, _mm256_sign_epi8(qy, q));
        acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(dx * FP16(y[r][i].d)), _mm256_cvtepi32_ps(p), acc[r]);
    }
}

#if AL_X86_512
/* blocks i and i+1 in one zmm; y is negated where the weight is negative (no 512-bit psignb) */
AL_INLINE void ls_step2(__m256i q0, __m256i q1, float d0, float d1, const al_block_q8_0 *const *y, int64_t i,
                        __m512 *acc, const int NR) {
    const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);
    const __m512i aq = _mm512_abs_epi8(q);
    const __mmask64 neg = _mm512_movepi8_mask(q);
    AL_UNROLL for (int r = 0; r < NR; r++) {
        __m512i qy = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)y[r][i].qs)),
                                        _mm256_loadu_si256((const __m256i *)y[r][i + 1].qs), 1);
        qy = _mm512_mask_sub_epi8(qy, neg, _mm512_setzero_si512(), qy);
        const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), aq, qy);
        const __m512 sc = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(d0 * FP16(y[r][i].d))),
                                             _mm256_set1_ps(d1 * FP16(y[r][i + 1].d)), 1);
        acc[r] = _mm512_fmadd_ps(sc, _mm512_cvtepi32_ps(p), acc[r]);
    }
}

#define LEGACY_S_KERNEL(name, XT, DEC)                                                             \
    AL_INLINE void name##_impl(int64_t n, float *s, size_t bs, const void *vx, const void *vy,     \
                               size_t by, const int NR) {                                          \
        const XT *x = vx;                                                                          \
        const int64_t nb = n / 32;                                                                 \
        const al_block_q8_0 *y[AL_DOT_NR];                                                         \
        __m512 a0[AL_DOT_NR], a1[AL_DOT_NR];                                                       \
        __m256 t[AL_DOT_NR];                                                                       \
        AL_UNROLL for (int r = 0; r < NR; r++) {                                                             \
            y[r] = YROW(al_block_q8_0, vy, by, r);                                                 \
            a0[r] = a1[r] = _mm512_setzero_ps();                                                   \
            t[r] = _mm256_setzero_ps();                                                            \
        }                                                                                          \
        int64_t i = 0;                                                                             \
        for (; i + 3 < nb; i += 4) {                                                               \
            ls_step2(DEC(&x[i]), DEC(&x[i + 1]), FP16(x[i].d), FP16(x[i + 1].d), y, i, a0, NR);   \
            ls_step2(DEC(&x[i + 2]), DEC(&x[i + 3]), FP16(x[i + 2].d), FP16(x[i + 3].d), y, i + 2, a1, NR); \
        }                                                                                          \
        for (; i < nb; i++) ls_step(DEC(&x[i]), FP16(x[i].d), y, i, t, NR);                        \
        AL_UNROLL for (int r = 0; r < NR; r++)                                                               \
            s[r * bs] = _mm512_reduce_add_ps(_mm512_add_ps(a0[r], a1[r])) + hsum256(t[r]);         \
    }
#else
#define LEGACY_S_KERNEL(name, XT, DEC)                                                             \
    AL_INLINE void name##_impl(int64_t n, float *s, size_t bs, const void *vx, const void *vy,     \
                               size_t by, const int NR) {                                          \
        const XT *x = vx;                                                                          \
        const int64_t nb = n / 32;                                                                 \
        const al_block_q8_0 *y[AL_DOT_NR];                                                         \
        __m256 a0[AL_DOT_NR], a1[AL_DOT_NR];                                                       \
        AL_UNROLL for (int r = 0; r < NR; r++) {                                                             \
            y[r] = YROW(al_block_q8_0, vy, by, r);                                                 \
            a0[r] = a1[r] = _mm256_setzero_ps();                                                   \
        }                                                                                          \
        int64_t i = 0;                                                                             \
        for (; i + 1 < nb; i += 2) {                                                               \
            ls_step(DEC(&x[i]), FP16(x[i].d), y, i, a0, NR);                                       \
            ls_step(DEC(&x[i + 1]), FP16(x[i + 1].d), y, i + 1, a1, NR);                           \
        }                                                                                          \
        if (i < nb) ls_step(DEC(&x[i]), FP16(x[i].d), y, i, a0, NR);                               \
        AL_UNROLL for (int r = 0; r < NR; r++) s[r * bs] = hsum256(_mm256_add_ps(a0[r], a1[r]));            \
    }
#endif

LEGACY_S_KERNEL(k_q4_0, al_block_q4_0, dec_q4_0)
LEGACY_S_KERNEL(k_q5_0, al_block_q5_0, dec_q5_0)
LEGACY_S_KERNEL(k_q8_0, al_block_q8_0, dec_q8_0)
LEGACY_S_KERNEL(k_iq4_nl, al_block_iq4_nl, dec_iq4_nl)

/* ---- legacy 32-blocks with unsigned values + min against Q8_1 ------------------------------- */

AL_INLINE __m256i dec_q4_1(const al_block_q4_1 *b) { return nibbles32(b->qs); }
AL_INLINE __m256i dec_q5_1(const al_block_q5_1 *b) {
    uint32_t qh;
    memcpy(&qh, b->qh, 4);
    return _mm256_or_si256(nibbles32(b->qs), _mm256_and_si256(bits_to_bytes(qh), _mm256_set1_epi8(0x10)));
}

#define LEGACY_U_KERNEL(name, XT, DEC)                                                             \
    AL_INLINE void name##_impl(int64_t n, float *s, size_t bs, const void *vx, const void *vy,     \
                               size_t by, const int NR) {                                          \
        const XT *x = vx;                                                                          \
        const int64_t nb = n / 32;                                                                 \
        const al_block_q8_1 *y[AL_DOT_NR];                                                         \
        __m256 acc[AL_DOT_NR];                                                                     \
        float accm[AL_DOT_NR];                                                                     \
        AL_UNROLL for (int r = 0; r < NR; r++) {                                                             \
            y[r] = YROW(al_block_q8_1, vy, by, r);                                                 \
            acc[r] = _mm256_setzero_ps();                                                          \
            accm[r] = 0.0f;                                                                        \
        }                                                                                          \
        for (int64_t i = 0; i < nb; i++) {                                                         \
            __m256i q = DEC(&x[i]);                                                                \
            const float d0 = FP16(x[i].d), m0 = FP16(x[i].m);                                      \
            AL_UNROLL for (int r = 0; r < NR; r++) {                                                         \
                __m256i p = dot_us8(q, _mm256_loadu_si256((const __m256i *)y[r][i].qs));           \
                acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d0 * FP16(y[r][i].d)), _mm256_cvtepi32_ps(p), acc[r]); \
                accm[r] += m0 * FP16(y[r][i].s);                                                   \
            }                                                                                      \
        }                                                                                          \
        AL_UNROLL for (int r = 0; r < NR; r++) s[r * bs] = hsum256(acc[r]) + accm[r];                       \
    }

LEGACY_U_KERNEL(k_q4_1, al_block_q4_1, dec_q4_1)
LEGACY_U_KERNEL(k_q5_1, al_block_q5_1, dec_q5_1)

/* ---- K-quants against Q8_K ------------------------------------------------------------------ */

/* mins · (bsums[2j] + bsums[2j+1]) as 4 int32 lanes (Q4_K / Q5_K) */
AL_INLINE __m128i k4_mins_dot(__m128i mins16, const int16_t *bsums) {
    __m128i b0 = _mm_loadu_si128((const __m128i *)bsums), b1 = _mm_loadu_si128((const __m128i *)(bsums + 8));
    return _mm_madd_epi16(mins16, _mm_hadd_epi16(b0, b1));
}

AL_INLINE void k_q4_K_IMPL256(int64_t n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int NR) {
    const al_block_q4_K *x = vx;
    const int64_t nb = n / AL_QK_K;
    const al_block_q8_K *y[AL_DOT_NR];
    __m256 acc[AL_DOT_NR];
    __m128 accm[AL_DOT_NR];
    AL_UNROLL for (int r = 0; r < NR; r++) {
        y[r] = YROW(al_block_q8_K, vy, by, r);
        acc[r] = _mm256_setzero_ps();
        accm[r] = _mm_setzero_ps();
    }
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    for (int64_t i = 0; i < nb; i++) {
        uint32_t u[4];
        al_unpack_k4_scales(x[i].scales, u);
        const uint8_t *sc = (const uint8_t *)u;
        const __m128i mins16 = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)u[3], (int)u[2]));
        const float d = FP16(x[i].d), dmin = FP16(x[i].dmin);
        __m256i sumi[AL_DOT_NR];
        AL_UNROLL for (int r = 0; r < NR; r++) {
            sumi[r] = _mm256_setzero_si256();
            __m128i mp = k4_mins_dot(mins16, y[r][i].bsums);
            accm[r] = _mm_fmadd_ps(_mm_set1_ps(dmin * y[r][i].d), _mm_cvtepi32_ps(mp), accm[r]);
        }
        AL_UNROLL for (int j = 0; j < 4; j++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * j));
            const __m256i lo = _mm256_and_si256(bits, m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            const __m256i s_lo = _mm256_set1_epi16(sc[2 * j]), s_hi = _mm256_set1_epi16(sc[2 * j + 1]);
            AL_UNROLL for (int r = 0; r < NR; r++) {
                const int8_t *q8 = y[r][i].qs + 64 * j;
                __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)q8)), s_lo);
                __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 32))), s_hi);
                sumi[r] = _mm256_add_epi32(sumi[r], _mm256_add_epi32(p0, p1));
            }
        }
        AL_UNROLL for (int r = 0; r < NR; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d * y[r][i].d), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
    }
    AL_UNROLL for (int r = 0; r < NR; r++) s[r * bs] = hsum256(acc[r]) - hsum128(accm[r]);
}

AL_INLINE void k_q5_K_IMPL256(int64_t n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int NR) {
    const al_block_q5_K *x = vx;
    const int64_t nb = n / AL_QK_K;
    const al_block_q8_K *y[AL_DOT_NR];
    __m256 acc[AL_DOT_NR];
    __m128 accm[AL_DOT_NR];
    AL_UNROLL for (int r = 0; r < NR; r++) {
        y[r] = YROW(al_block_q8_K, vy, by, r);
        acc[r] = _mm256_setzero_ps();
        accm[r] = _mm_setzero_ps();
    }
    const __m256i m4 = _mm256_set1_epi8(0x0f), one = _mm256_set1_epi8(1), two = _mm256_set1_epi8(2);
    for (int64_t i = 0; i < nb; i++) {
        uint32_t u[4];
        al_unpack_k4_scales(x[i].scales, u);
        const uint8_t *sc = (const uint8_t *)u;
        const __m128i mins16 = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)u[3], (int)u[2]));
        const float d = FP16(x[i].d), dmin = FP16(x[i].dmin);
        __m256i sumi[AL_DOT_NR];
        AL_UNROLL for (int r = 0; r < NR; r++) {
            sumi[r] = _mm256_setzero_si256();
            __m128i mp = k4_mins_dot(mins16, y[r][i].bsums);
            accm[r] = _mm_fmadd_ps(_mm_set1_ps(dmin * y[r][i].d), _mm_cvtepi32_ps(mp), accm[r]);
        }
        __m256i hb = _mm256_loadu_si256((const __m256i *)x[i].qh);
        AL_UNROLL for (int j = 0; j < 4; j++) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * j));
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(bits, m4), _mm256_slli_epi16(_mm256_and_si256(hb, one), 4));
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4),
                                               _mm256_slli_epi16(_mm256_and_si256(hb, two), 3));
            hb = _mm256_srli_epi16(hb, 2);
            const __m256i s_lo = _mm256_set1_epi16(sc[2 * j]), s_hi = _mm256_set1_epi16(sc[2 * j + 1]);
            AL_UNROLL for (int r = 0; r < NR; r++) {
                const int8_t *q8 = y[r][i].qs + 64 * j;
                __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)q8)), s_lo);
                __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 32))), s_hi);
                sumi[r] = _mm256_add_epi32(sumi[r], _mm256_add_epi32(p0, p1));
            }
        }
        AL_UNROLL for (int r = 0; r < NR; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d * y[r][i].d), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
    }
    AL_UNROLL for (int r = 0; r < NR; r++) s[r * bs] = hsum256(acc[r]) - hsum128(accm[r]);
}

AL_INLINE void k_q6_K_IMPL256(int64_t n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int NR) {
    const al_block_q6_K *x = vx;
    const int64_t nb = n / AL_QK_K;
    const al_block_q8_K *y[AL_DOT_NR];
    __m256 acc[AL_DOT_NR];
    AL_UNROLL for (int r = 0; r < NR; r++) {
        y[r] = YROW(al_block_q8_K, vy, by, r);
        acc[r] = _mm256_setzero_ps();
    }
    const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(0x03), mc = _mm256_set1_epi8(0x0c),
                  m30 = _mm256_set1_epi8(0x30);
    for (int64_t i = 0; i < nb; i++) {
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)x[i].scales);
        const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
        const float d = FP16(x[i].d);
        __m256i sumi[AL_DOT_NR];
        AL_UNROLL for (int r = 0; r < NR; r++) /* values are q - 32: subtract 32 * sum(scale * bsum) */
            sumi[r] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                       _mm256_slli_epi32(_mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)y[r][i].bsums)), 5));
        AL_UNROLL for (int h = 0; h < 2; h++) {
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(x[i].ql + 64 * h));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(x[i].ql + 64 * h + 32));
            const __m256i hb = _mm256_loadu_si256((const __m256i *)(x[i].qh + 32 * h));
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m3), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(hb, mc), 2));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hb, m30));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30));
            AL_UNROLL for (int k = 0; k < 4; k++) {
                const __m256i sv = scale_pair16(sc8, 4 * h + k);
                AL_UNROLL for (int r = 0; r < NR; r++) {
                    const __m256i q8 = _mm256_loadu_si256((const __m256i *)(y[r][i].qs + 128 * h + 32 * k));
                    sumi[r] = _mm256_add_epi32(sumi[r], _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], q8), sv));
                }
            }
        }
        AL_UNROLL for (int r = 0; r < NR; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d * y[r][i].d), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
    }
    AL_UNROLL for (int r = 0; r < NR; r++) s[r * bs] = hsum256(acc[r]);
}

/* al_unpack_q3k_scales in registers (a round trip through memory stalls store forwarding) */
AL_INLINE __m128i q3k_scales(const uint8_t *s12) {
    uint32_t t;
    memcpy(&t, s12 + 8, 4);
    const __m128i a = _mm_loadl_epi64((const __m128i *)s12), m4 = _mm_set1_epi8(0x0f);
    const __m128i low = _mm_unpacklo_epi64(_mm_and_si128(a, m4), _mm_and_si128(_mm_srli_epi16(a, 4), m4));
    __m128i hi = _mm_srlv_epi32(_mm_set1_epi32((int)t), _mm_setr_epi32(0, 2, 4, 6));
    hi = _mm_slli_epi32(_mm_and_si128(hi, _mm_set1_epi8(3)), 4);
    return _mm_or_si128(low, hi);
}

AL_INLINE void k_q3_K_impl(int64_t n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int NR) {
    const al_block_q3_K *x = vx;
    const int64_t nb = n / AL_QK_K;
    const al_block_q8_K *y[AL_DOT_NR];
    __m256 acc[AL_DOT_NR];
    AL_UNROLL for (int r = 0; r < NR; r++) {
        y[r] = YROW(al_block_q8_K, vy, by, r);
        acc[r] = _mm256_setzero_ps();
    }
    const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    for (int64_t i = 0; i < nb; i++) {
        const __m128i sc8 = _mm_sub_epi8(q3k_scales(x[i].scales), _mm_set1_epi8(32));
        const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
        const float d = FP16(x[i].d);
        __m256i sumi[AL_DOT_NR];
        AL_UNROLL for (int r = 0; r < NR; r++) /* values are u - 4 with u = q2 | h << 2 */
            sumi[r] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                       _mm256_slli_epi32(_mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)y[r][i].bsums)), 2));
        __m256i hb = _mm256_loadu_si256((const __m256i *)x[i].hmask);
        AL_UNROLL for (int h = 0; h < 2; h++) {
            __m256i bits = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * h));
            AL_UNROLL for (int j = 0; j < 4; j++) {
                const __m256i u = _mm256_or_si256(_mm256_and_si256(bits, m3), _mm256_slli_epi16(_mm256_and_si256(hb, one), 2));
                bits = _mm256_srli_epi16(bits, 2);
                hb = _mm256_srli_epi16(hb, 1);
                const __m256i sv = scale_pair16(sc8, 4 * h + j);
                AL_UNROLL for (int r = 0; r < NR; r++) {
                    const __m256i q8 = _mm256_loadu_si256((const __m256i *)(y[r][i].qs + 128 * h + 32 * j));
                    sumi[r] = _mm256_add_epi32(sumi[r], _mm256_madd_epi16(_mm256_maddubs_epi16(u, q8), sv));
                }
            }
        }
        AL_UNROLL for (int r = 0; r < NR; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d * y[r][i].d), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
    }
    AL_UNROLL for (int r = 0; r < NR; r++) s[r * bs] = hsum256(acc[r]);
}

AL_INLINE void k_q2_K_impl(int64_t n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int NR) {
    const al_block_q2_K *x = vx;
    const int64_t nb = n / AL_QK_K;
    const al_block_q8_K *y[AL_DOT_NR];
    __m256 acc[AL_DOT_NR], accm[AL_DOT_NR];
    AL_UNROLL for (int r = 0; r < NR; r++) {
        y[r] = YROW(al_block_q8_K, vy, by, r);
        acc[r] = accm[r] = _mm256_setzero_ps();
    }
    const __m256i m3 = _mm256_set1_epi8(3);
    for (int64_t i = 0; i < nb; i++) {
        const __m128i raw = _mm_loadu_si128((const __m128i *)x[i].scales);
        const __m128i sc8 = _mm_and_si128(raw, _mm_set1_epi8(0x0f));
        const __m256i mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0f)));
        const float d = FP16(x[i].d), dmin = FP16(x[i].dmin);
        __m256i sumi[AL_DOT_NR];
        AL_UNROLL for (int r = 0; r < NR; r++) {
            sumi[r] = _mm256_setzero_si256();
            __m256i mp = _mm256_madd_epi16(mn16, _mm256_loadu_si256((const __m256i *)y[r][i].bsums));
            accm[r] = _mm256_fmadd_ps(_mm256_set1_ps(dmin * y[r][i].d), _mm256_cvtepi32_ps(mp), accm[r]);
        }
        AL_UNROLL for (int h = 0; h < 2; h++) {
            __m256i bits = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * h));
            AL_UNROLL for (int j = 0; j < 4; j++) {
                const __m256i q = _mm256_and_si256(bits, m3);
                bits = _mm256_srli_epi16(bits, 2);
                const __m256i sv = scale_pair16(sc8, 4 * h + j);
                AL_UNROLL for (int r = 0; r < NR; r++) {
                    const __m256i q8 = _mm256_loadu_si256((const __m256i *)(y[r][i].qs + 128 * h + 32 * j));
                    sumi[r] = _mm256_add_epi32(sumi[r], _mm256_madd_epi16(_mm256_maddubs_epi16(q, q8), sv));
                }
            }
        }
        AL_UNROLL for (int r = 0; r < NR; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d * y[r][i].d), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
    }
    AL_UNROLL for (int r = 0; r < NR; r++) s[r * bs] = hsum256(acc[r]) - hsum256(accm[r]);
}

AL_INLINE void k_iq4_xs_IMPL256(int64_t n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int NR) {
    const al_block_iq4_xs *x = vx;
    const int64_t nb = n / AL_QK_K;
    const al_block_q8_K *y[AL_DOT_NR];
    __m256 acc[AL_DOT_NR];
    AL_UNROLL for (int r = 0; r < NR; r++) {
        y[r] = YROW(al_block_q8_K, vy, by, r);
        acc[r] = _mm256_setzero_ps();
    }
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i tab = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)al_kvalues_iq4nl));
    for (int64_t i = 0; i < nb; i++) {
        const float d = FP16(x[i].d);
        __m256i sumi[AL_DOT_NR];
        AL_UNROLL for (int r = 0; r < NR; r++) sumi[r] = _mm256_setzero_si256();
        AL_UNROLL for (int ib = 0; ib < 8; ib += 2) {
            const __m256i bits = _mm256_loadu_si256((const __m256i *)(x[i].qs + 16 * ib));
            const __m256i lo = _mm256_and_si256(bits, m4), hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
            const __m256i ka = _mm256_shuffle_epi8(tab, _mm256_permute2x128_si256(lo, hi, 0x20));
            const __m256i kb = _mm256_shuffle_epi8(tab, _mm256_permute2x128_si256(lo, hi, 0x31));
            const __m256i aa = _mm256_sign_epi8(ka, ka), ab = _mm256_sign_epi8(kb, kb);
            const __m256i sa = _mm256_set1_epi16((int16_t)(al_iq4xs_scale(&x[i], ib) - 32));
            const __m256i sb = _mm256_set1_epi16((int16_t)(al_iq4xs_scale(&x[i], ib + 1) - 32));
            AL_UNROLL for (int r = 0; r < NR; r++) {
                const __m256i ya = _mm256_loadu_si256((const __m256i *)(y[r][i].qs + 32 * ib));
                const __m256i yb = _mm256_loadu_si256((const __m256i *)(y[r][i].qs + 32 * ib + 32));
                __m256i pa = _mm256_madd_epi16(_mm256_maddubs_epi16(aa, _mm256_sign_epi8(ya, ka)), sa);
                __m256i pb = _mm256_madd_epi16(_mm256_maddubs_epi16(ab, _mm256_sign_epi8(yb, kb)), sb);
                sumi[r] = _mm256_add_epi32(sumi[r], _mm256_add_epi32(pa, pb));
            }
        }
        AL_UNROLL for (int r = 0; r < NR; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d * y[r][i].d), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
    }
    AL_UNROLL for (int r = 0; r < NR; r++) s[r * bs] = hsum256(acc[r]);
}

#if AL_X86_512
/* ---- 512-bit K-quants: one zmm covers 64 consecutive activation bytes (two 32-sub-blocks) ---- */

/* words [2c x 16 | 2c+1 x 16] of a 32-word table: permutexvar index for sub-block pair c */
AL_INLINE __m512i pair_idx(int c) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16((short)(2 * c))), _mm256_set1_epi16((short)(2 * c + 1)), 1);
}

AL_INLINE void k4_k5_512(int64_t n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int NR,
                         const bool five) {
    const size_t xsz = five ? sizeof(al_block_q5_K) : sizeof(al_block_q4_K);
    const int64_t nb = n / AL_QK_K;
    const al_block_q8_K *y[AL_DOT_NR];
    __m512 acc[AL_DOT_NR];
    __m128 accm[AL_DOT_NR];
    AL_UNROLL for (int r = 0; r < NR; r++) {
        y[r] = YROW(al_block_q8_K, vy, by, r);
        acc[r] = _mm512_setzero_ps();
        accm[r] = _mm_setzero_ps();
    }
    const __m512i m4 = _mm512_set1_epi8(0x0f), one = _mm512_set1_epi8(1);
    for (int64_t i = 0; i < nb; i++) {
        const char *blk = (const char *)vx + (size_t)i * xsz;
        const al_block_q4_K *x4 = (const void *)blk;
        const al_block_q5_K *x5 = (const void *)blk;
        const uint8_t *qs = five ? x5->qs : x4->qs;
        uint32_t u[4];
        al_unpack_k4_scales(x4->scales, u); /* same header layout in Q4_K and Q5_K */
        const __m128i sc8 = _mm_set_epi32((int)u[3], (int)u[2], (int)u[1], (int)u[0]);
        const __m512i sc16 = _mm512_castsi256_si512(_mm256_cvtepu8_epi16(sc8)); /* words 0..7 scales */
        const __m128i mins16 = _mm_cvtepu8_epi16(_mm_srli_si128(sc8, 8));
        const float d = FP16(x4->d), dmin = FP16(x4->dmin);
        __m512i sumi[AL_DOT_NR];
        AL_UNROLL for (int r = 0; r < NR; r++) {
            sumi[r] = _mm512_setzero_si512();
            __m128i mp = k4_mins_dot(mins16, y[r][i].bsums);
            accm[r] = _mm_fmadd_ps(_mm_set1_ps(dmin * y[r][i].d), _mm_cvtepi32_ps(mp), accm[r]);
        }
        __m512i hb = _mm512_setzero_si512();
        if (five)
            hb = _mm512_srlv_epi16(_mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)x5->qh)),
                                   _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(1), 1));
        AL_UNROLL for (int j = 0; j < 4; j++) {
            const __m512i b = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(qs + 32 * j)));
            __m512i q = _mm512_and_si512(_mm512_srlv_epi16(b, _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1)), m4);
            if (five) {
                q = _mm512_or_si512(q, _mm512_slli_epi16(_mm512_and_si512(hb, one), 4));
                hb = _mm512_srli_epi16(hb, 2);
            }
            const __m512i sv = _mm512_permutexvar_epi16(pair_idx(j), sc16);
            AL_UNROLL for (int r = 0; r < NR; r++) {
                const __m512i q8 = _mm512_loadu_si512((const void *)(y[r][i].qs + 64 * j));
                sumi[r] = _mm512_add_epi32(sumi[r], _mm512_madd_epi16(_mm512_maddubs_epi16(q, q8), sv));
            }
        }
        AL_UNROLL for (int r = 0; r < NR; r++)
            acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(d * y[r][i].d), _mm512_cvtepi32_ps(sumi[r]), acc[r]);
    }
    AL_UNROLL for (int r = 0; r < NR; r++) s[r * bs] = _mm512_reduce_add_ps(acc[r]) - hsum128(accm[r]);
}

AL_INLINE void k_q4_K_impl(int64_t n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int NR) {
    k4_k5_512(n, s, bs, vx, vy, by, NR, false);
}
AL_INLINE void k_q5_K_impl(int64_t n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int NR) {
    k4_k5_512(n, s, bs, vx, vy, by, NR, true);
}

AL_INLINE void k_q6_K_impl(int64_t n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int NR) {
    const al_block_q6_K *x = vx;
    const int64_t nb = n / AL_QK_K;
    const al_block_q8_K *y[AL_DOT_NR];
    __m512 acc[AL_DOT_NR];
    AL_UNROLL for (int r = 0; r < NR; r++) {
        y[r] = YROW(al_block_q8_K, vy, by, r);
        acc[r] = _mm512_setzero_ps();
    }
    const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
    const __m512i sh_lo = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(4)), _mm256_set1_epi16(2), 1);
    const __m512i sh_hi = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    for (int64_t i = 0; i < nb; i++) {
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)x[i].scales);
        const __m256i sc16y = _mm256_cvtepi8_epi16(sc8);
        const __m512i sc16 = _mm512_castsi256_si512(sc16y);
        const float d = FP16(x[i].d);
        __m512i sumi[AL_DOT_NR];
        AL_UNROLL for (int r = 0; r < NR; r++) /* values are q - 32 */
            sumi[r] = _mm512_castsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(),
                _mm256_slli_epi32(_mm256_madd_epi16(sc16y, _mm256_loadu_si256((const __m256i *)y[r][i].bsums)), 5)));
        AL_UNROLL for (int h = 0; h < 2; h++) {
            const __m512i l = _mm512_loadu_si512((const void *)(x[i].ql + 64 * h));
            const __m512i hb = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(x[i].qh + 32 * h)));
            const __m512i q01 = _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_and_si512(_mm512_sllv_epi16(hb, sh_lo), m30));
            const __m512i q23 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                                                _mm512_and_si512(_mm512_srlv_epi16(hb, sh_hi), m30));
            /* q01 = chunks 0,1 (elements 128h + 0..63), q23 = chunks 2,3; scales 8h + 4 per zmm */
            const __m512i sv01 = _mm512_permutexvar_epi16(
                _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_setr_epi16(8 * h, 8 * h, 8 * h, 8 * h, 8 * h, 8 * h, 8 * h, 8 * h,
                    8 * h + 1, 8 * h + 1, 8 * h + 1, 8 * h + 1, 8 * h + 1, 8 * h + 1, 8 * h + 1, 8 * h + 1)),
                    _mm256_setr_epi16(8 * h + 2, 8 * h + 2, 8 * h + 2, 8 * h + 2, 8 * h + 2, 8 * h + 2, 8 * h + 2, 8 * h + 2,
                    8 * h + 3, 8 * h + 3, 8 * h + 3, 8 * h + 3, 8 * h + 3, 8 * h + 3, 8 * h + 3, 8 * h + 3), 1), sc16);
            const __m512i sv23 = _mm512_permutexvar_epi16(_mm512_add_epi16(
                _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_setr_epi16(8 * h, 8 * h, 8 * h, 8 * h, 8 * h, 8 * h, 8 * h, 8 * h,
                    8 * h + 1, 8 * h + 1, 8 * h + 1, 8 * h + 1, 8 * h + 1, 8 * h + 1, 8 * h + 1, 8 * h + 1)),
                    _mm256_setr_epi16(8 * h + 2, 8 * h + 2, 8 * h + 2, 8 * h + 2, 8 * h + 2, 8 * h + 2, 8 * h + 2, 8 * h + 2,
                    8 * h + 3, 8 * h + 3, 8 * h + 3, 8 * h + 3, 8 * h + 3, 8 * h + 3, 8 * h + 3, 8 * h + 3), 1),
                _mm512_set1_epi16(4)), sc16);
            AL_UNROLL for (int r = 0; r < NR; r++) {
                const __m512i y01 = _mm512_loadu_si512((const void *)(y[r][i].qs + 128 * h));
                const __m512i y23 = _mm512_loadu_si512((const void *)(y[r][i].qs + 128 * h + 64));
                sumi[r] = _mm512_add_epi32(sumi[r], _mm512_madd_epi16(_mm512_maddubs_epi16(q01, y01), sv01));
                sumi[r] = _mm512_add_epi32(sumi[r], _mm512_madd_epi16(_mm512_maddubs_epi16(q23, y23), sv23));
            }
        }
        AL_UNROLL for (int r = 0; r < NR; r++)
            acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(d * y[r][i].d), _mm512_cvtepi32_ps(sumi[r]), acc[r]);
    }
    AL_UNROLL for (int r = 0; r < NR; r++) s[r * bs] = _mm512_reduce_add_ps(acc[r]);
}

AL_INLINE void k_iq4_xs_impl(int64_t n, float *s, size_t bs, const void *vx, const void *vy, size_t by, const int NR) {
    const al_block_iq4_xs *x = vx;
    const int64_t nb = n / AL_QK_K;
    const al_block_q8_K *y[AL_DOT_NR];
    __m512 acc[AL_DOT_NR];
    AL_UNROLL for (int r = 0; r < NR; r++) {
        y[r] = YROW(al_block_q8_K, vy, by, r);
        acc[r] = _mm512_setzero_ps();
    }
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i tab = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)al_kvalues_iq4nl));
    /* 16 bytes of sub-block ib in both 128-bit halves of a 256-bit lane pair: lo nibbles | hi nibbles */
    const __m512i sh = _mm512_set_epi64(4 * 0x0001000100010001LL, 4 * 0x0001000100010001LL, 0, 0,
                                        4 * 0x0001000100010001LL, 4 * 0x0001000100010001LL, 0, 0);
    for (int64_t i = 0; i < nb; i++) {
        const float d = FP16(x[i].d);
        __m512i sumi[AL_DOT_NR];
        AL_UNROLL for (int r = 0; r < NR; r++) sumi[r] = _mm512_setzero_si512();
        AL_UNROLL for (int ib = 0; ib < 8; ib += 2) {
            /* [qs(ib) | qs(ib) | qs(ib+1) | qs(ib+1)] -> nibbles [lo(ib) | hi(ib) | lo(ib+1) | hi(ib+1)] */
            const __m256i b2 = _mm256_loadu_si256((const __m256i *)(x[i].qs + 16 * ib));
            const __m512i b = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3), _mm512_castsi256_si512(b2));
            const __m512i k = _mm512_shuffle_epi8(tab, _mm512_and_si512(_mm512_srlv_epi16(b, sh), m4));
            const __m512i ak = _mm512_abs_epi8(k);
            const __mmask64 neg = _mm512_movepi8_mask(k);
            const __m512i sv = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16((short)(al_iq4xs_scale(&x[i], ib) - 32))),
                                                  _mm256_set1_epi16((short)(al_iq4xs_scale(&x[i], ib + 1) - 32)), 1);
            AL_UNROLL for (int r = 0; r < NR; r++) {
                __m512i q8 = _mm512_loadu_si512((const void *)(y[r][i].qs + 32 * ib));
                q8 = _mm512_mask_sub_epi8(q8, neg, _mm512_setzero_si512(), q8);
                sumi[r] = _mm512_add_epi32(sumi[r], _mm512_madd_epi16(_mm512_maddubs_epi16(ak, q8), sv));
            }
        }
        AL_UNROLL for (int r = 0; r < NR; r++)
            acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(d * y[r][i].d), _mm512_cvtepi32_ps(sumi[r]), acc[r]);
    }
    AL_UNROLL for (int r = 0; r < NR; r++) s[r * bs] = _mm512_reduce_add_ps(acc[r]);
}
#else
#define k_q4_K_impl k_q4_K_IMPL256
#define k_q5_K_impl k_q5_K_IMPL256
#define k_q6_K_impl k_q6_K_IMPL256
#define k_iq4_xs_impl k_iq4_xs_IMPL256
#endif

/* ---- float weights against F32 activations --------------------------------------------------- */

#if AL_X86_512
#define FV __m512
#define FV_W 16
#define FV_ZERO _mm512_setzero_ps()
#define FV_LOADY(p) _mm512_loadu_ps(p)
#define FV_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define FV_HSUM(v) _mm512_reduce_add_ps(v)
#define FV_LD_F32(p) _mm512_loadu_ps(p)
#define FV_LD_F16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
#define FV_LD_BF16(p) \
    _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p))), 16))
#else
#define FV __m256
#define FV_W 8
#define FV_ZERO _mm256_setzero_ps()
#define FV_LOADY(p) _mm256_loadu_ps(p)
#define FV_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define FV_HSUM(v) hsum256(v)
#define FV_LD_F32(p) _mm256_loadu_ps(p)
#define FV_LD_F16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define FV_LD_BF16(p) \
    _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p))), 16))
#endif

#define FLOAT_KERNEL(name, XT, LD, TOF)                                                            \
    AL_INLINE void name##_impl(int64_t n, float *s, size_t bs, const void *vx, const void *vy,     \
                               size_t by, const int NR) {                                          \
        const XT *x = vx;                                                                          \
        const float *y[AL_DOT_NR];                                                                 \
        FV acc[AL_DOT_NR][2];                                                                      \
        AL_UNROLL for (int r = 0; r < NR; r++) {                                                             \
            y[r] = YROW(float, vy, by, r);                                                         \
            acc[r][0] = acc[r][1] = FV_ZERO;                                                       \
        }                                                                                          \
        int64_t i = 0;                                                                             \
        for (; i + 2 * FV_W <= n; i += 2 * FV_W) {                                                 \
            const FV x0 = LD(x + i), x1 = LD(x + i + FV_W);                                        \
            AL_UNROLL for (int r = 0; r < NR; r++) {                                                         \
                acc[r][0] = FV_FMA(x0, FV_LOADY(y[r] + i), acc[r][0]);                             \
                acc[r][1] = FV_FMA(x1, FV_LOADY(y[r] + i + FV_W), acc[r][1]);                      \
            }                                                                                      \
        }                                                                                          \
        AL_UNROLL for (int r = 0; r < NR; r++) {                                                             \
            float t = FV_HSUM(acc[r][0]) + FV_HSUM(acc[r][1]);                                     \
            for (int64_t j = i; j < n; j++) t += TOF(x[j]) * y[r][j];                              \
            s[r * bs] = t;                                                                         \
        }                                                                                          \
    }

#define F32_ID(v) (v)
FLOAT_KERNEL(k_f32, float, FV_LD_F32, F32_ID)
FLOAT_KERNEL(k_f16, uint16_t, FV_LD_F16, FP16)
FLOAT_KERNEL(k_bf16, uint16_t, FV_LD_BF16, al_bf16_to_f32)

AL_DOT_EXPORT(k_f32)
AL_DOT_EXPORT(k_f16)
AL_DOT_EXPORT(k_bf16)
AL_DOT_EXPORT(k_q4_0)
AL_DOT_EXPORT(k_q4_1)
AL_DOT_EXPORT(k_q5_0)
AL_DOT_EXPORT(k_q5_1)
AL_DOT_EXPORT(k_q8_0)
AL_DOT_EXPORT(k_iq4_nl)
AL_DOT_EXPORT(k_q2_K)
AL_DOT_EXPORT(k_q3_K)
AL_DOT_EXPORT(k_q4_K)
AL_DOT_EXPORT(k_q5_K)
AL_DOT_EXPORT(k_q6_K)
AL_DOT_EXPORT(k_iq4_xs)

const al_dot_kernel CAT(al_dot_table_, AL_X86_SFX)[AL_TYPE_COUNT] = {
    AL_DOT_ENTRY(AL_TYPE_F32, k_f32),       AL_DOT_ENTRY(AL_TYPE_F16, k_f16),
    AL_DOT_ENTRY(AL_TYPE_BF16, k_bf16),     AL_DOT_ENTRY(AL_TYPE_Q4_0, k_q4_0),
    AL_DOT_ENTRY(AL_TYPE_Q4_1, k_q4_1),     AL_DOT_ENTRY(AL_TYPE_Q5_0, k_q5_0),
    AL_DOT_ENTRY(AL_TYPE_Q5_1, k_q5_1),     AL_DOT_ENTRY(AL_TYPE_Q8_0, k_q8_0),
    AL_DOT_ENTRY(AL_TYPE_IQ4_NL, k_iq4_nl), AL_DOT_ENTRY(AL_TYPE_Q2_K, k_q2_K),
    AL_DOT_ENTRY(AL_TYPE_Q3_K, k_q3_K),     AL_DOT_ENTRY(AL_TYPE_Q4_K, k_q4_K),
    AL_DOT_ENTRY(AL_TYPE_Q5_K, k_q5_K),     AL_DOT_ENTRY(AL_TYPE_Q6_K, k_q6_K),
    AL_DOT_ENTRY(AL_TYPE_IQ4_XS, k_iq4_xs),
};

/* ---- activation quantizers ------------------------------------------------------------------- */

/* roundf (half away from zero), exactly: trunc, then step away when |frac| >= 0.5 */
AL_INLINE __m256 round_away(__m256 v) {
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 sgn = _mm256_set1_ps(-0.0f);
    const __m256 frac = _mm256_andnot_ps(sgn, _mm256_sub_ps(v, t));
    const __m256 step = _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ), _mm256_set1_ps(1.0f));
    return _mm256_add_ps(t, _mm256_or_ps(step, _mm256_and_ps(v, sgn)));
}

/* 4 x 8 int32 -> 32 int8 in element order */
AL_INLINE __m256i pack_i32x4(__m256i a, __m256i b, __m256i c, __m256i d) {
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
    return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

AL_INLINE float absmax32(const float *x) {
    const __m256 sgn = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_andnot_ps(sgn, _mm256_loadu_ps(x));
    m = _mm256_max_ps(m, _mm256_andnot_ps(sgn, _mm256_loadu_ps(x + 8)));
    m = _mm256_max_ps(m, _mm256_andnot_ps(sgn, _mm256_loadu_ps(x + 16)));
    m = _mm256_max_ps(m, _mm256_andnot_ps(sgn, _mm256_loadu_ps(x + 24)));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* one 32-block as Q8_0/Q8_1 does it; returns the sum of the quantized values */
AL_INLINE int q8_block(const float *x, float id, int8_t *qs) {
    const __m256 vid = _mm256_set1_ps(id);
    __m256i v[4];
    AL_UNROLL for (int k = 0; k < 4; k++) v[k] = _mm256_cvttps_epi32(round_away(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), vid)));
    _mm256_storeu_si256((__m256i *)qs, pack_i32x4(v[0], v[1], v[2], v[3]));
    __m256i t = _mm256_add_epi32(_mm256_add_epi32(v[0], v[1]), _mm256_add_epi32(v[2], v[3]));
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
    return _mm_cvtsi128_si32(h);
}

static void q8_0_x86(const float *x, al_block_q8_0 *y, int64_t n) {
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        const float d = absmax32(x) / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = _cvtss_sh(d, 0);
        (void)q8_block(x, id, y[i].qs);
    }
}

static void q8_1_x86(const float *x, al_block_q8_1 *y, int64_t n) {
    for (int64_t i = 0; i < n / 32; i++, x += 32) {
        const float d = absmax32(x) / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        const int sum = q8_block(x, id, y[i].qs);
        y[i].d = _cvtss_sh(d, 0);
        y[i].s = _cvtss_sh((float)sum * d, 0);
    }
}

static void q8_K_x86(const float *x, al_block_q8_K *y, int64_t n) {
    const __m256 sgn = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < n / AL_QK_K; i++, x += AL_QK_K) {
        float amax = 0.0f;
        for (int k = 0; k < AL_QK_K; k += 32) amax = fmaxf(amax, absmax32(x + k));
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        /* the reference keeps the signed value of the first element reaching amax */
        const __m256 va = _mm256_set1_ps(amax);
        float max = 0.0f;
        for (int k = 0; k < AL_QK_K; k += 8) {
            int m = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sgn, _mm256_loadu_ps(x + k)), va, _CMP_EQ_OQ));
            if (m) {
                max = x[k + __builtin_ctz((unsigned)m)];
                break;
            }
        }
        const float iscale = -127.0f / max;
        const __m256 vs = _mm256_set1_ps(iscale);
        const __m256i lim = _mm256_set1_epi32(127);
        for (int k = 0; k < AL_QK_K; k += 32) {
            __m256i v[4];
            AL_UNROLL for (int j = 0; j < 4; j++) {
                __m256 p = _mm256_mul_ps(_mm256_loadu_ps(x + k + 8 * j), vs);
                v[j] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_round_ps(p, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)), lim);
            }
            const __m256i q = pack_i32x4(v[0], v[1], v[2], v[3]);
            _mm256_storeu_si256((__m256i *)(y[i].qs + k), q);
            /* bsums via sad of (q ^ 0x80) against 0: four sums of 8 unsigned bytes */
            __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(q, _mm256_set1_epi8((char)0x80)), _mm256_setzero_si256());
            int64_t s4[4];
            _mm256_storeu_si256((__m256i *)s4, sad);
            y[i].bsums[k / 16] = (int16_t)(s4[0] + s4[1] - 16 * 128);
            y[i].bsums[k / 16 + 1] = (int16_t)(s4[2] + s4[3] - 16 * 128);
        }
        y[i].d = 1.0f / iscale;
    }
}

bool CAT(al_quant_act_, AL_X86_SFX)(al_type vt, const float *x, void *out, int64_t n) {
    switch (vt) {
    case AL_TYPE_Q8_0: q8_0_x86(x, out, n); return true;
    case AL_TYPE_Q8_1: q8_1_x86(x, out, n); return true;
    case AL_TYPE_Q8_K: q8_K_x86(x, out, n); return true;
    case AL_TYPE_F32: memcpy(out, x, (size_t)n * sizeof(float)); return true;
    default: return false; /* F16 / BF16: scalar */
    }
}

bool CAT(al_widen_, AL_X86_SFX)(al_type t, const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    int64_t i = 0;
    if (t == AL_TYPE_F16) {
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
        for (; i < n; i++) dst[i] = FP16(h[i]);
        return true;
    }
    if (t == AL_TYPE_BF16) {
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_si256((__m256i *)(dst + i),
                                _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(h + i))), 16));
        for (; i < n; i++) dst[i] = al_bf16_to_f32(h[i]);
        return true;
    }
    return false;
}
