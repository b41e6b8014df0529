/* SPDX-License-Identifier: MIT */
/* Command templates of `zmp parallel`. */
#ifndef ZMP_CLI_TEMPLATE_H
#define ZMP_CLI_TEMPLATE_H

#include <stddef.h>

/*
 * Build the argv of job number seq (from 1) with input line `input` from
 * the template words tmpl[0..n-1]: in each word, "{}" becomes the input
 * and "{#}" the job number.  When no word holds "{}", the input is added
 * as one more argument (as xargs does).  Nothing goes through a shell.
 * Returns 0 and a NULL-terminated argv (free with template_free), or
 * -ENOMEM, or -EINVAL when n is 0.
 */
int template_expand(char *const *tmpl, size_t n, const char *input,
                    unsigned long seq, char ***ret_argv);
void template_free(char **argv);

#endif
