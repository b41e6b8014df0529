/* SPDX-License-Identifier: MIT */
/*
 * zmp: the command line.  Just another client of <zmp.h>.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "merge.h"
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
    "  merge [--json] [--failed] FILE...\n"
    "                           check that the --results files of a sharded\n"
    "                           run are complete (zmp merge --help)\n"
    "  cpu-count                print the CPUs this process may use\n"
    "  backend                  print the engine in use (io_uring or poll)\n"
    "\n"
    "options:\n"
    "  -i, --interpreter PATH   interpreter (default: $ZMP_INTERPRETER, else\n"
    "                           the build's default)\n"
    "  -h, --help               this text\n"
    "  -V, --version            the version\n";

/* zmp's own failure (its output could not be written), as env(1) and
 * timeout(1) say it: 126 and 127 are taken by "cannot run". */
#define EXIT_OWN_FAILURE 125

static int print_json(const zmp_result *res, const zmp_info *info)
{
    printf("{\"ok\":%s,\"exit_code\":%d,\"seconds\":%.6f,\"user_cpu\":%.6f,"
           "\"system_cpu\":%.6f,\"max_rss_kb\":%ld,\"out\":",
           res->ok ? "true" : "false", res->exit_code, info->seconds, info->user_cpu,
           info->system_cpu, info->max_rss_kb);
    json_string(stdout, res->out, res->out_len);
    fputs(",\"err\":", stdout);
    json_string(stdout, res->err, res->err_len);
    fputs(",\"output\":", stdout);
    json_string(stdout, res->output, res->output_len);
    fputs("}\n", stdout);
    return fflush(stdout) != 0 || ferror(stdout) ? -errno : 0;
}

/*
 * The child of run shares zmp's process group: a Ctrl-C at the terminal
 * reaches both.  A signal sent to zmp alone (kill, a closing session) is
 * passed on; zmp waits for the child, prints what it got, and dies of it.
 */
static volatile sig_atomic_t run_sig;

static void on_run_signal(int sig, siginfo_t *si, void *uctx)
{
    int saved = errno;

    (void)uctx;
    if (!run_sig)
        run_sig = sig;
    /* SI_KERNEL: from the terminal, to the whole group, the child too. */
    if (si->si_code != SI_KERNEL)
        zmp_signal_all(sig);
    errno = saved;
}

static void forward_run_signals(void)
{
    static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
    struct sigaction sa = { .sa_sigaction = on_run_signal,
                            .sa_flags = SA_SIGINFO | SA_RESTART };
    size_t i;

    for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
    job_control_install();
}

/* zmp_run() or zmp_run_code(), with the job's zmp_info as well; the
 * merged output only when it is printed (json). */
static int run_with_info(bool code, bool json, const char *what, char **args,
                         zmp_result *res, zmp_info *info)
{
    size_t n = 0, k = 0;
    const char **argv;
    zmp_options o = { 0 };
    int r;

    while (args[n])
        n++;
    argv = calloc(n + 3, sizeof *argv);
    if (!argv)
        return -ENOMEM;
    if (code)
        argv[k++] = "-c";
    argv[k++] = what;
    memcpy(argv + k, args, n * sizeof *argv);
    o.argv = argv;
    /* A wrapper's child does not outlive it, even killed by SIGKILL. */
    o.flags = ZMP_DIE_WITH_PARENT | (json ? 0 : ZMP_NO_MERGED);
    r = zmp_run_opts(&o, res, info);
    free(argv);
    return r;
}

