/* snapshot_repair.c: what keeps a lake whole without an operator: the
 * hours `snapshot due` owes (every missing or failed hour inside each
 * job's retention window, oldest first, bounded), the check that refuses
 * hours a run must not write (future, or outside the retention window:
 * written and deleted by the same run), and the sweep of leftovers of
 * crashed writers (_tmp/ entries, "*.tmp.<pid>" files) at the start of the
 * next run.  docs/snapshot.md, "A lake that repairs itself".  The caller
 * owns every argument; *hours is the caller's to fm_free. */
#include "snapshot_internal.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- hours a run may write ------------------------------------------------------ */

fm_rc fm_snapshot_check_hours(fm_store *st, const char *only, const int64_t *hours, size_t n,
                              int64_t now, fm_error *err) {
  int64_t now_hour = fm_snapshot_hour_of(now);
  char a[32], b[32];
  for (size_t i = 0; i < n; i++)
    if (hours[i] > now_hour) {
      fm_snapshot_hour_str(hours[i], a);
      fm_snapshot_hour_str(now_hour, b);
      return fm_error_set(err, FM_ERR_ARG,
                          "hour %s is in the future (the current hour is %s): nothing written",
                          a, b);
    }
  job *jobs;
  size_t nj;
  fm_rc rc = fm_snapshot_load_jobs(st, only, &jobs, &nj, err);
  if (rc) return rc;
  for (size_t j = 0; j < nj && rc == FM_OK; j++) {
    int64_t oldest = now_hour - jobs[j].retention_hours + 1; /* the oldest hour kept */
    for (size_t i = 0; i < n && rc == FM_OK; i++)
      if (hours[i] < oldest) {
        fm_snapshot_hour_str(hours[i], a);
        fm_snapshot_hour_str(oldest, b);
        rc = fm_error_set(err, FM_ERR_ARG,
                          "hour %s is outside the retention window of snapshot job '%s' "
                          "(retention_hours %d: the oldest hour kept is %s); its partition "
                          "would be deleted by the same run, so nothing was written (raise "
                          "the job's retention_hours to keep older hours)",
                          a, jobs[j].name, jobs[j].retention_hours, b);
      }
  }
  fm_snapshot_jobs_free(jobs, nj);
  return rc;
}

/* ---- the hours `snapshot due` owes ---------------------------------------------- */

static int cmp_hour(const void *x, const void *y) {
  int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
  return a < b ? -1 : a > b;
}

/* Add to (*v, *n) the hours of job j in [start, now_hour] without a
 * succeeded (or expired) row, start being the later of the retention
 * window's first hour and the job's first attempted hour (a job never run
 * owes only now). */
static fm_rc job_missing(fm_store *st, const job *j, int64_t now_hour, int64_t **v, size_t *n,
                         size_t *cap, fm_error *err) {
  int64_t lo = now_hour - j->retention_hours + 1;
  if (now_hour - lo >= 10000) lo = now_hour - 9999; /* a bound on the scan */
  sqlite3_stmt *s;
  fm_rc rc = fm_store_query(st, &s, err,
                            "SELECT dt || 'T' || printf('%02d', hr),"
                            " max(status IN ('succeeded','expired')) FROM snapshot_runs"
                            " WHERE job = ?1 GROUP BY dt, hr ORDER BY dt, hr",
                            "t", j->name);
  if (rc) return rc;
  size_t span = (size_t)(now_hour - lo + 1);
  unsigned char *done = fm_calloc(span, 1);
  int64_t first = now_hour;
  int step;
  while (done && (step = sqlite3_step(s)) == SQLITE_ROW) {
    int64_t h;
    if (fm_snapshot_parse_hour((const char *)sqlite3_column_text(s, 0), &h, NULL) != FM_OK)
      continue;
    if (h < first) first = h;
    if (h >= lo && h <= now_hour && sqlite3_column_int(s, 1)) done[h - lo] = 1;
  }
  if (!done) rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
  else if (step != SQLITE_DONE) rc = fm_store_steperr(st, step, err, "read snapshot_runs");
  sqlite3_finalize(s);
  for (int64_t h = first > lo ? first : lo; rc == FM_OK && h <= now_hour; h++) {
    if (done[h - lo]) continue;
    if (fm_grow((void **)v, cap, *n + 1, sizeof **v))
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
    else
      (*v)[(*n)++] = h;
  }
  fm_free(done);
  return rc;
}

