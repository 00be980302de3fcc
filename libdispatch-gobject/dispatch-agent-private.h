/* dispatch-agent-private.h — DispatchAgent's instance, shared by
 * dispatch-agent.c and dispatch-agent-dispatcher.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <libsoup/soup.h>

#include "dispatch-agent.h"
#include "dispatch-exchange-private.h"

G_BEGIN_DECLS

struct _DispatchAgent
{
  GObject          parent_instance;

  SoupSession     *session;
  DispatchOriginCache *origins;
  DispatchMessagePool *messages;  /* NULL with allow-h2 */
  GMainContext    *context;  /* where the agent was created */
  GError          *config_error;
  DispatchExchangeConfig config;

  int              connections;
  int              max_connections;
  guint            keep_alive_timeout;
  char            *user_agent;
  char            *proxy_uri;
  GTlsDatabase    *tls_database;
  char            *ca_file;
  GTlsCertificate *tls_certificate;
  char            *local_address;
  char            *socket_path;
  guint            use_system_proxy : 1;
  guint            reject_unauthorized : 1;

  /* guarded by mutex */
  GMutex           mutex;
  GQueue           in_flight;
  GPtrArray       *close_tasks;
  GPtrArray       *destroy_tasks;
  GError          *destroy_reason;
  int              closed;     /* atomic reads */
  int              destroyed;  /* atomic reads */
};

void dispatch_agent_dispatcher_iface_init (DispatchDispatcherInterface *iface);

/* Notify closed/destroyed; properties[] is private to dispatch-agent.c. */
void _dispatch_agent_notify_closed    (DispatchAgent *self);
void _dispatch_agent_notify_destroyed (DispatchAgent *self);

G_END_DECLS
