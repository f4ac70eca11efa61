/* cli.c — argument helpers shared by the subcommands. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *cli_opt(int argc, char **argv, const char *s, const char *l) {
    for (int i = 1; i + 1 < argc; i++)
        if ((s && !strcmp(argv[i], s)) || (l && !strcmp(argv[i], l))) return argv[i + 1];
    return NULL;
}

bool cli_flag(int argc, char **argv, const char *name) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], name)) return true;
    return false;
}

int cli_int(int argc, char **argv, const char *s, const char *l, int def) {
    const char *v = cli_opt(argc, argv, s, l);
    return v ? atoi(v) : def;
}

double cli_num(int argc, char **argv, const char *s, const char *l, double def) {
    const char *v = cli_opt(argc, argv, s, l);
    return v ? atof(v) : def;
}

int cli_fail(al_status st) {
    fprintf(stderr, "alloy: %s\n", st.msg);
    return 1;
}

const char *cli_default_model(void) {
    const char *env = getenv("ALLOY_MODEL");
    if (env && *env) return env;
#ifdef ALLOY_DEFAULT_MODEL
    if (access(ALLOY_DEFAULT_MODEL, R_OK) == 0) return ALLOY_DEFAULT_MODEL;
#endif
    return "models/alloy-tiny.gguf";
}
