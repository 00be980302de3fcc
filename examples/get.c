/* get.c — GET a page and print its status line, headers and body
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 *     get [URL]
 *
 * Without a URL it starts a SoupServer on 127.0.0.1 (port 0) in this
 * process and fetches /hello from it, so it works offline. Exits 0 when
 * the response is complete and its status is 2xx.
 *
 * The handler is a small GObject implementing DispatchHandler; it overrides
 * only the callbacks it needs. Every callback runs in the thread-default
 * main context of the thread that called dispatch() (here, the main
 * thread), so the server, the agent and the handler share one GMainLoop.
 *
 * Only the public API of libdispatch-gobject is used; the server side uses
 * libsoup directly.
 */

#include <libsoup/soup.h>
#include <stdio.h>
#include <stdlib.h>

#include <libdispatch-gobject/dispatch.h>

#define WATCHDOG_S 30

/* ------------------------------------------------------------------------
 * GetPrinter: the DispatchHandler.
 * ------------------------------------------------------------------------ */

#define GET_TYPE_PRINTER (get_printer_get_type ())
G_DECLARE_FINAL_TYPE (GetPrinter, get_printer, GET, PRINTER, GObject)

struct _GetPrinter
{
  GObject    parent_instance;

  GMainLoop *loop;
  guint      status;
  gboolean   ok;
  guint64    received;
};

static void get_printer_handler_iface_init (DispatchHandlerInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (GetPrinter, get_printer, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (DISPATCH_TYPE_HANDLER,
                                                      get_printer_handler_iface_init))

static void
get_printer_on_response_start (DispatchHandler           *handler,
                               DispatchRequestController *controller,
                               guint                      status,
                               DispatchHeaders           *headers,
                               const char                *reason)
{
  GetPrinter *self = GET_PRINTER (handler);
  guint n_fields = dispatch_headers_get_length (headers);

  self->status = status;
  g_print ("HTTP %u %s\n", status, reason != NULL ? reason : "");

  /* Fields in arrival order, names in lower case; a repeated field
   * (set-cookie) stays two lines. dispatch_headers_get_all() gives the
   * values of one name as a string array. */
  for (guint i = 0; i < n_fields; i++)
    g_print ("%s: %s\n",
             dispatch_headers_get_name (headers, i),
             dispatch_headers_get_value (headers, i));
  g_print ("\n");
}

static void
get_printer_on_response_data (DispatchHandler           *handler,
                              DispatchRequestController *controller,
                              GBytes                    *chunk)
{
  GetPrinter *self = GET_PRINTER (handler);
  gsize size;
  const void *data = g_bytes_get_data (chunk, &size);

  self->received += size;
  fwrite (data, 1, size, stdout);
}

static void
get_printer_on_response_end (DispatchHandler           *handler,
                             DispatchRequestController *controller,
                             DispatchHeaders           *trailers)
{
  GetPrinter *self = GET_PRINTER (handler);

  g_print ("\n-- %" G_GUINT64_FORMAT " bytes\n", self->received);
  /* Like curl --fail: only a 2xx response is a success. */
  self->ok = SOUP_STATUS_IS_SUCCESSFUL (self->status);
  g_main_loop_quit (self->loop);
}

static void
get_printer_on_response_error (DispatchHandler           *handler,
                               DispatchRequestController *controller,
                               const GError              *error)
{
  GetPrinter *self = GET_PRINTER (handler);

  if (g_error_matches (error, DISPATCH_ERROR, DISPATCH_ERROR_SOCKET))
    g_printerr ("error: could not connect\n");
  g_printerr ("error: %s (%s, %d)\n",
              error->message, g_quark_to_string (error->domain), error->code);
  g_main_loop_quit (self->loop);
}

static void
get_printer_handler_iface_init (DispatchHandlerInterface *iface)
{
  iface->on_response_start = get_printer_on_response_start;
  iface->on_response_data = get_printer_on_response_data;
  iface->on_response_end = get_printer_on_response_end;
  iface->on_response_error = get_printer_on_response_error;
}

static void
get_printer_class_init (GetPrinterClass *klass)
{
}

static void
get_printer_init (GetPrinter *self)
{
}

/* ------------------------------------------------------------------------
 * The embedded server: GET /hello.
 * ------------------------------------------------------------------------ */

static void
server_handle_hello (SoupServer        *server,
                     SoupServerMessage *msg,
                     const char        *path,
                     GHashTable        *query,
                     gpointer           user_data)
{
  static const char body[] = "Hello from C!\n";
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);

  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_message_headers_append (headers, "Set-Cookie", "a=1");
  soup_message_headers_append (headers, "Set-Cookie", "b=2");
  soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC,
                                    body, sizeof body - 1);
}

