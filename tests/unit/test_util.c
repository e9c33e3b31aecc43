/* test_util.c: the util module: errors, strmap, arena, crc, atomic files,
 * fault injection. */
#include "fm_test.h"
#include "fm_util.h"

#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

static void test_strmap(void) {
  fm_strmap m;
  fm_strmap_init(&m);
  char key[32];
  for (uint32_t i = 0; i < 10000; i++) {
    int n = snprintf(key, sizeof key, "k%u", i);
    int ins = 0;
    uint32_t v;
    CHECK(fm_strmap_put(&m, key, (size_t)n, i * 3, &v, &ins) == FM_OK);
    CHECK(ins == 1 && v == i * 3);
  }
  CHECK(fm_strmap_count(&m) == 10000);
  uint32_t v = 0;
  CHECK(fm_strmap_get(&m, "k777", 4, &v) && v == 2331);
  CHECK(!fm_strmap_get(&m, "nope", 4, &v));
  int ins = 1;
  CHECK(fm_strmap_put(&m, "k5", 2, 99, &v, &ins) == FM_OK && !ins && v == 15);
  CHECK(fm_strmap_set(&m, "k5", 2, 99) == FM_OK);
  CHECK(fm_strmap_get(&m, "k5", 2, &v) && v == 99);
  size_t len;
  CHECK_STR(fm_strmap_key(&m, 42, &len), "k42");
  /* keys with embedded NUL-free but shared prefixes stay distinct */
  CHECK(fm_strmap_put(&m, "k1", 1, 7, &v, &ins) == FM_OK && ins);
  /* a map moves by struct copy (train.c hands a share's vocabulary over
   * that way); the source, re-initialized, is empty and reusable */
  fm_strmap moved = m;
  fm_strmap_init(&m);
  CHECK(fm_strmap_count(&m) == 0 && !fm_strmap_get(&m, "k5", 2, &v));
  CHECK(fm_strmap_get(&moved, "k5", 2, &v) && v == 99);
  CHECK(fm_strmap_put(&moved, "k10000", 6, 1, &v, &ins) == FM_OK && ins);
  CHECK(fm_strmap_count(&moved) == 10002);
  CHECK(fm_strmap_put(&m, "x", 1, 5, &v, &ins) == FM_OK && ins && v == 5);
  fm_strmap_free(&moved);
  fm_strmap_free(&m);
}

static void test_crc(void) {
  /* CRC-32C check value for "123456789" */
  CHECK(fm_crc32c(0, "123456789", 9) == 0xE3069283u);
  /* incremental equals one-shot */
  uint32_t c = fm_crc32c(0, "1234", 4);
  CHECK(fm_crc32c(c, "56789", 5) == 0xE3069283u);
}

static void test_error(void) {
  fm_error e;
  fm_error_init(&e);
  CHECK(fm_error_set(&e, FM_ERR_PARSE, "a.csv:%d: bad", 3) == FM_ERR_PARSE);
  fm_error_set(&e, FM_ERR_IO, "second");
  CHECK_STR(e.msg, "a.csv:3: bad"); /* first message wins */
  CHECK(e.rc == FM_ERR_IO);
  fm_error_prefix(&e, "loading %s", "x");
  CHECK_STR(e.msg, "loading x: a.csv:3: bad");
  CHECK_STR(fm_rc_name(FM_ERR_CORRUPT), "corrupt");
}

static void test_atomic(void) {
  char path[] = "/tmp/fm_test_atomicXXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  close(fd);
  fm_atomic a;
  fm_error e;
  fm_error_init(&e);
  CHECK(fm_atomic_open(&a, path, &e) == FM_OK);
  fputs("hello", a.fp);
  fm_atomic_abort(&a); /* aborted: original (empty) file unchanged */
  char *buf;
  size_t n;
  CHECK(fm_read_file(path, &buf, &n, &e) == FM_OK && n == 0);
  fm_free(buf);
  CHECK(fm_atomic_open(&a, path, &e) == FM_OK);
  fputs("hello", a.fp);
  CHECK(fm_atomic_commit(&a, &e) == FM_OK);
  CHECK(fm_read_file(path, &buf, &n, &e) == FM_OK && n == 5);
  CHECK(buf && strcmp(buf, "hello") == 0);
  fm_free(buf);
  unlink(path);
  fm_error_init(&e);
  CHECK(fm_read_file("/nonexistent/x", &buf, &n, &e) == FM_ERR_IO);
  CHECK(strstr(e.msg, "/nonexistent/x") != NULL);
}

