/* test-deadlines.c — the per-context timer queue (dispatch-deadlines.c)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <glib.h>

#include "dispatch-deadlines-private.h"

#define N 200

typedef struct
{
  DispatchDeadline   deadline;
  DispatchDeadlines *queue;
  GArray            *fired;   /* indices in firing order */
  guint              index;
  gint64             fired_at;
  /* optional actions of the callback */
  DispatchDeadline  *remove;  /* take another deadline out */
  gint64             rearm;   /* set itself again at this time, 0 = no */
  gboolean           forever; /* ... every time it fires */
} Item;

static void
item_fired (gpointer data)
{
  Item *item = data;

  g_assert_cmpuint (item->deadline.index, ==, DISPATCH_DEADLINE_IDLE);
  item->fired_at = g_get_monotonic_time ();
  g_array_append_val (item->fired, item->index);

  if (item->remove != NULL)
    _dispatch_deadlines_remove (item->queue, item->remove);
  if (item->rearm != 0)
    {
      gint64 when = item->rearm;

      if (!item->forever)
        item->rearm = 0;
      _dispatch_deadlines_set (item->queue, &item->deadline, when);
    }
}

static gboolean
timeout_cb (gpointer data)
{
  gboolean *timed_out = data;

  *timed_out = TRUE;
  return G_SOURCE_REMOVE;
}

/* Iterates @context until @fired holds @n entries, for at most 5 s. */
static void
run_until (GMainContext *context,
           GArray       *fired,
           guint         n)
{
  gboolean timed_out = FALSE;
  GSource *timeout = g_timeout_source_new_seconds (5);

  g_source_set_callback (timeout, timeout_cb, &timed_out, NULL);
  g_source_attach (timeout, context);
  while (fired->len < n && !timed_out)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (timeout);
  g_source_unref (timeout);

  g_assert_false (timed_out);
}

static Item *
make_items (DispatchDeadlines *queue,
            GArray            *fired,
            guint              n)
{
  Item *items = g_new0 (Item, n);

  for (guint i = 0; i < n; i++)
    {
      items[i].deadline = DISPATCH_DEADLINE_INIT (item_fired, &items[i]);
      items[i].queue = queue;
      items[i].fired = fired;
      items[i].index = i;
    }

  return items;
}

static void
test_deadlines_order (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GArray) fired = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autoptr(GRand) rand = g_rand_new_with_seed (4);
  DispatchDeadlines *queue;
  g_autofree Item *items = NULL;
  gint64 start = g_get_monotonic_time ();
  gint64 when[N];

  g_test_summary ("deadlines set in random order, some moved earlier or later "
                  "and some removed, fire in deadline order, none early, the "
                  "removed never");

  g_main_context_push_thread_default (context);
  queue = _dispatch_deadlines_ref_for_context (context);
  items = make_items (queue, fired, N);

  for (guint i = 0; i < N; i++)
    {
      when[i] = start + 20000 + g_rand_int_range (rand, 0, 200) * 1000;
      _dispatch_deadlines_set (queue, &items[i].deadline, when[i]);
    }
  /* move every 7th earlier and every 11th later; remove every 13th */
  for (guint i = 0; i < N; i += 7)
    _dispatch_deadlines_set (queue, &items[i].deadline, when[i] -= 10000);
  for (guint i = 0; i < N; i += 11)
    _dispatch_deadlines_set (queue, &items[i].deadline, when[i] += 15000);
  for (guint i = 0; i < N; i += 13)
    {
      _dispatch_deadlines_remove (queue, &items[i].deadline);
      _dispatch_deadlines_remove (queue, &items[i].deadline);  /* twice: no-op */
      g_assert_cmpuint (items[i].deadline.index, ==, DISPATCH_DEADLINE_IDLE);
    }

  run_until (context, fired, N - (N + 12) / 13);

  g_assert_cmpuint (fired->len, ==, N - (N + 12) / 13);
  for (guint k = 0; k < fired->len; k++)
    {
      guint i = g_array_index (fired, guint, k);

      g_assert_cmpuint (i % 13, !=, 0);
      g_assert_cmpint (items[i].fired_at, >=, when[i]);
      if (k > 0)
        g_assert_cmpint (when[g_array_index (fired, guint, k - 1)], <=, when[i]);
    }

  _dispatch_deadlines_unref (queue);
  g_main_context_pop_thread_default (context);
}

