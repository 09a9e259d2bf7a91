/*
 * cae/checkpoint.h — what a trained model is on disk.
 *
 * A checkpoint holds a model description (cae_model_info: the stack of
 * pretrained layers, the classifier if any, and where training stands), the
 * named tensors of a parameter store, and optionally the training state
 * needed to resume exactly (optimizer velocity tensors, RNG state). The
 * binary format is documented in docs/CHECKPOINT.md: magic, version, model
 * kind, configuration, tensors with names and shapes, CRC-32 over the
 * payload. Saving writes PATH.tmp.<pid> and renames it over PATH, so a
 * failed save leaves the previous file intact. Loading validates every
 * field and size before allocating and returns a message naming the file,
 * the offset and what was expected.
 *
 * Ownership: cae_checkpoint_load fills a caller-provided info and creates a
 * new parameter store (*out_params, freed with cae_params_free).
 */
#ifndef CAE_CHECKPOINT_H
#define CAE_CHECKPOINT_H

#include "cae/task.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Save info and every tensor of p (and, when opt is non-NULL, the tensors
 * of opt too: optimizer state, stored under their own names). p must hold
 * exactly the layer and classifier tensors info describes ("Lk.W", "Lk.b",
 * "Lk.c", "Lk.Wd" iff untied, k = 1..n_layers; "out.V", "out.c" iff
 * n_classes > 0), and no other "Lk.*" or "out.*"; tensors with other
 * names are kept as they are. Names are 1..63 printable ASCII bytes
 * without '/' or a backslash (they become file names in cae_export_npy),
 * ranks <= 4. On failure nothing is written and PATH is left as it was. */
cae_status cae_checkpoint_save(const char *path, const cae_model_info *info,
                                    const cae_params *p, const cae_params *opt, cae_error *err);
/* Save a training run so that it can be resumed exactly: info with the
 * task's RNG state (has_rng = 1), the task's parameter store, and opt, the
 * optimizer store cae_train keeps (velocities, early stopping, the task's
 * buffers, its state). What a resumable checkpoint holds is decided here;
 * a program calls this from its on_epoch hook. */
cae_status cae_checkpoint_save_run(const char *path, const cae_model_info *info, cae_task *t,
                                   const cae_params *opt, cae_error *err);
/* The element type of the tensors on disk. NATIVE is cae_real; saving
 * F32 from the double build rounds (a value beyond float range is an
 * error); loading converts whatever was saved to cae_real. */
typedef enum cae_ckpt_real {
    CAE_CKPT_NATIVE = 0,
    CAE_CKPT_F32 = 4,
    CAE_CKPT_F64 = 8
} cae_ckpt_real;

/* cae_checkpoint_save with the tensors stored as `real`. */
cae_status cae_checkpoint_save_as(const char *path, const cae_model_info *info,
                                       const cae_params *p, const cae_params *opt,
                                       cae_ckpt_real real, cae_error *err);
/* The checks a save makes before writing anything, without writing: info
 * is well formed (FORMAT) and p holds exactly the tensors it describes
 * (MISMATCH). path (may be NULL) only prefixes the message. */
cae_status cae_checkpoint_check(const char *path, const cae_model_info *info,
                                     const cae_params *p, cae_error *err);
/* Load: *out_params receives a new store with every model tensor, in the
 * order saved; when out_opt is non-NULL it receives the optimizer tensors
 * (or NULL if none were saved). Validates that the tensors match info
 * (names and shapes of every layer, the classifier). out_params may be
 * NULL to read and validate only. On failure *info is untouched and the
 * out pointers are set to NULL. */
cae_status cae_checkpoint_load(const char *path, cae_model_info *info,
                                    cae_params **out_params, cae_params **out_opt, cae_error *err);

/* Write every tensor of p as DIR/<name>.npy (NumPy format 1.0, little-
 * endian '<f4' or '<f8', C order), each atomically, creating DIR (and its
 * parents) if needed. Returns 0, or -1 with a message in err; every name
 * is checked before anything is written. */
cae_status cae_export_npy(const cae_params *p, const char *dir, cae_error *err);

#ifdef __cplusplus
}
#endif
#endif
