/* SPDX-License-Identifier: MIT */
/*
 * The command line of zmp parallel: words split at NUL bytes go to
 * parallel_parse as argv.  It must accept or refuse (status 255, with a
 * message), never crash or read past argv, and what it accepts must hold
 * together: no separator left in the command, sources within argv,
 * numbers in range.
 * (Run with -close_fd_mask=3: its messages and usage texts are expected.)
 */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parallel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1), *argv[66];
    struct parallel_config cfg;
    size_t off = 0, i;
    int argc = 1, r;
    bool other_seps = false;  /* --arg-sep, --arg-file-sep */

    assert(buf);
    memcpy(buf, data, size);
    buf[size] = '\0';
    argv[0] = (char *)"parallel";
    while (off < size && argc < 65) {
        argv[argc++] = buf + off;
        off += strlen(buf + off) + 1;
    }
    argv[argc] = NULL;
    for (i = 1; i < (size_t)argc; i++)
        other_seps |= !strncmp(argv[i], "--arg", 5);  /* --arg-sep, --argsep... */
    r = parallel_parse(argc, argv, &cfg);
    assert(r == 0 || r == EXIT_USAGE || r == EXIT_ERROR || r == PARALLEL_HELP ||
           r == PARALLEL_VERSION);
    if (r == 0) {
        assert(cfg.tmpl >= argv + 1 && cfg.tmpl + cfg.ntmpl <= argv + argc);
        for (i = 0; i < cfg.ntmpl && !other_seps; i++)
            assert(strcmp(cfg.tmpl[i], ":::") && strcmp(cfg.tmpl[i], ":::+") &&
                   strcmp(cfg.tmpl[i], "::::") && strcmp(cfg.tmpl[i], "::::+"));
        for (i = 0; i < cfg.nsrcs; i++) {
            const struct source_spec *sp = &cfg.srcs[i];

            if (sp->kind == SRC_ARGS)
                assert(sp->args >= argv + 1 && sp->args + sp->nargs <= argv + argc);
            else
                assert(sp->path != NULL);
        }
        assert(cfg.jobs <= 1000000);
        assert(cfg.shard_n >= 1 && cfg.shard_k < cfg.shard_n);
        assert(!cfg.resume || cfg.results || cfg.joblog);
        assert(cfg.timeout >= 0 && cfg.timeout <= 1e9);
        assert(cfg.delim_len <= sizeof cfg.delim);
        assert(cfg.halt_when == HALT_NEVER || cfg.halt_n > 0);
        assert(!cfg.halt_pct || cfg.halt_n <= 100);
        parallel_config_free(&cfg);
    }
    free(buf);
    return 0;
}
