/* dispatch-request-controller.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * DispatchRequestController:
 *
 * Steers one dispatched request: abort, pause, resume (undici's
 * `DispatchController`).
 *
 * Every method is safe to call from any thread. The calls flip atomic
 * state, cancel the request's [class@Gio.Cancellable], wake threads
 * blocked in [method@Dispatch.RequestController.wait_if_paused] and hand
 * the real work to the request's dispatch context, where the handler is
 * called and the [property@Dispatch.RequestController:paused] and
 * [property@Dispatch.RequestController:aborted] properties notify.
 *
 * Pausing is real backpressure: while paused, nothing is read from the
 * socket and no `on_response_data` is delivered, so the kernel's socket
 * buffers fill and TCP flow control holds the server back. Memory stays
 * flat however large the response.
 *
 * Aborting is final: the first call wins; the request fails with the
 * given reason (or %DISPATCH_ERROR_ABORTED), delivered to the handler from
 * the main loop — never from inside
 * [method@Dispatch.RequestController.abort] — and the connection is
 * closed rather than reused.
 *
 * Since: 0.1
 */

#include "config.h"

#include "dispatch-error.h"
#include "dispatch-request-controller-private.h"

struct _DispatchRequestController
{
  GObject                   parent_instance;

  GMainContext             *context;
  GCancellable             *cancellable;  /* made on first request; mutex */
  GSource                  *source;       /* made on first need; mutex */
  DispatchControllerDriver  driver;
  gpointer                  driver_data;

  GMutex                    mutex;
  GCond                     cond;
  /* threads in wait_if_paused(); mutex. GLib's g_cond_broadcast() is a
   * futex system call even with nobody waiting: skip it then. */
  guint                     waiters;
  /* set once (first wins), freed at finalize: abort/destroy/timeout */
  GError                   *pending_error;
  /* the abort reason as given (or the default ABORTED error) */
  GError                   *reason;

  int                       paused;    /* atomic */
  int                       aborted;   /* atomic */
  int                       finished;  /* atomic */
  int                       kicked;    /* atomic */
  int                       attached;  /* atomic; source made, set under mutex */

  /* dispatch context only */
  guint                     notified_paused : 1;
  guint                     notified_aborted : 1;
};

G_DEFINE_FINAL_TYPE (DispatchRequestController, dispatch_request_controller, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_PAUSED,
  PROP_ABORTED,
  PROP_CANCELLABLE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
sync_notify (DispatchRequestController *self,
             gboolean                   paused,
             gboolean                   aborted)
{
  if (paused == self->notified_paused && aborted == self->notified_aborted)
    return;

  g_object_freeze_notify (G_OBJECT (self));
  if (paused != self->notified_paused)
    {
      self->notified_paused = paused;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_PAUSED]);
    }
  if (aborted != self->notified_aborted)
    {
      self->notified_aborted = aborted;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ABORTED]);
    }
  g_object_thaw_notify (G_OBJECT (self));
}

/* The source's callback; its data is the controller (a reference). */
static gboolean
controller_source_cb (gpointer user_data)
{
  DispatchRequestController *self = user_data;
  gboolean paused;
  gboolean aborted;

  g_object_ref (self);

  paused = g_atomic_int_get (&self->paused);
  aborted = g_atomic_int_get (&self->aborted);

  if (self->driver != NULL)
    self->driver (self->driver_data);

  sync_notify (self, paused, aborted);

  g_object_unref (self);

  return G_SOURCE_CONTINUE;
}

/* The controller's source: one per request that needs it, on the dispatch
 * context. Its ready time is 0 after a kick; the request's timers are
 * elsewhere (dispatch-deadlines.c). The source is used through the
 * argument here, not self->source, which another thread wrote (GLib's
 * context lock orders that write before this dispatch, but a race
 * detector cannot see it). */
static gboolean
controller_source_dispatch (GSource     *source,
                            GSourceFunc  callback,
                            gpointer     user_data)
{
  DispatchRequestController *self = user_data;

  g_source_set_ready_time (source, -1);
  g_atomic_int_set (&self->kicked, 0);

  callback (user_data);

  /* kicked again while the driver ran: go on at once */
  if (g_atomic_int_get (&self->kicked))
    g_source_set_ready_time (source, 0);

  return G_SOURCE_CONTINUE;
}

