/* dispatch-exchange-hooks-private.h — libsoup message signals to
 * exchanges
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <libsoup/soup.h>

#include "dispatch-exchange-private.h"

G_BEGIN_DECLS

/* Installs the SoupMessage emission hooks, once per process. */
void _dispatch_exchange_hooks_install (void);
/* Routes @msg's signals to @exchange's handlers until unbound. Any thread. */
void _dispatch_exchange_hooks_bind    (SoupMessage      *msg,
                                       DispatchExchange *exchange);
void _dispatch_exchange_hooks_unbind  (SoupMessage      *msg);

G_END_DECLS
