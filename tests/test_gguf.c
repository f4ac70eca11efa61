/* test_gguf.c — GGUF reader/writer: round trip, a real llama.cpp file, hostile inputs. */
#include <stdlib.h>
#include <sys/stat.h>

#include "alloy/gguf.h"
#include "alloy/quant.h"
#include "harness.h"

/* ---- a byte builder, independent of the library's writer -------------------------------------- */

typedef struct bb {
    uint8_t *p;
    size_t n, cap;
} bb;

static void bb_put(bb *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}
static size_t bb_u32(bb *b, uint32_t v) { size_t at = b->n; bb_put(b, &v, 4); return at; }
static size_t bb_u64(bb *b, uint64_t v) { size_t at = b->n; bb_put(b, &v, 8); return at; }
static size_t bb_str(bb *b, const char *s) {
    size_t at = bb_u64(b, strlen(s));
    bb_put(b, s, strlen(s));
    return at;
}
static void bb_pad(bb *b, size_t align) {
    while (b->n % align) bb_put(b, "", 1);
}
static void patch_u32(uint8_t *p, size_t at, uint32_t v) { memcpy(p + at, &v, 4); }
static void patch_u64(uint8_t *p, size_t at, uint64_t v) { memcpy(p + at, &v, 8); }

static bool str_eq(al_str s, const char *c) { return s.ptr && s.len == strlen(c) && memcmp(s.ptr, c, s.len) == 0; }

/* Walks every KV, array element (recursively) and tensor: what the fuzzer does too. */
static uint64_t walk_value(const al_gguf_value *v, int depth) {
    uint64_t h = (uint64_t)v->type;
    if (v->type == AL_GGUF_STRING) {
        al_str s = al_gguf_value_str(v);
        for (uint64_t i = 0; i < s.len; i++) h = h * 31 + (uint8_t)s.ptr[i];
    } else if (v->type == AL_GGUF_ARRAY) {
        for (uint64_t i = 0; i < v->count; i++) {
            al_gguf_value e = al_gguf_arr_at(v, i);
            CHECK(e.type == v->elem_type);
            h = h * 31 + walk_value(&e, depth + 1);
        }
    } else {
        h = h * 31 + (uint64_t)al_gguf_value_i64(v) + (uint64_t)(al_gguf_value_f64(v) == 0);
    }
    return h;
}

static void walk_all(const al_gguf *g) {
    uint64_t h = 0;
    for (int64_t i = 0; i < al_gguf_kv_count(g); i++) {
        al_gguf_value v = al_gguf_kv_value(g, i);
        h += walk_value(&v, 0);
        al_str k = al_gguf_kv_key(g, i);
        char key[128];
        if (k.len < sizeof key) {
            memcpy(key, k.ptr, k.len);
            key[k.len] = 0;
            if (strlen(key) == k.len) CHECK(al_gguf_find_key(g, key) == i);
        }
    }
    for (int64_t i = 0; i < al_gguf_tensor_count(g); i++) {
        const al_gguf_tensor_info *t = al_gguf_tensor_info_at(g, i);
        const uint8_t *d = al_gguf_tensor_data(g, i);
        CHECK(al_gguf_data_offset(g) + t->offset + t->nbytes <= al_gguf_file_size(g));
        if (t->nbytes) h += d[0] + d[t->nbytes - 1];
        al_tensor view;
        CHECK_OK(al_gguf_tensor_view(g, i, &view));
    }
    (void)h;
}

/* ---- round trip -------------------------------------------------------------------------------- */

/* Serialized payload of: array of `n_outer` arrays of strings. */
static void build_nested_strings(bb *b, const char *const *const *rows, const int *lens, int n_outer) {
    bb_u32(b, AL_GGUF_ARRAY);
    bb_u64(b, (uint64_t)n_outer);
    for (int r = 0; r < n_outer; r++) {
        bb_u32(b, AL_GGUF_STRING);
        bb_u64(b, (uint64_t)lens[r]);
        for (int i = 0; i < lens[r]; i++) bb_str(b, rows[r][i]);
    }
}

static const char *const row0[] = {"alpha", "", "gamma"};
static const char *const row1[] = {"delta"};
static const char *const *const nested_rows[] = {row0, row1, NULL};
static const int nested_lens[] = {3, 1, 0};

/* [[[i16 ...] x k] x 2]: three levels, with an empty innermost array. */
static void build_nested3(bb *b) {
    bb_u32(b, AL_GGUF_ARRAY);
    bb_u64(b, 2);
    for (int o = 0; o < 2; o++) {
        bb_u32(b, AL_GGUF_ARRAY);
        bb_u64(b, (uint64_t)(o + 1));
        for (int m = 0; m <= o; m++) {
            int n = o * 2 + m; /* 0, 2, 3 elements */
            bb_u32(b, AL_GGUF_INT16);
            bb_u64(b, (uint64_t)n);
            for (int i = 0; i < n; i++) {
                int16_t v = (int16_t)(-100 * (o + 1) + 10 * m + i);
                bb_put(b, &v, 2);
            }
        }
    }
}

typedef struct tspec {
    const char *name;
    al_type type;
    int ndim;
    int64_t ne[4];
} tspec;

static const tspec rt_tensors[] = {
    {"tok.weight", AL_TYPE_F32, 2, {5, 3}},
    {"b.f16", AL_TYPE_F16, 1, {7}},
    {"q4k.weight", AL_TYPE_Q4_K, 2, {256, 2}},
    {"q80.weight", AL_TYPE_Q8_0, 3, {64, 3, 2}},
    {"i8.4d", AL_TYPE_I8, 4, {7, 1, 2, 3}},
    {"bf.weight", AL_TYPE_BF16, 2, {3, 3}},
    {"q6k.weight", AL_TYPE_Q6_K, 1, {256}},
};
#define N_RT ((int)(sizeof rt_tensors / sizeof rt_tensors[0]))

static size_t spec_nbytes(const tspec *t) {
    size_t n = al_type_row_size(t->type, t->ne[0]);
    for (int d = 1; d < t->ndim; d++) n *= (size_t)t->ne[d];
    return n;
}

static uint8_t *rt_data[N_RT];

