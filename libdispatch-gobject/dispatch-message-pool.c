/* dispatch-message-pool.c — SoupMessages kept for the next request
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "dispatch-message-pool-private.h"

/* Making and finalizing a SoupMessage is the largest single cost of a
 * small request in libsoup 3.2 (about 7 800 instructions of the 208 000
 * a 13-byte GET costs raw libsoup: bench/RESULTS.md). libsoup lets a
 * message be sent again once the session has unqueued it ("Messages can
 * only be reused after unqueued", SOUP_SESSION_ERROR_MESSAGE_ALREADY_IN_QUEUE),
 * so an agent keeps the messages of requests that ended cleanly and
 * builds later requests in them.
 *
 * A message given back is retired until the session emits
 * request-unqueued for it, then spare: ready for a request dispatched in
 * the main context it was last used in. Retired messages are those
 * finished since the session last ran its queue; at most MAX_SPARE are
 * kept spare, and any beyond are dropped. */

#define MAX_SPARE   64
#define MAX_RETIRED 256  /* a bound in case a message is never unqueued */

typedef struct
{
  SoupMessage  *msg;          /* owned */
  GCancellable *cancellable;  /* owned; the message was sent with it */
  GMainContext *context;      /* compared, never dereferenced */
} Entry;

struct _DispatchMessagePool
{
  /* The agent's reference, and the signal handler's: the session may
   * emit request-unqueued in another thread while the agent goes. */
  gatomicrefcount ref_count;
  GMutex       mutex;
  SoupSession *session;   /* the agent's; only to disconnect, while it holds it */
  gulong       unqueued_id;
  GArray      *retired;   /* of Entry, oldest first */
  GArray      *spare;     /* of Entry */
};

static void
entry_clear (Entry *entry)
{
  g_clear_object (&entry->msg);
  g_clear_object (&entry->cancellable);
}

static void
request_unqueued_cb (SoupSession *session,
                     SoupMessage *msg,
                     gpointer     data)
{
  DispatchMessagePool *pool = data;
  Entry drop = { NULL, NULL, NULL };

  g_mutex_lock (&pool->mutex);
  for (guint i = 0; i < pool->retired->len; i++)
    {
      Entry entry = g_array_index (pool->retired, Entry, i);

      if (entry.msg != msg)
        continue;

      g_array_remove_index (pool->retired, i);
      if (pool->spare->len < MAX_SPARE)
        g_array_append_val (pool->spare, entry);
      else
        drop = entry;
      break;
    }
  g_mutex_unlock (&pool->mutex);

  /* libsoup still holds the message here; this only drops ours. */
  entry_clear (&drop);
}

static void
clear_entries (GArray *entries)
{
  for (guint i = 0; i < entries->len; i++)
    entry_clear (&g_array_index (entries, Entry, i));
  g_array_unref (entries);
}

static void
pool_unref (gpointer  data,
            GClosure *closure)
{
  DispatchMessagePool *pool = data;

  if (!g_atomic_ref_count_dec (&pool->ref_count))
    return;

  clear_entries (pool->retired);
  clear_entries (pool->spare);
  g_mutex_clear (&pool->mutex);
  g_free (pool);
}

DispatchMessagePool *
_dispatch_message_pool_new (SoupSession *session)
{
  DispatchMessagePool *pool = g_new0 (DispatchMessagePool, 1);

  g_atomic_ref_count_init (&pool->ref_count);
  g_mutex_init (&pool->mutex);
  pool->session = session;
  pool->retired = g_array_new (FALSE, FALSE, sizeof (Entry));
  pool->spare = g_array_new (FALSE, FALSE, sizeof (Entry));

  g_atomic_ref_count_inc (&pool->ref_count);
  pool->unqueued_id = g_signal_connect_data (session, "request-unqueued",
                                             G_CALLBACK (request_unqueued_cb), pool,
                                             pool_unref, 0);

  return pool;
}

/* Disconnects from the session and drops the agent's reference; an
 * emission running in another thread keeps the pool until it returns. */
void
_dispatch_message_pool_free (DispatchMessagePool *pool)
{
  g_signal_handler_disconnect (pool->session, pool->unqueued_id);
  pool_unref (pool, NULL);
}

SoupMessage *
_dispatch_message_pool_take (DispatchMessagePool  *pool,
                             GMainContext         *context,
                             GCancellable        **cancellable)
{
  SoupMessage *msg = NULL;

  *cancellable = NULL;

  g_mutex_lock (&pool->mutex);
  for (guint i = pool->spare->len; i > 0; i--)
    {
      Entry *entry = &g_array_index (pool->spare, Entry, i - 1);

      if (entry->context == context)
        {
          msg = entry->msg;
          *cancellable = entry->cancellable;
          g_array_remove_index_fast (pool->spare, i - 1);
          break;
        }
    }
  g_mutex_unlock (&pool->mutex);

  return msg;
}

void
_dispatch_message_pool_give (DispatchMessagePool *pool,
                             SoupMessage         *msg,
                             GCancellable        *cancellable,
                             GMainContext        *context)
{
  Entry entry = { msg, cancellable, context };
  Entry drop = { NULL, NULL, NULL };

  g_assert (!g_cancellable_is_cancelled (cancellable));

  g_mutex_lock (&pool->mutex);
  if (pool->retired->len >= MAX_RETIRED)
    {
      drop = g_array_index (pool->retired, Entry, 0);
      g_array_remove_index (pool->retired, 0);
    }
  g_array_append_val (pool->retired, entry);
  g_mutex_unlock (&pool->mutex);

  entry_clear (&drop);
}

void
_dispatch_message_pool_count (DispatchMessagePool *pool,
                              guint               *n_retired,
                              guint               *n_spare)
{
  g_mutex_lock (&pool->mutex);
  *n_retired = pool->retired->len;
  *n_spare = pool->spare->len;
  g_mutex_unlock (&pool->mutex);
}
