/* dispatch-message-pool-private.h — SoupMessages kept for the next request
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef struct _DispatchMessagePool DispatchMessagePool;

DispatchMessagePool *_dispatch_message_pool_new  (SoupSession         *session);
void                 _dispatch_message_pool_free (DispatchMessagePool *pool);

/* A message that @session has unqueued, last used for a request
 * dispatched in @context, or %NULL; with it, the cancellable that request
 * was sent with (never cancelled). (transfer full) */
SoupMessage         *_dispatch_message_pool_take (DispatchMessagePool  *pool,
                                                  GMainContext         *context,
                                                  GCancellable        **cancellable);

/* Gives back the message of a request that ended cleanly in @context,
 * and the cancellable it was sent with, which must not be cancelled.
 * Takes ownership of both; nothing else may use them afterwards. */
void                 _dispatch_message_pool_give (DispatchMessagePool *pool,
                                                  SoupMessage         *msg,
                                                  GCancellable        *cancellable,
                                                  GMainContext        *context);

/* For tests: how many messages wait for the session to unqueue them,
 * and how many are ready. */
void                 _dispatch_message_pool_count (DispatchMessagePool *pool,
                                                   guint               *n_retired,
                                                   guint               *n_spare);

G_END_DECLS
