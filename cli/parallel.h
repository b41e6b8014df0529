#ifndef ZMP_CLI_PARALLEL_H
#define ZMP_CLI_PARALLEL_H

#include <stdbool.h>
#include <stddef.h>

#define EXIT_USAGE 2
#define PARALLEL_HELP (-1)

/* What the command line of `zmp parallel` asks for. */
struct parallel_config {
    unsigned long jobs;        /* -j, 0: CPUs available */
    bool keep_order, halt, progress;
    const char *arg_file, *results, *cgroup;
    double timeout;            /* seconds, 0: none */
    unsigned long long output_cap;
    char **tmpl;               /* COMMAND [ARG...] */
    size_t ntmpl;
    char **args;               /* INPUT... after :::, when have_args */
    size_t nargs;
    bool have_args;
};

/*
 * Parse `zmp parallel`'s arguments (argv[0] is "parallel"): 0, or
 * EXIT_USAGE after a message on stderr, or PARALLEL_HELP after the usage
 * text on stdout.  cfg points into argv.
 */
int parallel_parse(int argc, char **argv, struct parallel_config *cfg);

/* `zmp parallel ...`: argv[0] is "parallel".  Returns the exit status. */
int cmd_parallel(int argc, char **argv);

#endif
