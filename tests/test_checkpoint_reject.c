/* Checkpoints the loader must refuse, each with its status and a message
 * that names the file, the offset and what was expected: truncations, a
 * flipped bit (CRC), bad magic and versions, fields out of range, tensors
 * that disagree with the description, bad names, overflowing sizes, bad
 * paths. The broken files are written by ckpt_testutil.h's encoder, so
 * their CRCs are valid and each check is reached on its own. */
#include "ckpt_testutil.h"

START_TEST(truncated_files_are_rejected)
{
    char *dir = tu_tmpdir(), *path = path_in(dir, "t.ckpt"), *cut = path_in(dir, "cut.ckpt");
    cae_model_info in;
    cae_params *p, *opt;
    make_stack(&in, &p, &opt);
    cae_error err;
    ck_assert(!cae_checkpoint_save(path, &in, p, opt, &err));
    size_t n;
    unsigned char *b = read_all(path, &n);
    write_all(cut, b, 0);
    expect_load_fails(cut, CAE_ERR_TRUNCATED, "empty file");
    const size_t at[] = {3, 8, 23};
    for (int i = 0; i < 3; i++) { /* inside the header */
        write_all(cut, b, at[i]);
        expect_load_fails(cut, CAE_ERR_TRUNCATED, "ends inside the 24-byte header");
    }
    const size_t pay[] = {24, 25, 100, n / 2, n - 9, n - 1}; /* inside the payload */
    for (int i = 0; i < 6; i++) {
        write_all(cut, b, pay[i]);
        char want[96];
        snprintf(want, sizeof want,
                 "offset %zu: the file ends after %zu payload bytes, the header says %zu", pay[i],
                 pay[i] - 24, n - 24);
        expect_load_fails(cut, CAE_ERR_TRUNCATED, want);
    }
    /* One byte too many is not a checkpoint either. */
    unsigned char *more = malloc(n + 1);
    memcpy(more, b, n);
    more[n] = 0;
    write_all(cut, more, n + 1);
    expect_load_fails(cut, CAE_ERR_FORMAT, "1 bytes after the");
    free(more);
    free(b);
    cae_params_free(p);
    cae_params_free(opt);
    free(path);
    free(cut);
    rm_tree(dir);
}
END_TEST

START_TEST(damaged_headers_and_payloads_are_rejected)
{
    char *dir = tu_tmpdir(), *path = path_in(dir, "d.ckpt"), *bad = path_in(dir, "bad.ckpt");
    cae_model_info in;
    cae_params *p, *opt;
    make_stack(&in, &p, &opt);
    cae_error err;
    ck_assert(!cae_checkpoint_save(path, &in, p, opt, &err));
    size_t n;
    unsigned char *b = read_all(path, &n), *c = malloc(n);
    /* One flipped bit anywhere in the payload: first byte, a tensor, last byte. */
    const size_t flip[] = {24, 24 + 9, n / 2, n - 1};
    for (int i = 0; i < 4; i++) {
        memcpy(c, b, n);
        c[flip[i]] ^= 0x10;
        write_all(bad, c, n);
        expect_load_fails(bad, CAE_ERR_CRC, "offset 24: the payload's CRC-32 is");
    }
    memcpy(c, b, n); /* the stored CRC itself */
    c[21] ^= 1;
    write_all(bad, c, n);
    expect_load_fails(bad, CAE_ERR_CRC, "the file is damaged");
    memcpy(c, b, n); /* magic */
    c[6] = 'X';
    write_all(bad, c, n);
    expect_load_fails(
        bad, CAE_ERR_MAGIC,
        "offset 0: not a cae checkpoint: the file starts with 43 41 45 43 4b 50 58 00");
    write_all(bad, "hello, world\n", 13);
    expect_load_fails(bad, CAE_ERR_MAGIC, "expected \"CAECKPT\\0\"");
    write_all(bad, "PK", 2); /* shorter than the magic and wrong */
    expect_load_fails(bad, CAE_ERR_MAGIC, "starts with 50 4b");
    memcpy(c, b, n); /* a future version */
    c[8] = 2;
    write_all(bad, c, n);
    expect_load_fails(
        bad, CAE_ERR_VERSION,
        "offset 8: format version 2, this build reads version 1 (written by a newer cae)");
    memcpy(c, b, n);
    c[8] = 0;
    write_all(bad, c, n);
    expect_load_fails(bad, CAE_ERR_VERSION, "format version 0");
    memcpy(c, b, n); /* a payload length larger than the file */
    c[12 + 7] = 0x80;
    write_all(bad, c, n);
    expect_load_fails(bad, CAE_ERR_TRUNCATED, "the header says 9223372036854");
    free(b);
    free(c);
    cae_params_free(p);
    cae_params_free(opt);
    free(path);
    free(bad);
    rm_tree(dir);
}
END_TEST

