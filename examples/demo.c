/* demo.c — stream a large body through a deliberately slow consumer
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The demo starts an HTTP server on 127.0.0.1 (a SoupServer in a thread of
 * its own) that streams a large body, generated on the fly, and counts the
 * bytes it has really written to the socket. The client, on the main
 * thread, downloads it with a DispatchAgent and a handler whose consumer is
 * slow on purpose: every --pause-every MiB it pauses the request's
 * controller for --pause-ms milliseconds.
 *
 * While the request is paused libdispatch-gobject reads nothing from the
 * socket, so the kernel buffers fill up, TCP flow control stops the server
 * and the client's memory stays flat. The demo prints this once a second
 * (and after every pause), then a summary. Press Ctrl-C to abort the
 * request through its controller.
 *
 * Only the public API of libdispatch-gobject is used; the server side uses
 * libsoup directly.
 */

#include <glib-unix.h>
#include <libsoup/soup.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libdispatch-gobject/dispatch.h>

#define MIB (G_GUINT64_CONSTANT (1024) * 1024)
#define SERVER_CHUNK_SIZE (256 * 1024)
#define STARTUP_TIMEOUT_S 10
#define GRACE_TIMEOUT_S 5

/* ------------------------------------------------------------------------
 * The server: a SoupServer on 127.0.0.1, port 0, in its own thread with its
 * own GMainContext. GET /stream?size=BYTES answers with BYTES bytes
 * (Content-Length), appended 256 KiB at a time from "wrote-chunk" so that
 * nothing is generated before the socket can take it.
 * ------------------------------------------------------------------------ */

typedef struct
{
  GThread      *thread;
  GMainContext *context;
  GMainLoop    *loop;
  SoupServer   *server;
  GBytes       *chunk;       /* SERVER_CHUNK_SIZE bytes of pattern */
  char         *origin;      /* "http://127.0.0.1:PORT" */

  GMutex        mutex;
  GCond         cond;
  gboolean      ready;
  GError       *error;       /* startup failure */
  guint64       written;     /* body bytes written to sockets */
} DemoServer;

typedef struct
{
  DemoServer *server;
  guint64     size;
  guint64     appended;
  gboolean    completed;
} DemoStream;

static guint64
demo_server_get_written (DemoServer *server)
{
  guint64 written;

  g_mutex_lock (&server->mutex);
  written = server->written;
  g_mutex_unlock (&server->mutex);

  return written;
}

/* Append the next chunk of the body, or complete it. */
static void
demo_stream_feed (SoupServerMessage *msg,
                  DemoStream        *stream)
{
  SoupMessageBody *body = soup_server_message_get_response_body (msg);
  guint64 left;

  if (stream->completed)
    return;

  left = stream->size - stream->appended;
  if (left == 0)
    {
      stream->completed = TRUE;
      soup_message_body_complete (body);
      return;
    }

  if (left >= SERVER_CHUNK_SIZE)
    {
      soup_message_body_append_bytes (body, stream->server->chunk);
      stream->appended += SERVER_CHUNK_SIZE;
    }
  else
    {
      g_autoptr(GBytes) tail = g_bytes_new_from_bytes (stream->server->chunk, 0, left);

      soup_message_body_append_bytes (body, tail);
      stream->appended += left;
    }
}

static void
on_server_wrote_chunk (SoupServerMessage *msg,
                       gpointer           user_data)
{
  demo_stream_feed (msg, user_data);
}

static void
on_server_wrote_body_data (SoupServerMessage *msg,
                           guint              chunk_size,
                           gpointer           user_data)
{
  DemoStream *stream = user_data;

  g_mutex_lock (&stream->server->mutex);
  stream->server->written += chunk_size;
  g_mutex_unlock (&stream->server->mutex);
}

