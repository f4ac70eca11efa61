/*
 * gguf_write.c — GGUF v3 writer.
 *
 * Each KV is kept as (key, type, serialized payload); tensors as (name, type, shape, borrowed
 * data). al_gguf_writer_write lays the data section out in insertion order, each tensor at a
 * multiple of the alignment, and writes the file in one pass through a buffered stream.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloy/quant.h"
#include "format/gguf_impl.h"

typedef struct wkv {
    char *key;
    size_t key_len;
    al_gguf_vtype type;
    uint8_t *val; /* payload bytes */
    size_t len;
} wkv;

typedef struct wtensor {
    char *name;
    al_type type;
    int ndim;
    int64_t ne[AL_MAX_DIMS];
    const void *data;
    size_t nbytes;
} wtensor;

struct al_gguf_writer {
    const al_allocator *a;
    wkv *kvs;
    size_t n_kv, cap_kv;
    wtensor *ts;
    size_t n_t, cap_t;
};

static bool wgrow(const al_allocator *a, void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t nc = *cap ? *cap * 2 : 16, bytes;
    if (nc < need) nc = need;
    if (!al_mul_ok(nc, elem, &bytes)) return false;
    void *q = al_alloc(a, bytes);
    if (!q) return false;
    if (*p) memcpy(q, *p, *cap * elem);
    al_free(a, *p);
    *p = q;
    *cap = nc;
    return true;
}

