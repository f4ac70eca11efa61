/*
 * mmq.cuh (internal) — integer dot products of quantized weight blocks with int8 activations
 * (decode matrix-vector). The activation row x[k] is quantized once per product into blocks of 32:
 * xq[i] = round(x[i] / d_b) (int8), d_b = max|x in block b| / 127 (float xd[b]); every weight type
 * below then reduces with __dp4a on 32-bit words of packed quants and applies the weight scales
 * and d_b per 16- or 32-element group (the Q8_1 scheme of the GGUF runtimes).
 *
 * al_mmq<T>::chunk elements form one unit of work (always within one super-block, starting at a
 * multiple of 32); dot(w, rb, rb2, nr, c, k, xq, xd, acc) adds chunk c of rows w + al_mmq_row(r,
 * rb, rb2) (r < nr <= R, rows of k elements) to acc[r], loading the activation slice once for all
 * rows. acc[r] of r >= nr is unspecified: rows past nr read row 0 instead of a branch on nr, so that
 * the loads of both rows of R = 2 (of each pair for Q6_K, R = 4) are in flight together. Rows come in
 * pairs rb apart (any byte distance, so a gate row and an up row of one type can pair up), pairs rb2
 * apart. xq / xd are in shared memory. Rows are 16-byte aligned: Q4_K / Q5_K in
 * GGUF order (144/176-byte blocks), Q8_0 / Q6_K in the split-row layout of alloy/quant.h (quants of
 * all blocks first, then scales and d), so every 16 bytes of quants are one aligned load; the
 * 32-element block types and IQ4_XS in GGUF order, loaded in pieces of their alignment.
 */
#ifndef ALLOY_CUDA_MMQ_CUH
#define ALLOY_CUDA_MMQ_CUH

#include "cuda/dequant.cuh"

AL_HD int al_u4(const uint4 &v, int i) {
    return (int)(i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w);
}
AL_HD int al_i4(const int4 &v, int i) { return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w; }
/* byte offset of row r of a group: rows pair up rb apart, pairs rb2 apart (R <= 2: r * rb) */
AL_HD int64_t al_mmq_row(int r, int64_t rb, int64_t rb2) { return (r & 1) * rb + (r >> 1) * rb2; }
/* activation loads: xq / xd live in shared memory (quantized by the product's own block) */
AL_HD int4 al_ldx16(const int8_t *p) { return *(const int4 *)p; }

template <int T> struct al_mmq;

template <> struct al_mmq<AL_TYPE_Q8_0> {
    static constexpr int chunk = 32;
    template <int R>
    __host__ __device__ static void dot(const uint8_t *w, int64_t rb, int64_t rb2, int nr, int64_t c, int64_t k, const int8_t *xq,
                               const float *xd, float *acc) {
        const int4 x0 = al_ldx16(xq + 32 * c), x1 = al_ldx16(xq + 32 * c + 16);
        const float dx = xd[c];
AL_UNROLL
        for (int r = 0; r < R; r++) {
            if (R > 2 && r >= nr) break;
            const uint8_t *row = w + al_mmq_row(r < nr ? r : 0, rb, rb2), *b = row + 32 * c; /* quants [nb][32], d [nb] */
            const uint4 q0 = *(const uint4 *)b, q1 = *(const uint4 *)(b + 16);
            int s = 0;
AL_UNROLL
            for (int i = 0; i < 4; i++) s = al_dp4a(al_u4(q0, i), al_i4(x0, i), s);
AL_UNROLL
            for (int i = 0; i < 4; i++) s = al_dp4a(al_u4(q1, i), al_i4(x1, i), s);
            acc[r] += al_h2f(row + 32 * (k >> 5) + 2 * c) * dx * (float)s;
        }
    }
};

/* Q4_K / Q5_K: chunk c = bytes [16h, 16h + 16) of the 32-byte quant group j of a super-block: elements
 * 64j + 16h + t (sub-block 2j, low nibbles) and 64j + 32 + 16h + t (sub-block 2j + 1, high nibbles). */
