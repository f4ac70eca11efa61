/*
 * safetensors.c — reader for .safetensors files (mmap'd or borrowed buffer).
 *
 * Layout: u64 little-endian header length N, N bytes of JSON (an object: tensor name ->
 * {dtype, shape, data_offsets}, plus an optional "__metadata__" string -> string object), then the
 * data section. data_offsets = [begin, end) are relative to the start of the data section.
 *
 * Invariants after a successful parse:
 *  - every tensor lies inside the data section, nbytes == nelements * dtype size (when the dtype's
 *    size is known), nonempty tensors do not overlap;
 *  - tensors[] is in data-offset order; by_name[] points at the same tensors sorted by name;
 *  - names and metadata strings point into the retained jansson tree `root`.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloy/safetensors.h"

#define ST_MAX_HEADER ((uint64_t)100 * 1024 * 1024)

struct al_st_file {
    json_t *root;          /* parsed header; owns every name / metadata string */
    json_t *metadata;      /* borrowed from root, may be NULL */
    void *map;             /* non-NULL when the file is mmap'd (al_st_open) */
    size_t map_size;
    int64_t n;
    al_st_tensor *tensors; /* n entries, data-offset order */
    al_st_tensor **by_name; /* n entries, sorted by strcmp(name) */
};

/* ---- dtypes ---- */

typedef struct st_dtype {
    const char *name;
    size_t size; /* bytes per element; 0: sub-byte / unknown, size not checked */
    al_type type;
} st_dtype;

static const st_dtype st_dtypes[] = {
    {"F32", 4, AL_TYPE_F32},        {"F16", 2, AL_TYPE_F16},        {"BF16", 2, AL_TYPE_BF16},
    {"F64", 8, AL_TYPE_COUNT},      {"I64", 8, AL_TYPE_COUNT},      {"U64", 8, AL_TYPE_COUNT},
    {"I32", 4, AL_TYPE_COUNT},      {"U32", 4, AL_TYPE_COUNT},      {"I16", 2, AL_TYPE_COUNT},
    {"U16", 2, AL_TYPE_COUNT},      {"I8", 1, AL_TYPE_COUNT},       {"U8", 1, AL_TYPE_COUNT},
    {"BOOL", 1, AL_TYPE_COUNT},     {"F8_E4M3", 1, AL_TYPE_COUNT},  {"F8_E5M2", 1, AL_TYPE_COUNT},
    {"F8_E8M0", 1, AL_TYPE_COUNT},  {"C64", 8, AL_TYPE_COUNT},
};

static const st_dtype *st_dtype_find(const char *name) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(st_dtypes[i].name, name) == 0) return &st_dtypes[i];
    return NULL;
}

/* ---- helpers ---- */