static void test_fault(void) {
  /* Inject an allocation failure at every point of a strmap build: each
   * must fail cleanly (no crash, no leak under ASan). */
  for (long k = 1; k < 40; k++) {
    fm_strmap m;
    fm_strmap_init(&m);
    fm_fault_malloc_after(k);
    fm_rc rc = FM_OK;
    char key[16];
    for (int i = 0; i < 100 && rc == FM_OK; i++) {
      int n = snprintf(key, sizeof key, "x%d", i);
      rc = fm_strmap_put(&m, key, (size_t)n, 1, NULL, NULL);
    }
    fm_fault_malloc_after(0);
    CHECK(rc == FM_OK || rc == FM_ERR_NOMEM);
    fm_strmap_free(&m);
  }
}

static void test_paths(void) {
  char *d = fm_path_dirname("a/b/c.json");
  CHECK_STR(d, "a/b");
  char *j = fm_path_join(d, "../x");
  CHECK_STR(j, "a/b/../x");
  fm_free(j);
  j = fm_path_join(d, "/abs");
  CHECK_STR(j, "/abs");
  fm_free(j);
  fm_free(d);
  d = fm_path_dirname("c.json");
  CHECK_STR(d, ".");
  fm_free(d);
}

/* mkdir -p, SHA-256 of a file and of bytes (FIPS 180-2 test vector "abc"),
 * and the UTC time formats on known instants. */
static void test_dirs_sha_time(void) {
  char root[] = "/tmp/fm_test_dirsXXXXXX";
  CHECK(mkdtemp(root) != NULL);
  char deep[128], file[160];
  snprintf(deep, sizeof deep, "%s/a/b/c", root);
  fm_error e;
  fm_error_init(&e);
  CHECK(fm_mkdirs(deep, &e) == FM_OK);
  CHECK(fm_mkdirs(deep, &e) == FM_OK); /* existing: fine */
  struct stat sb;
  CHECK(stat(deep, &sb) == 0 && S_ISDIR(sb.st_mode));
  snprintf(file, sizeof file, "%s/a/f", root);
  FILE *fp = fopen(file, "w");
  CHECK(fp != NULL);
  fputs("abc", fp);
  fclose(fp);
  const char *abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  char hex[65];
  CHECK(fm_file_sha256(file, hex, &e) == FM_OK);
  CHECK_STR(hex, abc);
  fm_sha256_hex("abc", 3, hex);
  CHECK_STR(hex, abc);
  /* a path through a file is not a directory: the error names it */
  char under[192];
  snprintf(under, sizeof under, "%s/x/y", file);
  fm_error_init(&e);
  CHECK(fm_mkdirs(under, &e) == FM_ERR_IO && strstr(e.msg, file) != NULL);
  fm_error_init(&e);
  CHECK(fm_file_sha256(under, hex, &e) == FM_ERR_IO && strstr(e.msg, under) != NULL);
  unlink(file);
  for (int i = 0; i < 3; i++) { /* c, b, a */
    rmdir(deep);
    *strrchr(deep, '/') = '\0';
  }
  rmdir(root);
  char t[32];
  fm_time_iso(1700000000, t, sizeof t);
  CHECK_STR(t, "2023-11-14T22:13:20.000Z");
  fm_time_utc(1700000000, "%Y%m%dT%H%M%SZ", t, sizeof t);
  CHECK_STR(t, "20231114T221320Z");
  fm_time_utc(1700000000, "%Y-%m-%d", t, 5); /* does not fit: "" */
  CHECK_STR(t, "");
  fm_time_now_iso(t, sizeof t);
  CHECK(strlen(t) == 24 && t[10] == 'T' && t[19] == '.' && t[23] == 'Z');
}

