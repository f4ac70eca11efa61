/* alloy.c — CLI entry point: dispatches subcommands (table below). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} command;

static const command commands[] = {
    {"run", cmd_run, "run -m MODEL -p TEXT [-n N] [--temp T --top-p P --top-k K --min-p M --seed S] [--chat] [--device cpu|cuda] [-ngl N]"},
    {"chat", cmd_chat, "chat -m MODEL: interactive chat with the model's template"},
    {"serve", cmd_serve, "serve [-m MODEL] [--host H] [--port P] [--parallel N] [--api-key K]"},
    {"logits", cmd_logits, "logits -m MODEL --tokens 1,2,3 -o OUT.f32 [--device cuda]: float32 logits [n_tokens][n_vocab]"},
    {"tokenize", cmd_tokenize, "tokenize -m MODEL (-p TEXT | -f FILE) [--bos]"},
    {"bench", cmd_bench, "bench -m MODEL [-p 512] [-n 128] [-d DEPTH] [-r REPS] [-t THREADS] [--device cpu|cuda] [-ngl N]"},
    {"inspect", cmd_inspect, "inspect FILE|DIR: metadata and tensor table"},
    {"tensor", cmd_tensor, "tensor FILE NAME -o OUT.f32: one tensor dequantized to float32"},
    {"create", cmd_create, "create --preset NAME -o OUT.gguf [--type T] [--vocab TOK.gguf]: random-weight model of a real shape"},
    {"quantize", cmd_quantize, "quantize IN OUT TYPE: GGUF/HF -> GGUF (F32 F16 BF16 Q8_0 Q4_0 ... Q4_K_M Q5_K_M)"},
};

static void usage(FILE *f) {
    fprintf(f, "alloy %s — hybrid SSM-attention LLM runtime\nusage:\n", AL_VERSION_STRING);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) fprintf(f, "  alloy %s\n", commands[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("alloy %s\n", AL_VERSION_STRING);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "alloy: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
