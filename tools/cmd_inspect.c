/* cmd_inspect.c — `alloy inspect` (metadata + tensor table) and `alloy tensor` (one tensor to f32). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloy/gguf.h"
#include "alloy/model.h"
#include "alloy/quant.h"
#include "alloy/safetensors.h"
#include "cli.h"

static void print_value(const al_gguf_value *v) {
    switch (v->type) {
    case AL_GGUF_STRING: {
        al_str s = al_gguf_value_str(v);
        int n = s.len > 80 ? 80 : (int)s.len;
        printf("\"");
        for (int i = 0; i < n; i++) putchar(s.ptr[i] == '\n' ? ' ' : s.ptr[i]);
        printf("%s\"", s.len > 80 ? "..." : "");
        break;
    }
    case AL_GGUF_FLOAT32:
    case AL_GGUF_FLOAT64: printf("%g", al_gguf_value_f64(v)); break;
    case AL_GGUF_BOOL: printf("%s", al_gguf_value_i64(v) ? "true" : "false"); break;
    case AL_GGUF_ARRAY: {
        printf("[%s x %llu:", al_gguf_vtype_name(v->elem_type), (unsigned long long)v->count);
        for (uint64_t i = 0; i < v->count && i < 4; i++) {
            al_gguf_value e = al_gguf_arr_at(v, i);
            putchar(' ');
            print_value(&e);
        }
        printf("%s]", v->count > 4 ? " ..." : "");
        break;
    }
    default: printf("%lld", (long long)al_gguf_value_i64(v)); break;
    }
}

static int inspect_gguf(const char *path) {
    al_gguf *g;
    al_status st = al_gguf_open(&g, path);
    if (al_failed(&st)) return cli_fail(st);
    printf("GGUF v%u, alignment %zu, data at %zu, %lld KV, %lld tensors\n", al_gguf_version(g), al_gguf_alignment(g),
           al_gguf_data_offset(g), (long long)al_gguf_kv_count(g), (long long)al_gguf_tensor_count(g));
    for (int64_t i = 0; i < al_gguf_kv_count(g); i++) {
        al_str k = al_gguf_kv_key(g, i);
        al_gguf_value v = al_gguf_kv_value(g, i);
        printf("%5lld: %-8s %.*s = ", (long long)i, al_gguf_vtype_name(v.type), (int)k.len, k.ptr);
        print_value(&v);
        putchar('\n');
    }
    size_t total = 0;
    printf("%5s  %-48s %-7s %-24s %12s %10s\n", "#", "tensor", "type", "shape (ne0, ne1, ...)", "offset", "bytes");
    for (int64_t i = 0; i < al_gguf_tensor_count(g); i++) {
        const al_gguf_tensor_info *t = al_gguf_tensor_info_at(g, i);
        char shape[64] = "";
        for (int d = 0; d < t->ndim; d++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", d ? ", " : "", (long long)t->ne[d]);
        printf("%5lld: %-48.*s %-7s %-24s %12llu %10zu\n", (long long)i, (int)t->name.len, t->name.ptr, al_type_name(t->type),
               shape, (unsigned long long)t->offset, t->nbytes);
        total += t->nbytes;
    }
    printf("total tensor bytes: %zu (%.2f MB)\n", total, total / 1e6);
    al_gguf_free(g);
    return 0;
}

static int inspect_hf(const char *dir) {
    al_hf *h;
    al_status st = al_hf_open(&h, dir);
    if (al_failed(&st)) return cli_fail(st);
    char *cfg = json_dumps(al_hf_config(h), JSON_INDENT(2) | JSON_SORT_KEYS);
    printf("%s:\n%s\n", al_hf_config_name(h), cfg ? cfg : "?");
    free(cfg);
    size_t total = 0;
    for (int64_t i = 0; i < al_hf_tensor_count(h); i++) {
        const al_st_tensor *t = al_hf_tensor_at(h, i);
        char shape[64] = "";
        for (int d = 0; d < t->ndim; d++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        printf("%5lld: %-64s %-5s [%s]\n", (long long)i, t->name, t->dtype, shape);
        total += t->nbytes;
    }
    printf("%lld tensors, %.2f MB\n", (long long)al_hf_tensor_count(h), total / 1e6);
    al_hf_free(h);
    return 0;
}

int cmd_inspect(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: alloy inspect FILE.gguf|HF_DIR\n");
        return 2;
    }
    struct stat sb;
    if (stat(argv[1], &sb) != 0) return cli_fail(al_err(AL_ERR_IO, "%s: no such file or folder", argv[1]));
    return S_ISDIR(sb.st_mode) ? inspect_hf(argv[1]) : inspect_gguf(argv[1]);
}

static al_status write_f32(const char *path, const float *x, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return al_err(AL_ERR_IO, "cannot create %s", path);
    size_t w = fwrite(x, sizeof(float), n, f);
    if (fclose(f) != 0 || w != n) return al_err(AL_ERR_IO, "write to %s failed", path);
    return al_ok();
}

int cmd_tensor(int argc, char **argv) {
    const char *out = cli_opt(argc, argv, "-o", "--output");
    if (argc < 3 || !out) {
        fprintf(stderr, "usage: alloy tensor FILE|DIR NAME -o OUT.f32\n");
        return 2;
    }
    struct stat sb;
    if (stat(argv[1], &sb) != 0) return cli_fail(al_err(AL_ERR_IO, "%s: no such file or folder", argv[1]));
    al_status st;
    float *x = NULL;
    size_t n = 0;
    if (S_ISDIR(sb.st_mode)) {
        al_hf *h;
        st = al_hf_open(&h, argv[1]);
        if (al_failed(&st)) return cli_fail(st);
        const al_st_tensor *t = al_hf_find(h, argv[2]);
        if (!t) st = al_err(AL_ERR_NOT_FOUND, "no tensor '%s' in %s", argv[2], argv[1]);
        else {
            n = 1;
            for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
            x = malloc(sizeof(float) * (n ? n : 1));
            st = x ? al_st_to_f32(t, x) : al_err(AL_ERR_NOMEM, "out of memory");
        }
        al_hf_free(h);
    } else {
        al_gguf *g;
        st = al_gguf_open(&g, argv[1]);
        if (al_failed(&st)) return cli_fail(st);
        int64_t i = al_gguf_find_tensor(g, argv[2]);
        al_tensor t;
        if (i < 0) st = al_err(AL_ERR_NOT_FOUND, "no tensor '%s' in %s", argv[2], argv[1]);
        else if ((st = al_gguf_tensor_view(g, i, &t)).code == AL_OK) {
            n = (size_t)al_tensor_nelements(&t);
            x = malloc(sizeof(float) * (n ? n : 1));
            st = x ? al_dequantize_rows(t.type, t.data, x, (int64_t)n / t.ne[0], t.ne[0], NULL) : al_err(AL_ERR_NOMEM, "out of memory");
        }
        al_gguf_free(g);
    }
    if (!al_failed(&st)) st = write_f32(out, x, n);
    free(x);
    if (al_failed(&st)) return cli_fail(st);
    fprintf(stderr, "wrote %zu floats to %s\n", n, out);
    return 0;
}

int cmd_quantize(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: alloy quantize IN.gguf|HF_DIR OUT.gguf TYPE [-t THREADS]\n"
                        "types: F32 F16 BF16 Q8_0 Q5_0 Q5_1 Q4_0 Q4_1 Q2_K Q3_K Q4_K Q5_K Q6_K IQ4_NL IQ4_XS Q4_K_M Q5_K_M\n");
        return 2;
    }
    size_t in = 0, out = 0;
    double t0 = al_time_sec();
    al_status st = al_model_convert(argv[1], argv[2], argv[3], cli_int(argc, argv, "-t", "--threads", 0), &in, &out);
    if (al_failed(&st)) return cli_fail(st);
    fprintf(stderr, "%s -> %s (%s): %.2f MB -> %.2f MB in %.2f s\n", argv[1], argv[2], argv[3], in / 1e6, out / 1e6,
            al_time_sec() - t0);
    return 0;
}

int cmd_create(int argc, char **argv) {
    const char *preset = cli_opt(argc, argv, NULL, "--preset"), *out = cli_opt(argc, argv, "-o", "--output");
    if (!preset || !out) {
        fprintf(stderr, "usage: alloy create --preset NAME -o OUT.gguf [--type Q8_0] [--vocab TOKENIZER.gguf] [--seed S]\n"
                        "presets: alloy-tiny qwen3-0.6b llama-3.2-1b mamba2-1.3b (random weights, real shapes)\n");
        return 2;
    }
    const char *type = cli_opt(argc, argv, NULL, "--type");
    const char *seed = cli_opt(argc, argv, NULL, "--seed");
    al_status st = al_model_create_preset(preset, cli_opt(argc, argv, NULL, "--vocab"), out, type ? type : "Q8_0",
                                          seed ? strtoull(seed, NULL, 10) : 1);
    if (al_failed(&st)) return cli_fail(st);
    fprintf(stderr, "wrote %s\n", out);
    return 0;
}