template <int T> struct al_mmq_k45 {
    static constexpr int chunk = 32;
    static constexpr int bytes = T == AL_TYPE_Q4_K ? 144 : 176, qs_off = T == AL_TYPE_Q4_K ? 16 : 48;
    template <int R>
    __host__ __device__ static void dot(const uint8_t *w, int64_t rb, int64_t rb2, int nr, int64_t c, int64_t /* k */, const int8_t *xq,
                               const float *xd, float *acc) {
        const int64_t blk = c >> 3;
        const int j = (int)(c >> 1) & 3, h = (int)c & 1;
        const int64_t e = blk * 256 + 64 * j + 16 * h;
        const int4 xl = al_ldx16(xq + e), xh = al_ldx16(xq + e + 32);
        const float dl = xd[e >> 5], dh = xd[(e >> 5) + 1];
        int sl = 0, sh = 0;
AL_UNROLL
        for (int i = 0; i < 4; i++) sl = al_dp4a(0x01010101, al_i4(xl, i), sl), sh = al_dp4a(0x01010101, al_i4(xh, i), sh);
AL_UNROLL
        for (int r = 0; r < R; r++) {
            if (R > 2 && r >= nr) break;
            const uint8_t *b = w + al_mmq_row(r < nr ? r : 0, rb, rb2) + blk * bytes;
            const uint4 q = *(const uint4 *)(b + qs_off + 32 * j + 16 * h);
            uint4 qh = make_uint4(0, 0, 0, 0);
            if (T == AL_TYPE_Q5_K) qh = *(const uint4 *)(b + 16 + 16 * h);
            int il = 0, ih = 0;
AL_UNROLL
            for (int i = 0; i < 4; i++) {
                int lo = al_u4(q, i) & 0x0F0F0F0F, hi = (al_u4(q, i) >> 4) & 0x0F0F0F0F;
                if (T == AL_TYPE_Q5_K) {
                    lo |= ((al_u4(qh, i) >> (2 * j)) & 0x01010101) << 4;
                    hi |= ((al_u4(qh, i) >> (2 * j + 1)) & 0x01010101) << 4;
                }
                il = al_dp4a(lo, al_i4(xl, i), il);
                ih = al_dp4a(hi, al_i4(xh, i), ih);
            }
            const uint4 hd = *(const uint4 *)b; /* d, dmin, the 12 scale bytes: one load */
            int sc[2], mn[2];
            al_scale_min_k4_pair(hd, j, sc, mn);
            const float2 dm = make_float2(__half2float(__ushort_as_half((unsigned short)(hd.x & 0xFFFFu))),
                                          __half2float(__ushort_as_half((unsigned short)(hd.x >> 16))));
            acc[r] += dm.x * (dl * (float)(sc[0] * il) + dh * (float)(sc[1] * ih)) - dm.y * (dl * (float)(mn[0] * sl) + dh * (float)(mn[1] * sh));
        }
    }
};
template <> struct al_mmq<AL_TYPE_Q4_K> : al_mmq_k45<AL_TYPE_Q4_K> {};
template <> struct al_mmq<AL_TYPE_Q5_K> : al_mmq_k45<AL_TYPE_Q5_K> {};

/* Q6_K: chunk c = half hh of the 128-element group n of a super-block: elements 128n + 32qq + 16hh + t
 * for qq < 4, t < 16 (the 16 low-nibble bytes and 16 high-bit bytes they share). Split row: quants
 * [nb][192] (ql, qh), scales [nb][16], d [nb]; the chunk's four scales 8n + hh + 2qq lie in the 8
 * bytes at 8n. */
