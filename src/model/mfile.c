/* mfile.c: the model file container: named, checksummed, 64-byte aligned
 * sections in one little-endian file.  Layout: docs/model-format.md. */
#include "mfile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mfile_layout.h"

/* ---- writer ---------------------------------------------------------- */

typedef struct wsec {
  char tag[TAG_SIZE];        /* NUL padded */
  const unsigned char *data; /* owned (== owned) or borrowed */
  unsigned char *owned;      /* NULL when borrowed or empty */
  uint64_t len;
  size_t cap; /* capacity of owned while streaming */
  int later;  /* added with fm_mfile_add_later: data comes with fm_mfile_fill */
  int filled; /* a later section's data is there */
  /* while writing (fm_mfile_write_begin .. end) */
  uint64_t off; /* payload offset in the file */
  uint32_t crc; /* of the payload, once written */
  int written;
} wsec;

struct fm_mfile_writer {
  wsec *secs;
  size_t n, cap;
  int streaming; /* secs[n-1] is open (fm_mfile_begin without end) */
  /* a write in progress (fm_mfile_write_begin .. end/cancel) */
  int writing;
  fm_atomic a;
  int fd;
  uint64_t tab_end;
  pthread_t th;
  int th_started;
  fm_rc th_rc; /* the thread's outcome, read after the join */
  fm_error th_err;
};

fm_rc fm_mfile_writer_new(fm_mfile_writer **out) {
  *out = fm_calloc(1, sizeof **out);
  return *out ? FM_OK : FM_ERR_NOMEM;
}

void fm_mfile_writer_free(fm_mfile_writer *w) {
  if (!w) return;
  if (w->writing) fm_mfile_write_cancel(w);
  for (size_t i = 0; i < w->n; i++) fm_free(w->secs[i].owned);
  fm_free(w->secs);
  fm_free(w);
}

/* Validate a new tag and reserve a zeroed slot for it (not yet counted). */
static fm_rc new_section(fm_mfile_writer *w, const char *tag, const void *data,
                         uint64_t len, wsec **slot, fm_error *err) {
  if (!tag)
    return fm_error_set(err, FM_ERR_ARG, "model section tag is NULL");
  size_t tl = strnlen(tag, FM_MFILE_TAG_MAX + 1);
  if (!tag_ok(tag, tl))
    return fm_error_set(err, FM_ERR_ARG,
                        "model section tag '%.40s' is invalid (1 to %d "
                        "printable ASCII characters, no spaces)",
                        tag, FM_MFILE_TAG_MAX);
  if (w->streaming)
    return fm_error_set(err, FM_ERR_ARG,
                        "model section '%s': section '%s' is still open",
                        tag, w->secs[w->n - 1].tag);
  if (w->writing)
    return fm_error_set(err, FM_ERR_ARG,
                        "model section '%s': the file is being written", tag);
  if (!data && len > 0)
    return fm_error_set(err, FM_ERR_ARG,
                        "model section '%s': NULL data with length %llu", tag,
                        (unsigned long long)len);
  if (len > SIZE_MAX)
    return fm_error_set(err, FM_ERR_ARG, "model section '%s': too large", tag);
  for (size_t i = 0; i < w->n; i++)
    if (strcmp(w->secs[i].tag, tag) == 0)
      return fm_error_set(err, FM_ERR_ARG, "duplicate model section '%s'",
                          tag);
  if (w->n >= UINT32_MAX)
    return fm_error_set(err, FM_ERR_ARG, "too many model sections");
  if (fm_grow((void **)&w->secs, &w->cap, w->n + 1, sizeof *w->secs))
    return fm_error_set(err, FM_ERR_NOMEM,
                        "model section '%s': out of memory", tag);
  wsec *s = &w->secs[w->n];
  memset(s, 0, sizeof *s);
  memcpy(s->tag, tag, tl);
  *slot = s;
  return FM_OK;
}

/* Append section tag over data[0..len): borrowed (the caller keeps it alive
 * until the write ends), or copied when copy is set (the copy is the
 * writer's, freed with it). */
