/*
 * alloy/safetensors.h — safetensors files and Hugging Face model folders.
 *
 * Contract
 *  - al_st_open memory-maps one .safetensors file; al_st_parse works on a caller-owned buffer
 *    (fuzzer). The 8-byte little-endian header length, the JSON header and every tensor's
 *    dtype/shape/data_offsets are validated (bounds, overflow, shape-vs-bytes, overlap) and
 *    refused with AL_ERR_FORMAT otherwise. Supported dtypes: F32, F16, BF16 (others: refused
 *    only when their data is requested, listed with AL_TYPE_COUNT type).
 *  - Shapes are given in safetensors (row-major, outermost first) order in `shape`, and in ggml
 *    order (innermost first) in `ne`; unused entries of both are 1 (ndim 0 is a scalar).
 *  - al_st_at / al_hf_tensor_at order: data-offset order within a file (shards by file name).
 *  - `data` points into the map or buffer and is only as aligned as the file makes it: read it with
 *    memcpy or al_st_to_f32 unless you checked. It lives as long as the al_st_file / al_hf.
 *  - Limits: header <= 100 MB; dtypes of unknown size (e.g. future sub-byte types) are listed
 *    with their byte range checked against the data section but not against the shape.
 *  - Sharded folders: every weight_map entry must name a plain file in the folder (no '/', '\',
 *    '..') that holds that tensor; a tensor present in two shards is refused.
 *  - al_hf_open opens a model folder: config.json (parsed with jansson, kept as json_t owned by
 *    the al_hf), and either model.safetensors or the shards listed in
 *    model.safetensors.index.json. Tensor lookups search every shard. A folder with config.yaml
 *    and no config.json (an Alloy model folder) is read the same way, the YAML parsed into the
 *    same jansson tree (alloy/yaml.h); al_hf_config_name tells which file it was.
 */
#ifndef ALLOY_SAFETENSORS_H
#define ALLOY_SAFETENSORS_H

#include <jansson.h>

#include "alloy/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct al_st_tensor {
    const char *name; /* NUL-terminated, owned by the file object */
    al_type type;     /* AL_TYPE_F32/F16/BF16, or AL_TYPE_COUNT for unsupported dtypes */
    char dtype[8];    /* as written, e.g. "BF16", "I64" */
    int ndim;
    int64_t shape[AL_MAX_DIMS]; /* row-major order, as in the file */
    int64_t ne[AL_MAX_DIMS];    /* ggml order: ne[0] = shape[ndim-1] */
    const void *data;           /* into the map / buffer */
    size_t nbytes;
} al_st_tensor;

typedef struct al_st_file al_st_file;

al_status al_st_open(al_st_file **out, const char *path);
al_status al_st_parse(al_st_file **out, const void *data, size_t size); /* borrowed buffer */
void al_st_free(al_st_file *f);
int64_t al_st_count(const al_st_file *f);
const al_st_tensor *al_st_at(const al_st_file *f, int64_t i);
const al_st_tensor *al_st_find(const al_st_file *f, const char *name); /* NULL if absent */
/* __metadata__ entries (string -> string); NULL if absent. */
const char *al_st_metadata(const al_st_file *f, const char *key);

/* ---- Hugging Face folder ---- */
typedef struct al_hf al_hf;

al_status al_hf_open(al_hf **out, const char *dir);
void al_hf_free(al_hf *h);
const char *al_hf_dir(const al_hf *h);
json_t *al_hf_config(const al_hf *h); /* borrowed; root object of config.json / config.yaml */
const char *al_hf_config_name(const al_hf *h); /* "config.json" or "config.yaml" */
int64_t al_hf_tensor_count(const al_hf *h);
const al_st_tensor *al_hf_tensor_at(const al_hf *h, int64_t i);
const al_st_tensor *al_hf_find(const al_hf *h, const char *name); /* NULL if absent */
/* Copies a tensor into dst as float32 (n = product of shape); AL_ERR_UNSUPPORTED for other dtypes. */
al_status al_st_to_f32(const al_st_tensor *t, float *dst);

#ifdef __cplusplus
}
#endif
#endif
