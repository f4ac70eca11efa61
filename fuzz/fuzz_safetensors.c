/* fuzz_safetensors.c — libFuzzer target for al_st_parse: parse, walk every tensor, look each up by
 * name, convert the small ones to float32. Any crash, sanitizer report or inconsistency is a bug. */
#include <stdlib.h>
#include <string.h>

#include "alloy/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    al_st_file *f = NULL;
    al_status s = al_st_parse(&f, data, size);
    if (al_failed(&s)) {
        if (f || !s.msg[0]) abort();
        return 0;
    }
    float *buf = NULL;
    for (int64_t i = 0; i < al_st_count(f); i++) {
        const al_st_tensor *t = al_st_at(f, i);
        if (!t || al_st_find(f, t->name) != t) abort();
        if ((const uint8_t *)t->data < data || (const uint8_t *)t->data + t->nbytes > data + size) abort();
        int64_t n = 1;
        for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
        if (t->nbytes > (1u << 16)) continue;
        buf = realloc(buf, t->nbytes * 2 + 4);
        s = al_st_to_f32(t, buf);
        if (s.code == AL_OK && t->type == AL_TYPE_COUNT) abort();
        if (s.code != AL_OK && t->type != AL_TYPE_COUNT) abort();
        if (s.code == AL_OK) {
            volatile float sink = 0;
            for (int64_t j = 0; j < n; j++) sink += buf[j];
            (void)sink;
        }
    }
    (void)al_st_metadata(f, "format");
    free(buf);
    al_st_free(f);
    return 0;
}
