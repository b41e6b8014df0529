/* SPDX-License-Identifier: MIT */
/*
 * IORING_OP_WAITID for liburing headers older than 2.5 (Debian 12 has 2.3).
 * The opcode's number and SQE layout are kernel ABI (6.7+), so they are
 * safe to spell out here; configure includes this only when the installed
 * liburing lacks them.
 */
#ifndef ZMP_COMPAT_WAITID_H
#define ZMP_COMPAT_WAITID_H

#include <liburing.h>
#include <sys/wait.h>

#if !HAVE_DECL_IORING_OP_WAITID
#define IORING_OP_WAITID 50
#endif

#if !HAVE_IO_URING_PREP_WAITID
/* id goes in fd, idtype in len, the wait options in file_index and the
 * siginfo pointer in addr2; the remaining flags field must be zero. */
static inline void io_uring_prep_waitid(struct io_uring_sqe *sqe,
                                        idtype_t idtype, id_t id,
                                        siginfo_t *infop, int options,
                                        unsigned int flags)
{
    io_uring_prep_rw(IORING_OP_WAITID, sqe, (int)id, NULL, (unsigned)idtype, 0);
    sqe->rw_flags = (int)flags;
    sqe->file_index = (unsigned)options;
    sqe->addr2 = (unsigned long)infop;
}
#endif

#endif