template <> struct al_mmq<AL_TYPE_Q6_K> {
    static constexpr int chunk = 64;
    template <int R>
    __host__ __device__ static void dot(const uint8_t *w, int64_t rb, int64_t rb2, int nr, int64_t c, int64_t k, const int8_t *xq,
                               const float *xd, float *acc) {
        const int64_t blk = c >> 2, nb = k >> 8;
        const int n = (int)(c >> 1) & 1, hh = (int)c & 1;
        const int64_t e = blk * 256 + 128 * n + 16 * hh;
        int4 x[4];
        float dx[4];
        int xs[4]; /* sums of the activation slices: (q - 32)·x = q·x - 32 xs, q in 0..63 */
AL_UNROLL
        for (int qq = 0; qq < 4; qq++) {
            x[qq] = al_ldx16(xq + e + 32 * qq), dx[qq] = xd[(e >> 5) + qq];
            xs[qq] = 0;
AL_UNROLL
            for (int i = 0; i < 4; i++) xs[qq] = al_dp4a(0x01010101, al_i4(x[qq], i), xs[qq]);
        }
AL_UNROLL
        for (int r = 0; r < R; r++) {
            if (r == 2 && nr <= 2) break; /* rows in pairs: each pair's loads together */
            const uint8_t *row = w + al_mmq_row(r < nr ? r : 0, rb, rb2), *b = row + blk * 192;
            const uint4 qa = *(const uint4 *)(b + 64 * n + 16 * hh), qb = *(const uint4 *)(b + 64 * n + 32 + 16 * hh);
            const uint4 qh = *(const uint4 *)(b + 128 + 32 * n + 16 * hh);
            const uint2 sv = *(const uint2 *)(row + 192 * nb + 16 * blk + 8 * n);
            int s[4] = {-32 * xs[0], -32 * xs[1], -32 * xs[2], -32 * xs[3]};
AL_UNROLL
            for (int i = 0; i < 4; i++) {
                const unsigned a = (unsigned)al_u4(qa, i), bb = (unsigned)al_u4(qb, i), hw = (unsigned)al_u4(qh, i);
                const unsigned u0 = (a & 0x0F0F0F0Fu) | ((hw << 4) & 0x30303030u);
                const unsigned u1 = (bb & 0x0F0F0F0Fu) | ((hw << 2) & 0x30303030u);
                const unsigned u2 = ((a >> 4) & 0x0F0F0F0Fu) | (hw & 0x30303030u);
                const unsigned u3 = ((bb >> 4) & 0x0F0F0F0Fu) | ((hw >> 2) & 0x30303030u);
                s[0] = al_dp4a((int)u0, al_i4(x[0], i), s[0]);
                s[1] = al_dp4a((int)u1, al_i4(x[1], i), s[1]);
                s[2] = al_dp4a((int)u2, al_i4(x[2], i), s[2]);
                s[3] = al_dp4a((int)u3, al_i4(x[3], i), s[3]);
            }
            float t = 0.0f;
AL_UNROLL
            for (int qq = 0; qq < 4; qq++) { /* scale byte hh + 2qq of the 8: signed, by shifting it to the top */
                const int sc = (int)((qq < 2 ? sv.x : sv.y) << (24 - 8 * (hh + 2 * (qq & 1)))) >> 24;
                t += dx[qq] * (float)(sc * s[qq]);
            }
            acc[r] += al_h2f(row + 208 * nb + 2 * blk) * t;
        }
    }
};

/* ---- the 32-element blocks in GGUF order (Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL) and IQ4_XS: chunk c = block
 * (IQ4_XS: sub-block) c. Quant byte j of a block holds element j (low nibble) and j + 16 (high), so
 * the low nibbles of word i meet activation word i of the block's first 16 and the high nibbles
 * word i of its last 16. Block starts are only 2-byte (Q4_0, Q5_0, IQ4_NL: 18 / 22 bytes), 4-byte
 * (Q4_1) or 8-byte (Q5_1, IQ4_XS) aligned, hence loads of that width. */

