/*
 * gguf_read.c — GGUF v2/v3 parser over a memory map or a borrowed buffer.
 *
 * Layout (little-endian): "GGUF", u32 version, u64 n_tensors, u64 n_kv,
 *   n_kv x { string key, u32 type, payload }        (see gguf_impl.h for payloads)
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset }
 *   zero padding to `alignment`, then the data section; tensor offsets are relative to it.
 *
 * Nothing is copied out of the buffer: keys, strings and values point into it. Arrays whose elements
 * have variable size (strings, arrays) get an element-offset table built during validation so that
 * al_gguf_arr_at is O(log n_arrays). Every table is bounded by the buffer size (each entry stands
 * for at least 8 distinct bytes of the file at one nesting level).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloy/quant.h"
#include "format/gguf_impl.h"

static const char *const vtype_names[AL_GGUF_VTYPE_COUNT] = {
    [AL_GGUF_UINT8] = "uint8",   [AL_GGUF_INT8] = "int8",     [AL_GGUF_UINT16] = "uint16",
    [AL_GGUF_INT16] = "int16",   [AL_GGUF_UINT32] = "uint32", [AL_GGUF_INT32] = "int32",
    [AL_GGUF_FLOAT32] = "float32", [AL_GGUF_BOOL] = "bool",   [AL_GGUF_STRING] = "string",
    [AL_GGUF_ARRAY] = "array",   [AL_GGUF_UINT64] = "uint64", [AL_GGUF_INT64] = "int64",
    [AL_GGUF_FLOAT64] = "float64",
};

static const uint8_t fixed_sizes[AL_GGUF_VTYPE_COUNT] = {
    [AL_GGUF_UINT8] = 1,   [AL_GGUF_INT8] = 1,   [AL_GGUF_UINT16] = 2, [AL_GGUF_INT16] = 2,
    [AL_GGUF_UINT32] = 4,  [AL_GGUF_INT32] = 4,  [AL_GGUF_FLOAT32] = 4, [AL_GGUF_BOOL] = 1,
    [AL_GGUF_UINT64] = 8,  [AL_GGUF_INT64] = 8,  [AL_GGUF_FLOAT64] = 8,
};

/* Smallest payload of each type: bounds element counts before anything is sized from them. */
static const uint8_t min_sizes[AL_GGUF_VTYPE_COUNT] = {
    [AL_GGUF_UINT8] = 1,   [AL_GGUF_INT8] = 1,   [AL_GGUF_UINT16] = 2, [AL_GGUF_INT16] = 2,
    [AL_GGUF_UINT32] = 4,  [AL_GGUF_INT32] = 4,  [AL_GGUF_FLOAT32] = 4, [AL_GGUF_BOOL] = 1,
    [AL_GGUF_STRING] = 8,  [AL_GGUF_ARRAY] = AL_GGUF_ARR_HDR,
    [AL_GGUF_UINT64] = 8,  [AL_GGUF_INT64] = 8,  [AL_GGUF_FLOAT64] = 8,
};

#define MIN_KV_BYTES 13 /* u64 key length + u32 type + 1-byte value */
#define MIN_TI_BYTES 32 /* u64 name length + u32 n_dims + one u64 dim + u32 type + u64 offset */

size_t al_gguf_impl_fixed_size(uint32_t type) { return type < AL_GGUF_VTYPE_COUNT ? fixed_sizes[type] : 0; }

const char *al_gguf_vtype_name(al_gguf_vtype t) {
    return (unsigned)t < AL_GGUF_VTYPE_COUNT ? vtype_names[t] : "?";
}

/* ---- validation of one payload ---------------------------------------------------------------- */

