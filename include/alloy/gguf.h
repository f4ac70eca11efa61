/*
 * alloy/gguf.h — GGUF v3 (and v2) reader and writer.
 *
 * Reader contract
 *  - al_gguf_open memory-maps the file read-only; tensor data pointers returned by
 *    al_gguf_tensor_data point into that map and stay valid until al_gguf_free.
 *  - Every count, length, dimension, type id and offset is validated before use: truncated data,
 *    offsets past the end, overlapping/misaligned tensor data, absurd counts, overflowing sizes
 *    and bad alignment values all yield AL_ERR_FORMAT with a message naming what was wrong. The
 *    parser never allocates more than a small multiple of the file size (counts are checked against
 *    the bytes left before any table is sized from them).
 *  - Accepted: versions 2 and 3, little-endian; arrays nested up to 8 levels; general.alignment a
 *    uint32 nonzero power of two (default 32); tensors with 1..4 dims > 0, a known al_type whose
 *    block size divides ne[0], offsets that are multiples of the alignment, data inside the file
 *    and not overlapping. Keys must be non-empty; keys and tensor names unique.
 *  - The map is private and read-only; truncating the file while it is open is undefined (SIGBUS).
 *  - al_gguf_parse works on a caller-owned buffer (used by the fuzzer); the buffer must outlive
 *    the al_gguf.
 *  - Metadata values are exposed through typed getters; strings are NOT NUL-terminated in the
 *    file, so getters return (pointer, length) pairs (al_str). Arrays may nest (array of arrays).
 *
 * Writer contract
 *  - al_gguf_writer collects KV pairs (values copied) and tensors (data borrowed, see below), then
 *    al_gguf_writer_write streams a GGUF v3 file: header, KVs in insertion order, tensor infos,
 *    zero padding to the alignment, then each tensor's data padded to the alignment. The
 *    alignment is general.alignment when set (must be a uint32 power of two) else 32. Tensor
 *    names must be shorter than 64 bytes (llama.cpp's limit) and unique.
 */
#ifndef ALLOY_GGUF_H
#define ALLOY_GGUF_H

#include "alloy/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum al_gguf_vtype {
    AL_GGUF_UINT8 = 0,
    AL_GGUF_INT8 = 1,
    AL_GGUF_UINT16 = 2,
    AL_GGUF_INT16 = 3,
    AL_GGUF_UINT32 = 4,
    AL_GGUF_INT32 = 5,
    AL_GGUF_FLOAT32 = 6,
    AL_GGUF_BOOL = 7,
    AL_GGUF_STRING = 8,
    AL_GGUF_ARRAY = 9,
    AL_GGUF_UINT64 = 10,
    AL_GGUF_INT64 = 11,
    AL_GGUF_FLOAT64 = 12,
    AL_GGUF_VTYPE_COUNT
} al_gguf_vtype;

#define AL_GGUF_DEFAULT_ALIGNMENT 32

typedef struct al_str {
    const char *ptr; /* not NUL-terminated */
    uint64_t len;
} al_str;

typedef struct al_gguf al_gguf;

/* A read-only view of one metadata value (possibly an array element or nested array). */
typedef struct al_gguf_value {
    al_gguf_vtype type;
    const uint8_t *raw;     /* points into the file; for arrays: first element's bytes */
    al_gguf_vtype elem_type; /* arrays only */
    uint64_t count;          /* arrays only: number of elements */
    const al_gguf *owner;
} al_gguf_value;

typedef struct al_gguf_tensor_info {
    al_str name;
    int ndim;
    int64_t ne[4];   /* ne[0] innermost */
    al_type type;
    uint64_t offset; /* relative to the data section */
    size_t nbytes;
} al_gguf_tensor_info;

al_status al_gguf_open(al_gguf **out, const char *path);
al_status al_gguf_parse(al_gguf **out, const void *data, size_t size); /* borrowed buffer */
void al_gguf_free(al_gguf *g);

uint32_t al_gguf_version(const al_gguf *g);
size_t al_gguf_alignment(const al_gguf *g);
size_t al_gguf_data_offset(const al_gguf *g); /* file offset of the tensor data section */
size_t al_gguf_file_size(const al_gguf *g);   /* bytes of the parsed buffer / mapped file */

/* ---- metadata ---- */
int64_t al_gguf_kv_count(const al_gguf *g);
al_str al_gguf_kv_key(const al_gguf *g, int64_t i);
al_gguf_value al_gguf_kv_value(const al_gguf *g, int64_t i);
int64_t al_gguf_find_key(const al_gguf *g, const char *key); /* -1 if absent */
const char *al_gguf_vtype_name(al_gguf_vtype t);

