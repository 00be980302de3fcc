/* download.c — stream a download to a file, with backpressure
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *     download [SIZE_MIB]
 *
 * Starts a SoupServer on 127.0.0.1 (port 0) that serves SIZE_MIB (default
 * 32) MiB, downloads it with a DispatchAgent into a file in a temporary
 * directory, checks the file and removes it. Exits 0 on success.
 *
 * The body is written with g_output_stream_write_bytes_async(). A stream
 * takes one operation at a time, so chunks wait in a queue. When the queue
 * holds HIGH_WATER chunks the disk has fallen behind the network: the
 * handler pauses the request (libdispatch-gobject then reads nothing more
 * from the socket, TCP flow control holds the server back and memory stays
 * bounded) and resumes it once the queue has drained to LOW_WATER.
 *
 * Only the public API of libdispatch-gobject is used; the server side uses
 * libsoup directly.
 */

#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <stdlib.h>
#include <string.h>

#include <libdispatch-gobject/dispatch.h>

#define HIGH_WATER 4     /* chunks queued or being written: pause */
#define LOW_WATER  1     /* drained to this: resume */
#define WATCHDOG_S 50

/* ------------------------------------------------------------------------
 * DownloadWriter: the DispatchHandler, and the disk writer it feeds.
 * ------------------------------------------------------------------------ */

#define DOWNLOAD_TYPE_WRITER (download_writer_get_type ())
G_DECLARE_FINAL_TYPE (DownloadWriter, download_writer, DOWNLOAD, WRITER, GObject)

struct _DownloadWriter
{
  GObject                    parent_instance;

  GOutputStream             *stream;
  GMainLoop                 *loop;
  DispatchRequestController *controller;
  GCancellable              *cancellable;

  GQueue                     queue;      /* GBytes waiting for the disk */
  GBytes                    *pending;    /* being written, or NULL */
  gboolean                   finished;   /* terminal callback seen */
  gboolean                   closing;    /* close_async() called */
  GError                    *error;      /* the first error */

  guint64                    received;
  guint64                    written;
  guint                      pauses;
  guint                      max_outstanding;
};

static void download_writer_handler_iface_init (DispatchHandlerInterface *iface);
static void download_writer_write_next (DownloadWriter *self);

G_DEFINE_FINAL_TYPE_WITH_CODE (DownloadWriter, download_writer, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (DISPATCH_TYPE_HANDLER,
                                                      download_writer_handler_iface_init))

static guint
download_writer_outstanding (DownloadWriter *self)
{
  return self->queue.length + (self->pending != NULL ? 1 : 0);
}

static void
on_stream_closed (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(DownloadWriter) self = user_data;
  g_autoptr(GError) error = NULL;

  if (!g_output_stream_close_finish (G_OUTPUT_STREAM (source), result, &error)
      && self->error == NULL)
    self->error = g_steal_pointer (&error);

  g_main_loop_quit (self->loop);
}

static void
on_bytes_written (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(DownloadWriter) self = user_data;
  g_autoptr(GBytes) bytes = g_steal_pointer (&self->pending);
  g_autoptr(GError) error = NULL;
  gssize n;

  n = g_output_stream_write_bytes_finish (G_OUTPUT_STREAM (source), result, &error);
  if (n < 0)
    {
      /* Cancelled: the request failed, and its error is on the way to
       * on_response_error. Otherwise the disk failed: stop the download
       * with that error as the reason (abort() does nothing after the
       * terminal callback). */
      if (!g_cancellable_is_cancelled (self->cancellable))
        dispatch_request_controller_abort (self->controller, error);
      g_queue_clear_full (&self->queue, (GDestroyNotify) g_bytes_unref);
      if (self->error == NULL)
        self->error = g_steal_pointer (&error);
      download_writer_write_next (self);
      return;
    }

  self->written += (guint64) n;
  if ((gsize) n < g_bytes_get_size (bytes))
    g_queue_push_head (&self->queue,
                       g_bytes_new_from_bytes (bytes, n, g_bytes_get_size (bytes) - n));

  if (dispatch_request_controller_get_paused (self->controller)
      && download_writer_outstanding (self) <= LOW_WATER)
    dispatch_request_controller_resume (self->controller);

  download_writer_write_next (self);
}

/* Starts the next write; once the request has finished and nothing is left
 * to write, closes the stream, which ends the main loop. */
static void
download_writer_write_next (DownloadWriter *self)
{
  if (self->pending != NULL || self->closing)
    return;

  if (self->error != NULL)
    g_queue_clear_full (&self->queue, (GDestroyNotify) g_bytes_unref);

  if (g_queue_is_empty (&self->queue))
    {
      if (self->finished)
        {
          self->closing = TRUE;
          g_output_stream_close_async (self->stream, G_PRIORITY_DEFAULT, NULL,
                                       on_stream_closed, g_object_ref (self));
        }
      return;
    }

  /* One operation at a time on a stream; the chunk is kept in pending to
   * requeue the tail of a short write. */
  self->pending = g_queue_pop_head (&self->queue);
  g_output_stream_write_bytes_async (self->stream, self->pending, G_PRIORITY_DEFAULT,
                                     self->cancellable, on_bytes_written,
                                     g_object_ref (self));
}

