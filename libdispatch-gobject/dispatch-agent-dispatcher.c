/* dispatch-agent-dispatcher.c — DispatchAgent's DispatchDispatcher
 * implementation: dispatch, close and destroy
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <libsoup/soup.h>

#include "dispatch-agent-private.h"
#include "dispatch-error.h"
#include "dispatch-exchange-private.h"
#include "dispatch-request-controller-private.h"

/* Lifecycle */

static void
abort_session_cb (gpointer data)
{
  DispatchAgent *self = data;

  soup_session_abort (self->session);
}

static void
return_tasks (GPtrArray *tasks)
{
  if (tasks == NULL)
    return;

  for (guint i = 0; i < tasks->len; i++)
    {
      GTask *task = g_ptr_array_index (tasks, i);
      GSource *cancelled = g_task_get_task_data (task);

      if (cancelled != NULL)
        g_source_destroy (cancelled);
      g_task_return_boolean (task, TRUE);
    }

  g_ptr_array_unref (tasks);
}

/* A waiter's cancellable fired: it stops waiting (the agent goes on
 * closing). Being in the list is the token that the task returns once. */
static gboolean
waiter_cancelled_cb (GCancellable *cancellable,
                     gpointer      user_data)
{
  GTask *task = user_data;
  DispatchAgent *self = g_task_get_source_object (task);
  gboolean removed = FALSE;

  g_mutex_lock (&self->mutex);
  if (self->close_tasks != NULL)
    removed = g_ptr_array_remove (self->close_tasks, task);
  if (!removed && self->destroy_tasks != NULL)
    removed = g_ptr_array_remove (self->destroy_tasks, task);
  g_mutex_unlock (&self->mutex);

  if (removed)
    g_task_return_error_if_cancelled (task);

  return G_SOURCE_REMOVE;
}

/* With the mutex held: @task completes when nothing is in flight. */
static void
add_waiter (GPtrArray **waiters,
            GTask      *task)
{
  GCancellable *cancellable = g_task_get_cancellable (task);

  if (*waiters == NULL)
    *waiters = g_ptr_array_new_with_free_func (g_object_unref);
  g_ptr_array_add (*waiters, g_object_ref (task));

  if (cancellable != NULL)
    {
      g_autoptr(GSource) cancelled = g_cancellable_source_new (cancellable);

      g_task_set_task_data (task, g_source_ref (cancelled), (GDestroyNotify) g_source_unref);
      g_task_attach_source (task, cancelled, (GSourceFunc) waiter_cancelled_cb);
    }
}

/* Dispatch context of the exchange: it delivered its terminal callback. */
static void
exchange_done_cb (DispatchExchange *exchange,
                  GObject          *owner)
{
  DispatchAgent *self = DISPATCH_AGENT (owner);
  GList *link = _dispatch_exchange_get_link (exchange);
  GPtrArray *close_tasks = NULL;
  GPtrArray *destroy_tasks = NULL;

  g_mutex_lock (&self->mutex);
  if (link->prev != NULL || link->next != NULL || self->in_flight.head == link)
    g_queue_unlink (&self->in_flight, link);
  if (g_queue_is_empty (&self->in_flight))
    {
      close_tasks = g_steal_pointer (&self->close_tasks);
      destroy_tasks = g_steal_pointer (&self->destroy_tasks);
    }
  g_mutex_unlock (&self->mutex);

  if (destroy_tasks != NULL)
    g_main_context_invoke_full (self->context, G_PRIORITY_DEFAULT, G_SOURCE_FUNC (abort_session_cb),
                                g_object_ref (self), g_object_unref);

  return_tasks (close_tasks);
  return_tasks (destroy_tasks);
}

static DispatchRequestController *
dispatch_agent_dispatch (DispatchDispatcher *dispatcher,
                         DispatchRequest    *request,
                         DispatchHandler    *handler)
{
  DispatchAgent *self = DISPATCH_AGENT (dispatcher);
  g_autoptr(GMainContext) context = g_main_context_ref_thread_default ();
  DispatchExchange *exchange;
  GError *rejection = NULL;

  exchange = _dispatch_exchange_new (&self->config, request, handler, context,
                                     exchange_done_cb, G_OBJECT (self));

  g_mutex_lock (&self->mutex);
  if (self->destroyed)
    rejection = g_error_new_literal (DISPATCH_ERROR, DISPATCH_ERROR_DESTROYED,
                                     "the agent was destroyed");
  else if (self->closed)
    rejection = g_error_new_literal (DISPATCH_ERROR, DISPATCH_ERROR_CLOSED,
                                     "the agent was closed");
  else if (self->config_error != NULL)
    rejection = g_error_copy (self->config_error);
  else
    g_queue_push_tail_link (&self->in_flight, _dispatch_exchange_get_link (exchange));
  g_mutex_unlock (&self->mutex);

  if (rejection != NULL)
    _dispatch_exchange_reject (exchange, rejection);

  _dispatch_exchange_start (exchange);

  return g_object_ref (_dispatch_exchange_get_controller (exchange));
}

