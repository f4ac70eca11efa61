/* cli.h — shared helpers of the `alloy` subcommands (argument parsing, printing). */
#ifndef ALLOY_CLI_H
#define ALLOY_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "alloy/core.h"
#include "alloy/model.h"

/* Each subcommand: argc/argv start at the subcommand name; returns the process exit code. */
int cmd_inspect(int argc, char **argv);
int cmd_tensor(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_create(int argc, char **argv);

/* Finds "-x VALUE" / "--long VALUE"; NULL if absent. */
const char *cli_opt(int argc, char **argv, const char *short_name, const char *long_name);
bool cli_flag(int argc, char **argv, const char *name);
int cli_int(int argc, char **argv, const char *s, const char *l, int def);
double cli_num(int argc, char **argv, const char *s, const char *l, double def);
/* Prints "alloy: <msg>" to stderr and returns 1. */
int cli_fail(al_status st);
/* The bundled default model (models/alloy-tiny.gguf next to the binary's source tree or installed). */
const char *cli_default_model(void);

/* The session of run / chat / logits / bench: CPU (al_session) or, with --device cuda or -ngl N
 * (N != 0; all layers are offloaded), the CUDA backend. A GPU request fails with a clear error when
 * the build has no CUDA backend or no device is present. The model must outlive the session. */
typedef struct cli_session cli_session;
al_status cli_device_wanted(int argc, char **argv, bool *gpu);
/* -ngl N: layers on the GPU (the last N; -1, also when absent: all) */
int cli_gpu_layers(int argc, char **argv);
al_status cli_session_init(cli_session **out, al_model *m, int n_ctx, int argc, char **argv);
void cli_session_free(cli_session *s);
al_status cli_session_eval(cli_session *s, const int32_t *tokens, int n, float *logits, bool all_logits);
/* one token; *out: its logits — lg (the CPU fills it) or the GPU session's pinned buffer (no copy),
 * valid until the next eval / decode */
al_status cli_session_decode(cli_session *s, int32_t token, float *lg, const float **out);
void cli_session_reset(cli_session *s);
int cli_session_pos(const cli_session *s);
int cli_session_n_ctx(const cli_session *s);
bool cli_session_is_gpu(const cli_session *s);
const char *cli_session_device(const cli_session *s); /* "cpu" or the GPU's description */

#endif