static int cmp_offset(const void *a, const void *b) {
    const al_st_tensor *x = a, *y = b;
    const uint8_t *px = x->data, *py = y->data;
    if (px != py) return px < py ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_name(const void *a, const void *b) {
    const al_st_tensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static int cmp_key(const void *key, const void *elem) {
    const al_st_tensor *const *t = elem;
    return strcmp((const char *)key, (*t)->name);
}

static bool parse_int(const json_t *v, int64_t *out) {
    *out = json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
    return json_is_integer(v);
}

/* Fills t (except data) from one header entry; data_begin/end are relative to the data section. */
static al_status parse_entry(al_st_tensor *t, const char *name, json_t *v, uint64_t data_size,
                             const uint8_t *data) {
    memset(t, 0, sizeof *t);
    t->name = name;
    if (!json_is_object(v)) return al_err(AL_ERR_FORMAT, "tensor '%.80s': entry is not an object", name);

    json_t *jd = json_object_get(v, "dtype");
    json_t *js = json_object_get(v, "shape");
    json_t *jo = json_object_get(v, "data_offsets");
    if (!jd) return al_err(AL_ERR_FORMAT, "tensor '%.80s': missing dtype", name);
    if (!js) return al_err(AL_ERR_FORMAT, "tensor '%.80s': missing shape", name);
    if (!jo) return al_err(AL_ERR_FORMAT, "tensor '%.80s': missing data_offsets", name);
    if (!json_is_string(jd)) return al_err(AL_ERR_FORMAT, "tensor '%.80s': dtype is not a string", name);
    if (!json_is_array(js)) return al_err(AL_ERR_FORMAT, "tensor '%.80s': shape is not an array", name);
    if (!json_is_array(jo) || json_array_size(jo) != 2)
        return al_err(AL_ERR_FORMAT, "tensor '%.80s': data_offsets is not [begin, end]", name);

    /* dtype: keep the first 7 chars as written; the type is decided on the full string. */
    const char *dname = json_string_value(jd);
    const st_dtype *dt = st_dtype_find(dname);
    snprintf(t->dtype, sizeof t->dtype, "%.*s", (int)(sizeof t->dtype - 1), dname);
    t->type = dt ? dt->type : AL_TYPE_COUNT;

    /* shape */
    size_t nd = json_array_size(js);
    if (nd > AL_MAX_DIMS)
        return al_err(AL_ERR_FORMAT, "tensor '%.80s': %zu dims (at most %d supported)", name, nd, AL_MAX_DIMS);
    t->ndim = (int)nd;
    uint64_t nel = 1;
    for (int i = 0; i < AL_MAX_DIMS; i++) t->shape[i] = t->ne[i] = 1;
    for (size_t i = 0; i < nd; i++) {
        int64_t d;
        if (!parse_int(json_array_get(js, i), &d)) return al_err(AL_ERR_FORMAT, "tensor '%.80s': shape[%zu] is not an integer", name, i);
        if (d < 0) return al_err(AL_ERR_FORMAT, "tensor '%.80s': shape[%zu] = %lld is negative", name, i, (long long)d);
        if (__builtin_mul_overflow(nel, (uint64_t)d, &nel) || nel > (uint64_t)INT64_MAX)
            return al_err(AL_ERR_FORMAT, "tensor '%.80s': element count overflows", name);
        t->shape[i] = d;
        t->ne[nd - 1 - i] = d;
    }

    /* data_offsets */
    int64_t b, e;
    if (!parse_int(json_array_get(jo, 0), &b) || !parse_int(json_array_get(jo, 1), &e)) return al_err(AL_ERR_FORMAT, "tensor '%.80s': data_offsets are not integers", name);
    if (b < 0 || e < 0 || b > e)
        return al_err(AL_ERR_FORMAT, "tensor '%.80s': data_offsets [%lld, %lld] are not 0 <= begin <= end", name,
                      (long long)b, (long long)e);
    if ((uint64_t)e > data_size)
        return al_err(AL_ERR_FORMAT, "tensor '%.80s': data_offsets end %lld is past the data section (%llu bytes)",
                      name, (long long)e, (unsigned long long)data_size);
    if (dt && dt->size) {
        uint64_t want;
        if (__builtin_mul_overflow(nel, (uint64_t)dt->size, &want))
            return al_err(AL_ERR_FORMAT, "tensor '%.80s': byte size overflows", name);
        if (want != (uint64_t)(e - b))
            return al_err(AL_ERR_FORMAT, "tensor '%.80s': %llu bytes in data_offsets, shape and %s need %llu", name,
                          (unsigned long long)(e - b), dt->name, (unsigned long long)want);
    }
    t->data = data + b;
    t->nbytes = (size_t)(e - b);
    return al_ok();
}

static al_status parse_metadata(al_st_file *f, json_t *m) {
    if (!json_is_object(m)) return al_err(AL_ERR_FORMAT, "__metadata__ is not an object");
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v) {
        if (!json_is_string(v)) return al_err(AL_ERR_FORMAT, "__metadata__ '%.80s' is not a string", k);
    }
    f->metadata = m;
    return al_ok();
}

static al_status st_parse(al_st_file *f, const uint8_t *buf, size_t size) {
    if (size < 8) return al_err(AL_ERR_FORMAT, "file is %zu bytes, shorter than the 8-byte header length", size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (hlen > ST_MAX_HEADER)
        return al_err(AL_ERR_FORMAT, "header length %llu exceeds the %llu-byte limit", (unsigned long long)hlen,
                      (unsigned long long)ST_MAX_HEADER);
    if (hlen > size - 8)
        return al_err(AL_ERR_FORMAT, "header length %llu is larger than the %zu bytes after it",
                      (unsigned long long)hlen, size - 8);
    if (hlen < 2 || buf[8] != '{') return al_err(AL_ERR_FORMAT, "header is not a JSON object");

    json_error_t jerr;
    f->root = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!f->root) return al_err(AL_ERR_FORMAT, "header is not valid JSON: %s (line %d)", jerr.text, jerr.line);
    if (!json_is_object(f->root)) return al_err(AL_ERR_FORMAT, "header is not a JSON object");

    const uint8_t *data = buf + 8 + hlen;
    uint64_t data_size = size - 8 - hlen;
    size_t cap = json_object_size(f->root);
    f->tensors = al_calloc(NULL, cap ? cap : 1, sizeof *f->tensors);
    f->by_name = al_calloc(NULL, cap ? cap : 1, sizeof *f->by_name);
    if (!f->tensors || !f->by_name) return al_err(AL_ERR_NOMEM, "%zu tensor entries", cap);

    const char *k;
    json_t *v;
    json_object_foreach(f->root, k, v) {
        if (strcmp(k, "__metadata__") == 0) {
            AL_TRY(parse_metadata(f, v));
            continue;
        }
        if ((size_t)f->n >= cap) return al_err(AL_ERR_FORMAT, "header changed while iterating");
        AL_TRY(parse_entry(&f->tensors[f->n], k, v, data_size, data));
        f->n++;
    }

    qsort(f->tensors, (size_t)f->n, sizeof *f->tensors, cmp_offset);
    const al_st_tensor *prev = NULL; /* the last nonempty tensor so far */
    for (int64_t i = 0; i < f->n; i++) {
        const al_st_tensor *t = &f->tensors[i];
        if (t->nbytes == 0) continue;
        if (prev && (const uint8_t *)t->data < (const uint8_t *)prev->data + prev->nbytes)
            return al_err(AL_ERR_FORMAT, "tensor '%.80s' overlaps tensor '%.80s'", t->name, prev->name);
        prev = t;
    }
    for (int64_t i = 0; i < f->n; i++) f->by_name[i] = &f->tensors[i];
    qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_name);
    return al_ok();
}

