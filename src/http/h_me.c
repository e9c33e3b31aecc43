/* h_me.c: GET /v1/me (reader): who the bearer token belongs to and its
 * role, so a client (the review app's sign-in) can check a token and offer
 * only what the role allows.  The secret is never echoed. */
#include "http_internal.h"

enum MHD_Result fm_h_me(fm_http_req *r) {
  return fm_http_reply_json(
      r, MHD_HTTP_OK,
      json_pack("{s:s,s:s}", "owner", r->owner,
                "role", r->role ? fm_token_role_name((fm_token_role)r->role) : "none"));
}
