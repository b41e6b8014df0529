/* SPDX-License-Identifier: MIT */
/* Descriptor counting, shared by the CUnit suite and tests/fault. */
#ifndef ZMP_TEST_FDS_H
#define ZMP_TEST_FDS_H

/* The number of open descriptors of this process, or -1. */
int count_fds(void);

#endif
