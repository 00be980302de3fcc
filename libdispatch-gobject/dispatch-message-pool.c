/* dispatch-message-pool.c — SoupMessages kept for the next request
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "dispatch-message-pool-private.h"

/* Making and finalizing a SoupMessage is the largest single cost of a
 * small request in libsoup 3.2 (about 7 800 instructions of the 208 000
 * a 13-byte GET costs raw libsoup: bench/RESULTS.md). libsoup lets a
 * message be sent again once the session is done with it ("Messages can
 * only be reused after unqueued", SOUP_SESSION_ERROR_MESSAGE_ALREADY_IN_QUEUE),
 * so an agent keeps the messages of requests that ended cleanly and
 * builds later requests in them.
 *
 * A message comes back when its request ends, while libsoup still holds
 * it: its queue item until the session's queue source unqueues it, and
 * the send task until the callback that ended the request returns (a
 * terminal callback may run a nested main loop in between). It may be
 * sent again only once libsoup has let go of it entirely, that is when
 * the pool holds the only reference to it and to its cancellable; until
 * then take() passes it over. At most MAX_SPARE are kept; the oldest
 * goes when another comes back. */

#define MAX_SPARE 64

typedef struct
{
  SoupMessage  *msg;          /* owned */
  GCancellable *cancellable;  /* owned; the message was sent with it */
} Entry;

struct _DispatchMessagePool
{
  GMutex  mutex;
  GArray *spare;  /* of Entry, oldest first */
};

static void
entry_clear (Entry *entry)
{
  g_clear_object (&entry->msg);
  g_clear_object (&entry->cancellable);
}

/* Whether the pool holds the only reference to @object. GObject keeps the
 * count in its instance (GStreamer's GST_OBJECT_REFCOUNT reads it the
 * same way); while it is 1 only the pool can add one. */
static gboolean
only_ours (gpointer object)
{
  return g_atomic_int_get ((gint *) &G_OBJECT (object)->ref_count) == 1;
}

/* libsoup is done with the entry's message: it may be sent again. */
static gboolean
entry_ready (const Entry *entry)
{
  return only_ours (entry->msg) && only_ours (entry->cancellable);
}

DispatchMessagePool *
_dispatch_message_pool_new (void)
{
  DispatchMessagePool *pool = g_new0 (DispatchMessagePool, 1);

  g_mutex_init (&pool->mutex);
  pool->spare = g_array_new (FALSE, FALSE, sizeof (Entry));

  return pool;
}

void
_dispatch_message_pool_free (DispatchMessagePool *pool)
{
  for (guint i = 0; i < pool->spare->len; i++)
    entry_clear (&g_array_index (pool->spare, Entry, i));
  g_array_unref (pool->spare);
  g_mutex_clear (&pool->mutex);
  g_free (pool);
}

SoupMessage *
_dispatch_message_pool_take (DispatchMessagePool  *pool,
                             GCancellable        **cancellable)
{
  SoupMessage *msg = NULL;

  *cancellable = NULL;

  g_mutex_lock (&pool->mutex);
  for (guint i = 0; i < pool->spare->len; i++)
    {
      Entry *entry = &g_array_index (pool->spare, Entry, i);

      if (entry_ready (entry))
        {
          msg = entry->msg;
          *cancellable = entry->cancellable;
          g_array_remove_index (pool->spare, i);
          break;
        }
    }
  g_mutex_unlock (&pool->mutex);

  return msg;
}

void
_dispatch_message_pool_give (DispatchMessagePool *pool,
                             SoupMessage         *msg,
                             GCancellable        *cancellable)
{
  Entry entry = { msg, cancellable };
  Entry drop = { NULL, NULL };

  g_assert (!g_cancellable_is_cancelled (cancellable));

  g_mutex_lock (&pool->mutex);
  if (pool->spare->len >= MAX_SPARE)
    {
      drop = g_array_index (pool->spare, Entry, 0);
      g_array_remove_index (pool->spare, 0);
    }
  g_array_append_val (pool->spare, entry);
  g_mutex_unlock (&pool->mutex);

  entry_clear (&drop);
}

void
_dispatch_message_pool_count (DispatchMessagePool *pool,
                              guint               *n_held,
                              guint               *n_ready)
{
  *n_held = *n_ready = 0;

  g_mutex_lock (&pool->mutex);
  for (guint i = 0; i < pool->spare->len; i++)
    {
      Entry *entry = &g_array_index (pool->spare, Entry, i);

      if (entry_ready (entry))
        (*n_ready)++;
      else
        (*n_held)++;
    }
  g_mutex_unlock (&pool->mutex);
}
