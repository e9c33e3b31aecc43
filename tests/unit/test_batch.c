/* test_batch.c: batch mapping runs on the sample model (trained here):
 * routing (proposed, queued, already curated, rejected candidates skipped,
 * a refused decision counted as failed), reconciliation (and a tampered
 * part marking the run failed), resuming after a partial run gives the same
 * tables as an uninterrupted run, a second run is idempotent, an injected
 * SQLITE_BUSY is retried, and the clear errors of resume. */
#include "fm_model.h"
#include "fm_jobs.h"
#include "fm_store_sql.h"
#include "fm_test.h"
#include "fm_test_util.h"
#include "fm_test_store.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

static fm_model *model, *model2; /* the sample model; one with another checksum */
static size_t nq;

static fm_model *train_to(const char *cfg, int dims, const char *path) {
  fm_config *c = NULL;
  fm_model *m = NULL, *out = NULL;
  fm_error e;
  fm_error_init(&e);
  if (fm_config_load(cfg, &c, &e) == FM_OK) {
    if (dims) c->opts.dims = dims;
    fm_train_input in = {.config = c, .quiet = 1};
    if (fm_train(&in, &m, &e) == FM_OK && fm_model_write(m, path, &e) == FM_OK)
      fm_model_open(path, &out, &e);
  }
  if (!out) fprintf(stderr, "train %s: %s\n", cfg, e.msg);
  fm_model_close(m);
  fm_config_free(c);
  return out;
}

/* The run-independent content of the result tables as one text (caller
 * frees with fm_free): candidates, mappings, review queue, part counts. */
static char *dump(fm_store *st) {
  static const char *const q[] = {
      "SELECT q.id, c.rank, r.id, printf('%.6f', c.score) FROM candidates c"
      " JOIN fields q ON q.field_id = c.query_field_id"
      " JOIN fields r ON r.field_id = c.ref_field_id"
      " WHERE c.batch_run_id = (SELECT max(batch_run_id) FROM batch_runs)"
      " ORDER BY q.id, c.rank",
      "SELECT mapping_key, status, origin, printf('%.6f', score), decided_by FROM mappings"
      " ORDER BY mapping_key",
      "SELECT q.id, reason, printf('%.6f', top_score), printf('%.6f', margin),"
      " printf('%.6f', uncertainty), resolved_at IS NULL FROM review_queue"
      " JOIN fields q ON q.field_id = query_field_id ORDER BY q.id",
      "SELECT part_no, n_in, n_proposed, n_queued, n_curated, n_failed FROM batch_parts"
      " WHERE batch_run_id = (SELECT max(batch_run_id) FROM batch_runs) ORDER BY part_no",
  };
  fm_buf b;
  fm_buf_init(&b);
  for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(fm_store_db(st), q[i], -1, &s, NULL) != SQLITE_OK) continue;
    while (sqlite3_step(s) == SQLITE_ROW) {
      for (int c = 0; c < sqlite3_column_count(s); c++) {
        const char *t = (const char *)sqlite3_column_text(s, c);
        fm_buf_printf(&b, "%s%s", c ? "|" : "", t ? t : "NULL");
      }
      fm_buf_putc(&b, '\n');
    }
    sqlite3_finalize(s);
    fm_buf_puts(&b, "--\n");
  }
  return b.buf;
}

static fm_batch_opts opts(int batch_size) {
  fm_batch_opts o;
  fm_batch_opts_default(&o);
  o.batch_size = batch_size;
  o.quiet = 1;
  o.actor = "tester";
  o.model_path = "sample.fmm";
  o.threads = 2;
  /* the score/margin gates on as well, so their reasons stay covered */
  o.threshold = 2.0;
  o.margin = 0.5;
  return o;
}

static char *reference_dump; /* an uninterrupted run, batch size 50 */

static void test_uncertainty(void) {
  CHECK_NEAR(fm_batch_uncertainty(0, NAN, NAN, 0, 2.0, 0.5), 1.0, 1e-12);
  CHECK_NEAR(fm_batch_uncertainty(1, 2.0, 0.5, 1, 2.0, 0.5), 0.0, 1e-12);
  CHECK_NEAR(fm_batch_uncertainty(1, 1.0, 0.5, 1, 2.0, 0.5), 0.25, 1e-12);
  CHECK_NEAR(fm_batch_uncertainty(1, 2.0, 0.0, 1, 2.0, 0.5), 0.5, 1e-12);
  CHECK_NEAR(fm_batch_uncertainty(1, 2.0, 0.0, 0, 2.0, 0.5), 0.0, 1e-12); /* no runner-up */
  CHECK_NEAR(fm_batch_uncertainty(1, -1.0, 0.0, 1, 2.0, 0.5), 1.0, 1e-12);
  /* Lower score, same margin: more uncertain. */
  CHECK(fm_batch_uncertainty(1, 0.5, 0.1, 1, 2.0, 0.5) >
        fm_batch_uncertainty(1, 1.5, 0.1, 1, 2.0, 0.5));
}