static void
demo_server_handle_stream (SoupServer        *soup_server,
                           SoupServerMessage *msg,
                           const char        *path,
                           GHashTable        *query,
                           gpointer           user_data)
{
  DemoServer *server = user_data;
  SoupMessageHeaders *headers;
  DemoStream *stream;
  const char *size_str = NULL;
  guint64 size = 0;

  if (g_strcmp0 (soup_server_message_get_method (msg), "GET") != 0)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL);
      return;
    }

  if (query != NULL)
    size_str = g_hash_table_lookup (query, "size");
  if (size_str == NULL
      || !g_ascii_string_to_unsigned (size_str, 10, 0, G_MAXINT64, &size, NULL))
    {
      soup_server_message_set_status (msg, SOUP_STATUS_BAD_REQUEST, NULL);
      soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC,
                                        "bad size\n", 9);
      return;
    }

  stream = g_new0 (DemoStream, 1);
  stream->server = server;
  stream->size = size;
  g_object_set_data_full (G_OBJECT (msg), "demo-stream", stream, g_free);

  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  headers = soup_server_message_get_response_headers (msg);
  soup_message_headers_set_content_type (headers, "application/octet-stream", NULL);
  soup_message_headers_set_content_length (headers, (goffset) size);
  soup_message_body_set_accumulate (soup_server_message_get_response_body (msg), FALSE);

  g_signal_connect (msg, "wrote-chunk", G_CALLBACK (on_server_wrote_chunk), stream);
  g_signal_connect (msg, "wrote-body-data", G_CALLBACK (on_server_wrote_body_data), stream);

  demo_stream_feed (msg, stream);
}

static gboolean
demo_server_listen (DemoServer  *server,
                    GError     **error)
{
  GSList *uris;
  int port;

  server->server = soup_server_new ("server-header", "libdispatch-gobject-demo ", NULL);
  soup_server_add_handler (server->server, "/stream", demo_server_handle_stream, server, NULL);

  if (!soup_server_listen_local (server->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, error))
    return FALSE;

  uris = soup_server_get_uris (server->server);
  g_assert (uris != NULL);
  port = g_uri_get_port (uris->data);
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);

  server->origin = g_strdup_printf ("http://127.0.0.1:%d", port);

  return TRUE;
}

static gpointer
demo_server_thread (gpointer data)
{
  DemoServer *server = data;
  GError *error = NULL;
  gboolean ok;

  g_main_context_push_thread_default (server->context);

  ok = demo_server_listen (server, &error);

  g_mutex_lock (&server->mutex);
  server->ready = TRUE;
  server->error = error;
  g_cond_signal (&server->cond);
  g_mutex_unlock (&server->mutex);

  if (ok)
    g_main_loop_run (server->loop);

  if (server->server != NULL)
    soup_server_disconnect (server->server);
  g_clear_object (&server->server);

  /* let libsoup finish tearing down its connections */
  while (g_main_context_iteration (server->context, FALSE))
    ;

  g_main_context_pop_thread_default (server->context);

  return NULL;
}

static gboolean
demo_server_quit_cb (gpointer data)
{
  DemoServer *server = data;

  g_main_loop_quit (server->loop);

  return G_SOURCE_REMOVE;
}

static void
demo_server_free (DemoServer *server)
{
  if (server->thread != NULL)
    {
      g_main_context_invoke (server->context, demo_server_quit_cb, server);
      g_thread_join (server->thread);
    }

  g_clear_error (&server->error);
  g_clear_pointer (&server->loop, g_main_loop_unref);
  g_clear_pointer (&server->context, g_main_context_unref);
  g_clear_pointer (&server->chunk, g_bytes_unref);
  g_clear_pointer (&server->origin, g_free);
  g_mutex_clear (&server->mutex);
  g_cond_clear (&server->cond);
  g_free (server);
}

