/* test_http_parts.c: pieces of the HTTP front end tested on their own.
 *
 *   - the direct JSON writer (jw.c) against jansson itself: every string
 *     and real is written byte for byte as json_dumps(JSON_COMPACT |
 *     JSON_REAL_PRECISION(9)) writes it, and exactly the strings
 *     json_string rejects are rejected (controls, quotes, backslashes,
 *     '/', multibyte, overlongs, surrogates, truncations, random bytes);
 *     scores (round to 4 places) and integers written without printf give
 *     jansson's bytes too;
 *   - the match cache (rank_cache.c): hits return what was put, keys that
 *     differ in any part miss, a full set evicts its least recently used
 *     way, capacity stays bounded, and a zero size means no cache. */
#include "fm_test.h"
#include "http_internal.h"

/* jansson's text for one string, or NULL if json_string rejects it. */
static char *jansson_str(const char *s, size_t n) {
  json_t *j = json_stringn(s, n);
  if (!j) return NULL;
  char *t = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
  json_decref(j);
  return t;
}

static int same_as_jansson(const char *s, size_t n) {
  fm_buf b;
  fm_buf_init(&b);
  fm_error err;
  fm_error_init(&err);
  CHECK(fm_buf_puts(&b, "x") == FM_OK); /* appends, never resets */
  fm_rc rc = fm_buf_json_str(&b, s, n, &err);
  char *want = jansson_str(s, n);
  int ok;
  if (!want)
    ok = rc == FM_ERR_ARG && b.len == 1 && strstr(err.msg, "UTF-8");
  else
    ok = rc == FM_OK && b.len == 1 + strlen(want) && !memcmp(b.buf + 1, want, b.len - 1);
  if (!ok)
    fprintf(stderr, "  string of %zu bytes: got rc %d '%s', jansson '%s'\n", n, (int)rc,
            b.buf ? b.buf : "", want ? want : "(rejected)");
  free(want);
  fm_buf_free(&b);
  return ok;
}

static void test_jw_strings(void) {
  static const char *fixed[] = {
      "", "PX_LAST", "a\"b", "back\\slash", "sl/ash", "\b\f\n\r\t", "\x01\x1f\x7f",
      "caf\xc3\xa9", "\xe2\x80\xa8 line sep", "\xf0\x9f\x98\x80 emoji", "\xef\xbf\xbf",
      "\xc0\x80",         /* overlong NUL */
      "\xe0\x80\xaf",     /* overlong '/' */
      "\xf0\x80\x80\xaf", /* overlong 4-byte */
      "\xed\xa0\x80",     /* surrogate */
      "\xf4\x90\x80\x80", /* past U+10FFFF */
      "\xf5\x80\x80\x80", "\xff", "\x80", "abc\xc3", "\xe2\x82", "\xc3\x28",
  };
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
    CHECK(same_as_jansson(fixed[i], strlen(fixed[i])));
  /* random short byte strings, biased towards the interesting bytes */
  static const unsigned char pick[] = {'a', '"', '\\', '/', 0x01, 0x1f, 0x20, 0x7f, 0x80, 0xbf,
                                       0xc2, 0xc3, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
  uint64_t seed = 12345;
  int bad = 0;
  for (int t = 0; t < 20000 && bad < 5; t++) {
    char s[12];
    size_t n = 1 + (size_t)(fm_hash64(&seed, sizeof seed) % (sizeof s - 1));
    seed++;
    for (size_t i = 0; i < n; i++) {
      uint64_t r = fm_hash64(&seed, sizeof seed);
      seed++;
      s[i] = (char)(r & 1 ? pick[(r >> 1) % sizeof pick] : (unsigned char)(r >> 8));
      if (!s[i]) s[i] = 'z';
    }
    if (!same_as_jansson(s, n)) bad++;
  }
  CHECK(bad == 0);
}

static void test_jw_reals(void) {
  static const double v[] = {0.0, -0.0, 1.0, -1.0, 2.489, 2.2228, 0.0001, -0.0001, 0.5, 10.0,
                             123456789.0, 1234567890.0, 1e-5, 1e-10, 1e21, 3.14159265358979,
                             -7.25e-7, 1e100, 0.1 + 0.2};
  int bad = 0;
  for (size_t i = 0; i < sizeof v / sizeof v[0] + 20000; i++) {
    double x;
    if (i < sizeof v / sizeof v[0]) {
      x = v[i];
    } else { /* scores as the handlers write them: rounded to 4 places */
      uint64_t s = i;
      x = ((double)(fm_hash64(&s, sizeof s) % 2000001) - 1000000.0) / 1e4;
      x = round(x * 1e4) / 1e4;
    }
    json_t *j = json_real(x);
    char *want = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(9));
    json_decref(j);
    fm_buf b;
    fm_buf_init(&b);
    fm_error err;
    fm_error_init(&err);
    if (fm_jw_real(&b, x, &err) != FM_OK || !want || strcmp(b.buf, want) != 0) {
      if (bad++ < 5) fprintf(stderr, "  %.17g: got '%s', jansson '%s'\n", x, b.buf, want);
    }
    free(want);
    fm_buf_free(&b);
  }
  CHECK(bad == 0);
  fm_buf b;
  fm_buf_init(&b);
  fm_error err;
  fm_error_init(&err);
  CHECK(fm_jw_real(&b, NAN, &err) == FM_ERR_INTERNAL);
  CHECK(fm_jw_real(&b, INFINITY, &err) == FM_ERR_INTERNAL);
  CHECK(b.len == 0);
  fm_buf_free(&b);
}