static fm_rc add_section(fm_mfile_writer *w, const char *tag, const void *data, uint64_t len,
                         int copy, fm_error *err) {
  wsec *s = NULL; /* set by new_section on FM_OK; gcc -O3 cannot see that */
  fm_rc rc = new_section(w, tag, data, len, &s, err);
  if (rc) return rc;
  if (copy && len > 0) {
    s->owned = fm_malloc((size_t)len);
    if (!s->owned)
      return fm_error_set(err, FM_ERR_NOMEM,
                          "model section '%s': out of memory (%llu bytes)",
                          tag, (unsigned long long)len);
    memcpy(s->owned, data, (size_t)len);
    data = s->owned;
  }
  s->data = len > 0 ? data : NULL;
  s->len = len;
  w->n++;
  return FM_OK;
}

fm_rc fm_mfile_add(fm_mfile_writer *w, const char *tag, const void *data,
                   uint64_t len, fm_error *err) {
  return add_section(w, tag, data, len, 1, err);
}

fm_rc fm_mfile_add_ref(fm_mfile_writer *w, const char *tag, const void *data,
                       uint64_t len, fm_error *err) {
  return add_section(w, tag, data, len, 0, err);
}

fm_rc fm_mfile_add_later(fm_mfile_writer *w, const char *tag, uint64_t len,
                         fm_error *err) {
  wsec *s = NULL; /* set by new_section on FM_OK; gcc -O3 cannot see that */
  fm_rc rc = new_section(w, tag, NULL, 0, &s, err);
  if (rc) return rc;
  s->len = len;
  s->later = 1;
  w->n++;
  return FM_OK;
}

fm_rc fm_mfile_fill(fm_mfile_writer *w, const char *tag, const void *data,
                    fm_error *err) {
  for (size_t i = 0; i < w->n; i++) {
    wsec *s = &w->secs[i];
    if (strcmp(s->tag, tag) != 0) continue;
    if (!s->later)
      return fm_error_set(err, FM_ERR_ARG,
                          "model section '%s' was not added with "
                          "fm_mfile_add_later", tag);
    if (!data && s->len > 0)
      return fm_error_set(err, FM_ERR_ARG,
                          "model section '%s': NULL data with length %llu",
                          tag, (unsigned long long)s->len);
    s->data = s->len > 0 ? data : NULL;
    s->filled = 1;
    return FM_OK;
  }
  return fm_error_set(err, FM_ERR_ARG, "no model section '%.40s' to fill",
                      tag ? tag : "(null)");
}

fm_rc fm_mfile_begin(fm_mfile_writer *w, const char *tag, fm_error *err) {
  wsec *s;
  fm_rc rc = new_section(w, tag, NULL, 0, &s, err);
  if (rc) return rc;
  w->n++;
  w->streaming = 1;
  return FM_OK;
}

fm_rc fm_mfile_append(fm_mfile_writer *w, const void *data, uint64_t len,
                      fm_error *err) {
  if (!w->streaming)
    return fm_error_set(err, FM_ERR_ARG,
                        "fm_mfile_append: no model section is open");
  wsec *s = &w->secs[w->n - 1];
  if (len == 0) return FM_OK;
  if (!data)
    return fm_error_set(err, FM_ERR_ARG,
                        "model section '%s': NULL data with length %llu",
                        s->tag, (unsigned long long)len);
  if (len > SIZE_MAX - s->len)
    return fm_error_set(err, FM_ERR_ARG, "model section '%s': too large",
                        s->tag);
  if (fm_grow((void **)&s->owned, &s->cap, (size_t)(s->len + len), 1))
    return fm_error_set(err, FM_ERR_NOMEM,
                        "model section '%s': out of memory", s->tag);
  memcpy(s->owned + s->len, data, (size_t)len);
  s->data = s->owned;
  s->len += len;
  return FM_OK;
}

