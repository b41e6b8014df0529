/*
 * Batches: n jobs, at most `parallel` at once, all on the one engine.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct batch {
    struct zmp__ctx *ctx;
    struct zmp__proc **run;   /* the jobs in flight */
    size_t *index;            /* their places in the batch */
    size_t nrun;
    uint64_t seen;            /* ctx->ndone when last looked */
};

static bool something_done(const void *arg)
{
    const struct batch *b = arg;

    return b->ctx->ndone != b->seen;
}

/* Out of a resource that finishing jobs give back: wait, do not fail. */
static bool transient(int r)
{
    return r == -EMFILE || r == -ENFILE || r == -EAGAIN || r == -ENOMEM;
}

/* Tell the caller; true when it asks to start nothing more. */
static bool report(size_t i, int r, zmp_result *results, zmp_info *infos,
                   int *errors, zmp_progress_fn progress, void *arg)
{
    if (errors)
        errors[i] = r;
    return progress && progress(arg, i, r, r == 0 ? &results[i] : NULL,
                                infos ? &infos[i] : NULL) != 0;
}

int zmp__batch(struct zmp__ctx *ctx, const zmp_options *jobs, size_t n,
               unsigned parallel, zmp_result *results, zmp_info *infos,
               int *errors, zmp_progress_fn progress, void *arg)
{
    struct batch b = { .ctx = ctx };
    size_t next = 0, k, i, collected;
    struct zmp__proc *p;
    bool stop = false;
    int r;

    if ((!jobs || !results) && n)
        return -EINVAL;
    if (!parallel)
        parallel = (unsigned)zmp_cpu_count();
    if (parallel > n)
        parallel = n ? (unsigned)n : 1;
    for (i = 0; i < n; i++) {
        results[i] = (zmp_result){ 0 };
        if (infos)
            infos[i] = (zmp_info){ 0 };
        if (errors)
            errors[i] = 0;
    }
    r = zmp__ctx_start(ctx);
    if (r < 0)
        return r;
    b.run = malloc(parallel * sizeof *b.run);
    b.index = malloc(parallel * sizeof *b.index);
    if (!b.run || !b.index) {
        r = -ENOMEM;
        goto out;
    }
    while (next < n || b.nrun > 0) {
        while (!stop && b.nrun < parallel && next < n) {
            r = zmp__launch(ctx, &jobs[next], &p);
            if (r < 0 && transient(r) && b.nrun > 0)
                break;  /* retried once a job in flight gives back */
            if (r < 0) {
                stop = report(next++, r, results, infos, errors, progress, arg);
                continue;
            }
            b.run[b.nrun] = p;
            b.index[b.nrun++] = next++;
        }
        if (stop) {
            /* The caller asked to stop: what has not started never will. */
            for (; next < n; next++)
                if (errors)
                    errors[next] = -ECANCELED;
        }
        /* Collect every finished job, keeping the others.  A callback may
         * itself run the engine (zmp_sleep...): completions it causes move
         * ndone past `seen`, so the wait below returns at once for them. */
        b.seen = ctx->ndone;
        collected = 0;
        for (k = 0; k < b.nrun;) {
            if (!zmp__job_done(b.run[k])) {
                k++;
                continue;
            }
            i = b.index[k];
            r = zmp__proc_finish(b.run[k], &results[i], infos ? &infos[i] : NULL);
            b.nrun--;
            b.run[k] = b.run[b.nrun];
            b.index[k] = b.index[b.nrun];
            stop |= report(i, r, results, infos, errors, progress, arg);
            collected++;
        }
        if (collected || b.nrun == 0)
            continue;
        r = zmp__ctx_run_until(ctx, something_done, &b, ZMP__FOREVER);
        if (r < 0)
            goto out;
    }
    r = 0;
out:
    /* Only an engine failure leaves jobs here: do not leave them running. */
    for (k = 0; k < b.nrun; k++)
        zmp__proc_abandon(b.run[k]);
    free(b.run);
    free(b.index);
    return r;
}