static al_status build_writer(al_gguf_writer *w, uint32_t align) {
    uint8_t u8 = 250;
    int8_t i8 = -120;
    uint16_t u16 = 65000;
    int16_t i16 = -32000;
    int64_t i64 = -1234567890123LL;
    double f64 = -2.5e300;
    AL_TRY(al_gguf_writer_set_u32(w, "replace.me", 7)); /* replaced below, keeps its slot */
    AL_TRY(al_gguf_writer_set_str(w, "general.architecture", "testarch"));
    if (align) AL_TRY(al_gguf_writer_set_u32(w, "general.alignment", align));
    AL_TRY(al_gguf_writer_set_scalar(w, "v.u8", AL_GGUF_UINT8, &u8));
    AL_TRY(al_gguf_writer_set_scalar(w, "v.i8", AL_GGUF_INT8, &i8));
    AL_TRY(al_gguf_writer_set_scalar(w, "v.u16", AL_GGUF_UINT16, &u16));
    AL_TRY(al_gguf_writer_set_scalar(w, "v.i16", AL_GGUF_INT16, &i16));
    AL_TRY(al_gguf_writer_set_u32(w, "v.u32", 4000000000u));
    AL_TRY(al_gguf_writer_set_i32(w, "v.i32", -2000000000));
    AL_TRY(al_gguf_writer_set_f32(w, "v.f32", 0.125f));
    AL_TRY(al_gguf_writer_set_bool(w, "v.bool", true));
    AL_TRY(al_gguf_writer_set_str(w, "v.str", "hello \xe2\x9c\x93 world"));
    AL_TRY(al_gguf_writer_set_str(w, "v.empty", ""));
    AL_TRY(al_gguf_writer_set_u64(w, "v.u64", 18000000000000000000ull));
    AL_TRY(al_gguf_writer_set_scalar(w, "v.i64", AL_GGUF_INT64, &i64));
    AL_TRY(al_gguf_writer_set_scalar(w, "v.f64", AL_GGUF_FLOAT64, &f64));
    const int32_t ai32[] = {1, -2, 3, 2147483647};
    const float af32[] = {0.5f, -1.0f, 3.25f};
    const uint8_t abool[] = {1, 0, 1};
    const uint64_t au64[] = {0, 1, 18446744073709551615ull};
    const double af64[] = {1e-300, 2.0};
    const int8_t ai8[] = {-1, 2};
    AL_TRY(al_gguf_writer_set_arr(w, "a.i32", AL_GGUF_INT32, ai32, 4));
    AL_TRY(al_gguf_writer_set_arr(w, "a.f32", AL_GGUF_FLOAT32, af32, 3));
    AL_TRY(al_gguf_writer_set_arr(w, "a.bool", AL_GGUF_BOOL, abool, 3));
    AL_TRY(al_gguf_writer_set_arr(w, "a.u64", AL_GGUF_UINT64, au64, 3));
    AL_TRY(al_gguf_writer_set_arr(w, "a.f64", AL_GGUF_FLOAT64, af64, 2));
    AL_TRY(al_gguf_writer_set_arr(w, "a.i8", AL_GGUF_INT8, ai8, 2));
    AL_TRY(al_gguf_writer_set_arr(w, "a.empty", AL_GGUF_UINT16, NULL, 0));
    const char *const strs[] = {"a", "", "ccc", "<0x20> <0x20>"};
    AL_TRY(al_gguf_writer_set_arr_str(w, "a.str", strs, 4));
    bb nb = {0};
    build_nested_strings(&nb, nested_rows, nested_lens, 3);
    al_status s = al_gguf_writer_set_raw(w, "a.nested_str", AL_GGUF_ARRAY, nb.p, nb.n);
    nb.n = 0;
    build_nested3(&nb);
    if (!s.code) s = al_gguf_writer_set_raw(w, "a.nested3", AL_GGUF_ARRAY, nb.p, nb.n);
    free(nb.p);
    AL_TRY(s);
    AL_TRY(al_gguf_writer_set_str(w, "replace.me", "replaced"));
    AL_TRY(al_gguf_writer_set_u32(w, "remove.me", 1));
    AL_TRY(al_gguf_writer_remove(w, "remove.me"));
    for (int i = 0; i < N_RT; i++)
        AL_TRY(al_gguf_writer_add_tensor(w, rt_tensors[i].name, rt_tensors[i].type, rt_tensors[i].ndim, rt_tensors[i].ne,
                                         rt_data[i]));
    return al_ok();
}

