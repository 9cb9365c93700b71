/* placeholder until the results verbs land */
#include <stdio.h>
#include "cli.h"
int cmd_show(int argc, char **argv) { (void)argc; (void)argv; fputs("mpsl show: not built yet\n", stderr); return 1; }