al_status al_gguf_impl_check_value(const uint8_t *b, size_t n, size_t *pos, uint32_t type, int depth,
                                   const al_gguf_walker *walker) {
    size_t left = n - *pos;
    if (type >= AL_GGUF_VTYPE_COUNT) return al_err(AL_ERR_FORMAT, "unknown value type %u", type);
    size_t fs = fixed_sizes[type];
    if (fs) {
        if (left < fs)
            return al_err(AL_ERR_FORMAT, "truncated %s value at offset %zu (%zu bytes left)", vtype_names[type], *pos, left);
        *pos += fs;
        return al_ok();
    }
    if (type == AL_GGUF_STRING) {
        if (left < 8) return al_err(AL_ERR_FORMAT, "truncated string length at offset %zu", *pos);
        uint64_t len = al_gguf_rd_u64(b + *pos);
        if (len > left - 8)
            return al_err(AL_ERR_FORMAT, "string length %llu at offset %zu exceeds the %zu bytes left",
                          (unsigned long long)len, *pos, left - 8);
        *pos += 8 + (size_t)len;
        return al_ok();
    }
    /* ARRAY */
    if (depth >= AL_GGUF_MAX_DEPTH)
        return al_err(AL_ERR_FORMAT, "arrays nested deeper than %d levels at offset %zu", AL_GGUF_MAX_DEPTH, *pos);
    if (left < AL_GGUF_ARR_HDR) return al_err(AL_ERR_FORMAT, "truncated array header at offset %zu", *pos);
    uint32_t et = al_gguf_rd_u32(b + *pos);
    uint64_t count = al_gguf_rd_u64(b + *pos + 4);
    if (et >= AL_GGUF_VTYPE_COUNT)
        return al_err(AL_ERR_FORMAT, "array at offset %zu has unknown element type %u", *pos, et);
    *pos += AL_GGUF_ARR_HDR;
    left -= AL_GGUF_ARR_HDR;
    if (count > left / min_sizes[et])
        return al_err(AL_ERR_FORMAT, "array count %llu of %s at offset %zu exceeds the %zu bytes left",
                      (unsigned long long)count, vtype_names[et], *pos - AL_GGUF_ARR_HDR, left);
    if (fixed_sizes[et]) {
        *pos += (size_t)count * fixed_sizes[et];
        return al_ok();
    }
    size_t first = 0;
    if (walker && count) AL_TRY(walker->on_array(walker->ud, *pos, count, &first));
    for (uint64_t i = 0; i < count; i++) {
        if (walker) walker->on_elem(walker->ud, first, i, *pos);
        al_status s = al_gguf_impl_check_value(b, n, pos, et, depth + 1, walker);
        if (s.code) return al_err_wrap(s, "element %llu", (unsigned long long)i);
    }
    return al_ok();
}

const uint8_t *al_gguf_impl_value_end(const uint8_t *p, uint32_t type) {
    size_t fs = al_gguf_impl_fixed_size(type);
    if (fs) return p + fs;
    if (type == AL_GGUF_STRING) return p + 8 + al_gguf_rd_u64(p);
    uint32_t et = al_gguf_rd_u32(p);
    uint64_t count = al_gguf_rd_u64(p + 4);
    p += AL_GGUF_ARR_HDR;
    fs = al_gguf_impl_fixed_size(et);
    if (fs) return p + count * fs;
    for (uint64_t i = 0; i < count; i++) p = al_gguf_impl_value_end(p, et);
    return p;
}

/* ---- the reader object ------------------------------------------------------------------------ */

typedef struct name_ix {
    al_str s;
    int64_t i;
} name_ix;

typedef struct var_arr {
    size_t raw;   /* buffer offset of the first element */
    size_t first; /* index of its first element in al_gguf.offs */
} var_arr;

typedef struct kv_entry {
    al_str key;
    al_gguf_value val;
} kv_entry;

struct al_gguf {
    const uint8_t *data;
    size_t size;
    void *map; /* non-NULL when al_gguf_open mapped the file (map length = size) */
    uint32_t version;
    size_t alignment;
    size_t data_offset;
    int64_t n_kv;
    kv_entry *kv;
    name_ix *kv_sorted; /* by key, for lookup */
    int64_t n_tensors;
    al_gguf_tensor_info *tensors;
    name_ix *t_sorted; /* by name */
    var_arr *arrs;     /* arrays of STRING/ARRAY elements, ascending raw */
    size_t n_arrs, cap_arrs;
    size_t *offs; /* element start offsets of those arrays */
    size_t n_offs, cap_offs;
};

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / elem) return false;
        nc *= 2;
    }
    void *q = realloc(*p, nc * elem);
    if (!q) return false;
    *p = q;
    *cap = nc;
    return true;
}

