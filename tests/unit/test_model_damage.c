/* test_model_damage.c: damaged model files are refused with a clear error
 * naming the file, never a crash: truncated copies, byte flips in every
 * section, wrong kinds of file, and contents that checksums cannot catch
 * (every CRC right, but dimensions, LSA rows, kinds or term offsets out of
 * range), each before any lookup indexes with them.  The good file is the
 * tiny fixture's model (tests/data/model). */
#include "fm_model.h"
#include "fm_test.h"
#include "fm_test_mfile.h"
#include "fm_test_util.h"
#include "fm_test_train.h"
#include "mfile.h"

#include <sys/stat.h>

#define D "tests/data/model/"

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static int open_fails_cleanly(const char *path, const char *what) {
  fm_model *m = (fm_model *)1;
  fm_error err;
  fm_error_init(&err);
  fm_rc rc = fm_model_open(path, &m, &err);
  int ok = (rc == FM_ERR_CORRUPT || rc == FM_ERR_FORMAT || rc == FM_ERR_VERSION) &&
           m == NULL && strstr(err.msg, path) != NULL;
  if (!ok) fprintf(stderr, "  %s: rc=%s msg=%s\n", what, fm_rc_name(rc), err.msg);
  if (rc == FM_OK) fm_model_close(m);
  return ok;
}

/* Contents that checksums cannot catch: a file written by a buggy or
 * hostile writer, with every CRC right.  Each must be refused before any
 * lookup indexes with it. */
static void test_inconsistent(const char *good) {
  const char *bad = tmp("inconsistent.fmm");
  size_t n;
  uint32_t *dims = section_u32(good, "dims", &n);
  uint32_t *row = section_u32(good, "lsa_row", &n);
  CHECK(dims && row && n == dims[3] + dims[4]);
  if (!dims || !row) goto out;
  /* an unchanged copy opens: the rewrite itself is faithful */
  CHECK(resave_with(good, bad, "dims", dims, 12) == 0);
  fm_model *m = NULL;
  fm_error err;
  fm_error_init(&err);
  CHECK(fm_model_open(bad, &m, &err) == FM_OK);
  fm_model_close(m);
  /* the LSA rows: one more or one fewer than stored, a reserved slot set */
  CHECK(rejects_u32(good, bad, "dims", 9, dims[9] + 1, "lsa_v"));
  CHECK(rejects_u32(good, bad, "dims", 9, dims[9] - 1, "lsa_v"));
  CHECK(rejects_u32(good, bad, "dims", 10, 1, "dimensions"));
  CHECK(rejects_u32(good, bad, "dims", 9, n + 1, "dimensions"));
  /* a word's row out of range, repeated, or out of term order; a word
   * with a row dropped */
  size_t first = n, second = n;
  for (size_t t = 0; t < n; t++)
    if (row[t] != UINT32_MAX) {
      if (first == n) first = t;
      else if (second == n) second = t;
    }
  CHECK(second < n && dims[9] > 2);
  if (second < n) {
    CHECK(rejects_u32(good, bad, "lsa_row", first, dims[9], "LSA row"));
    CHECK(rejects_u32(good, bad, "lsa_row", second, row[first], "LSA row"));
    CHECK(rejects_u32(good, bad, "lsa_row", first, row[second], "LSA row"));
    CHECK(rejects_u32(good, bad, "lsa_row", first, UINT32_MAX, "LSA row"));
  }
  for (size_t t = 0; t < n; t++)
    if (row[t] == UINT32_MAX) {
      CHECK(rejects_u32(good, bad, "lsa_row", t, 0, "LSA row"));
      break;
    }
  /* a field's kind and a term's string offset out of range */
  CHECK(rejects_u32(good, bad, "refs", 8, dims[8], "kind out of range"));
  CHECK(rejects_u32(good, bad, "terms", 0, UINT32_MAX - 1, "term offset"));
out:
  fm_free(dims);
  fm_free(row);
}