static void
dispatch_agent_close_async (DispatchDispatcher  *dispatcher,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  DispatchAgent *self = DISPATCH_AGENT (dispatcher);
  g_autoptr(GTask) task = NULL;
  gboolean destroyed;
  gboolean newly_closed;
  gboolean idle;

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, dispatch_agent_close_async);

  g_mutex_lock (&self->mutex);
  destroyed = self->destroyed;
  newly_closed = !self->closed;
  g_atomic_int_set (&self->closed, TRUE);
  idle = g_queue_is_empty (&self->in_flight);
  if (!destroyed && !idle)
    {
      add_waiter (&self->close_tasks, task);
    }
  g_mutex_unlock (&self->mutex);

  if (newly_closed)
    _dispatch_agent_notify_closed (self);

  if (destroyed)
    g_task_return_new_error (task, DISPATCH_ERROR, DISPATCH_ERROR_DESTROYED,
                             "the agent was destroyed");
  else if (idle)
    g_task_return_boolean (task, TRUE);
}

static gboolean
dispatch_agent_close_finish (DispatchDispatcher  *dispatcher,
                             GAsyncResult        *result,
                             GError             **error)
{
  g_return_val_if_fail (g_task_is_valid (result, dispatcher), FALSE);
  g_return_val_if_fail (g_async_result_is_tagged (result, dispatch_agent_close_async), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
dispatch_agent_destroy_async (DispatchDispatcher  *dispatcher,
                              const GError        *reason,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  DispatchAgent *self = DISPATCH_AGENT (dispatcher);
  g_autoptr(GTask) task = NULL;
  g_autoptr(GPtrArray) controllers = NULL;
  gboolean newly_destroyed;
  gboolean newly_closed;
  gboolean idle;

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, dispatch_agent_destroy_async);

  controllers = g_ptr_array_new_with_free_func (g_object_unref);

  g_mutex_lock (&self->mutex);
  newly_destroyed = !self->destroyed;
  newly_closed = !self->closed;
  g_atomic_int_set (&self->destroyed, TRUE);
  g_atomic_int_set (&self->closed, TRUE);
  if (newly_destroyed)
    self->destroy_reason = reason ? g_error_copy (reason)
                                  : g_error_new_literal (DISPATCH_ERROR, DISPATCH_ERROR_DESTROYED,
                                                         "the agent was destroyed");
  for (GList *l = self->in_flight.head; l != NULL; l = l->next)
    g_ptr_array_add (controllers, g_object_ref (_dispatch_exchange_get_controller (l->data)));
  idle = g_queue_is_empty (&self->in_flight);
  if (!idle)
    {
      add_waiter (&self->destroy_tasks, task);
    }
  g_mutex_unlock (&self->mutex);

  /* Each request fails in its own dispatch context, from the main loop:
   * after this function has returned. */
  for (guint i = 0; i < controllers->len; i++)
    _dispatch_request_controller_fail (g_ptr_array_index (controllers, i),
                                       g_error_copy (self->destroy_reason));

  g_object_freeze_notify (G_OBJECT (self));
  if (newly_closed)
    _dispatch_agent_notify_closed (self);
  if (newly_destroyed)
    _dispatch_agent_notify_destroyed (self);
  g_object_thaw_notify (G_OBJECT (self));

  if (idle)
    {
      if (newly_destroyed)
        g_main_context_invoke_full (self->context, G_PRIORITY_DEFAULT,
                                    G_SOURCE_FUNC (abort_session_cb),
                                    g_object_ref (self), g_object_unref);
      g_task_return_boolean (task, TRUE);
    }
}

static gboolean
dispatch_agent_destroy_finish (DispatchDispatcher  *dispatcher,
                               GAsyncResult        *result,
                               GError             **error)
{
  g_return_val_if_fail (g_task_is_valid (result, dispatcher), FALSE);
  g_return_val_if_fail (g_async_result_is_tagged (result, dispatch_agent_destroy_async), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

void
dispatch_agent_dispatcher_iface_init (DispatchDispatcherInterface *iface)
{
  iface->dispatch = dispatch_agent_dispatch;
  iface->close_async = dispatch_agent_close_async;
  iface->close_finish = dispatch_agent_close_finish;
  iface->destroy_async = dispatch_agent_destroy_async;
  iface->destroy_finish = dispatch_agent_destroy_finish;
}