static al_status index_on_array(void *ud, size_t raw, uint64_t count, size_t *first) {
    al_gguf *g = ud;
    size_t need;
    if (!al_add_ok(g->n_offs, (size_t)count, &need) || !grow((void **)&g->offs, &g->cap_offs, need, sizeof(size_t)) ||
        !grow((void **)&g->arrs, &g->cap_arrs, g->n_arrs + 1, sizeof(var_arr)))
        return al_err(AL_ERR_NOMEM, "cannot index an array of %llu elements", (unsigned long long)count);
    *first = g->n_offs;
    g->arrs[g->n_arrs++] = (var_arr){raw, g->n_offs};
    g->n_offs = need;
    return al_ok();
}

static void index_on_elem(void *ud, size_t first, uint64_t i, size_t off) {
    al_gguf *g = ud;
    g->offs[first + i] = off;
}

static int str_cmp(al_str a, al_str b) {
    size_t m = a.len < b.len ? (size_t)a.len : (size_t)b.len;
    int c = m ? memcmp(a.ptr, b.ptr, m) : 0;
    if (c) return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

static int name_ix_cmp(const void *a, const void *b) {
    const name_ix *x = a, *y = b;
    int c = str_cmp(x->s, y->s);
    if (c) return c;
    return x->i < y->i ? -1 : x->i > y->i;
}

static int64_t name_find(const name_ix *ix, int64_t n, const char *name) {
    if (!ix || !name) return -1;
    al_str key = {name, strlen(name)};
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = str_cmp(ix[mid].s, key);
        if (c == 0) return ix[mid].i;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

/* Sorts names and refuses duplicates. `what` is "key" or "tensor name". */
static al_status sort_unique(name_ix *ix, int64_t n, const char *what) {
    if (n > 1) qsort(ix, (size_t)n, sizeof *ix, name_ix_cmp);
    for (int64_t i = 1; i < n; i++) {
        if (str_cmp(ix[i - 1].s, ix[i].s) == 0) {
            int l = ix[i].s.len < 80 ? (int)ix[i].s.len : 80;
            return al_err(AL_ERR_FORMAT, "gguf: duplicate %s '%.*s' (entries %lld and %lld)", what, l, ix[i].s.ptr,
                          (long long)ix[i - 1].i, (long long)ix[i].i);
        }
    }
    return al_ok();
}

/* ---- parsing ---------------------------------------------------------------------------------- */

typedef struct parser {
    const uint8_t *b;
    size_t n, pos;
} parser;

#define SHOWN(s) ((s).len < 80 ? (int)(s).len : 80), (s).ptr /* for "%.*s" */

static al_status need(const parser *p, size_t k, const char *what) {
    if (p->n - p->pos < k)
        return al_err(AL_ERR_FORMAT, "gguf: truncated %s at offset %zu (need %zu bytes, %zu left)", what, p->pos, k,
                      p->n - p->pos);
    return al_ok();
}

static al_status read_str(parser *p, al_str *out, const char *what) {
    AL_TRY(need(p, 8, what));
    uint64_t len = al_gguf_rd_u64(p->b + p->pos);
    if (len > p->n - p->pos - 8)
        return al_err(AL_ERR_FORMAT, "gguf: %s length %llu at offset %zu exceeds the %zu bytes left", what,
                      (unsigned long long)len, p->pos, p->n - p->pos - 8);
    out->ptr = (const char *)p->b + p->pos + 8;
    out->len = len;
    p->pos += 8 + (size_t)len;
    return al_ok();
}

static al_status parse_kvs(al_gguf *g, parser *p) {
    const al_gguf_walker walker = {index_on_array, index_on_elem, g};
    for (int64_t i = 0; i < g->n_kv; i++) {
        kv_entry *e = &g->kv[i];
        al_status s = read_str(p, &e->key, "kv key");
        if (s.code) return al_err_wrap(s, "kv %lld", (long long)i);
        if (e->key.len == 0) return al_err(AL_ERR_FORMAT, "gguf: kv %lld has an empty key", (long long)i);
        s = need(p, 4, "kv type");
        if (s.code) return al_err_wrap(s, "kv '%.*s'", SHOWN(e->key));
        uint32_t type = al_gguf_rd_u32(p->b + p->pos);
        p->pos += 4;
        if (type >= AL_GGUF_VTYPE_COUNT)
            return al_err(AL_ERR_FORMAT, "gguf: kv '%.*s': unknown value type %u", SHOWN(e->key), type);
        size_t start = p->pos;
        s = al_gguf_impl_check_value(p->b, p->n, &p->pos, type, 0, &walker);
        if (s.code) return al_err_wrap(s, "gguf: kv '%.*s' (%s)", SHOWN(e->key), vtype_names[type]);
        e->val.type = (al_gguf_vtype)type;
        e->val.owner = g;
        if (type == AL_GGUF_ARRAY) {
            e->val.elem_type = (al_gguf_vtype)al_gguf_rd_u32(p->b + start);
            e->val.count = al_gguf_rd_u64(p->b + start + 4);
            e->val.raw = p->b + start + AL_GGUF_ARR_HDR;
        } else {
            e->val.raw = p->b + start;
        }
        g->kv_sorted[i] = (name_ix){e->key, i};
    }
    return sort_unique(g->kv_sorted, g->n_kv, "key");
}

static al_status parse_alignment(al_gguf *g) {
    g->alignment = AL_GGUF_DEFAULT_ALIGNMENT;
    int64_t i = al_gguf_find_key(g, "general.alignment");
    if (i < 0) return al_ok();
    const al_gguf_value *v = &g->kv[i].val;
    if (v->type != AL_GGUF_UINT32)
        return al_err(AL_ERR_FORMAT, "gguf: general.alignment has type %s, want uint32", vtype_names[v->type]);
    uint32_t a = al_gguf_rd_u32(v->raw);
    if (a == 0 || (a & (a - 1)))
        return al_err(AL_ERR_FORMAT, "gguf: general.alignment %u is not a nonzero power of two", a);
    g->alignment = a;
    return al_ok();
}

static al_status parse_tensor_info(al_gguf *g, parser *p, int64_t i) {
    al_gguf_tensor_info *t = &g->tensors[i];
    al_status s = read_str(p, &t->name, "tensor name");
    if (s.code) return al_err_wrap(s, "tensor %lld", (long long)i);
    s = need(p, 4, "tensor n_dims");
    if (s.code) return al_err_wrap(s, "tensor '%.*s'", SHOWN(t->name));
    uint32_t nd = al_gguf_rd_u32(p->b + p->pos);
    p->pos += 4;
    if (nd < 1 || nd > AL_MAX_DIMS)
        return al_err(AL_ERR_FORMAT, "gguf: tensor '%.*s': n_dims %u not in [1, %d]", SHOWN(t->name), nd, AL_MAX_DIMS);
    t->ndim = (int)nd;
    s = need(p, 8 * (size_t)nd + 12, "tensor dims/type/offset");
    if (s.code) return al_err_wrap(s, "tensor '%.*s'", SHOWN(t->name));
    for (int d = 0; d < AL_MAX_DIMS; d++) {
        if (d >= t->ndim) {
            t->ne[d] = 1;
            continue;
        }
        uint64_t v = al_gguf_rd_u64(p->b + p->pos);
        p->pos += 8;
        if (v == 0 || v > (uint64_t)INT64_MAX)
            return al_err(AL_ERR_FORMAT, "gguf: tensor '%.*s': dim %d is %lld, not positive", SHOWN(t->name), d,
                          (long long)(int64_t)v);
        t->ne[d] = (int64_t)v;
    }
    uint32_t type = al_gguf_rd_u32(p->b + p->pos);
    t->offset = al_gguf_rd_u64(p->b + p->pos + 4);
    p->pos += 12;
    if (!al_type_valid(type)) return al_err(AL_ERR_FORMAT, "gguf: tensor '%.*s': unknown type id %u", SHOWN(t->name), type);
    t->type = (al_type)type;
    const al_type_traits *tr = al_type_traits_get(t->type);
    if (tr->block_size <= 0 || t->ne[0] % tr->block_size)
        return al_err(AL_ERR_FORMAT, "gguf: tensor '%.*s': row of %lld elements is not a multiple of the %s block size %d",
                      SHOWN(t->name), (long long)t->ne[0], tr->name, tr->block_size);
    int64_t nel = t->ne[0];
    size_t nbytes;
    bool ok = al_mul_ok((size_t)(t->ne[0] / tr->block_size), tr->type_size, &nbytes);
    for (int d = 1; d < AL_MAX_DIMS; d++) {
        ok = ok && !__builtin_mul_overflow(nel, t->ne[d], &nel) && al_mul_ok(nbytes, (size_t)t->ne[d], &nbytes);
    }
    if (!ok)
        return al_err(AL_ERR_FORMAT, "gguf: tensor '%.*s': shape [%lld, %lld, %lld, %lld] overflows", SHOWN(t->name),
                      (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3]);
    t->nbytes = nbytes;
    if (t->offset % g->alignment)
        return al_err(AL_ERR_FORMAT, "gguf: tensor '%.*s': offset %llu is not a multiple of the alignment %zu",
                      SHOWN(t->name), (unsigned long long)t->offset, g->alignment);
    g->t_sorted[i] = (name_ix){t->name, i};
    return al_ok();
}

typedef struct span {
    uint64_t off;
    size_t nbytes;
    int64_t i;
} span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->off != y->off) return x->off < y->off ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static al_status check_tensor_data(al_gguf *g) {
    if (g->n_tensors == 0) return al_ok();
    if (g->data_offset > g->size)
        return al_err(AL_ERR_FORMAT, "gguf: truncated: the data section would start at %zu, past the end (%zu bytes)",
                      g->data_offset, g->size);
    size_t avail = g->size - g->data_offset;
    span *sp = malloc((size_t)g->n_tensors * sizeof *sp);
    if (!sp) return al_err(AL_ERR_NOMEM, "gguf: cannot allocate %lld tensor spans", (long long)g->n_tensors);
    al_status s = al_ok();
    for (int64_t i = 0; i < g->n_tensors && !s.code; i++) {
        const al_gguf_tensor_info *t = &g->tensors[i];
        if (t->offset > avail || t->nbytes > avail - t->offset)
            s = al_err(AL_ERR_FORMAT, "gguf: tensor '%.*s': data [%llu, +%zu) runs past the end of the data section (%zu bytes)",
                       SHOWN(t->name), (unsigned long long)t->offset, t->nbytes, avail);
        sp[i] = (span){t->offset, t->nbytes, i};
    }
    if (!s.code) {
        qsort(sp, (size_t)g->n_tensors, sizeof *sp, span_cmp);
        for (int64_t k = 1; k < g->n_tensors; k++) {
            if (sp[k - 1].off + sp[k - 1].nbytes > sp[k].off) {
                const al_gguf_tensor_info *a = &g->tensors[sp[k - 1].i], *b = &g->tensors[sp[k].i];
                s = al_err(AL_ERR_FORMAT, "gguf: tensor data overlaps: '%.*s' [%llu, +%zu) and '%.*s' at %llu", SHOWN(a->name),
                           (unsigned long long)a->offset, a->nbytes, SHOWN(b->name), (unsigned long long)b->offset);
                break;
            }
        }
    }
    free(sp);
    return s;
}

static al_status parse(al_gguf *g) {
    parser p = {g->data, g->size, 0};
    AL_TRY(need(&p, 4, "magic"));
    if (memcmp(p.b, AL_GGUF_MAGIC, 4) != 0)
        return al_err(AL_ERR_FORMAT, "gguf: bad magic %02x %02x %02x %02x (not a GGUF file)", p.b[0], p.b[1], p.b[2], p.b[3]);
    AL_TRY(need(&p, 24, "header"));
    g->version = al_gguf_rd_u32(p.b + 4);
    if (g->version == 1) return al_err(AL_ERR_FORMAT, "gguf: version 1 is not supported (only 2 and 3)");
    if (g->version != 2 && g->version != 3) {
        if ((g->version & 0xffff) == 0)
            return al_err(AL_ERR_FORMAT, "gguf: big-endian file (version field 0x%08x) is not supported", g->version);
        return al_err(AL_ERR_FORMAT, "gguf: unsupported version %u (only 2 and 3)", g->version);
    }
    uint64_t n_tensors = al_gguf_rd_u64(p.b + 8);
    uint64_t n_kv = al_gguf_rd_u64(p.b + 16);
    p.pos = 24;
    if (n_kv > (p.n - p.pos) / MIN_KV_BYTES)
        return al_err(AL_ERR_FORMAT, "gguf: absurd kv count %llu: cannot fit in the %zu bytes left (or the file is truncated)", (unsigned long long)n_kv, p.n - p.pos);
    g->n_kv = (int64_t)n_kv;
    g->kv = calloc(n_kv ? (size_t)n_kv : 1, sizeof *g->kv);
    g->kv_sorted = calloc(n_kv ? (size_t)n_kv : 1, sizeof *g->kv_sorted);
    if (!g->kv || !g->kv_sorted) return al_err(AL_ERR_NOMEM, "gguf: cannot allocate %llu kv entries", (unsigned long long)n_kv);
    AL_TRY(parse_kvs(g, &p));
    AL_TRY(parse_alignment(g));

    if (n_tensors > (p.n - p.pos) / MIN_TI_BYTES)
        return al_err(AL_ERR_FORMAT, "gguf: absurd tensor count %llu: cannot fit in the %zu bytes left (or the file is truncated)", (unsigned long long)n_tensors,
                      p.n - p.pos);
    g->n_tensors = (int64_t)n_tensors;
    g->tensors = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *g->tensors);
    g->t_sorted = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *g->t_sorted);
    if (!g->tensors || !g->t_sorted)
        return al_err(AL_ERR_NOMEM, "gguf: cannot allocate %llu tensor infos", (unsigned long long)n_tensors);
    for (int64_t i = 0; i < g->n_tensors; i++) AL_TRY(parse_tensor_info(g, &p, i));
    AL_TRY(sort_unique(g->t_sorted, g->n_tensors, "tensor name"));

    size_t pad = (g->alignment - p.pos % g->alignment) % g->alignment;
    if (!al_add_ok(p.pos, pad, &g->data_offset))
        return al_err(AL_ERR_FORMAT, "gguf: data offset overflows");
    return check_tensor_data(g);
}