/* 16 bytes as four words from a 2-, 4- or 8-byte aligned address */
AL_HD uint4 al_ld16_a2(const uint8_t *p) { return make_uint4(al_ld4_a2(p), al_ld4_a2(p + 4), al_ld4_a2(p + 8), al_ld4_a2(p + 12)); }
AL_HD uint4 al_ld16_a4(const uint8_t *p) {
    const uint32_t *q = (const uint32_t *)p;
    return make_uint4(q[0], q[1], q[2], q[3]);
}
AL_HD uint4 al_ld16_a8(const uint8_t *p) {
    const uint2 a = *(const uint2 *)p, b = *(const uint2 *)(p + 8);
    return make_uint4(a.x, a.y, b.x, b.y);
}
/* bits 0..3 of x to bit 0 of bytes 0..3 */
AL_HD uint32_t al_spread4(uint32_t x) { return (x * 0x00204081u) & 0x01010101u; }
/* the IQ4_NL codebook values (int8) of the nibbles in the low 4 bits of each byte of q (as al_iq4nl) */
AL_HD int al_iq4nl4(uint32_t q) {
    const uint32_t t0 = 0xBFAD9881u, t1 = 0xF6EADDCFu, t2 = 0x26190D01u, t3 = 0x71594535u;
    const uint32_t sel = (q & 7u) | ((q >> 4) & 0x70u) | ((q >> 8) & 0x700u) | ((q >> 12) & 0x7000u);
    const uint32_t lo = al_byte_perm(t0, t1, sel), hi = al_byte_perm(t2, t3, sel), m = ((q >> 3) & 0x01010101u) * 0xFFu;
    return (int)((lo & ~m) | (hi & m));
}

/* one block type of 32: BYTES per block, quants at QS (alignment QA), an f16 min after d (MIN), the
 * 5th bits as a 32-bit word at 2 + 2 MIN (Q5), the codebook (NL); value (q - OFF) d, q d + m, or
 * codebook[q] d */
template <int BYTES, int QS, int QA, bool MIN, bool Q5, bool NL> struct al_mmq_b32 {
    static constexpr int chunk = 32;
    template <int R>
    __host__ __device__ static void dot(const uint8_t *w, int64_t rb, int64_t rb2, int nr, int64_t c, int64_t /* k */, const int8_t *xq,
                                        const float *xd, float *acc) {
        const int4 x0 = al_ldx16(xq + 32 * c), x1 = al_ldx16(xq + 32 * c + 16);
        const float dx = xd[c];
        int xs = 0; /* sum of the block's activations: (q - off)·x = q·x - off xs, and the min's term */
        if (!NL) {
AL_UNROLL
            for (int i = 0; i < 4; i++) xs = al_dp4a(0x01010101, al_i4(x0, i), al_dp4a(0x01010101, al_i4(x1, i), xs));
        }
AL_UNROLL
        for (int r = 0; r < R; r++) {
            if (R > 2 && r >= nr) break;
            const uint8_t *b = w + al_mmq_row(r < nr ? r : 0, rb, rb2) + BYTES * c;
            const uint4 q = QA == 8 ? al_ld16_a8(b + QS) : QA == 4 ? al_ld16_a4(b + QS) : al_ld16_a2(b + QS);
            const uint32_t qh = Q5 ? (MIN ? *(const uint32_t *)(b + 4) : al_ld4_a2(b + 2)) : 0u;
            int s = 0;
AL_UNROLL
            for (int i = 0; i < 4; i++) {
                uint32_t lo = (uint32_t)al_u4(q, i) & 0x0F0F0F0Fu, hi = ((uint32_t)al_u4(q, i) >> 4) & 0x0F0F0F0Fu;
                if (Q5) lo |= al_spread4((qh >> (4 * i)) & 0xFu) << 4, hi |= al_spread4((qh >> (16 + 4 * i)) & 0xFu) << 4;
                s = al_dp4a(NL ? al_iq4nl4(lo) : (int)lo, al_i4(x0, i), s);
                s = al_dp4a(NL ? al_iq4nl4(hi) : (int)hi, al_i4(x1, i), s);
            }
            const float d = al_h2f(b) * dx;
            if (MIN) acc[r] += d * (float)s + al_h2f(b + 2) * dx * (float)xs;
            else acc[r] += d * (float)(NL ? s : s - (Q5 ? 16 : 8) * xs);
        }
    }
};
template <> struct al_mmq<AL_TYPE_Q4_0> : al_mmq_b32<18, 2, 2, false, false, false> {};
template <> struct al_mmq<AL_TYPE_Q4_1> : al_mmq_b32<20, 4, 4, true, false, false> {};
template <> struct al_mmq<AL_TYPE_Q5_0> : al_mmq_b32<22, 6, 2, false, true, false> {};
template <> struct al_mmq<AL_TYPE_Q5_1> : al_mmq_b32<24, 8, 8, true, true, false> {};
template <> struct al_mmq<AL_TYPE_IQ4_NL> : al_mmq_b32<18, 2, 2, false, false, true> {};