static void
download_writer_on_request_start (DispatchHandler           *handler,
                                  DispatchRequestController *controller)
{
  DownloadWriter *self = DOWNLOAD_WRITER (handler);

  g_set_object (&self->controller, controller);
  /* Cancelled when the request is aborted, times out or is destroyed:
   * pending disk writes stop too. */
  g_set_object (&self->cancellable, dispatch_request_controller_get_cancellable (controller));
}

static void
download_writer_on_response_start (DispatchHandler           *handler,
                                   DispatchRequestController *controller,
                                   guint                      status,
                                   DispatchHeaders           *headers,
                                   const char                *reason)
{
  const char *length = dispatch_headers_get (headers, "content-length");

  g_print ("HTTP %u %s, content-length %s\n",
           status, reason != NULL ? reason : "", length != NULL ? length : "(none)");

  if (status != SOUP_STATUS_OK)
    {
      g_autoptr(GError) error = g_error_new (G_IO_ERROR, G_IO_ERROR_FAILED, "HTTP %u", status);

      dispatch_request_controller_abort (controller, error);
    }
}

static void
download_writer_on_response_data (DispatchHandler           *handler,
                                  DispatchRequestController *controller,
                                  GBytes                    *chunk)
{
  DownloadWriter *self = DOWNLOAD_WRITER (handler);

  self->received += g_bytes_get_size (chunk);
  g_queue_push_tail (&self->queue, g_bytes_ref (chunk));
  download_writer_write_next (self);

  self->max_outstanding = MAX (self->max_outstanding, download_writer_outstanding (self));
  if (download_writer_outstanding (self) >= HIGH_WATER
      && !dispatch_request_controller_get_paused (controller))
    {
      /* Takes effect when this callback returns. */
      dispatch_request_controller_pause (controller);
      self->pauses++;
    }
}

static void
download_writer_on_response_end (DispatchHandler           *handler,
                                 DispatchRequestController *controller,
                                 DispatchHeaders           *trailers)
{
  DownloadWriter *self = DOWNLOAD_WRITER (handler);

  self->finished = TRUE;
  download_writer_write_next (self);
}

static void
download_writer_on_response_error (DispatchHandler           *handler,
                                   DispatchRequestController *controller,
                                   const GError              *error)
{
  DownloadWriter *self = DOWNLOAD_WRITER (handler);

  self->finished = TRUE;
  g_clear_error (&self->error);    /* the request's error explains best */
  self->error = g_error_copy (error);
  /* A pending write is cancelled with the request; the stream is closed
   * once it has returned. */
  download_writer_write_next (self);
}

static void
download_writer_handler_iface_init (DispatchHandlerInterface *iface)
{
  iface->on_request_start = download_writer_on_request_start;
  iface->on_response_start = download_writer_on_response_start;
  iface->on_response_data = download_writer_on_response_data;
  iface->on_response_end = download_writer_on_response_end;
  iface->on_response_error = download_writer_on_response_error;
}

static void
download_writer_finalize (GObject *object)
{
  DownloadWriter *self = DOWNLOAD_WRITER (object);

  g_queue_clear_full (&self->queue, (GDestroyNotify) g_bytes_unref);
  g_clear_pointer (&self->pending, g_bytes_unref);
  g_clear_object (&self->stream);
  g_clear_object (&self->controller);
  g_clear_object (&self->cancellable);
  g_clear_error (&self->error);

  G_OBJECT_CLASS (download_writer_parent_class)->finalize (object);
}

static void
download_writer_class_init (DownloadWriterClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = download_writer_finalize;
}

static void
download_writer_init (DownloadWriter *self)
{
  g_queue_init (&self->queue);
}

static DownloadWriter *
download_writer_new (GOutputStream *stream,
                     GMainLoop     *loop)
{
  DownloadWriter *self = g_object_new (DOWNLOAD_TYPE_WRITER, NULL);

  self->stream = g_object_ref (stream);
  self->loop = loop;

  return self;
}

/* ------------------------------------------------------------------------
 * The embedded server: GET /file answers with the body (Content-Length).
 * ------------------------------------------------------------------------ */

static void
server_handle_file (SoupServer        *server,
                    SoupServerMessage *msg,
                    const char        *path,
                    GHashTable        *query,
                    gpointer           user_data)
{
  GBytes *body = user_data;

  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_message_headers_set_content_type (soup_server_message_get_response_headers (msg),
                                         "application/octet-stream", NULL);
  /* Shares the data, no copy. */
  soup_message_body_append_bytes (soup_server_message_get_response_body (msg), body);
}

