/* Private to lib/models: what checkpoint.c (description checks, save),
 * checkpoint_load.c (load) and npy.c (NumPy export) share. The byte
 * layout is in docs/CHECKPOINT.md. */
#ifndef CAE_CKPT_INTERNAL_H
#define CAE_CKPT_INTERNAL_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "cae/checkpoint.h"

#define CKPT_MAGIC "CAECKPT" /* + its NUL: 8 bytes */
#define CKPT_VERSION 1u
#define CKPT_HEADER 24
#define CKPT_NAME_MAX 63
#define CKPT_MAX_TENSORS 4096
#define CKPT_MAX_CLASSES (1 << 24)
#define CKPT_MAX_EPOCHS 100000000
#define CKPT_TENSOR_MIN 13 /* role + name length + 1-byte name + rank */
#define NO_OFF UINT64_MAX

enum { ROLE_MODEL = 0, ROLE_OPT = 1 };

/* Where a message comes from: the file (NULL: "checkpoint") and the
 * caller's buffer. */
typedef struct ckpt_ctx {
    const char *path;
    cae_error *err;
} ckpt_ctx;

/* Record st and "PATH: offset N: message" (no offset when off == NO_OFF)
 * in c->err (when non-NULL) and return st. */
cae_status cae_ckpt_fail(const ckpt_ctx *c, cae_status st, uint64_t off, const char *fmt,
                              ...) __attribute__((format(printf, 4, 5)));
/* "784x1000" (or "scalar"). */
void cae_ckpt_dims_str(int rank, const int64_t *dims, char *buf, size_t len);
/* NULL if s[0..len) is a usable tensor (and file) name, else why not. */
const char *cae_ckpt_name_problem(const char *s, size_t len);

/* Little-endian fields. */
static inline void put_u32(uint8_t *b, uint32_t v)
{
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
}
static inline void put_u64(uint8_t *b, uint64_t v)
{
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t get_u32(const uint8_t *b)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)b[i] << (8 * i);
    return v;
}
static inline uint64_t get_u64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)b[i] << (8 * i);
    return v;
}
static inline uint64_t f64_bits(double x)
{
    uint64_t u;
    memcpy(&u, &x, 8);
    return u;
}
static inline double bits_f64(uint64_t u)
{
    double x;
    memcpy(&x, &u, 8);
    return x;
}

/* Offsets of the description's parts in the file (load), for messages. */
enum { U_HEAD, U_LAYER, U_CLASS = U_LAYER + CAE_MAX_LAYERS, U_DATA, U_PROGRESS, U_COUNT };

/* Every field of the description in range and the layers chained; off[]
 * (may be NULL) gives each part's file offset for the message. */
cae_status cae_ckpt_check_info(const ckpt_ctx *c, const cae_model_info *in,
                                    const uint64_t *off);

/* A tensor as the checks see it: from a store (save) or a record (load). */
typedef struct ckpt_desc {
    char name[CKPT_NAME_MAX + 1];
    int role, rank;
    int64_t dims[CAE_MAX_RANK];
    int64_t size;
    uint64_t off;  /* of the record in the file, NO_OFF on save */
    uint64_t data; /* payload offset of the values (load) */
} ckpt_desc;

/* The model tensors among d[0..n) are exactly those in's layers and
 * classifier need, with their shapes (else MISMATCH). */
cae_status cae_ckpt_check_tensors(const ckpt_ctx *c, const cae_model_info *in,
                                       const ckpt_desc *d, int n);

/* A file being written; failures are sticky (err = the first errno). */
typedef struct ckpt_writer {
    FILE *f;
    uLong crc;
    uint64_t n;
    int err; /* errno of the first failure */
} ckpt_writer;

void cae_ckpt_w_bytes(ckpt_writer *w, const void *p, size_t n);
/* n reals as little-endian f32 (bytes 4) or f64 (bytes 8). */
void cae_ckpt_w_reals(ckpt_writer *w, const cae_real *x, int64_t n, int bytes);

/* Atomic replacement of path: open path.tmp.<pid> (*tmp, malloc'd, may be
 * NULL on failure: errno says why); commit = fflush, fsync, fclose, rename
 * (0, or an errno with tmp unlinked); abort = fclose and unlink. */
FILE *cae_ckpt_atomic_open(const char *path, char **tmp);
int cae_ckpt_atomic_commit(FILE *f, const char *tmp, const char *path);
void cae_ckpt_atomic_abort(FILE *f, const char *tmp);

#endif
