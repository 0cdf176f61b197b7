/* The I/O layer (src/io/): saved models, DOT, IDX files, data sets.  Uses
 * the core layer (and the kernels through it never).  Not installed. */
#ifndef TG_IO_H
#define TG_IO_H

#include "core.h"

#include <stdio.h>

/* ---- DOT export (src/io/dot.c) ------------------------------------------ */
/* What one tg_dot_write did: bytes written and elementary steps (loop
 * iterations), so that a test can check the work is linear without timing. */
typedef struct tg_dot_stats {
    uint64_t bytes, steps;
} tg_dot_stats;
/* tg_dot_write, filling *stats (which may be NULL). */
int tg_dot_write_stats(FILE *f, tg_tape *tape, tg_tensor *root, const tg_dot_opts *opts,
                       tg_dot_stats *stats);

/* ---- files (src/io/save.c) ---------------------------------------------- */
/* CRC-32C of n bytes, as docs/format.md defines it. */
uint32_t tg_crc32c(const unsigned char *p, size_t n);

#endif