static void
test_deadlines_callbacks (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GArray) fired = g_array_new (FALSE, FALSE, sizeof (guint));
  DispatchDeadlines *queue;
  g_autofree Item *items = NULL;
  gint64 now = g_get_monotonic_time ();

  g_test_summary ("a callback may remove another due deadline (it does not "
                  "fire) and set its own again, even to a time already "
                  "past (it fires again, in order)");

  queue = _dispatch_deadlines_ref_for_context (context);
  items = make_items (queue, fired, 3);

  /* all three due at once: 0 fires first, removes 1 and re-arms itself
   * in the past, so it is the earliest again; then 2 */
  items[0].remove = &items[1].deadline;
  items[0].rearm = now - 1000;
  _dispatch_deadlines_set (queue, &items[0].deadline, now + 1000);
  _dispatch_deadlines_set (queue, &items[1].deadline, now + 2000);
  _dispatch_deadlines_set (queue, &items[2].deadline, now + 3000);

  g_usleep (5000);  /* all three due before the first iteration */
  run_until (context, fired, 3);

  g_assert_cmpuint (fired->len, ==, 3);
  g_assert_cmpuint (g_array_index (fired, guint, 0), ==, 0);
  g_assert_cmpuint (g_array_index (fired, guint, 1), ==, 0);
  g_assert_cmpuint (g_array_index (fired, guint, 2), ==, 2);
  g_assert_cmpuint (items[1].deadline.index, ==, DISPATCH_DEADLINE_IDLE);

  _dispatch_deadlines_unref (queue);
}

static void
test_deadlines_bounded (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GArray) fired = g_array_new (FALSE, FALSE, sizeof (guint));
  DispatchDeadlines *queue = _dispatch_deadlines_ref_for_context (context);
  g_autofree Item *items = make_items (queue, fired, 1);

  g_test_summary ("a callback that keeps setting its deadline in the past "
                  "does not keep the source dispatching: one run fires at "
                  "most what was queued when it began");

  items[0].rearm = g_get_monotonic_time () - 1000;
  items[0].forever = TRUE;
  _dispatch_deadlines_set (queue, &items[0].deadline, g_get_monotonic_time () - 1000);

  g_assert_true (g_main_context_iteration (context, FALSE));
  g_assert_cmpuint (fired->len, ==, 1);
  g_assert_true (g_main_context_iteration (context, FALSE));
  g_assert_cmpuint (fired->len, ==, 2);

  /* removing leaves the ready time: one run for nothing, then quiet */
  _dispatch_deadlines_remove (queue, &items[0].deadline);
  g_main_context_iteration (context, FALSE);
  g_assert_false (g_main_context_iteration (context, FALSE));
  g_assert_cmpuint (fired->len, ==, 2);

  _dispatch_deadlines_unref (queue);
}

typedef struct
{
  DispatchDeadlines *queue;
  GMainContext      *context;
  DispatchDeadline   outer;
  DispatchDeadline   inner;
  gboolean           inner_fired;
  gboolean           inner_fired_while_nested;
  gboolean           timed_out;
} Nested;

static void
nested_inner_fired (gpointer data)
{
  Nested *nested = data;

  nested->inner_fired = TRUE;
}

/* The first deadline's callback runs a nested main loop (as a handler's
 * terminal callback may) until the second one fires, or 5 s. */