fm_rc fm_mfile_end(fm_mfile_writer *w, fm_error *err) {
  if (!w->streaming)
    return fm_error_set(err, FM_ERR_ARG,
                        "fm_mfile_end: no model section is open");
  w->streaming = 0;
  return FM_OK;
}

/* Fill hdr_tab (tab_end bytes, zeroed by the caller) with header and table
 * from the sections' offsets and CRCs (all written). */
static void build_header(const fm_mfile_writer *w, unsigned char *ht,
                         uint64_t tab_end) {
  uint64_t end = tab_end;
  uint32_t fcrc;
  memcpy(ht + H_MAGIC, MAGIC, sizeof MAGIC);
  put32(ht + H_VERSION, FM_MFILE_VERSION);
  put32(ht + H_ENDIAN, ENDIAN_MARK);
  put32(ht + H_NSEC, (uint32_t)w->n);
  put64(ht + H_TABLE, HDR_SIZE);
  for (size_t i = 0; i < w->n; i++) {
    const wsec *s = &w->secs[i];
    unsigned char *e = ht + HDR_SIZE + i * ENTRY_SIZE;
    memcpy(e + E_TAG, s->tag, TAG_SIZE);
    put64(e + E_OFF, s->off);
    put64(e + E_LEN, s->len);
    put32(e + E_CRC, s->crc);
    end = s->off + s->len;
  }
  put64(ht + H_FSIZE, end);
  /* whole-file CRC: header+table with both checksum fields zero, then each
   * section's zero padding and payload, combined from the section CRCs */
  fcrc = crc_header(ht, tab_end, 8);
  uint64_t pos = tab_end;
  for (size_t i = 0; i < w->n; i++) {
    fcrc = fm_crc32c(fcrc, ZEROS, (size_t)(w->secs[i].off - pos));
    fcrc = fm_crc32c_combine(fcrc, w->secs[i].crc, w->secs[i].len);
    pos = w->secs[i].off + w->secs[i].len;
  }
  put32(ht + H_FCRC, fcrc);
  put32(ht + H_HCRC, crc_header(ht, tab_end, 4));
}

/* All of buf at off, through short writes and EINTR; 0 or -1 (errno). */
static int pwrite_all(int fd, const void *buf, size_t n, uint64_t off) {
  const unsigned char *p = buf;
  while (n > 0) {
    ssize_t k = pwrite(fd, p, n, (off_t)off);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return -1;
    if (k == 0) {
      errno = EIO;
      return -1;
    }
    p += k;
    n -= (size_t)k;
    off += (uint64_t)k;
  }
  return 0;
}

/* Section i's zero padding (from the end of what precedes it) and payload,
 * at their place in the file, and its CRC. */
static fm_rc write_section(fm_mfile_writer *w, size_t i, fm_error *err) {
  wsec *s = &w->secs[i];
  uint64_t pos = i == 0 ? w->tab_end : w->secs[i - 1].off + w->secs[i - 1].len;
  size_t pad = (size_t)(s->off - pos);
  if ((pad && pwrite_all(w->fd, ZEROS, pad, pos) != 0) ||
      (s->len && pwrite_all(w->fd, s->data, (size_t)s->len, s->off) != 0))
    return fm_error_set(err, FM_ERR_IO, "%s: write failed: %s", w->a.tmp,
                        strerror(errno));
  s->crc = fm_crc32c(0, s->data, (size_t)s->len);
  s->written = 1;
  return FM_OK;
}

/* The background part: every section whose data is there, then (when some
 * are still to come, so there is time to overlap) their way to the disk, so
 * the final fsync has little left to do. */
static void *write_thread(void *arg) {
  fm_mfile_writer *w = arg;
  int later = 0;
  fm_error_init(&w->th_err);
  w->th_rc = FM_OK;
  for (size_t i = 0; i < w->n && w->th_rc == FM_OK; i++) {
    if (w->secs[i].later) later = 1;
    else w->th_rc = write_section(w, i, &w->th_err);
  }
  if (w->th_rc == FM_OK && later && fdatasync(w->fd) != 0)
    w->th_rc = fm_error_set(&w->th_err, FM_ERR_IO, "%s: fsync failed: %s",
                            w->a.tmp, strerror(errno));
  return NULL;
}

