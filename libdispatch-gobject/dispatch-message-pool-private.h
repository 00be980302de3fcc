/* dispatch-message-pool-private.h — SoupMessages kept for the next request
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef struct _DispatchMessagePool DispatchMessagePool;

DispatchMessagePool *_dispatch_message_pool_new   (void);
void                 _dispatch_message_pool_free  (DispatchMessagePool *pool);

/* A message libsoup is done with, and the cancellable its request was
 * sent with (never cancelled), or %NULL. (transfer full) */
SoupMessage         *_dispatch_message_pool_take  (DispatchMessagePool  *pool,
                                                   GCancellable        **cancellable);

/* Gives back the message of a request that ended cleanly and the
 * cancellable it was sent with, which must not be cancelled. Takes
 * ownership of both; nothing else may use them afterwards. Any thread. */
void                 _dispatch_message_pool_give  (DispatchMessagePool *pool,
                                                   SoupMessage         *msg,
                                                   GCancellable        *cancellable);

/* For tests: messages libsoup still holds, and messages ready for use. */
void                 _dispatch_message_pool_count (DispatchMessagePool *pool,
                                                   guint               *n_held,
                                                   guint               *n_ready);

G_END_DECLS