fm_rc fm_snapshot_due_hours(fm_store *st, const char *only, int64_t now, int max_hours,
                            int64_t **out, size_t *nout, fm_error *err) {
  *out = NULL;
  *nout = 0;
  int64_t now_hour = fm_snapshot_hour_of(now);
  job *jobs;
  size_t nj;
  fm_rc rc = fm_snapshot_load_jobs(st, only, &jobs, &nj, err);
  if (rc) return rc;
  int64_t *v = NULL;
  size_t n = 0, cap = 0;
  for (size_t j = 0; j < nj && rc == FM_OK; j++)
    rc = job_missing(st, &jobs[j], now_hour, &v, &n, &cap, err);
  fm_snapshot_jobs_free(jobs, nj);
  if (rc) {
    fm_free(v);
    return rc;
  }
  /* Distinct hours, oldest first; the bound keeps the current hour (the
   * lake stays fresh while it repairs its past a bounded step per run). */
  if (n) qsort(v, n, sizeof *v, cmp_hour);
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (k == 0 || v[k - 1] != v[i]) v[k++] = v[i];
  size_t bound = max_hours > 0 ? (size_t)max_hours : 48;
  if (k > bound) {
    int has_now = v[k - 1] == now_hour;
    k = bound;
    if (has_now) v[k - 1] = now_hour;
  }
  *out = v;
  *nout = k;
  return FM_OK;
}

/* ---- leftovers of crashed writers --------------------------------------------------- */

/* The writer's pid in a leftover's name: "<...>.<pid>" / "<...>.tmp.<pid>"
 * (temp files), or a partition build directory "<job>.dt=...hr=HH.<run id>"
 * whose run id ends "-<pid>-<n>".  0 when none. */
static long leftover_pid(const char *name) {
  const char *dot = strrchr(name, '.');
  char *end;
  if (dot && dot[1]) {
    long p = strtol(dot + 1, &end, 10);
    if (*end == '\0' && p > 0) return p;
  }
  const char *dash = strrchr(name, '-');
  if (!dash || dash == name) return 0;
  const char *d2 = dash - 1;
  while (d2 > name && *d2 != '-') d2--;
  if (*d2 != '-') return 0;
  long p = strtol(d2 + 1, &end, 10);
  return end == dash && p > 0 ? p : 0;
}

/* 1 when path is a leftover no live writer of this host owns: its pid is
 * gone, or (no pid in its name) it is older than a day. */
static int is_orphan(const char *path, const char *name) {
  long pid = leftover_pid(name);
  if (pid > 0) {
    if (pid == (long)getpid()) return 0;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
  }
  struct stat sb;
  return lstat(path, &sb) == 0 && sb.st_mtime < time(NULL) - 86400;
}

fm_rc fm_snapshot_remove_leftovers(const char *dir, int all, size_t *removed, fm_error *err) {
  DIR *d = opendir(dir);
  if (!d) {
    if (errno == ENOENT) return FM_OK;
    return fm_error_set(err, FM_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
  }
  fm_rc rc = FM_OK;
  fm_buf p;
  fm_buf_init(&p);
  struct dirent *de;
  while ((de = readdir(d)) && rc == FM_OK) {
    const char *nm = de->d_name;
    if (!strcmp(nm, ".") || !strcmp(nm, "..")) continue;
    if (!all && !strstr(nm, ".tmp.")) continue;
    fm_buf_reset(&p);
    if (fm_buf_printf(&p, "%s/%s", dir, nm)) {
      rc = fm_error_set(err, FM_ERR_NOMEM, "out of memory");
      break;
    }
    if (!is_orphan(p.buf, nm)) continue;
    struct stat sb;
    if (lstat(p.buf, &sb) != 0) continue;
    if (S_ISDIR(sb.st_mode)) rc = fm_snapshot_rmdir_flat(p.buf, err);
    else if (unlink(p.buf) != 0 && errno != ENOENT)
      rc = fm_error_set(err, FM_ERR_IO, "%s: cannot remove: %s", p.buf, strerror(errno));
    if (rc == FM_OK && removed) (*removed)++;
  }
  closedir(d);
  fm_buf_free(&p);
  return rc;
}
