/*
 * cae/data.h — real data in, safely.
 *
 * IDX files (the MNIST format; raw or gzip) are read by cae_idx_read, which
 * checks magic, type, rank and dimensions against the file and against the
 * memory the process can use (physical memory, rlimits) before it allocates
 * anything, and on any problem returns a status and writes a
 * message naming the file, the byte offset and what was expected into the
 * caller's buffer. A cae_dataset is n examples of dim reals in [0,1] plus n
 * integer labels; cae_splits holds the standard train/valid/test splits of a
 * named set (mnist, fashion, or one of the generated variations). A
 * cae_batcher walks a dataset in shuffled minibatches, gathering only the
 * rows of each batch. The variations benchmark (Larochelle et al. 2007) is
 * generated here, deterministically for a seed.
 *
 *   cae_error err;
 *   cae_splits *s;
 *   if (cae_splits_load("data", "mnist", &s, &err)) { report(err.msg); }
 *   cae_batcher *b = cae_batcher_new(s->train, 20, seed, 1);
 *   for (int e = 0; e < epochs; e++) {
 *       cae_batcher_epoch(b, e);
 *       while (cae_batcher_next(b, xbuf, ybuf) > 0) { ... }
 *   }
 *   cae_batcher_free(b); cae_splits_free(s);
 *
 * Ownership: every *_new / *_load / *_read result is owned by the caller and
 * released with the matching *_free (NULL is fine). Nothing here prints,
 * exits or keeps global state; err may be NULL when the message is unwanted.
 */
#ifndef CAE_DATA_H
#define CAE_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "cae/graph.h" /* cae_real */

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ IDX */

#define CAE_IDX_MAX_RANK 4
/* Largest body the reader will allocate (bytes). */
#define CAE_IDX_MAX_BYTES ((int64_t)1 << 33)

/* IDX element type bytes. */
#define CAE_IDX_U8 0x08
#define CAE_IDX_I8 0x09
#define CAE_IDX_I16 0x0B
#define CAE_IDX_I32 0x0C
#define CAE_IDX_F32 0x0D
#define CAE_IDX_F64 0x0E

typedef struct cae_idx {
    int type;                         /* one of CAE_IDX_* */
    int rank;                         /* 1..CAE_IDX_MAX_RANK */
    int64_t dims[CAE_IDX_MAX_RANK];   /* dims[0] = number of items */
    int64_t count;                    /* product of dims */
    int gzip;                         /* 1 if the file was gzip-compressed */
    void *data;                       /* count elements, host byte order */
} cae_idx;

/* Read a raw or gzip IDX file (gzip detected by content). On failure *out is
 * NULL and err holds "FILE: offset N: expected ..., found ...". */
cae_status cae_idx_read(const char *path, cae_idx **out, cae_error *err);
void cae_idx_free(cae_idx *x);
/* Size in bytes of one element of a type (0 for an unknown type). */
int cae_idx_type_size(int type);
/* Element i (0 <= i < count) converted to double. */
double cae_idx_get(const cae_idx *x, int64_t i);
/* Write a raw IDX file atomically (PATH.tmp.PID then rename). data holds
 * prod(dims) elements of the type, host byte order. */
cae_status cae_idx_write(const char *path, int type, int rank, const int64_t *dims,
                              const void *data, cae_error *err);

/* ------------------------------------------------------------- datasets */

typedef struct cae_dataset {
    int64_t n;        /* examples */
    int64_t dim;      /* reals per example (rows * cols) */
    int rows, cols;   /* image shape (dim x 1 for rank-2 files) */
    int n_classes;    /* 1 + largest label */
    /* The examples, n x dim, row-major, values in [0,1]: as reals in x, or
     * (sets read from u8 files: MNIST, Fashion-MNIST, the variations) as
     * bytes in x8, example value = byte / 255, with x NULL until
     * cae_dataset_reals converts them. Read them through cae_dataset_reals
     * or a cae_batcher, which work for both. */
    cae_real *x;
    const uint8_t *x8;
    int32_t *y;       /* n labels in [0, n_classes) */
    int owns;         /* 0 for a view into another dataset */
    int x_converted;  /* x was allocated by cae_dataset_reals (internal) */
} cae_dataset;