static int run(bool code, bool json, const char *what, char **args)
{
    zmp_result res;
    zmp_info info;
    int r, w, status;

    if (!*what) {
        /* The library refuses it (-EINVAL); say what is wrong. */
        fprintf(stderr, "zmp: %s: the %s is empty\n", code ? "run-code" : "run",
                code ? "CODE" : "SCRIPT");
        return 2;
    }
    forward_run_signals();
    r = run_with_info(code, json, what, args, &res, &info);
    if (r < 0) {
        fprintf(stderr, "zmp: cannot run %s (engine %s): %s\n", zmp_interpreter(),
                zmp_backend(), zmp_strerror(r));
        return 127;
    }
    /* Like a shell: a death by signal N is 128 + N. */
    status = res.exit_code < 0 ? 128 - res.exit_code : res.exit_code;
    if (json) {
        w = print_json(&res, &info);
    } else {
        w = write_all(1, res.out, res.out_len);
        if (w == 0 && write_all(2, res.err, res.err_len) < 0)
            status = EXIT_OWN_FAILURE;  /* nowhere to say it */
    }
    if (w < 0) {
        fprintf(stderr, "zmp: cannot write standard output: %s\n", strerror(-w));
        status = EXIT_OWN_FAILURE;
    }
    zmp_result_free(&res);
    zmp_deinit();
    if (run_sig) {
        signal(run_sig, SIG_DFL);
        raise(run_sig);
        status = 128 + run_sig;
    }
    return status;
}

/*
 * A closed 0, 1 or 2 would be taken by the next file opened (a --results
 * file, a pipe of the library's), and messages or job output would land
 * in it.  Fill each with /dev/null, as daemons and GNU tools do: read-only,
 * so that writing to a closed 1 or 2 still fails (EBADF) and is reported.
 * Returns whether stdin was closed.
 */
static bool fill_std_fds(void)
{
    bool stdin_closed = false;
    int fd;

    for (fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        stdin_closed |= fd == 0;
        /* The lowest free descriptor: fd itself (0 to fd - 1 are open). */
        if (open("/dev/null", O_RDONLY) < 0) {
            /* No /dev/null (a bare chroot): the hole cannot be filled;
             * stop before anything is opened or run. */
            dprintf(2, "zmp: cannot open /dev/null: %s\n", strerror(errno));
            exit(2);
        }
    }
    return stdin_closed;
}

/* The engine asked for in $ZMP_BACKEND must exist: say so by name rather
 * than fail later with a bare "Invalid argument". */
static bool backend_env_ok(void)
{
    const char *b = getenv("ZMP_BACKEND");
    int r;

    if (!b || !*b)
        return true;
    r = zmp_set_backend(b);
    if (r == -EINVAL)
        fprintf(stderr, "zmp: ZMP_BACKEND=%s: no such engine (use io_uring, poll "
                        "or auto)\n", b);
    else if (r < 0)
        fprintf(stderr, "zmp: ZMP_BACKEND=%s: %s\n", b,
                r == -ENOTSUP ? "this build has no such engine" : zmp_strerror(r));
    return r >= 0;
}

/* Output of the small commands: a write error is an error. */
static int flush_stdout(int status)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "zmp: cannot write standard output: %s\n", strerror(errno));
        return 2;
    }
    return status;
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
    bool stdin_closed = fill_std_fds();
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
            return flush_stdout(0);
        case 'V':
            printf("zmp %s\n", zmp_version());
            return flush_stdout(0);
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
        if (!backend_env_ok())
            return 127;
        return run(cmd[3] != '\0', json, argv[optind], argv + optind + 1);
    }
    if (!strcmp(cmd, "parallel") && !backend_env_ok())
        return EXIT_ERROR;
    if (!strcmp(cmd, "parallel"))
        return cmd_parallel(argc - optind + 1, argv + optind - 1, stdin_closed);
    if (!strcmp(cmd, "merge"))
        return cmd_merge(argc - optind + 1, argv + optind - 1);
    if (!strcmp(cmd, "cpu-count") && optind == argc) {
        printf("%d\n", zmp_cpu_count());
        return flush_stdout(0);
    }
    if (!strcmp(cmd, "backend") && optind == argc) {
        const char *b = backend_env_ok() ? zmp_backend() : "none";

        printf("%s\n", b);
        return flush_stdout(strcmp(b, "none") ? 0 : 1);
    }
    fprintf(stderr, "zmp: unknown command or extra arguments: %s\n%s", cmd, usage);
    return 2;
}
