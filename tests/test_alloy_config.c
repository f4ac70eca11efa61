/*
 * test_alloy_config.c — Alloy model folders (config.yaml + safetensors with GGUF tensor names).
 *
 * The reference is the bundled models/alloy-tiny.gguf (Q8_0): its weights, dequantized (exact for
 * Q8_0), are written here as safetensors (one file, and two shards with an index) beside a
 * config.yaml describing its hyper-parameters (the alloy-tiny preset of src/model/convert.c). The
 * folder must give the logits of the same weights in GGUF form (alloy-tiny.gguf converted to F32)
 * to 1e-6 relative and the same greedy tokens; `alloy quantize` of the folder to Q8_0 must give
 * back the logits of alloy-tiny.gguf itself (Q8_0 of Q8_0-dequantized weights is the same blocks).
 * Hostile YAML and inconsistent configs must each fail with an error, never crash (run under ASan).
 */
#define _GNU_SOURCE
#include <ftw.h>
#include <jansson.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloy/gguf.h"
#include "alloy/model.h"
#include "alloy/quant.h"
#include "alloy/safetensors.h"
#include "alloy/tokenizer.h"
#include "alloy/yaml.h"
#include "harness.h"
#include "model/model_internal.h"

#define TINY ALLOY_SOURCE_DIR "/models/alloy-tiny.gguf"

/* alloy-tiny's hyper-parameters as config.yaml ("MA" tiled to the 4 layers MAMA); %d: vocab */
static const char *const base_yaml =
    "# alloy-tiny, as the preset in src/model/convert.c\n"
    "architecture: alloy\n"
    "name: alloy-tiny\n"
    "d_model: 128\n"
    "n_layer: 4\n"
    "layer_pattern: MA\n"
    "vocab_size: %d\n"
    "context_length: 4096\n"
    "norm_eps: 1.0e-6\n"
    "tie_embeddings: true\n"
    "attention:\n"
    "  n_head: 4\n"
    "  n_kv_head: 2\n"
    "  head_dim: 32\n"
    "  sliding_window: 0\n"
    "  rope_theta: 10000.0\n"
    "ffn:\n"
    "  size: 384\n"
    "  activation: silu\n"
    "mamba2:\n"
    "  d_state: 32\n"
    "  head_dim: 64\n"
    "  n_groups: 1\n"
    "  conv_kernel: 4\n"
    "  expand: 2\n"
    "  chunk_size: 64\n"
    "metadata:\n"
    "  trained_by: nobody\n"
    "  steps: [1, 2, 3]\n";

/* ---- the reference weights and a safetensors writer ---------------------------------------- */

typedef struct wt {
    char name[96];
    int ndim;
    int64_t ne[4]; /* ggml order */
    float *x;
    int64_t n;
} wt;

static wt g_w[64];
static int g_nw;
static int g_vocab;
static char g_tmp[64];

static bool load_reference(void) {
    if (g_nw) return true;
    al_gguf *g;
    al_status st = al_gguf_open(&g, TINY);
    if (al_failed(&st)) return false;
    for (int64_t i = 0; i < al_gguf_tensor_count(g) && g_nw < 64; i++) {
        const al_gguf_tensor_info *ti = al_gguf_tensor_info_at(g, i);
        wt *w = &g_w[g_nw++];
        snprintf(w->name, sizeof w->name, "%.*s", (int)ti->name.len, ti->name.ptr);
        w->ndim = ti->ndim;
        w->n = 1;
        for (int d = 0; d < 4; d++) w->ne[d] = d < ti->ndim ? ti->ne[d] : 1, w->n *= w->ne[d];
        w->x = malloc(sizeof(float) * (size_t)w->n);
        al_tensor t;
        if (w->x) st = al_gguf_tensor_view(g, i, &t);
        if (w->x && !al_failed(&st)) st = al_dequantize_rows(t.type, t.data, w->x, w->n / w->ne[0], w->ne[0], NULL);
        if (!w->x || al_failed(&st)) {
            al_gguf_free(g);
            return false;
        }
    }
    al_gguf_value toks;
    if (al_gguf_get_arr(g, "tokenizer.ggml.tokens", &toks)) g_vocab = (int)toks.count;
    al_gguf_free(g);
    char tmpl[] = "/tmp/alloy_yaml_XXXXXX";
    if (!mkdtemp(tmpl)) return false;
    snprintf(g_tmp, sizeof g_tmp, "%s", tmpl);
    return g_vocab > 0;
}

static const char *tmp_path(const char *rel) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_tmp, rel);
    return buf[k];
}

