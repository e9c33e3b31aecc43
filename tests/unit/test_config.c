/* test_config.c: the training configuration (src/model/config.c): every
 * error names the file and the key; paths resolve against the folder of the
 * file that holds them; "extends" layers a config over a base (keys
 * replace, "model" merges), names the file of an error anywhere in the
 * chain, and refuses cycles; allocation faults while loading a chain. */
#include "fm_model.h"
#include "fm_test.h"
#include "fm_test_util.h"

#include <errno.h>
#include <sys/stat.h>

#define D "tests/data/model/"
#define TINY D "tiny.json"

/* ---- configuration errors ------------------------------------------------ */

/* Load a config written from text (or already written, json NULL); expect failure with rc and a message
 * holding the config path and every given substring. */
static void config_fails(const char *name, const char *json, fm_rc want,
                         const char *sub1, const char *sub2) {
  const char *path = tmp(name);
  if (json) CHECK(write_text(path, json) == 0); /* NULL: the file is there */
  fm_config *c = (fm_config *)1;
  fm_error err;
  fm_error_init(&err);
  fm_rc rc = fm_config_load(path, &c, &err);
  CHECK(rc == want);
  CHECK(c == NULL);
  CHECK(strstr(err.msg, path) != NULL);
  if (sub1) CHECK(strstr(err.msg, sub1) != NULL);
  if (sub2) CHECK(strstr(err.msg, sub2) != NULL);
  if (rc != want || !strstr(err.msg, path) || (sub1 && !strstr(err.msg, sub1)) ||
      (sub2 && !strstr(err.msg, sub2)))
    fprintf(stderr, "  %s: rc=%s msg=%s\n", name, fm_rc_name(rc), err.msg);
}

#define REF_OK "\"reference\": [{\"vendor\": \"r\", \"format\": \"rdm\", \"path\": \"x\"}]"
#define QRY_OK "\"query\": [{\"vendor\": \"b\", \"format\": \"csv\", \"path\": \"y\"}]"

