/* test_safetensors.c — safetensors reader and Hugging Face folders.
 *
 * Reference: tests/data/hf/st_summary.txt, written by st_summary.py (python json + struct) from the
 * six reference model folders: tensor counts, names, shapes, offsets, first value and sum. */
#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloy/safetensors.h"
#include "harness.h"

/* ---- helpers ---- */

/* 8-byte length + header + data_size zero bytes (malloc'd). */
static uint8_t *mk_buf(const char *header, size_t data_size, size_t *size) {
    size_t hl = strlen(header);
    *size = 8 + hl + data_size;
    uint8_t *b = calloc(1, *size);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, header, hl);
    return b;
}

static bool write_file(const char *path, const void *data, size_t size) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return false;
    bool ok = fwrite(data, 1, size, fp) == size;
    return fclose(fp) == 0 && ok;
}

static char *join(const char *dir, const char *name) {
    static char buf[2][512];
    static int k;
    k ^= 1;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static bool copy_file(const char *from, const char *to) {
    size_t n;
    void *d = al_test_read_file(from, &n);
    bool ok = d && write_file(to, d, n);
    free(d);
    return ok;
}

static void rm_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlink(join(dir, e->d_name));
    closedir(d);
    rmdir(dir);
}

/* Writes a safetensors file holding tensors[idx[0..n)] of src (same dtype, shape and bytes). */
static bool write_subset(const char *path, const al_st_file *src, const int64_t *idx, int n) {
    size_t cap = 1 << 16, len = 0, off = 0;
    char *h = malloc(cap);
    len += (size_t)snprintf(h + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        const al_st_tensor *t = al_st_at(src, idx[i]);
        len += (size_t)snprintf(h + len, cap - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name, t->dtype);
        for (int d = 0; d < t->ndim; d++) len += (size_t)snprintf(h + len, cap - len, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        len += (size_t)snprintf(h + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", off, off + t->nbytes);
        off += t->nbytes;
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    while (len % 8) h[len++] = ' '; /* header padded with spaces, as the python writer does */
    h[len] = 0;
    if (len >= cap - 1) { free(h); return false; }
    size_t size;
    uint8_t *b = mk_buf(h, off, &size);
    uint8_t *p = b + 8 + len;
    for (int i = 0; i < n; i++) {
        const al_st_tensor *t = al_st_at(src, idx[i]);
        memcpy(p, t->data, t->nbytes);
        p += t->nbytes;
    }
    bool ok = write_file(path, b, size);
    free(b);
    free(h);
    return ok;
}

/* ---- the reference folders ---- */

static void test_reference_models(void) {
    size_t sz;
    char *txt = al_test_read_file(al_test_path("hf/st_summary.txt"), &sz);
    REQUIRE(txt);
    char *save = NULL;
    al_hf *h = NULL;
    uint8_t *raw = NULL; /* the model file read with plain stdio */
    size_t raw_size = 0, data_start = 0;
    int models = 0, tensors = 0, idx = 0;
    for (char *line = strtok_r(txt, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char kind[16], arch[32], name[160], dtype[16];
        long long count, vocab, hidden;
        if (sscanf(line, "model %31s %lld %lld %lld", arch, &count, &vocab, &hidden) == 4) {
            al_hf_free(h);
            free(raw);
            h = NULL;
            idx = 0;
            char rel[64];
            snprintf(rel, sizeof rel, "hf/%s", arch);
            al_status s = al_hf_open(&h, al_test_path(rel));
            CHECKF(s.code == AL_OK, "%s: %s", arch, s.msg);
            if (s.code) break;
            models++;
            CHECKF(al_hf_tensor_count(h) == count, "%s: %lld tensors, python says %lld", arch,
                   (long long)al_hf_tensor_count(h), count);
            json_t *cfg = al_hf_config(h);
            CHECK(json_integer_value(json_object_get(cfg, "vocab_size")) == vocab);
            CHECK(json_integer_value(json_object_get(cfg, "hidden_size")) == hidden);
            CHECK(strcmp(al_hf_dir(h), al_test_path(rel)) == 0);
            /* the embedding is [vocab][hidden] under one of its usual names */
            const al_st_tensor *emb = al_hf_find(h, "model.embed_tokens.weight");
            if (!emb) emb = al_hf_find(h, "backbone.embeddings.weight");
            CHECKF(emb, "%s: no embedding", arch);
            if (emb) {
                CHECK(emb->ndim == 2 && emb->shape[0] == vocab && emb->shape[1] == hidden);
                CHECK(emb->ne[0] == hidden && emb->ne[1] == vocab && emb->ne[2] == 1);
            }
            CHECK(al_hf_find(h, "no.such.tensor") == NULL);
            CHECK(al_hf_tensor_at(h, -1) == NULL && al_hf_tensor_at(h, count) == NULL);
            raw = al_test_read_file(al_test_path(strcat(rel, "/model.safetensors")), &raw_size);
            REQUIRE(raw && raw_size >= 8);
            uint64_t hl = 0;
            for (int i = 7; i >= 0; i--) hl = hl << 8 | raw[i];
            data_start = 8 + (size_t)hl;
            /* metadata through a standalone al_st_open of the same file */
            al_st_file *f;
            REQUIRE_OK(al_st_open(&f, al_test_path(rel)));
            CHECK(al_st_metadata(f, "format") && strcmp(al_st_metadata(f, "format"), "pt") == 0);
            CHECK(al_st_metadata(f, "nope") == NULL);
            CHECK(al_st_count(f) == count);
            al_st_free(f);
            continue;
        }
        REQUIRE(h);
        int ndim, nread = 0;
        long long dims[4] = {0}, begin, nbytes;
        double first, sum;
        if (sscanf(line, "%15s %31s %159s %15s %d%n", kind, arch, name, dtype, &ndim, &nread) != 5 || ndim > 4) {
            CHECKF(0, "bad summary line: %s", line);
            continue;
        }
        const char *p = line + nread;
        int adv;
        for (int d = 0; d < ndim; d++) {
            sscanf(p, "%lld%n", &dims[d], &adv);
            p += adv;
        }
        REQUIRE(sscanf(p, "%lld %lld %lf %lf", &begin, &nbytes, &first, &sum) == 4);
        tensors++;
        const al_st_tensor *t = al_hf_find(h, name);
        CHECKF(t, "%s: tensor %s not found", arch, name);
        if (!t) continue;
        CHECKF(al_hf_tensor_at(h, idx) == t, "%s: tensor %d is not %s (data-offset order)", arch, idx, name);
        idx++;
        CHECK(strcmp(t->name, name) == 0);
        CHECK(strcmp(t->dtype, dtype) == 0 && t->type == AL_TYPE_F32);
        CHECKF(t->ndim == ndim, "%s: ndim %d want %d", name, t->ndim, ndim);
        for (int d = 0; d < ndim; d++) {
            CHECKF(t->shape[d] == dims[d], "%s: shape[%d] = %lld want %lld", name, d, (long long)t->shape[d], dims[d]);
            CHECK(t->ne[ndim - 1 - d] == dims[d]);
        }
        CHECK((long long)t->nbytes == nbytes);
        REQUIRE(data_start + (size_t)begin + (size_t)nbytes <= raw_size);
        size_t n = (size_t)nbytes / 4;
        float *v = malloc(n * 4 + 4);
        CHECK_OK(al_st_to_f32(t, v));
        CHECKF(memcmp(v, raw + data_start + begin, n * 4) == 0, "%s: converted data differs from the file bytes", name);
        CHECKF(v[0] == (float)first, "%s: first %g want %g", name, v[0], first);
        double s = 0;
        for (size_t i = 0; i < n; i++) s += v[i];
        CHECK_NEAR(s, sum, 1e-9 * (1 + fabs(sum)));
        free(v);
    }
    al_hf_free(h);
    free(raw);
    free(txt);
    CHECK(models == 6);
    CHECK(tensors == 233);
}

/* ---- sharded folders, written here ---- */

static void test_sharded(void) {
    char dir[] = "/tmp/alloy_st_XXXXXX";
    REQUIRE(mkdtemp(dir));
    al_st_file *src;
    REQUIRE_OK(al_st_open(&src, al_test_path("hf/llama/model.safetensors")));
    int64_t n = al_st_count(src);
    REQUIRE(n > 4 && n < 256);
    int64_t a[256], b[256];
    int na = 0, nb = 0;
    for (int64_t i = 0; i < n; i++) {
        if (i % 2) b[nb++] = i;
        else a[na++] = i;
    }
    REQUIRE(copy_file(al_test_path("hf/llama/config.json"), join(dir, "config.json")));
    REQUIRE(write_subset(join(dir, "model-00001-of-00002.safetensors"), src, a, na));
    REQUIRE(write_subset(join(dir, "model-00002-of-00002.safetensors"), src, b, nb));

    /* index.json: weight_map from every name to its shard */
    json_t *wm = json_object();
    for (int64_t i = 0; i < n; i++)
        json_object_set_new(wm, al_st_at(src, i)->name,
                            json_string(i % 2 ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors"));
    json_t *idx = json_pack("{s:{s:i}, s:o}", "metadata", "total_size", 0, "weight_map", wm);
    const char *index_path = join(dir, "model.safetensors.index.json");
    REQUIRE(json_dump_file(idx, index_path, 0) == 0);

    al_hf *h;
    REQUIRE_OK(al_hf_open(&h, dir));
    CHECK(al_hf_tensor_count(h) == n);
    for (int64_t i = 0; i < n; i++) {
        const al_st_tensor *want = al_st_at(src, i), *got = al_hf_find(h, want->name);
        CHECKF(got, "%s missing from the sharded folder", want->name);
        if (!got) continue;
        CHECK(got != want && got->type == want->type && got->ndim == want->ndim);
        CHECK(memcmp(got->shape, want->shape, sizeof got->shape) == 0);
        CHECK(got->nbytes == want->nbytes && memcmp(got->data, want->data, want->nbytes) == 0);
    }
    CHECK(json_integer_value(json_object_get(al_hf_config(h), "vocab_size")) == 512);
    al_hf_free(h);

    /* a name listed in the index that its shard lacks */
    json_object_set_new(wm, "model.ghost.weight", json_string("model-00001-of-00002.safetensors"));
    REQUIRE(json_dump_file(idx, index_path, 0) == 0);
    al_status s = al_hf_open(&h, dir);
    CHECKF(s.code == AL_ERR_FORMAT && strstr(s.msg, "model.ghost.weight"), "%s", s.msg);
    CHECK(h == NULL);
    json_object_del(wm, "model.ghost.weight");

    /* a name in the index pointing at the wrong shard */
    const char *n0 = al_st_at(src, 0)->name;
    json_object_set_new(wm, n0, json_string("model-00002-of-00002.safetensors"));
    REQUIRE(json_dump_file(idx, index_path, 0) == 0);
    s = al_hf_open(&h, dir);
    CHECKF(s.code == AL_ERR_FORMAT && strstr(s.msg, "absent"), "%s", s.msg);
    json_object_set_new(wm, n0, json_string("model-00001-of-00002.safetensors"));

    /* shard names escaping the folder */
    static const char *const evil[] = {"../llama/model.safetensors", "sub/model.safetensors", "..", "/etc/passwd", ""};
    for (size_t i = 0; i < sizeof evil / sizeof evil[0]; i++) {
        json_object_set_new(wm, n0, json_string(evil[i]));
        REQUIRE(json_dump_file(idx, index_path, 0) == 0);
        s = al_hf_open(&h, dir);
        CHECKF(s.code == AL_ERR_FORMAT && strstr(s.msg, "plain file name"), "shard '%s': %s", evil[i], s.msg);
    }
    json_object_set_new(wm, n0, json_string("model-00001-of-00002.safetensors"));

    /* a missing shard file */
    json_object_set_new(wm, n0, json_string("model-00003-of-00002.safetensors"));
    REQUIRE(json_dump_file(idx, index_path, 0) == 0);
    s = al_hf_open(&h, dir);
    CHECKF(s.code == AL_ERR_NOT_FOUND && strstr(s.msg, "model-00003-of-00002.safetensors"), "%s", s.msg);
    json_object_set_new(wm, n0, json_string("model-00001-of-00002.safetensors"));

    /* the same tensor in two shards */
    int64_t dup[2] = {a[0], b[0]};
    REQUIRE(write_subset(join(dir, "model-00002-of-00002.safetensors"), src, dup, 2));
    REQUIRE(json_dump_file(idx, index_path, 0) == 0);
    s = al_hf_open(&h, dir);
    CHECKF(s.code == AL_ERR_FORMAT, "%s", s.msg);

    /* index without weight_map; index that is not JSON */
    json_t *bad = json_pack("{s:{}}", "metadata");
    REQUIRE(json_dump_file(bad, index_path, 0) == 0);
    json_decref(bad);
    s = al_hf_open(&h, dir);
    CHECKF(s.code == AL_ERR_FORMAT && strstr(s.msg, "weight_map"), "%s", s.msg);
    REQUIRE(write_file(index_path, "{\"weight_map\": ", 15));
    s = al_hf_open(&h, dir);
    CHECKF(s.code == AL_ERR_FORMAT && strstr(s.msg, "JSON"), "%s", s.msg);

    /* no index and no model.safetensors; then no config.json */
    unlink(index_path);
    s = al_hf_open(&h, dir);
    CHECKF(s.code == AL_ERR_NOT_FOUND && strstr(s.msg, "model.safetensors"), "%s", s.msg);
    unlink(join(dir, "config.json"));
    s = al_hf_open(&h, dir);
    CHECKF(s.code == AL_ERR_NOT_FOUND && strstr(s.msg, "config.json"), "%s", s.msg);
    s = al_hf_open(&h, join(dir, "not-there"));
    CHECK(s.code == AL_ERR_NOT_FOUND);

    json_decref(idx);
    al_st_free(src);
    rm_tree(dir);
    al_hf_free(NULL);
}

/* ---- half-precision files, written here ---- */

static void test_half_dtypes(void) {
    static const uint16_t bf[6] = {0x3f80, 0x4049, 0xc000, 0x7f80, 0x0001, 0xbf00};
    static const float bf_want[6] = {1.0f, 3.140625f, -2.0f, INFINITY, 9.18354962e-41f, -0.5f};
    static const uint16_t hf[6] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x3555, 0xfc00};
    static const float hf_want[6] = {1.0f, -2.0f, 65504.0f, 5.96046448e-08f, 0.333251953f, -INFINITY};
    const char *hdr = "{\"bf\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
                      "\"hf\":{\"dtype\":\"F16\",\"shape\":[6],\"data_offsets\":[12,24]},"
                      "\"ids\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[24,32]},"
                      "\"odd\":{\"dtype\":\"F8_E4M3FN_X\",\"shape\":[3],\"data_offsets\":[32,35]},"
                      "\"sc\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[36,40]},"
                      "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[40,40]}}";
    size_t size;
    uint8_t *b = mk_buf(hdr, 40, &size);
    uint8_t *d = b + 8 + strlen(hdr);
    for (int i = 0; i < 6; i++) {
        d[2 * i] = (uint8_t)bf[i], d[2 * i + 1] = (uint8_t)(bf[i] >> 8);
        d[12 + 2 * i] = (uint8_t)hf[i], d[12 + 2 * i + 1] = (uint8_t)(hf[i] >> 8);
    }
    float two = 2.5f;
    memcpy(d + 36, &two, 4);
    char path[] = "/tmp/alloy_st_half_XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    REQUIRE(write_file(path, b, size));
    free(b);

    al_st_file *f;
    REQUIRE_OK(al_st_open(&f, path));
    CHECK(al_st_count(f) == 6);
    const al_st_tensor *t = al_st_find(f, "bf");
    REQUIRE(t && t->type == AL_TYPE_BF16 && strcmp(t->dtype, "BF16") == 0);
    CHECK(t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->ne[0] == 3 && t->ne[1] == 2);
    float v[6];
    REQUIRE_OK(al_st_to_f32(t, v));
    for (int i = 0; i < 6; i++) {
        CHECKF(v[i] == bf_want[i] && v[i] == al_bf16_to_f32(bf[i]), "bf16[%d] = %g want %g", i, v[i], bf_want[i]);
    }
    t = al_st_find(f, "hf");
    REQUIRE(t && t->type == AL_TYPE_F16);
    REQUIRE_OK(al_st_to_f32(t, v));
    for (int i = 0; i < 6; i++) {
        CHECKF(v[i] == hf_want[i] && v[i] == al_f16_to_f32(hf[i]), "f16[%d] = %g want %g", i, v[i], hf_want[i]);
    }
    /* listed, but refused when converted */
    t = al_st_find(f, "ids");
    REQUIRE(t && t->type == AL_TYPE_COUNT && strcmp(t->dtype, "I64") == 0 && t->nbytes == 8);
    CHECK_ERR(al_st_to_f32(t, v), AL_ERR_UNSUPPORTED);
    t = al_st_find(f, "odd");
    REQUIRE(t && t->type == AL_TYPE_COUNT && strcmp(t->dtype, "F8_E4M3") == 0 && t->nbytes == 3);
    CHECK_ERR(al_st_to_f32(t, v), AL_ERR_UNSUPPORTED);
    /* a 0-dim scalar and an empty tensor */
    t = al_st_find(f, "sc");
    REQUIRE(t && t->ndim == 0 && t->nbytes == 4 && t->ne[0] == 1);
    REQUIRE_OK(al_st_to_f32(t, v));
    CHECK(v[0] == 2.5f);
    t = al_st_find(f, "empty");
    REQUIRE(t && t->ndim == 2 && t->nbytes == 0 && t->ne[0] == 4 && t->ne[1] == 0);
    CHECK_OK(al_st_to_f32(t, v));
    CHECK(al_st_metadata(f, "format") == NULL);
    /* data-offset order */
    CHECK(strcmp(al_st_at(f, 0)->name, "bf") == 0 && strcmp(al_st_at(f, 5)->name, "empty") == 0);
    CHECK(al_st_at(f, 6) == NULL);
    al_st_free(f);
    unlink(path);
    al_st_free(NULL);
}

/* ---- hostile input ---- */

static void expect_bad(const char *what, const void *buf, size_t size, const char *needle) {
    al_st_file *f = (al_st_file *)&f; /* must come back NULL */
    al_status s = al_st_parse(&f, buf, size);
    CHECKF(s.code == AL_ERR_FORMAT, "%s: want format error, got %s (%s)", what, al_code_name(s.code), s.msg);
    CHECKF(f == NULL, "%s: out not cleared", what);
    CHECKF(s.msg[0] && (!needle || strstr(s.msg, needle)), "%s: message '%s' lacks '%s'", what, s.msg, needle);
}

static void expect_bad_header(const char *what, const char *header, size_t data_size, const char *needle) {
    size_t size;
    uint8_t *b = mk_buf(header, data_size, &size);
    expect_bad(what, b, size, needle);
    free(b);
}

#define T1(dt, shape, offs) "{\"t\":{\"dtype\":" dt ",\"shape\":" shape ",\"data_offsets\":" offs "}}"

static void test_bad_short(void) {
    uint8_t z[8] = {2, 0, 0, 0, 0, 0, 0, 0};
    for (size_t n = 0; n < 8; n++) expect_bad("short file", z, n, "shorter than");
}

static void test_bad_header_len(void) {
    uint8_t b[16] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    expect_bad("header past the end", b, sizeof b, "larger than");
    uint8_t huge[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
    expect_bad("header length 2^64-1", huge, sizeof huge, "limit");
    uint8_t big[16] = {0, 0, 0, 0x10, 0, 0, 0, 0, '{', '}'}; /* 256 MB */
    expect_bad("header length 256 MB", big, sizeof big, "limit");
    uint8_t zero[16] = {0};
    expect_bad("header length 0", zero, sizeof zero, "JSON");
}

static void test_bad_json(void) {
    expect_bad_header("truncated JSON", "{\"t\":{\"dtype\":\"F32\"", 0, "JSON");
    expect_bad_header("trailing garbage", "{} x", 0, "JSON");
    expect_bad_header("garbage", "{\x01\x02", 0, "JSON");
    expect_bad_header("duplicate tensor name",
                      "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                      "\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "JSON");
    expect_bad_header("huge integer", T1("\"F32\"", "[99999999999999999999999]", "[0,4]"), 4, "JSON");
}

static void test_bad_not_object(void) {
    expect_bad_header("array header", "[1, 2, 3]", 0, "not a JSON object");
    expect_bad_header("string header", "\"hello\"", 0, "not a JSON object");
    expect_bad_header("entry not object", "{\"t\": 3}", 0, "not an object");
}

static void test_bad_missing_fields(void) {
    expect_bad_header("missing dtype", "{\"t\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "missing dtype");
    expect_bad_header("missing shape", "{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "missing shape");
    expect_bad_header("missing offsets", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "missing data_offsets");
}

static void test_bad_field_types(void) {
    expect_bad_header("dtype number", T1("7", "[1]", "[0,4]"), 4, "dtype is not a string");
    expect_bad_header("shape object", T1("\"F32\"", "{}", "[0,4]"), 4, "shape is not an array");
    expect_bad_header("shape string dim", T1("\"F32\"", "[\"1\"]", "[0,4]"), 4, "not an integer");
    expect_bad_header("shape float dim", T1("\"F32\"", "[1.0]", "[0,4]"), 4, "not an integer");
    expect_bad_header("offsets not array", T1("\"F32\"", "[1]", "4"), 4, "data_offsets");
    expect_bad_header("offsets strings", T1("\"F32\"", "[1]", "[\"0\",\"4\"]"), 4, "not integers");
    expect_bad_header("offsets floats", T1("\"F32\"", "[1]", "[0,4.0]"), 4, "not integers");
    expect_bad_header("metadata not object", "{\"__metadata__\":[1]}", 0, "__metadata__");
    expect_bad_header("metadata value number", "{\"__metadata__\":{\"a\":1}}", 0, "__metadata__");
}

static void test_bad_dims(void) {
    expect_bad_header("negative dim", T1("\"F32\"", "[-1,4]", "[0,16]"), 16, "negative");
    expect_bad_header("5 dims", T1("\"F32\"", "[1,1,1,1,4]", "[0,16]"), 16, "dims");
    expect_bad_header("product overflow", T1("\"F32\"", "[4294967296,4294967296]", "[0,16]"), 16, "overflow");
    expect_bad_header("byte size overflow", T1("\"F32\"", "[4611686018427387904,2]", "[0,16]"), 16, "overflow");
    expect_bad_header("byte size overflow 2", T1("\"F32\"", "[4611686018427387905]", "[0,4]"), 4, "overflow");
}

static void test_bad_offsets(void) {
    expect_bad_header("3 offsets", T1("\"F32\"", "[1]", "[0,4,8]"), 8, "[begin, end]");
    expect_bad_header("1 offset", T1("\"F32\"", "[1]", "[4]"), 8, "[begin, end]");
    expect_bad_header("begin > end", T1("\"F32\"", "[1]", "[8,4]"), 8, "begin <= end");
    expect_bad_header("negative begin", T1("\"F32\"", "[1]", "[-4,0]"), 8, "begin <= end");
    expect_bad_header("end past data", T1("\"F32\"", "[1]", "[4,8]"), 6, "past the data section");
    expect_bad_header("end far past data", T1("\"F32\"", "[1]", "[0,9223372036854775807]"), 6, "past the data section");
    expect_bad_header("too few bytes", T1("\"F32\"", "[2,3]", "[0,20]"), 24, "need 24");
    expect_bad_header("too many bytes", T1("\"BF16\"", "[2,3]", "[0,24]"), 24, "need 12");
    expect_bad_header("I64 wrong size", T1("\"I64\"", "[2]", "[0,12]"), 24, "need 16");
}

static void test_bad_overlap(void) {
    expect_bad_header("overlap",
                      "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20, "overlaps");
    expect_bad_header("same range",
                      "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                      "\"b\":{\"dtype\":\"F16\",\"shape\":[8],\"data_offsets\":[0,16]}}", 16, "overlaps");
    expect_bad_header("contained, after an empty one",
                      "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                      "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 16, "overlaps");
    /* adjacent tensors and an empty tensor inside another are fine */
    size_t size;
    uint8_t *b = mk_buf("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                        "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                        "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[16,20]}}", 20, &size);
    al_st_file *f;
    CHECK_OK(al_st_parse(&f, b, size));
    CHECK(al_st_count(f) == 3);
    al_st_free(f);
    free(b);
}

static void test_bad_open(void) {
    al_st_file *f;
    CHECK_ERR(al_st_open(&f, "/nonexistent/x.safetensors"), AL_ERR_NOT_FOUND);
    CHECK_ERR(al_st_open(&f, "/tmp"), AL_ERR_IO);
    char path[] = "/tmp/alloy_st_short_XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    REQUIRE(write_file(path, "abc", 3));
    al_status s = al_st_open(&f, path);
    CHECKF(s.code == AL_ERR_FORMAT && strstr(s.msg, path), "%s", s.msg);
    unlink(path);
    CHECK_ERR(al_st_parse(NULL, "", 0), AL_ERR_INVALID);
    CHECK_ERR(al_st_to_f32(NULL, NULL), AL_ERR_INVALID);
    /* an empty header is a valid file with no tensors */
    size_t size;
    uint8_t *b = mk_buf("{}", 0, &size);
    REQUIRE_OK(al_st_parse(&f, b, size));
    CHECK(al_st_count(f) == 0 && al_st_find(f, "x") == NULL && al_st_at(f, 0) == NULL);
    al_st_free(f);
    free(b);
}

int main(void) {
    AL_RUN(test_reference_models);
    AL_RUN(test_sharded);
    AL_RUN(test_half_dtypes);
    AL_RUN(test_bad_short);
    AL_RUN(test_bad_header_len);
    AL_RUN(test_bad_json);
    AL_RUN(test_bad_not_object);
    AL_RUN(test_bad_missing_fields);
    AL_RUN(test_bad_field_types);
    AL_RUN(test_bad_dims);
    AL_RUN(test_bad_offsets);
    AL_RUN(test_bad_overlap);
    AL_RUN(test_bad_open);
    return al_test_finish();
}