static DemoServer *
demo_server_new (GError **error)
{
  DemoServer *server = g_new0 (DemoServer, 1);
  guint8 *data = g_malloc (SERVER_CHUNK_SIZE);
  gint64 deadline;

  for (gsize i = 0; i < SERVER_CHUNK_SIZE; i++)
    data[i] = (guint8) ((i * 31 + (i >> 8)) & 0xff);
  server->chunk = g_bytes_new_take (data, SERVER_CHUNK_SIZE);

  g_mutex_init (&server->mutex);
  g_cond_init (&server->cond);
  server->context = g_main_context_new ();
  server->loop = g_main_loop_new (server->context, FALSE);
  server->thread = g_thread_new ("demo-server", demo_server_thread, server);

  deadline = g_get_monotonic_time () + STARTUP_TIMEOUT_S * G_TIME_SPAN_SECOND;
  g_mutex_lock (&server->mutex);
  while (!server->ready)
    {
      if (!g_cond_wait_until (&server->cond, &server->mutex, deadline))
        break;
    }
  g_mutex_unlock (&server->mutex);

  if (!server->ready)
    {
      /* the thread is stuck: leave it, the process is about to exit */
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                   "The demo server did not start within %d s", STARTUP_TIMEOUT_S);
      server->thread = NULL;
      return NULL;
    }

  if (server->error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&server->error));
      demo_server_free (server);
      return NULL;
    }

  return server;
}

/* ------------------------------------------------------------------------
 * The client.
 * ------------------------------------------------------------------------ */

typedef struct
{
  /* options */
  int                        size_mib;
  int                        pause_every_mib;
  int                        pause_ms;
  int                        timeout_s;
  gboolean                   quiet;

  guint64                    expected;
  guint64                    pause_every;

  DemoServer                *server;
  GMainLoop                 *loop;
  DispatchAgent             *agent;
  DispatchRequestController *controller;

  gint64                     start_time;
  gint64                     end_time;
  gboolean                   finished;     /* terminal callback seen */
  gboolean                   closed;       /* agent closed */
  gboolean                   watchdog_fired;
  GError                    *error;

  guint                      status;
  char                      *reason;
  gint64                     content_length;
  guint64                    received;
  guint64                    next_pause;

  /* pauses */
  guint                      n_pauses;
  guint                      n_resumed;
  guint                      n_stalled;
  guint                      resume_id;
  guint                      sample_id;
  guint64                    written_mid_pause;
  gsize                      rss_at_pause;

  /* progress */
  guint                      tick_id;
  gint64                     last_tick_time;
  guint64                    last_tick_received;

  guint                      watchdog_id;
  guint                      grace_id;
  guint                      sigint_id;
} DemoApp;

/* Reads a "VmRSS:"/"VmHWM:" line of /proc/self/status, in bytes. */
static gsize
demo_read_proc_status_bytes (const char *field)
{
  g_autofree char *contents = NULL;
  gsize field_len = strlen (field);
  char **lines;
  gsize value = 0;

  if (!g_file_get_contents ("/proc/self/status", &contents, NULL, NULL))
    return 0;

  lines = g_strsplit (contents, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (strncmp (lines[i], field, field_len) == 0 && lines[i][field_len] == ':')
        {
          value = (gsize) g_ascii_strtoull (lines[i] + field_len + 1, NULL, 10) * 1024;
          break;
        }
    }
  g_strfreev (lines);

  return value;
}

static double
demo_mib (guint64 bytes)
{
  return (double) bytes / (double) MIB;
}

static double
demo_elapsed_s (DemoApp *app)
{
  gint64 end = app->end_time ? app->end_time : g_get_monotonic_time ();

  return (double) (end - app->start_time) / G_TIME_SPAN_SECOND;
}

static void
demo_clear_pause_timers (DemoApp *app)
{
  g_clear_handle_id (&app->resume_id, g_source_remove);
  g_clear_handle_id (&app->sample_id, g_source_remove);
}

static void
on_agent_closed (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  DemoApp *app = user_data;
  g_autoptr(GError) error = NULL;

  if (!dispatch_dispatcher_close_finish (DISPATCH_DISPATCHER (source), result, &error))
    g_printerr ("demo: closing the agent failed: %s\n", error->message);

  app->closed = TRUE;
  g_main_loop_quit (app->loop);
}

/* Called once, from either terminal callback. */
static void
demo_app_finish (DemoApp *app)
{
  app->finished = TRUE;
  app->end_time = g_get_monotonic_time ();

  demo_clear_pause_timers (app);
  g_clear_handle_id (&app->tick_id, g_source_remove);

  /* Stop accepting requests and wait for the pool to wind down. */
  dispatch_dispatcher_close_async (DISPATCH_DISPATCHER (app->agent), NULL,
                                   on_agent_closed, app);
}

