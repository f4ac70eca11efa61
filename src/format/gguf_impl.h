/*
 * gguf_impl.h (internal) — pieces shared by the GGUF reader (gguf_read.c) and writer
 * (gguf_write.c): value sizes and a bounds-checked validator for one serialized value.
 *
 * Serialized value payloads (the bytes after a KV's u32 type) are, little-endian:
 *   fixed types: their bytes; STRING: u64 len + len bytes;
 *   ARRAY: u32 elem_type + u64 count + count payloads of elem_type (elements may be arrays).
 */
#ifndef ALLOY_GGUF_IMPL_H
#define ALLOY_GGUF_IMPL_H

#include <string.h>

#include "alloy/gguf.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF reader maps little-endian files directly and needs a little-endian host"
#endif

#define AL_GGUF_MAGIC "GGUF"
#define AL_GGUF_MAX_DEPTH 8       /* nesting levels of arrays (an array of scalars is depth 1) */
#define AL_GGUF_ARR_HDR 12        /* u32 elem_type + u64 count */
#define AL_GGUF_MAX_NAME 64       /* llama.cpp's GGML_MAX_NAME: names must be shorter */

/* Bytes of a fixed-size value type; 0 for STRING, ARRAY and unknown ids. */
size_t al_gguf_impl_fixed_size(uint32_t type);

/* Callback told about every array of STRING/ARRAY elements met while validating: `count`
 * elements starting at buffer offset `raw`; then elem(ud, i, off) for each element start. */
typedef struct al_gguf_walker {
    al_status (*on_array)(void *ud, size_t raw, uint64_t count, size_t *first);
    void (*on_elem)(void *ud, size_t first, uint64_t i, size_t off);
    void *ud;
} al_gguf_walker;

/* Validates one value payload of `type` at b[*pos..n), advancing *pos past it. Every length and
 * count is checked against the bytes left before anything is sized from it. `depth` is the
 * array nesting already entered (0 at a KV). walker may be NULL. Errors are AL_ERR_FORMAT. */
al_status al_gguf_impl_check_value(const uint8_t *b, size_t n, size_t *pos, uint32_t type, int depth,
                                   const al_gguf_walker *walker);

/* End of a payload that was already validated (no bounds checks). */
const uint8_t *al_gguf_impl_value_end(const uint8_t *p, uint32_t type);

static inline uint32_t al_gguf_rd_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline uint64_t al_gguf_rd_u64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

#endif
