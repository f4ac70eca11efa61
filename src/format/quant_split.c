/*
 * quant_split.c — the split-row layout of Q6_K and Q8_0 rows (alloy/quant.h): quants of every block
 * first (16-byte aligned pieces), then the small per-block fields, each kind contiguous.
 */
#include <stddef.h>
#include <string.h>

#include "format/quant_impl.h"

bool al_split_type(al_type t) { return t == AL_TYPE_Q6_K || t == AL_TYPE_Q8_0; }

size_t al_split_row_size(al_type t, int64_t n) {
    const size_t rs = al_split_type(t) ? al_type_row_size(t, n) : 0;
    return (rs + 15) & ~(size_t)15;
}

/* byte ranges of one block: GGUF offset -> split offset (block b of nb), per field */
typedef struct split_field {
    size_t gguf_off, bytes;
    size_t region; /* bytes per block of the region before this one, times nb, is its start */
} split_field;

/* fields of a block in split order; region starts are (sum of earlier fields' bytes) * nb */
static int split_fields(al_type t, split_field *f) {
    if (t == AL_TYPE_Q6_K) { /* ql 0..127 and qh 128..191 form one quants field */
        f[0] = (split_field){offsetof(al_block_q6_K, ql), 192, 0};
        f[1] = (split_field){offsetof(al_block_q6_K, scales), 16, 192};
        f[2] = (split_field){offsetof(al_block_q6_K, d), 2, 208};
        return 3;
    }
    f[0] = (split_field){offsetof(al_block_q8_0, qs), 32, 0};
    f[1] = (split_field){offsetof(al_block_q8_0, d), 2, 32};
    return 2;
}

static al_status split_copy(al_type t, int64_t n, const void *src, void *dst, bool to_split) {
    const size_t rs = al_type_row_size(t, n), srs = al_split_row_size(t, n);
    if (!srs) return al_err(AL_ERR_INVALID, "split row: %s rows of %lld have no split layout", al_type_name(t), (long long)n);
    const size_t bytes = al_type_traits_get(t)->type_size, nb = rs / bytes;
    split_field f[3];
    const int nf = split_fields(t, f);
    const uint8_t *s = (const uint8_t *)src;
    uint8_t *d = (uint8_t *)dst;
    for (size_t b = 0; b < nb; b++)
        for (int i = 0; i < nf; i++) {
            const size_t g = b * bytes + f[i].gguf_off, p = f[i].region * nb + b * f[i].bytes;
            if (to_split) memcpy(d + p, s + g, f[i].bytes);
            else memcpy(d + g, s + p, f[i].bytes);
        }
    if (to_split) memset(d + rs, 0, srs - rs);
    return al_ok();
}

al_status al_split_row(al_type t, int64_t n, const void *src, void *dst) { return split_copy(t, n, src, dst, true); }
al_status al_unsplit_row(al_type t, int64_t n, const void *src, void *dst) { return split_copy(t, n, src, dst, false); }