static void check_rt_values(const al_gguf *g) {
    uint32_t u32;
    int64_t i64;
    float f;
    bool b;
    al_str s;
    al_gguf_value v, e, e2;
    CHECK(al_gguf_kv_count(g) >= 25);
    CHECK(str_eq(al_gguf_kv_key(g, 0), "replace.me"));
    CHECK(al_gguf_get_str(g, "replace.me", &s) && str_eq(s, "replaced"));
    CHECK(al_gguf_find_key(g, "remove.me") == -1);
    CHECK(al_gguf_get_str(g, "general.architecture", &s) && str_eq(s, "testarch"));
    v = al_gguf_kv_value(g, al_gguf_find_key(g, "v.u8"));
    CHECK(v.type == AL_GGUF_UINT8 && al_gguf_value_i64(&v) == 250);
    v = al_gguf_kv_value(g, al_gguf_find_key(g, "v.i8"));
    CHECK(v.type == AL_GGUF_INT8 && al_gguf_value_i64(&v) == -120);
    v = al_gguf_kv_value(g, al_gguf_find_key(g, "v.u16"));
    CHECK(v.type == AL_GGUF_UINT16 && al_gguf_value_i64(&v) == 65000);
    v = al_gguf_kv_value(g, al_gguf_find_key(g, "v.i16"));
    CHECK(v.type == AL_GGUF_INT16 && al_gguf_value_i64(&v) == -32000);
    CHECK(al_gguf_get_u32(g, "v.u32", &u32) && u32 == 4000000000u);
    CHECK(al_gguf_get_i64(g, "v.i32", &i64) && i64 == -2000000000);
    CHECK(!al_gguf_get_u32(g, "v.i32", &u32)); /* negative does not fit */
    CHECK(al_gguf_get_u32(g, "v.u8", &u32) && u32 == 250);
    CHECK(al_gguf_get_f32(g, "v.f32", &f) && f == 0.125f);
    CHECK(al_gguf_get_f32(g, "v.u16", &f) && f == 65000.0f);
    CHECK(al_gguf_get_bool(g, "v.bool", &b) && b);
    CHECK(!al_gguf_get_bool(g, "v.u8", &b));
    CHECK(al_gguf_get_str(g, "v.str", &s) && str_eq(s, "hello \xe2\x9c\x93 world"));
    CHECK(al_gguf_get_str(g, "v.empty", &s) && s.len == 0);
    CHECK(!al_gguf_get_str(g, "v.u32", &s));
    CHECK(!al_gguf_get_i64(g, "v.u64", &i64)); /* > INT64_MAX */
    v = al_gguf_kv_value(g, al_gguf_find_key(g, "v.u64"));
    CHECK(v.type == AL_GGUF_UINT64 && (uint64_t)al_gguf_value_i64(&v) == 18000000000000000000ull);
    CHECK(al_gguf_get_i64(g, "v.i64", &i64) && i64 == -1234567890123LL);
    v = al_gguf_kv_value(g, al_gguf_find_key(g, "v.f64"));
    CHECK(v.type == AL_GGUF_FLOAT64 && al_gguf_value_f64(&v) == -2.5e300);
    CHECK(!al_gguf_get_u32(g, "missing", &u32));

    REQUIRE(al_gguf_get_arr(g, "a.i32", &v));
    CHECK(v.elem_type == AL_GGUF_INT32 && v.count == 4);
    e = al_gguf_arr_at(&v, 3);
    CHECK(al_gguf_value_i64(&e) == 2147483647);
    e = al_gguf_arr_at(&v, 1);
    CHECK(al_gguf_value_i64(&e) == -2);
    CHECK(al_gguf_arr_at(&v, 4).type == AL_GGUF_VTYPE_COUNT);
    REQUIRE(al_gguf_get_arr(g, "a.f32", &v));
    e = al_gguf_arr_at(&v, 2);
    CHECK(v.count == 3 && al_gguf_value_f64(&e) == 3.25);
    REQUIRE(al_gguf_get_arr(g, "a.bool", &v));
    e = al_gguf_arr_at(&v, 0);
    e2 = al_gguf_arr_at(&v, 1);
    CHECK(v.elem_type == AL_GGUF_BOOL && al_gguf_value_i64(&e) == 1 && al_gguf_value_i64(&e2) == 0);
    REQUIRE(al_gguf_get_arr(g, "a.u64", &v));
    e = al_gguf_arr_at(&v, 2);
    CHECK((uint64_t)al_gguf_value_i64(&e) == 18446744073709551615ull);
    REQUIRE(al_gguf_get_arr(g, "a.f64", &v));
    e = al_gguf_arr_at(&v, 0);
    CHECK(al_gguf_value_f64(&e) == 1e-300);
    REQUIRE(al_gguf_get_arr(g, "a.i8", &v));
    e = al_gguf_arr_at(&v, 0);
    CHECK(al_gguf_value_i64(&e) == -1);
    REQUIRE(al_gguf_get_arr(g, "a.empty", &v));
    CHECK(v.count == 0 && v.elem_type == AL_GGUF_UINT16);
    REQUIRE(al_gguf_get_arr(g, "a.str", &v));
    CHECK(v.elem_type == AL_GGUF_STRING && v.count == 4);
    e = al_gguf_arr_at(&v, 0);
    CHECK(str_eq(al_gguf_value_str(&e), "a"));
    e = al_gguf_arr_at(&v, 1);
    CHECK(al_gguf_value_str(&e).len == 0);
    e = al_gguf_arr_at(&v, 3);
    CHECK(str_eq(al_gguf_value_str(&e), "<0x20> <0x20>"));

    REQUIRE(al_gguf_get_arr(g, "a.nested_str", &v));
    CHECK(v.elem_type == AL_GGUF_ARRAY && v.count == 3);
    for (int r = 0; r < 3; r++) {
        e = al_gguf_arr_at(&v, (uint64_t)r);
        CHECK(e.type == AL_GGUF_ARRAY && e.elem_type == AL_GGUF_STRING && e.count == (uint64_t)nested_lens[r]);
        for (int i = 0; i < nested_lens[r] && e.count == (uint64_t)nested_lens[r]; i++) {
            e2 = al_gguf_arr_at(&e, (uint64_t)i);
            CHECKF(str_eq(al_gguf_value_str(&e2), nested_rows[r][i]), "nested_str[%d][%d]", r, i);
        }
    }
    REQUIRE(al_gguf_get_arr(g, "a.nested3", &v));
    CHECK(v.count == 2);
    for (int o = 0; o < 2; o++) {
        e = al_gguf_arr_at(&v, (uint64_t)o);
        CHECK(e.elem_type == AL_GGUF_ARRAY && e.count == (uint64_t)(o + 1));
        for (int m = 0; m <= o && e.count == (uint64_t)(o + 1); m++) {
            e2 = al_gguf_arr_at(&e, (uint64_t)m);
            int n = o * 2 + m;
            CHECK(e2.elem_type == AL_GGUF_INT16 && e2.count == (uint64_t)n);
            for (int i = 0; i < n && e2.count == (uint64_t)n; i++) {
                al_gguf_value x = al_gguf_arr_at(&e2, (uint64_t)i);
                CHECKF(al_gguf_value_i64(&x) == -100 * (o + 1) + 10 * m + i, "nested3[%d][%d][%d]", o, m, i);
            }
        }
    }
}

static void check_rt_tensors(const al_gguf *g, size_t align) {
    REQUIRE(al_gguf_tensor_count(g) == N_RT);
    CHECK(al_gguf_alignment(g) == align);
    CHECK(al_gguf_data_offset(g) % align == 0);
    size_t expect_off = 0;
    for (int i = 0; i < N_RT; i++) {
        const tspec *ts = &rt_tensors[i];
        int64_t k = al_gguf_find_tensor(g, ts->name);
        CHECK(k == i);
        const al_gguf_tensor_info *t = al_gguf_tensor_info_at(g, i);
        REQUIRE(t);
        CHECK(str_eq(t->name, ts->name));
        CHECK(t->type == ts->type && t->ndim == ts->ndim);
        for (int d = 0; d < 4; d++) CHECK(t->ne[d] == (d < ts->ndim ? ts->ne[d] : 1));
        CHECK(t->nbytes == spec_nbytes(ts));
        CHECK(t->offset == expect_off);
        CHECK(memcmp(al_gguf_tensor_data(g, i), rt_data[i], t->nbytes) == 0);
        expect_off += (t->nbytes + align - 1) / align * align;
    }
    CHECK(al_gguf_file_size(g) == al_gguf_data_offset(g) + expect_off);
    CHECK(al_gguf_find_tensor(g, "nope") == -1);
    al_tensor view;
    REQUIRE_OK(al_gguf_tensor_view(g, 3, &view));
    CHECK(view.type == AL_TYPE_Q8_0 && view.ne[2] == 2 && view.nb[1] == 68 && view.data == al_gguf_tensor_data(g, 3));
}

