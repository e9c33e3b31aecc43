/* cmd_token.c: fieldmatch token create|list|revoke --db D ...
 * API tokens for the HTTP service.  create prints the secret once on
 * stdout (the database keeps only its SHA-256). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

typedef struct token_args {
  const char *db, *role, *owner;
  long id;
} token_args;

static const fm_cli_opt opts[] = {
    FM_OPT_DB(token_args, db),
    FM_OPT_STR(token_args, role, "--role", 0, "ROLE", "create: reader, analyst or admin"),
    FM_OPT_STR(token_args, owner, "--owner", 0, "NAME", "create: whom the token is for"),
    FM_OPT_NUM(token_args, id, FM_CLI_LONG, "--id", 1, 0, "N", "revoke: the token's id"),
    FM_OPT_END};

static const fm_cli_spec spec = {
    .cmd = "token",
    .usage = "usage: fieldmatch token create --db DB --role reader|analyst|admin --owner NAME\n"
             "       fieldmatch token list   --db DB\n"
             "       fieldmatch token revoke --db DB --id N\n",
    .about = "create prints the new secret on stdout; it cannot be shown again.\n"
             "create makes the database when it does not exist (a server's tokens come\n"
             "before its first 'serve'); list and revoke need an existing one.\n",
    .opts = opts};

int fm_cmd_token(int argc, char **argv) {
  if (argc < 2) return fm_cli_usage("token", "give a subcommand: create, list or revoke");
  const char *sub = argv[1];
  if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
    fm_cli_help(&spec, stdout);
    return FM_EXIT_OK;
  }
  if (strcmp(sub, "create") && strcmp(sub, "list") && strcmp(sub, "revoke"))
    return fm_cli_usage("token", "unknown subcommand '%s'", sub);
  token_args a = {.db = FM_CLI_DB_DEFAULT};
  int npos, prc = fm_cli_parse(&spec, argc - 1, argv + 1, &a, &npos);
  if (prc >= 0) return prc;
  const char *role = a.role, *owner = a.owner;
  int r = -1;
  long tid = a.id;
  int create = !strcmp(sub, "create");
  if (create) {
    if (!owner || !*owner) return fm_cli_usage("token", "create needs --owner NAME");
    if (!role || (r = fm_token_role_parse(role)) < 0)
      return fm_cli_usage("token", "create needs --role reader, analyst or admin");
  } else if (!strcmp(sub, "revoke") && !tid) {
    return fm_cli_usage("token", "revoke needs --id N (see 'token list')");
  }
  fm_error err;
  fm_error_init(&err);
  fm_store *st;
  if (fm_cli_open_store(a.db, create ? FM_CLI_CREATE : FM_CLI_OPEN, 0, &st))
    return FM_EXIT_FAIL;
  int status = FM_EXIT_OK;
  if (!strcmp(sub, "create")) {
    char secret[FM_TOKEN_SECRET_LEN + 1];
    int64_t newid;
    if (fm_store_token_create(st, owner, (fm_token_role)r, fm_cli_user(), &newid, secret, &err)) {
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
    if (fm_store_token_revoke(st, tid, fm_cli_user(), &err))
      status = fm_cli_fail(&err);
    else
      fprintf(stderr, "token %ld revoked\n", tid);
  }
  fm_store_close(st);
  return status;
}