START_TEST(bad_paths)
{
    char *dir = tu_tmpdir(), *none = path_in(dir, "no/such.ckpt");
    expect_load_fails(none, CAE_ERR_IO, "cannot open: No such file or directory");
    expect_load_fails(dir, CAE_ERR_IO, "not a regular file");
    free(none);
    rm_tree(dir);
}
END_TEST

/* Break one field of a description; returns what the message must say. */
enum { N_FIELD_CASES = 15 };
static const char *break_field(cae_model_info *x, int i)
{
    switch (i) {
    case 0: x->kind = (cae_model_kind)17; return "offset 24: model kind 17, expected 0..6";
    case 1: x->layer[1].act = (cae_act)9; return "offset 96: layer 2: activation 9, expected 0..4";
    case 2: x->layer[0].kind = CAE_MODEL_MLP; return "offset 32: layer 1: pretraining kind 6";
    case 3: x->layer[1].n_in = 6; return "offset 96: layer 2 has 6 inputs, expected 5";
    case 4: x->layer[0].n_hidden = 0; return "layer 1 (7x0): layer sizes must be positive";
    case 5: x->layer[1].untied = 2; return "layer 2: untied 2, composed 0, persistent 0";
    case 6: x->layer[0].lambda = INFINITY; return "layer 1: lambda inf";
    case 7: x->layer[0].noise = -1; return "layer 1 (7x5): lambda, wd and noise must be >= 0";
    case 8: x->n_classes = 3; return "a cae checkpoint has 3 classes, expected 0";
    case 9:
        x->kind = CAE_MODEL_MLP;
        x->n_classes = 1;
        return "an mlp has 1 classes";
    case 10: x->mlp_wd = NAN; return "mlp weight decay nan";
    case 11: x->epochs_done = -1; return "epochs done 2147483647";
    case 12: x->batch = -20; return "batch -20, expected >= 0";
    case 13: x->has_rng = 3; return "has_rng 3, expected 0 or 1";
    case 14: x->lr = -1; return "lr -1, momentum 0.9";
    }
    return NULL;
}

/* Fields out of range, in files with a valid CRC (hand-made). */
START_TEST(bad_fields_are_rejected)
{
    char *dir = tu_tmpdir(), *path = path_in(dir, "f.ckpt");
    cae_model_info good, in;
    cae_params *p;
    make_stack(&good, &p, NULL);
    for (int i = 0; i < N_FIELD_CASES; i++) {
        in = good;
        const char *want = break_field(&in, i);
        e_checkpoint(path, &in, p, NULL, sizeof(cae_real));
        expect_load_fails(path, CAE_ERR_FORMAT, want);
        /* Save refuses the same description (no offset then). */
        cae_error err;
        ck_assert_int_eq(cae_checkpoint_save(path, &in, p, NULL, &err),
                         CAE_ERR_FORMAT);
    }
    /* Layer count and data name are checked before they are used. */
    enc e = {0};
    e_u32(&e, CAE_MODEL_CAE);
    e_u32(&e, 9);
    e_write(path, &e, 1);
    expect_load_fails(path, CAE_ERR_FORMAT, "offset 28: 9 layers, expected 1..8");
    e.n = 4;
    e_u32(&e, 0);
    e_write(path, &e, 1);
    expect_load_fails(path, CAE_ERR_FORMAT, "0 layers");
    e.n = 0;
    in = good;
    e_head(&e, &in, 4, 0);
    const size_t dl = 8 + 2 * 64 + 4 + 8; /* payload offset of the data name length */
    e.b[dl] = 40;
    e_write(path, &e, 1);
    expect_load_fails(path, CAE_ERR_FORMAT, "data set name is 40 bytes, at most 31");
    e.n = 0;
    e_head(&e, &in, 2, 0); /* real type 2 */
    e_write(path, &e, 1);
    expect_load_fails(path, CAE_ERR_FORMAT, "real type 2, expected 4 (f32) or 8 (f64)");
    e.n = 0;
    e_head(&e, &in, 4, 1u << 30); /* a tensor count the payload cannot hold */
    e_write(path, &e, 1);
    expect_load_fails(path, CAE_ERR_FORMAT, "1073741824 tensors, expected at most 4096");
    e.n = 0;
    e_head(&e, &in, 4, 0); /* the payload ends inside the progress fields */
    e.n -= 8 + 40;
    e_write(path, &e, 1);
    expect_load_fails(path, CAE_ERR_FORMAT, "ends inside the progress fields");
    free(e.b);
    cae_params_free(p);
    free(path);
    rm_tree(dir);
}
END_TEST

/* The description and every tensor of p but `skip` (NULL: none), with a
 * count that leaves room for `extra` records the caller appends. */
