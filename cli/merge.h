/* SPDX-License-Identifier: MIT */
#ifndef ZMP_CLI_MERGE_H
#define ZMP_CLI_MERGE_H

/* zmp merge's exit statuses besides 0 (complete, every job succeeded). */
#define MERGE_FAILED 1      /* complete, some jobs failed */
#define MERGE_INCOMPLETE 2  /* a shard missing or unfinished, inputs without a job */
#define MERGE_ERROR 255     /* usage; files unreadable or not of one run */

/* `zmp merge [--json] [--failed] FILE...`: argv[0] is "merge". */
int cmd_merge(int argc, char **argv);

#endif
