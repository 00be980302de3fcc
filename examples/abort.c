/* abort.c — abort a request from a timer, with a reason of our own
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Starts a SoupServer on 127.0.0.1 (port 0) whose /slow route pauses its
 * reply (soup_server_message_pause()) for much longer than we are willing
 * to wait, dispatches GET /slow with a DispatchAgent, and aborts the request
 * from a g_timeout_add() after ABORT_AFTER_MS with a GError of our own. The
 * handler's on_response_error gets exactly that error — later, from the
 * main loop, never inside abort() — and nothing comes after it. Exits 0
 * when that is what happened.
 *
 * (dispatch_request_controller_abort (controller, NULL) gives a
 * DISPATCH_ERROR_ABORTED error instead.)
 *
 * Only the public API of libdispatch-gobject is used; the server side uses
 * libsoup directly.
 */

#include <libsoup/soup.h>
#include <stdlib.h>

#include <libdispatch-gobject/dispatch.h>

#define ABORT_AFTER_MS 200
#define SLOW_REPLY_S   20    /* the server answers after this long */
#define WATCHDOG_S     30

/* Our own error domain, for the abort reason. */
#define ABORT_EXAMPLE_ERROR (abort_example_error_quark ())
static G_DEFINE_QUARK (abort-example-error-quark, abort_example_error)

enum
{
  ABORT_EXAMPLE_ERROR_GAVE_UP = 1,
};

/* ------------------------------------------------------------------------
 * AbortWatcher: the DispatchHandler. It records what it is told.
 * ------------------------------------------------------------------------ */

#define ABORT_TYPE_WATCHER (abort_watcher_get_type ())
G_DECLARE_FINAL_TYPE (AbortWatcher, abort_watcher, ABORT, WATCHER, GObject)

struct _AbortWatcher
{
  GObject    parent_instance;

  GMainLoop *loop;
  gboolean   in_abort;         /* set around the abort() call */
  guint      n_request_start;
  guint      n_response_start;
  guint      n_terminal;       /* end or error, must end up 1 */
  gboolean   ended;
  gboolean   error_inside_abort;
  GError    *error;
};

