/* Helpers shared by the libFuzzer targets in fuzz/.
 *
 * The readers under test take a path, so each input is written into one
 * memory-backed file (memfd_create, reused for every run) and read back
 * through /proc/self/fd/N: no file system traffic, nothing left behind, and
 * no change to the library's API. */
#ifndef CAE_FUZZ_COMMON_H
#define CAE_FUZZ_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create, memmem */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct fuzz_file {
    int fd;
    char path[64];
} fuzz_file;

/* Create the memory file once (abort if the kernel has no memfd). */
static inline void fuzz_file_open(fuzz_file *f, const char *name)
{
    f->fd = memfd_create(name, MFD_CLOEXEC);
    if (f->fd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
}

/* Replace the file's contents with data[0..size). */
static inline void fuzz_file_set(fuzz_file *f, const uint8_t *data, size_t size)
{
    if (ftruncate(f->fd, 0) != 0) abort();
    size_t done = 0;
    while (done < size) {
        ssize_t w = pwrite(f->fd, data + done, size - done, (off_t)done);
        if (w <= 0) abort();
        done += (size_t)w;
    }
}

#endif