static char *wdup(const al_allocator *a, const void *s, size_t n) {
    char *d = al_alloc(a, n + 1);
    if (!d) return NULL;
    if (n) memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

al_status al_gguf_writer_init(al_gguf_writer **out, const al_allocator *a) {
    if (!out) return al_err(AL_ERR_INVALID, "gguf writer: NULL output");
    if (!a) a = al_allocator_default();
    al_gguf_writer *w = al_calloc(a, 1, sizeof *w);
    if (!w) return al_err(AL_ERR_NOMEM, "gguf writer: cannot allocate");
    w->a = a;
    *out = w;
    return al_ok();
}

void al_gguf_writer_free(al_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        al_free(w->a, w->kvs[i].key);
        al_free(w->a, w->kvs[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++) al_free(w->a, w->ts[i].name);
    al_free(w->a, w->kvs);
    al_free(w->a, w->ts);
    al_free(w->a, w);
}

static int64_t wfind(const al_gguf_writer *w, const char *key, size_t key_len) {
    for (size_t i = 0; i < w->n_kv; i++)
        if (w->kvs[i].key_len == key_len && memcmp(w->kvs[i].key, key, key_len) == 0) return (int64_t)i;
    return -1;
}

/* Stores a copy of payload [p, p+len) of `type` under key (replacing an existing value). */
static al_status set_payload(al_gguf_writer *w, const char *key, size_t key_len, al_gguf_vtype type, const void *p,
                             size_t len) {
    if (!w || !key) return al_err(AL_ERR_INVALID, "gguf writer: NULL argument");
    if (key_len == 0) return al_err(AL_ERR_INVALID, "gguf writer: empty key");
    uint8_t *val = al_alloc(w->a, len);
    if (!val) return al_err(AL_ERR_NOMEM, "gguf writer: cannot copy a %zu-byte value", len);
    if (len) memcpy(val, p, len);
    int64_t i = wfind(w, key, key_len);
    if (i >= 0) {
        al_free(w->a, w->kvs[i].val);
        w->kvs[i].type = type;
        w->kvs[i].val = val;
        w->kvs[i].len = len;
        return al_ok();
    }
    char *k = wdup(w->a, key, key_len);
    if (!k || !wgrow(w->a, (void **)&w->kvs, &w->cap_kv, w->n_kv + 1, sizeof *w->kvs)) {
        al_free(w->a, k);
        al_free(w->a, val);
        return al_err(AL_ERR_NOMEM, "gguf writer: cannot add key");
    }
    w->kvs[w->n_kv++] = (wkv){k, key_len, type, val, len};
    return al_ok();
}

static al_status set_fixed(al_gguf_writer *w, const char *key, al_gguf_vtype type, const void *v) {
    size_t fs = al_gguf_impl_fixed_size(type);
    if (!fs) return al_err(AL_ERR_INVALID, "gguf writer: %s is not a fixed-size scalar type", al_gguf_vtype_name(type));
    if (!key) return al_err(AL_ERR_INVALID, "gguf writer: NULL key");
    return set_payload(w, key, strlen(key), type, v, fs);
}

al_status al_gguf_writer_set_scalar(al_gguf_writer *w, const char *key, al_gguf_vtype type, const void *v) {
    if (!v) return al_err(AL_ERR_INVALID, "gguf writer: NULL value");
    return set_fixed(w, key, type, v);
}
al_status al_gguf_writer_set_u32(al_gguf_writer *w, const char *key, uint32_t v) { return set_fixed(w, key, AL_GGUF_UINT32, &v); }
al_status al_gguf_writer_set_i32(al_gguf_writer *w, const char *key, int32_t v) { return set_fixed(w, key, AL_GGUF_INT32, &v); }
al_status al_gguf_writer_set_u64(al_gguf_writer *w, const char *key, uint64_t v) { return set_fixed(w, key, AL_GGUF_UINT64, &v); }
al_status al_gguf_writer_set_f32(al_gguf_writer *w, const char *key, float v) { return set_fixed(w, key, AL_GGUF_FLOAT32, &v); }
al_status al_gguf_writer_set_bool(al_gguf_writer *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    return set_fixed(w, key, AL_GGUF_BOOL, &b);
}

al_status al_gguf_writer_set_str(al_gguf_writer *w, const char *key, const char *v) {
    if (!w || !key || !v) return al_err(AL_ERR_INVALID, "gguf writer: NULL argument");
    size_t n = strlen(v), total;
    if (!al_add_ok(n, 8, &total)) return al_err(AL_ERR_RANGE, "gguf writer: string too long");
    uint8_t *buf = al_alloc(w->a, total);
    if (!buf) return al_err(AL_ERR_NOMEM, "gguf writer: cannot copy a %zu-byte string", n);
    uint64_t len = n;
    memcpy(buf, &len, 8);
    memcpy(buf + 8, v, n);
    al_status s = set_payload(w, key, strlen(key), AL_GGUF_STRING, buf, total);
    al_free(w->a, buf);
    return s;
}

al_status al_gguf_writer_set_arr(al_gguf_writer *w, const char *key, al_gguf_vtype elem_type, const void *data,
                                 uint64_t count) {
    if (!w || !key || (!data && count)) return al_err(AL_ERR_INVALID, "gguf writer: NULL argument");
    size_t fs = al_gguf_impl_fixed_size(elem_type), body, total;
    if (!fs)
        return al_err(AL_ERR_INVALID, "gguf writer: set_arr needs a fixed-size element type, not %s",
                      al_gguf_vtype_name(elem_type));
    if (count > SIZE_MAX || !al_mul_ok((size_t)count, fs, &body) || !al_add_ok(body, AL_GGUF_ARR_HDR, &total))
        return al_err(AL_ERR_RANGE, "gguf writer: array of %llu elements too large", (unsigned long long)count);
    uint8_t *buf = al_alloc(w->a, total);
    if (!buf) return al_err(AL_ERR_NOMEM, "gguf writer: cannot copy a %zu-byte array", total);
    uint32_t et = elem_type;
    memcpy(buf, &et, 4);
    memcpy(buf + 4, &count, 8);
    if (body) memcpy(buf + AL_GGUF_ARR_HDR, data, body);
    al_status s = set_payload(w, key, strlen(key), AL_GGUF_ARRAY, buf, total);
    al_free(w->a, buf);
    return s;
}

al_status al_gguf_writer_set_arr_str(al_gguf_writer *w, const char *key, const char *const *strs, uint64_t count) {
    if (!w || !key || (!strs && count)) return al_err(AL_ERR_INVALID, "gguf writer: NULL argument");
    size_t total = AL_GGUF_ARR_HDR;
    for (uint64_t i = 0; i < count; i++) {
        if (!strs[i]) return al_err(AL_ERR_INVALID, "gguf writer: %s: string %llu is NULL", key, (unsigned long long)i);
        if (!al_add_ok(total, 8 + strlen(strs[i]), &total)) return al_err(AL_ERR_RANGE, "gguf writer: array too large");
    }
    uint8_t *buf = al_alloc(w->a, total);
    if (!buf) return al_err(AL_ERR_NOMEM, "gguf writer: cannot copy a %zu-byte string array", total);
    uint32_t et = AL_GGUF_STRING;
    memcpy(buf, &et, 4);
    memcpy(buf + 4, &count, 8);
    size_t pos = AL_GGUF_ARR_HDR;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t n = strlen(strs[i]);
        memcpy(buf + pos, &n, 8);
        memcpy(buf + pos + 8, strs[i], (size_t)n);
        pos += 8 + (size_t)n;
    }
    al_status s = set_payload(w, key, strlen(key), AL_GGUF_ARRAY, buf, total);
    al_free(w->a, buf);
    return s;
}

al_status al_gguf_writer_set_raw(al_gguf_writer *w, const char *key, al_gguf_vtype type, const void *payload,
                                 size_t len) {
    if (!w || !key || (!payload && len)) return al_err(AL_ERR_INVALID, "gguf writer: NULL argument");
    size_t pos = 0;
    const uint8_t *b = payload ? payload : (const uint8_t *)"";
    AL_TRY(al_gguf_impl_check_value(b, len, &pos, (uint32_t)type, 0, NULL));
    if (pos != len)
        return al_err(AL_ERR_FORMAT, "gguf writer: %s: %s payload spans %zu bytes, %zu given", key,
                      al_gguf_vtype_name(type), pos, len);
    return set_payload(w, key, strlen(key), type, b, len);
}

/* Payload bytes of a value coming from a reader (validated when the reader parsed it). */
static al_status value_payload(const al_gguf_value *v, const uint8_t **p, size_t *len) {
    if (!v || !v->raw || (unsigned)v->type >= AL_GGUF_VTYPE_COUNT)
        return al_err(AL_ERR_INVALID, "gguf writer: invalid value");
    const uint8_t *start = v->type == AL_GGUF_ARRAY ? v->raw - AL_GGUF_ARR_HDR : v->raw;
    *p = start;
    *len = (size_t)(al_gguf_impl_value_end(start, v->type) - start);
    return al_ok();
}

al_status al_gguf_writer_set_value(al_gguf_writer *w, const char *key, const al_gguf_value *v) {
    const uint8_t *p = NULL;
    size_t len = 0;
    AL_TRY(value_payload(v, &p, &len));
    if (!key) return al_err(AL_ERR_INVALID, "gguf writer: NULL key");
    return set_payload(w, key, strlen(key), v->type, p, len);
}

al_status al_gguf_writer_copy_kv(al_gguf_writer *w, const al_gguf *src, int64_t i) {
    if (!src || i < 0 || i >= al_gguf_kv_count(src))
        return al_err(AL_ERR_INVALID, "gguf writer: no kv %lld to copy", (long long)i);
    al_str key = al_gguf_kv_key(src, i);
    al_gguf_value v = al_gguf_kv_value(src, i);
    const uint8_t *p = NULL;
    size_t len = 0;
    AL_TRY(value_payload(&v, &p, &len));
    return set_payload(w, key.ptr, (size_t)key.len, v.type, p, len);
}

al_status al_gguf_writer_remove(al_gguf_writer *w, const char *key) {
    if (!w || !key) return al_err(AL_ERR_INVALID, "gguf writer: NULL argument");
    int64_t i = wfind(w, key, strlen(key));
    if (i < 0) return al_err(AL_ERR_NOT_FOUND, "gguf writer: no key %s", key);
    al_free(w->a, w->kvs[i].key);
    al_free(w->a, w->kvs[i].val);
    memmove(&w->kvs[i], &w->kvs[i + 1], (w->n_kv - (size_t)i - 1) * sizeof *w->kvs);
    w->n_kv--;
    return al_ok();
}

al_status al_gguf_writer_add_tensor(al_gguf_writer *w, const char *name, al_type type, int ndim, const int64_t *ne,
                                    const void *data) {
    if (!w || !name || !ne || !data) return al_err(AL_ERR_INVALID, "gguf writer: NULL argument");
    size_t nl = strlen(name);
    if (nl == 0 || nl >= AL_GGUF_MAX_NAME)
        return al_err(AL_ERR_INVALID, "gguf writer: tensor name '%s' must have 1..%d bytes", name, AL_GGUF_MAX_NAME - 1);
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->ts[i].name, name) == 0) return al_err(AL_ERR_INVALID, "gguf writer: duplicate tensor '%s'", name);
    const al_type_traits *tr = al_type_traits_get(type);
    if (!tr->name || tr->block_size <= 0) return al_err(AL_ERR_INVALID, "gguf writer: tensor '%s': unknown type %d", name, (int)type);
    if (ndim < 1 || ndim > AL_MAX_DIMS)
        return al_err(AL_ERR_INVALID, "gguf writer: tensor '%s': ndim %d not in [1, %d]", name, ndim, AL_MAX_DIMS);
    wtensor t = {NULL, type, ndim, {1, 1, 1, 1}, data, 0};
    for (int d = 0; d < ndim; d++) {
        if (ne[d] <= 0) return al_err(AL_ERR_INVALID, "gguf writer: tensor '%s': dim %d is %lld", name, d, (long long)ne[d]);
        t.ne[d] = ne[d];
    }
    if (t.ne[0] % tr->block_size)
        return al_err(AL_ERR_INVALID, "gguf writer: tensor '%s': row of %lld not a multiple of the %s block size %d", name,
                      (long long)t.ne[0], tr->name, tr->block_size);
    bool ok = al_mul_ok((size_t)(t.ne[0] / tr->block_size), tr->type_size, &t.nbytes);
    int64_t nel = t.ne[0];
    for (int d = 1; d < AL_MAX_DIMS; d++)
        ok = ok && al_mul_ok(t.nbytes, (size_t)t.ne[d], &t.nbytes) && !__builtin_mul_overflow(nel, t.ne[d], &nel);
    if (!ok) return al_err(AL_ERR_RANGE, "gguf writer: tensor '%s': size overflows", name);
    t.name = wdup(w->a, name, nl);
    if (!t.name || !wgrow(w->a, (void **)&w->ts, &w->cap_t, w->n_t + 1, sizeof *w->ts)) {
        al_free(w->a, t.name);
        return al_err(AL_ERR_NOMEM, "gguf writer: cannot add tensor '%s'", name);
    }
    w->ts[w->n_t++] = t;
    return al_ok();
}