static void abort_watcher_handler_iface_init (DispatchHandlerInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (AbortWatcher, abort_watcher, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (DISPATCH_TYPE_HANDLER,
                                                      abort_watcher_handler_iface_init))

static void
abort_watcher_on_request_start (DispatchHandler           *handler,
                                DispatchRequestController *controller)
{
  AbortWatcher *self = ABORT_WATCHER (handler);

  self->n_request_start++;
  g_print ("on_request_start: the request is being sent\n");
}

static void
abort_watcher_on_response_start (DispatchHandler           *handler,
                                 DispatchRequestController *controller,
                                 guint                      status,
                                 DispatchHeaders           *headers,
                                 const char                *reason)
{
  AbortWatcher *self = ABORT_WATCHER (handler);

  /* Not expected: the server holds its reply back. */
  self->n_response_start++;
  g_print ("on_response_start: HTTP %u\n", status);
}

static void
abort_watcher_on_response_end (DispatchHandler           *handler,
                               DispatchRequestController *controller,
                               DispatchHeaders           *trailers)
{
  AbortWatcher *self = ABORT_WATCHER (handler);

  self->n_terminal++;
  self->ended = TRUE;
  g_main_loop_quit (self->loop);
}

static void
abort_watcher_on_response_error (DispatchHandler           *handler,
                                 DispatchRequestController *controller,
                                 const GError              *error)
{
  AbortWatcher *self = ABORT_WATCHER (handler);

  self->n_terminal++;
  if (self->in_abort)
    self->error_inside_abort = TRUE;
  if (self->error == NULL)
    self->error = g_error_copy (error);
  g_main_loop_quit (self->loop);
}

static void
abort_watcher_handler_iface_init (DispatchHandlerInterface *iface)
{
  iface->on_request_start = abort_watcher_on_request_start;
  iface->on_response_start = abort_watcher_on_response_start;
  iface->on_response_end = abort_watcher_on_response_end;
  iface->on_response_error = abort_watcher_on_response_error;
}

static void
abort_watcher_finalize (GObject *object)
{
  AbortWatcher *self = ABORT_WATCHER (object);

  g_clear_error (&self->error);

  G_OBJECT_CLASS (abort_watcher_parent_class)->finalize (object);
}

static void
abort_watcher_class_init (AbortWatcherClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = abort_watcher_finalize;
}

static void
abort_watcher_init (AbortWatcher *self)
{
}

/* ------------------------------------------------------------------------
 * The embedded server: GET /slow pauses its reply for SLOW_REPLY_S.
 * ------------------------------------------------------------------------ */

typedef struct
{
  SoupServer        *server;
  SoupServerMessage *msg;        /* the paused message, or NULL */
  guint              reply_id;   /* the timer that would unpause it */
} SlowServer;

static gboolean
slow_server_reply_cb (gpointer user_data)
{
  SlowServer *slow = user_data;
  static const char body[] = "finally\n";

  slow->reply_id = 0;
  soup_server_message_set_response (slow->msg, "text/plain", SOUP_MEMORY_STATIC,
                                    body, sizeof body - 1);
  soup_server_message_set_status (slow->msg, SOUP_STATUS_OK, NULL);
  soup_server_message_unpause (slow->msg);

  return G_SOURCE_REMOVE;
}

static void
on_slow_message_finished (SoupServerMessage *msg,
                          gpointer           user_data)
{
  SlowServer *slow = user_data;

  /* The client went away before the reply: no more replying. */
  g_clear_handle_id (&slow->reply_id, g_source_remove);
}

static void
slow_server_handle_slow (SoupServer        *server,
                         SoupServerMessage *msg,
                         const char        *path,
                         GHashTable        *query,
                         gpointer           user_data)
{
  SlowServer *slow = user_data;

  if (slow->msg != NULL)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, NULL);
      return;
    }

  /* No reply until the timer fires (or the connection goes away). */
  slow->msg = g_object_ref (msg);
  g_signal_connect (msg, "finished", G_CALLBACK (on_slow_message_finished), slow);
  soup_server_message_pause (msg);
  slow->reply_id = g_timeout_add_seconds (SLOW_REPLY_S, slow_server_reply_cb, slow);
}

static gboolean
slow_server_start (SlowServer  *slow,
                   char       **origin,
                   GError     **error)
{
  GSList *uris;

  slow->server = soup_server_new (NULL, NULL);
  soup_server_add_handler (slow->server, "/slow", slow_server_handle_slow, slow, NULL);
  if (!soup_server_listen_local (slow->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, error))
    return FALSE;

  uris = soup_server_get_uris (slow->server);
  *origin = g_strdup_printf ("http://127.0.0.1:%d", g_uri_get_port (uris->data));
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);

  return TRUE;
}

static void
slow_server_stop (SlowServer *slow)
{
  /* A reply still held back is dropped with its connection. */
  g_clear_handle_id (&slow->reply_id, g_source_remove);
  if (slow->server != NULL)
    soup_server_disconnect (slow->server);
  if (slow->msg != NULL)
    {
      g_signal_handlers_disconnect_by_data (slow->msg, slow);
      g_clear_object (&slow->msg);
    }
  g_clear_object (&slow->server);
}

/* ------------------------------------------------------------------------ */

typedef struct
{
  DispatchRequestController *controller;
  AbortWatcher              *watcher;
  GError                    *reason;
  gint64                     aborted_at;
} AbortTimer;

static gboolean
abort_cb (gpointer user_data)
{
  AbortTimer *timer = user_data;

  g_print ("aborting after %d ms\n", ABORT_AFTER_MS);
  timer->aborted_at = g_get_monotonic_time ();

  /* Safe from any thread and in every phase (here: waiting for the
   * response head). The first abort wins; the handler hears about it from
   * the main loop, never inside abort(). */
  timer->watcher->in_abort = TRUE;
  dispatch_request_controller_abort (timer->controller, timer->reason);
  timer->watcher->in_abort = FALSE;

  return G_SOURCE_REMOVE;
}

