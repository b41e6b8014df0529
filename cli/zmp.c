/*
 * zmp: the command line.  Just another client of <zmp.h>.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "parallel.h"
#include "zmp.h"

static const char usage[] =
    "usage: zmp [--interpreter PATH] COMMAND [ARG...]\n"
    "\n"
    "commands:\n"
    "  run [--json] SCRIPT [ARG...]\n"
    "                           run INTERPRETER SCRIPT ARG..., pass its output\n"
    "                           through (or print one JSON object) and exit\n"
    "                           with its status\n"
    "  run-code [--json] CODE [ARG...]\n"
    "                           run INTERPRETER -c CODE ARG..., likewise\n"
    "  parallel [OPTIONS] [--] COMMAND [ARG...] [::: INPUT...]\n"
    "                           run COMMAND once per input line, N at once\n"
    "                           (zmp parallel --help)\n"
    "  cpu-count                print the CPUs this process may use\n"
    "  backend                  print the engine in use (io_uring or poll)\n"
    "\n"
    "options:\n"
    "  -i, --interpreter PATH   interpreter (default: $ZMP_INTERPRETER, else\n"
    "                           the build's default)\n"
    "  -h, --help               this text\n"
    "  -V, --version            the version\n";

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void print_json(const zmp_result *res)
{
    printf("{\"ok\":%s,\"exit_code\":%d,\"out\":", res->ok ? "true" : "false",
           res->exit_code);
    json_string(stdout, res->out, res->out_len);
    fputs(",\"err\":", stdout);
    json_string(stdout, res->err, res->err_len);
    fputs(",\"output\":", stdout);
    json_string(stdout, res->output, res->output_len);
    fputs("}\n", stdout);
    fflush(stdout);
}

static int run(bool code, bool json, const char *what, char **args)
{
    zmp_result res;
    int r;

    r = code ? zmp_run_code(what, (const char *const *)args, &res)
             : zmp_run(what, (const char *const *)args, &res);
    if (r < 0) {
        fprintf(stderr, "zmp: cannot run %s (engine %s): %s\n", zmp_interpreter(),
                zmp_backend(), zmp_strerror(r));
        return 127;
    }
    if (json) {
        print_json(&res);
    } else {
        write_all(1, res.out, res.out_len);
        write_all(2, res.err, res.err_len);
    }
    /* Like a shell: a death by signal N is 128 + N. */
    r = res.exit_code < 0 ? 128 - res.exit_code : res.exit_code;
    zmp_result_free(&res);
    zmp_deinit();
    return r;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "interpreter", required_argument, NULL, 'i' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *cmd;
    int c, r;

    /* Options stop at the command: what follows belongs to the child. */
    while ((c = getopt_long(argc, argv, "+i:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            r = zmp_set_interpreter(optarg);
            if (r < 0) {
                fprintf(stderr, "zmp: --interpreter: %s\n", zmp_strerror(r));
                return 2;
            }
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        case 'V':
            printf("zmp %s\n", zmp_version());
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "zmp: missing command\n%s", usage);
        return 2;
    }
    cmd = argv[optind++];
    if (!strcmp(cmd, "run") || !strcmp(cmd, "run-code")) {
        bool json = optind < argc && !strcmp(argv[optind], "--json");

        optind += json;
        if (optind < argc && !strcmp(argv[optind], "--"))
            optind++;
        if (optind >= argc) {
            fprintf(stderr, "zmp: %s: missing %s\n", cmd,
                    cmd[3] ? "CODE" : "SCRIPT");
            return 2;
        }
        return run(cmd[3] != '\0', json, argv[optind], argv + optind + 1);
    }
    if (!strcmp(cmd, "parallel"))
        return cmd_parallel(argc - optind + 1, argv + optind - 1);
    if (!strcmp(cmd, "cpu-count") && optind == argc) {
        printf("%d\n", zmp_cpu_count());
        return 0;
    }
    if (!strcmp(cmd, "backend") && optind == argc) {
        const char *b = zmp_backend();

        printf("%s\n", b);
        return strcmp(b, "none") ? 0 : 1;
    }
    fprintf(stderr, "zmp: unknown command or extra arguments: %s\n%s", cmd, usage);
    return 2;
}