static void test_config_errors(void) {
  fm_config *c = NULL;
  fm_error err;
  fm_error_init(&err);
  /* missing file: an I/O error naming the path */
  fm_rc rc = fm_config_load(D "no-such-config.json", &c, &err);
  CHECK(rc == FM_ERR_IO);
  CHECK(c == NULL);
  CHECK(strstr(err.msg, D "no-such-config.json") != NULL);
  CHECK(strstr(err.msg, ":-1:") == NULL); /* no made-up line number */

  config_fails("badjson.json", "{\n  \"name\": \"x\",\n  oops\n}\n", FM_ERR_PARSE,
               "badjson.json:3:", NULL);
  config_fails("dupkey.json", "{\"name\": \"a\", \"name\": \"b\"}", FM_ERR_PARSE, NULL, NULL);
  config_fails("array.json", "[1, 2]", FM_ERR_PARSE, "JSON object", NULL);
  config_fails("noref.json", "{" QRY_OK "}", FM_ERR_ARG, "\"reference\"", NULL);
  config_fails("emptyref.json", "{\"reference\": [], " QRY_OK "}", FM_ERR_ARG,
               "\"reference\"", NULL);
  config_fails("noquery.json", "{" REF_OK "}", FM_ERR_ARG, "\"query\"", NULL);
  config_fails("badformat.json",
               "{\"reference\": [{\"vendor\": \"r\", \"format\": \"xml\", \"path\": \"x\"}], "
               QRY_OK "}", FM_ERR_ARG, "unknown format \"xml\"", "reference[0]");
  config_fails("nopath.json",
               "{" REF_OK ", \"query\": [{\"vendor\": \"b\", \"format\": \"csv\"}]}",
               FM_ERR_ARG, "query[0]", "\"path\"");
  config_fails("numvendor.json",
               "{\"reference\": [{\"vendor\": 3, \"format\": \"rdm\", \"path\": \"x\"}], "
               QRY_OK "}", FM_ERR_ARG, "\"vendor\" must be a string", NULL);
  config_fails("badcol.json",
               "{" REF_OK ", \"query\": [{\"vendor\": \"b\", \"format\": \"csv\", "
               "\"path\": \"y\", \"columns\": {\"idd\": \"x\"}}]}",
               FM_ERR_ARG, "unknown key \"idd\"", "query[0].columns");
  config_fails("rootkey.json", "{" REF_OK ", " QRY_OK ", \"train_pair\": [\"p.tsv\"]}",
               FM_ERR_ARG, "unknown key \"train_pair\"", "config");
  config_fails("srckey.json",
               "{" REF_OK ", \"query\": [{\"vendor\": \"b\", \"format\": \"csv\", "
               "\"path\": \"y\", \"colums\": {}}]}",
               FM_ERR_ARG, "unknown key \"colums\"", "query[0]");
  config_fails("modelkey.json", "{" REF_OK ", " QRY_OK ", \"model\": {\"dimz\": 8}}",
               FM_ERR_ARG, "unknown key \"dimz\"", "model");
  config_fails("idcode.json",
               "{\"reference\": [{\"vendor\": \"r\", \"format\": \"rdm\", \"path\": \"x\", "
               "\"id_is_code\": \"yes\"}], " QRY_OK "}",
               FM_ERR_ARG, "\"id_is_code\" must be true or false", "reference[0]");
  config_fails("order.json",
               "{\"reference\": [{\"vendor\": \"r\", \"format\": \"rdm\", \"path\": \"x\", "
               "\"order_prior\": 1}], " QRY_OK "}",
               FM_ERR_ARG, "\"order_prior\" must be true or false", "reference[0]");
  config_fails("weightkey.json",
               "{" REF_OK ", " QRY_OK ", \"model\": {\"weights\": {\"lsb\": 1}}}",
               FM_ERR_ARG, "unknown key \"lsb\"", "model.weights");
  config_fails("dims0.json", "{" REF_OK ", " QRY_OK ", \"model\": {\"dims\": 0}}",
               FM_ERR_ARG, "model.dims", "out of range");
  config_fails("dimsstr.json", "{" REF_OK ", " QRY_OK ", \"model\": {\"dims\": \"8\"}}",
               FM_ERR_ARG, "model.dims", "number");
  config_fails("prose.json", "{" REF_OK ", " QRY_OK ", \"model\": {\"prose_min_count\": -1}}",
               FM_ERR_ARG, "model.prose_min_count", "out of range");
  config_fails("pairsnotarr.json", "{" REF_OK ", " QRY_OK ", \"train_pairs\": \"p.tsv\"}",
               FM_ERR_ARG, "train_pairs", NULL);
  config_fails("pairsnum.json", "{" REF_OK ", " QRY_OK ", \"train_pairs\": [\"a\", 2]}",
               FM_ERR_ARG, "train_pairs[1]", NULL);

  /* a valid config: paths resolved against the config's folder */
  fm_error_init(&err);
  rc = fm_config_load(TINY, &c, &err);
  CHECK(rc == FM_OK);
  if (rc == FM_OK) {
    CHECK_STR(c->name, "tiny");
    CHECK(c->nreference == 1 && c->nquery == 1 && c->ntrain_pairs == 1);
    CHECK_STR(c->reference[0].path, D "RDMFieldDictionary.tiny");
    CHECK_STR(c->query[0].col_id, "mnemonic");
    CHECK_STR(c->train_pairs[0], D "tiny-train.tsv");
    CHECK_STR(c->abbreviations, D "../../../data/abbreviations.tsv");
    CHECK(c->opts.dims == 8 && c->opts.seed == 7);
    CHECK(c->opts.prose_min_count == 2); /* the default */
    fm_config_free(c);
  }

  /* a config whose dictionary is missing fails at training, naming it */
  const char *path = tmp("missingdict.json");
  CHECK(write_text(path, "{\"reference\": [{\"vendor\": \"r\", \"format\": \"rdm\", "
                         "\"path\": \"nowhere.rdm\"}], " QRY_OK "}") == 0);
  fm_error_init(&err);
  rc = fm_config_load(path, &c, &err);
  CHECK(rc == FM_OK);
  if (rc == FM_OK) {
    fm_train_input in = {.config = c, .quiet = 1};
    fm_model *m = (fm_model *)1;
    rc = fm_train(&in, &m, &err);
    CHECK(rc == FM_ERR_IO);
    CHECK(strstr(err.msg, "nowhere.rdm") != NULL);
    if (rc == FM_OK) fm_model_close(m);
    fm_config_free(c);
  }
}

/* ---- "extends" ------------------------------------------------------------ */

/* A chain of three: top.json extends sub/mid.json, which extends
 * base.json one folder up.  Returns 0 when every file was written. */