static void test_full_run(void) {
  fm_store *st = open_db("full.db");
  if (!st) return;
  fm_batch_opts o = opts(50);
  fm_batch_report r;
  int64_t run = 0;
  fm_error e;
  fm_error_init(&e);
  CHECK(fm_batch_run(st, model, &o, &run, &r, &e) == FM_OK);
  if (e.msg[0]) fprintf(stderr, "%s\n", e.msg);
  CHECK(run == 1 && r.run_id == 1);
  CHECK(r.finished == 1);
  CHECK(r.n_parts == (int64_t)((nq + 49) / 50));
  CHECK(r.parts_run == r.n_parts && r.parts_skipped == 0);
  CHECK(r.total.n_in == (int64_t)nq);
  CHECK(r.total.n_in ==
        r.total.n_proposed + r.total.n_queued + r.total.n_curated + r.total.n_failed);
  CHECK(r.total.n_proposed > 0 && r.total.n_queued > 0);
  CHECK(r.total.n_curated == 0 && r.total.n_failed == 0);
  /* The tables say the same as the report. */
  CHECK(count(st, "SELECT count(*) FROM batch_parts WHERE batch_run_id = 1") == r.n_parts);
  CHECK(count(st, "SELECT sum(n_in) FROM batch_parts") == (long long)nq);
  CHECK(count(st, "SELECT count(*) FROM mappings WHERE status = 'proposed'"
                  " AND batch_run_id = 1 AND decided_by = 'batch:1'") == r.total.n_proposed);
  CHECK(count(st, "SELECT count(*) FROM review_queue WHERE batch_run_id = 1") ==
        r.total.n_queued);
  /* Every query field is either proposed or queued, never both. */
  CHECK(count(st, "SELECT count(*) FROM review_queue q JOIN mappings m"
                  " ON m.query_field_id = q.query_field_id") == 0);
  CHECK(count(st, "SELECT count(DISTINCT query_field_id) FROM candidates") +
            count(st, "SELECT count(*) FROM review_queue WHERE reason = 'no_candidates'") ==
        (long long)nq);
  /* Proposals meet the bar; queue reasons match the scores. */
  CHECK(count(st, "SELECT count(*) FROM mappings WHERE score < 2.0") == 0);
  CHECK(count(st, "SELECT count(*) FROM review_queue WHERE reason = 'low_score'"
                  " AND top_score >= 2.0") == 0);
  CHECK(count(st, "SELECT count(*) FROM review_queue WHERE reason = 'small_margin'"
                  " AND (top_score < 2.0 OR margin >= 0.5)") == 0);
  CHECK(count(st, "SELECT count(*) FROM review_queue WHERE uncertainty < 0"
                  " OR uncertainty > 1") == 0);
  /* The confidence gate (FM_AUTO_CONFIDENCE) routes fields too: some are
   * queued for it alone, with uncertainty 1 - confidence > 1 - 0.9. */
  CHECK(count(st, "SELECT count(*) FROM review_queue WHERE reason = 'low_confidence'") > 0);
  CHECK(count(st, "SELECT count(*) FROM review_queue WHERE reason = 'low_confidence'"
                  " AND uncertainty <= 0.1") == 0);
  /* One model_runs row with the checksum as hex; start/finish audited. */
  CHECK(count(st, "SELECT count(*) FROM model_runs WHERE length(model_checksum) = 8") == 1);
  CHECK(count(st, "SELECT count(*) FROM audit_log WHERE action = 'batch_start'") == 1);
  CHECK(count(st, "SELECT count(*) FROM audit_log WHERE action = 'batch_finish'") == 1);
  CHECK(count(st, "SELECT count(*) FROM batch_runs WHERE status = 'succeeded'"
                  " AND finished_at IS NOT NULL AND error IS NULL") == 1);
  /* Status reads back what was written. */
  fm_batch_info b;
  CHECK(fm_batch_status(st, 0, &b, &e) == FM_OK);
  CHECK(b.run_id == 1 && !strcmp(b.status, "succeeded"));
  CHECK(b.nparts == (size_t)r.n_parts && b.total.n_in == (int64_t)nq);
  CHECK(b.parts && b.parts[0].part_no == 1 && b.parts[0].c.n_in == 50);
  CHECK(strstr(b.params, "\"batch_size\":50") != NULL);
  fm_batch_info_free(&b);
  reference_dump = dump(st);
  fm_store_close(st);
}

