/* dispatch-exchange-private.h — one dispatched request on the wire
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <libsoup/soup.h>

#include "dispatch-handler.h"
#include "dispatch-message-pool-private.h"
#include "dispatch-request.h"
#include "dispatch-request-controller.h"
#include "dispatch-util-private.h"

G_BEGIN_DECLS

typedef struct _DispatchExchange DispatchExchange;

/* The agent's settings an exchange needs, fixed at construction. */
typedef struct
{
  SoupSession     *session;
  DispatchOriginCache *origins;  /* owned by the agent, which outlives us */
  DispatchMessagePool *messages; /* likewise; NULL: a new message per request */
  guint            connect_timeout;
  guint            headers_timeout;
  guint            body_timeout;
  guint            timeout;
  gint64           max_response_size;
  guint            max_header_size;
  GTlsCertificate *tls_certificate;
  const char      *user_agent;  /* owned by the agent, which outlives us */
  guint            allow_h2 : 1;
  guint            via_proxy : 1;
  guint            accept_any_certificate : 1;
  guint            proxy_auth : 1;
} DispatchExchangeConfig;

/* Called in the dispatch context once the terminal callback is delivered.
 * The exchange holds a reference on its owner (the agent) until then. */
typedef void (*DispatchExchangeDone) (DispatchExchange *exchange,
                                      GObject          *owner);

DispatchExchange          *_dispatch_exchange_new            (const DispatchExchangeConfig *config,
                                                              DispatchRequest              *request,
                                                              DispatchHandler              *handler,
                                                              GMainContext                 *context,
                                                              DispatchExchangeDone          done,
                                                              GObject                      *owner);
/* Takes ownership of @error: the exchange fails with it (after calling
 * on_request_start) instead of being sent. */
void                       _dispatch_exchange_reject         (DispatchExchange             *self,
                                                              GError                       *error);
/* Schedules the start in the dispatch context. */
void                       _dispatch_exchange_start          (DispatchExchange             *self);
DispatchRequestController *_dispatch_exchange_get_controller (DispatchExchange             *self);
GList                     *_dispatch_exchange_get_link       (DispatchExchange             *self);

/* SoupMessage signal handlers, called from the emission hooks
 * (dispatch-exchange-hooks.c) in the dispatch context; @user_data is the
 * exchange the message is bound to. */
void _dispatch_exchange_on_network_event     (SoupMessage        *msg,
                                              GSocketClientEvent  event,
                                              GIOStream          *connection,
                                              gpointer            user_data);
void _dispatch_exchange_on_got_informational (SoupMessage        *msg,
                                              gpointer            user_data);
void _dispatch_exchange_on_restarted         (SoupMessage        *msg,
                                              gpointer            user_data);
void _dispatch_exchange_on_starting          (SoupMessage        *msg,
                                              gpointer            user_data);

G_END_DECLS
