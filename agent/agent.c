/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ocra-agent: the entrypoint wrapper of every model image ocra assembles. This first version
 * prints its version, and otherwise runs the workload command it is given (the image's Cmd)
 * in its own place, so the image behaves as if the agent were not there.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int
usage(FILE *f)
{
    fprintf(f, "usage: ocra-agent [--version] [--] COMMAND [ARG...]\n"
               "Runs COMMAND, the model image's workload, on behalf of ocra.\n");
    return f == stderr ? 2 : 0;
}

int
main(int argc, char **argv)
{
    int i = 1;

    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("ocra-agent %s\n", OCRA_VERSION);
        return 0;
    }
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        return usage(stdout);
    if (argc > 1 && strcmp(argv[1], "--") == 0)
        i = 2;
    if (i >= argc)
        return usage(stderr);
    execvp(argv[i], argv + i);
    fprintf(stderr, "ocra-agent: %s: %s\n", argv[i], strerror(errno));
    return errno == ENOENT ? 127 : 126;
}