/* A run stopped after 2 parts, then resumed, equals the uninterrupted run. */
static void test_resume(void) {
  fm_store *st = open_db("resume.db");
  if (!st) return;
  fm_batch_opts o = opts(50);
  o.max_parts = 2;
  fm_batch_report r;
  int64_t run = 0;
  fm_error e;
  fm_error_init(&e);
  CHECK(fm_batch_run(st, model, &o, &run, &r, &e) == FM_OK);
  CHECK(r.finished == 0 && r.parts_run == 2);
  CHECK(count(st, "SELECT count(*) FROM batch_runs WHERE status = 'running'") == 1);
  CHECK(count(st, "SELECT count(*) FROM batch_parts") == 2);
  /* Resume with other parameters in opts: the recorded ones win. */
  fm_batch_opts ro = opts(7);
  ro.resume_run = run;
  ro.max_parts = 3;
  CHECK(fm_batch_run(st, model, &ro, NULL, &r, &e) == FM_OK);
  CHECK(r.parts_skipped == 2 && r.parts_run == 3 && !r.finished);
  ro.max_parts = 0;
  CHECK(fm_batch_run(st, model, &ro, NULL, &r, &e) == FM_OK);
  CHECK(r.parts_skipped == 5 && r.finished == 1);
  CHECK(r.total.n_in == (int64_t)nq);
  CHECK(count(st, "SELECT count(*) FROM audit_log WHERE action = 'batch_resume'") == 2);
  char *d = dump(st);
  CHECK(reference_dump && d && !strcmp(d, reference_dump));
  fm_free(d);
  /* Resuming a finished run, an unknown run, or with another model fails. */
  fm_error_init(&e);
  CHECK(fm_batch_run(st, model, &ro, NULL, NULL, &e) == FM_ERR_ARG);
  CHECK(strstr(e.msg, "already finished") != NULL);
  ro.resume_run = 99;
  fm_error_init(&e);
  CHECK(fm_batch_run(st, model, &ro, NULL, NULL, &e) == FM_ERR_NOTFOUND);
  CHECK(strstr(e.msg, "99") != NULL);
  /* A run stopped early cannot be resumed with a different model file. */
  o.max_parts = 1;
  CHECK(fm_batch_run(st, model, &o, &run, &r, &e) == FM_OK && run == 2);
  ro.resume_run = run;
  fm_error_init(&e);
  if (model2) {
    CHECK(fm_batch_run(st, model2, &ro, NULL, NULL, &e) == FM_ERR_CONFLICT);
    CHECK(strstr(e.msg, "checksum") != NULL);
  }
  fm_error_init(&e);
  CHECK(fm_batch_run(st, model, &ro, NULL, &r, &e) == FM_OK && r.finished);
  /* The bad-argument checks. */
  fm_batch_opts bad = opts(0);
  fm_error_init(&e);
  CHECK(fm_batch_run(st, model, &bad, NULL, NULL, &e) == FM_ERR_ARG);
  bad = opts(10);
  bad.k = 0;
  CHECK(fm_batch_run(st, model, &bad, NULL, NULL, &e) == FM_ERR_ARG);
  fm_store_close(st);
}

/* An injected SQLITE_BUSY in the middle of a part is rolled back and the
 * part re-run: same result as the reference. */