/* Wait for the background thread; its outcome. */
static fm_rc join_thread(fm_mfile_writer *w, fm_error *err) {
  if (!w->th_started) return FM_OK;
  pthread_join(w->th, NULL);
  w->th_started = 0;
  if (w->th_rc != FM_OK && err) *err = w->th_err;
  return w->th_rc;
}

fm_rc fm_mfile_write_begin(fm_mfile_writer *w, const char *path,
                           fm_error *err) {
  if (w->writing)
    return fm_error_set(err, FM_ERR_ARG, "%s: a model file write is already "
                        "in progress", path);
  if (w->streaming)
    return fm_error_set(err, FM_ERR_ARG,
                        "%s: model section '%s' is still open", path,
                        w->secs[w->n - 1].tag);
  if (!host_is_le())
    return fm_error_set(err, FM_ERR_FORMAT,
                        "%s: model files can only be written on a "
                        "little-endian host", path);
  w->tab_end = HDR_SIZE + (uint64_t)w->n * ENTRY_SIZE;
  uint64_t off = align_up(w->tab_end);
  for (size_t i = 0; i < w->n; i++) {
    wsec *s = &w->secs[i];
    s->off = off;
    s->crc = 0;
    s->written = 0;
    off = align_up(off + s->len);
  }
  fm_rc rc = fm_atomic_open(&w->a, path, err);
  if (rc) return rc;
  w->fd = fileno(w->a.fp); /* written with pwrite only: the FILE stays empty */
  w->writing = 1;
  /* a thread only when there is something to overlap with: sections still
   * to be filled */
  int later = 0;
  for (size_t i = 0; i < w->n; i++) later |= w->secs[i].later;
  if (later && pthread_create(&w->th, NULL, write_thread, w) == 0) {
    w->th_started = 1;
  } else {
    write_thread(w); /* no thread: do it here */
    if (w->th_rc != FM_OK) {
      if (err) *err = w->th_err;
      fm_mfile_write_cancel(w);
      return w->th_rc;
    }
  }
  return FM_OK;
}

fm_rc fm_mfile_write_end(fm_mfile_writer *w, fm_error *err) {
  if (!w->writing)
    return fm_error_set(err, FM_ERR_ARG,
                        "fm_mfile_write_end: no model file write in progress");
  fm_rc rc = join_thread(w, err);
  for (size_t i = 0; i < w->n && rc == FM_OK; i++) {
    wsec *s = &w->secs[i];
    if (s->written) continue;
    if (s->later && !s->filled)
      rc = fm_error_set(err, FM_ERR_ARG,
                        "%s: model section '%s' was never filled", w->a.path,
                        s->tag);
    else rc = write_section(w, i, err);
  }
  unsigned char *ht = NULL;
  if (rc == FM_OK && !(ht = fm_calloc(1, (size_t)w->tab_end)))
    rc = fm_error_set(err, FM_ERR_NOMEM, "%s: out of memory", w->a.path);
  if (rc == FM_OK) {
    build_header(w, ht, w->tab_end);
    if (pwrite_all(w->fd, ht, (size_t)w->tab_end, 0) != 0)
      rc = fm_error_set(err, FM_ERR_IO, "%s: write failed: %s", w->a.tmp,
                        strerror(errno));
  }
  fm_free(ht);
  w->writing = 0;
  if (rc != FM_OK) {
    fm_atomic_abort(&w->a);
    return rc;
  }
  return fm_atomic_commit(&w->a, err);
}

void fm_mfile_write_cancel(fm_mfile_writer *w) {
  if (!w->writing) return;
  join_thread(w, NULL);
  fm_atomic_abort(&w->a);
  w->writing = 0;
}

fm_rc fm_mfile_write(fm_mfile_writer *w, const char *path, fm_error *err) {
  fm_rc rc = fm_mfile_write_begin(w, path, err);
  return rc ? rc : fm_mfile_write_end(w, err);
}