static gboolean
demo_sample_cb (gpointer user_data)
{
  DemoApp *app = user_data;

  app->sample_id = 0;
  app->written_mid_pause = demo_server_get_written (app->server);

  return G_SOURCE_REMOVE;
}

static gboolean
demo_resume_cb (gpointer user_data)
{
  DemoApp *app = user_data;
  guint64 written = demo_server_get_written (app->server);
  gsize rss = demo_read_proc_status_bytes ("VmRSS");
  gboolean stalled;

  app->resume_id = 0;
  app->n_resumed++;
  if (app->sample_id != 0)
    {
      g_clear_handle_id (&app->sample_id, g_source_remove);
      app->written_mid_pause = written;
    }

  /* The server may fill the socket buffers right after the pause began;
   * after that TCP flow control must hold it back completely. */
  stalled = (written == app->written_mid_pause);
  if (stalled)
    app->n_stalled++;

  if (!app->quiet)
    {
      if (stalled)
        g_print ("   pause #%u at %6.1f MiB (%d ms): server stalled %.1f MiB ahead "
                 "(socket buffers), +0 B in the last %d ms; RSS %.1f -> %.1f MiB\n",
                 app->n_pauses, demo_mib (app->received), app->pause_ms,
                 demo_mib (written - app->received), app->pause_ms - app->pause_ms / 2,
                 demo_mib (app->rss_at_pause), demo_mib (rss));
      else
        g_print ("   pause #%u at %6.1f MiB (%d ms): server still writing, "
                 "+%" G_GUINT64_FORMAT " B in the last %d ms; RSS %.1f -> %.1f MiB\n",
                 app->n_pauses, demo_mib (app->received), app->pause_ms,
                 written - app->written_mid_pause, app->pause_ms - app->pause_ms / 2,
                 demo_mib (app->rss_at_pause), demo_mib (rss));
    }

  dispatch_request_controller_resume (app->controller);

  return G_SOURCE_REMOVE;
}

static gboolean
demo_tick_cb (gpointer user_data)
{
  DemoApp *app = user_data;
  gint64 now = g_get_monotonic_time ();
  double dt = (double) (now - app->last_tick_time) / G_TIME_SPAN_SECOND;
  double rate = dt > 0 ? demo_mib (app->received - app->last_tick_received) / dt : 0;

  g_print ("[%6.1f s] received %7.1f MiB  %8.1f MiB/s  RSS %6.1f MiB  "
           "server wrote %7.1f MiB  %s\n",
           demo_elapsed_s (app), demo_mib (app->received), rate,
           demo_mib (demo_read_proc_status_bytes ("VmRSS")),
           demo_mib (demo_server_get_written (app->server)),
           dispatch_request_controller_get_paused (app->controller) ? "paused" : "running");

  app->last_tick_time = now;
  app->last_tick_received = app->received;

  return G_SOURCE_CONTINUE;
}

static gboolean
demo_grace_cb (gpointer user_data)
{
  DemoApp *app = user_data;

  app->grace_id = 0;
  g_printerr ("demo: no terminal callback %d s after the abort, giving up\n",
              GRACE_TIMEOUT_S);
  g_main_loop_quit (app->loop);

  return G_SOURCE_REMOVE;
}

static gboolean
demo_watchdog_cb (gpointer user_data)
{
  DemoApp *app = user_data;

  app->watchdog_id = 0;
  app->watchdog_fired = TRUE;

  if (app->finished)
    {
      /* only closing the agent is left, and it is stuck */
      g_printerr ("demo: the agent did not close within %d s\n", app->timeout_s);
      g_main_loop_quit (app->loop);
    }
  else
    {
      g_autoptr(GError) reason = g_error_new (DISPATCH_ERROR, DISPATCH_ERROR_ABORTED,
                                              "Demo watchdog: no result after %d s",
                                              app->timeout_s);

      /* The error comes back through on_response_error. */
      dispatch_request_controller_abort (app->controller, reason);
      app->grace_id = g_timeout_add_seconds (GRACE_TIMEOUT_S, demo_grace_cb, app);
    }

  return G_SOURCE_REMOVE;
}

