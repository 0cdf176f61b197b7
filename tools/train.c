/* tapegrad train: a placeholder until the training engineer's version lands
 * (this file is to be replaced as a whole). */
#include "cli.h"

int cli_train(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("tapegrad train: not built yet\n");
    return 2;
}
