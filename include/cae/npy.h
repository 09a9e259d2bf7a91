/*
 * cae/npy.h — NumPy arrays in: one .npy file, and a whole model from a
 * directory of them (the inverse of cae_export_npy in cae/checkpoint.h).
 *
 * The reader takes NumPy format 1.0, 2.0 and 3.0 files holding float32
 * ('<f4') or float64 ('<f8') little-endian values in C or Fortran order,
 * rank 0..CAE_MAX_RANK, and converts them to cae_real in C (row-major)
 * order: a Fortran-order file is transposed, so a[i, j] is the same element
 * either way. It refuses, with a message naming the file and what was found
 * against what was expected: a wrong magic, an unknown version, a header
 * that is not a NumPy dict ('descr', 'fortran_order', 'shape'), any other
 * dtype (object, big-endian, integer, float16, structured), a rank above
 * CAE_MAX_RANK, dimensions whose product overflows, a body shorter or longer
 * than the shape says, a float64 value beyond float range in the float
 * build. Every size is checked against the bytes present before anything is
 * allocated.
 *
 * A model directory holds one file per tensor, named like the tensor
 * (docs/CHECKPOINT.md, "NumPy import"): L1.W.npy (n_in x n_hidden; the
 * encoder is h = phi(x W + b)), L1.b.npy (n_hidden), L1.c.npy (n_in, the
 * decoder bias; zeros when absent), L1.Wd.npy (n_hidden x n_in, the
 * decoder weights of an untied layer: present iff the layer is untied),
 * L2.W.npy ..., and for a classifier out.V.npy and out.c.npy.
 *
 *   cae_model_info info = {.kind = CAE_MODEL_CAE};     // sizes from the files
 *   for (int k = 0; k < CAE_MAX_LAYERS; k++)
 *       cae_layer_config_default(&info.layer[k], CAE_MODEL_CAE, 0, 0);
 *   cae_params *p;
 *   cae_error e;
 *   if (cae_import_npy("weights", &info, &p, NULL, &e)) fail(e.msg);
 *   cae_checkpoint_save("model.ckpt", &info, p, NULL, ...);  // then as any model
 *
 * Ownership: a cae_npy's data belongs to it until cae_npy_release; the
 * store from cae_import_npy is the caller's (cae_params_free).
 */
#ifndef CAE_NPY_H
#define CAE_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "cae/checkpoint.h"
#include "cae/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest header (the dict after the magic, version and length) accepted. */
#define CAE_NPY_MAX_HEADER (1 << 20)

typedef struct cae_npy {
    int rank;                    /* 0 (a scalar) .. CAE_MAX_RANK */
    int64_t shape[CAE_MAX_RANK]; /* outermost first, as in the file */
    int64_t size;                /* product of the shape */
    int dtype_bytes;             /* as stored: 4 (float32) or 8 (float64) */
    int fortran_order;           /* as stored; data is C order either way */
    int version;                 /* format major version: 1, 2 or 3 */
    cae_real *data;              /* size values in C order (cae_alloc_reals) */
} cae_npy;

/* Decode a whole .npy file held in buf[0..len) into *out (its data
 * allocated). name (may be NULL: "npy") starts every message. On failure
 * *out is empty (data NULL) and err says why. */
cae_status cae_npy_decode(const void *buf, size_t len, const char *name, cae_npy *out,
                          cae_error *err);
/* cae_npy_decode of the file at path (a regular file, read whole after its
 * size has been checked against the memory the process may use). */
cae_status cae_npy_read(const char *path, cae_npy *out, cae_error *err);
/* Free a's data and empty it (NULL and an empty a are fine). */
void cae_npy_release(cae_npy *a);

/* Build a parameter store from dir/<name>.npy for every model tensor info
 * describes. In: info->kind (mlp: a classifier), and per layer its config
 * (kind: a pretraining objective, act, lambda, ...; with n_layers 0, fill
 * all CAE_MAX_LAYERS of them). A size left 0 is read from the files:
 * info->n_layers (the run of L1.W.npy, L2.W.npy, ...), a layer's n_in and
 * n_hidden (Lk.W's shape), n_classes (out.V's); a size given must match
 * the files. A layer's untied is set from the files (Lk.Wd.npy present).
 * Out: *info complete (the data and progress fields as given) and *out a
 * store that passes cae_checkpoint_check, tensors in the order training
 * creates them. A missing Lk.c.npy is zeros and sets bit k-1 of *zero_c
 * (may be NULL). Refused: a missing or misshapen tensor, any other .npy
 * file in dir, a value that is NaN or infinite. On failure *out is NULL
 * and *info untouched. */
cae_status cae_import_npy(const char *dir, cae_model_info *info, cae_params **out,
                          unsigned *zero_c, cae_error *err);

#ifdef __cplusplus
}
#endif
#endif
