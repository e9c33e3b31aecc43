/* cmd_token.c: fieldmatch token create|list|revoke --db D ...
 * API tokens for the HTTP service.  create prints the secret once on
 * stdout (the database keeps only its SHA-256). */
#include "cli.h"
#include "fm_store.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *help =
    "usage: fieldmatch token create --db DB --role reader|analyst|admin --owner NAME\n"
    "       fieldmatch token list   --db DB\n"
    "       fieldmatch token revoke --db DB --id N\n"
    "create prints the new secret on stdout; it cannot be shown again.\n";

static const char *actor(void) {
  const char *u = getenv("USER");
  return u && *u ? u : "cli";
}

int fm_cmd_token(int argc, char **argv) {
  if (argc < 2) return fm_cli_usage("token", "give a subcommand: create, list or revoke");
  const char *sub = argv[1];
  if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
    fputs(help, stdout);
    return FM_EXIT_OK;
  }
  if (strcmp(sub, "create") && strcmp(sub, "list") && strcmp(sub, "revoke"))
    return fm_cli_usage("token", "unknown subcommand '%s'", sub);
  const char *db = NULL, *role = NULL, *owner = NULL, *id = NULL;
  for (int i = 2; i < argc; i++) {
    int missing = 0;
    const char *v;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(help, stdout);
      return FM_EXIT_OK;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--db", &missing))) {
      db = v;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--role", &missing))) {
      role = v;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--owner", &missing))) {
      owner = v;
    } else if ((v = fm_cli_opt(argc, argv, &i, "--id", &missing))) {
      id = v;
    } else {
      return fm_cli_usage("token", missing ? "option %s needs a value" : "unknown argument '%s'",
                          argv[i]);
    }
  }
  if (!db) return fm_cli_usage("token", "--db is required");
  int r = -1;
  long tid = -1;
  if (!strcmp(sub, "create")) {
    if (!owner || !*owner) return fm_cli_usage("token", "create needs --owner NAME");
    if (!role || (r = fm_token_role_parse(role)) < 0)
      return fm_cli_usage("token", "create needs --role reader, analyst or admin");
  } else if (!strcmp(sub, "revoke")) {
    if (!id || (tid = fm_cli_int(id)) < 0)
      return fm_cli_usage("token", "revoke needs --id N (see 'token list')");
  }
  fm_error err;
  fm_error_init(&err);
  fm_store *st;
  if (fm_store_open(db, NULL, &st, &err)) return fm_cli_fail(&err);
  int status = FM_EXIT_OK;
  if (!strcmp(sub, "create")) {
    char secret[FM_TOKEN_SECRET_LEN + 1];
    int64_t newid;
    if (fm_store_token_create(st, owner, (fm_token_role)r, actor(), &newid, secret, &err)) {
      status = fm_cli_fail(&err);
    } else {
      printf("%s\n", secret);
      fprintf(stderr, "token %lld for %s (%s); the secret above is not stored, keep it\n",
              (long long)newid, owner, role);
    }
  } else if (!strcmp(sub, "list")) {
    fm_token_info *t;
    size_t n;
    if (fm_store_token_list(st, &t, &n, &err)) {
      status = fm_cli_fail(&err);
    } else {
      printf("%-5s %-20s %-8s %-24s %-24s %s\n", "id", "owner", "role", "created", "last_used",
             "revoked");
      for (size_t i = 0; i < n; i++)
        printf("%-5lld %-20s %-8s %-24s %-24s %s\n", (long long)t[i].id, t[i].owner,
               fm_token_role_name(t[i].role), t[i].created_at,
               t[i].last_used_at[0] ? t[i].last_used_at : "-",
               t[i].revoked_at[0] ? t[i].revoked_at : "-");
      fm_free(t);
    }
  } else {
    if (fm_store_token_revoke(st, tid, actor(), &err))
      status = fm_cli_fail(&err);
    else
      fprintf(stderr, "token %ld revoked\n", tid);
  }
  fm_store_close(st);
  return status;
}