static int write_chain(const char *top_extra) {
  char sub[sizeof dir + 8];
  snprintf(sub, sizeof sub, "%s/sub", dir);
  if (mkdir(sub, 0700) != 0 && errno != EEXIST) return -1;
  char top[1024];
  snprintf(top, sizeof top, "{\"extends\": \"sub/mid.json\"%s}", top_extra);
  return write_text(tmp("base.json"),
                    "{\"name\": \"base\", " REF_OK ", " QRY_OK ", "
                    "\"no_equivalent\": [\"none.tsv\"], \"no_equivalent_weight\": 2, "
                    "\"model\": {\"dims\": 16, \"seed\": 3, "
                    "\"weights\": {\"title\": 2, \"order\": 0.5}}}") ||
         write_text(tmp("sub/mid.json"),
                    "{\"extends\": \"../base.json\", \"train_pairs\": [\"mid.tsv\"], "
                    "\"model\": {\"seed\": 9, \"weights\": {\"order\": 0.25}}}") ||
         write_text(tmp("top.json"), top);
}

static void test_extends(void) {
  CHECK(write_chain("") == 0);
  fm_config *c = NULL;
  fm_error err;
  fm_error_init(&err);
  fm_rc rc = fm_config_load(tmp("top.json"), &c, &err);
  CHECK(rc == FM_OK);
  if (rc) fprintf(stderr, "  %s\n", err.msg);
  if (c) {
    /* every path resolves against the folder of the file that names it */
    CHECK_STR(c->path, tmp("top.json"));
    CHECK_STR(c->name, "base");
    CHECK(c->nreference == 1 && c->nquery == 1);
    CHECK_STR(c->reference[0].path, tmp("sub/../x")); /* joined, not normalized */
    CHECK_STR(c->query[0].path, tmp("sub/../y"));
    CHECK(c->ntrain_pairs == 1);
    if (c->ntrain_pairs == 1) CHECK_STR(c->train_pairs[0], tmp("sub/mid.tsv"));
    CHECK(c->nno_equivalent == 1);
    if (c->nno_equivalent == 1) CHECK_STR(c->no_equivalent[0], tmp("sub/../none.tsv"));
    CHECK(c->no_equivalent_weight == 2.0);
    /* "model" and its weights merge key by key down the chain */
    CHECK(c->opts.dims == 16 && c->opts.seed == 9);
    CHECK(c->opts.w.title == 2.0f && c->opts.w.order == 0.25f);
    CHECK(c->opts.w.lsa == 1.0f); /* the default, set nowhere */
    fm_config_free(c);
  }

  /* a key of the extending file replaces the base's whole: the top's own
   * pairs, not the middle's; an empty list clears them */
  CHECK(write_chain(", \"name\": \"top\", \"train_pairs\": [\"a.tsv\", \"b.tsv\"]") == 0);
  c = NULL;
  CHECK(fm_config_load(tmp("top.json"), &c, &err) == FM_OK);
  if (c) {
    CHECK_STR(c->name, "top");
    CHECK(c->ntrain_pairs == 2);
    if (c->ntrain_pairs == 2) CHECK_STR(c->train_pairs[1], tmp("b.tsv"));
    fm_config_free(c);
  }
  CHECK(write_chain(", \"train_pairs\": [], \"no_equivalent_weight\": 0") == 0);
  c = NULL;
  CHECK(fm_config_load(tmp("top.json"), &c, &err) == FM_OK);
  if (c) {
    CHECK(c->ntrain_pairs == 0 && c->nno_equivalent == 1 && c->no_equivalent_weight == 0);
    fm_config_free(c);
  }

  /* errors name the file that holds the key, and the file extending it */
  CHECK(write_chain(", \"model\": {\"dimz\": 1}") == 0);
  config_fails("top.json", NULL, FM_ERR_ARG, "unknown key \"dimz\"", NULL);
  CHECK(write_chain("") == 0);
  CHECK(write_text(tmp("base.json"), "{" REF_OK ", " QRY_OK ", \"model\": {\"dims\": 0}}") == 0);
  config_fails("top.json", NULL, FM_ERR_ARG, "base.json: model.dims", "sub/mid.json: extends");
  CHECK(write_text(tmp("sub/mid.json"), "{\"extends\": \"../gone.json\"}") == 0);
  config_fails("top.json", NULL, FM_ERR_IO, "gone.json", NULL);
  CHECK(write_text(tmp("sub/mid.json"), "{\"extends\": 3}") == 0);
  config_fails("top.json", NULL, FM_ERR_ARG, "\"extends\" must be a string", NULL);
  /* required of the chain as a whole, not of each file */
  CHECK(write_text(tmp("sub/mid.json"), "{\"query\": []}") == 0);
  config_fails("top.json", NULL, FM_ERR_ARG, "\"query\"", "non-empty");
  CHECK(write_text(tmp("sub/mid.json"), "{" QRY_OK "}") == 0);
  config_fails("top.json", NULL, FM_ERR_ARG, "\"reference\"", NULL);
  /* a cycle: refused, not followed forever */
  CHECK(write_text(tmp("sub/mid.json"), "{\"extends\": \"../top.json\"}") == 0);
  config_fails("top.json", NULL, FM_ERR_ARG, "(is there a cycle?)", NULL);
  CHECK(write_text(tmp("self.json"), "{\"extends\": \"self.json\"}") == 0);
  config_fails("self.json", NULL, FM_ERR_ARG, "(is there a cycle?)", NULL);
}

