/* dispatch-request-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <libsoup/soup.h>

#include "dispatch-request.h"
#include "dispatch-util-private.h"

G_BEGIN_DECLS

/* What the exchange needs from a request, resolved against the agent's
 * defaults at dispatch time. */
SoupMessage *_dispatch_request_build_message (DispatchRequest      *self,
                                              DispatchOriginCache  *origins,
                                              GError              **error);
gboolean     _dispatch_request_is_head       (DispatchRequest  *self);

G_END_DECLS
