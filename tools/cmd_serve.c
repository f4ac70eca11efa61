/*
 * cmd_serve.c — `alloy serve`: one HTTP server for OpenAI, Anthropic and Ollama clients over a
 * model (a GGUF file, an HF folder or an Ollama store name). Stops cleanly on SIGINT/SIGTERM.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloy/serve.h"
#ifdef ALLOY_HAVE_CUDA
#include "alloy/cuda.h"
#endif
#include "cli.h"

int cmd_serve(int argc, char **argv) {
    if (cli_flag(argc, argv, "-h") || cli_flag(argc, argv, "--help")) {
        fprintf(stderr,
                "usage: alloy serve [-m MODEL] [--host 127.0.0.1] [--port 11434] [--parallel N] [--api-key K]\n"
                "                   [--ctx-size N] [--threads N] [--http-threads N] [--max-queue N] [--max-body BYTES]\n"
                "                   [--timeout S] [--name NAME] [--alias NAME] [--device cpu|cuda | -ngl N] [-ub N]\n"
                "                   [--decode-batch N]\n"
                "MODEL: a GGUF file, a Hugging Face folder, or an Ollama name (llama3.2:1b) from ~/.ollama/models.\n"
                "Without -m the bundled default model is served.\n"
                "--device cuda (or -ngl N, N != 0): every slot on GPU 0 (the last N layers there, the rest on the CPU;\n"
                "all by default); -ub: GPU prefill chunk (512);\n"
                "--decode-batch N: decode up to N slots in one batched GPU pass (1: each slot's own persistent kernel).\n");
        return 0;
    }
    bool gpu = false;
    al_status dst = cli_device_wanted(argc, argv, &gpu);
    if (al_failed(&dst)) return cli_fail(dst);
#ifndef ALLOY_HAVE_CUDA
    if (gpu)
        return cli_fail(al_err(AL_ERR_UNSUPPORTED, "--device cuda / -ngl: this alloy was built without the CUDA backend "
                                                   "(rebuild where nvcc is found, or use --device cpu)"));
#endif
    const char *ref = cli_opt(argc, argv, "-m", "--model");
    char path[4096];
    al_status st = al_serve_resolve_model(ref ? ref : cli_default_model(), NULL, path, sizeof path);
    if (al_failed(&st)) return cli_fail(st);

    al_model_params mp = al_model_default_params();
    mp.n_threads = cli_int(argc, argv, "-t", "--threads", 0);
    al_model *m = NULL;
    st = al_model_load(&m, path, &mp);
    if (al_failed(&st)) return cli_fail(st);

    al_logger lg = al_logger_stderr(cli_flag(argc, argv, "--quiet") ? AL_LOG_WARN : AL_LOG_INFO);
    al_server_params p = al_server_default_params();
    p.host = cli_opt(argc, argv, NULL, "--host") ? cli_opt(argc, argv, NULL, "--host") : p.host;
    p.port = cli_int(argc, argv, NULL, "--port", p.port);
    p.n_parallel = cli_int(argc, argv, "-np", "--parallel", p.n_parallel);
    p.n_ctx = cli_int(argc, argv, "-c", "--ctx-size", 0);
    p.n_http_threads = cli_int(argc, argv, NULL, "--http-threads", p.n_http_threads);
    p.max_queue = cli_int(argc, argv, NULL, "--max-queue", p.max_queue);
    p.timeout_s = cli_int(argc, argv, NULL, "--timeout", p.timeout_s);
    const char *mb = cli_opt(argc, argv, NULL, "--max-body");
    if (mb) p.max_body = strtoull(mb, NULL, 10);
    p.api_key = cli_opt(argc, argv, NULL, "--api-key");
    if (!p.api_key && getenv("ALLOY_API_KEY")) p.api_key = getenv("ALLOY_API_KEY");
    /* an Ollama name is served under that name; a path under its basename */
    p.model_name = cli_opt(argc, argv, NULL, "--name");
    if (!p.model_name && ref && strcmp(ref, path)) p.model_name = ref;
    const char *aliases[2] = {cli_opt(argc, argv, NULL, "--alias"), NULL};
    p.aliases = aliases;
    p.log = &lg;
#ifdef ALLOY_HAVE_CUDA
    al_engine_backend gpu_backend; /* read by al_server_start, which takes it over */
    if (gpu) {
        /* every slot an al_cuda_session on GPU 0 (-ngl N: the last N layers there, the rest on the CPU) */
        al_cuda_serve_params sp = al_cuda_serve_default_params();
        sp.session.ubatch = cli_int(argc, argv, "-ub", "--ubatch-size", 0);
        sp.batch = cli_int(argc, argv, NULL, "--decode-batch", sp.batch);
        sp.n_gpu_layers = cli_gpu_layers(argc, argv);
        st = al_cuda_engine_backend_init(&gpu_backend, m, &sp);
        if (al_failed(&st)) {
            al_model_free(m);
            return cli_fail(st);
        }
        p.backend = &gpu_backend;
    }
#endif

    /* block the stop signals here so every thread inherits the mask; wait for them below */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    al_server *srv = NULL;
    st = al_server_start(&srv, m, &p);
    if (al_failed(&st)) {
        al_model_free(m);
        return cli_fail(st);
    }
    char desc[256];
    al_model_describe(m, desc, sizeof desc);
    fprintf(stderr, "alloy serve: %s (%s) on http://%s:%d, %d parallel slots on %s\n", al_server_model_name(srv), desc, p.host,
            al_server_port(srv), p.n_parallel, al_server_device(srv));
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "alloy serve: stopping (signal %d)\n", sig);
    al_server_free(srv);
    al_model_free(m);
    return 0;
}