/* Allocation faults anywhere while loading a chain: out of memory, never
 * a crash or a leak (ASan), and the load succeeds once memory lasts. */
static void test_extends_faults(void) {
  CHECK(write_chain(", \"train_pairs\": [\"a.tsv\"]") == 0);
  int nomem = 0, ok = 0, other = 0;
  for (long k = 1; k < 100000 && !ok; k++) {
    fm_config *c = NULL;
    fm_error err;
    fm_error_init(&err);
    fm_fault_malloc_after(k);
    fm_rc rc = fm_config_load(tmp("top.json"), &c, &err);
    fm_fault_malloc_after(0);
    if (rc == FM_OK) ok = 1;
    else if (rc == FM_ERR_NOMEM) nomem++;
    else {
      other++;
      fprintf(stderr, "  k=%ld: %s\n", k, err.msg);
      break;
    }
    CHECK((rc == FM_OK) == (c != NULL));
    fm_config_free(c);
  }
  fprintf(stderr, "  extends chain: %d NOMEM runs\n", nomem);
  CHECK(ok && nomem > 0 && other == 0);
}

/* ---- the shipped configs ---------------------------------------------------- */

static int same_str(const char *a, const char *b) {
  return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Every config in train/ loads (loading resolves paths, it reads no data),
 * and the supervised Bloomberg config is the unsupervised one plus pairs:
 * the same sources with the same options and the same model, so what it
 * measures is what the pairs add (it once lacked the glossary's
 * id_is_code and the RDM's order_prior, added to the base later). */
static void test_shipped_configs(void) {
  static const char *const names[] = {"train/sample.json", "train/bbg-refinitiv.json",
                                      "train/bbg-refinitiv-pairs.json",
                                      "train/mimic3-omop.json"};
  fm_config *c[4] = {0};
  for (int i = 0; i < 4; i++) {
    fm_error err;
    fm_error_init(&err);
    CHECK(fm_config_load(names[i], &c[i], &err) == FM_OK);
    if (!c[i]) fprintf(stderr, "  %s\n", err.msg);
  }
  const fm_config *base = c[1], *sup = c[2];
  if (base && sup) {
    CHECK(base->ntrain_pairs == 0 && sup->ntrain_pairs >= 2);
    CHECK(sup->nno_equivalent >= 2);
    CHECK(sup->nreference == base->nreference && sup->nquery == base->nquery);
    for (size_t i = 0; i < base->nreference + base->nquery && sup->nreference == base->nreference
                       && sup->nquery == base->nquery; i++) {
      const fm_source_spec *a = i < base->nreference ? &base->reference[i]
                                                     : &base->query[i - base->nreference];
      const fm_source_spec *b = i < base->nreference ? &sup->reference[i]
                                                     : &sup->query[i - base->nreference];
      CHECK(same_str(a->vendor, b->vendor) && same_str(a->format, b->format));
      CHECK(same_str(a->path, b->path));
      CHECK(same_str(a->col_id, b->col_id) && same_str(a->col_name, b->col_name) &&
            same_str(a->col_description, b->col_description) &&
            same_str(a->col_type, b->col_type) && same_str(a->col_category, b->col_category));
      CHECK(a->id_is_code == b->id_is_code && a->order_prior == b->order_prior);
    }
    CHECK(memcmp(&base->opts, &sup->opts, sizeof base->opts) == 0);
    CHECK(base->calibration_folds == sup->calibration_folds);
    CHECK(same_str(base->abbreviations, sup->abbreviations));
  }
  for (int i = 0; i < 4; i++) fm_config_free(c[i]);
}

int main(void) {
  if (scratch_make("fm_config_")) return 1;
  FM_RUN(test_config_errors);
  FM_RUN(test_extends);
  FM_RUN(test_extends_faults);
  FM_RUN(test_shipped_configs);
  unlink(tmp("sub/mid.json"));
  rmdir(tmp("sub"));
  scratch_remove();
  FM_TEST_EXIT();
}