static gboolean
demo_sigint_cb (gpointer user_data)
{
  DemoApp *app = user_data;

  if (!app->quiet)
    g_print ("   interrupted: aborting the request\n");

  if (app->finished)
    {
      /* only closing the agent is left: stop waiting for it */
      g_main_loop_quit (app->loop);
      return G_SOURCE_CONTINUE;
    }

  /* No reason given: the handler gets DISPATCH_ERROR_ABORTED. A second
   * Ctrl-C is harmless, the first abort wins. */
  dispatch_request_controller_abort (app->controller, NULL);

  return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------------------
 * DemoConsumer: the DispatchHandler. Every callback runs on the main
 * thread, the dispatch context of the request.
 * ------------------------------------------------------------------------ */

#define DEMO_TYPE_CONSUMER (demo_consumer_get_type ())
G_DECLARE_FINAL_TYPE (DemoConsumer, demo_consumer, DEMO, CONSUMER, GObject)

struct _DemoConsumer
{
  GObject  parent_instance;
  DemoApp *app;
};

static void demo_consumer_handler_iface_init (DispatchHandlerInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (DemoConsumer, demo_consumer, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (DISPATCH_TYPE_HANDLER,
                                                      demo_consumer_handler_iface_init))

static void
demo_consumer_on_response_start (DispatchHandler           *handler,
                                 DispatchRequestController *controller,
                                 guint                      status,
                                 DispatchHeaders           *headers,
                                 const char                *reason)
{
  DemoApp *app = DEMO_CONSUMER (handler)->app;
  const char *length = dispatch_headers_get (headers, "content-length");

  app->status = status;
  app->reason = g_strdup (reason);
  app->content_length = length ? g_ascii_strtoll (length, NULL, 10) : -1;

  if (status != SOUP_STATUS_OK)
    {
      g_autoptr(GError) error = g_error_new (DISPATCH_ERROR, DISPATCH_ERROR_ABORTED,
                                             "Unexpected response status %u %s",
                                             status, reason ? reason : "");

      dispatch_request_controller_abort (controller, error);
      return;
    }

  if (!app->quiet)
    g_print ("   response: %u %s, content-length %s\n",
             status, reason ? reason : "", length ? length : "(none)");
}

static void
demo_consumer_on_response_data (DispatchHandler           *handler,
                                DispatchRequestController *controller,
                                GBytes                    *chunk)
{
  DemoApp *app = DEMO_CONSUMER (handler)->app;

  /* A real consumer would parse or store the chunk here. */
  app->received += g_bytes_get_size (chunk);

  if (app->pause_every == 0
      || app->received < app->next_pause
      || app->received >= app->expected)
    return;

  while (app->next_pause <= app->received)
    app->next_pause += app->pause_every;

  /* Takes effect when this callback returns: no more data, and nothing is
   * read from the socket, until resume(). */
  dispatch_request_controller_pause (controller);

  app->n_pauses++;
  app->written_mid_pause = demo_server_get_written (app->server);
  app->rss_at_pause = demo_read_proc_status_bytes ("VmRSS");
  app->sample_id = g_timeout_add (app->pause_ms / 2, demo_sample_cb, app);
  app->resume_id = g_timeout_add (app->pause_ms, demo_resume_cb, app);
}

static void
demo_consumer_on_response_end (DispatchHandler           *handler,
                               DispatchRequestController *controller,
                               DispatchHeaders           *trailers)
{
  DemoApp *app = DEMO_CONSUMER (handler)->app;

  if (app->received != app->expected)
    g_set_error (&app->error, DISPATCH_ERROR, DISPATCH_ERROR_RESPONSE_LENGTH_MISMATCH,
                 "Received %" G_GUINT64_FORMAT " bytes, expected %" G_GUINT64_FORMAT,
                 app->received, app->expected);

  demo_app_finish (app);
}

static void
demo_consumer_on_response_error (DispatchHandler           *handler,
                                 DispatchRequestController *controller,
                                 const GError              *error)
{
  DemoApp *app = DEMO_CONSUMER (handler)->app;

  app->error = g_error_copy (error);
  demo_app_finish (app);
}

static void
demo_consumer_handler_iface_init (DispatchHandlerInterface *iface)
{
  /* on_request_start and on_response_informational keep their defaults */
  iface->on_response_start = demo_consumer_on_response_start;
  iface->on_response_data = demo_consumer_on_response_data;
  iface->on_response_end = demo_consumer_on_response_end;
  iface->on_response_error = demo_consumer_on_response_error;
}

static void
demo_consumer_class_init (DemoConsumerClass *klass)
{
}

static void
demo_consumer_init (DemoConsumer *self)
{
}

static DispatchHandler *
demo_consumer_new (DemoApp *app)
{
  DemoConsumer *self = g_object_new (DEMO_TYPE_CONSUMER, NULL);

  self->app = app;

  return DISPATCH_HANDLER (self);
}

/* ------------------------------------------------------------------------ */

static const char *
demo_error_nick (const GError *error)
{
  GEnumClass *klass;
  GEnumValue *value;
  const char *nick = NULL;

  if (error->domain != DISPATCH_ERROR)
    return g_quark_to_string (error->domain);

  klass = g_type_class_ref (DISPATCH_TYPE_ERROR);
  value = g_enum_get_value (klass, error->code);
  if (value != NULL)
    nick = value->value_nick;
  g_type_class_unref (klass);

  return nick ? nick : "?";
}

static gboolean
demo_parse_options (DemoApp  *app,
                    int      *argc,
                    char   ***argv,
                    GError  **error)
{
  g_autoptr(GOptionContext) context = NULL;
  const GOptionEntry entries[] = {
    { "size", 's', 0, G_OPTION_ARG_INT, &app->size_mib,
      "Size of the response body in MiB (default 512)", "MIB" },
    { "pause-every", 'p', 0, G_OPTION_ARG_INT, &app->pause_every_mib,
      "Pause the request after every MIB received; 0 never pauses (default 32)", "MIB" },
    { "pause-ms", 'm', 0, G_OPTION_ARG_INT, &app->pause_ms,
      "Length of each pause in ms (default 400)", "MS" },
    { "timeout", 't', 0, G_OPTION_ARG_INT, &app->timeout_s,
      "Abort and fail if the run takes longer than this (default 120)", "SECONDS" },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &app->quiet,
      "Print only the summary", NULL },
    { NULL }
  };

  context = g_option_context_new ("- stream a large body through a slow consumer");
  g_option_context_set_summary (context,
                                "Downloads a large body from an embedded server with a "
                                "DispatchAgent whose consumer pauses the\nrequest now "
                                "and then, and shows that while it is paused the server "
                                "is held back\nand memory stays flat.");
  g_option_context_add_main_entries (context, entries, NULL);

  if (!g_option_context_parse (context, argc, argv, error))
    return FALSE;

  if (app->size_mib < 0 || app->pause_every_mib < 0
      || app->pause_ms < 1 || app->pause_ms > 60000
      || app->timeout_s < 1)
    {
      g_set_error_literal (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                           "--size and --pause-every must be >= 0, --pause-ms within "
                           "1..60000, --timeout >= 1");
      return FALSE;
    }

  return TRUE;
}

int
main (int    argc,
      char **argv)
{
  DemoApp app = {
    .size_mib = 512,
    .pause_every_mib = 32,
    .pause_ms = 400,
    .timeout_s = 120,
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(DispatchRequest) request = NULL;
  g_autoptr(DispatchHandler) consumer = NULL;
  g_autofree char *size_str = NULL;
  int exit_status;

  if (!demo_parse_options (&app, &argc, &argv, &error))
    {
      g_printerr ("demo: %s\n", error->message);
      return 2;
    }

  app.expected = (guint64) app.size_mib * MIB;
  app.pause_every = (guint64) app.pause_every_mib * MIB;
  app.next_pause = app.pause_every;
  app.content_length = -1;

  app.server = demo_server_new (&error);
  if (app.server == NULL)
    {
      g_printerr ("demo: cannot start the server: %s\n", error->message);
      return 1;
    }

  if (!app.quiet)
    {
      g_print ("demo: server %s streams %d MiB; ", app.server->origin, app.size_mib);
      if (app.pause_every > 0)
        g_print ("the consumer pauses %d ms every %d MiB\n", app.pause_ms, app.pause_every_mib);
      else
        g_print ("the consumer never pauses\n");
    }

  app.loop = g_main_loop_new (NULL, FALSE);

  /* The main thread's context is iterated: the agent reaps idle connections
   * there, and every callback of requests dispatched from here runs there. */
  app.agent = dispatch_agent_new ();

  request = dispatch_request_new ("GET", app.server->origin, "/stream");
  size_str = g_strdup_printf ("%" G_GUINT64_FORMAT, app.expected);
  dispatch_request_add_query (request, "size", size_str);

  consumer = demo_consumer_new (&app);

  app.start_time = g_get_monotonic_time ();
  app.last_tick_time = app.start_time;

  /* Never fails synchronously: errors, validation included, come back
   * through on_response_error from the main loop. */
  app.controller = dispatch_dispatcher_dispatch (DISPATCH_DISPATCHER (app.agent),
                                                 request, consumer);

  if (!app.quiet)
    app.tick_id = g_timeout_add (1000, demo_tick_cb, &app);
  app.watchdog_id = g_timeout_add_seconds (app.timeout_s, demo_watchdog_cb, &app);
  app.sigint_id = g_unix_signal_add (SIGINT, demo_sigint_cb, &app);

  g_main_loop_run (app.loop);

  g_clear_handle_id (&app.watchdog_id, g_source_remove);
  g_clear_handle_id (&app.grace_id, g_source_remove);
  g_clear_handle_id (&app.sigint_id, g_source_remove);
  g_clear_handle_id (&app.tick_id, g_source_remove);
  demo_clear_pause_timers (&app);

  if (!app.finished && app.error == NULL)
    g_set_error (&app.error, DISPATCH_ERROR, DISPATCH_ERROR_ABORTED,
                 "The request did not finish within %d s", app.timeout_s + GRACE_TIMEOUT_S);

  g_print ("status:    %u %s\n", app.status, app.reason ? app.reason : "");
  g_print ("received:  %" G_GUINT64_FORMAT " bytes (%.1f MiB) of %" G_GUINT64_FORMAT "\n",
           app.received, demo_mib (app.received), app.expected);
  g_print ("elapsed:   %.2f s, average %.1f MiB/s\n",
           demo_elapsed_s (&app),
           demo_elapsed_s (&app) > 0 ? demo_mib (app.received) / demo_elapsed_s (&app) : 0.0);
  if (app.n_pauses > 0)
    g_print ("pauses:    %u x %d ms (%u completed); the server stalled during %u of them\n",
             app.n_pauses, app.pause_ms, app.n_resumed, app.n_stalled);
  g_print ("server:    wrote %" G_GUINT64_FORMAT " bytes\n",
           demo_server_get_written (app.server));
  g_print ("peak RSS:  %.1f MiB (VmHWM)\n", demo_mib (demo_read_proc_status_bytes ("VmHWM")));

  if (app.error != NULL)
    {
      g_printerr ("demo: request failed: %s (%s, code %d)\n", app.error->message,
                  demo_error_nick (app.error), app.error->code);
      exit_status = EXIT_FAILURE;
    }
  else if (app.watchdog_fired)
    {
      g_printerr ("demo: the watchdog fired\n");
      exit_status = EXIT_FAILURE;
    }
  else
    {
      g_print ("result:    OK\n");
      exit_status = EXIT_SUCCESS;
    }

  if (app.finished && app.closed)
    {
      g_clear_object (&app.controller);
      g_clear_object (&app.agent);
      demo_server_free (app.server);
    }
  /* else: something is stuck; leave it to process exit */

  g_clear_pointer (&app.loop, g_main_loop_unref);
  g_clear_error (&app.error);
  g_free (app.reason);

  return exit_status;
}
