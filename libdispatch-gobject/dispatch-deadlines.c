/* dispatch-deadlines.c — one timer source per main context
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* Every request has timers (headers and body timeouts are on by default),
 * but a request rarely reaches one. A GSource per request, made, attached,
 * destroyed and freed for each of them, cost more than the rest of the
 * timer logic together. Instead, the requests of a main context share one
 * source: a binary min-heap of their earliest deadlines, the source's
 * ready time at the heap's minimum.
 *
 * Everything but finding the queue runs in the context's dispatching
 * thread, as the exchanges that own the deadlines do, so the heap needs
 * no lock. The ready time only ever moves earlier from here (each change
 * of an attached source's ready time wakes the context's poll); a request
 * that finishes leaves it where it was, and the source then fires once
 * for nothing and moves it to the new minimum. */

#include "config.h"

#include "dispatch-deadlines-private.h"

struct _DispatchDeadlines
{
  GSource       source;
  GMainContext *context;  /* key in the registry; not a reference */
  GPtrArray    *heap;     /* DispatchDeadline *, min-heap on when */
  gint64        armed;    /* ready time given, -1 none */
};

/* context -> its queue, for as long as the queue's source lives (the
 * context's own reference keeps it alive until the context goes) */
static GMutex      registry_mutex;
static GHashTable *registry;

static inline DispatchDeadline *
heap_at (DispatchDeadlines *self,
         guint              i)
{
  return g_ptr_array_index (self->heap, i);
}

static inline void
heap_put (DispatchDeadlines *self,
          guint              i,
          DispatchDeadline  *deadline)
{
  self->heap->pdata[i] = deadline;
  deadline->index = i;
}

static void
sift_up (DispatchDeadlines *self,
         guint              i)
{
  DispatchDeadline *deadline = heap_at (self, i);

  while (i > 0)
    {
      guint parent = (i - 1) / 2;

      if (heap_at (self, parent)->when <= deadline->when)
        break;
      heap_put (self, i, heap_at (self, parent));
      i = parent;
    }
  heap_put (self, i, deadline);
}

static void
sift_down (DispatchDeadlines *self,
           guint              i)
{
  DispatchDeadline *deadline = heap_at (self, i);
  guint n = self->heap->len;

  for (;;)
    {
      guint child = 2 * i + 1;

      if (child >= n)
        break;
      if (child + 1 < n && heap_at (self, child + 1)->when < heap_at (self, child)->when)
        child++;
      if (deadline->when <= heap_at (self, child)->when)
        break;
      heap_put (self, i, heap_at (self, child));
      i = child;
    }
  heap_put (self, i, deadline);
}

static void
arm (DispatchDeadlines *self,
     gint64             when)
{
  self->armed = when;
  g_source_set_ready_time (&self->source, when);
}

static gboolean
deadlines_dispatch (GSource     *source,
                    GSourceFunc  callback,
                    gpointer     user_data)
{
  DispatchDeadlines *self = (DispatchDeadlines *) source;
  gint64 now = g_source_get_time (source);
  guint budget = self->heap->len;

  self->armed = -1;

  /* A callback may set or remove any deadline, its own too; the budget
   * bounds the loop even if one keeps setting a deadline already due. */
  while (self->heap->len > 0 && budget-- > 0)
    {
      DispatchDeadline *deadline = heap_at (self, 0);

      if (deadline->when > now)
        break;

      _dispatch_deadlines_remove (self, deadline);
      deadline->func (deadline->data);
    }

  arm (self, self->heap->len > 0 ? heap_at (self, 0)->when : -1);

  return G_SOURCE_CONTINUE;
}

static void
deadlines_finalize (GSource *source)
{
  DispatchDeadlines *self = (DispatchDeadlines *) source;

  g_mutex_lock (&registry_mutex);
  if (g_hash_table_lookup (registry, self->context) == self)
    g_hash_table_remove (registry, self->context);
  g_mutex_unlock (&registry_mutex);

  /* every owner removed its deadline before it let go of the queue */
  g_assert (self->heap->len == 0);
  g_ptr_array_unref (self->heap);
}

static GSourceFuncs deadlines_funcs = {
  .dispatch = deadlines_dispatch,
  .finalize = deadlines_finalize,
};

/* The queue of @context, made and attached on first use. Call from the
 * thread that dispatches @context. */
DispatchDeadlines *
_dispatch_deadlines_ref_for_context (GMainContext *context)
{
  DispatchDeadlines *self;

  g_mutex_lock (&registry_mutex);
  if (registry == NULL)
    registry = g_hash_table_new (NULL, NULL);

  self = g_hash_table_lookup (registry, context);
  if (self != NULL)
    g_source_ref (&self->source);
  else
    {
      self = (DispatchDeadlines *) g_source_new (&deadlines_funcs, sizeof (DispatchDeadlines));
      g_source_set_static_name (&self->source, "[dispatch] timeouts");
      /* A handler may run a nested main loop in its terminal callback,
       * which runs from here: the other requests' timers must still fire
       * meanwhile. The dispatch loop re-reads the heap every pass, so
       * re-entering it is safe. */
      g_source_set_can_recurse (&self->source, TRUE);
      self->context = context;
      self->heap = g_ptr_array_new ();
      self->armed = -1;
      g_source_attach (&self->source, context);
      g_hash_table_insert (registry, context, self);
    }
  g_mutex_unlock (&registry_mutex);

  return self;
}

void
_dispatch_deadlines_unref (DispatchDeadlines *self)
{
  g_source_unref (&self->source);
}

/* Queues @deadline at @when, or moves it there. */
void
_dispatch_deadlines_set (DispatchDeadlines *self,
                         DispatchDeadline  *deadline,
                         gint64             when)
{
  deadline->when = when;

  if (deadline->index == DISPATCH_DEADLINE_IDLE)
    {
      g_ptr_array_add (self->heap, deadline);
      sift_up (self, self->heap->len - 1);
    }
  else
    {
      sift_up (self, deadline->index);
      sift_down (self, deadline->index);
    }

  if (self->armed == -1 || when < self->armed)
    arm (self, when);
}

/* Takes @deadline out of the queue, if it is in. */
void
_dispatch_deadlines_remove (DispatchDeadlines *self,
                            DispatchDeadline  *deadline)
{
  guint i = deadline->index;
  DispatchDeadline *last;

  if (i == DISPATCH_DEADLINE_IDLE)
    return;

  g_assert (i < self->heap->len && heap_at (self, i) == deadline);

  last = g_ptr_array_steal_index_fast (self->heap, self->heap->len - 1);
  deadline->index = DISPATCH_DEADLINE_IDLE;

  if (last != deadline)
    {
      heap_put (self, i, last);
      sift_up (self, i);
      sift_down (self, last->index);
    }
}