static SoupServer *
server_start (GBytes  *body,
              char   **origin,
              GError **error)
{
  g_autoptr(SoupServer) server = soup_server_new (NULL, NULL);
  GSList *uris;

  soup_server_add_handler (server, "/file", server_handle_file,
                           g_bytes_ref (body), (GDestroyNotify) g_bytes_unref);
  if (!soup_server_listen_local (server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, error))
    return NULL;

  uris = soup_server_get_uris (server);
  *origin = g_strdup_printf ("http://127.0.0.1:%d", g_uri_get_port (uris->data));
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);

  return g_steal_pointer (&server);
}

/* SIZE bytes of xorshift noise. */
static GBytes *
make_body (gsize size)
{
  guint8 *data = g_malloc (size);
  guint32 x = 42;

  for (gsize i = 0; i < size; i++)
    {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      data[i] = x & 0xff;
    }

  return g_bytes_new_take (data, size);
}

/* ------------------------------------------------------------------------ */

static gboolean
watchdog_cb (gpointer user_data)
{
  g_printerr ("download: no result after %d s, giving up\n", WATCHDOG_S);
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
    g_printerr ("download: closing the agent failed: %s\n", error->message);
  g_main_loop_quit (loop);
}

/* Compares the file with the body. */
static gboolean
check_file (const char  *filename,
            GBytes      *body,
            GError     **error)
{
  g_autofree char *contents = NULL;
  gsize length;

  if (!g_file_get_contents (filename, &contents, &length, error))
    return FALSE;

  if (length != g_bytes_get_size (body))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   "The file has %" G_GSIZE_FORMAT " bytes, the body %" G_GSIZE_FORMAT,
                   length, g_bytes_get_size (body));
      return FALSE;
    }

  if (memcmp (contents, g_bytes_get_data (body, NULL), length) != 0)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                           "The file differs from the body");
      return FALSE;
    }

  return TRUE;
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(SoupServer) server = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  g_autoptr(GFileOutputStream) stream = NULL;
  g_autoptr(GFile) file = NULL;
  g_autoptr(DispatchAgent) agent = NULL;
  g_autoptr(DispatchRequest) request = NULL;
  g_autoptr(DownloadWriter) writer = NULL;
  g_autoptr(DispatchRequestController) controller = NULL;
  g_autofree char *origin = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *filename = NULL;
  guint64 size_mib = 32;
  gboolean ok;

  if (argc > 2
      || (argc == 2 && !g_ascii_string_to_unsigned (argv[1], 10, 0, 1024, &size_mib, NULL)))
    {
      g_printerr ("usage: %s [SIZE_MIB (0..1024)]\n", argv[0]);
      return 2;
    }

  body = make_body (size_mib * 1024 * 1024);
  server = server_start (body, &origin, &error);
  if (server == NULL)
    {
      g_printerr ("download: cannot start the server: %s\n", error->message);
      return EXIT_FAILURE;
    }

  dir = g_dir_make_tmp ("dispatch-download-XXXXXX", &error);
  if (dir == NULL)
    {
      g_printerr ("download: %s\n", error->message);
      return EXIT_FAILURE;
    }
  filename = g_build_filename (dir, "file.bin", NULL);
  file = g_file_new_for_path (filename);
  stream = g_file_create (file, G_FILE_CREATE_PRIVATE, NULL, &error);
  if (stream == NULL)
    {
      g_printerr ("download: %s\n", error->message);
      g_rmdir (dir);
      return EXIT_FAILURE;
    }

  /* Every wait is bounded. */
  g_timeout_add_seconds (WATCHDOG_S, watchdog_cb, NULL);

  loop = g_main_loop_new (NULL, FALSE);
  agent = g_object_new (DISPATCH_TYPE_AGENT, "body-timeout", 10000, NULL);
  request = dispatch_request_new ("GET", origin, "/file");
  /* The whole download, pauses included. */
  dispatch_request_set_timeout (request, 40000);

  writer = download_writer_new (G_OUTPUT_STREAM (stream), loop);
  controller = dispatch_dispatcher_dispatch (DISPATCH_DISPATCHER (agent), request,
                                             DISPATCH_HANDLER (writer));

  /* Until the terminal callback has come and the stream is closed. */
  g_main_loop_run (loop);

  if (writer->error != NULL)
    {
      g_printerr ("download: failed: %s (%s, %d)\n", writer->error->message,
                  g_quark_to_string (writer->error->domain), writer->error->code);
      ok = FALSE;
    }
  else
    {
      g_print ("received %" G_GUINT64_FORMAT " bytes, wrote %" G_GUINT64_FORMAT
               " bytes to %s\n", writer->received, writer->written, filename);
      g_print ("paused %u times (at most %u chunks waiting for the disk)\n",
               writer->pauses, writer->max_outstanding);

      ok = check_file (filename, body, &error);
      if (ok)
        g_print ("file matches the server body\n");
      else
        g_printerr ("download: %s\n", error->message);
    }

  if (g_unlink (filename) != 0 || g_rmdir (dir) != 0)
    {
      g_printerr ("download: cannot remove %s\n", dir);
      ok = FALSE;
    }

  dispatch_dispatcher_close_async (DISPATCH_DISPATCHER (agent), NULL, on_agent_closed, loop);
  g_main_loop_run (loop);
  soup_server_disconnect (server);

  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
