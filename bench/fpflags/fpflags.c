/* bench/fpflags — LD_PRELOAD it into any program to see whether its
 * floating point ever underflows or reads a denormal:
 *
 *   LD_PRELOAD=build-bench/bench/libfpflags.so build/cae pretrain ...
 *
 * At load it clears MXCSR's sticky exception flags (and, with
 * CAE_FPFLAGS_FLUSH=1, sets flush-to-zero and denormals-are-zero); threads
 * created later inherit MXCSR from their creator. At exit it prints, on
 * stderr, each OpenMP thread's flags as the program left them: the
 * destructor's parallel region runs on libgomp's pool, the threads that did
 * the program's work. DE: a denormal was read; UE: a result underflowed.
 * The report goes to a copy of stderr's descriptor taken at load, so that
 * a program that closes stderr before it exits (coreutils, mawk) is still
 * reported. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xmmintrin.h>

enum { IE = 1u << 0, DE = 1u << 1, ZE = 1u << 2, OE = 1u << 3, UE = 1u << 4, PE = 1u << 5 };
enum { DAZ = 1u << 6, FTZ = 1u << 15 };

static int report_fd = -1;

__attribute__((constructor)) static void fpflags_start(void)
{
    report_fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
    unsigned csr = _mm_getcsr() & ~(IE | DE | ZE | OE | UE | PE);
    const char *flush = getenv("CAE_FPFLAGS_FLUSH");
    if (flush && !strcmp(flush, "1")) csr |= FTZ | DAZ;
    _mm_setcsr(csr);
}

__attribute__((destructor)) static void fpflags_report(void)
{
#pragma omp parallel
    {
        const unsigned c = _mm_getcsr();
        char line[96];
        const int n = snprintf(line, sizeof line, "fpflags: thread %d: denormal read %s, underflow %s "
                               "(flush %s)\n", omp_get_thread_num(), c & DE ? "YES" : "no",
                               c & UE ? "YES" : "no", c & FTZ ? "on" : "off");
#pragma omp critical
        if (report_fd < 0 || write(report_fd, line, (size_t)n) != n) fputs(line, stderr);
    }
}
