/*
 * cli_session.c — the evaluation session of `alloy run / chat / logits / bench`: an al_session on the
 * CPU or, with `--device cuda` (or `-ngl N`, N != 0, llama.cpp style), an al_cuda_session on GPU 0
 * with the last N layers there (N >= n_layer or -1, or --device cuda alone: all of them) and the
 * layers before them on the CPU; `--device cpu` or `-ngl 0` keeps the CPU. Without ALLOY_HAVE_CUDA a
 * GPU request is a clear error.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#ifdef ALLOY_HAVE_CUDA
#include "alloy/cuda.h"
#endif

struct cli_session {
    al_session *cpu;
#ifdef ALLOY_HAVE_CUDA
    al_cuda *cu;
    al_cuda_model *cm;
    al_cuda_session *cs;
#endif
    char device[160];
};

/* the -ngl / --n-gpu-layers / --gpu-layers value, or NULL */
static const char *ngl_arg(int argc, char **argv) {
    const char *ngl = cli_opt(argc, argv, "-ngl", "--n-gpu-layers");
    return ngl ? ngl : cli_opt(argc, argv, NULL, "--gpu-layers");
}

al_status cli_device_wanted(int argc, char **argv, bool *gpu) {
    const char *d = cli_opt(argc, argv, NULL, "--device");
    const char *ngl = ngl_arg(argc, argv);
    *gpu = false;
    if (d) {
        if (strcmp(d, "cuda") == 0 || strcmp(d, "cuda:0") == 0 || strcmp(d, "gpu") == 0) *gpu = true;
        else if (strcmp(d, "cpu") != 0)
            return al_err(AL_ERR_INVALID, "--device %s: expected cpu or cuda", d);
    }
    if (ngl) {
        char *end;
        long n = strtol(ngl, &end, 10);
        if (end == ngl || *end || n < -1) return al_err(AL_ERR_INVALID, "-ngl %s: expected a layer count (-1 or N >= 0)", ngl);
        if (n != 0) *gpu = true;
        else if (d && *gpu) return al_err(AL_ERR_INVALID, "--device cuda with -ngl 0: pick one");
    }
    return al_ok();
}

int cli_gpu_layers(int argc, char **argv) {
    const char *ngl = ngl_arg(argc, argv); /* checked by cli_device_wanted */
    return ngl ? atoi(ngl) : -1;
}

al_status cli_session_init(cli_session **out, al_model *m, int n_ctx, int argc, char **argv) {
    *out = NULL;
    bool gpu;
    AL_TRY(cli_device_wanted(argc, argv, &gpu));
    cli_session *s = calloc(1, sizeof *s);
    if (!s) return al_err(AL_ERR_NOMEM, "out of memory");
    al_status st = al_ok();
    if (!gpu) {
        snprintf(s->device, sizeof s->device, "cpu");
        st = al_session_init(&s->cpu, m, n_ctx);
    } else {
#ifdef ALLOY_HAVE_CUDA
        if (al_cuda_device_count() <= 0) st = al_err(AL_ERR_NOT_FOUND, "--device cuda: no CUDA device found (driver or GPU missing)");
        if (!al_failed(&st)) st = al_cuda_init(&s->cu, 0);
        if (!al_failed(&st)) {
            al_cuda_describe(s->cu, s->device, sizeof s->device);
            st = al_cuda_model_init_layers(&s->cm, s->cu, m, cli_gpu_layers(argc, argv));
        }
        if (!al_failed(&st)) {
            al_cuda_session_params p = al_cuda_session_default_params();
            p.n_ctx = n_ctx;
            st = al_cuda_session_init(&s->cs, s->cm, &p);
        }
#else
        (void)m;
        st = al_err(AL_ERR_UNSUPPORTED, "--device cuda / -ngl: this alloy was built without the CUDA backend "
                                        "(rebuild where nvcc is found, or use --device cpu)");
#endif
    }
    if (al_failed(&st)) {
        cli_session_free(s);
        return st;
    }
    *out = s;
    return al_ok();
}

void cli_session_free(cli_session *s) {
    if (!s) return;
    al_session_free(s->cpu);
#ifdef ALLOY_HAVE_CUDA
    al_cuda_session_free(s->cs);
    al_cuda_model_free(s->cm);
    al_cuda_free(s->cu);
#endif
    free(s);
}

bool cli_session_is_gpu(const cli_session *s) { return s->cpu == NULL; }
const char *cli_session_device(const cli_session *s) { return s->device; }

al_status cli_session_eval(cli_session *s, const int32_t *tokens, int n, float *logits, bool all_logits) {
#ifdef ALLOY_HAVE_CUDA
    if (s->cs) return al_cuda_session_eval(s->cs, tokens, n, logits, all_logits);
#endif
    return al_session_eval(s->cpu, tokens, n, logits, all_logits);
}

al_status cli_session_decode(cli_session *s, int32_t token, float *lg, const float **out) {
#ifdef ALLOY_HAVE_CUDA
    if (s->cs) return al_cuda_session_decode(s->cs, token, out);
#endif
    *out = lg;
    return al_session_eval(s->cpu, &token, 1, lg, false);
}

void cli_session_reset(cli_session *s) {
#ifdef ALLOY_HAVE_CUDA
    if (s->cs) {
        al_cuda_session_reset(s->cs);
        return;
    }
#endif
    al_session_reset(s->cpu);
}

int cli_session_pos(const cli_session *s) {
#ifdef ALLOY_HAVE_CUDA
    if (s->cs) return al_cuda_session_pos(s->cs);
#endif
    return al_session_pos(s->cpu);
}

int cli_session_n_ctx(const cli_session *s) {
#ifdef ALLOY_HAVE_CUDA
    if (s->cs) return al_cuda_session_n_ctx(s->cs);
#endif
    return al_session_n_ctx(s->cpu);
}
