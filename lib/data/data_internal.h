/* Private helpers shared by the lib/data sources. */
#ifndef CAE_DATA_INTERNAL_H
#define CAE_DATA_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "cae/data.h"

/* a * b into *out; 0 on overflow or negative operands. */
int cae_data_mul(int64_t a, int64_t b, int64_t *out);

/* Bytes this process can reasonably hold: the machine's physical memory
 * (sysconf _SC_PHYS_PAGES x page size), lowered by the soft RLIMIT_AS and
 * RLIMIT_DATA when set. Sizes read from files are checked against it before
 * anything is allocated: with overcommit a larger malloc may succeed and the
 * process be killed later, when the pages are touched. */
int64_t cae_data_mem_budget(void);

/* Write len bytes atomically: path.tmp.PID, fsync-free fwrite, rename. */
cae_status cae_data_write_file(const char *path, const void *head, size_t head_len,
                                    const void *body, size_t body_len, cae_error *err);

/* Bytes to reals, value = byte / 255: the one conversion of u8 images. */
static inline void cae_data_bytes_to_reals(const uint8_t *in, int64_t n, cae_real *out)
{
    for (int64_t i = 0; i < n; i++) out[i] = (cae_real)(in[i] * (1.0 / 255.0));
}

/* Internal access to photo pixels (photos.c). */
int cae_photos_size(const cae_photos *p, int i, int *w, int *h);
const float *cae_photos_pixels(const cae_photos *p, int i);

#endif
