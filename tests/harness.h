/*
 * harness.h — the tiny test framework used by tests/test_*.c.
 *
 * A test file defines test functions and a main that calls AL_RUN(fn) for each, then returns
 * al_test_finish(). CHECK* record a failure (file:line + message) and continue; REQUIRE* return from
 * the current test function. Data files: al_test_path("quant/x.f32") -> "<source>/tests/data/...".
 */
#ifndef ALLOY_TEST_HARNESS_H
#define ALLOY_TEST_HARNESS_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "alloy/core.h"

extern int al_test_failures_current;

void al_test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void al_test_run(const char *name, void (*fn)(void));
int al_test_finish(void);
/* Returns a static buffer holding ALLOY_TEST_DATA "/" rel (valid until the next call). */
const char *al_test_path(const char *rel);
/* Reads a whole file; returns malloc'd buffer (caller frees) or NULL. */
void *al_test_read_file(const char *path, size_t *size);
/* Reads tests/data/<rel>, which must hold exactly `want` bytes: the malloc'd contents, or NULL after
 * recording a failure (missing file or wrong size). */
void *al_test_read_data(const char *rel, size_t want);
/* A reference model of tests/data/hf/<name>: the 37 input ids, HF's 8 greedy continuation tokens and
 * HF's logits [n_ids][vocab] (malloc'd; free with free()). */
typedef struct al_test_ref {
    int32_t ids[64];
    int n_ids;
    int32_t greedy[8];
    float *logits;
    size_t n_logits;
} al_test_ref;
bool al_test_load_ref(const char *name, al_test_ref *r);
int al_test_argmax(const float *x, int n);

/* max |a-b| / max |b| */
double al_test_rel_err(const float *a, const float *b, size_t n);

/* An engine slot backend of al_session slots on `m` whose decode feeds them one at a time (the shape
 * of the GPU's serial backend), counting what the engine does with it. fail_after: decode calls that
 * succeed before the device is "lost" (every later decode and prefill fails); fail_init: slot_init
 * calls before one fails (0: never); prefill chunks longer than prefill_chunk fail. */
struct al_engine_backend;
typedef struct al_test_backend {
    struct al_model *m;
    int prefill_chunk;
    int slots_live, destroyed, decode_calls, max_batch, inits;
    int fail_after, fail_init;
} al_test_backend;
/* fills *out (an al_engine_backend) over b: device "serial test device", device_bytes 12345 */
void al_test_backend_make(al_test_backend *b, struct al_engine_backend *out);

#define AL_RUN(fn) al_test_run(#fn, fn)
#define CHECK(cond) do { if (!(cond)) al_test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond); } while (0)
#define CHECKF(cond, ...) do { if (!(cond)) al_test_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)
#define REQUIRE(cond) do { if (!(cond)) { al_test_fail(__FILE__, __LINE__, "REQUIRE(%s)", #cond); return; } } while (0)
#define CHECK_OK(expr) do { al_status s_ = (expr); if (s_.code) al_test_fail(__FILE__, __LINE__, "%s: %s", #expr, s_.msg); } while (0)
#define REQUIRE_OK(expr) do { al_status s_ = (expr); if (s_.code) { al_test_fail(__FILE__, __LINE__, "%s: %s", #expr, s_.msg); return; } } while (0)
#define CHECK_ERR(expr, want) do { al_status s_ = (expr); if (s_.code != (want)) al_test_fail(__FILE__, __LINE__, "%s: want %s, got %s (%s)", #expr, al_code_name(want), al_code_name(s_.code), s_.msg); } while (0)
#define CHECK_NEAR(a, b, tol) do { double a_ = (a), b_ = (b); if (!(fabs(a_ - b_) <= (tol))) al_test_fail(__FILE__, __LINE__, "%s = %g, %s = %g, tol %g", #a, a_, #b, b_, (double)(tol)); } while (0)

#endif
