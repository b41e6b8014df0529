/* SPDX-License-Identifier: MIT */
/*
 * zmp_strerror: a message for a negative errno, safe from any thread.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#ifdef HAVE_STRERRORDESC_NP
/* glibc 2.32+: constant strings, nothing shared is written. */
const char *zmp_strerror(int err)
{
    const char *s = strerrordesc_np(err < 0 ? -err : err);

    return s ? s : "Unknown error";
}
#else
/* Elsewhere strerror() may write a static buffer that another thread is
 * reading: format into a buffer of the calling thread's own.  %m is
 * errno's message in glibc and musl alike. */
const char *zmp_strerror(int err)
{
    static __thread char buf[128];
    int saved = errno;

    errno = err < 0 ? -err : err;
    snprintf(buf, sizeof buf, "%m");
    errno = saved;
    return buf;
}
#endif
