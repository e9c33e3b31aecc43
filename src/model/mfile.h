/*
 * mfile.h: the model file container (internal to the model module).
 *
 * A model file (.fmm) is one versioned binary file holding named sections of
 * bytes.  This layer knows nothing about what the sections mean; it only
 * guarantees that what the writer was given is what the reader gets back, or
 * a clear error.  The byte layout is documented in docs/model-format.md.
 *
 *   - Writing is atomic (temp file + fsync + rename, via fm_atomic_*): a
 *     failed write never leaves a half-written model or a temp file behind.
 *   - Writing is deterministic: the same sections added in the same order
 *     give the same bytes (no timestamps, all padding zero).
 *   - Reading maps the file read-only and validates everything up front
 *     (magic, version, byte order, sizes, table bounds, layout, a CRC-32C of
 *     header+table, one per section, and one of the whole file), so a caller
 *     that got FM_OK from fm_mfile_open can trust every section's bounds and
 *     bytes.  Sections start on 64-byte boundaries in the file, and the
 *     mapping is page aligned, so float/uint32/uint64 arrays can be used in
 *     place.
 *
 * Only little-endian hosts are supported (payloads are native arrays used in
 * place); on a big-endian host both the writer and the reader refuse with
 * FM_ERR_FORMAT.
 *
 * Thread safety: a writer is used from one thread (fm_mfile_write_begin may
 * run part of the write in a thread of its own, joined by
 * fm_mfile_write_end or fm_mfile_write_cancel).  An open fm_mfile is immutable;
 * any number of threads may call the const accessors concurrently.
 */
#ifndef FM_MFILE_H
#define FM_MFILE_H

#include "fm_util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The format version this build writes, and the oldest it reads; older
 * files are refused rather than half-read (retrain them).  What each version
 * added is in docs/model-format.md (4: lsa_row, LSA rows of reference words
 * only; 5: the confidence calibrator, section "calib" -- a version 4 file is
 * read with the fallback calibrator). */
#define FM_MFILE_VERSION 7
#define FM_MFILE_VERSION_MIN 4
/* Longest section tag, not counting the NUL. */
#define FM_MFILE_TAG_MAX 15
/* Alignment of every section payload within the file. */
#define FM_MFILE_ALIGN 64

/* ---- writer ---------------------------------------------------------- */

/* Collects sections and writes them as one file.  Section tags are 1 to
 * FM_MFILE_TAG_MAX printable ASCII characters (0x21..0x7e), unique within a
 * file.  Sections appear in the file in the order they were added. */
typedef struct fm_mfile_writer fm_mfile_writer;

/* Create an empty writer.  Caller owns *out (free with
 * fm_mfile_writer_free).  Returns FM_OK or FM_ERR_NOMEM. */
fm_rc fm_mfile_writer_new(fm_mfile_writer **out);

/* Free the writer, its copies of section data and its tags.  Borrowed data
 * (fm_mfile_add_ref) is not touched.  w may be NULL. */
void fm_mfile_writer_free(fm_mfile_writer *w);

/* Add a section holding a copy of data[0..len).  The writer owns the copy,
 * so the caller may free or reuse data right away.  data may be NULL when
 * len is 0.  Errors: FM_ERR_ARG (bad or duplicate tag, a section still open
 * with fm_mfile_begin, data NULL with len > 0), FM_ERR_NOMEM.  On error the
 * writer is unchanged. */
fm_rc fm_mfile_add(fm_mfile_writer *w, const char *tag, const void *data,
                   uint64_t len, fm_error *err);

/* Add a section without copying: the writer borrows data, which the caller
 * must keep alive and unchanged until the last fm_mfile_write or
 * fm_mfile_writer_free of this writer.  Use it for big arrays (a 16 MB
 * float matrix) to avoid a copy.  Errors as fm_mfile_add. */
fm_rc fm_mfile_add_ref(fm_mfile_writer *w, const char *tag, const void *data,
                       uint64_t len, fm_error *err);

/* Streaming: open a section, append chunks to it, close it.  The writer
 * owns (copies) the appended bytes.  Only one section can be open at a
 * time; fm_mfile_add* and fm_mfile_write fail with FM_ERR_ARG while one is.
 * fm_mfile_begin errors as fm_mfile_add.  fm_mfile_append: FM_ERR_ARG when
 * no section is open or data is NULL with len > 0, FM_ERR_NOMEM (the
 * section keeps what it had).  fm_mfile_end: FM_ERR_ARG when no section is
 * open. */
fm_rc fm_mfile_begin(fm_mfile_writer *w, const char *tag, fm_error *err);
fm_rc fm_mfile_append(fm_mfile_writer *w, const void *data, uint64_t len,
                      fm_error *err);
fm_rc fm_mfile_end(fm_mfile_writer *w, fm_error *err);