al_status al_gguf_parse(al_gguf **out, const void *data, size_t size) {
    if (!out) return al_err(AL_ERR_INVALID, "gguf: NULL output");
    *out = NULL;
    if (!data && size) return al_err(AL_ERR_INVALID, "gguf: NULL buffer");
    al_gguf *g = calloc(1, sizeof *g);
    if (!g) return al_err(AL_ERR_NOMEM, "gguf: cannot allocate reader");
    g->data = data ? data : (const uint8_t *)"";
    g->size = size;
    al_status s = parse(g);
    if (s.code) {
        al_gguf_free(g);
        return s;
    }
    *out = g;
    return al_ok();
}

al_status al_gguf_open(al_gguf **out, const char *path) {
    if (!out || !path) return al_err(AL_ERR_INVALID, "gguf: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return al_err(errno == ENOENT ? AL_ERR_NOT_FOUND : AL_ERR_IO, "gguf: cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return al_err(AL_ERR_IO, "gguf: cannot stat %s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return al_err(AL_ERR_IO, "gguf: %s is not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return al_err(AL_ERR_FORMAT, "gguf: %s is empty", path);
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) return al_err(AL_ERR_IO, "gguf: cannot map %s: %s", path, strerror(e));
    /* weights are streamed every token: start reading them in now (a hint; failure is harmless) */
    (void)madvise(map, size, MADV_WILLNEED);
    al_gguf *g = NULL;
    al_status s = al_gguf_parse(&g, map, size);
    if (s.code) {
        munmap(map, size);
        return al_err_wrap(s, "%s", path);
    }
    g->map = map;
    *out = g;
    return al_ok();
}

void al_gguf_free(al_gguf *g) {
    if (!g) return;
    if (g->map) munmap(g->map, g->size);
    free(g->kv);
    free(g->kv_sorted);
    free(g->tensors);
    free(g->t_sorted);
    free(g->arrs);
    free(g->offs);
    free(g);
}

/* ---- queries ---------------------------------------------------------------------------------- */

uint32_t al_gguf_version(const al_gguf *g) { return g->version; }
size_t al_gguf_alignment(const al_gguf *g) { return g->alignment; }
size_t al_gguf_data_offset(const al_gguf *g) { return g->data_offset; }
size_t al_gguf_file_size(const al_gguf *g) { return g->size; }
int64_t al_gguf_kv_count(const al_gguf *g) { return g->n_kv; }

al_str al_gguf_kv_key(const al_gguf *g, int64_t i) {
    if (i < 0 || i >= g->n_kv) return (al_str){NULL, 0};
    return g->kv[i].key;
}

static al_gguf_value invalid_value(void) {
    al_gguf_value v;
    memset(&v, 0, sizeof v);
    v.type = AL_GGUF_VTYPE_COUNT;
    v.elem_type = AL_GGUF_VTYPE_COUNT;
    return v;
}

al_gguf_value al_gguf_kv_value(const al_gguf *g, int64_t i) {
    if (i < 0 || i >= g->n_kv) return invalid_value();
    return g->kv[i].val;
}

int64_t al_gguf_find_key(const al_gguf *g, const char *key) { return name_find(g->kv_sorted, g->n_kv, key); }

static const al_gguf_value *find_value(const al_gguf *g, const char *key) {
    int64_t i = al_gguf_find_key(g, key);
    return i < 0 ? NULL : &g->kv[i].val;
}

/* Integer scalars as (signed, value): false for non-integer types (bool included). */
static bool value_int(const al_gguf_value *v, bool *is_signed, int64_t *s, uint64_t *u) {
    const uint8_t *p = v->raw;
    *is_signed = false;
    switch (v->type) {
    case AL_GGUF_UINT8: *u = p[0]; return true;
    case AL_GGUF_UINT16: { uint16_t x; memcpy(&x, p, 2); *u = x; return true; }
    case AL_GGUF_UINT32: *u = al_gguf_rd_u32(p); return true;
    case AL_GGUF_UINT64: *u = al_gguf_rd_u64(p); return true;
    default: break;
    }
    *is_signed = true;
    switch (v->type) {
    case AL_GGUF_INT8: *s = (int8_t)p[0]; return true;
    case AL_GGUF_INT16: { int16_t x; memcpy(&x, p, 2); *s = x; return true; }
    case AL_GGUF_INT32: { int32_t x; memcpy(&x, p, 4); *s = x; return true; }
    case AL_GGUF_INT64: { int64_t x; memcpy(&x, p, 8); *s = x; return true; }
    default: return false;
    }
}

bool al_gguf_get_u32(const al_gguf *g, const char *key, uint32_t *out) {
    const al_gguf_value *v = find_value(g, key);
    bool sg;
    int64_t s;
    uint64_t u;
    if (!v || !value_int(v, &sg, &s, &u)) return false;
    if (sg ? (s < 0 || s > (int64_t)UINT32_MAX) : u > UINT32_MAX) return false;
    *out = sg ? (uint32_t)s : (uint32_t)u;
    return true;
}

bool al_gguf_get_i64(const al_gguf *g, const char *key, int64_t *out) {
    const al_gguf_value *v = find_value(g, key);
    bool sg;
    int64_t s;
    uint64_t u;
    if (!v || !value_int(v, &sg, &s, &u)) return false;
    if (!sg && u > (uint64_t)INT64_MAX) return false;
    *out = sg ? s : (int64_t)u;
    return true;
}

bool al_gguf_get_f32(const al_gguf *g, const char *key, float *out) {
    const al_gguf_value *v = find_value(g, key);
    if (!v || v->type == AL_GGUF_BOOL || v->type == AL_GGUF_STRING || v->type == AL_GGUF_ARRAY) return false;
    *out = (float)al_gguf_value_f64(v);
    return true;
}

bool al_gguf_get_bool(const al_gguf *g, const char *key, bool *out) {
    const al_gguf_value *v = find_value(g, key);
    if (!v || v->type != AL_GGUF_BOOL) return false;
    *out = v->raw[0] != 0;
    return true;
}

bool al_gguf_get_str(const al_gguf *g, const char *key, al_str *out) {
    const al_gguf_value *v = find_value(g, key);
    if (!v || v->type != AL_GGUF_STRING) return false;
    *out = al_gguf_value_str(v);
    return true;
}

bool al_gguf_get_arr(const al_gguf *g, const char *key, al_gguf_value *out) {
    const al_gguf_value *v = find_value(g, key);
    if (!v || v->type != AL_GGUF_ARRAY) return false;
    *out = *v;
    return true;
}

al_gguf_value al_gguf_arr_at(const al_gguf_value *arr, uint64_t i) {
    al_gguf_value r = invalid_value();
    if (!arr || arr->type != AL_GGUF_ARRAY || i >= arr->count || !arr->owner) return r;
    const al_gguf *g = arr->owner;
    uint32_t et = arr->elem_type;
    size_t fs = al_gguf_impl_fixed_size(et);
    const uint8_t *p;
    if (fs) {
        p = arr->raw + i * fs;
    } else {
        size_t raw = (size_t)(arr->raw - g->data);
        size_t lo = 0, hi = g->n_arrs;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (g->arrs[mid].raw < raw) lo = mid + 1;
            else hi = mid;
        }
        if (lo >= g->n_arrs || g->arrs[lo].raw != raw) return r;
        p = g->data + g->offs[g->arrs[lo].first + i];
    }
    r.type = (al_gguf_vtype)et;
    r.owner = g;
    if (et == AL_GGUF_ARRAY) {
        r.elem_type = (al_gguf_vtype)al_gguf_rd_u32(p);
        r.count = al_gguf_rd_u64(p + 4);
        r.raw = p + AL_GGUF_ARR_HDR;
    } else {
        r.raw = p;
    }
    return r;
}

