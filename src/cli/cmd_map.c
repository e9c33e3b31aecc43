/* cmd_map.c: fieldmatch map --model M [-k K] -o FILE.csv|FILE.jsonl */
#include "cli.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef struct map_args {
  const char *model, *out, *format;
  int k, quiet, threads, candidates;
} map_args;

static const fm_cli_opt opts[] = {
    FM_OPT_REQ(map_args, model, "--model", 0, "MODEL.fmm", "the model"),
    FM_OPT_REQ(map_args, out, "--output", 'o', "OUT", "OUT.csv or OUT.jsonl, written atomically"),
    FM_OPT_NUM(map_args, k, FM_CLI_INT, "-k", 1, 1000, "K", "reference fields per query (default 10)"),
    FM_OPT_STR(map_args, format, "--format", 0, "F", "csv or jsonl (default: from OUT's name)"),
    FM_OPT_NUM(map_args, threads, FM_CLI_INT, "--threads", 1, 64, "N", "matching threads"),
    FM_OPT_NUM(map_args, candidates, FM_CLI_INT, "--candidates", 1, 0, "N",
               "re-scored per query (default: the model's,\n64 unless its config said otherwise)"),
    FM_OPT_FLAG(map_args, quiet, "--quiet", 'q', "no summary on stderr"),
    FM_OPT_END};

static const fm_cli_spec spec = {
    .cmd = "map",
    .usage = "usage: fieldmatch map --model MODEL.fmm [-k K] -o OUT.csv|OUT.jsonl\n"
             "                      [--format csv|jsonl] [--threads N] [--quiet]\n"
             "                      [--candidates N]\n",
    .about = "Ranks the top K (default 10) reference fields for every query field of\n"
             "the model.  Written to a temporary file and renamed into place.\n"
             "CSV columns: query_id,rank,reference_id,score,query_name,reference_name,"
             "reference_type\n",
    .opts = opts};

/* The output, written while the matching runs: fm_match_all_ordered hands
 * over finished queries in order (one call at a time, from a matching
 * thread) and map_sink formats and writes them, so the formatting shares
 * the cores with the matching instead of following it.
 *
 * CSV: a reference shows up in many rows, so its cells are formatted once
 * up front (its id cell, and ",name,type\n"), a query's once per query; a
 * row is then a few copies plus the rank and the score, through the
 * library's one CSV writer and its printf-free formatters.  Rows go out in
 * blocks of ~1 MB. */
typedef struct map_out {
  FILE *fp;
  const fm_model *m;
  int k, jsonl;
  size_t *off; /* CSV: per reference, its id cell, tail, next (in cells) */
  fm_buf cells, line, qid, qname;
  size_t rows;
  const char *outp;
} map_out;

static void map_out_free(map_out *o) {
  fm_free(o->off);
  fm_buf_free(&o->cells);
  fm_buf_free(&o->line);
  fm_buf_free(&o->qid);
  fm_buf_free(&o->qname);
}

static fm_rc map_out_init(map_out *o, FILE *fp, const fm_model *m, int k, int jsonl,
                          const char *outp, fm_error *err) {
  memset(o, 0, sizeof *o);
  o->fp = fp;
  o->m = m;
  o->k = k;
  o->jsonl = jsonl;
  o->outp = outp;
  fm_buf_init(&o->cells);
  fm_buf_init(&o->line);
  fm_buf_init(&o->qid);
  fm_buf_init(&o->qname);
  if (jsonl) return FM_OK;
  fputs("query_id,rank,reference_id,score,query_name,reference_name,reference_type\n", fp);
  size_t nr = fm_model_nrefs(m);
  size_t *off = o->off = fm_malloc((2 * nr + 1) * sizeof *off);
  int bad = !off;
  for (size_t r = 0; r < nr && !bad; r++) {
    fm_field f;
    fm_model_ref(m, r, &f);
    off[2 * r] = o->cells.len;
    bad = fm_buf_csv_cell(&o->cells, f.id, strlen(f.id), 0);
    off[2 * r + 1] = o->cells.len;
    bad = bad || fm_buf_putc(&o->cells, ',') ||
          fm_buf_csv_cell(&o->cells, f.name, strlen(f.name), 0) ||
          fm_buf_putc(&o->cells, ',') ||
          fm_buf_csv_cell(&o->cells, f.type, strlen(f.type), 0) ||
          fm_buf_putc(&o->cells, '\n');
  }
  if (!bad) off[2 * nr] = o->cells.len;
  return bad ? fm_error_set(err, FM_ERR_NOMEM, "%s: out of memory", outp) : FM_OK;
}

static fm_rc write_csv(map_out *o, size_t first, size_t count, const fm_candidate *rows,
                       const int *nout, fm_error *err) {
  const size_t *off = o->off;
  fm_buf *line = &o->line, *qid = &o->qid, *qname = &o->qname;
  int bad = 0;
  for (size_t i = 0; i < count && !bad; i++) {
    fm_field q;
    fm_model_query(o->m, first + i, &q);
    fm_buf_reset(qid);
    fm_buf_reset(qname);
    bad = fm_buf_csv_cell(qid, q.id, strlen(q.id), 0) || fm_buf_putc(qid, ',') ||
          fm_buf_putc(qname, ',') || fm_buf_csv_cell(qname, q.name, strlen(q.name), 0);
    for (int j = 0; j < nout[i] && !bad; j++) {
      const fm_candidate *cc = &rows[i * (size_t)o->k + (size_t)j];
      size_t r = cc->ref;
      bad = fm_buf_append(line, qid->buf, qid->len) || fm_buf_u64(line, (uint64_t)j + 1) ||
            fm_buf_putc(line, ',') ||
            fm_buf_append(line, o->cells.buf + off[2 * r], off[2 * r + 1] - off[2 * r]) ||
            fm_buf_putc(line, ',') || fm_buf_fixed4(line, cc->score) ||
            fm_buf_append(line, qname->buf, qname->len) ||
            fm_buf_append(line, o->cells.buf + off[2 * r + 1], off[2 * r + 2] - off[2 * r + 1]);
      o->rows++;
    }
    if (!bad && line->len >= (1u << 20)) {
      fwrite(line->buf, 1, line->len, o->fp);
      fm_buf_reset(line);
    }
  }
  return bad ? fm_error_set(err, FM_ERR_NOMEM, "%s: out of memory", o->outp) : FM_OK;
}