static void
nested_outer_fired (gpointer data)
{
  Nested *nested = data;
  GSource *timeout = g_timeout_source_new_seconds (5);

  _dispatch_deadlines_set (nested->queue, &nested->inner, g_get_monotonic_time () + 10000);

  g_source_set_callback (timeout, timeout_cb, &nested->timed_out, NULL);
  g_source_attach (timeout, nested->context);
  while (!nested->inner_fired && !nested->timed_out)
    g_main_context_iteration (nested->context, TRUE);
  g_source_destroy (timeout);
  g_source_unref (timeout);

  nested->inner_fired_while_nested = nested->inner_fired;
}

static void
test_deadlines_nested_loop (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  Nested nested = { 0 };
  gboolean timed_out = FALSE;
  GSource *timeout = g_timeout_source_new_seconds (10);

  g_test_summary ("a callback that runs a nested main loop does not stop the "
                  "other deadlines of its context: they fire inside it");

  nested.context = context;
  nested.queue = _dispatch_deadlines_ref_for_context (context);
  nested.outer = DISPATCH_DEADLINE_INIT (nested_outer_fired, &nested);
  nested.inner = DISPATCH_DEADLINE_INIT (nested_inner_fired, &nested);
  _dispatch_deadlines_set (nested.queue, &nested.outer, g_get_monotonic_time ());

  g_source_set_callback (timeout, timeout_cb, &timed_out, NULL);
  g_source_attach (timeout, context);
  while (!nested.inner_fired && !timed_out)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (timeout);
  g_source_unref (timeout);

  g_assert_false (timed_out);
  g_assert_false (nested.timed_out);
  g_assert_true (nested.inner_fired_while_nested);

  _dispatch_deadlines_unref (nested.queue);
}

static void
test_deadlines_per_context (void)
{
  g_autoptr(GMainContext) a = g_main_context_new ();
  g_autoptr(GMainContext) b = g_main_context_new ();
  DispatchDeadlines *qa1 = _dispatch_deadlines_ref_for_context (a);
  DispatchDeadlines *qa2 = _dispatch_deadlines_ref_for_context (a);
  DispatchDeadlines *qb = _dispatch_deadlines_ref_for_context (b);
  g_autoptr(GArray) fired = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autofree Item *items = make_items (qb, fired, 1);

  g_test_summary ("one queue per context, shared by its users; a deadline "
                  "fires from its own context only");

  g_assert_true (qa1 == qa2);
  g_assert_true (qa1 != qb);

  _dispatch_deadlines_set (qb, &items[0].deadline, g_get_monotonic_time ());
  g_usleep (2000);
  g_assert_false (g_main_context_iteration (a, FALSE));
  g_assert_cmpuint (fired->len, ==, 0);
  run_until (b, fired, 1);

  _dispatch_deadlines_unref (qa1);
  _dispatch_deadlines_unref (qa2);
  _dispatch_deadlines_unref (qb);
}

static void
test_deadlines_context_gone (void)
{
  GMainContext *context = g_main_context_new ();
  DispatchDeadlines *queue = _dispatch_deadlines_ref_for_context (context);
  DispatchDeadlines *again;

  g_test_summary ("a context freed after its queue's users let go takes the "
                  "queue with it; a new context gets a new queue");

  _dispatch_deadlines_unref (queue);
  g_main_context_unref (context);

  context = g_main_context_new ();
  again = _dispatch_deadlines_ref_for_context (context);
  g_assert_nonnull (again);
  _dispatch_deadlines_unref (again);
  g_main_context_unref (context);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/deadlines/order", test_deadlines_order);
  g_test_add_func ("/deadlines/callbacks", test_deadlines_callbacks);
  g_test_add_func ("/deadlines/bounded", test_deadlines_bounded);
  g_test_add_func ("/deadlines/nested-loop", test_deadlines_nested_loop);
  g_test_add_func ("/deadlines/per-context", test_deadlines_per_context);
  g_test_add_func ("/deadlines/context-gone", test_deadlines_context_gone);

  return g_test_run ();
}