static void rt_with_alignment(uint32_t align) {
    for (int i = 0; i < N_RT; i++) {
        size_t n = spec_nbytes(&rt_tensors[i]);
        rt_data[i] = malloc(n);
        for (size_t j = 0; j < n; j++) rt_data[i][j] = (uint8_t)(j * 131 + (size_t)i * 17 + 1);
    }
    const char *path = align == 64 ? "test_gguf_rt64.gguf" : "test_gguf_rt.gguf";
    const char *path2 = "test_gguf_rt_copy.gguf";
    al_gguf_writer *w = NULL;
    al_gguf *g = NULL, *g2 = NULL;
    al_gguf_writer *w2 = NULL;
    uint8_t *f1 = NULL, *f2 = NULL;
    size_t n1 = 0, n2 = 0;
    size_t want_align = align ? align : AL_GGUF_DEFAULT_ALIGNMENT;
    CHECK_OK(al_gguf_writer_init(&w, NULL));
    if (w) {
        CHECK_OK(build_writer(w, align));
        CHECK_OK(al_gguf_writer_write(w, path));
    }
    f1 = al_test_read_file(path, &n1);
    CHECK(f1 && n1 > 24 && memcmp(f1, "GGUF", 4) == 0);
    if (f1) {
        uint32_t ver;
        uint64_t nt;
        memcpy(&ver, f1 + 4, 4);
        memcpy(&nt, f1 + 8, 8);
        CHECK(ver == 3 && nt == N_RT);
    }
    CHECK_OK(al_gguf_open(&g, path));
    if (g) {
        CHECK(al_gguf_version(g) == 3);
        check_rt_values(g);
        check_rt_tensors(g, want_align);
        walk_all(g);
        /* copy every KV and tensor through a second writer: the file must come out identical */
        CHECK_OK(al_gguf_writer_init(&w2, NULL));
        for (int64_t i = 0; i < al_gguf_kv_count(g) && w2; i++) CHECK_OK(al_gguf_writer_copy_kv(w2, g, i));
        for (int64_t i = 0; i < al_gguf_tensor_count(g) && w2; i++) {
            const al_gguf_tensor_info *t = al_gguf_tensor_info_at(g, i);
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
            CHECK_OK(al_gguf_writer_add_tensor(w2, name, t->type, t->ndim, t->ne, al_gguf_tensor_data(g, i)));
        }
        if (w2) CHECK_OK(al_gguf_writer_write(w2, path2));
        f2 = al_test_read_file(path2, &n2);
        CHECK(f1 && f2 && n1 == n2 && memcmp(f1, f2, n1) == 0);
        /* set_value copies a nested element under a new key */
        al_gguf_value arr, inner;
        if (al_gguf_get_arr(g, "a.nested_str", &arr) && w2) {
            inner = al_gguf_arr_at(&arr, 0);
            CHECK_OK(al_gguf_writer_set_value(w2, "copied.inner", &inner));
            CHECK_OK(al_gguf_writer_write(w2, path2));
            CHECK_OK(al_gguf_open(&g2, path2));
            al_gguf_value c, c2;
            CHECK(g2 && al_gguf_get_arr(g2, "copied.inner", &c) && c.elem_type == AL_GGUF_STRING && c.count == 3);
            if (g2 && c.count == 3) {
                c2 = al_gguf_arr_at(&c, 2);
                CHECK(str_eq(al_gguf_value_str(&c2), "gamma"));
            }
        }
    }
    al_gguf_free(g);
    al_gguf_free(g2);
    al_gguf_writer_free(w);
    al_gguf_writer_free(w2);
    free(f1);
    free(f2);
    remove(path);
    remove(path2);
    for (int i = 0; i < N_RT; i++) free(rt_data[i]);
}

static void test_round_trip(void) { rt_with_alignment(0); }
static void test_round_trip_align64(void) { rt_with_alignment(64); }

static void test_writer_errors(void) {
    al_gguf_writer *w = NULL;
    REQUIRE_OK(al_gguf_writer_init(&w, NULL));
    float data[64] = {0};
    int64_t ne_bad[2] = {33, 1}, ne[2] = {64, 1}, ne0[1] = {0};
    CHECK_ERR(al_gguf_writer_add_tensor(w, "q", AL_TYPE_Q8_0, 2, ne_bad, data), AL_ERR_INVALID);
    CHECK_ERR(al_gguf_writer_add_tensor(w, "z", AL_TYPE_F32, 1, ne0, data), AL_ERR_INVALID);
    CHECK_ERR(al_gguf_writer_add_tensor(w, "t", AL_TYPE_F32, 5, ne, data), AL_ERR_INVALID);
    CHECK_ERR(al_gguf_writer_add_tensor(w, "t", (al_type)4, 2, ne, data), AL_ERR_INVALID);
    CHECK_OK(al_gguf_writer_add_tensor(w, "t", AL_TYPE_F32, 2, ne, data));
    CHECK_ERR(al_gguf_writer_add_tensor(w, "t", AL_TYPE_F32, 2, ne, data), AL_ERR_INVALID);
    char longname[80];
    memset(longname, 'x', 70);
    longname[70] = 0;
    CHECK_ERR(al_gguf_writer_add_tensor(w, longname, AL_TYPE_F32, 2, ne, data), AL_ERR_INVALID);
    CHECK_ERR(al_gguf_writer_set_arr(w, "k", AL_GGUF_STRING, data, 1), AL_ERR_INVALID);
    CHECK_ERR(al_gguf_writer_set_scalar(w, "k", AL_GGUF_ARRAY, data), AL_ERR_INVALID);
    uint8_t junk[12] = {9, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0}; /* array of 5 arrays, no bytes for them */
    CHECK_ERR(al_gguf_writer_set_raw(w, "k", AL_GGUF_ARRAY, junk, sizeof junk), AL_ERR_FORMAT);
    CHECK_ERR(al_gguf_writer_set_raw(w, "k", AL_GGUF_UINT32, junk, 8), AL_ERR_FORMAT); /* wrong span */
    CHECK_ERR(al_gguf_writer_remove(w, "absent"), AL_ERR_NOT_FOUND);
    CHECK_OK(al_gguf_writer_set_u32(w, "general.alignment", 48));
    CHECK_ERR(al_gguf_writer_write(w, "test_gguf_never.gguf"), AL_ERR_INVALID);
    CHECK_OK(al_gguf_writer_set_u64(w, "general.alignment", 64));
    CHECK_ERR(al_gguf_writer_write(w, "test_gguf_never.gguf"), AL_ERR_INVALID);
    CHECK_OK(al_gguf_writer_remove(w, "general.alignment"));
    CHECK_ERR(al_gguf_writer_write(w, "/nonexistent-dir/x.gguf"), AL_ERR_IO);
    al_gguf_writer_free(w);
    al_gguf_writer_free(NULL);
    al_gguf_free(NULL);
    al_gguf *g = NULL;
    CHECK_ERR(al_gguf_open(&g, "/nonexistent-dir/x.gguf"), AL_ERR_NOT_FOUND);
    CHECK(g == NULL);
}

/* ---- the real llama.cpp file ------------------------------------------------------------------ */