/* ---- output ----------------------------------------------------------------------------------- */

typedef struct wout {
    FILE *f;
    uint64_t pos;
    bool failed;
} wout;

static void put(wout *o, const void *p, size_t n) {
    if (o->failed || n == 0) return;
    if (fwrite(p, 1, n, o->f) != n) o->failed = true;
    o->pos += n;
}
static void put_u32(wout *o, uint32_t v) { put(o, &v, 4); }
static void put_u64(wout *o, uint64_t v) { put(o, &v, 8); }
static void put_pad(wout *o, size_t align) {
    static const uint8_t zeros[256];
    size_t pad = (size_t)((align - o->pos % align) % align);
    while (pad) {
        size_t k = pad < sizeof zeros ? pad : sizeof zeros;
        put(o, zeros, k);
        pad -= k;
    }
}

static al_status writer_alignment(const al_gguf_writer *w, size_t *align) {
    *align = AL_GGUF_DEFAULT_ALIGNMENT;
    int64_t i = wfind(w, "general.alignment", strlen("general.alignment"));
    if (i < 0) return al_ok();
    const wkv *kv = &w->kvs[i];
    if (kv->type != AL_GGUF_UINT32)
        return al_err(AL_ERR_INVALID, "gguf writer: general.alignment must be uint32, not %s", al_gguf_vtype_name(kv->type));
    uint32_t a = al_gguf_rd_u32(kv->val);
    if (a == 0 || (a & (a - 1))) return al_err(AL_ERR_INVALID, "gguf writer: general.alignment %u is not a power of two", a);
    *align = a;
    return al_ok();
}