static bool write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* Options for a folder: which tensors go to which shard and renamings for the error cases. */
typedef struct st_opts {
    int shards;          /* 1: model.safetensors; 2: model-0000{1,2}-of-00002.safetensors + index */
    bool a_log_layer0;   /* blk.0.ssm_a written as blk.0.ssm_a_log = log(-A) */
    const char *extra;   /* an extra 1-element tensor of this name */
    const char *skip;    /* a tensor left out */
} st_opts;

/* Writes the safetensors of shard s (every tensor i with i % shards == s). Shapes are row-major:
 * the reverse of ggml's ne. The JSON header is padded with spaces to 8 bytes. */
static bool write_shard(const char *path, const st_opts *o, int s, json_t *weight_map, const char *shard_name) {
    json_t *hdr = json_object();
    size_t off = 0;
    int nt = 0;
    const wt *sel[72];
    float *own[72] = {0};
    int nsel = 0;
    for (int i = 0; i < g_nw + 1; i++) {
        const wt *w = i < g_nw ? &g_w[i] : NULL;
        if (!w && !o->extra) continue;
        if (w && o->skip && !strcmp(w->name, o->skip)) continue;
        if (nt++ % o->shards != s) continue;
        char name[96];
        json_t *shape = json_array();
        int64_t n = 1;
        if (w) {
            snprintf(name, sizeof name, "%.90s", w->name);
            for (int d = w->ndim - 1; d >= 0; d--) json_array_append_new(shape, json_integer(w->ne[d]));
            n = w->n;
            if (o->a_log_layer0 && !strcmp(w->name, "blk.0.ssm_a")) {
                snprintf(name, sizeof name, "blk.0.ssm_a_log");
                own[nsel] = malloc(sizeof(float) * (size_t)n);
                for (int64_t j = 0; j < n; j++) own[nsel][j] = logf(-w->x[j]);
            }
        } else {
            snprintf(name, sizeof name, "%s", o->extra);
            json_array_append_new(shape, json_integer(1));
        }
        json_object_set_new(hdr, name,
                            json_pack("{s:s, s:o, s:[I, I]}", "dtype", "F32", "shape", shape, "data_offsets", (json_int_t)off,
                                      (json_int_t)(off + 4 * (size_t)n)));
        if (weight_map) json_object_set_new(weight_map, name, json_string(shard_name));
        off += 4 * (size_t)n;
        sel[nsel++] = w;
    }
    json_object_set_new(hdr, "__metadata__", json_pack("{s:s}", "format", "pt"));
    char *js = json_dumps(hdr, JSON_COMPACT);
    json_decref(hdr);
    size_t hl = strlen(js), padded = (hl + 8 + 7) / 8 * 8 - 8;
    FILE *f = fopen(path, "wb");
    bool ok = f != NULL;
    uint64_t le = padded; /* little-endian host (x86-64 / arm64) */
    if (ok) ok = fwrite(&le, 8, 1, f) == 1 && fwrite(js, 1, hl, f) == hl;
    for (size_t i = hl; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
    for (int i = 0; ok && i < nsel; i++) {
        static const float one = 1.0f;
        const float *x = own[i] ? own[i] : sel[i] ? sel[i]->x : &one;
        size_t n = sel[i] ? (size_t)sel[i]->n : 1;
        ok = fwrite(x, sizeof(float), n, f) == n;
    }
    if (f && fclose(f) != 0) ok = false;
    for (int i = 0; i < nsel; i++) free(own[i]);
    free(js);
    return ok;
}

/* Makes folder <tmp>/<dir> with config.yaml (the given text) and the weights. */
static bool make_folder(const char *dir, const char *yaml, const st_opts *o) {
    const char *d = tmp_path(dir);
    mkdir(d, 0755);
    char p[600];
    snprintf(p, sizeof p, "%s/config.yaml", d);
    if (!write_file(p, yaml, strlen(yaml))) return false;
    if (o->shards == 1) {
        snprintf(p, sizeof p, "%s/model.safetensors", d);
        return write_shard(p, o, 0, NULL, NULL);
    }
    json_t *wm = json_object();
    bool ok = true;
    for (int s = 0; s < o->shards && ok; s++) {
        char sn[64];
        snprintf(sn, sizeof sn, "model-%05d-of-%05d.safetensors", s + 1, o->shards);
        snprintf(p, sizeof p, "%s/%s", d, sn);
        ok = write_shard(p, o, s, wm, sn);
    }
    json_t *idx = json_pack("{s:{s:i}, s:o}", "metadata", "total_size", 0, "weight_map", wm);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", d);
    ok = ok && json_dump_file(idx, p, 0) == 0;
    json_decref(idx);
    return ok;
}

static const char *yaml_with_vocab(int vocab) {
    static char buf[2048];
    snprintf(buf, sizeof buf, base_yaml, vocab);
    return buf;
}
static const char *base_text(void) { return yaml_with_vocab(g_vocab); }

/* base_text() with the first occurrence of `from` replaced by `to` (static buffer). */
static const char *variant(const char *from, const char *to) {
    static char out[4096];
    const char *b = base_text(), *p = strstr(b, from);
    if (!p) return NULL;
    snprintf(out, sizeof out, "%.*s%s%s", (int)(p - b), b, to, p + strlen(from));
    return out;
}

/* ---- logits -------------------------------------------------------------------------------- */

static const int32_t ids[] = {1, 450, 4996, 17354, 1701, 432, 1342, 322, 278, 17366, 11203, 29889, 13,
                              1576, 263, 931, 29892, 727, 471, 263, 2217, 29871, 29896, 29906, 29941, 29889};
#define N_IDS ((int)(sizeof ids / sizeof ids[0]))

typedef struct run {
    float *logits; /* [N_IDS][V] */
    int32_t greedy[8];
    int V;
} run;

static bool run_model(const char *path, run *r) {
    memset(r, 0, sizeof *r);
    al_model *m;
    al_model_params mp = al_model_default_params();
    mp.n_threads = 2;
    al_status st = al_model_load(&m, path, &mp);
    if (al_failed(&st)) {
        CHECKF(0, "load %s: %s", path, st.msg);
        return false;
    }
    r->V = al_model_n_vocab(m);
    al_session *s;
    st = al_session_init(&s, m, 64);
    r->logits = malloc(sizeof(float) * (size_t)r->V * N_IDS);
    if (!al_failed(&st)) st = al_session_eval(s, ids, N_IDS, r->logits, true);
    if (!al_failed(&st)) {
        al_session_reset(s);
        float *lg = malloc(sizeof(float) * (size_t)r->V);
        st = al_session_eval(s, ids, N_IDS, lg, false);
        for (int i = 0; i < 8 && !al_failed(&st); i++) {
            r->greedy[i] = al_test_argmax(lg, r->V);
            st = al_session_eval(s, &r->greedy[i], 1, lg, false);
        }
        free(lg);
        al_session_free(s);
    }
    al_model_free(m);
    CHECKF(!al_failed(&st), "run %s: %s", path, st.msg);
    return !al_failed(&st);
}

static void compare(const char *what, const run *a, const run *b, double tol) {
    REQUIRE(a->V == b->V);
    double err = al_test_rel_err(a->logits, b->logits, (size_t)a->V * N_IDS);
    printf("  %s: logits rel err %.3g\n", what, err);
    CHECKF(err <= tol, "%s: logits rel err %g > %g", what, err, tol);
    for (int i = 0; i < 8; i++) CHECKF(a->greedy[i] == b->greedy[i], "%s: greedy[%d] %d vs %d", what, i, a->greedy[i], b->greedy[i]);
}

static run g_ref;   /* alloy-tiny.gguf converted to F32 */
static run g_tiny;  /* alloy-tiny.gguf itself (Q8_0) */

static bool reference_runs(void) {
    if (g_ref.logits) return true;
    if (!load_reference()) return false;
    al_status st = al_model_convert(TINY, tmp_path("ref_f32.gguf"), "F32", 2, NULL, NULL);
    if (al_failed(&st)) {
        CHECKF(0, "convert: %s", st.msg);
        return false;
    }
    return run_model(tmp_path("ref_f32.gguf"), &g_ref) && run_model(TINY, &g_tiny);
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_folder_matches_gguf(void) {
    REQUIRE(reference_runs());
    st_opts one = {1, false, NULL, NULL}, two = {2, false, NULL, NULL};
    REQUIRE(make_folder("tiny", base_text(), &one));
    REQUIRE(make_folder("tiny_sharded", base_text(), &two));
    run r;
    if (run_model(tmp_path("tiny"), &r)) {
        compare("folder vs F32 GGUF", &r, &g_ref, 1e-6);
        free(r.logits);
    }
    if (run_model(tmp_path("tiny_sharded"), &r)) {
        compare("sharded folder vs F32 GGUF", &r, &g_ref, 1e-6);
        free(r.logits);
    }
    /* the Q8_0 original is only close to its dequantized weights (activations are quantized too) */
    double e = al_test_rel_err(g_ref.logits, g_tiny.logits, (size_t)g_ref.V * N_IDS);
    printf("  F32 vs Q8_0 original: rel err %.3g\n", e);
    CHECKF(e < 0.05, "dequantized alloy-tiny far from the Q8_0 original: %g", e);

    /* A_log instead of A for layer 0: the same model up to exp(log(x)) rounding */
    st_opts alog = {1, true, NULL, NULL};
    REQUIRE(make_folder("tiny_alog", base_text(), &alog));
    if (run_model(tmp_path("tiny_alog"), &r)) {
        compare("folder with ssm_a_log vs F32 GGUF", &r, &g_ref, 1e-5);
        free(r.logits);
    }

    /* the model reports the hyper-parameters of the config */
    al_model *m;
    REQUIRE_OK(al_model_load(&m, tmp_path("tiny"), NULL));
    CHECK(al_model_arch(m) == AL_ARCH_ALLOY);
    CHECK(al_model_n_layer(m) == 4 && al_model_n_embd(m) == 128 && al_model_n_vocab(m) == g_vocab);
    const al_hparams *hp = &m->hp;
    CHECK(hp->layer_mixer[0] == AL_MIXER_MAMBA2 && hp->layer_mixer[1] == AL_MIXER_ATTN && hp->layer_mixer[2] == AL_MIXER_MAMBA2 &&
          hp->layer_mixer[3] == AL_MIXER_ATTN);
    CHECK(hp->ssm_n_head == 4 && hp->ssm_d_inner == 256 && hp->ssm_chunk == 64 && hp->n_head_kv == 2);
    const al_tokenizer *tok;
    CHECK_ERR(al_model_tokenizer(m, &tok), AL_ERR_NOT_FOUND); /* no tokenizer.json beside it */
    al_model_free(m);
}

/* tokenizer.json beside config.yaml is the model's tokenizer (the HF tokenizer path) */
static void test_folder_tokenizer(void) {
    REQUIRE(load_reference());
    st_opts one = {1, false, NULL, NULL};
    REQUIRE(make_folder("tiny_tok", base_text(), &one));
    size_t n;
    char *tj = al_test_read_file(al_test_path("tokenizers/hf-metaspace/tokenizer.json"), &n);
    REQUIRE(tj);
    char p[600];
    snprintf(p, sizeof p, "%s/tokenizer.json", tmp_path("tiny_tok"));
    CHECK(write_file(p, tj, n));
    free(tj);
    al_model *m;
    REQUIRE_OK(al_model_load(&m, tmp_path("tiny_tok"), NULL));
    const al_tokenizer *tok;
    al_tokenizer *direct;
    CHECK_OK(al_model_tokenizer(m, &tok));
    REQUIRE_OK(al_tokenizer_from_hf(&direct, al_test_path("tokenizers/hf-metaspace")));
    if (tok) {
        int32_t *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        const char *text = "Hello world";
        CHECK_OK(al_tokenizer_encode(tok, text, strlen(text), true, false, &a, &na));
        CHECK_OK(al_tokenizer_encode(direct, text, strlen(text), true, false, &b, &nb));
        CHECK(na == nb && na > 0 && !memcmp(a, b, na * sizeof *a));
        free(a);
        free(b);
    }
    al_tokenizer_free(direct);
    al_model_free(m);
}

/* alloy quantize FOLDER OUT.gguf: F32 reproduces the folder, Q8_0 reproduces alloy-tiny.gguf. */
static void test_quantize_folder(void) {
    REQUIRE(reference_runs());
    st_opts one = {1, false, NULL, NULL};
    REQUIRE(make_folder("tiny_q", base_text(), &one));
    CHECK_OK(al_model_convert(tmp_path("tiny_q"), tmp_path("q_f32.gguf"), "F32", 2, NULL, NULL));
    run r;
    if (run_model(tmp_path("q_f32.gguf"), &r)) {
        compare("quantize folder F32 vs F32 GGUF", &r, &g_ref, 1e-6);
        free(r.logits);
    }
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "'%s' quantize '%s' '%s' Q8_0 -t 2 >/dev/null 2>&1", ALLOY_CLI, tmp_path("tiny_q"),
             tmp_path("q_q8.gguf"));
    CHECKF(system(cmd) == 0, "%s failed", cmd);
    if (run_model(tmp_path("q_q8.gguf"), &r)) {
        compare("alloy quantize folder Q8_0 vs alloy-tiny.gguf", &r, &g_tiny, 1e-6);
        free(r.logits);
    }
    /* the written GGUF carries the alloy metadata */
    al_gguf *g;
    REQUIRE_OK(al_gguf_open(&g, tmp_path("q_q8.gguf")));
    al_str pat;
    CHECK(al_gguf_get_str(g, "alloy.layer_pattern", &pat) && pat.len == 4 && !memcmp(pat.ptr, "MAMA", 4));
    CHECK(al_gguf_find_tensor(g, "blk.0.ssm_a") >= 0 && al_gguf_find_tensor(g, "output.weight") < 0);
    al_gguf_free(g);
}

/* ffn.activation survives folder -> GGUF (alloy.feed_forward_activation) and changes the model. */
static void test_activation_roundtrip(void) {
    REQUIRE(reference_runs());
    st_opts one = {1, false, NULL, NULL};
    REQUIRE(make_folder("tiny_gelu", variant("activation: silu", "activation: gelu_tanh"), &one));
    run a, b;
    REQUIRE(run_model(tmp_path("tiny_gelu"), &a));
    double e = al_test_rel_err(a.logits, g_ref.logits, (size_t)a.V * N_IDS);
    CHECKF(e > 1e-3, "gelu_tanh FFN gives the SiLU logits (rel diff %g)", e);
    CHECK_OK(al_model_convert(tmp_path("tiny_gelu"), tmp_path("gelu.gguf"), "F32", 2, NULL, NULL));
    if (run_model(tmp_path("gelu.gguf"), &b)) {
        compare("gelu_tanh folder vs its GGUF", &b, &a, 1e-6);
        free(b.logits);
    }
    free(a.logits);
    /* relu2 is ungated: the folder's ffn_gate tensors do not belong to it */
    REQUIRE(make_folder("tiny_relu2", variant("activation: silu", "activation: relu2"), &one));
    al_model *m = NULL;
    CHECK_ERR(al_model_load(&m, tmp_path("tiny_relu2"), NULL), AL_ERR_FORMAT);
    CHECK(m == NULL);
}

/* Configs that parse but do not fit the weights: errors from the loader, never a crash. */
static void test_folder_mismatch(void) {
    REQUIRE(load_reference());
    struct {
        const char *dir, *from, *to;
        st_opts o;
        al_code want;
    } cases[] = {
        {"mm_state", "d_state: 32", "d_state: 16", {1, false, NULL, NULL}, AL_ERR_FORMAT},
        {"mm_layers", "n_layer: 4", "n_layer: 6", {1, false, NULL, NULL}, AL_ERR_NOT_FOUND},
        {"mm_pattern", "layer_pattern: MA", "layer_pattern: AM", {1, false, NULL, NULL}, AL_ERR_FORMAT},
        {"mm_untied", "tie_embeddings: true", "tie_embeddings: false", {1, false, NULL, NULL}, AL_ERR_NOT_FOUND},
        {"mm_extra", "", "", {1, false, "model.layers.0.mlp.up_proj.weight", NULL}, AL_ERR_FORMAT},
        {"mm_extra_layer", "", "", {1, false, "blk.4.attn_norm.weight", NULL}, AL_ERR_FORMAT},
        {"mm_missing", "", "", {1, false, NULL, "blk.1.attn_k.weight"}, AL_ERR_NOT_FOUND},
        {"mm_both_a", "", "", {1, true, "blk.0.ssm_a", NULL}, AL_ERR_FORMAT},
        {"mm_heads", "n_kv_head: 2", "n_kv_head: 4", {1, false, NULL, NULL}, AL_ERR_FORMAT},
        {"mm_vocab", "", "", {1, false, NULL, NULL}, AL_ERR_FORMAT}, /* vocab_size 1000 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *y = !strcmp(cases[i].dir, "mm_vocab") ? yaml_with_vocab(1000)
                        : cases[i].from[0]                 ? variant(cases[i].from, cases[i].to)
                                                           : base_text();
        REQUIRE(y);
        REQUIRE(make_folder(cases[i].dir, y, &cases[i].o));
        al_model *m = (al_model *)1;
        al_status st = al_model_load(&m, tmp_path(cases[i].dir), NULL);
        CHECKF(st.code == cases[i].want, "%s: want %s, got %s (%s)", cases[i].dir, al_code_name(cases[i].want),
               al_code_name(st.code), st.msg);
        CHECK(m == NULL);
        if (st.code) printf("  %s: %s\n", cases[i].dir, st.msg);
    }
}

/* The YAML reader's typing (core schema) on its own. */
static void test_yaml_types(void) {
    const char *y = "i: 42\nneg: -7\nhex: 0x1F\noct: 0o17\nf: 1e-6\nf2: 2.5\nf3: .5\nt: true\nF: False\nn: ~\nn2:\n"
                    "s: '123'\ns2: hello world\nyes: yes\nl: [1, two, 3.0]\nm: {a: 1, b: [x]}\nblock: |\n  line1\n  line2\n"
                    "tagged: !!str 12\nti: !!int \"12\"\n";
    json_t *j;
    REQUIRE_OK(al_yaml_parse(&j, y, strlen(y), "t"));
    CHECK(json_integer_value(json_object_get(j, "i")) == 42);
    CHECK(json_integer_value(json_object_get(j, "neg")) == -7);
    CHECK(json_integer_value(json_object_get(j, "hex")) == 31);
    CHECK(json_integer_value(json_object_get(j, "oct")) == 15);
    CHECK(json_is_real(json_object_get(j, "f")) && json_real_value(json_object_get(j, "f")) == 1e-6);
    CHECK(json_real_value(json_object_get(j, "f2")) == 2.5 && json_real_value(json_object_get(j, "f3")) == 0.5);
    CHECK(json_is_true(json_object_get(j, "t")) && json_is_false(json_object_get(j, "F")));
    CHECK(json_is_null(json_object_get(j, "n")) && json_is_null(json_object_get(j, "n2")));
    CHECK(json_is_string(json_object_get(j, "s")) && !strcmp(json_string_value(json_object_get(j, "s")), "123"));
    CHECK(!strcmp(json_string_value(json_object_get(j, "s2")), "hello world"));
    CHECK(!strcmp(json_string_value(json_object_get(j, "yes")), "yes")); /* YAML 1.2: not a boolean */
    json_t *l = json_object_get(j, "l");
    CHECK(json_array_size(l) == 3 && json_is_integer(json_array_get(l, 0)) && json_is_string(json_array_get(l, 1)) &&
          json_is_real(json_array_get(l, 2)));
    CHECK(json_is_array(json_object_get(json_object_get(j, "m"), "b")));
    CHECK(!strcmp(json_string_value(json_object_get(j, "block")), "line1\nline2\n"));
    CHECK(!strcmp(json_string_value(json_object_get(j, "tagged")), "12"));
    CHECK(json_integer_value(json_object_get(j, "ti")) == 12);
    json_decref(j);
}

/* Hostile or malformed YAML: each an error with a message, never a crash or a leak (ASan). */
static void test_yaml_hostile(void) {
    static const struct {
        const char *text;
        al_code want;
    } cases[] = {
        {"", AL_ERR_FORMAT},
        {"# only a comment\n", AL_ERR_FORMAT},
        {"a: [1, 2\n", AL_ERR_FORMAT},
        {"a: {b: 1\n", AL_ERR_FORMAT},
        {"a: &x [1]\nb: *x\n", AL_ERR_FORMAT},
        {"a: &a [\"lol\",\"lol\"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n", AL_ERR_FORMAT},
        {"a: 1\n---\nb: 2\n", AL_ERR_FORMAT},
        {"a: 1\na: 2\n", AL_ERR_FORMAT},
        {"? [a, b]\n: 1\n", AL_ERR_FORMAT},
        {"? {a: 1}\n: 1\n", AL_ERR_FORMAT},
        {"a: !!python/object/apply:os.system [\"rm -rf /\"]\n", AL_ERR_FORMAT},
        {"a: !custom 1\n", AL_ERR_FORMAT},
        {"a: !!int abc\n", AL_ERR_FORMAT},
        {"a: !!map [1]\n", AL_ERR_FORMAT},
        {"a: \"x\\0y\"\n", AL_ERR_FORMAT},
        {"\"a\\0b\": 1\n", AL_ERR_FORMAT},
        {"a: 99999999999999999999999\n", AL_ERR_FORMAT},
        {"a: 0x1ffffffffffffffff\n", AL_ERR_FORMAT},
        {"a: .inf\n", AL_ERR_FORMAT},
        {"a: -.nan\n", AL_ERR_FORMAT},
        {"a: 1e999\n", AL_ERR_FORMAT},
        {"a: \xff\xfe\n", AL_ERR_FORMAT},
        {"a: \"\\ud800\"\n", AL_ERR_FORMAT},
        {"a:\n\tb: 1\n", AL_ERR_FORMAT},
        {"a: b: c\n", AL_ERR_FORMAT},
        {"- a\n b: 1\n", AL_ERR_FORMAT},
        {"%YAML 9.9\n---\na: 1\n", AL_ERR_FORMAT},
        {"a: 'unterminated\n", AL_ERR_FORMAT},
        {"\x00\x01", AL_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *j = (json_t *)1;
        size_t len = i == sizeof cases / sizeof cases[0] - 1 ? 2 : strlen(cases[i].text);
        al_status st = al_yaml_parse(&j, cases[i].text, len, "hostile");
        CHECKF(st.code == cases[i].want, "case %zu: want %s, got %s (%s)", i, al_code_name(cases[i].want), al_code_name(st.code),
               st.msg);
        CHECKF(j == NULL, "case %zu: out not NULL on error", i);
        CHECKF(st.code == AL_OK || st.msg[0], "case %zu: error without a message", i);
        printf("  %zu: %s\n", i, st.msg);
        if (st.code == AL_OK) json_decref(j);
    }
    /* nesting: 64 levels parse, 100000 do not (and do not exhaust the stack) */
    size_t deep = 100000;
    char *d = malloc(2 * deep + 1);
    REQUIRE(d);
    for (size_t k = 0; k < 2; k++) {
        size_t n = k == 0 ? AL_YAML_MAX_DEPTH : deep;
        memset(d, '[', n);
        memset(d + n, ']', n);
        d[2 * n] = '\0';
        json_t *j = NULL;
        al_status st = al_yaml_parse(&j, d, 2 * n, "deep");
        if (k == 0) {
            CHECK_OK(st);
            json_decref(j);
        } else {
            CHECK(st.code == AL_ERR_FORMAT && j == NULL);
        }
    }
    free(d);
    /* too large */
    size_t big = (size_t)AL_YAML_MAX_BYTES + 1;
    char *b = malloc(big);
    REQUIRE(b);
    memset(b, '#', big);
    json_t *j = NULL;
    CHECK_ERR(al_yaml_parse(&j, b, big, "big"), AL_ERR_RANGE);
    free(b);
    /* a missing file */
    CHECK_ERR(al_yaml_load_file(&j, "/nonexistent/config.yaml"), AL_ERR_IO);
}

/* Schema errors in config.yaml, each with its al_status code. */
static void test_config_errors(void) {
    REQUIRE(load_reference());
    static const struct {
        const char *from, *to;
        al_code want;
    } cases[] = {
        {"architecture: alloy", "architecture: llama", AL_ERR_UNSUPPORTED},
        {"architecture: alloy\n", "", AL_ERR_NOT_FOUND},
        {"architecture: alloy", "architecture: [alloy]", AL_ERR_FORMAT},
        {"d_model: 128", "d_model: big", AL_ERR_FORMAT},
        {"d_model: 128", "d_model: 128.0", AL_ERR_FORMAT},
        {"d_model: 128", "d_model: -1", AL_ERR_RANGE},
        {"d_model: 128", "d_model: 9223372036854775807", AL_ERR_RANGE},
        {"d_model: 128\n", "", AL_ERR_NOT_FOUND},
        {"d_model: 128", "d_model: 128\nn_embd: 128", AL_ERR_FORMAT},
        {"n_layer: 4", "n_layer: 5", AL_ERR_FORMAT}, /* not a multiple of "MA" */
        {"n_layer: 4", "n_layer: 0", AL_ERR_RANGE},
        {"n_layer: 4", "n_layer: 1000", AL_ERR_RANGE},
        {"layer_pattern: MA", "layer_pattern: MX", AL_ERR_FORMAT},
        {"layer_pattern: MA", "layer_pattern: ma", AL_ERR_FORMAT},
        {"layer_pattern: MA", "layer_pattern: \"M\\x01\"", AL_ERR_FORMAT},
        {"layer_pattern: MA", "layer_pattern: ''", AL_ERR_RANGE},
        {"layer_pattern: MA", "layer_pattern: [M, A]", AL_ERR_FORMAT},
        {"layer_pattern: MA\n", "", AL_ERR_NOT_FOUND},
        {"vocab_size: ", "vocab_size: 0 #", AL_ERR_RANGE},
        {"norm_eps: 1.0e-6", "norm_eps: 0", AL_ERR_RANGE},
        {"norm_eps: 1.0e-6", "norm_eps: '1e-6'", AL_ERR_FORMAT},
        {"tie_embeddings: true", "tie_embeddings: yes", AL_ERR_FORMAT},
        {"context_length: 4096", "context_length: null", AL_OK},
        {"name: alloy-tiny", "name: 7", AL_ERR_FORMAT},
        {"name: alloy-tiny", "nmae: alloy-tiny", AL_ERR_FORMAT},
        {"attention:\n", "attention: 3\n", AL_ERR_FORMAT},
        {"  n_head: 4\n", "", AL_ERR_NOT_FOUND},
        {"  n_head: 4", "  n_head: 0", AL_ERR_RANGE},
        {"  n_kv_head: 2", "  n_kv_head: 3", AL_ERR_FORMAT},
        {"  n_kv_head: 2", "  n_kv_heads: 2", AL_ERR_FORMAT},
        {"  head_dim: 32\n  sliding", "  sliding", AL_OK},
        {"d_model: 128", "d_model: 130", AL_ERR_FORMAT}, /* 130 / 64 Mamba heads */
        {"  sliding_window: 0", "  sliding_window: -5", AL_ERR_RANGE},
        {"  rope_theta: 10000.0", "  rope_theta: -1", AL_ERR_RANGE},
        {"  rope_theta: 10000.0", "  rope_theta: 10000.0\n  rope_dim: 7", AL_ERR_FORMAT},
        {"  rope_theta: 10000.0", "  rope_theta: 10000.0\n  rope_dim: 64", AL_ERR_RANGE},
        {"ffn:\n  size: 384\n  activation: silu\n", "", AL_ERR_NOT_FOUND},
        {"  size: 384", "  size: [384]", AL_ERR_FORMAT},
        {"  activation: silu", "  activation: tanh", AL_ERR_FORMAT},
        {"  d_state: 32\n", "", AL_ERR_NOT_FOUND},
        {"  expand: 2", "  expand: 3", AL_OK}, /* 384 / 64 = 6 heads: consistent, wrong for the weights */
        {"  head_dim: 64", "  head_dim: 48", AL_ERR_FORMAT},
        {"  n_groups: 1", "  n_groups: 3", AL_ERR_FORMAT},
        {"  conv_kernel: 4", "  conv_kernel: 65", AL_ERR_RANGE},
        {"  chunk_size: 64", "  chunk_size: 64\n  dt_min: 0.5\n  dt_max: 0.1", AL_ERR_FORMAT},
        {"  chunk_size: 64", "  chunk_size: 64\n  norm_groups: 3", AL_ERR_FORMAT},
        {"mamba2:\n", "mamba2: ~\n", AL_ERR_FORMAT}, /* its indented keys are then a syntax error */
        {"mamba2:\n", "mamba:\n", AL_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *y = variant(cases[i].from, cases[i].to);
        CHECKF(y != NULL, "case %zu: '%s' not in the base config", i, cases[i].from);
        if (!y) continue;
        json_t *j = NULL;
        al_status st = al_yaml_parse(&j, y, strlen(y), "config.yaml");
        if (!al_failed(&st)) {
            al_hparams hp;
            st = al_hparams_from_alloy_config(&hp, j);
        }
        json_decref(j);
        CHECKF(st.code == cases[i].want, "case %zu (%s -> %s): want %s, got %s (%s)", i, cases[i].from, cases[i].to,
               al_code_name(cases[i].want), al_code_name(st.code), st.msg);
    }
    /* a pattern without A needs no attention section; without M no mamba2 section */
    const char *mono = "architecture: alloy\nd_model: 64\nlayer_pattern: MMM\nvocab_size: 10\nffn: {size: 32}\n"
                       "mamba2: {d_state: 8, head_dim: 16}\n";
    json_t *j;
    al_hparams hp;
    REQUIRE_OK(al_yaml_parse(&j, mono, strlen(mono), "mono"));
    CHECK_OK(al_hparams_from_alloy_config(&hp, j));
    CHECK(hp.n_layer == 3 && hp.ssm_n_head == 8 && hp.n_head == 0);
    json_decref(j);
    const char *attn = "architecture: alloy\nn_embd: 64\nlayer_pattern: AA\nvocab_size: 10\nffn: {size: 32, activation: relu2}\n"
                       "attention: {n_head: 4, sliding_window: 16}\n";
    REQUIRE_OK(al_yaml_parse(&j, attn, strlen(attn), "attn"));
    CHECK_OK(al_hparams_from_alloy_config(&hp, j));
    CHECK(hp.n_head == 4 && hp.n_head_kv == 4 && hp.head_dim == 16 && hp.rope_dim == 16 && hp.sliding_window == 16 &&
          hp.layer_ffn[1] == AL_FFN_RELU2 && hp.ssm_n_head == 0);
    json_decref(j);
    /* through the loader: a folder with a broken config.yaml is an error naming the file */
    st_opts one = {1, false, NULL, NULL};
    REQUIRE(make_folder("bad_yaml", "architecture: alloy\nd_model: [\n", &one));
    al_model *m;
    al_status st = al_model_load(&m, tmp_path("bad_yaml"), NULL);
    CHECK(st.code == AL_ERR_FORMAT && strstr(st.msg, "config.yaml"));
    REQUIRE(make_folder("list_yaml", "- architecture: alloy\n", &one));
    CHECK_ERR(al_model_load(&m, tmp_path("list_yaml"), NULL), AL_ERR_FORMAT);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

int main(void) {
    AL_RUN(test_yaml_types);
    AL_RUN(test_yaml_hostile);
    AL_RUN(test_config_errors);
    AL_RUN(test_folder_matches_gguf);
    AL_RUN(test_folder_tokenizer);
    AL_RUN(test_quantize_folder);
    AL_RUN(test_activation_roundtrip);
    AL_RUN(test_folder_mismatch);
    free(g_ref.logits);
    free(g_tiny.logits);
    for (int i = 0; i < g_nw; i++) free(g_w[i].x);
    if (g_tmp[0]) nftw(g_tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return al_test_finish();
}