/* Hashing in parts equals hashing the joined bytes; hex and CSV/JSON
 * writers on known values. */
static void test_hash_hex_writers(void) {
  CHECK(fm_hash64("abcdef", 6) == fm_hash64_more(fm_hash64_more(FM_HASH64_INIT, "abc", 3), "def", 3));
  CHECK(fm_hash64("", 0) == FM_HASH64_INIT);
  char hx[9];
  fm_hex("\x00\x9f\xff\x10", 4, hx);
  CHECK_STR(hx, "009fff10");
  unsigned char r1[16] = {0}, r2[16] = {0};
  CHECK(fm_random_bytes(r1, sizeof r1, NULL) == FM_OK);
  CHECK(fm_random_bytes(r2, sizeof r2, NULL) == FM_OK);
  CHECK(memcmp(r1, r2, sizeof r1) != 0);
  fm_buf b;
  fm_buf_init(&b);
  const char *cells[][2] = {{"plain", "plain"}, {"a,b", "\"a,b\""}, {"say \"hi\"", "\"say \"\"hi\"\"\""},
                            {"two\nlines", "\"two\nlines\""}, {" pad", "\" pad\""}, {"", ""}};
  for (size_t i = 0; i < sizeof cells / sizeof cells[0]; i++) {
    fm_buf_reset(&b);
    CHECK(fm_buf_csv_cell(&b, cells[i][0], strlen(cells[i][0]), 0) == FM_OK);
    CHECK(b.len == strlen(cells[i][1]) && !memcmp(b.buf, cells[i][1], b.len));
  }
  fm_buf_reset(&b);
  CHECK(fm_buf_csv_cell(&b, "", 0, 1) == FM_OK && b.len == 2 && !memcmp(b.buf, "\"\"", 2));
  fm_buf_reset(&b);
  CHECK(fm_buf_json_str(&b, "a\"\\\n\x01\xc3\xa9", 7, NULL) == FM_OK);
  CHECK(b.len == strlen("\"a\\\"\\\\\\n\\u0001\xc3\xa9\"") &&
        !memcmp(b.buf, "\"a\\\"\\\\\\n\\u0001\xc3\xa9\"", b.len));
  size_t before = b.len;
  CHECK(fm_buf_json_str(&b, "\xff", 1, NULL) == FM_ERR_ARG && b.len == before);
  fm_buf_free(&b);
}

/* fm_buf_json_str copies runs of plain bytes eight at a time: every byte
 * that needs care (each control byte, quote, backslash, the plain bytes
 * next to them in ASCII, DEL, a two-byte UTF-8 character, an invalid
 * byte) at every position of a 24-byte string gives what a byte-by-byte
 * encoder written here gives. */
static size_t json_ref(const unsigned char *s, size_t n, char *o) {
  size_t k = 0;
  o[k++] = '"';
  for (size_t i = 0; i < n; i++) {
    unsigned char c = s[i];
    const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n"
                    : c == '\r' ? "\\r" : c == '\t' ? "\\t" : c == '\b' ? "\\b"
                    : c == '\f' ? "\\f" : NULL;
    if (esc)
      k += (size_t)sprintf(o + k, "%s", esc);
    else if (c < 0x20)
      k += (size_t)sprintf(o + k, "\\u%04X", c);
    else
      o[k++] = (char)c;
  }
  o[k++] = '"';
  return k;
}