/* Load images (rank 3 n x rows x cols or rank 2 n x dim; u8 kept as bytes,
 * scaled by 1/255 when read, or f32/f64 already in [0,1]) and labels (rank
 * 1, integers 0..255). Keeping bytes holds MNIST's 70 000 images in 55 MB
 * instead of 219 MB of floats. */
cae_status cae_dataset_load(const char *images_path, const char *labels_path,
                                 cae_dataset **out, cae_error *err);
/* The examples as n x dim reals: d->x, converted from d->x8 on the first
 * call for a set stored as bytes (the reals are then kept with d and freed
 * by cae_dataset_free; the bytes / 255 in double, rounded to cae_real).
 * NULL when out of memory (or beyond what the process may use, as for
 * cae_idx_read). Not safe to call on one set from two threads. */
const cae_real *cae_dataset_reals(const cae_dataset *d);
/* Rows [begin, begin+count) of d as reals without touching d: a pointer into
 * d->x when d holds reals (*owned set to NULL), else a converted copy that
 * *owned also points to, for the caller to free(). NULL when out of memory
 * (or beyond what the process may use) or the range is not in d. */
const cae_real *cae_dataset_rows(const cae_dataset *d, int64_t begin, int64_t count,
                                 cae_real **owned);
/* Rows [begin, begin+count) of d as reals into out (count x dim). */
void cae_dataset_copy_rows(const cae_dataset *d, int64_t begin, int64_t count, cae_real *out);
/* A non-owning view of rows [begin, begin+count) of d; d must outlive it. */
cae_dataset *cae_dataset_view(const cae_dataset *d, int64_t begin, int64_t count);
/* A new set holding a's examples then b's (copies; neither is kept): the
 * training set of a refit on train + valid. a and b need the same dim and
 * both labels or neither; the result keeps bytes when both hold bytes,
 * else reals (a byte read as byte / 255, as cae_dataset_reals does), a's
 * image shape, and n_classes the larger of the two. NULL when they do not
 * match or out of memory. */
cae_dataset *cae_dataset_concat(const cae_dataset *a, const cae_dataset *b);
void cae_dataset_free(cae_dataset *d);

/* The standard splits of a named set, loaded from data_dir (fetched by
 * scripts/fetch-data.sh or generated by cae_variations_write):
 *   "mnist", "fashion": train = first 50 000 of the training file, valid =
 *   its last 10 000, test = the 10 000 test file;
 *   a variation name ("basic", "rot", ...): DIR/variations/NAME/{train,valid,test}. */
typedef struct cae_splits {
    char name[32];
    cae_dataset *train, *valid, *test;
    cae_dataset *owned[3]; /* the loaded files the splits view (internal) */
} cae_splits;

cae_status cae_splits_load(const char *data_dir, const char *name, cae_splits **out,
                                cae_error *err);
void cae_splits_free(cae_splits *s);

/* ------------------------------------------------------------ minibatch */

typedef struct cae_batcher cae_batcher;

/* Batches of `batch` rows of d (not copied; d must outlive the batcher).
 * drop_last = 1 skips a final partial batch (graphs have a fixed batch). */
cae_batcher *cae_batcher_new(const cae_dataset *d, int64_t batch, uint64_t seed, int drop_last);
void cae_batcher_free(cae_batcher *b);
/* Start epoch e: the order is a pure function of (seed, e), so runs resume. */
void cae_batcher_epoch(cae_batcher *b, uint64_t epoch);
/* Copy the next batch into x (batch x dim) and y (batch; may be NULL;
 * zeros for a set without labels).
 * Returns the number of rows written, 0 at the end of the epoch. */
int64_t cae_batcher_next(cae_batcher *b, cae_real *x, int32_t *y);
/* Data-parallel training: advance by one batch as cae_batcher_next does but
 * copy only part `part` of `parts` of it, rows [part m / parts, (part + 1) m /
 * parts) of its m rows (cae_comm_slice), into x and y; *rows = that count
 * (0 when m < parts leaves this part empty). Returns m, 0 at the end. */