/* IQ4_XS: chunk c = sub-block c & 7 of super-block c >> 3 (136 bytes: d, scales_h, scales_l[4], qs[128]);
 * value codebook[q] d (ls - 32), ls the sub-block's 6-bit scale */
template <> struct al_mmq<AL_TYPE_IQ4_XS> {
    static constexpr int chunk = 32;
    template <int R>
    __host__ __device__ static void dot(const uint8_t *w, int64_t rb, int64_t rb2, int nr, int64_t c, int64_t /* k */, const int8_t *xq,
                                        const float *xd, float *acc) {
        const int64_t blk = c >> 3;
        const int ib = (int)c & 7;
        const int4 x0 = al_ldx16(xq + 32 * c), x1 = al_ldx16(xq + 32 * c + 16);
        const float dx = xd[c];
AL_UNROLL
        for (int r = 0; r < R; r++) {
            if (R > 2 && r >= nr) break;
            const uint8_t *b = w + al_mmq_row(r < nr ? r : 0, rb, rb2) + 136 * blk;
            const uint4 q = al_ld16_a8(b + 8 + 16 * ib);
            int s = 0;
AL_UNROLL
            for (int i = 0; i < 4; i++) {
                s = al_dp4a(al_iq4nl4((uint32_t)al_u4(q, i) & 0x0F0F0F0Fu), al_i4(x0, i), s);
                s = al_dp4a(al_iq4nl4(((uint32_t)al_u4(q, i) >> 4) & 0x0F0F0F0Fu), al_i4(x1, i), s);
            }
            const uint2 hd = *(const uint2 *)b; /* d, scales_h | scales_l[0..4) */
            const int ls = (int)((hd.y >> (8 * (ib >> 1) + 4 * (ib & 1))) & 0xFu) | (int)(((hd.x >> (16 + 2 * ib)) & 3u) << 4);
            acc[r] += al_h2f(b) * dx * (float)((ls - 32) * s);
        }
    }
};

/* Q2_K / Q3_K: chunk c = 32 elements (n, j) = ((c & 7) >> 2, c & 3) of super-block c >> 3 (layout in
 * dequant.cuh): bits 2j of quant bytes 32n .. 32n + 31, two 16-groups with a scale each; Q2_K value
 * d sc q - dmin m, Q3_K (q + 4 hbit - 4) d sc. Blocks 4- / 2-byte aligned: loads of that width. */