int64_t al_gguf_value_i64(const al_gguf_value *v) {
    bool sg;
    int64_t s = 0;
    uint64_t u = 0;
    if (!v || !v->raw) return 0;
    if (v->type == AL_GGUF_BOOL) return v->raw[0] != 0;
    if (!value_int(v, &sg, &s, &u)) return 0;
    return sg ? s : (int64_t)u;
}

double al_gguf_value_f64(const al_gguf_value *v) {
    if (!v || !v->raw) return 0;
    if (v->type == AL_GGUF_FLOAT32) {
        float f;
        memcpy(&f, v->raw, 4);
        return f;
    }
    if (v->type == AL_GGUF_FLOAT64) {
        double d;
        memcpy(&d, v->raw, 8);
        return d;
    }
    bool sg;
    int64_t s = 0;
    uint64_t u = 0;
    if (v->type == AL_GGUF_BOOL) return v->raw[0] != 0;
    if (!value_int(v, &sg, &s, &u)) return 0;
    return sg ? (double)s : (double)u;
}

al_str al_gguf_value_str(const al_gguf_value *v) {
    if (!v || v->type != AL_GGUF_STRING || !v->raw) return (al_str){NULL, 0};
    return (al_str){(const char *)v->raw + 8, al_gguf_rd_u64(v->raw)};
}

/* ---- tensors ---------------------------------------------------------------------------------- */

int64_t al_gguf_tensor_count(const al_gguf *g) { return g->n_tensors; }

const al_gguf_tensor_info *al_gguf_tensor_info_at(const al_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

int64_t al_gguf_find_tensor(const al_gguf *g, const char *name) { return name_find(g->t_sorted, g->n_tensors, name); }

const void *al_gguf_tensor_data(const al_gguf *g, int64_t i) {
    if (i < 0 || i >= g->n_tensors) return NULL;
    return g->data + g->data_offset + g->tensors[i].offset;
}

al_status al_gguf_tensor_view(const al_gguf *g, int64_t i, al_tensor *out) {
    const al_gguf_tensor_info *t = al_gguf_tensor_info_at(g, i);
    if (!t) return al_err(AL_ERR_NOT_FOUND, "gguf: no tensor %lld (file has %lld)", (long long)i, (long long)g->n_tensors);
    /* The view is read-only in practice: the map is PROT_READ. */
    return al_tensor_view(out, t->type, t->ndim, t->ne, (void *)al_gguf_tensor_data(g, i));
}