static GSourceFuncs controller_source_funcs = {
  .dispatch = controller_source_dispatch,
};

/* g_source_attach(), in a frame of its own: ThreadSanitizer lists a
 * function by the calls it makes into instrumented code, so this makes
 * attach_source_locked() appear in its reports, where tests/tsan.supp
 * names it (GLib's context lock is inside libglib, invisible to TSan). */
static G_GNUC_NO_INLINE void
attach_to_context (GSource      *source,
                   GMainContext *context)
{
  g_source_attach (source, context);
}

/* With the mutex held, from any thread (g_source_attach() is thread-safe):
 * the source, ready at once. */
static void
attach_source_locked (DispatchRequestController *self)
{
  /* The source holds a reference on the controller until the request
   * finishes and the source is destroyed. */
  self->source = g_source_new (&controller_source_funcs, sizeof (GSource));
  g_source_set_static_name (self->source, "[dispatch] request");
  g_source_set_callback (self->source, controller_source_cb,
                         g_object_ref (self), g_object_unref);
  g_source_set_ready_time (self->source, 0);
  attach_to_context (self->source, self->context);
  g_atomic_int_set (&self->attached, 1);
}

/* Any thread: have the driver run from the controller's source soon.
 *
 * The source is made and attached to the dispatch context on first need:
 * most requests end without any kick (pause, resume, abort from another
 * thread, a rejected start, a yield) and never pay for one, and one
 * attached from the dispatch context's own thread does not wake its poll
 * (a ready-time change on an attached source always does: an eventfd
 * write, a read and one more loop iteration). */
static void
kick (DispatchRequestController *self)
{
  g_atomic_int_set (&self->kicked, 1);

  if (g_atomic_int_get (&self->attached))
    {
      g_source_set_ready_time (self->source, 0);
      return;
    }

  g_mutex_lock (&self->mutex);
  if (self->attached)
    g_source_set_ready_time (self->source, 0);
  else if (!g_atomic_int_get (&self->finished))
    attach_source_locked (self);
  g_mutex_unlock (&self->mutex);
}

/* With the mutex held. */
static inline void
broadcast_locked (DispatchRequestController *self)
{
  if (self->waiters > 0)
    g_cond_broadcast (&self->cond);
}

static void
broadcast (DispatchRequestController *self)
{
  g_mutex_lock (&self->mutex);
  broadcast_locked (self);
  g_mutex_unlock (&self->mutex);
}

static void
dispatch_request_controller_finalize (GObject *object)
{
  DispatchRequestController *self = (DispatchRequestController *) object;

  if (self->source != NULL)
    {
      g_source_destroy (self->source);
      g_source_unref (self->source);
    }
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_error (&self->pending_error);
  g_clear_error (&self->reason);
  g_mutex_clear (&self->mutex);
  g_cond_clear (&self->cond);

  G_OBJECT_CLASS (dispatch_request_controller_parent_class)->finalize (object);
}

