/* dispatch-exchange-hooks.c — libsoup message signals to exchanges
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "dispatch-exchange-hooks-private.h"
#include "dispatch-exchange-private.h"

/* libsoup signals reach exchanges through emission hooks installed once,
 * not through handlers connected to every message: connecting and
 * disconnecting four closures per request cost more than the rest of the
 * dispatch layer (PERFORMANCE-NOTES.md). A message is bound to its
 * exchange in a table; messages of other libsoup users are not in it and
 * are passed over. Emissions happen in the message's context, which is the
 * exchange's dispatch context.
 *
 * A hook has its own cost: it puts every emission of its signal, for every
 * message, on GLib's slow path. "wrote-body" (needed only for requests
 * with a body, to start the headers timer after the upload) is therefore
 * connected to those messages alone, in dispatch-exchange.c. */
typedef enum {
  HOOK_NETWORK_EVENT,
  HOOK_GOT_INFORMATIONAL,
  HOOK_RESTARTED,
  HOOK_STARTING,
} Hook;

/* message -> exchange; a plain table under a mutex is cheaper than
 * qdata (whose bit lock and list walk showed up per emission) */
static GMutex      bound_mutex;
static GHashTable *bound_messages;

static DispatchExchange *
lookup_exchange (SoupMessage *msg)
{
  DispatchExchange *self;

  g_mutex_lock (&bound_mutex);
  self = g_hash_table_lookup (bound_messages, msg);
  g_mutex_unlock (&bound_mutex);

  return self;
}

static gboolean
message_hook (GSignalInvocationHint *hint,
              guint                  n_params,
              const GValue          *params,
              gpointer               data)
{
  SoupMessage *msg = g_value_get_object (&params[0]);
  DispatchExchange *self = lookup_exchange (msg);

  if (self == NULL)
    return TRUE;

  switch ((Hook) GPOINTER_TO_UINT (data))
    {
    case HOOK_NETWORK_EVENT:
      _dispatch_exchange_on_network_event (msg, g_value_get_enum (&params[1]),
                                           g_value_get_object (&params[2]), self);
      break;

    case HOOK_GOT_INFORMATIONAL:
      _dispatch_exchange_on_got_informational (msg, self);
      break;

    case HOOK_RESTARTED:
      _dispatch_exchange_on_restarted (msg, self);
      break;

    case HOOK_STARTING:
      _dispatch_exchange_on_starting (msg, self);
      break;

    default:
      g_assert_not_reached ();
    }

  return TRUE;
}

void
_dispatch_exchange_hooks_install (void)
{
  static gsize installed;

  if (g_once_init_enter (&installed))
    {
      static const struct { const char *name; Hook hook; } hooks[] = {
        { "network-event", HOOK_NETWORK_EVENT },
        { "got-informational", HOOK_GOT_INFORMATIONAL },
        { "restarted", HOOK_RESTARTED },
        { "starting", HOOK_STARTING },
      };
      gpointer klass = g_type_class_ref (SOUP_TYPE_MESSAGE);

      bound_messages = g_hash_table_new (NULL, NULL);
      for (guint i = 0; i < G_N_ELEMENTS (hooks); i++)
        g_signal_add_emission_hook (g_signal_lookup (hooks[i].name, SOUP_TYPE_MESSAGE), 0,
                                    message_hook, GUINT_TO_POINTER (hooks[i].hook), NULL);
      g_type_class_unref (klass);
      g_once_init_leave (&installed, 1);
    }
}

void
_dispatch_exchange_hooks_bind (SoupMessage      *msg,
                               DispatchExchange *exchange)
{
  g_mutex_lock (&bound_mutex);
  g_hash_table_insert (bound_messages, msg, exchange);
  g_mutex_unlock (&bound_mutex);
}

/* No hook reaches the exchange from @msg after this. */
void
_dispatch_exchange_hooks_unbind (SoupMessage *msg)
{
  g_mutex_lock (&bound_mutex);
  g_hash_table_remove (bound_messages, msg);
  g_mutex_unlock (&bound_mutex);
}