static void test_real_file(void) {
    const char *path = al_test_path("gguf/qt-Q4_K.gguf");
    struct stat st;
    REQUIRE(stat(path, &st) == 0);
    al_gguf *g = NULL;
    REQUIRE_OK(al_gguf_open(&g, path));
    /* reference values: the header as llama.cpp wrote it (read with an independent Python script) */
    CHECK(al_gguf_version(g) == 3);
    CHECK(al_gguf_kv_count(g) == 23);
    CHECK(al_gguf_tensor_count(g) == 13);
    CHECK(al_gguf_alignment(g) == 32);
    CHECK(al_gguf_data_offset(g) == 21632);
    CHECK(al_gguf_file_size(g) == (size_t)st.st_size);
    al_str s;
    uint32_t u;
    float f;
    CHECK(al_gguf_get_str(g, "general.architecture", &s) && str_eq(s, "qwen3"));
    CHECK(al_gguf_get_str(g, "tokenizer.ggml.model", &s) && str_eq(s, "gpt2"));
    CHECK(al_gguf_get_u32(g, "qwen3.context_length", &u) && u == 32768);
    CHECK(al_gguf_get_u32(g, "qwen3.embedding_length", &u) && u == 256);
    CHECK(al_gguf_get_u32(g, "qwen3.attention.head_count_kv", &u) && u == 2);
    CHECK(al_gguf_get_u32(g, "general.file_type", &u) && u == 15);
    CHECK(al_gguf_get_f32(g, "qwen3.rope.freq_base", &f) && f == 1000000.0f);
    CHECK(al_gguf_get_f32(g, "qwen3.attention.layer_norm_rms_epsilon", &f) && f == 9.999999974752427e-07f);
    al_gguf_value v, e;
    REQUIRE(al_gguf_get_arr(g, "tokenizer.ggml.tokens", &v));
    CHECK(v.elem_type == AL_GGUF_STRING && v.count == 1024);
    e = al_gguf_arr_at(&v, 0);
    CHECK(str_eq(al_gguf_value_str(&e), "<0x00>"));
    e = al_gguf_arr_at(&v, 255);
    CHECK(str_eq(al_gguf_value_str(&e), "<0xFF>"));
    REQUIRE(al_gguf_get_arr(g, "tokenizer.ggml.token_type", &v));
    CHECK(v.elem_type == AL_GGUF_INT32 && v.count == 1024);
    e = al_gguf_arr_at(&v, 0);
    CHECK(al_gguf_value_i64(&e) == 1);
    REQUIRE(al_gguf_get_arr(g, "tokenizer.ggml.merges", &v));
    e = al_gguf_arr_at(&v, 0);
    CHECK(v.count == 1 && str_eq(al_gguf_value_str(&e), "<0x20> <0x20>"));

    static const struct { const char *name; int ndim; int64_t ne0, ne1; al_type type; uint64_t off; } want[] = {
        {"output_norm.weight", 1, 256, 1, AL_TYPE_F32, 0},
        {"token_embd.weight", 2, 256, 1024, AL_TYPE_Q4_K, 1024},
        {"blk.0.attn_k.weight", 2, 256, 128, AL_TYPE_Q4_K, 148480},
        {"blk.0.attn_q_norm.weight", 1, 64, 1, AL_TYPE_F32, 241920},
        {"blk.0.ffn_down.weight", 2, 512, 256, AL_TYPE_Q4_K, 260608},
        {"blk.0.ffn_up.weight", 2, 256, 512, AL_TYPE_Q4_K, 409088},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int64_t k = al_gguf_find_tensor(g, want[i].name);
        CHECKF(k >= 0, "tensor %s missing", want[i].name);
        if (k < 0) continue;
        const al_gguf_tensor_info *t = al_gguf_tensor_info_at(g, k);
        CHECKF(t->ndim == want[i].ndim && t->ne[0] == want[i].ne0 && t->ne[1] == want[i].ne1 && t->type == want[i].type &&
                   t->offset == want[i].off,
               "tensor %s: ndim %d ne %lld x %lld type %d off %llu", want[i].name, t->ndim, (long long)t->ne[0],
               (long long)t->ne[1], (int)t->type, (unsigned long long)t->offset);
    }
    const al_gguf_tensor_info *up = al_gguf_tensor_info_at(g, al_gguf_find_tensor(g, "blk.0.ffn_up.weight"));
    CHECK(up && up->nbytes == 512 * (256 / 256) * 144);
    /* every tensor lies inside the file, and the last one ends exactly at its end */
    size_t max_end = 0;
    for (int64_t i = 0; i < al_gguf_tensor_count(g); i++) {
        const al_gguf_tensor_info *t = al_gguf_tensor_info_at(g, i);
        size_t end = al_gguf_data_offset(g) + t->offset + t->nbytes;
        CHECK(end <= (size_t)st.st_size);
        if (end > max_end) max_end = end;
    }
    CHECK(max_end == (size_t)st.st_size);
    walk_all(g);

    /* re-writing every KV and tensor in file order reproduces llama.cpp's bytes exactly */
    al_gguf_writer *w = NULL;
    CHECK_OK(al_gguf_writer_init(&w, NULL));
    for (int64_t i = 0; i < al_gguf_kv_count(g) && w; i++) CHECK_OK(al_gguf_writer_copy_kv(w, g, i));
    for (int64_t i = 0; i < al_gguf_tensor_count(g) && w; i++) {
        const al_gguf_tensor_info *t = al_gguf_tensor_info_at(g, i);
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        CHECK_OK(al_gguf_writer_add_tensor(w, name, t->type, t->ndim, t->ne, al_gguf_tensor_data(g, i)));
    }
    if (w) CHECK_OK(al_gguf_writer_write(w, "test_gguf_real_copy.gguf"));
    size_t n1 = 0, n2 = 0;
    uint8_t *a = al_test_read_file(path, &n1), *b = al_test_read_file("test_gguf_real_copy.gguf", &n2);
    CHECK(a && b && n1 == n2 && memcmp(a, b, n1) == 0);
    free(a);
    free(b);
    remove("test_gguf_real_copy.gguf");
    al_gguf_writer_free(w);
    al_gguf_free(g);
}