/* A section of len bytes whose data comes later (fm_mfile_fill), for
 * writing the rest of the file while that data is still being computed:
 * the layout depends only on the lengths.  Errors as fm_mfile_add. */
fm_rc fm_mfile_add_later(fm_mfile_writer *w, const char *tag, uint64_t len,
                         fm_error *err);

/* Give a section added with fm_mfile_add_later its data (len bytes,
 * borrowed as with fm_mfile_add_ref).  May be called before
 * fm_mfile_write_begin or between it and fm_mfile_write_end (from the
 * thread that called begin).  Errors: FM_ERR_ARG (no such later section,
 * data NULL with len > 0). */
fm_rc fm_mfile_fill(fm_mfile_writer *w, const char *tag, const void *data,
                    fm_error *err);

/* Writing in two steps.  fm_mfile_write_begin lays the file out, creates
 * path.tmp.<pid> and writes every section except the later ones; when
 * there are later sections this runs in a background thread (which also
 * starts the data's way to the disk with fdatasync) and begin returns at
 * once.  Until fm_mfile_write_end or fm_mfile_write_cancel the caller must
 * not add sections or change any borrowed data except by filling later
 * sections.  fm_mfile_write_end waits for that thread, writes the later
 * sections (all must be filled), then the header and table at offset 0,
 * fsyncs and renames into place: the same bytes fm_mfile_write gives.
 * On any error (either step) the temp file is removed and nothing is left
 * at path.  fm_mfile_write_cancel abandons a write begun (waits for the
 * thread, removes the temp file); fm_mfile_writer_free does the same.
 * Errors: as fm_mfile_write; FM_ERR_ARG for a later section never filled
 * or calls out of order. */
fm_rc fm_mfile_write_begin(fm_mfile_writer *w, const char *path,
                           fm_error *err);
fm_rc fm_mfile_write_end(fm_mfile_writer *w, fm_error *err);
void fm_mfile_write_cancel(fm_mfile_writer *w);

/* Write all sections to path atomically (path.tmp.<pid>, fsync, rename):
 * fm_mfile_write_begin + fm_mfile_write_end.  On any error nothing is left at path (an existing file there is kept
 * unchanged) and the temp file is removed.  The writer is not consumed: it
 * can be written again, giving the same bytes.  Errors (messages name the
 * path): FM_ERR_IO, FM_ERR_NOMEM, FM_ERR_ARG (a section still open). */
fm_rc fm_mfile_write(fm_mfile_writer *w, const char *path, fm_error *err);

/* ---- reader ---------------------------------------------------------- */

typedef struct fm_mfile fm_mfile;

/* Map path read-only and validate it completely.  Caller owns *out (close
 * with fm_mfile_close); *out is NULL on error.  Errors (every message names
 * the path):
 *   FM_ERR_IO       cannot open/stat/map (strerror text), not a regular file
 *   FM_ERR_FORMAT   not a model file at all (empty, wrong magic), or a model
 *                   file of the other byte order
 *   FM_ERR_VERSION  "model file X has format version N; this build reads
 *                   versions MIN to M"
 *   FM_ERR_CORRUPT  truncated, trailing bytes, bad table/offsets/tags, or a
 *                   checksum mismatch (naming the section)
 *   FM_ERR_NOMEM */
fm_rc fm_mfile_open(const char *path, fm_mfile **out, fm_error *err);

/* Unmap and free.  Invalidates every pointer obtained from f.  f may be
 * NULL. */
void fm_mfile_close(fm_mfile *f);

/* Find section tag.  On FM_OK, *data is borrowed from the mapping (valid
 * until fm_mfile_close, read-only, 64-byte aligned; never read past *len,
 * which may be 0) and *len is its length in bytes.  Missing:
 * FM_ERR_NOTFOUND naming the tag and the path (then *data = NULL,
 * *len = 0). */
fm_rc fm_mfile_section(const fm_mfile *f, const char *tag, const void **data,
                       uint64_t *len, fm_error *err);

/* Number of sections. */
size_t fm_mfile_nsections(const fm_mfile *f);

/* Tag of section i (file order), borrowed from f; sets *len (optional) to
 * its length.  NULL when i is out of range. */
const char *fm_mfile_section_tag(const fm_mfile *f, size_t i, uint64_t *len);

/* CRC-32C of the whole file (with its two checksum fields read as zero; see
 * docs/model-format.md), verified at open: identifies the model's exact
 * bytes, for reports and logs. */
uint32_t fm_mfile_checksum(const fm_mfile *f);

/* The file's format version (FM_MFILE_VERSION_MIN .. FM_MFILE_VERSION). */
uint32_t fm_mfile_version(const fm_mfile *f);

/* Size of the file in bytes. */
uint64_t fm_mfile_size(const fm_mfile *f);

/* The path f was opened with, borrowed from f (for error messages). */
const char *fm_mfile_path(const fm_mfile *f);

#ifdef __cplusplus
}
#endif
#endif /* FM_MFILE_H */
