/* dispatch-agent.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(DISPATCH_INSIDE) && !defined(DISPATCH_COMPILATION)
# error "Only <libdispatch-gobject/dispatch.h> can be included directly."
#endif

#include <gio/gio.h>

#include "dispatch-dispatcher.h"
#include "dispatch-version-macros.h"

G_BEGIN_DECLS

#define DISPATCH_TYPE_AGENT (dispatch_agent_get_type ())

DISPATCH_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (DispatchAgent, dispatch_agent, DISPATCH, AGENT, GObject)

DISPATCH_AVAILABLE_IN_ALL
DispatchAgent   *dispatch_agent_new                    (void);
DISPATCH_AVAILABLE_IN_ALL
int              dispatch_agent_get_connections        (DispatchAgent *self);
DISPATCH_AVAILABLE_IN_ALL
int              dispatch_agent_get_max_connections    (DispatchAgent *self);
DISPATCH_AVAILABLE_IN_ALL
guint            dispatch_agent_get_keep_alive_timeout (DispatchAgent *self);
DISPATCH_AVAILABLE_IN_ALL
guint            dispatch_agent_get_connect_timeout    (DispatchAgent *self);
DISPATCH_AVAILABLE_IN_ALL
guint            dispatch_agent_get_headers_timeout    (DispatchAgent *self);
DISPATCH_AVAILABLE_IN_ALL
guint            dispatch_agent_get_body_timeout       (DispatchAgent *self);
DISPATCH_AVAILABLE_IN_ALL
guint            dispatch_agent_get_timeout            (DispatchAgent *self);
DISPATCH_AVAILABLE_IN_ALL
gint64           dispatch_agent_get_max_response_size  (DispatchAgent *self);
DISPATCH_AVAILABLE_IN_ALL
guint            dispatch_agent_get_max_header_size    (DispatchAgent *self);
DISPATCH_AVAILABLE_IN_ALL
gboolean         dispatch_agent_get_allow_h2           (DispatchAgent *self);
DISPATCH_AVAILABLE_IN_ALL
const char      *dispatch_agent_get_user_agent         (DispatchAgent *self);
DISPATCH_AVAILABLE_IN_ALL
const char      *dispatch_agent_get_proxy_uri          (DispatchAgent *self);
DISPATCH_AVAILABLE_IN_ALL
gboolean         dispatch_agent_get_use_system_proxy   (DispatchAgent *self);
DISPATCH_AVAILABLE_IN_ALL
GTlsDatabase    *dispatch_agent_get_tls_database       (DispatchAgent *self);
DISPATCH_AVAILABLE_IN_ALL
const char      *dispatch_agent_get_ca_file            (DispatchAgent *self);
DISPATCH_AVAILABLE_IN_ALL
gboolean         dispatch_agent_get_reject_unauthorized (DispatchAgent *self);
DISPATCH_AVAILABLE_IN_ALL
GTlsCertificate *dispatch_agent_get_tls_certificate    (DispatchAgent *self);
DISPATCH_AVAILABLE_IN_ALL
const char      *dispatch_agent_get_local_address      (DispatchAgent *self);
DISPATCH_AVAILABLE_IN_ALL
const char      *dispatch_agent_get_socket_path        (DispatchAgent *self);
DISPATCH_AVAILABLE_IN_ALL
gboolean         dispatch_agent_get_closed             (DispatchAgent *self);
DISPATCH_AVAILABLE_IN_ALL
gboolean         dispatch_agent_get_destroyed          (DispatchAgent *self);

G_END_DECLS