static gboolean
watchdog_cb (gpointer user_data)
{
  g_printerr ("abort: no result after %d s, giving up\n", WATCHDOG_S);
  exit (EXIT_FAILURE);
}

static void
on_agent_closed (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GMainLoop *loop = user_data;
  g_autoptr(GError) error = NULL;

  if (!dispatch_dispatcher_close_finish (DISPATCH_DISPATCHER (source), result, &error))
    g_printerr ("abort: closing the agent failed: %s\n", error->message);
  g_main_loop_quit (loop);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  g_autoptr(DispatchAgent) agent = NULL;
  g_autoptr(DispatchRequest) request = NULL;
  g_autoptr(AbortWatcher) watcher = NULL;
  g_autoptr(DispatchRequestController) controller = NULL;
  g_autofree char *origin = NULL;
  SlowServer slow = { NULL, };
  AbortTimer timer = { NULL, };
  const GError *got;
  gboolean ok;

  if (!slow_server_start (&slow, &origin, &error))
    {
      g_printerr ("abort: cannot start the server: %s\n", error->message);
      slow_server_stop (&slow);
      return EXIT_FAILURE;
    }

  /* Every wait is bounded. */
  g_timeout_add_seconds (WATCHDOG_S, watchdog_cb, NULL);

  loop = g_main_loop_new (NULL, FALSE);
  agent = dispatch_agent_new ();
  request = dispatch_request_new ("GET", origin, "/slow");
  watcher = g_object_new (ABORT_TYPE_WATCHER, NULL);
  watcher->loop = loop;

  controller = dispatch_dispatcher_dispatch (DISPATCH_DISPATCHER (agent), request,
                                             DISPATCH_HANDLER (watcher));

  timer.controller = controller;
  timer.watcher = watcher;
  timer.reason = g_error_new (ABORT_EXAMPLE_ERROR, ABORT_EXAMPLE_ERROR_GAVE_UP,
                              "Gave up after %d ms", ABORT_AFTER_MS);
  g_timeout_add (ABORT_AFTER_MS, abort_cb, &timer);

  /* Until the terminal callback. */
  g_main_loop_run (loop);

  got = watcher->error;
  if (got != NULL)
    g_print ("on_response_error after %.0f ms: %s (domain %s, code %d)\n",
             (double) (g_get_monotonic_time () - timer.aborted_at) / 1000,
             got->message, g_quark_to_string (got->domain), got->code);
  g_print ("controller: aborted=%s, cancellable cancelled=%s\n",
           dispatch_request_controller_get_aborted (controller) ? "yes" : "no",
           g_cancellable_is_cancelled (dispatch_request_controller_get_cancellable (controller))
           ? "yes" : "no");

  /* Close the agent; nothing may reach the handler after its terminal
   * callback, which the close loop gives a chance to show. */
  dispatch_dispatcher_close_async (DISPATCH_DISPATCHER (agent), NULL, on_agent_closed, loop);
  g_main_loop_run (loop);
  slow_server_stop (&slow);

  /* Exactly our reason: same domain, code and message. */
  ok = got != NULL
       && g_error_matches (got, timer.reason->domain, timer.reason->code)
       && g_strcmp0 (got->message, timer.reason->message) == 0
       && !watcher->error_inside_abort
       && watcher->n_request_start == 1
       && watcher->n_response_start == 0
       && watcher->n_terminal == 1
       && !watcher->ended
       && dispatch_request_controller_get_aborted (controller);

  if (!ok)
    g_printerr ("abort: FAILED (request_start %u, response_start %u, terminal %u, "
                "ended %d, error inside abort() %d)\n",
                watcher->n_request_start, watcher->n_response_start,
                watcher->n_terminal, watcher->ended, watcher->error_inside_abort);

  g_clear_error (&timer.reason);

  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
