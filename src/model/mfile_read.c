/* mfile_read.c: opening and validating a model file (fm_mfile_open): the
 * header, the section table, padding and checksums, then the sections as
 * borrowed views of the mapping.  The writer is mfile.c. */
#include "mfile_layout.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- reader ---------------------------------------------------------- */

typedef struct rsec {
  char tag[TAG_SIZE];
  uint64_t off, len;
} rsec;

struct fm_mfile {
  char *path;
  const unsigned char *map;
  uint64_t size;
  uint32_t checksum;
  uint32_t version;
  size_t n;
  rsec *secs;
};

void fm_mfile_close(fm_mfile *f) {
  if (!f) return;
  if (f->map) munmap((void *)f->map, (size_t)f->size);
  fm_free(f->secs);
  fm_free(f->path);
  fm_free(f);
}

static int cmp_rsec_tag(const void *a, const void *b) {
  return strcmp(((const rsec *)a)->tag, ((const rsec *)b)->tag);
}

/* Tags are unique: a sorted copy of the table, neighbours compared, so
 * O(n log n).  (A pairwise scan was quadratic in the section count, which
 * the file sets: 80,000 empty sections, a 3 MB file, took 6 s to refuse;
 * a 160 MB file, hours.) */
static fm_rc unique_tags(const fm_mfile *f, uint32_t nsec, fm_error *err) {
  if (nsec < 2) return FM_OK;
  rsec *c = fm_malloc((size_t)nsec * sizeof *c);
  if (!c) return fm_error_set(err, FM_ERR_NOMEM, "%s: out of memory", f->path);
  memcpy(c, f->secs, (size_t)nsec * sizeof *c);
  qsort(c, nsec, sizeof *c, cmp_rsec_tag);
  fm_rc rc = FM_OK;
  for (uint32_t i = 1; i < nsec && rc == FM_OK; i++)
    if (strcmp(c[i - 1].tag, c[i].tag) == 0)
      rc = fm_error_set(err, FM_ERR_CORRUPT, "%s: model file has two sections '%s'",
                        f->path, c[i].tag);
  fm_free(c);
  return rc;
}

/* Everything after the mapping: header, table, layout, checksums.  Errors
 * name f->path; f->secs is filled on success. */
/* The error of a file shorter than its header (FM_ERR_CORRUPT). */
static fm_rc truncated_header(const char *path, uint64_t size, fm_error *err) {
  return fm_error_set(err, FM_ERR_CORRUPT,
                      "%s: model file truncated to %llu bytes (the header alone is %u)",
                      path, (unsigned long long)size, HDR_SIZE);
}

/* Check f's header and section table bounds and checksum: magic, version,
 * byte order, sizes, reserved bytes.  On success *version_out, *nsec_out
 * and *tab_end_out (the end of the section table) are set.  Reads only. */