static void test_json_str_words(void) {
  const unsigned char special[] = {0x00, 0x01, 0x08, 0x09, 0x0a, 0x1f, 0x20, 0x21, '"', 0x23,
                                   0x5b, '\\', 0x5d, 0x7f};
  fm_buf b;
  fm_buf_init(&b);
  int bad = 0;
  for (size_t k = 0; k < sizeof special + 2; k++)
    for (size_t at = 0; at < 23; at++) {
      unsigned char in[24];
      memset(in, 'a' + (int)(at % 26), sizeof in);
      size_t n = sizeof in;
      if (k < sizeof special) {
        in[at] = special[k];
      } else {
        in[at] = k == sizeof special ? 0xc3 : 0xff; /* \xc3\xa9 is e-acute */
        in[at + 1] = 0xa9;
      }
      fm_buf_reset(&b);
      fm_rc rc = fm_buf_json_str(&b, (const char *)in, n, NULL);
      if (k == sizeof special + 1) {
        bad += rc != FM_ERR_ARG || b.len != 0;
        continue;
      }
      char want[24 * 6 + 3];
      size_t wn = json_ref(in, n, want);
      bad += rc != FM_OK || b.len != wn || memcmp(b.buf, want, wn) != 0;
    }
  CHECK(bad == 0);
  fm_buf_free(&b);
}

/* fm_buf_fixed4 and fm_buf_u64 write what printf writes, byte for byte:
 * exact ties (1/32 -> 312.5 ten-thousandths), negative zero, tiny
 * negatives, huge and non-finite values, and a sweep over float bit
 * patterns (every 4999th pattern, all signs and exponents). */
static void test_fixed4(void) {
  fm_buf b;
  fm_buf_init(&b);
  char want[128];
  int bad = 0;
  const float special[] = {0.0f, -0.0f, 0.03125f, -0.03125f, 0.09375f, 1.00005f, -1e-5f,
                           2.5e-5f, 1e17f, -3e38f, 123456.789f, INFINITY, -INFINITY, NAN};
  for (size_t i = 0; i < sizeof special / sizeof *special; i++) {
    fm_buf_reset(&b);
    CHECK(fm_buf_fixed4(&b, special[i]) == FM_OK);
    snprintf(want, sizeof want, "%.4f", (double)special[i]);
    if (strcmp(b.buf, want)) bad++;
  }
  for (uint64_t u = 0; u <= UINT32_MAX; u += 4999) {
    uint32_t bits = (uint32_t)u;
    float v;
    memcpy(&v, &bits, sizeof v);
    if (fabsf(v) > 1e20f) continue; /* printf's own path; keeps the test fast */
    fm_buf_reset(&b);
    if (fm_buf_fixed4(&b, v) != FM_OK) bad++;
    snprintf(want, sizeof want, "%.4f", (double)v);
    if (strcmp(b.buf, want) && bad++ < 5) fprintf(stderr, "  %a: %s vs %s\n", (double)v, b.buf, want);
  }
  CHECK(bad == 0);
  const uint64_t ints[] = {0, 7, 10, 99, 1000, 4294967295u, UINT64_MAX};
  for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
    fm_buf_reset(&b);
    CHECK(fm_buf_u64(&b, ints[i]) == FM_OK);
    snprintf(want, sizeof want, "%llu", (unsigned long long)ints[i]);
    CHECK_STR(b.buf, want);
  }
  /* printf into spare room, then past it: both paths append */
  fm_buf_reset(&b);
  CHECK(fm_buf_printf(&b, "%s-%d", "ab", 12) == FM_OK);
  for (int i = 0; i < 50; i++) CHECK(fm_buf_printf(&b, "%s", "0123456789") == FM_OK);
  CHECK(b.len == 5 + 500 && !strncmp(b.buf, "ab-120123", 9) && b.buf[b.len] == '\0');
  fm_buf_free(&b);
}

int main(void) {
  FM_RUN(test_fixed4);
  FM_RUN(test_hash_hex_writers);
  FM_RUN(test_json_str_words);
  FM_RUN(test_strmap);
  FM_RUN(test_crc);
  FM_RUN(test_error);
  FM_RUN(test_atomic);
  FM_RUN(test_fault);
  FM_RUN(test_paths);
  FM_RUN(test_dirs_sha_time);
  FM_TEST_EXIT();
}
