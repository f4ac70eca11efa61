/* harness.c — see harness.h. Prints one line per test and "N passed, N failed" at the end. */
#include "harness.h"
#include "alloy/engine.h"

#include <stdarg.h>
#include <jansson.h>
#include <stdlib.h>

int al_test_failures_current;
static int g_passed, g_failed; /* test-program state, not library state */

void al_test_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "  FAIL %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    al_test_failures_current++;
}

void al_test_run(const char *name, void (*fn)(void)) {
    al_test_failures_current = 0;
    double t0 = al_time_sec();
    fn();
    double dt = al_time_sec() - t0;
    if (al_test_failures_current) {
        g_failed++;
        printf("[FAIL] %s (%d failures, %.2fs)\n", name, al_test_failures_current, dt);
    } else {
        g_passed++;
        printf("[ ok ] %s (%.2fs)\n", name, dt);
    }
    fflush(stdout);
}

int al_test_finish(void) {
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}

/* the data folder: $ALLOY_TEST_DATA when set (binaries run on another machine), else the build's */
static const char *data_dir(void) {
    const char *e = getenv("ALLOY_TEST_DATA");
    return e && *e ? e : ALLOY_TEST_DATA;
}

const char *al_test_path(const char *rel) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", data_dir(), rel);
    return buf;
}

void *al_test_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf && size) *size = (size_t)n;
    return buf;
}

void *al_test_read_data(const char *rel, size_t want) {
    size_t size = 0;
    void *p = al_test_read_file(al_test_path(rel), &size);
    if (!p) {
        al_test_fail(__FILE__, __LINE__, "cannot read %s", al_test_path(rel));
        return NULL;
    }
    if (size != want) {
        al_test_fail(__FILE__, __LINE__, "%s: %zu bytes, want %zu", rel, size, want);
        free(p);
        return NULL;
    }
    return p;
}

double al_test_rel_err(const float *a, const float *b, size_t n) {
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > md || isnan(d)) md = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return mb > 0 ? md / mb : md;
}

bool al_test_load_ref(const char *name, al_test_ref *r) {
    char path[512];
    memset(r, 0, sizeof *r);
    snprintf(path, sizeof path, "%s/hf/%s/ref.json", data_dir(), name);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) return false;
    json_t *ids = json_object_get(j, "input_ids"), *g = json_object_get(j, "greedy_next8");
    r->n_ids = (int)json_array_size(ids);
    if (r->n_ids > 64) r->n_ids = 64;
    for (int i = 0; i < r->n_ids; i++) r->ids[i] = (int32_t)json_integer_value(json_array_get(ids, (size_t)i));
    for (int i = 0; i < 8; i++) r->greedy[i] = (int32_t)json_integer_value(json_array_get(g, (size_t)i));
    json_decref(j);
    snprintf(path, sizeof path, "%s/hf/%s/logits.f32", data_dir(), name);
    size_t size = 0;
    r->logits = al_test_read_file(path, &size);
    r->n_logits = size / sizeof(float);
    return r->logits != NULL;
}

int al_test_argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* ---- a serial engine backend over al_session ---- */

static al_status tb_init(void *ctx, int n_ctx, void **slot) {
    al_test_backend *b = ctx;
    if (++b->inits > b->fail_init && b->fail_init) return al_err(AL_ERR_NOMEM, "no device memory");
    al_session *s;
    AL_TRY(al_session_init(&s, b->m, n_ctx));
    b->slots_live++;
    *slot = s;
    return al_ok();
}
static void tb_free(void *ctx, void *slot) {
    al_test_backend *b = ctx;
    if (!slot) return;
    b->slots_live--;
    al_session_free(slot);
}
static void tb_reset(void *ctx, void *slot) { (void)ctx, al_session_reset(slot); }
static int tb_pos(void *ctx, const void *slot) { return (void)ctx, al_session_pos(slot); }
static int tb_n_ctx(void *ctx, const void *slot) { return (void)ctx, al_session_n_ctx(slot); }
static al_status tb_prefill(void *ctx, void *slot, const int32_t *tok, int n, float *logits) {
    al_test_backend *b = ctx;
    if (n > b->prefill_chunk) return al_err(AL_ERR_INVALID, "prefill chunk of %d > %d", n, b->prefill_chunk);
    if (b->fail_after && b->decode_calls > b->fail_after) return al_err(AL_ERR_IO, "device lost");
    return al_session_eval(slot, tok, n, logits, false);
}
static al_status tb_decode(void *ctx, void *const *slots, const int32_t *tok, int n, float *const *logits) {
    al_test_backend *b = ctx;
    b->decode_calls++;
    if (n > b->max_batch) b->max_batch = n;
    if (b->fail_after && b->decode_calls > b->fail_after) return al_err(AL_ERR_IO, "device lost");
    for (int i = 0; i < n; i++) AL_TRY(al_session_eval(slots[i], &tok[i], 1, logits[i], false));
    return al_ok();
}
static void tb_destroy(void *ctx) { ((al_test_backend *)ctx)->destroyed++; }

void al_test_backend_make(al_test_backend *b, al_engine_backend *out) {
    *out = (al_engine_backend){.ctx = b, .device = "serial test device", .device_bytes = 12345,
                               .prefill_chunk = b->prefill_chunk, .slot_init = tb_init, .slot_free = tb_free,
                               .slot_reset = tb_reset, .slot_pos = tb_pos, .slot_n_ctx = tb_n_ctx,
                               .slot_prefill = tb_prefill, .decode = tb_decode, .destroy = tb_destroy};
}
