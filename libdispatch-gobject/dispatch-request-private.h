/* dispatch-request-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <libsoup/soup.h>

#include "dispatch-request.h"
#include "dispatch-util-private.h"

G_BEGIN_DECLS

/* Shared by dispatch-request.c (properties) and dispatch-request-build.c
 * (validation and the SoupMessage). */
struct _DispatchRequest
{
  GObject          parent_instance;

  char            *method;
  char            *origin;
  char            *path;
  char            *query;
  DispatchHeaders *headers;
  GBytes          *body;
  GInputStream    *body_stream;
  gint64           body_length;
  int              headers_timeout;
  int              body_timeout;
  int              timeout;
  gint64           max_response_size;
  int              idempotent;  /* -1: from the method */
  guint            reset : 1;
};

/* What the exchange needs from a request, resolved against the agent's
 * defaults at dispatch time. With @reuse (transfer full, nullable), a
 * message libsoup has unqueued, the request is built in that one. */
SoupMessage *_dispatch_request_build_message (DispatchRequest      *self,
                                              DispatchOriginCache  *origins,
                                              SoupMessage          *reuse,
                                              GError              **error);
gboolean     _dispatch_request_is_head       (DispatchRequest  *self);

/* Validates as dispatching would; @origins (may be %NULL) caches parsed
 * origins. On success *@out_origin holds the parsed origin. */
gboolean     _dispatch_request_validate_full (DispatchRequest      *self,
                                              DispatchOriginCache  *origins,
                                              GUri                **out_origin,
                                              GError              **error);

G_END_DECLS
