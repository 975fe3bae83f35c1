/* SPDX-License-Identifier: Apache-2.0 */
/*
 * replay.c: a main() for the libFuzzer entry points when built without libFuzzer (gcc). It
 * feeds every file under the given corpus directories (or the given files) to
 * LLVMFuzzerTestOneInput once, so ctest replays each corpus under the normal and ASan builds.
 */
#include "base/base.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_file(const char *path)
{
    struct ocra_err err = {0};
    char *data = NULL;
    size_t len = 0;

    if (ocra_file_read(path, 16u << 20, &data, &len, &err) < 0) {
        fprintf(stderr, "replay: %s\n", err.msg);
        return -1;
    }
    (void)LLVMFuzzerTestOneInput((const uint8_t *)data, len);
    free(data);
    return 0;
}

static int
replay_path(const char *path, unsigned *count)
{
    struct dirent *de;
    struct stat st;
    DIR *dir;
    int ret = 0;

    if (stat(path, &st) < 0) {
        fprintf(stderr, "replay: %s: not found\n", path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        (*count)++;
        return replay_file(path);
    }
    dir = opendir(path);
    if (!dir)
        return -1;
    while ((de = readdir(dir))) {
        char *child;

        if (de->d_name[0] == '.')
            continue;
        child = ocra_xasprintf("%s/%s", path, de->d_name);
        if (replay_path(child, count) < 0)
            ret = -1;
        free(child);
    }
    closedir(dir);
    return ret;
}

int
main(int argc, char **argv)
{
    unsigned count = 0;
    int failed = 0;

    for (int i = 1; i < argc; i++)
        if (replay_path(argv[i], &count) < 0)
            failed = 1;
    printf("replayed %u inputs\n", count);
    if (count == 0) {
        fprintf(stderr, "replay: empty corpus\n");
        return 1;
    }
    printf("%u passed, %d failed\n", count, failed);
    return failed;
}
