/* cli.h — shared helpers of the `alloy` subcommands (argument parsing, printing). */
#ifndef ALLOY_CLI_H
#define ALLOY_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "alloy/core.h"

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

#endif