static fm_rc check_header(const fm_mfile *f, uint32_t *version_out, uint32_t *nsec_out,
                          uint64_t *tab_end_out, fm_error *err) {
  const char *path = f->path;
  const unsigned char *m = f->map;
  uint64_t size = f->size;

  if (size < sizeof MAGIC) {
    if (memcmp(m, MAGIC, (size_t)size) == 0)
      return truncated_header(path, size, err);
    return fm_error_set(err, FM_ERR_FORMAT,
                        "%s: not a fieldmatch model file (bad magic)", path);
  }
  if (memcmp(m, MAGIC, sizeof MAGIC) != 0)
    return fm_error_set(err, FM_ERR_FORMAT,
                        "%s: not a fieldmatch model file (bad magic)", path);
  if (size < H_VERSION + 4)
    return truncated_header(path, size, err);
  uint32_t version = *version_out = get32(m + H_VERSION);
  if (version < FM_MFILE_VERSION_MIN || version > FM_MFILE_VERSION)
    return fm_error_set(err, FM_ERR_VERSION,
                        "model file %s has format version %u; this build "
                        "reads versions %d to %d",
                        path, version, FM_MFILE_VERSION_MIN, FM_MFILE_VERSION);
  if (size < HDR_SIZE)
    return truncated_header(path, size, err);
  uint32_t mark = get32(m + H_ENDIAN);
  if (mark == ENDIAN_SWAPPED)
    return fm_error_set(err, FM_ERR_FORMAT,
                        "%s: model file has the other byte order "
                        "(big-endian); this build reads little-endian",
                        path);
  if (mark != ENDIAN_MARK)
    return fm_error_set(err, FM_ERR_CORRUPT,
                        "%s: model file header is corrupt (bad byte order "
                        "marker 0x%08x)",
                        path, mark);

  uint64_t fsize = get64(m + H_FSIZE);
  uint32_t nsec = *nsec_out = get32(m + H_NSEC);
  if (get64(m + H_TABLE) != HDR_SIZE)
    return fm_error_set(err, FM_ERR_CORRUPT,
                        "%s: model file header is corrupt (section table "
                        "offset %llu, expected %u)",
                        path, (unsigned long long)get64(m + H_TABLE),
                        HDR_SIZE);
  uint64_t tab_end = *tab_end_out = HDR_SIZE + (uint64_t)nsec * ENTRY_SIZE;
  if (tab_end > size) {
    if (fsize != size)
      return fm_error_set(err, FM_ERR_CORRUPT,
                          "%s: model file truncated: header says %llu "
                          "bytes, file has %llu",
                          path, (unsigned long long)fsize,
                          (unsigned long long)size);
    return fm_error_set(err, FM_ERR_CORRUPT,
                        "%s: model file header is corrupt (%u sections do "
                        "not fit in %llu bytes)",
                        path, nsec, (unsigned long long)size);
  }
  if (crc_header(m, tab_end, 4) != get32(m + H_HCRC))
    return fm_error_set(err, FM_ERR_CORRUPT,
                        "%s: model file header checksum mismatch", path);
  /* header and table are now as written; what remains is damage after the
   * table or a writer bug */
  if (fsize != size)
    return fm_error_set(err, FM_ERR_CORRUPT,
                        "%s: model file %s: header says %llu bytes, file "
                        "has %llu",
                        path, fsize > size ? "truncated" : "has trailing bytes",
                        (unsigned long long)fsize, (unsigned long long)size);
  if (get32(m + H_RSV0) != 0 ||
      memcmp(m + H_RSV1, ZEROS, HDR_SIZE - H_RSV1) != 0)
    return fm_error_set(err, FM_ERR_CORRUPT,
                        "%s: model file header has nonzero reserved bytes",
                        path);
  return FM_OK;
}

static fm_rc validate(fm_mfile *f, fm_error *err) {
  const char *path = f->path;
  const unsigned char *m = f->map;
  uint64_t size = f->size;
  uint32_t version = 0, nsec = 0;
  uint64_t tab_end = 0;
  fm_rc hrc = check_header(f, &version, &nsec, &tab_end, err);
  if (hrc) return hrc;
  f->secs = fm_calloc(nsec ? nsec : 1, sizeof *f->secs);
  if (!f->secs)
    return fm_error_set(err, FM_ERR_NOMEM, "%s: out of memory", path);
  uint64_t pos = tab_end;
  uint32_t fcrc = crc_header(m, tab_end, 8);
  for (uint32_t i = 0; i < nsec; i++) {
    const unsigned char *e = m + HDR_SIZE + (uint64_t)i * ENTRY_SIZE;
    rsec *s = &f->secs[i];
    size_t tl = strnlen((const char *)e + E_TAG, TAG_SIZE);
    if (tl == TAG_SIZE || !tag_ok((const char *)e + E_TAG, tl) ||
        memcmp(e + E_TAG + tl, ZEROS, TAG_SIZE - tl) != 0)
      return fm_error_set(err, FM_ERR_CORRUPT,
                          "%s: model file section %u has an invalid tag",
                          path, i);
    memcpy(s->tag, e + E_TAG, TAG_SIZE);
    s->off = get64(e + E_OFF);
    s->len = get64(e + E_LEN);
    /* v1 layout is canonical: each payload starts at the next 64-byte
     * boundary after the previous one, so no overlaps and no gaps */
    if (s->off != align_up(pos) || s->off > size || s->len > size - s->off ||
        get32(e + E_RSV) != 0)
      return fm_error_set(err, FM_ERR_CORRUPT,
                          "%s: model file section '%s' has bad bounds "
                          "(offset %llu, length %llu, file %llu bytes)",
                          path, s->tag, (unsigned long long)s->off,
                          (unsigned long long)s->len,
                          (unsigned long long)size);
    if (memcmp(m + pos, ZEROS, (size_t)(s->off - pos)) != 0)
      return fm_error_set(err, FM_ERR_CORRUPT,
                          "%s: model file padding before section '%s' is "
                          "not zero",
                          path, s->tag);
    fcrc = fm_crc32c(fcrc, m + pos, (size_t)(s->off - pos));
    uint32_t c = fm_crc32c(0, m + s->off, (size_t)s->len);
    if (c != get32(e + E_CRC))
      return fm_error_set(err, FM_ERR_CORRUPT,
                          "%s: model file section '%s' checksum mismatch "
                          "(stored 0x%08x, computed 0x%08x)",
                          path, s->tag, get32(e + E_CRC), c);
    fcrc = fm_crc32c_combine(fcrc, c, s->len);
    pos = s->off + s->len;
  }
  if (pos != size)
    return fm_error_set(err, FM_ERR_CORRUPT,
                        "%s: model file has %llu bytes after its last "
                        "section",
                        path, (unsigned long long)(size - pos));
  fm_rc rc = unique_tags(f, nsec, err);
  if (rc) return rc;
  if (fcrc != get32(m + H_FCRC))
    return fm_error_set(err, FM_ERR_CORRUPT,
                        "%s: model file checksum mismatch", path);
  f->n = nsec;
  f->checksum = fcrc;
  f->version = version;
  return FM_OK;
}

