/* fm_test_train.h: training and ranking helpers shared by the model's
 * unit tests (test_model.c, test_eval.c, test_score.c): train a config file
 * or a config written from JSON parts, rank one known query, and read a
 * candidate's id.  Header-only, like fm_test_util.h; include after
 * fm_test.h and fm_test_util.h. */
#ifndef FM_TEST_TRAIN_H
#define FM_TEST_TRAIN_H

#include "fm_model.h"
#include "fm_test.h"
#include "fm_test_util.h"

#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

/* The tiny fixture (tests/data/model): 35 RDM reference fields, 30
 * Bloomberg-style query fields, gold and training pairs. */
#define FM_TEST_TINY "tests/data/model/tiny.json"

/* A warning handler that drops every warning (fault loops, damaged files). */
static inline void quiet_warn(void *ctx, const char *msg) {
  (void)ctx;
  (void)msg;
}

/* Load the config at cfg and train it quietly, on threads threads when
 * threads > 0 and with *seed when seed is not NULL (else the config's).
 * Caller owns the model; NULL on failure, counted as a failed check, with
 * the error on stderr. */
static inline fm_model *train_file(const char *cfg, int threads, const uint64_t *seed) {
  fm_error err;
  fm_error_init(&err);
  fm_config *c = NULL;
  fm_rc rc = fm_config_load(cfg, &c, &err);
  CHECK(rc == FM_OK);
  if (rc) {
    fprintf(stderr, "  config: %s\n", err.msg);
    return NULL;
  }
  if (seed) c->opts.seed = *seed;
  if (threads > 0) c->opts.threads = threads;
  fm_train_input in = {.config = c, .quiet = 1};
  fm_model *m = NULL;
  rc = fm_train(&in, &m, &err);
  CHECK(rc == FM_OK);
  if (rc) fprintf(stderr, "  train: %s\n", err.msg);
  fm_config_free(c);
  return m;
}

/* Write the scratch config name.json, whose "reference", "query" and
 * "model" members are the given JSON texts (their paths relative to the
 * scratch folder) and whose abbreviations are the repository's curated
 * table, and train it as train_file does.  Caller owns the model; NULL on
 * failure (counted). */
static inline fm_model *train_json(const char *name, const char *refs, const char *queries,
                                   const char *model, int threads) {
  char file[64], json[2048];
  snprintf(file, sizeof file, "%s.json", name);
  const char *cfg = tmp(file);
  int n = snprintf(json, sizeof json,
                   "{\"name\": \"%s\", \"reference\": %s, \"query\": %s,"
                   " \"abbreviations\": \"%s/data/abbreviations.tsv\", \"model\": %s}",
                   name, refs, queries, getcwd((char[4096]){0}, 4096), model);
  CHECK(n > 0 && (size_t)n < sizeof json);
  CHECK(write_text(cfg, json) == 0);
  return train_file(cfg, threads, NULL);
}

/* Train the tiny config (optionally with another seed); NULL on failure
 * (the failure is counted). Caller owns the model. */
static inline fm_model *train_tiny_threads(uint64_t seed, int use_seed, int threads) {
  return train_file(FM_TEST_TINY, threads, use_seed ? &seed : NULL);
}

static inline fm_model *train_tiny(uint64_t seed, int use_seed) {
  return train_tiny_threads(seed, use_seed, 0);
}

/* Rank a known query id with a fresh matcher into c[0..k-1]; returns the
 * number of candidates (0 on failure, counted). */
static inline int rank(fm_model *m, const char *id, fm_candidate *c, int k) {
  fm_matcher *mt = NULL;
  fm_error err;
  fm_error_init(&err);
  int n = 0;
  CHECK(fm_matcher_new(m, &mt, &err) == FM_OK);
  if (mt) CHECK(fm_match(mt, id, NULL, k, c, &n, &err) == FM_OK);
  fm_matcher_free(mt);
  return n;
}

/* The id of candidate c, owned by the model. */
static inline const char *ref_id(const fm_model *m, const fm_candidate *c) {
  fm_field f;
  fm_model_ref(m, c->ref, &f);
  return f.id;
}

/* 1 when c[0..n-1] is in non-increasing score order. */
static inline int sorted_desc(const fm_candidate *c, int n) {
  for (int i = 1; i < n; i++)
    if (c[i].score > c[i - 1].score) return 0;
  return 1;
}

#endif