/* Scores go out as round(v * 1e4) / 1e4 through JSON_REAL_PRECISION(9);
 * fm_jw_score4 must write the same bytes without printf. */
static void test_jw_score4(void) {
  static const double v[] = {0.0, -0.0, 1.0, -1.0, 2.489, 2.48904999, 2.48905, 0.00005, -0.00005,
                             0.00004, -0.00004, 1e-9, 0.0001, 99999.99994, 99999.99996, 1e5,
                             123456.7, -123456.78, 1e20, 3.0000001, 0.1 + 0.2, 1234.5};
  int bad = 0;
  size_t nv = sizeof v / sizeof v[0];
  for (size_t i = 0; i < nv + 200000; i++) {
    double x;
    uint64_t s = i;
    uint64_t r = fm_hash64(&s, sizeof s);
    if (i < nv)
      x = v[i];
    else if (i % 3 == 0) /* float scores, the common range */
      x = (double)(float)(((double)(r % 60000001) - 30000000.0) / 1e7);
    else if (i % 3 == 1) /* around ties at the 5th decimal */
      x = ((double)(r % 2000001) - 1000000.0) / 1e4 + 0.00005;
    else /* any magnitude */
      x = ((double)(r % 2000001) - 1000000.0) * pow(10.0, (double)(int)((r >> 32) % 16) - 6);
    json_t *j = json_real(round(x * 1e4) / 1e4);
    char *want = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(9));
    json_decref(j);
    fm_buf b;
    fm_buf_init(&b);
    fm_error err;
    fm_error_init(&err);
    if (fm_jw_score4(&b, x, &err) != FM_OK || !want || strcmp(b.buf, want) != 0) {
      if (bad++ < 5) fprintf(stderr, "  %.17g: got '%s', jansson '%s'\n", x, b.buf, want);
    }
    free(want);
    fm_buf_free(&b);
  }
  CHECK(bad == 0);
  static const long long iv[] = {0, 1, -1, 9, 10, 100, 2147483647LL, -2147483648LL,
                                 9223372036854775807LL, -9223372036854775807LL - 1};
  for (size_t i = 0; i < sizeof iv / sizeof iv[0]; i++) {
    json_t *j = json_integer(iv[i]);
    char *want = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    fm_buf b;
    fm_buf_init(&b);
    CHECK(fm_jw_int(&b, iv[i], NULL) == FM_OK && want && !strcmp(b.buf, want));
    free(want);
    fm_buf_free(&b);
  }
}

static void fill(fm_candidate *c, int n, uint32_t base) {
  for (int i = 0; i < n; i++) {
    memset(&c[i], 0, sizeof c[i]);
    c[i].ref = base + (uint32_t)i;
    c[i].score = (float)(n - i) + (float)base;
  }
}

static int lookup(fm_rank_cache *c, const char *field, int k, double min, const char *vendor,
                  fm_candidate *out, int *n) {
  unsigned char key[FM_RANK_KEY_MAX];
  size_t kl = fm_rank_cache_key(key, sizeof key, 1, field, k, min, vendor);
  return kl && fm_rank_cache_get(c, key, kl, out, n);
}