fm_rc fm_mfile_open(const char *path, fm_mfile **out, fm_error *err) {
  *out = NULL;
  if (!host_is_le())
    return fm_error_set(err, FM_ERR_FORMAT,
                        "%s: model files can only be read on a "
                        "little-endian host", path);
  fm_mfile *f = fm_calloc(1, sizeof *f);
  if (!f || !(f->path = fm_strdup(path))) {
    fm_free(f);
    return fm_error_set(err, FM_ERR_NOMEM, "%s: out of memory", path);
  }
  fm_rc rc;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    rc = fm_error_set(err, FM_ERR_IO, "%s: cannot open model file: %s", path,
                      strerror(errno));
    goto fail;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    rc = fm_error_set(err, FM_ERR_IO, "%s: cannot stat model file: %s", path,
                      strerror(errno));
    close(fd);
    goto fail;
  }
  if (!S_ISREG(st.st_mode)) {
    rc = fm_error_set(err, FM_ERR_IO, "%s: not a regular file", path);
    close(fd);
    goto fail;
  }
  if (st.st_size == 0) {
    rc = fm_error_set(err, FM_ERR_FORMAT,
                      "%s: empty file, not a fieldmatch model file", path);
    close(fd);
    goto fail;
  }
  if ((uint64_t)st.st_size > SIZE_MAX) {
    rc = fm_error_set(err, FM_ERR_IO, "%s: model file too large to map",
                      path);
    close(fd);
    goto fail;
  }
  void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  int e = errno;
  close(fd); /* the mapping keeps the file */
  if (map == MAP_FAILED) {
    rc = fm_error_set(err, FM_ERR_IO, "%s: cannot map model file: %s", path,
                      strerror(e));
    goto fail;
  }
  f->map = map;
  f->size = (uint64_t)st.st_size;
  rc = validate(f, err);
  if (rc) goto fail;
  *out = f;
  return FM_OK;
fail:
  fm_mfile_close(f);
  return rc;
}

fm_rc fm_mfile_section(const fm_mfile *f, const char *tag, const void **data,
                       uint64_t *len, fm_error *err) {
  for (size_t i = 0; i < f->n; i++)
    if (strcmp(f->secs[i].tag, tag) == 0) {
      *data = f->map + f->secs[i].off;
      *len = f->secs[i].len;
      return FM_OK;
    }
  *data = NULL;
  *len = 0;
  return fm_error_set(err, FM_ERR_NOTFOUND,
                      "%s: model file has no section '%s'", f->path, tag);
}

size_t fm_mfile_nsections(const fm_mfile *f) { return f->n; }

const char *fm_mfile_section_tag(const fm_mfile *f, size_t i, uint64_t *len) {
  if (i >= f->n) return NULL;
  if (len) *len = f->secs[i].len;
  return f->secs[i].tag;
}

uint32_t fm_mfile_checksum(const fm_mfile *f) { return f->checksum; }
uint32_t fm_mfile_version(const fm_mfile *f) { return f->version; }
uint64_t fm_mfile_size(const fm_mfile *f) { return f->size; }
const char *fm_mfile_path(const fm_mfile *f) { return f->path; }