/* F16 tensor bytes against the reference dequantization shipped in /work/shared (skipped if absent). */
static void test_real_f16_data(void) {
    const char *gp = "/work/shared/quant/qt-F16.gguf", *rp = "/work/shared/quant/qt-F16.ffn_up.f32";
    struct stat st;
    if (stat(gp, &st) != 0 || stat(rp, &st) != 0) return;
    al_gguf *g = NULL;
    REQUIRE_OK(al_gguf_open(&g, gp));
    int64_t k = al_gguf_find_tensor(g, "blk.0.ffn_up.weight");
    const al_gguf_tensor_info *t = al_gguf_tensor_info_at(g, k);
    size_t n = 0;
    float *ref = al_test_read_file(rp, &n);
    CHECK(t && t->type == AL_TYPE_F16 && t->ne[0] == 256 && t->ne[1] == 512 && ref && n == 256 * 512 * 4);
    if (t && ref && t->type == AL_TYPE_F16 && n == 256 * 512 * 4) {
        const uint8_t *d = al_gguf_tensor_data(g, k);
        int bad = 0;
        for (size_t i = 0; i < 256 * 512; i++) {
            uint16_t h;
            memcpy(&h, d + 2 * i, 2);
            bad += al_f16_to_f32(h) != ref[i];
        }
        CHECK(bad == 0);
    }
    free(ref);
    al_gguf_free(g);
}

/* ---- hostile inputs ---------------------------------------------------------------------------- */

typedef struct base_opts {
    const char *kv_f_key;  /* key of the last KV ("f") */
    const char *t1_name;   /* name of the second tensor ("b.weight") */
    int deep_levels;       /* > 0: add KV "deep" with arrays nested this many levels */
} base_opts;

typedef struct base {
    uint8_t *p;
    size_t n;
    size_t version, n_tensors, n_kv;
    size_t key0_len, str0_len, align_type, align_val;
    size_t arr_type, arr_count, arr_str1_len;
    size_t nest_count, nest_inner_type, nest_inner_count, nest_inner_str0_len;
    size_t f_type;
    size_t t0_name_len, t0_ndim, t0_ne[4], t0_type, t0_offset;
    size_t t1_ne0, t1_type, t1_offset;
    size_t infos_end, data_start;
} base;

/* Valid file: 5 (or 6) KVs incl. strings, alignment, string array, nested array; two tensors:
 * "a.weight" F32 [32, 2, 1, 1] at 0 (256 bytes), "b.weight" Q8_0 [32] at 256 (34 bytes). */
static base make_base(base_opts o) {
    base r;
    memset(&r, 0, sizeof r);
    bb b = {0};
    bb_put(&b, "GGUF", 4);
    r.version = bb_u32(&b, 3);
    r.n_tensors = bb_u64(&b, 2);
    r.n_kv = bb_u64(&b, o.deep_levels > 0 ? 6 : 5);
    r.key0_len = bb_str(&b, "general.architecture");
    bb_u32(&b, AL_GGUF_STRING);
    r.str0_len = bb_str(&b, "qwen3");
    bb_str(&b, "general.alignment");
    r.align_type = bb_u32(&b, AL_GGUF_UINT32);
    r.align_val = bb_u32(&b, 32);
    bb_str(&b, "tokenizer.ggml.tokens");
    bb_u32(&b, AL_GGUF_ARRAY);
    r.arr_type = bb_u32(&b, AL_GGUF_STRING);
    r.arr_count = bb_u64(&b, 3);
    bb_str(&b, "x");
    r.arr_str1_len = bb_str(&b, "yy");
    bb_str(&b, "zzz");
    bb_str(&b, "nested");
    bb_u32(&b, AL_GGUF_ARRAY);
    bb_u32(&b, AL_GGUF_ARRAY);
    r.nest_count = bb_u64(&b, 2);
    r.nest_inner_type = bb_u32(&b, AL_GGUF_STRING);
    r.nest_inner_count = bb_u64(&b, 2);
    r.nest_inner_str0_len = bb_str(&b, "a");
    bb_str(&b, "bc");
    bb_u32(&b, AL_GGUF_UINT16);
    bb_u64(&b, 1);
    bb_put(&b, "\x05\x00", 2);
    bb_str(&b, o.kv_f_key ? o.kv_f_key : "f");
    r.f_type = bb_u32(&b, AL_GGUF_FLOAT32);
    float fv = 1.5f;
    bb_put(&b, &fv, 4);
    if (o.deep_levels > 0) {
        bb_str(&b, "deep");
        bb_u32(&b, AL_GGUF_ARRAY);
        for (int l = 1; l < o.deep_levels; l++) {
            bb_u32(&b, AL_GGUF_ARRAY);
            bb_u64(&b, 1);
        }
        bb_u32(&b, AL_GGUF_UINT8);
        bb_u64(&b, 1);
        bb_put(&b, "\x2a", 1);
    }
    r.t0_name_len = bb_str(&b, "a.weight");
    r.t0_ndim = bb_u32(&b, 4);
    const uint64_t ne0[4] = {32, 2, 1, 1};
    for (int d = 0; d < 4; d++) r.t0_ne[d] = bb_u64(&b, ne0[d]);
    r.t0_type = bb_u32(&b, AL_TYPE_F32);
    r.t0_offset = bb_u64(&b, 0);
    bb_str(&b, o.t1_name ? o.t1_name : "b.weight");
    bb_u32(&b, 1);
    r.t1_ne0 = bb_u64(&b, 32);
    r.t1_type = bb_u32(&b, AL_TYPE_Q8_0);
    r.t1_offset = bb_u64(&b, 256);
    r.infos_end = b.n;
    bb_pad(&b, 32);
    r.data_start = b.n;
    for (int i = 0; i < 256 + 34; i++) {
        uint8_t x = (uint8_t)(i * 7 + 3);
        bb_put(&b, &x, 1);
    }
    bb_pad(&b, 32);
    r.p = b.p;
    r.n = b.n;
    return r;
}

/* Parses buf; expects AL_ERR_FORMAT with `needle` in the message. */
static void expect_format(const char *what, const uint8_t *p, size_t n, const char *needle, int line) {
    uint8_t *copy = malloc(n ? n : 1); /* exact size, so ASan catches any over-read */
    memcpy(copy, p, n);
    al_gguf *g = NULL;
    al_status s = al_gguf_parse(&g, copy, n);
    if (s.code != AL_ERR_FORMAT)
        al_test_fail(__FILE__, line, "%s: want format error, got %s (%s)", what, al_code_name(s.code), s.msg);
    else if (needle && !strstr(s.msg, needle))
        al_test_fail(__FILE__, line, "%s: message '%s' lacks '%s'", what, s.msg, needle);
    if (g) al_test_fail(__FILE__, line, "%s: reader returned on failure", what);
    al_gguf_free(g);
    free(copy);
}