static void write_all_but(enc *e, const cae_model_info *in, const cae_params *p, const char *skip,
                          int extra)
{
    const uint32_t B = sizeof(cae_real);
    const int nt = cae_params_count(p);
    e->n = 0;
    e_head(e, in, B, (uint32_t)(nt - (skip != NULL) + extra));
    for (int i = 0; i < nt; i++) {
        const cae_tensor *t = cae_params_at(p, i);
        if (skip && !strcmp(t->name, skip)) continue;
        uint64_t dims[4] = {(uint64_t)t->shape[0], (uint64_t)t->shape[1]};
        e_tensor(e, 0, t->name, (uint32_t)t->rank, dims, t->data, t->size, B);
    }
}

/* Tensor records: names, ranks, sizes, and the match with the description. */
START_TEST(bad_tensors_are_rejected)
{
    char *dir = tu_tmpdir(), *path = path_in(dir, "t.ckpt");
    cae_model_info in;
    cae_params *p;
    make_stack(&in, &p, NULL);
    const int nt = cae_params_count(p);
    const uint32_t B = sizeof(cae_real);
    enc e = {0};
    /* A shape that disagrees with the description (L2.W written 5x4). */
    write_all_but(&e, &in, p, "L2.W", 1);
    uint64_t off = e_tensor(&e, 0, "L2.W", 2, (uint64_t[]){5, 4}, NULL, 20, B);
    e_write(path, &e, 1);
    char want[128];
    snprintf(want, sizeof want, "offset %llu: tensor 'L2.W' is 5x4, the description says 5x3",
             (unsigned long long)off);
    expect_load_fails(path, CAE_ERR_MISMATCH, want);
    /* Rank disagrees. */
    write_all_but(&e, &in, p, "L1.b", 1);
    e_tensor(&e, 0, "L1.b", 2, (uint64_t[]){5, 1}, NULL, 5, B);
    e_write(path, &e, 1);
    expect_load_fails(path, CAE_ERR_MISMATCH, "tensor 'L1.b' is 5x1, the description says 5");
    /* A missing tensor. */
    write_all_but(&e, &in, p, "L2.Wd", 0);
    e_write(path, &e, 1);
    expect_load_fails(path, CAE_ERR_MISMATCH,
                      "tensor 'L2.Wd' (3x5) is missing: the layer is untied");
    write_all_but(&e, &in, p, "L1.c", 0);
    e_write(path, &e, 1);
    expect_load_fails(path, CAE_ERR_MISMATCH, "tensor 'L1.c' (7) is missing");
    /* Tensors the description does not speak for. */
    write_all_but(&e, &in, p, NULL, 1);
    e_tensor(&e, 0, "L1.Wd", 2, (uint64_t[]){5, 7}, NULL, 35, B);
    e_write(path, &e, 1);
    expect_load_fails(
        path, CAE_ERR_MISMATCH,
        "tensor 'L1.Wd' is not in the description (2 layers, no classifier; Wd only for untied layers)");
    write_all_but(&e, &in, p, NULL, 1);
    e_tensor(&e, 0, "out.V", 2, (uint64_t[]){3, 2}, NULL, 6, B);
    e_write(path, &e, 1);
    expect_load_fails(path, CAE_ERR_MISMATCH, "'out.V' is not in the description");
    /* ... while any other name is kept, and an optimizer tensor may reuse a name. */
    write_all_but(&e, &in, p, NULL, 2);
    e_tensor(&e, 0, "extra", 0, NULL, NULL, 1, B);
    e_tensor(&e, 1, "L1.W", 1, (uint64_t[]){2}, NULL, 2, B);
    e_write(path, &e, 1);
    cae_model_info back;
    cae_params *p2, *o2;
    cae_error err;
    ck_assert_msg(!cae_checkpoint_load(path, &back, &p2, &o2, &err), "%s", err.msg);
    ck_assert(cae_params_get(p2, "extra") && cae_params_get(p2, "extra")->rank == 0);
    ck_assert(o2 && cae_params_count(o2) == 1 && cae_params_get(o2, "L1.W")->size == 2);
    cae_params_free(p2);
    cae_params_free(o2);
    /* Names: too long, empty, a slash, a NUL; duplicates. */
    char long_name[65];
    memset(long_name, 'a', 64);
    long_name[64] = 0;
    write_all_but(&e, &in, p, NULL, 1);
    off = e_tensor(&e, 0, long_name, 0, NULL, NULL, 1, B);
    e_write(path, &e, 1);
    snprintf(want, sizeof want, "offset %llu: tensor %d: name is 64 bytes, expected 1..63",
             (unsigned long long)off + 4, nt);
    expect_load_fails(path, CAE_ERR_FORMAT, want);
    long_name[63] = 0; /* 63 is fine */
    write_all_but(&e, &in, p, NULL, 1);
    e_tensor(&e, 0, long_name, 0, NULL, NULL, 1, B);
    e_write(path, &e, 1);
    ck_assert_msg(!cae_checkpoint_load(path, &back, &p2, NULL, &err), "%s", err.msg);
    cae_params_free(p2);
    write_all_but(&e, &in, p, NULL, 1);
    e_tensor(&e, 0, "", 0, NULL, NULL, 1, B);
    e_write(path, &e, 1);
    expect_load_fails(path, CAE_ERR_FORMAT, "name is 0 bytes");
    write_all_but(&e, &in, p, NULL, 1);
    e_tensor(&e, 0, "../x", 0, NULL, NULL, 1, B);
    e_write(path, &e, 1);
    expect_load_fails(path, CAE_ERR_FORMAT, "or '/' or a backslash");
    write_all_but(&e, &in, p, NULL, 1);
    e_tensor(&e, 0, "ab", 0, NULL, NULL, 1, B);
    e.b[e.n - B - 4 - 1] = 0; /* the name's last byte */
    e_write(path, &e, 1);
    expect_load_fails(path, CAE_ERR_FORMAT, "not printable ASCII");
    write_all_but(&e, &in, p, NULL, 1);
    e_tensor(&e, 0, "L1.b", 1, (uint64_t[]){5}, NULL, 5, B);
    e_write(path, &e, 1);
    expect_load_fails(path, CAE_ERR_FORMAT, "tensor 'L1.b' appears twice (first at offset");
    /* Rank, role, sizes: overflow, too big for the payload. */
    write_all_but(&e, &in, p, NULL, 1);
    e_tensor(&e, 0, "big", 5, (uint64_t[]){1, 1, 1, 1, 1}, NULL, 1, B);
    e_write(path, &e, 1);
    expect_load_fails(path, CAE_ERR_FORMAT, "tensor 'big': rank 5, at most 4");
    write_all_but(&e, &in, p, NULL, 1);
    e_tensor(&e, 2, "x", 0, NULL, NULL, 1, B);
    e_write(path, &e, 1);
    expect_load_fails(path, CAE_ERR_FORMAT, "role 2, expected 0 (model) or 1 (optimizer)");
    write_all_but(&e, &in, p, NULL, 1);
    e_tensor(&e, 0, "big", 3, (uint64_t[]){1ULL << 32, 1ULL << 32, 2}, NULL, 0, B);
    e_write(path, &e, 1);
    expect_load_fails(
        path, CAE_ERR_FORMAT,
        "tensor 'big': dimensions 4294967296x4294967296x2 overflow a 64-bit element count");
    write_all_but(&e, &in, p, NULL, 1);
    e_tensor(&e, 0, "big", 1, (uint64_t[]){UINT64_MAX}, NULL, 0, B);
    e_write(path, &e, 1);
    expect_load_fails(path, CAE_ERR_FORMAT, "dimensions 18446744073709551615 overflow");
    write_all_but(&e, &in, p, NULL, 1);
    e_tensor(&e, 0, "big", 2, (uint64_t[]){1ULL << 31, 1ULL << 31}, NULL, 0, B);
    e_write(path, &e, 1);
    expect_load_fails(path, CAE_ERR_FORMAT, "only 0 remain in the payload");
    write_all_but(&e, &in, p, NULL, 1);
    e_tensor(&e, 0, "big", 2, (uint64_t[]){1ULL << 62, 1}, NULL, 0, B);
    e_write(path, &e, 1);
    expect_load_fails(path, CAE_ERR_FORMAT, "(more than 2^64), only 0 remain");
    write_all_but(&e, &in, p, NULL, 1);
    e_tensor(&e, 0, "x", 1, (uint64_t[]){3}, NULL, 2, B); /* one value short */
    e_write(path, &e, 1);
    expect_load_fails(path, CAE_ERR_FORMAT, "tensor 'x' (3, f");
    write_all_but(&e, &in, p, NULL, 0);
    e_u32(&e, 0); /* bytes after the last tensor */
    e_write(path, &e, 1);
    expect_load_fails(path, CAE_ERR_FORMAT, "4 bytes after the last tensor");
    free(e.b);
    cae_params_free(p);
    free(path);
    rm_tree(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("checkpoint_reject");
    TCase *t = tcase_create("reject");
    tcase_set_timeout(t, 30);
    tcase_add_test(t, truncated_files_are_rejected);
    tcase_add_test(t, damaged_headers_and_payloads_are_rejected);
    tcase_add_test(t, bad_paths);
    tcase_add_test(t, bad_fields_are_rejected);
    tcase_add_test(t, bad_tensors_are_rejected);
    suite_add_tcase(s, t);
    return tu_run(s);
}