static void test_corruption(void) {
  fm_model *m = train_tiny(0, 0);
  if (!m) return;
  fm_error err;
  fm_error_init(&err);
  const char *good = tmp("good.fmm");
  CHECK(fm_model_write(m, good, &err) == FM_OK);
  fm_model_close(m);
  size_t n = 0;
  unsigned char *bytes = read_bytes(good, &n);
  CHECK(bytes && n > 4096);
  if (!bytes) return;
  const char *bad = tmp("bad.fmm");

  /* truncated copies */
  size_t cuts[] = {0, 1, 7, 8, 12, 63, 64, 100, 104, 500, 1000, 4096, n / 3, n / 2,
                   n - 4096, n - 65, n - 64, n - 1};
  int fails = 0;
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
    CHECK(write_bytes(bad, bytes, cuts[i]) == 0);
    char what[64];
    snprintf(what, sizeof what, "truncated to %zu", cuts[i]);
    if (!open_fails_cleanly(bad, what)) fails++;
  }
  CHECK(fails == 0);

  /* a byte flipped anywhere: every header byte, then a stride over the rest */
  fails = 0;
  int tried = 0;
  for (size_t off = 0; off < n; off += off < 128 ? 1 : 37) {
    bytes[off] ^= 0x5a;
    CHECK(write_bytes(bad, bytes, n) == 0);
    bytes[off] ^= 0x5a;
    char what[64];
    snprintf(what, sizeof what, "byte %zu flipped", off);
    if (!open_fails_cleanly(bad, what)) fails++;
    tried++;
  }
  CHECK(fails == 0);
  CHECK(tried > 1000);

  /* a trailing byte appended */
  unsigned char *longer = fm_malloc(n + 1);
  if (longer) {
    memcpy(longer, bytes, n);
    longer[n] = 0;
    CHECK(write_bytes(bad, longer, n + 1) == 0);
    CHECK(open_fails_cleanly(bad, "one byte appended"));
    fm_free(longer);
  }

  /* an older (without the query rows) and a newer format version */
  unsigned char v0 = bytes[8];
  bytes[8] = (unsigned char)(v0 - 1);
  CHECK(write_bytes(bad, bytes, n) == 0);
  CHECK(open_fails_cleanly(bad, "older version"));
  bytes[8] = (unsigned char)(v0 + 1);
  CHECK(write_bytes(bad, bytes, n) == 0);
  CHECK(open_fails_cleanly(bad, "newer version"));
  bytes[8] = v0;
  fm_free(bytes);

  /* files that are not models at all */
  CHECK(open_fails_cleanly(D "tiny.json", "a JSON file"));
  CHECK(open_fails_cleanly(D "RDMFieldDictionary.tiny", "an RDM dictionary"));

  /* missing file and a directory: I/O errors naming the path */
  fm_model *l = (fm_model *)1;
  fm_error_init(&err);
  CHECK(fm_model_open(tmp("absent.fmm"), &l, &err) == FM_ERR_IO);
  CHECK(l == NULL);
  CHECK(strstr(err.msg, "absent.fmm") != NULL);
  fm_error_init(&err);
  CHECK(fm_model_open(dir, &l, &err) == FM_ERR_IO);
  CHECK(strstr(err.msg, dir) != NULL);

  /* the good file still opens */
  CHECK(fm_model_open(good, &l, &err) == FM_OK);
  fm_model_close(l);

  test_inconsistent(good);

  /* writing into a missing directory fails, naming the path, leaving nothing */
  m = train_tiny(0, 0);
  if (m) {
    fm_error_init(&err);
    const char *nd = tmp("no/such/dir/x.fmm");
    CHECK(fm_model_write(m, nd, &err) == FM_ERR_IO);
    CHECK(strstr(err.msg, "no/such/dir") != NULL);
    CHECK(!exists(nd));
    fm_model_close(m);
  }
}

int main(void) {
  if (scratch_make("fm_damage_")) return 1;
  FM_RUN(test_corruption);
  scratch_remove();
  FM_TEST_EXIT();
}
