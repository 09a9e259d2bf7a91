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

#include "cae/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cae_model_info {
    cae_model_kind kind;     /* kind of the top: a pretraining kind, or mlp */
    int n_layers;            /* pretrained / hidden layers, 0..CAE_MAX_LAYERS */
    cae_layer_config layer[CAE_MAX_LAYERS];
    int n_classes;           /* > 0 when the checkpoint is a classifier */
    double mlp_wd;
    char data[32];           /* data set it was trained on ("mnist", ...) */
    /* Training progress (for --resume and for reports). */
    int epochs_done;
    uint64_t seed;
    int64_t batch;
    double lr, momentum;
    cae_rng rng;             /* the task RNG after epochs_done epochs */
    int has_rng;
} cae_model_info;

typedef enum cae_ckpt_status {
    CAE_CKPT_OK = 0,
    CAE_CKPT_ERR_IO,        /* open/read/write/rename failed */
    CAE_CKPT_ERR_MAGIC,     /* not a cae checkpoint */
    CAE_CKPT_ERR_VERSION,   /* a version this build cannot read */
    CAE_CKPT_ERR_TRUNCATED, /* shorter than its header says */
    CAE_CKPT_ERR_CRC,       /* payload does not match its CRC-32 */
    CAE_CKPT_ERR_FORMAT,    /* a field out of range, bad name, bad shape */
    CAE_CKPT_ERR_MISMATCH,  /* tensors disagree with the model description */
    CAE_CKPT_ERR_NOMEM
} cae_ckpt_status;

const char *cae_ckpt_status_str(cae_ckpt_status s);

/* Save info and every tensor of p (and, when opt is non-NULL, the tensors
 * of opt too: optimizer state, stored under their own names). p must hold
 * exactly the layer and classifier tensors info describes ("Lk.W", "Lk.b",
 * "Lk.c", "Lk.Wd" iff untied, k = 1..n_layers; "out.V", "out.c" iff
 * n_classes > 0), and no other "Lk.*" or "out.*"; tensors with other
 * names are kept as they are. Names are 1..63 printable ASCII bytes
 * without '/' or a backslash (they become file names in cae_export_npy),
 * ranks <= 4. On failure nothing is written and PATH is left as it was. */
cae_ckpt_status cae_checkpoint_save(const char *path, const cae_model_info *info,
                                    const cae_params *p, const cae_params *opt, char *err,
                                    size_t errlen);
/* The element type of the tensors on disk. NATIVE is cae_real; saving
 * F32 from the double build rounds (a value beyond float range is an
 * error); loading converts whatever was saved to cae_real. */
typedef enum cae_ckpt_real {
    CAE_CKPT_NATIVE = 0,
    CAE_CKPT_F32 = 4,
    CAE_CKPT_F64 = 8
} cae_ckpt_real;

/* cae_checkpoint_save with the tensors stored as `real`. */
cae_ckpt_status cae_checkpoint_save_as(const char *path, const cae_model_info *info,
                                       const cae_params *p, const cae_params *opt,
                                       cae_ckpt_real real, char *err, size_t errlen);
/* The checks a save makes before writing anything, without writing: info
 * is well formed (FORMAT) and p holds exactly the tensors it describes
 * (MISMATCH). path (may be NULL) only prefixes the message. */
cae_ckpt_status cae_checkpoint_check(const char *path, const cae_model_info *info,
                                     const cae_params *p, char *err, size_t errlen);
/* Load: *out_params receives a new store with every model tensor, in the
 * order saved; when out_opt is non-NULL it receives the optimizer tensors
 * (or NULL if none were saved). Validates that the tensors match info
 * (names and shapes of every layer, the classifier). out_params may be
 * NULL to read and validate only. On failure *info is untouched and the
 * out pointers are set to NULL. */
cae_ckpt_status cae_checkpoint_load(const char *path, cae_model_info *info,
                                    cae_params **out_params, cae_params **out_opt, char *err,
                                    size_t errlen);

/* Write every tensor of p as DIR/<name>.npy (NumPy format 1.0, little-
 * endian '<f4' or '<f8', C order), each atomically, creating DIR (and its
 * parents) if needed. Returns 0, or -1 with a message in err; every name
 * is checked before anything is written. */
int cae_export_npy(const cae_params *p, const char *dir, char *err, size_t errlen);

/* The MLP configuration of a classifier checkpoint (sizes, activations). */
void cae_model_info_mlp(const cae_model_info *info, cae_mlp_config *m);

#ifdef __cplusplus
}
#endif
#endif
