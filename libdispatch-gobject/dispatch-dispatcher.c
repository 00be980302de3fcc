/* dispatch-dispatcher.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * DispatchDispatcher:
 *
 * Something requests can be dispatched to: the seam shared by
 * [class@Dispatch.Agent], mock dispatchers and interceptor chains
 * (undici's `Dispatcher`).
 *
 * [method@Dispatch.Dispatcher.dispatch] starts a request and returns its
 * [class@Dispatch.RequestController] at once. It never fails
 * synchronously: every failure, validation included, reaches the handler
 * as `on_response_error`, from the main loop, never from inside
 * `dispatch()`.
 *
 * [method@Dispatch.Dispatcher.close_async] stops accepting requests and
 * completes when those in flight have finished;
 * [method@Dispatch.Dispatcher.destroy_async] fails those in flight. Both
 * are idempotent and may be called again (or concurrently) to join the
 * first call. An implementation that only provides `dispatch` gets
 * `close` and `destroy` that complete at once (GJS cannot implement
 * asynchronous virtual methods).
 *
 * Since: 0.1
 */

#include "config.h"

#include "dispatch-dispatcher.h"

G_DEFINE_INTERFACE (DispatchDispatcher, dispatch_dispatcher, G_TYPE_OBJECT)

/* Defaults for dispatchers with nothing to wind down (a mock, an
 * interceptor written in a binding that cannot implement async vfuncs):
 * closing and destroying complete at once, from the main loop. */
static void
default_close_async (DispatchDispatcher  *self,
                     GCancellable        *cancellable,
                     GAsyncReadyCallback  callback,
                     gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, default_close_async);
  g_task_return_boolean (task, TRUE);
}

static void
default_destroy_async (DispatchDispatcher  *self,
                       const GError        *reason,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, default_destroy_async);
  g_task_return_boolean (task, TRUE);
}

static gboolean
default_finish (DispatchDispatcher  *self,
                GAsyncResult        *result,
                GError             **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
dispatch_dispatcher_default_init (DispatchDispatcherInterface *iface)
{
  iface->close_async = default_close_async;
  iface->close_finish = default_finish;
  iface->destroy_async = default_destroy_async;
  iface->destroy_finish = default_finish;
}

/**
 * dispatch_dispatcher_dispatch:
 * @self: a #DispatchDispatcher
 * @request: what to send
 * @handler: what receives the response
 *
 * Dispatches @request; @handler receives its callbacks in the thread-default
 * main context of the calling thread (the dispatch context), which must be
 * iterated for the request to progress.
 *
 * Returns: (transfer full): the controller of the new request
 *
 * Since: 0.1
 */
DispatchRequestController *
dispatch_dispatcher_dispatch (DispatchDispatcher *self,
                              DispatchRequest    *request,
                              DispatchHandler    *handler)
{
  g_return_val_if_fail (DISPATCH_IS_DISPATCHER (self), NULL);
  g_return_val_if_fail (DISPATCH_IS_REQUEST (request), NULL);
  g_return_val_if_fail (DISPATCH_IS_HANDLER (handler), NULL);

  g_return_val_if_fail (DISPATCH_DISPATCHER_GET_IFACE (self)->dispatch != NULL, NULL);

  return DISPATCH_DISPATCHER_GET_IFACE (self)->dispatch (self, request, handler);
}

/**
 * dispatch_dispatcher_close_async:
 * @self: a #DispatchDispatcher
 * @cancellable: (nullable): a #GCancellable (stops waiting, not closing)
 * @callback: (scope async) (nullable): called when every in-flight request
 *   finished
 * @user_data: data for @callback
 *
 * Stops accepting requests — later dispatches fail with
 * %DISPATCH_ERROR_CLOSED — and completes once the requests in flight have
 * finished. @callback runs in the thread-default main context of the
 * caller.
 *
 * Since: 0.1
 */
void
dispatch_dispatcher_close_async (DispatchDispatcher  *self,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  g_return_if_fail (DISPATCH_IS_DISPATCHER (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  DISPATCH_DISPATCHER_GET_IFACE (self)->close_async (self, cancellable, callback, user_data);
}

/**
 * dispatch_dispatcher_close_finish:
 * @self: a #DispatchDispatcher
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Completes [method@Dispatch.Dispatcher.close_async]. Fails with
 * %DISPATCH_ERROR_DESTROYED if the dispatcher was destroyed.
 *
 * Returns: %TRUE once closed
 *
 * Since: 0.1
 */
gboolean
dispatch_dispatcher_close_finish (DispatchDispatcher  *self,
                                  GAsyncResult        *result,
                                  GError             **error)
{
  g_return_val_if_fail (DISPATCH_IS_DISPATCHER (self), FALSE);
  g_return_val_if_fail (G_IS_ASYNC_RESULT (result), FALSE);

  return DISPATCH_DISPATCHER_GET_IFACE (self)->close_finish (self, result, error);
}

/**
 * dispatch_dispatcher_destroy_async:
 * @self: a #DispatchDispatcher
 * @reason: (nullable): the error in-flight requests fail with, or %NULL for
 *   %DISPATCH_ERROR_DESTROYED
 * @cancellable: (nullable): a #GCancellable (stops waiting, not destroying)
 * @callback: (scope async) (nullable): called when every request is torn down
 * @user_data: data for @callback
 *
 * Fails every in-flight request with @reason (delivered after this call
 * returns), refuses new ones with %DISPATCH_ERROR_DESTROYED and completes
 * once all are torn down. @callback runs in the thread-default main
 * context of the caller.
 *
 * Since: 0.1
 */
void
dispatch_dispatcher_destroy_async (DispatchDispatcher  *self,
                                   const GError        *reason,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  g_return_if_fail (DISPATCH_IS_DISPATCHER (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  DISPATCH_DISPATCHER_GET_IFACE (self)->destroy_async (self, reason, cancellable, callback, user_data);
}

/**
 * dispatch_dispatcher_destroy_finish:
 * @self: a #DispatchDispatcher
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Completes [method@Dispatch.Dispatcher.destroy_async].
 *
 * Returns: %TRUE once destroyed
 *
 * Since: 0.1
 */
gboolean
dispatch_dispatcher_destroy_finish (DispatchDispatcher  *self,
                                    GAsyncResult        *result,
                                    GError             **error)
{
  g_return_val_if_fail (DISPATCH_IS_DISPATCHER (self), FALSE);
  g_return_val_if_fail (G_IS_ASYNC_RESULT (result), FALSE);

  return DISPATCH_DISPATCHER_GET_IFACE (self)->destroy_finish (self, result, error);
}