static void test_busy_retry(void) {
  fm_store *st = open_db("busy.db");
  if (!st) return;
  fm_batch_opts o = opts(50);
  fm_error e;
  fm_error_init(&e);
  fm_batch_report r;
  /* Past the dictionary sync, inside the first parts' writes. */
  fm_store_fault_busy_after(st, 2000);
  CHECK(fm_batch_run(st, model, &o, NULL, &r, &e) == FM_OK);
  if (e.msg[0]) fprintf(stderr, "%s\n", e.msg);
  CHECK(r.finished == 1 && r.total.n_in == (int64_t)nq);
  char *d = dump(st);
  CHECK(reference_dump && d && !strcmp(d, reference_dump));
  fm_free(d);
  /* A BUSY that never clears gives FM_ERR_BUSY, not a half-written part. */
  fm_store *st2 = open_db("busy2.db");
  fm_store_opts so;
  fm_store_opts_default(&so);
  fm_store_close(st2);
  so.max_retries = 1;
  so.busy_timeout_ms = 50;
  st2 = NULL;
  CHECK(fm_store_open(tmp("busy2.db"), &so, &st2, &e) == FM_OK);
  sqlite3 *other;
  CHECK(sqlite3_open(tmp("busy2.db"), &other) == SQLITE_OK);
  CHECK(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
  fm_error_init(&e);
  CHECK(fm_batch_run(st2, model, &o, NULL, NULL, &e) == FM_ERR_BUSY);
  CHECK(strstr(e.msg, "locked") != NULL);
  sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close(other);
  CHECK(count(st2, "SELECT count(*) FROM batch_runs") == 0);
  CHECK(count(st2, "SELECT count(*) FROM fields") == 0);
  fm_store_close(st2);
  fm_store_close(st);
}

static int nwarn;
static char lastwarn[512];
static void catch_warn(void *ctx, const char *msg) {
  (void)ctx;
  nwarn++;
  snprintf(lastwarn, sizeof lastwarn, "%s", msg);
}

/* A second run over the same database: curated fields left alone, rejected
 * candidates not proposed again, no duplicate rows, a refused decision
 * counted as failed. */
static void test_rerun_and_routing(void) {
  fm_store *st = open_db("full.db");
  if (!st) return;
  fm_error e;
  fm_error_init(&e);
  long long proposed = count(st, "SELECT count(*) FROM mappings WHERE status = 'proposed'");
  /* An analyst accepts the proposal of the first proposed field and rejects
   * the proposal of the second. */
  sqlite3_stmt *s;
  int64_t qa = 0, ra = 0, qb = 0, rb = 0;
  CHECK(sqlite3_prepare_v2(fm_store_db(st),
                           "SELECT query_field_id, ref_field_id FROM mappings"
                           " WHERE status = 'proposed' ORDER BY mapping_id LIMIT 2",
                           -1, &s, NULL) == SQLITE_OK);
  if (sqlite3_step(s) == SQLITE_ROW) {
    qa = sqlite3_column_int64(s, 0);
    ra = sqlite3_column_int64(s, 1);
  }
  if (sqlite3_step(s) == SQLITE_ROW) {
    qb = sqlite3_column_int64(s, 0);
    rb = sqlite3_column_int64(s, 1);
  }
  sqlite3_finalize(s);
  fm_decision d = {.query_field = qa, .ref_field = ra, .status = FM_MAP_ACCEPTED,
                   .actor = "alice", .origin = "analyst", .score = NAN,
                   .expect_accepted = -1};
  CHECK(fm_store_decide(st, &d, NULL, &e) == FM_OK);
  d.query_field = qb;
  d.ref_field = rb;
  d.status = FM_MAP_REJECTED;
  CHECK(fm_store_decide(st, &d, NULL, &e) == FM_OK);
  /* A third proposed field whose next proposal the database refuses. */
  int64_t qc = 0;
  qc = count(st, "SELECT query_field_id FROM mappings WHERE status = 'proposed'"
                 " ORDER BY mapping_id LIMIT 1 OFFSET 0");
  char sql[256];
  snprintf(sql, sizeof sql,
           "CREATE TRIGGER refuse BEFORE UPDATE ON mappings WHEN NEW.query_field_id = %lld"
           " BEGIN SELECT RAISE(ABORT, 'refused by test'); END",
           (long long)qc);
  CHECK(fm_store_exec(st, sql, &e) == FM_OK);

  fm_set_warn_handler(catch_warn, NULL);
  fm_batch_opts o = opts(50);
  fm_batch_report r;
  int64_t run = 0;
  CHECK(fm_batch_run(st, model, &o, &run, &r, &e) == FM_OK);
  fm_set_warn_handler(NULL, NULL);
  CHECK(run == 2 && r.finished);
  CHECK(r.total.n_in == (int64_t)nq);
  CHECK(r.total.n_curated == 1);
  CHECK(r.total.n_failed == 1);
  CHECK(nwarn == 1 && strstr(lastwarn, "refused by test") && strstr(lastwarn, "part"));
  CHECK(count(st, "SELECT count(*) FROM audit_log WHERE action = 'batch_field_failed'") ==
        1);
  /* The accepted mapping is untouched and not re-proposed. */
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM mappings WHERE query_field_id = %lld AND status <>"
           " 'accepted' AND batch_run_id = 2",
           (long long)qa);
  CHECK(count(st, sql) == 0);
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM mappings WHERE query_field_id = %lld AND status ="
           " 'accepted'",
           (long long)qa);
  CHECK(count(st, sql) == 1);
  /* The rejected pair stays rejected; the field is proposed something else
   * or queued. */
  snprintf(sql, sizeof sql,
           "SELECT status = 'rejected' FROM mappings WHERE query_field_id = %lld"
           " AND ref_field_id = %lld",
           (long long)qb, (long long)rb);
  CHECK(count(st, sql) == 1);
  snprintf(sql, sizeof sql,
           "SELECT (SELECT count(*) FROM mappings WHERE query_field_id = %lld"
           " AND status = 'proposed' AND batch_run_id = 2) +"
           " (SELECT count(*) FROM review_queue WHERE query_field_id = %lld"
           " AND batch_run_id = 2)",
           (long long)qb, (long long)qb);
  CHECK(count(st, sql) == 1);
  /* Idempotent: the same proposals, no duplicate rows, one queue row per
   * field; candidates per run. */
  CHECK(count(st, "SELECT count(*) FROM mappings WHERE status = 'proposed'") >=
        proposed - 3);
  CHECK(count(st, "SELECT count(*) FROM (SELECT query_field_id, ref_field_id FROM"
                  " mappings GROUP BY 1, 2 HAVING count(*) > 1)") == 0);
  CHECK(count(st, "SELECT count(*) FROM candidates WHERE batch_run_id = 2") ==
        count(st, "SELECT count(*) FROM candidates WHERE batch_run_id = 1"));
  CHECK(count(st, "SELECT count(*) FROM model_runs") == 1);
  CHECK(fm_store_exec(st, "DROP TRIGGER refuse", &e) == FM_OK);

  /* Tampered counts: the run is marked failed, the error names the part. */
  CHECK(fm_store_exec(st,
                      "UPDATE batch_parts SET n_proposed = n_proposed + 1"
                      " WHERE batch_run_id = 2 AND part_no = 3;"
                      "UPDATE batch_runs SET status = 'running' WHERE batch_run_id = 2",
                      &e) == FM_OK);
  o.resume_run = 2;
  fm_error_init(&e);
  CHECK(fm_batch_run(st, model, &o, NULL, &r, &e) == FM_ERR_CORRUPT);
  CHECK(strstr(e.msg, "part 3") != NULL);
  CHECK(count(st, "SELECT count(*) FROM batch_runs WHERE batch_run_id = 2"
                  " AND status = 'failed' AND error LIKE 'part 3:%'") == 1);
  /* List sees both runs, newest first. */
  fm_batch_info *v;
  size_t n;
  CHECK(fm_batch_list(st, &v, &n, &e) == FM_OK);
  CHECK(n == 2 && v[0].run_id == 2 && !strcmp(v[0].status, "failed") && v[1].run_id == 1);
  fm_batch_list_free(v, n);
  fm_store_close(st);
}

