/* SPDX-License-Identifier: Apache-2.0 */
/* main.c: the `ocra` executable; everything happens in ocra_cli_main(). */
#include "cli/cli.h"

int
main(int argc, char **argv)
{
    return ocra_cli_main(argc, argv);
}