/* Scalar getters: convert between integer widths when the value fits; false if absent/mismatch. */
bool al_gguf_get_u32(const al_gguf *g, const char *key, uint32_t *out);
bool al_gguf_get_i64(const al_gguf *g, const char *key, int64_t *out);
bool al_gguf_get_f32(const al_gguf *g, const char *key, float *out); /* accepts f32/f64/ints */
bool al_gguf_get_bool(const al_gguf *g, const char *key, bool *out);
bool al_gguf_get_str(const al_gguf *g, const char *key, al_str *out);
/* Array access: false if absent or not an array. */
bool al_gguf_get_arr(const al_gguf *g, const char *key, al_gguf_value *out);

/* Value helpers (valid for scalars of the right type, or array elements via al_gguf_arr_at). */
al_gguf_value al_gguf_arr_at(const al_gguf_value *arr, uint64_t i); /* i < count, any elem type */
int64_t al_gguf_value_i64(const al_gguf_value *v);  /* integer/bool types */
double al_gguf_value_f64(const al_gguf_value *v);   /* numeric types */
al_str al_gguf_value_str(const al_gguf_value *v);   /* string type */

/* ---- tensors ---- */
int64_t al_gguf_tensor_count(const al_gguf *g);
const al_gguf_tensor_info *al_gguf_tensor_info_at(const al_gguf *g, int64_t i);
int64_t al_gguf_find_tensor(const al_gguf *g, const char *name); /* -1 if absent */
const void *al_gguf_tensor_data(const al_gguf *g, int64_t i);
/* Borrowed al_tensor view of tensor i (data in the map). */
al_status al_gguf_tensor_view(const al_gguf *g, int64_t i, al_tensor *out);

/* ---- writer ---- */
typedef struct al_gguf_writer al_gguf_writer;

al_status al_gguf_writer_init(al_gguf_writer **out, const al_allocator *a);
void al_gguf_writer_free(al_gguf_writer *w);
/* Setting an existing key replaces its value. Strings are copied. */
al_status al_gguf_writer_set_u32(al_gguf_writer *w, const char *key, uint32_t v);
al_status al_gguf_writer_set_i32(al_gguf_writer *w, const char *key, int32_t v);
al_status al_gguf_writer_set_u64(al_gguf_writer *w, const char *key, uint64_t v);
al_status al_gguf_writer_set_f32(al_gguf_writer *w, const char *key, float v);
al_status al_gguf_writer_set_bool(al_gguf_writer *w, const char *key, bool v);
al_status al_gguf_writer_set_str(al_gguf_writer *w, const char *key, const char *v);
/* Array of scalars: data holds count elements of elem_type (not STRING/ARRAY). */
al_status al_gguf_writer_set_arr(al_gguf_writer *w, const char *key, al_gguf_vtype elem_type,
                                 const void *data, uint64_t count);
al_status al_gguf_writer_set_arr_str(al_gguf_writer *w, const char *key, const char *const *strs,
                                     uint64_t count);
/* Copies one KV (any type, nested arrays included) from a reader. */
al_status al_gguf_writer_copy_kv(al_gguf_writer *w, const al_gguf *src, int64_t i);
/* Any fixed-size scalar type (not STRING/ARRAY); v points to one value of that type. */
al_status al_gguf_writer_set_scalar(al_gguf_writer *w, const char *key, al_gguf_vtype type, const void *v);
/* Copies a reader value (e.g. an element of a nested array) under a new key. */
al_status al_gguf_writer_set_value(al_gguf_writer *w, const char *key, const al_gguf_value *v);
/* A value given as its serialized GGUF payload (the bytes after the u32 type: e.g. for ARRAY
 * u32 elem_type, u64 count, elements). Validated like file input: AL_ERR_FORMAT if malformed or
 * if it does not span exactly len bytes. Builds nested arrays. */
al_status al_gguf_writer_set_raw(al_gguf_writer *w, const char *key, al_gguf_vtype type, const void *payload,
                                 size_t len);
/* Removes a key; AL_ERR_NOT_FOUND if absent. */
al_status al_gguf_writer_remove(al_gguf_writer *w, const char *key);
/* Adds a tensor; `data` (al_type_row_size * rows bytes) is borrowed and must live until write. */
al_status al_gguf_writer_add_tensor(al_gguf_writer *w, const char *name, al_type type, int ndim,
                                    const int64_t *ne, const void *data);
al_status al_gguf_writer_write(al_gguf_writer *w, const char *path);

#ifdef __cplusplus
}
#endif
#endif