/* Allocation failures anywhere fail cleanly (no crash, no leak under ASan). */
static void test_alloc_faults(void) {
  for (long n = 1; n < 400; n += 13) {
    char name[32];
    snprintf(name, sizeof name, "f%ld.db", n);
    fm_store *st = open_db(name);
    if (!st) continue;
    fm_batch_opts o = opts(100);
    fm_error e;
    fm_error_init(&e);
    fm_fault_malloc_after(n);
    fm_rc rc = fm_batch_run(st, model, &o, NULL, NULL, &e);
    fm_fault_malloc_after(-1);
    CHECK(rc == FM_OK || e.msg[0]);
    if (rc && !e.msg[0]) fprintf(stderr, "fault at %ld: rc %s, no message\n", n, fm_rc_name(rc));
    fm_store_close(st);
  }
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/fm_batch_XXXXXX");
  if (!mkdtemp(dir)) return 1;
  model = train_to("train/sample.json", 0, tmp("sample.fmm"));
  model2 = train_to("train/sample.json", 32, tmp("sample32.fmm"));
  if (!model) return 1;
  nq = fm_model_nqueries(model);
  FM_RUN(test_uncertainty);
  FM_RUN(test_full_run);
  FM_RUN(test_resume);
  FM_RUN(test_busy_retry);
  FM_RUN(test_rerun_and_routing);
  FM_RUN(test_alloc_faults);
  fm_free(reference_dump);
  fm_model_close(model);
  fm_model_close(model2);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) return 1;
  FM_TEST_EXIT();
}