static void
dispatch_request_controller_get_property (GObject    *object,
                                          guint       prop_id,
                                          GValue     *value,
                                          GParamSpec *pspec)
{
  DispatchRequestController *self = DISPATCH_REQUEST_CONTROLLER (object);

  switch (prop_id)
    {
    case PROP_PAUSED:
      g_value_set_boolean (value, dispatch_request_controller_get_paused (self));
      break;

    case PROP_ABORTED:
      g_value_set_boolean (value, dispatch_request_controller_get_aborted (self));
      break;

    case PROP_CANCELLABLE:
      g_value_set_object (value, dispatch_request_controller_get_cancellable (self));
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dispatch_request_controller_class_init (DispatchRequestControllerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = dispatch_request_controller_finalize;
  object_class->get_property = dispatch_request_controller_get_property;

  /**
   * DispatchRequestController:paused:
   *
   * Whether the request is paused. Notifies in the dispatch context.
   *
   * Since: 0.1
   */
  properties[PROP_PAUSED] =
    g_param_spec_boolean ("paused", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * DispatchRequestController:aborted:
   *
   * Whether [method@Dispatch.RequestController.abort] was called before
   * the request finished. Notifies in the dispatch context.
   *
   * Since: 0.1
   */
  properties[PROP_ABORTED] =
    g_param_spec_boolean ("aborted", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * DispatchRequestController:cancellable:
   *
   * A cancellable that is cancelled when the request is aborted, times
   * out or is destroyed; pass it on to work done for the request.
   *
   * Since: 0.1
   */
  properties[PROP_CANCELLABLE] =
    g_param_spec_object ("cancellable", NULL, NULL, G_TYPE_CANCELLABLE,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
dispatch_request_controller_init (DispatchRequestController *self)
{
  g_mutex_init (&self->mutex);
  g_cond_init (&self->cond);
}

DispatchRequestController *
_dispatch_request_controller_new (GMainContext             *context,
                                  DispatchControllerDriver  driver,
                                  gpointer                  driver_data)
{
  DispatchRequestController *self;

  self = g_object_new (DISPATCH_TYPE_REQUEST_CONTROLLER, NULL);
  self->context = g_main_context_ref (context);
  self->driver = driver;
  self->driver_data = driver_data;

  return self;
}

/* Dispatch context only: run the driver from the controller's source as
 * soon as possible (a rejected start, a yield). */
void
_dispatch_request_controller_wake (DispatchRequestController *self)
{
  kick (self);
}

/* With the mutex held: record @error (taken) as the failure unless there
 * is one already or the request has ended. Returns TRUE if recorded, with
 * *cancellable set to the public cancellable to cancel, if any. */
static gboolean
record_failure_locked (DispatchRequestController  *self,
                       GError                     *error,
                       GCancellable              **cancellable)
{
  if (self->pending_error != NULL || g_atomic_int_get (&self->finished))
    {
      g_error_free (error);
      return FALSE;
    }

  g_atomic_pointer_set (&self->pending_error, error);
  *cancellable = self->cancellable ? g_object_ref (self->cancellable) : NULL;
  broadcast_locked (self);

  return TRUE;
}

/* Without the mutex: cancel and wake the dispatch context. */
static void
announce_failure (DispatchRequestController *self,
                  GCancellable              *cancellable)
{
  /* "cancelled" handlers may call back into the controller */
  if (cancellable != NULL)
    {
      g_cancellable_cancel (cancellable);
      g_object_unref (cancellable);
    }
  kick (self);
}

/* Any thread: record why the request must fail (first caller wins), cancel
 * its cancellable, wake waiters and kick the dispatch context. Takes
 * ownership of @error. Returns TRUE if this call won. */
gboolean
_dispatch_request_controller_fail (DispatchRequestController *self,
                                   GError                    *error)
{
  GCancellable *cancellable = NULL;
  gboolean won;

  g_mutex_lock (&self->mutex);
  won = record_failure_locked (self, error, &cancellable);
  g_mutex_unlock (&self->mutex);

  if (won)
    announce_failure (self, cancellable);

  return won;
}

const GError *
_dispatch_request_controller_get_pending_error (DispatchRequestController *self)
{
  return g_atomic_pointer_get (&self->pending_error);
}

/* Dispatch context only: the terminal callback is about to be delivered;
 * from here on abort(), pause() and resume() change nothing. */
void
_dispatch_request_controller_finish (DispatchRequestController *self)
{
  g_mutex_lock (&self->mutex);
  g_atomic_int_set (&self->finished, 1);
  broadcast_locked (self);
  g_mutex_unlock (&self->mutex);

  /* The source will not run again: notify what it would have. */
  sync_notify (self, g_atomic_int_get (&self->paused), g_atomic_int_get (&self->aborted));

  /* Releases the source's reference on the controller. No source can be
   * made any more (finished is set, under the mutex). */
  if (g_atomic_int_get (&self->attached))
    g_source_destroy (self->source);
}

/**
 * dispatch_request_controller_abort:
 * @self: a #DispatchRequestController
 * @reason: (nullable): the error to fail the request with, or %NULL for
 *   %DISPATCH_ERROR_ABORTED
 *
 * Aborts the request in whatever phase it is: queued, connecting, waiting
 * for the response head, streaming the body or paused. The first call
 * wins; later calls, and calls after the request finished, do nothing.
 *
 * The handler's `on_response_error` receives @reason (a copy) from the
 * dispatch context's main loop, soon after this call returns; the
 * connection is closed, never reused. Safe from any thread.
 *
 * Since: 0.1
 */
void
dispatch_request_controller_abort (DispatchRequestController *self,
                                   const GError              *reason)
{
  GCancellable *cancellable = NULL;
  GError *error;
  gboolean won;

  g_return_if_fail (DISPATCH_IS_REQUEST_CONTROLLER (self));

  if (g_atomic_int_get (&self->finished))
    return;

  if (reason != NULL)
    error = g_error_copy (reason);
  else
    error = g_error_new_literal (DISPATCH_ERROR, DISPATCH_ERROR_ABORTED,
                                 "request aborted");

  /* One critical section, like _finish(): an abort racing the end of the
   * request either happens wholly before it or not at all. */
  g_mutex_lock (&self->mutex);
  if (g_atomic_int_get (&self->finished) ||
      !g_atomic_int_compare_and_exchange (&self->aborted, 0, 1))
    {
      g_mutex_unlock (&self->mutex);
      g_error_free (error);
      return;
    }
  self->reason = g_error_copy (error);
  won = record_failure_locked (self, error, &cancellable);
  g_mutex_unlock (&self->mutex);

  if (won)
    announce_failure (self, cancellable);
  else
    kick (self);  /* a timeout or destroy won; still notify :aborted */
}

/**
 * dispatch_request_controller_pause:
 * @self: a #DispatchRequestController
 *
 * Pauses the response body: once the current callback returns, nothing
 * more is read from the socket and no `on_response_data` is delivered
 * until [method@Dispatch.RequestController.resume]. Pausing before the
 * response head arrives still delivers `on_response_start`, then stops.
 * The body timeout does not run while paused; the whole-request timeout
 * does. Idempotent; safe from any thread.
 *
 * Since: 0.1
 */
void
dispatch_request_controller_pause (DispatchRequestController *self)
{
  g_return_if_fail (DISPATCH_IS_REQUEST_CONTROLLER (self));

  if (g_atomic_int_compare_and_exchange (&self->paused, 0, 1) &&
      !g_atomic_int_get (&self->finished))
    kick (self);
}

/**
 * dispatch_request_controller_resume:
 * @self: a #DispatchRequestController
 *
 * Resumes a paused request where it stopped, and wakes threads blocked in
 * [method@Dispatch.RequestController.wait_if_paused]. Idempotent; safe
 * from any thread.
 *
 * Since: 0.1
 */
void
dispatch_request_controller_resume (DispatchRequestController *self)
{
  g_return_if_fail (DISPATCH_IS_REQUEST_CONTROLLER (self));

  if (g_atomic_int_compare_and_exchange (&self->paused, 1, 0))
    {
      broadcast (self);
      if (!g_atomic_int_get (&self->finished))
        kick (self);
    }
}

/**
 * dispatch_request_controller_get_paused:
 * @self: a #DispatchRequestController
 *
 * Gets whether the request is paused.
 *
 * Returns: whether the request is paused
 *
 * Since: 0.1
 */
gboolean
dispatch_request_controller_get_paused (DispatchRequestController *self)
{
  g_return_val_if_fail (DISPATCH_IS_REQUEST_CONTROLLER (self), FALSE);

  return g_atomic_int_get (&self->paused);
}

/**
 * dispatch_request_controller_get_aborted:
 * @self: a #DispatchRequestController
 *
 * Gets whether [method@Dispatch.RequestController.abort] took effect.
 *
 * Returns: whether [method@Dispatch.RequestController.abort] took effect
 *
 * Since: 0.1
 */
gboolean
dispatch_request_controller_get_aborted (DispatchRequestController *self)
{
  g_return_val_if_fail (DISPATCH_IS_REQUEST_CONTROLLER (self), FALSE);

  return g_atomic_int_get (&self->aborted);
}

/**
 * dispatch_request_controller_get_reason:
 * @self: a #DispatchRequestController
 *
 * The error the request was aborted with: the reason given to
 * [method@Dispatch.RequestController.abort], or a %DISPATCH_ERROR_ABORTED
 * error if none was given.
 *
 * Returns: (nullable) (transfer none): the abort reason, or %NULL if the
 *   request was not aborted
 *
 * Since: 0.1
 */
const GError *
dispatch_request_controller_get_reason (DispatchRequestController *self)
{
  const GError *reason;

  g_return_val_if_fail (DISPATCH_IS_REQUEST_CONTROLLER (self), NULL);

  g_mutex_lock (&self->mutex);
  reason = self->reason;
  g_mutex_unlock (&self->mutex);

  return reason;
}

/**
 * dispatch_request_controller_get_cancellable:
 * @self: a #DispatchRequestController
 *
 * Gets a cancellable cancelled when the request is
 *   aborted, times out or is destroyed.
 *
 * Returns: (transfer none): a cancellable cancelled when the request is
 *   aborted, times out or is destroyed
 *
 * Since: 0.1
 */
GCancellable *
dispatch_request_controller_get_cancellable (DispatchRequestController *self)
{
  GCancellable *cancellable;
  gboolean cancel = FALSE;

  g_return_val_if_fail (DISPATCH_IS_REQUEST_CONTROLLER (self), NULL);

  /* Made on demand: the transport does not need it, so most requests never
   * pay for one. One that is asked for after the request failed is born
   * cancelled. */
  g_mutex_lock (&self->mutex);
  if (self->cancellable == NULL)
    {
      self->cancellable = g_cancellable_new ();
      cancel = self->pending_error != NULL;
    }
  cancellable = self->cancellable;
  g_mutex_unlock (&self->mutex);

  if (cancel)
    g_cancellable_cancel (cancellable);

  return cancellable;
}

/**
 * dispatch_request_controller_get_context:
 * @self: a #DispatchRequestController
 *
 * Gets the dispatch context, where every callback of
 *   the request runs.
 *
 * Returns: (transfer none): the dispatch context, where every callback of
 *   the request runs
 *
 * Since: 0.1
 */
GMainContext *
dispatch_request_controller_get_context (DispatchRequestController *self)
{
  g_return_val_if_fail (DISPATCH_IS_REQUEST_CONTROLLER (self), NULL);

  return self->context;
}

/**
 * dispatch_request_controller_get_finished:
 * @self: a #DispatchRequestController
 *
 * Gets whether the handler's terminal callback has been delivered.
 *
 * Returns: whether the handler's terminal callback has been delivered
 *
 * Since: 0.1
 */
gboolean
dispatch_request_controller_get_finished (DispatchRequestController *self)
{
  g_return_val_if_fail (DISPATCH_IS_REQUEST_CONTROLLER (self), FALSE);

  return g_atomic_int_get (&self->finished);
}

static void
cancelled_cb (GCancellable *cancellable,
              gpointer      user_data)
{
  broadcast (user_data);
}

/**
 * dispatch_request_controller_wait_if_paused:
 * @self: a #DispatchRequestController
 * @cancellable: (nullable): a #GCancellable to stop waiting
 * @error: return location for a #GError
 *
 * Blocks the calling thread while the request is paused. Meant for worker
 * threads that process the data; never call it in the dispatch context
 * (nothing could resume the request).
 *
 * Returns %TRUE at once if the request is not paused, or once it is
 * resumed. Returns %FALSE with @error set if the request fails or is
 * aborted while paused (the request's error), or if @cancellable fires
 * (%G_IO_ERROR_CANCELLED).
 *
 * Returns: %TRUE if the request is not (or no longer) paused
 *
 * Since: 0.1
 */
gboolean
dispatch_request_controller_wait_if_paused (DispatchRequestController  *self,
                                            GCancellable               *cancellable,
                                            GError                    **error)
{
  gulong handler_id = 0;
  gboolean ret = TRUE;

  g_return_val_if_fail (DISPATCH_IS_REQUEST_CONTROLLER (self), FALSE);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!g_atomic_int_get (&self->paused))
    return TRUE;

  if (cancellable != NULL)
    handler_id = g_cancellable_connect (cancellable, G_CALLBACK (cancelled_cb), self, NULL);

  g_mutex_lock (&self->mutex);
  self->waiters++;
  for (;;)
    {
      if (!g_atomic_int_get (&self->paused))
        break;

      /* a request that failed failed with its pending error */
      if (self->pending_error != NULL)
        {
          g_propagate_error (error, g_error_copy (self->pending_error));
          ret = FALSE;
          break;
        }

      if (g_atomic_int_get (&self->finished))
        break;

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        {
          ret = FALSE;
          break;
        }

      g_cond_wait (&self->cond, &self->mutex);
    }
  self->waiters--;
  g_mutex_unlock (&self->mutex);

  if (handler_id != 0)
    g_cancellable_disconnect (cancellable, handler_id);

  return ret;
}
