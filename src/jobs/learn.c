/* learn.c (jobs): the learning layer built from a store's decisions
 * (fm_review_decisions) for a model: the one place that turns review
 * statuses into fm_learn_pair kinds, shared by `fieldmatch serve` (after
 * each decision) and the CLI.  docs/scoring.md, "Learning from decisions". */
#include "fm_jobs.h"
#include "fm_review.h"

#include <string.h>

fm_rc fm_jobs_learn_build(fm_store *st, const fm_model *m, const fm_learn_opts *o,
                          fm_learn **out, fm_error *err) {
  *out = NULL;
  fm_arena arena;
  fm_arena_init(&arena);
  fm_decided *d = NULL;
  size_t n = 0;
  fm_rc rc = fm_review_decisions(st, &arena, &d, &n, err);
  fm_learn_pair *p = NULL;
  if (!rc && n && !(p = fm_malloc(n * sizeof *p)))
    rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  size_t np = 0;
  for (size_t i = 0; !rc && i < n; i++) {
    fm_learn_kind k = !strcmp(d[i].status, "accepted")   ? FM_LEARN_ACCEPT
                      : !strcmp(d[i].status, "rejected") ? FM_LEARN_REJECT
                                                         : FM_LEARN_NONE;
    p[np++] = (fm_learn_pair){d[i].query_id, d[i].ref_id, k};
  }
  if (!rc) rc = fm_learn_build(m, p, np, o, out, err);
  fm_free(p);
  fm_free(d);
  fm_arena_free(&arena);
  return rc;
}
