#ifndef ZMP_CLI_PARALLEL_H
#define ZMP_CLI_PARALLEL_H

/* `zmp parallel ...`: argv[0] is "parallel".  Returns the exit status. */
int cmd_parallel(int argc, char **argv);

#endif
