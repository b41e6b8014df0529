/* SPDX-License-Identifier: MIT */
/*
 * Which interpreter a child runs, and where it is.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

const char *zmp__interp_name(const struct zmp__ctx *ctx)
{
    const char *s;

    if (ctx->interp)
        return ctx->interp;
    s = getenv("ZMP_INTERPRETER");
    if (s && *s)
        return s;
    return ZMP_DEFAULT_INTERPRETER;
}

/*
 * Search PATH for name the way execvp does, except that empty entries
 * (which mean the current directory) are skipped: a program is never taken
 * from the current directory unless its path says so.  A file found but
 * not executable is remembered so the caller gets EACCES, not ENOENT.
 */
static int path_search(const char *name, const char *pathenv, char **ret)
{
    const char *dir, *end;
    size_t dlen, nlen = strlen(name);
    struct stat st;
    int r = -ENOENT;
    char *buf;

    for (dir = pathenv; dir && *dir; dir = end ? end + 1 : NULL) {
        end = strchr(dir, ':');
        dlen = end ? (size_t)(end - dir) : strlen(dir);
        if (dlen == 0)
            continue;
        buf = malloc(dlen + nlen + 2);
        if (!buf)
            return -ENOMEM;
        memcpy(buf, dir, dlen);
        buf[dlen] = '/';
        memcpy(buf + dlen + 1, name, nlen + 1);
        if (stat(buf, &st) == 0 && S_ISREG(st.st_mode)) {
            if (access(buf, X_OK) == 0) {
                *ret = buf;
                return 0;
            }
            r = -EACCES;
        }
        free(buf);
        if (!end)
            break;
    }
    return r;
}

static int dup_or_null(const char *s, char **ret)
{
    *ret = NULL;
    if (s && !(*ret = strdup(s)))
        return -ENOMEM;
    return 0;
}

/*
 * Where the program called name is: a name with a slash is used as it is,
 * a bare name is searched in PATH.  The last search is cached for as long
 * as the name and PATH stay the same.  The path is valid until the next
 * call.
 */
int zmp__resolve(struct zmp__ctx *ctx, const char *name, const char **ret_path)
{
    const char *pathenv;
    char *found = NULL, *n, *pe;
    char defpath[256];
    int r;

    if (!*name)
        return -ENOENT;
    if (strchr(name, '/')) {
        *ret_path = name;
        return 0;
    }
    pathenv = getenv("PATH");
    if (!pathenv) {
        size_t len = confstr(_CS_PATH, defpath, sizeof defpath);
        pathenv = len > 0 && len <= sizeof defpath ? defpath : "/bin:/usr/bin";
    }
    if (ctx->resolved_path && !strcmp(ctx->resolved_name, name) &&
        !strcmp(ctx->resolved_pathenv, pathenv)) {
        *ret_path = ctx->resolved_path;
        return 0;
    }
    r = path_search(name, pathenv, &found);
    if (r < 0)
        return r;
    if (dup_or_null(name, &n) < 0 || dup_or_null(pathenv, &pe) < 0) {
        free(n);
        free(found);
        return -ENOMEM;
    }
    free(ctx->resolved_name);
    free(ctx->resolved_pathenv);
    free(ctx->resolved_path);
    ctx->resolved_name = n;
    ctx->resolved_pathenv = pe;
    ctx->resolved_path = found;
    *ret_path = found;
    return 0;
}
