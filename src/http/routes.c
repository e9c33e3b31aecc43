/* routes.c: the static route table (as the GNU Taler exchange's): method,
 * path pattern, handler, required role.  Adding an endpoint is one h_*.c
 * file plus one line here and its entry in api/openapi.yaml (the contract
 * test checks both ways). */
#include "http_internal.h"

const fm_http_route fm_http_route_table[] = {
    {"GET", "/healthz", fm_h_healthz, 0},
    {"GET", "/readyz", fm_h_readyz, 0},
    {"GET", "/metrics", fm_h_metrics, 0},
    {"GET", "/openapi.yaml", fm_h_openapi_yaml, 0},
    {"GET", "/openapi.json", fm_h_openapi_json, 0},
    {"GET", "/v1/match", fm_h_match_get, FM_TOKEN_READER},
    {"POST", "/v1/match", fm_h_match_post, FM_TOKEN_READER},
    {"GET", "/v1/fields", fm_h_fields_search, FM_TOKEN_READER},
    {"GET", "/v1/fields/{vendor}/{id}", fm_h_fields_get, FM_TOKEN_READER},
    /* The manifest is public so OpenRefine can add the service; queries
     * (GET with queries= is answered by the same handler) need a reader. */
    {"GET", "/reconcile", fm_h_reconcile_get, 0},
    {"POST", "/reconcile", fm_h_reconcile_post, FM_TOKEN_READER},
    {"GET", "/reconcile/preview", fm_h_reconcile_preview, FM_TOKEN_READER},
    {"GET", "/reconcile/view", fm_h_reconcile_view, FM_TOKEN_READER},
    {"GET", "/reconcile/suggest/entity", fm_h_reconcile_suggest, FM_TOKEN_READER},
    {"GET", "/reconcile/suggest/property", fm_h_reconcile_suggest_property, FM_TOKEN_READER},
    {"GET", "/reconcile/suggest/type", fm_h_reconcile_suggest_type, FM_TOKEN_READER},
    {"GET", "/reconcile/extend/propose", fm_h_reconcile_propose, FM_TOKEN_READER},
    /* The same service with the reader's token in the path (OpenRefine opens
     * preview and view in the browser, which cannot send a header); the
     * secret is redacted in the access log. */
    {"GET", "/t/{secret}/reconcile", fm_h_reconcile_get, FM_TOKEN_READER},
    {"POST", "/t/{secret}/reconcile", fm_h_reconcile_post, FM_TOKEN_READER},
    {"GET", "/t/{secret}/reconcile/preview", fm_h_reconcile_preview, FM_TOKEN_READER},
    {"GET", "/t/{secret}/reconcile/view", fm_h_reconcile_view, FM_TOKEN_READER},
    {"GET", "/t/{secret}/reconcile/suggest/entity", fm_h_reconcile_suggest, FM_TOKEN_READER},
    {"GET", "/t/{secret}/reconcile/suggest/property", fm_h_reconcile_suggest_property,
     FM_TOKEN_READER},
    {"GET", "/t/{secret}/reconcile/suggest/type", fm_h_reconcile_suggest_type, FM_TOKEN_READER},
    {"GET", "/t/{secret}/reconcile/extend/propose", fm_h_reconcile_propose, FM_TOKEN_READER},
    /* Provisioning (h_provision.c): any reader asks; each sees only their own
     * requests, admins see all. */
    {"POST", "/v1/provisioning/requests", fm_h_provision_create, FM_TOKEN_READER},
    {"GET", "/v1/provisioning/requests", fm_h_provision_list, FM_TOKEN_READER},
    {"GET", "/v1/provisioning/requests/{id}", fm_h_provision_get, FM_TOKEN_READER},
    {"GET", "/v1/provisioning/requests/{id}/download", fm_h_provision_download,
     FM_TOKEN_READER},
    /* Review (h_review.c): reads need reader, decisions analyst. */
    {"GET", "/v1/review/queue", fm_h_review_queue, FM_TOKEN_READER},
    {"GET", "/v1/review/stats", fm_h_review_stats, FM_TOKEN_READER},
    {"GET", "/v1/review/daily", fm_h_review_daily, FM_TOKEN_READER},
    {"POST", "/v1/review/bulk", fm_h_review_bulk, FM_TOKEN_ANALYST},
    {"GET", "/v1/me", fm_h_me, FM_TOKEN_READER},
    /* The review app (h_ui.c, web/): static files, public; every action it
     * offers is one of the routes above, with the token it is given. */
    {"GET", "/ui/", fm_h_ui, 0},
    {"GET", "/ui/{file}", fm_h_ui, 0},
    {"GET", "/v1/review/{vendor}/{id}", fm_h_review_show, FM_TOKEN_READER},
    {"POST", "/v1/review/{vendor}/{id}/decisions", fm_h_review_decide, FM_TOKEN_ANALYST},
    {"GET", "/v1/review/{vendor}/{id}/history", fm_h_review_history, FM_TOKEN_READER},
    /* Mappings (h_mappings.c). */
    {"GET", "/v1/mappings", fm_h_mappings_list, FM_TOKEN_READER},
    {"GET", "/v1/mappings/export", fm_h_mappings_export, FM_TOKEN_READER},
    /* Batch runs (h_batch.c): starting one needs admin. */
    {"POST", "/v1/batch-runs", fm_h_batch_start, FM_TOKEN_ADMIN},
    {"GET", "/v1/batch-runs", fm_h_batch_list, FM_TOKEN_READER},
    {"GET", "/v1/batch-runs/{id}", fm_h_batch_get, FM_TOKEN_READER},
    /* GraphQL (h_graphql.c, gql_schema.c): the same reader role; resolvers
     * apply the REST rules (own provisioning requests, admins all). */
    {"POST", "/graphql", fm_h_graphql_post, FM_TOKEN_READER},
    {"GET", "/graphql", fm_h_graphql_get, FM_TOKEN_READER},
    /* Operations (h_admin.c). */
    {"POST", "/v1/admin/model/reload", fm_h_admin_model_reload, FM_TOKEN_ADMIN},
    /* Token administration (h_tokens.c): the secret is shown once. */
    {"POST", "/v1/admin/tokens", fm_h_tokens_create, FM_TOKEN_ADMIN},
    {"GET", "/v1/admin/tokens", fm_h_tokens_list, FM_TOKEN_ADMIN},
    {"DELETE", "/v1/admin/tokens/{id}", fm_h_tokens_revoke, FM_TOKEN_ADMIN},
};

const size_t fm_http_route_n = sizeof fm_http_route_table / sizeof fm_http_route_table[0];

size_t fm_http_route_count(void) { return fm_http_route_n; }

fm_http_route_info fm_http_route_at(size_t i) {
  fm_http_route_info info = {NULL, NULL, NULL};
  if (i >= fm_http_route_n) return info;
  const fm_http_route *rt = &fm_http_route_table[i];
  info.method = rt->method;
  info.pattern = rt->pattern;
  info.role = rt->role ? fm_token_role_name((fm_token_role)rt->role) : "none";
  return info;
}