static SoupServer *
server_start (char   **origin,
              GError **error)
{
  g_autoptr(SoupServer) server = soup_server_new (NULL, NULL);
  GSList *uris;

  soup_server_add_handler (server, "/hello", server_handle_hello, NULL, NULL);
  if (!soup_server_listen_local (server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, error))
    return NULL;

  uris = soup_server_get_uris (server);
  *origin = g_strdup_printf ("http://127.0.0.1:%d", g_uri_get_port (uris->data));
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);

  return g_steal_pointer (&server);
}

/* ------------------------------------------------------------------------ */

/* "http://host:port/path?query" -> origin, path, query */
static gboolean
split_url (const char  *url,
           char       **origin,
           char       **path,
           char       **query,
           GError     **error)
{
  g_autoptr(GUri) uri = g_uri_parse (url, G_URI_FLAGS_ENCODED, error);

  if (uri == NULL)
    return FALSE;

  if (g_uri_get_port (uri) > 0)
    *origin = g_strdup_printf ("%s://%s:%d", g_uri_get_scheme (uri),
                               g_uri_get_host (uri), g_uri_get_port (uri));
  else
    *origin = g_strdup_printf ("%s://%s", g_uri_get_scheme (uri), g_uri_get_host (uri));
  *path = g_strdup (*g_uri_get_path (uri) != '\0' ? g_uri_get_path (uri) : "/");
  *query = g_strdup (g_uri_get_query (uri));

  return TRUE;
}

static gboolean
watchdog_cb (gpointer user_data)
{
  g_printerr ("get: no result after %d s, giving up\n", WATCHDOG_S);
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
    g_printerr ("get: closing the agent failed: %s\n", error->message);
  g_main_loop_quit (loop);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SoupServer) server = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  g_autoptr(DispatchAgent) agent = NULL;
  g_autoptr(DispatchRequest) request = NULL;
  g_autoptr(GetPrinter) printer = NULL;
  g_autoptr(DispatchRequestController) controller = NULL;
  g_autofree char *origin = NULL;
  g_autofree char *path = NULL;
  g_autofree char *query = NULL;

  if (argc > 2)
    {
      g_printerr ("usage: %s [URL]\n", argv[0]);
      return 2;
    }

  if (argc == 2)
    {
      if (!split_url (argv[1], &origin, &path, &query, &error))
        {
          g_printerr ("get: %s\n", error->message);
          return 2;
        }
    }
  else
    {
      server = server_start (&origin, &error);
      if (server == NULL)
        {
          g_printerr ("get: cannot start the server: %s\n", error->message);
          return EXIT_FAILURE;
        }
      path = g_strdup ("/hello");
    }

  /* Every wait is bounded. */
  g_timeout_add_seconds (WATCHDOG_S, watchdog_cb, NULL);

  loop = g_main_loop_new (NULL, FALSE);
  agent = g_object_new (DISPATCH_TYPE_AGENT, "headers-timeout", 10000, NULL);

  request = dispatch_request_new ("GET", origin, path);
  if (query != NULL)
    dispatch_request_set_query (request, query);
  dispatch_request_add_header (request, "Accept", "text/plain");

  printer = g_object_new (GET_TYPE_PRINTER, NULL);
  printer->loop = loop;

  /* Never fails synchronously: every error, validation included, comes
   * back through on_response_error from the main loop. */
  controller = dispatch_dispatcher_dispatch (DISPATCH_DISPATCHER (agent), request,
                                             DISPATCH_HANDLER (printer));
  g_main_loop_run (loop);

  /* Close the agent: later requests would fail, in-flight ones finish. */
  dispatch_dispatcher_close_async (DISPATCH_DISPATCHER (agent), NULL, on_agent_closed, loop);
  g_main_loop_run (loop);

  if (server != NULL)
    soup_server_disconnect (server);

  return printer->ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