al_status al_gguf_writer_write(al_gguf_writer *w, const char *path) {
    if (!w || !path) return al_err(AL_ERR_INVALID, "gguf writer: NULL argument");
    size_t align;
    AL_TRY(writer_alignment(w, &align));
    /* data section layout: offsets in insertion order */
    uint64_t *offs = al_calloc(w->a, w->n_t ? w->n_t : 1, sizeof *offs);
    if (!offs) return al_err(AL_ERR_NOMEM, "gguf writer: cannot allocate offsets");
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        offs[i] = off;
        uint64_t end = off + w->ts[i].nbytes;
        if (end < off || end > UINT64_MAX - align) {
            al_free(w->a, offs);
            return al_err(AL_ERR_RANGE, "gguf writer: data section overflows");
        }
        off = (end + align - 1) / align * align;
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        al_free(w->a, offs);
        return al_err(AL_ERR_IO, "gguf writer: cannot create %s: %s", path, strerror(errno));
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    wout o = {f, 0, false};
    put(&o, AL_GGUF_MAGIC, 4);
    put_u32(&o, 3);
    put_u64(&o, w->n_t);
    put_u64(&o, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        const wkv *kv = &w->kvs[i];
        put_u64(&o, kv->key_len);
        put(&o, kv->key, kv->key_len);
        put_u32(&o, kv->type);
        put(&o, kv->val, kv->len);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->ts[i];
        uint64_t nl = strlen(t->name);
        put_u64(&o, nl);
        put(&o, t->name, (size_t)nl);
        put_u32(&o, (uint32_t)t->ndim);
        for (int d = 0; d < t->ndim; d++) put_u64(&o, (uint64_t)t->ne[d]);
        put_u32(&o, (uint32_t)t->type);
        put_u64(&o, offs[i]);
    }
    put_pad(&o, align);
    for (size_t i = 0; i < w->n_t; i++) {
        put(&o, w->ts[i].data, w->ts[i].nbytes);
        put_pad(&o, align);
    }
    al_free(w->a, offs);
    int e = o.failed ? errno : 0;
    if (fclose(f) != 0 && !o.failed) {
        o.failed = true;
        e = errno;
    }
    if (o.failed) {
        remove(path);
        return al_err(AL_ERR_IO, "gguf writer: writing %s failed: %s", path, strerror(e));
    }
    return al_ok();
}
