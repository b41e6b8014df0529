/* SPDX-License-Identifier: MIT */
/*
 * A test child without libc (x86-64), for tests that start thousands of
 * children: glibc's start-up alone costs ~300 us here, this almost nothing.
 *
 *   nolibc-child echo WORD        write WORD and a newline
 *   nolibc-child sleep MS WORD    sleep MS milliseconds, then the same
 */
static long sys3(long n, long a, long b, long c)
{
    long r;

    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c)
                     : "rcx", "r11", "memory");
    return r;
}

static unsigned long len(const char *s)
{
    unsigned long n = 0;

    while (s[n])
        n++;
    return n;
}

static int eq(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

static void say(const char *w)
{
    char nl = '\n';

    sys3(1, 1, (long)w, (long)len(w));
    sys3(1, 1, (long)&nl, 1);
}

__attribute__((noreturn, used)) void zmp_test_main(long *sp)
{
    long argc = sp[0];
    char **argv = (char **)(sp + 1);
    int status = 2;

    if (argc == 3 && eq(argv[1], "echo")) {
        say(argv[2]);
        status = 0;
    } else if (argc == 4 && eq(argv[1], "sleep")) {
        long ms = 0;
        const char *s = argv[2];
        long ts[2];

        while (*s >= '0' && *s <= '9')
            ms = ms * 10 + (*s++ - '0');
        ts[0] = ms / 1000;
        ts[1] = (ms % 1000) * 1000000;
        while (sys3(35, (long)ts, (long)ts, 0) == -4)  /* nanosleep, EINTR */
            ;
        say(argv[3]);
        status = 0;
    }
    sys3(231, status, 0, 0);
    for (;;)
        ;
}

__asm__(".globl _start\n_start:\n\tmovq %rsp, %rdi\n\tandq $-16, %rsp\n\tcall zmp_test_main\n");