/* ---- public ---- */

al_status al_st_parse(al_st_file **out, const void *data, size_t size) {
    if (!out || (!data && size)) return al_err(AL_ERR_INVALID, "al_st_parse: NULL argument");
    *out = NULL;
    al_st_file *f = al_calloc(NULL, 1, sizeof *f);
    if (!f) return al_err(AL_ERR_NOMEM, "al_st_parse");
    al_status s = st_parse(f, data, size);
    if (al_failed(&s)) {
        al_st_free(f);
        return s;
    }
    *out = f;
    return al_ok();
}

al_status al_st_open(al_st_file **out, const char *path) {
    if (!out || !path) return al_err(AL_ERR_INVALID, "al_st_open: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return al_err(errno == ENOENT ? AL_ERR_NOT_FOUND : AL_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return al_err(AL_ERR_IO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return al_err(AL_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size < 8) {
        close(fd);
        return al_err(AL_ERR_FORMAT, "%s: file is %lld bytes, shorter than the 8-byte header length", path,
                      (long long)sb.st_size);
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return al_err(AL_ERR_RANGE, "%s: file too large to map", path);
    }
    size_t size = (size_t)sb.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) return al_err(AL_ERR_IO, "%s: mmap: %s", path, strerror(e));

    al_st_file *f = al_calloc(NULL, 1, sizeof *f);
    if (!f) {
        munmap(map, size);
        return al_err(AL_ERR_NOMEM, "%s", path);
    }
    f->map = map;
    f->map_size = size;
    al_status s = st_parse(f, map, size);
    if (al_failed(&s)) {
        al_st_free(f);
        return al_err_wrap(s, "%s", path);
    }
    *out = f;
    return al_ok();
}

void al_st_free(al_st_file *f) {
    if (!f) return;
    if (f->map) munmap(f->map, f->map_size);
    json_decref(f->root);
    al_free(NULL, f->tensors);
    al_free(NULL, f->by_name);
    al_free(NULL, f);
}

int64_t al_st_count(const al_st_file *f) { return f ? f->n : 0; }

const al_st_tensor *al_st_at(const al_st_file *f, int64_t i) {
    return f && i >= 0 && i < f->n ? &f->tensors[i] : NULL;
}

const al_st_tensor *al_st_find(const al_st_file *f, const char *name) {
    if (!f || !name || f->n == 0) return NULL;
    al_st_tensor *const *hit = bsearch(name, f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_key);
    return hit ? *hit : NULL;
}

const char *al_st_metadata(const al_st_file *f, const char *key) {
    if (!f || !f->metadata || !key) return NULL;
    return json_string_value(json_object_get(f->metadata, key));
}

al_status al_st_to_f32(const al_st_tensor *t, float *dst) {
    if (!t || (!dst && t->nbytes)) return al_err(AL_ERR_INVALID, "al_st_to_f32: NULL argument");
    const uint8_t *src = t->data;
    switch (t->type) {
    case AL_TYPE_F32: /* little-endian host assumed, as everywhere in Alloy */
        if (t->nbytes) memcpy(dst, src, t->nbytes);
        return al_ok();
    case AL_TYPE_F16:
        for (size_t i = 0; i < t->nbytes / 2; i++) dst[i] = al_f16_to_f32((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        return al_ok();
    case AL_TYPE_BF16:
        for (size_t i = 0; i < t->nbytes / 2; i++) dst[i] = al_bf16_to_f32((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        return al_ok();
    default:
        return al_err(AL_ERR_UNSUPPORTED, "tensor '%.80s': dtype %s cannot be converted to F32", t->name, t->dtype);
    }
}