static void store(fm_rank_cache *c, const char *field, int k, double min, const char *vendor,
                  const fm_candidate *in, int n) {
  unsigned char key[FM_RANK_KEY_MAX];
  size_t kl = fm_rank_cache_key(key, sizeof key, 1, field, k, min, vendor);
  CHECK(kl > 0);
  fm_rank_cache_put(c, key, kl, in, n);
}

static void test_rank_cache(void) {
  fm_rank_cache *c = (fm_rank_cache *)1;
  CHECK(fm_rank_cache_new(0, &c) == FM_OK && c == NULL);
  uint64_t h, m;
  size_t cap;
  fm_rank_cache_stats(NULL, &h, &m, &cap);
  CHECK(h == 0 && m == 0 && cap == 0);

  CHECK(fm_rank_cache_new(6, &c) == FM_OK && c != NULL); /* rounds up to 2 sets of 4 */
  if (!c) return;
  fm_rank_cache_stats(c, &h, &m, &cap);
  CHECK(cap == 8);
  fm_candidate in[10], out[10];
  int n = -1;
  fill(in, 10, 100);
  CHECK(!lookup(c, "PX_LAST", 10, -INFINITY, NULL, out, &n));
  store(c, "PX_LAST", 10, -INFINITY, NULL, in, 10);
  CHECK(lookup(c, "PX_LAST", 10, -INFINITY, NULL, out, &n));
  CHECK(n == 10 && memcmp(in, out, sizeof in) == 0);
  /* every part of the key counts */
  CHECK(!lookup(c, "PX_LAS", 10, -INFINITY, NULL, out, &n));
  CHECK(!lookup(c, "PX_LAST", 9, -INFINITY, NULL, out, &n));
  CHECK(!lookup(c, "PX_LAST", 10, 0.5, NULL, out, &n));
  CHECK(!lookup(c, "PX_LAST", 10, -INFINITY, "", out, &n));
  CHECK(!lookup(c, "PX_LAST", 10, -INFINITY, "refinitiv", out, &n));
  /* an empty result is a result */
  store(c, "ZZZ", 10, -INFINITY, NULL, in, 0);
  n = -1;
  CHECK(lookup(c, "ZZZ", 10, -INFINITY, NULL, out, &n) && n == 0);
  /* the same key put twice keeps one entry with the newer value */
  fill(in, 3, 7);
  store(c, "PX_LAST", 10, -INFINITY, NULL, in, 3);
  CHECK(lookup(c, "PX_LAST", 10, -INFINITY, NULL, out, &n) && n == 3 && out[0].ref == 7);
  /* many keys: at most 8 remembered, the recently used survive */
  char id[32];
  for (int i = 0; i < 200; i++) {
    snprintf(id, sizeof id, "F%d", i);
    fill(in, 2, (uint32_t)i);
    store(c, id, 2, -INFINITY, NULL, in, 2);
    CHECK(lookup(c, "PX_LAST", 10, -INFINITY, NULL, out, &n)); /* kept hot */
  }
  int kept = 0;
  for (int i = 0; i < 200; i++) {
    snprintf(id, sizeof id, "F%d", i);
    if (lookup(c, id, 2, -INFINITY, NULL, out, &n)) {
      kept++;
      CHECK(n == 2 && out[0].ref == (uint32_t)i);
    }
  }
  CHECK(kept >= 2 && kept <= 7);
  fm_rank_cache_stats(c, &h, &m, &cap);
  CHECK(h > 200 && m > 0 && cap == 8);
  /* a key too long for the buffer is simply not cached */
  char longf[2000];
  memset(longf, 'A', sizeof longf - 1);
  longf[sizeof longf - 1] = '\0';
  unsigned char key[FM_RANK_KEY_MAX];
  CHECK(fm_rank_cache_key(key, sizeof key, 1, longf, 10, 0, NULL) == 0);
  /* the model generation is part of the key: a reloaded model misses */
  unsigned char k2[FM_RANK_KEY_MAX];
  size_t l1 = fm_rank_cache_key(key, sizeof key, 1, "PX_LAST", 10, 0, NULL);
  size_t l2 = fm_rank_cache_key(k2, sizeof k2, 2, "PX_LAST", 10, 0, NULL);
  CHECK(l1 == l2 && l1 > 0 && memcmp(key, k2, l1) != 0);
  fm_rank_cache_free(c);
  fm_rank_cache_free(NULL);
}

int main(void) {
  FM_RUN(test_jw_strings);
  FM_RUN(test_jw_reals);
  FM_RUN(test_jw_score4);
  FM_RUN(test_rank_cache);
  FM_TEST_EXIT();
}