template <bool Q3> struct al_mmq_k23 {
    static constexpr int chunk = 32;
    template <int R>
    __host__ __device__ static void dot(const uint8_t *w, int64_t rb, int64_t rb2, int nr, int64_t c, int64_t /* k */, const int8_t *xq,
                                        const float *xd, float *acc) {
        const int64_t blk = c >> 3;
        const int n = (int)(c >> 2) & 1, j = (int)c & 3;
        const int4 x0 = al_ldx16(xq + 32 * c), x1 = al_ldx16(xq + 32 * c + 16);
        const float dx = xd[c];
        int xs0 = 0, xs1 = 0; /* the activation sums of the two 16-groups */
AL_UNROLL
        for (int i = 0; i < 4; i++) xs0 = al_dp4a(0x01010101, al_i4(x0, i), xs0), xs1 = al_dp4a(0x01010101, al_i4(x1, i), xs1);
AL_UNROLL
        for (int r = 0; r < R; r++) {
            if (R > 2 && r >= nr) break;
            const uint8_t *b = w + al_mmq_row(r < nr ? r : 0, rb, rb2) + (Q3 ? 110 : 84) * blk;
            const uint8_t *qp = b + (Q3 ? 32 : 16) + 32 * n;
            const uint4 q0 = Q3 ? al_ld16_a2(qp) : al_ld16_a4(qp), q1 = Q3 ? al_ld16_a2(qp + 16) : al_ld16_a4(qp + 16);
            uint4 h0 = make_uint4(0, 0, 0, 0), h1 = h0;
            if (Q3) h0 = al_ld16_a2(b), h1 = al_ld16_a2(b + 16);
            int s0 = 0, s1 = 0;
AL_UNROLL
            for (int i = 0; i < 4; i++) {
                uint32_t u0 = ((uint32_t)al_u4(q0, i) >> (2 * j)) & 0x03030303u, u1 = ((uint32_t)al_u4(q1, i) >> (2 * j)) & 0x03030303u;
                if (Q3) {
                    u0 |= (((uint32_t)al_u4(h0, i) >> (4 * n + j)) & 0x01010101u) << 2;
                    u1 |= (((uint32_t)al_u4(h1, i) >> (4 * n + j)) & 0x01010101u) << 2;
                }
                s0 = al_dp4a((int)u0, al_i4(x0, i), s0);
                s1 = al_dp4a((int)u1, al_i4(x1, i), s1);
            }
            if (Q3) {
                const int sc0 = al_scale_q3k(b + 96, 8 * n + 2 * j), sc1 = al_scale_q3k(b + 96, 8 * n + 2 * j + 1);
                acc[r] += al_h2f(b + 108) * dx * (float)(sc0 * (s0 - 4 * xs0) + sc1 * (s1 - 4 * xs1));
            } else {
                const int sc0 = b[8 * n + 2 * j], sc1 = b[8 * n + 2 * j + 1];
                acc[r] += dx * (al_h2f(b + 80) * (float)((sc0 & 0xF) * s0 + (sc1 & 0xF) * s1) -
                                al_h2f(b + 82) * (float)((sc0 >> 4) * xs0 + (sc1 >> 4) * xs1));
            }
        }
    }
};
template <> struct al_mmq<AL_TYPE_Q2_K> : al_mmq_k23<false> {};
template <> struct al_mmq<AL_TYPE_Q3_K> : al_mmq_k23<true> {};

/* Types with an integer path; k must be a multiple of the block size (always true for GGUF rows). */
#define AL_CUDA_MMQ_TYPES(X)                                                                                      \
    X(AL_TYPE_Q8_0) X(AL_TYPE_Q4_K) X(AL_TYPE_Q5_K) X(AL_TYPE_Q6_K) X(AL_TYPE_Q4_0) X(AL_TYPE_Q4_1) X(AL_TYPE_Q5_0) \
        X(AL_TYPE_Q5_1) X(AL_TYPE_IQ4_NL) X(AL_TYPE_IQ4_XS) X(AL_TYPE_Q2_K) X(AL_TYPE_Q3_K)
static inline bool al_cuda_mmq_type(al_type t) {
    switch (t) {
#define AL_MMQ_CASE(T) case T:
        AL_CUDA_MMQ_TYPES(AL_MMQ_CASE)
#undef AL_MMQ_CASE
        return true;
    default: return false;
    }
}

#endif