static void write_jsonl(map_out *o, size_t first, size_t count, const fm_candidate *rows,
                        const int *nout) {
  FILE *fp = o->fp;
  for (size_t i = 0; i < count; i++) {
    fm_field q;
    fm_model_query(o->m, first + i, &q);
    for (int j = 0; j < nout[i]; j++) {
      const fm_candidate *cc = &rows[i * (size_t)o->k + (size_t)j];
      fm_field r;
      fm_model_ref(o->m, cc->ref, &r);
      fputs("{\"query_id\": ", fp);
      fm_cli_json_str(fp, q.id);
      fprintf(fp, ", \"rank\": %d, \"reference_id\": ", j + 1);
      fm_cli_json_str(fp, r.id);
      fprintf(fp, ", \"score\": %.4f, \"query_name\": ", cc->score);
      fm_cli_json_str(fp, q.name);
      fputs(", \"reference_name\": ", fp);
      fm_cli_json_str(fp, r.name);
      fputs(", \"reference_type\": ", fp);
      fm_cli_json_str(fp, r.type);
      fputs("}\n", fp);
      o->rows++;
    }
  }
}

static fm_rc map_sink(void *ctx, size_t first, size_t count, const fm_candidate *rows,
                      const int *nout, fm_error *err) {
  map_out *o = ctx;
  if (o->jsonl) {
    write_jsonl(o, first, count, rows, nout);
    return FM_OK;
  }
  return write_csv(o, first, count, rows, nout, err);
}

/* The CSV rows still buffered. */
static void map_out_flush(map_out *o) {
  if (o->line.len) fwrite(o->line.buf, 1, o->line.len, o->fp);
  fm_buf_reset(&o->line);
}

int fm_cmd_map(int argc, char **argv) {
  map_args x = {.k = 10};
  int npos, prc = fm_cli_parse(&spec, argc, argv, &x, &npos);
  if (prc >= 0) return prc;
  const char *model = x.model, *outp = x.out, *format = x.format;
  int k = x.k, quiet = x.quiet, threads = x.threads, candidates = x.candidates;
  if (!format) {
    size_t n = strlen(outp);
    if (n >= 4 && !strcmp(outp + n - 4, ".csv")) format = "csv";
    else if (n >= 6 && !strcmp(outp + n - 6, ".jsonl")) format = "jsonl";
    else return fm_cli_usage("map", "cannot tell the format of '%s': use .csv, .jsonl or --format", outp);
  }
  int jsonl = !strcmp(format, "jsonl");
  if (!jsonl && strcmp(format, "csv")) return fm_cli_usage("map", "--format must be csv or jsonl");
  double tl = fm_now();
  fm_model *m = fm_cli_open_model(model);
  if (!m) return FM_EXIT_FAIL;
  tl = fm_now() - tl;
  if (candidates) fm_model_set_candidates(m, candidates);
  fm_error err;
  fm_error_init(&err);
  size_t nq = fm_model_nqueries(m);
  fm_candidate *c = fm_calloc(nq * (size_t)k, sizeof *c);
  int *nout = fm_calloc(nq, sizeof *nout);
  if (!c || !nout) {
    fm_free(c);
    fm_free(nout);
    fm_model_close(m);
    fm_error_set(&err, FM_ERR_NOMEM, "out of memory for %zu x %d candidates", nq, k);
    return fm_cli_fail(&err);
  }
  /* FM_MAP_CHUNK: queries per unit handed to the writer (tests use small
   * ones to exercise the ordering; the output does not depend on it) */
  const char *ch = getenv("FM_MAP_CHUNK");
  long long chunk = 0;
  if (!ch || fm_cli_long(ch, 1, LLONG_MAX, &chunk)) chunk = 0;
  double t0 = fm_now();
  fm_atomic a;
  size_t rows = 0;
  fm_rc rc = fm_atomic_open(&a, outp, &err);
  if (rc == FM_OK) {
    map_out o;
    rc = map_out_init(&o, a.fp, m, k, jsonl, outp, &err);
    if (rc == FM_OK)
      rc = fm_match_all_ordered(m, k, threads, quiet, (size_t)chunk, c, nout, map_sink, &o, &err);
    if (rc == FM_OK) map_out_flush(&o);
    rows = o.rows;
    map_out_free(&o);
    if (rc != FM_OK) fm_atomic_abort(&a);
  }
  double t1 = fm_now();
  if (rc == FM_OK) rc = fm_atomic_commit(&a, &err);
  if (rc == FM_OK && !quiet && getenv("FM_TIMING"))
    fprintf(stderr, "map: load %.3fs, match+write %.3fs, commit %.3fs\n", tl, t1 - t0,
            fm_now() - t1);
  if (rc == FM_OK && !quiet)
    fprintf(stderr, "mapped %zu query fields (%zu rows) in %.2fs -> %s\n", nq, rows, t1 - t0, outp);
  fm_free(c);
  fm_free(nout);
  fm_model_close(m);
  return rc ? fm_cli_fail(&err) : FM_EXIT_OK;
}
