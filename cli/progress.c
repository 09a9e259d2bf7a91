/* Training progress on a terminal: one redrawn line on stderr with the
 * epoch, a bar, the rate in examples/s and the ETA of the epoch. Inert when
 * stderr is not a terminal (logs then get one plain line per epoch from the
 * commands themselves). */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_common.h"

enum { BAR = 30 };

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cli_progress_init(cli_progress *pg, int epochs)
{
    memset(pg, 0, sizeof *pg);
    pg->enabled = isatty(fileno(stderr));
    pg->epochs = epochs;
}

static void clock_str(double s, char *buf, size_t len)
{
    const long t = s > 0 && s < 1e7 ? (long)(s + 0.5) : 0;
    if (t >= 3600)
        snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, len, "%ld:%02ld", t / 60, t % 60);
}

void cli_progress_batch(cli_progress *pg, int epoch, int64_t done, int64_t total)
{
    if (!pg->enabled || total <= 0) return;
    const double t = cli_now();
    if (epoch != pg->epoch) {
        pg->epoch = epoch;
        pg->start = t;
        pg->last_draw = 0;
    }
    if (done < total && t - pg->last_draw < 0.1) return;
    pg->last_draw = t;
    const double el = t - pg->start, rate = el > 0 ? (double)done / el : 0;
    char bar[BAR + 1], eta[32];
    const int fill = (int)((double)BAR * (double)done / (double)total);
    for (int i = 0; i < BAR; i++) bar[i] = i < fill ? '#' : '.';
    bar[BAR] = '\0';
    clock_str(rate > 0 ? (double)(total - done) / rate : 0, eta, sizeof eta);
    fprintf(stderr, "\r\033[Kepoch %d/%d [%s] %3d%%  %.0f ex/s  ETA %s", epoch, pg->epochs, bar,
            (int)(100.0 * (double)done / (double)total), rate, eta);
    fflush(stderr);
    pg->drawn = 1;
}

void cli_progress_clear(cli_progress *pg)
{
    if (!pg->enabled || !pg->drawn) return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    pg->drawn = 0;
}