#define HOSTILE_U32(field, val, needle)                                                                               \
    do {                                                                                                             \
        base b_ = make_base((base_opts){0});                                                                         \
        patch_u32(b_.p, b_.field, (val));                                                                            \
        expect_format(#field "=" #val, b_.p, b_.n, needle, __LINE__);                                                \
        free(b_.p);                                                                                                  \
    } while (0)
#define HOSTILE_U64(field, val, needle)                                                                               \
    do {                                                                                                             \
        base b_ = make_base((base_opts){0});                                                                         \
        patch_u64(b_.p, b_.field, (val));                                                                            \
        expect_format(#field "=" #val, b_.p, b_.n, needle, __LINE__);                                                \
        free(b_.p);                                                                                                  \
    } while (0)

static void test_base_valid(void) {
    base b = make_base((base_opts){0});
    al_gguf *g = NULL;
    REQUIRE_OK(al_gguf_parse(&g, b.p, b.n));
    CHECK(al_gguf_kv_count(g) == 5 && al_gguf_tensor_count(g) == 2);
    CHECK(al_gguf_data_offset(g) == b.data_start);
    al_gguf_value v, e, e2;
    CHECK(al_gguf_get_arr(g, "nested", &v) && v.count == 2);
    e = al_gguf_arr_at(&v, 0);
    e2 = al_gguf_arr_at(&e, 1);
    CHECK(str_eq(al_gguf_value_str(&e2), "bc"));
    e = al_gguf_arr_at(&v, 1);
    e2 = al_gguf_arr_at(&e, 0);
    CHECK(e.elem_type == AL_GGUF_UINT16 && al_gguf_value_i64(&e2) == 5);
    walk_all(g);
    al_gguf_free(g);
    /* version 2 is accepted too */
    patch_u32(b.p, b.version, 2);
    CHECK_OK(al_gguf_parse(&g, b.p, b.n));
    al_gguf_free(g);
    g = NULL;
    /* no tensors and no padding after the header (as llama.cpp's vocab-only files are): valid */
    bb v0 = {0};
    bb_put(&v0, "GGUF", 4);
    bb_u32(&v0, 3);
    bb_u64(&v0, 0);
    bb_u64(&v0, 1);
    bb_str(&v0, "k");
    bb_u32(&v0, AL_GGUF_UINT8);
    bb_put(&v0, "\x07", 1);
    CHECK_OK(al_gguf_parse(&g, v0.p, v0.n));
    CHECK(g && al_gguf_tensor_count(g) == 0 && al_gguf_kv_count(g) == 1);
    al_gguf_free(g);
    g = NULL;
    free(v0.p);
    /* 8 nested levels are fine, 9 are not */
    base d = make_base((base_opts){.deep_levels = 8});
    CHECK_OK(al_gguf_parse(&g, d.p, d.n));
    if (g) walk_all(g);
    al_gguf_free(g);
    free(d.p);
    free(b.p);
}

static void test_hostile_header(void) {
    HOSTILE_U32(version, 1, "version 1");
    HOSTILE_U32(version, 0, "version");
    HOSTILE_U32(version, 4, "version");
    HOSTILE_U32(version, 0x03000000, "big-endian");
    base b = make_base((base_opts){0});
    b.p[0] = 'X';
    expect_format("bad magic", b.p, b.n, "magic", __LINE__);
    expect_format("empty", b.p, 0, "truncated", __LINE__);
    memcpy(b.p, "GGUF", 4);
    expect_format("magic only", b.p, 4, "truncated", __LINE__);
    expect_format("half header", b.p, 12, "truncated", __LINE__);
    free(b.p);
    HOSTILE_U64(n_kv, UINT64_MAX, "absurd kv count");
    HOSTILE_U64(n_kv, 1ull << 40, "absurd kv count");
    HOSTILE_U64(n_tensors, UINT64_MAX, "absurd tensor count");
    HOSTILE_U64(n_tensors, 1000, "absurd tensor count");
}

/* Every proper prefix of a valid file is refused: header, KVs, strings, arrays, infos, data. */
static void test_hostile_truncation(void) {
    base b = make_base((base_opts){0});
    size_t last_data_end = b.data_start + 256 + 34;
    for (size_t n = 0; n < last_data_end; n++) {
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu bytes", n);
        expect_format(what, b.p, n, NULL, __LINE__);
    }
    /* data present but the end padding missing: still valid (nothing is read there) */
    al_gguf *g = NULL;
    CHECK_OK(al_gguf_parse(&g, b.p, last_data_end));
    al_gguf_free(g);
    expect_format("truncated key", b.p, b.key0_len + 10, "truncated", __LINE__);
    expect_format("truncated infos", b.p, b.t0_ne[2], "truncated", __LINE__);
    expect_format("truncated data", b.p, b.data_start + 100, "past the end", __LINE__);
    free(b.p);
}

static void test_hostile_lengths(void) {
    HOSTILE_U64(key0_len, 1ull << 40, "exceeds");
    HOSTILE_U64(key0_len, UINT64_MAX, "exceeds");
    HOSTILE_U64(str0_len, UINT64_MAX - 3, "exceeds");
    HOSTILE_U64(str0_len, 10000, "exceeds");
    HOSTILE_U64(arr_count, 1ull << 60, "array count");
    HOSTILE_U64(arr_count, UINT64_MAX, "array count");
    HOSTILE_U64(arr_count, 100, "exceeds"); /* fits the bound, runs out while reading */
    HOSTILE_U64(arr_str1_len, 1ull << 33, "exceeds");
    HOSTILE_U64(nest_count, 1ull << 62, "array count");
    HOSTILE_U64(nest_inner_count, 1ull << 58, "array count");
    HOSTILE_U64(nest_inner_str0_len, UINT64_MAX, "exceeds");
    HOSTILE_U64(t0_name_len, 1ull << 50, "exceeds");
}

static void test_hostile_types(void) {
    HOSTILE_U32(f_type, 13, "unknown value type");
    HOSTILE_U32(f_type, 0xffffffffu, "unknown value type");
    HOSTILE_U32(arr_type, 13, "unknown element type");
    HOSTILE_U32(nest_inner_type, 99, "unknown element type");
    HOSTILE_U32(t0_type, 4, "unknown type"); /* removed Q4_2 */
    HOSTILE_U32(t0_type, 39, "unknown type");
    HOSTILE_U32(t0_type, 1000, "unknown type");
    HOSTILE_U32(align_type, AL_GGUF_INT32, "general.alignment");
    HOSTILE_U32(align_val, 0, "power of two");
    HOSTILE_U32(align_val, 48, "power of two");
    HOSTILE_U32(align_val, 3, "power of two");
}

static void test_hostile_dims(void) {
    HOSTILE_U32(t0_ndim, 0, "n_dims");
    HOSTILE_U32(t0_ndim, 5, "n_dims");
    HOSTILE_U32(t0_ndim, 0xffffffffu, "n_dims");
    HOSTILE_U64(t0_ne[0], 0, "not positive");
    HOSTILE_U64(t0_ne[1], 0, "not positive");
    HOSTILE_U64(t0_ne[3], UINT64_MAX, "not positive"); /* -1 */
    HOSTILE_U64(t0_ne[2], 1ull << 63, "not positive");
    HOSTILE_U64(t1_ne0, 33, "block size");
    HOSTILE_U64(t1_ne0, 16, "block size");
    /* element count overflows int64 */
    base b = make_base((base_opts){0});
    patch_u64(b.p, b.t0_ne[1], 1ull << 32);
    patch_u64(b.p, b.t0_ne[2], 1ull << 32);
    expect_format("int64 overflow", b.p, b.n, "overflows", __LINE__);
    /* element count fits int64, byte size overflows size_t: 2^62 F32 elements */
    patch_u64(b.p, b.t0_ne[0], 1ull << 62);
    patch_u64(b.p, b.t0_ne[1], 1);
    patch_u64(b.p, b.t0_ne[2], 1);
    expect_format("size_t overflow", b.p, b.n, "overflows", __LINE__);
    /* huge but representable: runs past the end of the data */
    patch_u64(b.p, b.t0_ne[0], 1ull << 40);
    expect_format("huge tensor", b.p, b.n, "past the end", __LINE__);
    free(b.p);
}

static void test_hostile_offsets(void) {
    HOSTILE_U64(t1_offset, 257, "not a multiple of the alignment");
    HOSTILE_U64(t1_offset, 1ull << 20, "past the end");
    HOSTILE_U64(t1_offset, UINT64_MAX - 31, "past the end");
    HOSTILE_U64(t1_offset, 288, "past the end"); /* 288 + 34 > 320 bytes of data */
    HOSTILE_U64(t1_offset, 0, "overlaps");
    HOSTILE_U64(t1_offset, 224, "overlaps");
    HOSTILE_U64(t0_offset, 32, "overlaps");
    /* a larger alignment moves the data section start past what the file holds */
    HOSTILE_U32(align_val, 1u << 20, "alignment");
}

static void test_hostile_duplicates_depth(void) {
    base b = make_base((base_opts){.kv_f_key = "nested"});
    expect_format("duplicate key", b.p, b.n, "duplicate key 'nested'", __LINE__);
    free(b.p);
    b = make_base((base_opts){.kv_f_key = ""});
    expect_format("empty key", b.p, b.n, "empty key", __LINE__);
    free(b.p);
    b = make_base((base_opts){.t1_name = "a.weight"});
    expect_format("duplicate tensor", b.p, b.n, "duplicate tensor name 'a.weight'", __LINE__);
    free(b.p);
    b = make_base((base_opts){.deep_levels = 9});
    expect_format("depth 9", b.p, b.n, "nested deeper", __LINE__);
    free(b.p);
    b = make_base((base_opts){.deep_levels = 5000});
    expect_format("depth 5000", b.p, b.n, "nested deeper", __LINE__);
    free(b.p);
}

/* Deterministic random mutations of the valid file: every result is OK or a format error. */
static void test_hostile_mutations(void) {
    base b = make_base((base_opts){.deep_levels = 3});
    uint64_t st = 0x9e3779b97f4a7c15ull;
    int ok = 0, bad = 0;
    uint8_t *m = malloc(b.n);
    for (int it = 0; it < 20000; it++) {
        memcpy(m, b.p, b.n);
        int nm = 1 + (int)(st % 4);
        for (int k = 0; k < nm; k++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            size_t at = (size_t)(st >> 33) % b.n;
            uint8_t v = (uint8_t)(st >> 17);
            if ((st >> 60) & 1) v = (st >> 61) & 1 ? 0xff : 0;
            m[at] = v;
        }
        size_t n = (st >> 5) % 8 == 0 ? (size_t)(st >> 40) % b.n : b.n;
        uint8_t *c = malloc(n ? n : 1);
        memcpy(c, m, n);
        al_gguf *g = NULL;
        al_status s = al_gguf_parse(&g, c, n);
        if (s.code == AL_OK) {
            ok++;
            walk_all(g);
        } else {
            bad++;
            CHECKF(s.code == AL_ERR_FORMAT, "mutation %d: %s", it, s.msg);
        }
        al_gguf_free(g);
        free(c);
    }
    CHECK(ok > 0 && bad > 0);
    free(m);
    free(b.p);
}

/* Writes the small seed files of fuzz/corpus/gguf when ALLOY_WRITE_CORPUS names a directory. */
static void write_corpus(void) {
    const char *dir = getenv("ALLOY_WRITE_CORPUS");
    if (!dir) return;
    char path[4096];
    base b = make_base((base_opts){.deep_levels = 3});
    snprintf(path, sizeof path, "%s/base.gguf", dir);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(b.p, 1, b.n, f);
        fclose(f);
    }
    free(b.p);
    for (int i = 0; i < N_RT; i++) {
        size_t n = spec_nbytes(&rt_tensors[i]);
        rt_data[i] = malloc(n);
        for (size_t j = 0; j < n; j++) rt_data[i][j] = (uint8_t)(j * 13 + 5);
    }
    al_gguf_writer *w = NULL;
    if (!al_gguf_writer_init(&w, NULL).code) {
        snprintf(path, sizeof path, "%s/all_types.gguf", dir);
        if (!build_writer(w, 0).code) CHECK_OK(al_gguf_writer_write(w, path));
        al_gguf_writer_free(w);
    }
    if (!al_gguf_writer_init(&w, NULL).code) {
        snprintf(path, sizeof path, "%s/kv_only.gguf", dir);
        const char *toks[] = {"<s>", "</s>", "hi"};
        CHECK_OK(al_gguf_writer_set_str(w, "general.architecture", "llama"));
        CHECK_OK(al_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 3));
        CHECK_OK(al_gguf_writer_write(w, path));
        al_gguf_writer_free(w);
    }
    for (int i = 0; i < N_RT; i++) free(rt_data[i]);
}

int main(void) {
    AL_RUN(test_round_trip);
    AL_RUN(test_round_trip_align64);
    AL_RUN(test_writer_errors);
    AL_RUN(test_real_file);
    AL_RUN(test_real_f16_data);
    AL_RUN(test_base_valid);
    AL_RUN(test_hostile_header);
    AL_RUN(test_hostile_truncation);
    AL_RUN(test_hostile_lengths);
    AL_RUN(test_hostile_types);
    AL_RUN(test_hostile_dims);
    AL_RUN(test_hostile_offsets);
    AL_RUN(test_hostile_duplicates_depth);
    AL_RUN(test_hostile_mutations);
    write_corpus();
    return al_test_finish();
}