int64_t cae_batcher_next_part(cae_batcher *b, int part, int parts, cae_real *x, int32_t *y,
                              int64_t *rows);
/* The row indices of the batch cae_batcher_next just returned (of this
 * part's rows, after cae_batcher_next_part). */
const int64_t *cae_batcher_indices(const cae_batcher *b);
int64_t cae_batcher_batches_per_epoch(const cae_batcher *b);

/* ----------------------------------------------------------- photographs */

/* Grey photographs in [0,1], box-downscaled so the shorter side is at most
 * 256 px (backgrounds for bg-img / rect-img). */
typedef struct cae_photos cae_photos;

/* Decode every image listed in DIR/MANIFEST.tsv (first column: file name). */
cae_status cae_photos_load(const char *dir, cae_photos **out, cae_error *err);
/* From memory: n grey images of w[i] x h[i] floats in [0,1] (copied). */
cae_status cae_photos_from_pixels(int n, const int *w, const int *h,
                                       const float *const *pix, cae_photos **out,
                                       cae_error *err);
void cae_photos_free(cae_photos *p);
int cae_photos_count(const cae_photos *p);

/* ----------------------------------------------------------- variations */

typedef enum cae_variation {
    CAE_VAR_BASIC, CAE_VAR_ROT, CAE_VAR_BG_RAND, CAE_VAR_BG_IMG,
    CAE_VAR_BG_IMG_ROT, CAE_VAR_RECT, CAE_VAR_RECT_IMG, CAE_VAR_CONVEX,
    CAE_VAR_COUNT
} cae_variation;

/* "basic", "rot", "bg-rand", "bg-img", "bg-img-rot", "rect", "rect-img",
 * "convex"; from_name returns -1 for an unknown name. */
const char *cae_variation_name(cae_variation v);
int cae_variation_from_name(const char *name);
/* Split sizes {train, valid, test}: the paper's table, or the --small ones. */
void cae_variation_sizes(cae_variation v, int small, int64_t sizes[3]);
/* 1 if the set draws MNIST digits, 1 if it needs photographs. */
int cae_variation_uses_digits(cae_variation v);
int cae_variation_uses_photos(cae_variation v);
/* The version of set v's recipe, raised whenever the generator changes the
 * set's bytes for a given seed (rect-img: 2, the others: 1). The manifest
 * records it per set, so that files and cached results made by an older
 * recipe can be recognised. */
int cae_variation_recipe(cae_variation v);

/* Generate n 28x28 examples into img (n*784 bytes, 0..255) and lab (n).
 * digits: >= n source digits (28x28) for digit sets, example i uses digit i
 * (NULL otherwise); photos: needed by bg-img, bg-img-rot and rect-img.
 * The bytes are a pure function of (v, digits, photos, seed, stream, n). */
cae_status cae_variation_generate(cae_variation v, const cae_dataset *digits,
                                       const cae_photos *photos, uint64_t seed,
                                       uint64_t stream, int64_t n, uint8_t *img,
                                       uint8_t *lab, cae_error *err);

/* Digital convexity of a 28x28 binary image (pixel on iff > 127): 1 if every
 * lattice point inside the convex hull of the on pixels is on (an empty image
 * counts as convex). */
int cae_image_is_convex(const uint8_t *img);

/* Generate the sets selected by mask (bit v = 1 << v; 0 means all) from
 * MNIST in data_dir/mnist and photos in data_dir/images, and write
 * out_dir/NAME/{train,valid,test}-{images-idx3,labels-idx1}-ubyte,
 * out_dir/MANIFEST.txt (seed, each set's recipe, sizes, CRC-32s) and out_dir/preview.dat (ten
 * examples of each set as a gnuplot matrix). Every file is written atomically. */
cae_status cae_variations_write(const char *data_dir, const char *out_dir, uint64_t seed,
                                     int small, unsigned mask, cae_error *err);

#ifdef __cplusplus
}
#endif
#endif
