/* alloy.c — CLI entry point: dispatches subcommands. */
#include <stdio.h>
#include <string.h>

#include "alloy/core.h"

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fprintf(stderr, "usage: alloy <command> [args]\n");
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) { printf("alloy %s\n", AL_VERSION_STRING); return 0; }
    fprintf(stderr, "alloy: unknown command '%s'\n", argv[1]);
    return 2;
}
