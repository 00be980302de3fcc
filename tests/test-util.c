/* test-util.c — shared test servers, a recording handler and loop helpers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Everything here runs on 127.0.0.1 with port 0:
 *
 *  - TestServer: a SoupServer in a thread of its own (own GMainContext),
 *    so a client that blocks never blocks the server and vice versa.
 *  - TestFaultServer: a raw-socket server (one accepting thread, one thread
 *    per connection) that misbehaves on purpose.
 *  - TestBlackhole: a listener whose backlog is full, so connect() hangs.
 *  - TestServerProcess: those servers in a child process (the test binary
 *    run with TEST_SERVE_ARG), for fd and memory figures that must be the
 *    client's alone.
 *  - TestRecorder: a DispatchHandler that records every callback and
 *    asserts the handler contract while doing so.
 *
 * Every blocking wait in here is bounded or can be interrupted by the
 * matching _free() function.
 */

#define _GNU_SOURCE 1   /* accept4, pipe2 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <libsoup/soup.h>

#include "test-util.h"

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
# define UNDER_SANITIZER 1
#elif defined(__has_feature)
# if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#  define UNDER_SANITIZER 1
# endif
#endif
#ifndef UNDER_SANITIZER
# define UNDER_SANITIZER 0
#endif

/* `meson test --setup valgrind` runs the tests too: the slow ones scale
 * down there */
#if defined(__has_include)
# if __has_include(<valgrind/valgrind.h>)
#  include <valgrind/valgrind.h>
#  define HAVE_VALGRIND_H 1
# endif
#endif

/* ------------------------------------------------------------------------
 * Loop helpers
 * ------------------------------------------------------------------------ */

static GLogFunc gtest_log_handler;

static void
quiet_log_handler (const char     *log_domain,
                   GLogLevelFlags  log_level,
                   const char     *message,
                   gpointer        user_data)
{
  if ((log_level & (G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO)) != 0 &&
      g_log_writer_default_would_drop (log_level, log_domain))
    return;

  gtest_log_handler (log_domain, log_level, message, user_data);
}

void
test_init (int    *argc,
           char ***argv)
{
  /* Keep the environment deterministic even when a test binary is run by
   * hand rather than through `meson test`. This runs before any thread
   * exists, so setenv is safe here. */
  g_setenv ("GIO_USE_PROXY_RESOLVER", "dummy", FALSE);
  g_setenv ("GSETTINGS_BACKEND", "memory", FALSE);
  g_setenv ("GIO_USE_VFS", "local", FALSE);

  /* The fault server writes to peers that may be gone. */
  signal (SIGPIPE, SIG_IGN);

  g_test_init (argc, argv, NULL);

  /* GTest's default log handler copies every message, debug included, into
   * the TAP output, which floods it with GSocketClient chatter for each
   * connection. Filter debug/info the way GLib's own writer does, so
   * G_MESSAGES_DEBUG=all (or a domain) still shows them. */
  gtest_log_handler = g_log_set_default_handler (quiet_log_handler, NULL);
}

static gboolean
set_flag_cb (gpointer user_data)
{
  gboolean *flag = user_data;

  *flag = TRUE;
  return G_SOURCE_REMOVE;
}

static gboolean
recheck_cb (gpointer user_data)
{
  /* Only wakes the loop so that a flag set from another thread (which does
   * not wake our context) is noticed. */
  return G_SOURCE_CONTINUE;
}

/* Iterates the thread-default context until *flag or timeout_ms; returns
 * the final value of *flag. */
static gboolean
iterate_until (const gboolean *flag,
               guint           timeout_ms)
{
  GMainContext *context = g_main_context_ref_thread_default ();
  gboolean timed_out = FALSE;
  GSource *timeout;
  GSource *recheck;
  gboolean result;

  timeout = g_timeout_source_new (timeout_ms);
  g_source_set_name (timeout, "[test-util] wait timeout");
  g_source_set_callback (timeout, set_flag_cb, &timed_out, NULL);
  g_source_attach (timeout, context);

  recheck = g_timeout_source_new (25);
  g_source_set_name (recheck, "[test-util] wait recheck");
  g_source_set_callback (recheck, recheck_cb, NULL, NULL);
  g_source_attach (recheck, context);

  while (!g_atomic_int_get (flag) && !timed_out)
    g_main_context_iteration (context, TRUE);

  result = g_atomic_int_get (flag);

  g_source_destroy (timeout);
  g_source_unref (timeout);
  g_source_destroy (recheck);
  g_source_unref (recheck);
  g_main_context_unref (context);

  return result;
}

void
test_wait_for_flag (const gboolean *flag,
                    guint           timeout_ms)
{
  g_assert_nonnull (flag);

  if (!iterate_until (flag, timeout_ms))
    g_error ("test_wait_for_flag: the flag was not set within %u ms",
             timeout_ms);
}

void
test_iterate_for (guint ms)
{
  GMainContext *context = g_main_context_ref_thread_default ();
  gboolean elapsed = FALSE;
  GSource *timeout;

  timeout = g_timeout_source_new (ms);
  g_source_set_name (timeout, "[test-util] iterate for");
  g_source_set_callback (timeout, set_flag_cb, &elapsed, NULL);
  g_source_attach (timeout, context);

  while (!elapsed)
    g_main_context_iteration (context, TRUE);

  g_source_destroy (timeout);
  g_source_unref (timeout);
  g_main_context_unref (context);
}

gsize
test_rss_bytes (void)
{
  g_autofree char *contents = NULL;
  g_autoptr(GError) error = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/self/status", &contents, NULL, &error))
    g_error ("test_rss_bytes: %s", error->message);

  line = strstr (contents, "\nVmRSS:");
  if (line == NULL)
    g_error ("test_rss_bytes: no VmRSS line in /proc/self/status");

  /* "VmRSS:\t   12345 kB" */
  return (gsize) g_ascii_strtoull (line + strlen ("\nVmRSS:"), NULL, 10) * 1024;
}

guint
test_fd_count (void)
{
  g_autoptr(GError) error = NULL;
  GDir *dir;
  guint count = 0;

  dir = g_dir_open ("/proc/self/fd", 0, &error);
  if (dir == NULL)
    g_error ("test_fd_count: %s", error->message);

  while (g_dir_read_name (dir) != NULL)
    count++;

  g_dir_close (dir);

  /* the directory stream itself held one of them */
  g_assert_cmpuint (count, >, 0);
  return count - 1;
}

guint
test_settle_fds (guint target,
                 guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  guint fds = test_fd_count ();

  while (fds != target && g_get_monotonic_time () < deadline)
    {
      test_iterate_for (20);
      fds = test_fd_count ();
    }

  return fds;
}

char *
test_list_fds (void)
{
  GString *text = g_string_new (NULL);
  GDir *dir = g_dir_open ("/proc/self/fd", 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename ("/proc/self/fd", name, NULL);
      g_autofree char *target = g_file_read_link (path, NULL);

      g_string_append_printf (text, "\n  %s -> %s", name, target ? target : "?");
    }
  if (dir != NULL)
    g_dir_close (dir);

  return g_string_free (text, FALSE);
}

gboolean
test_under_sanitizer (void)
{
  return UNDER_SANITIZER;
}

gboolean
test_under_valgrind (void)
{
#ifdef HAVE_VALGRIND_H
  return RUNNING_ON_VALGRIND != 0;
#else
  return FALSE;
#endif
}

/* One callback for close_async and destroy_async: the finish function
 * it checks goes with the flag it sets. */
typedef struct
{
  gboolean (*finish) (DispatchDispatcher  *self,
                      GAsyncResult        *result,
                      GError             **error);
  gboolean   done;
} Finish;

static void
finish_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  Finish *finish = user_data;
  GError *error = NULL;

  g_assert_true (finish->finish (DISPATCH_DISPATCHER (source), result, &error));
  g_assert_no_error (error);
  finish->done = TRUE;
}

void
test_close_and_destroy (DispatchDispatcher *agent)
{
  Finish closed = { dispatch_dispatcher_close_finish, FALSE };
  Finish destroyed = { dispatch_dispatcher_destroy_finish, FALSE };

  dispatch_dispatcher_close_async (agent, NULL, finish_cb, &closed);
  test_wait_for_flag (&closed.done, TEST_WAIT_MS);
  dispatch_dispatcher_destroy_async (agent, NULL, NULL, finish_cb, &destroyed);
  test_wait_for_flag (&destroyed.done, TEST_WAIT_MS);
}

/* ------------------------------------------------------------------------
 * TestServer
 * ------------------------------------------------------------------------ */

#define PATTERN_CHUNK_SIZE (64 * 1024)

struct _TestServer
{
  GMutex        mutex;
  GCond         cond;
  gboolean      ready;
  GError       *error;

  GThread      *thread;
  GMainContext *context;
  int           stopping;     /* atomic */

  /* server thread only */
  SoupServer   *soup;
  GHashTable   *streams;      /* set of ServerStream, owned */

  guint16       port;
  char         *origin;

  guint64       written;      /* __atomic */
  int           requests;     /* atomic */
  int           connections;  /* atomic */
};

/* Per-message state of routes that keep doing things after the handler
 * returned (timers, streaming). Lives in the server thread only. */
typedef struct
{
  TestServer        *server;
  SoupServerMessage *msg;

  guint64            total;       /* pattern bytes to send */
  guint64            appended;    /* pattern bytes appended so far */
  gboolean           complete;    /* complete the body after total */
  gboolean           completed;

  GSource           *timer;
  guint              remaining;   /* /trickle chunks still to send */
} ServerStream;

static void
server_stream_free (gpointer data)
{
  ServerStream *stream = data;

  if (stream->timer != NULL)
    {
      g_source_destroy (stream->timer);
      g_clear_pointer (&stream->timer, g_source_unref);
    }

  g_signal_handlers_disconnect_by_data (stream->msg, stream);
  g_clear_object (&stream->msg);
  g_free (stream);
}

static void
server_stream_done_cb (SoupServerMessage *msg,
                       ServerStream      *stream)
{
  /* "finished" or "disconnected": the message must not be touched any
   * more (unpause would hit a precondition). */
  g_hash_table_remove (stream->server->streams, stream);
}

static void
server_stream_wrote_body_data_cb (SoupServerMessage *msg,
                                  guint              n_bytes,
                                  ServerStream      *stream)
{
  __atomic_fetch_add (&stream->server->written, (guint64) n_bytes,
                      __ATOMIC_SEQ_CST);
}

static ServerStream *
server_stream_new (TestServer        *server,
                   SoupServerMessage *msg)
{
  ServerStream *stream = g_new0 (ServerStream, 1);

  stream->server = server;
  stream->msg = g_object_ref (msg);

  g_signal_connect (msg, "finished",
                    G_CALLBACK (server_stream_done_cb), stream);
  g_signal_connect (msg, "disconnected",
                    G_CALLBACK (server_stream_done_cb), stream);
  g_hash_table_add (server->streams, stream);

  return stream;
}

static void
server_stream_append_next (ServerStream *stream)
{
  SoupMessageBody *body = soup_server_message_get_response_body (stream->msg);

  if (stream->appended < stream->total)
    {
      gsize n = (gsize) MIN ((guint64) PATTERN_CHUNK_SIZE,
                             stream->total - stream->appended);
      guint8 *data = g_malloc (n);

      for (gsize i = 0; i < n; i++)
        data[i] = test_pattern_byte (stream->appended + i);

      soup_message_body_append_take (body, data, n);
      stream->appended += n;
    }
  else if (stream->complete && !stream->completed)
    {
      soup_message_body_complete (body);
      stream->completed = TRUE;
    }
}

static void
server_stream_wrote_chunk_cb (SoupServerMessage *msg,
                              ServerStream      *stream)
{
  /* Runs inside libsoup's write loop: the chunk appended here is picked
   * up right away, so no unpause is needed. When nothing is appended
   * (/stall-after) the I/O pauses itself. */
  server_stream_append_next (stream);
}

static guint64
query_uint64 (GHashTable *query,
              const char *key,
              guint64     default_value)
{
  const char *value = query != NULL ? g_hash_table_lookup (query, key) : NULL;

  if (value == NULL || *value == '\0')
    return default_value;

  return g_ascii_strtoull (value, NULL, 10);
}

static void
route_pattern (TestServer        *server,
               SoupServerMessage *msg,
               guint64            size,
               gboolean           chunked,
               gboolean           complete)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  ServerStream *stream = server_stream_new (server, msg);

  stream->total = size;
  stream->complete = complete;

  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_message_headers_set_content_type (headers, "application/octet-stream",
                                         NULL);
  if (chunked)
    soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
  else
    soup_message_headers_set_content_length (headers, (goffset) size);

  soup_message_body_set_accumulate (soup_server_message_get_response_body (msg),
                                    FALSE);

  g_signal_connect (msg, "wrote-chunk",
                    G_CALLBACK (server_stream_wrote_chunk_cb), stream);
  g_signal_connect (msg, "wrote-body-data",
                    G_CALLBACK (server_stream_wrote_body_data_cb), stream);

  server_stream_append_next (stream);
}

static gboolean
slow_headers_cb (gpointer user_data)
{
  ServerStream *stream = user_data;

  g_clear_pointer (&stream->timer, g_source_unref);

  soup_server_message_set_status (stream->msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (stream->msg, "text/plain",
                                    SOUP_MEMORY_STATIC, "slow", 4);
  soup_server_message_unpause (stream->msg);

  return G_SOURCE_REMOVE;
}

static gboolean
trickle_cb (gpointer user_data)
{
  ServerStream *stream = user_data;
  SoupMessageBody *body = soup_server_message_get_response_body (stream->msg);

  soup_message_body_append (body, SOUP_MEMORY_STATIC, "x", 1);
  stream->remaining--;

  if (stream->remaining == 0)
    {
      soup_message_body_complete (body);
      g_clear_pointer (&stream->timer, g_source_unref);
    }

  soup_server_message_unpause (stream->msg);

  return stream->remaining > 0 ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static void
server_stream_start_timer (ServerStream *stream,
                           guint         interval_ms,
                           GSourceFunc   func)
{
  stream->timer = g_timeout_source_new (interval_ms);
  g_source_set_name (stream->timer, "[test-server] timer");
  g_source_set_callback (stream->timer, func, stream, NULL);
  g_source_attach (stream->timer, stream->server->context);
}

typedef struct
{
  GHashTable *seen;   /* lower-case name -> GString */
} EchoData;

static void
echo_collect_header (const char *name,
                     const char *value,
                     gpointer    user_data)
{
  GHashTable *seen = user_data;
  g_autofree char *lower = g_ascii_strdown (name, -1);
  GString *joined = g_hash_table_lookup (seen, lower);

  if (joined == NULL)
    {
      g_hash_table_insert (seen, g_steal_pointer (&lower),
                           g_string_new (value));
    }
  else
    {
      g_string_append_c (joined, '|');
      g_string_append (joined, value);
    }
}

static void
string_free_all (gpointer data)
{
  g_string_free (data, TRUE);
}

static void
route_echo (SoupServerMessage *msg)
{
  SoupMessageHeaders *request_headers = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GHashTable) seen = NULL;
  g_autofree char *length = NULL;
  GHashTableIter iter;
  gpointer key, value;
  GUri *uri = soup_server_message_get_uri (msg);
  const char *encoding;

  body = soup_message_body_flatten (soup_server_message_get_request_body (msg));

  soup_message_headers_append (headers, "x-method",
                               soup_server_message_get_method (msg));
  soup_message_headers_append (headers, "x-path", g_uri_get_path (uri));
  soup_message_headers_append (headers, "x-query",
                               g_uri_get_query (uri) ? g_uri_get_query (uri) : "");

  length = g_strdup_printf ("%" G_GSIZE_FORMAT, g_bytes_get_size (body));
  soup_message_headers_append (headers, "x-request-length", length);

  switch (soup_message_headers_get_encoding (request_headers))
    {
    case SOUP_ENCODING_CHUNKED:
      encoding = "chunked";
      break;
    case SOUP_ENCODING_CONTENT_LENGTH:
      encoding = "content-length";
      break;
    case SOUP_ENCODING_UNRECOGNIZED:
    case SOUP_ENCODING_NONE:
    case SOUP_ENCODING_EOF:
    case SOUP_ENCODING_BYTERANGES:
    default:
      encoding = "none";
      break;
    }
  soup_message_headers_append (headers, "x-request-encoding", encoding);

  /* foreach yields each field line separately; lines of one name keep
   * their arrival order. */
  seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, string_free_all);
  soup_message_headers_foreach (request_headers, echo_collect_header, seen);

  g_hash_table_iter_init (&iter, seen);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      g_autofree char *name = g_strconcat ("x-seen-", (const char *) key, NULL);

      soup_message_headers_append (headers, name, ((GString *) value)->str);
    }

  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "application/octet-stream",
                                    SOUP_MEMORY_COPY,
                                    g_bytes_get_data (body, NULL),
                                    g_bytes_get_size (body));
}

static void
route_check_pattern (SoupServerMessage *msg)
{
  g_autoptr(GBytes) body = NULL;
  const guint8 *data;
  gsize len;
  g_autofree char *problem = NULL;

  if (g_strcmp0 (soup_server_message_get_method (msg), "POST") != 0)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL);
      soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC,
                                        "POST only", 9);
      return;
    }

  body = soup_message_body_flatten (soup_server_message_get_request_body (msg));
  data = g_bytes_get_data (body, &len);

  for (gsize i = 0; i < len; i++)
    {
      if (data[i] != test_pattern_byte (i))
        {
          problem = g_strdup_printf ("pattern mismatch at byte %" G_GSIZE_FORMAT
                                     " of %" G_GSIZE_FORMAT
                                     ": got 0x%02x, expected 0x%02x",
                                     i, len, data[i], test_pattern_byte (i));
          break;
        }
    }

  if (problem != NULL)
    {
      gsize problem_len = strlen (problem);

      soup_server_message_set_status (msg, SOUP_STATUS_BAD_REQUEST, NULL);
      soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_TAKE,
                                        g_steal_pointer (&problem), problem_len);
      return;
    }

  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC,
                                    "ok", 2);
}

static void
server_handler (SoupServer        *soup,
                SoupServerMessage *msg,
                const char        *path,
                GHashTable        *query,
                gpointer           user_data)
{
  TestServer *self = user_data;
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);

  if (g_str_equal (path, "/hello"))
    {
      soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
      soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC,
                                        "Hello, World!", 13);
    }
  else if (g_str_equal (path, "/empty"))
    {
      soup_server_message_set_status (msg, SOUP_STATUS_NO_CONTENT, NULL);
    }
  else if (g_str_equal (path, "/reason"))
    {
      soup_server_message_set_status (msg, 299, "Custom Reason");
      soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC,
                                        "r", 1);
    }
  else if (g_str_equal (path, "/multi"))
    {
      soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
      soup_message_headers_append (headers, "Set-Cookie", "a=1");
      soup_message_headers_append (headers, "Set-Cookie", "b=2");
      soup_message_headers_append (headers, "X-Foo", "one");
      soup_message_headers_append (headers, "X-Foo", "two");
      soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC,
                                        "m", 1);
    }
  else if (g_str_equal (path, "/echo") || g_str_has_prefix (path, "/echo/"))
    {
      route_echo (msg);
    }
  else if (g_str_equal (path, "/pattern"))
    {
      route_pattern (self, msg, query_uint64 (query, "size", 0), FALSE, TRUE);
    }
  else if (g_str_equal (path, "/pattern-chunked"))
    {
      route_pattern (self, msg, query_uint64 (query, "size", 0), TRUE, TRUE);
    }
  else if (g_str_equal (path, "/stall-after"))
    {
      route_pattern (self, msg, query_uint64 (query, "bytes", 0), TRUE, FALSE);
    }
  else if (g_str_equal (path, "/check-pattern"))
    {
      route_check_pattern (msg);
    }
  else if (g_str_equal (path, "/slow-headers"))
    {
      ServerStream *stream = server_stream_new (self, msg);

      soup_server_message_pause (msg);
      server_stream_start_timer (stream, (guint) query_uint64 (query, "ms", 1000),
                                 slow_headers_cb);
    }
  else if (g_str_equal (path, "/stall"))
    {
      soup_server_message_set_status (msg, (guint) query_uint64 (query, "status", SOUP_STATUS_OK),
                                      NULL);
      soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
      soup_message_headers_set_content_type (headers, "text/plain", NULL);
      /* never completed: the I/O pauses itself once "hello" is out */
      soup_message_body_append (soup_server_message_get_response_body (msg),
                                SOUP_MEMORY_STATIC, "hello", 5);
    }
  else if (g_str_equal (path, "/trickle"))
    {
      SoupMessageBody *body = soup_server_message_get_response_body (msg);
      guint count = (guint) query_uint64 (query, "count", 10);
      guint ms = (guint) query_uint64 (query, "ms", 100);

      soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
      soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
      soup_message_headers_set_content_type (headers, "text/plain", NULL);

      if (count == 0)
        {
          soup_message_body_complete (body);
        }
      else
        {
          ServerStream *stream = server_stream_new (self, msg);

          stream->remaining = count;
          server_stream_start_timer (stream, ms, trickle_cb);
        }
    }
  else if (g_str_equal (path, "/status"))
    {
      guint code = (guint) query_uint64 (query, "code", 200);

      soup_server_message_set_status (msg, code, NULL);
      soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC,
                                        "status", 6);
    }
  else if (g_str_equal (path, "/conn-id"))
    {
      GSocketAddress *remote = soup_server_message_get_remote_address (msg);
      guint16 port = 0;
      char *text;

      if (G_IS_INET_SOCKET_ADDRESS (remote))
        port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (remote));

      text = g_strdup_printf ("%u", port);
      soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
      soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_TAKE,
                                        text, strlen (text));
    }
  else
    {
      soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
      soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC,
                                        "not found", 9);
    }
}

static void
server_request_started_cb (SoupServer        *soup,
                           SoupServerMessage *msg,
                           TestServer        *self)
{
  /* Emitted once when a connection is accepted (its first message is
   * created right away) and again for every later message on it; count
   * each socket once. */
  GSocket *socket = soup_server_message_get_socket (msg);

  if (socket != NULL &&
      g_object_get_data (G_OBJECT (socket), "test-server-counted") == NULL)
    {
      g_object_set_data (G_OBJECT (socket), "test-server-counted",
                         GINT_TO_POINTER (1));
      g_atomic_int_inc (&self->connections);
    }
}

static void
server_request_read_cb (SoupServer        *soup,
                        SoupServerMessage *msg,
                        TestServer        *self)
{
  g_atomic_int_inc (&self->requests);
}

static gpointer
server_thread_func (gpointer data)
{
  TestServer *self = data;
  g_autoptr(GSocketAddress) address = NULL;
  GError *error = NULL;
  gboolean listening;

  g_main_context_push_thread_default (self->context);

  self->streams = g_hash_table_new_full (NULL, NULL, server_stream_free, NULL);
  self->soup = soup_server_new ("server-header", "test-util",
                                "raw-paths", TRUE,
                                NULL);
  soup_server_add_handler (self->soup, NULL, server_handler, self, NULL);
  g_signal_connect (self->soup, "request-started",
                    G_CALLBACK (server_request_started_cb), self);
  g_signal_connect (self->soup, "request-read",
                    G_CALLBACK (server_request_read_cb), self);

  address = g_inet_socket_address_new_from_string ("127.0.0.1", 0);
  listening = soup_server_listen (self->soup, address, 0, &error);
  if (listening)
    {
      GSList *uris = soup_server_get_uris (self->soup);

      g_assert_nonnull (uris);
      self->port = (guint16) g_uri_get_port (uris->data);
      g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
    }

  g_mutex_lock (&self->mutex);
  self->error = error;
  self->ready = TRUE;
  g_cond_signal (&self->cond);
  g_mutex_unlock (&self->mutex);

  while (listening && !g_atomic_int_get (&self->stopping))
    g_main_context_iteration (self->context, TRUE);

  /* Disconnecting emits "disconnected" on every live message, which
   * frees its ServerStream; whatever is left goes with the table. */
  soup_server_disconnect (self->soup);
  g_hash_table_remove_all (self->streams);
  g_clear_object (&self->soup);
  while (g_main_context_iteration (self->context, FALSE))
    ;
  g_clear_pointer (&self->streams, g_hash_table_unref);

  g_main_context_pop_thread_default (self->context);

  return NULL;
}

TestServer *
test_server_new (void)
{
  TestServer *self = g_new0 (TestServer, 1);

  g_mutex_init (&self->mutex);
  g_cond_init (&self->cond);
  self->context = g_main_context_new ();
  self->thread = g_thread_new ("test-server", server_thread_func, self);

  g_mutex_lock (&self->mutex);
  while (!self->ready)
    g_cond_wait (&self->cond, &self->mutex);
  g_mutex_unlock (&self->mutex);

  if (self->error != NULL)
    g_error ("test_server_new: cannot listen on 127.0.0.1: %s",
             self->error->message);

  self->origin = g_strdup_printf ("http://127.0.0.1:%u", self->port);

  return self;
}

void
test_server_free (TestServer *server)
{
  if (server == NULL)
    return;

  g_atomic_int_set (&server->stopping, TRUE);
  g_main_context_wakeup (server->context);
  g_thread_join (server->thread);

  g_clear_pointer (&server->context, g_main_context_unref);
  g_clear_error (&server->error);
  g_free (server->origin);
  g_mutex_clear (&server->mutex);
  g_cond_clear (&server->cond);
  g_free (server);
}

const char *
test_server_get_origin (TestServer *server)
{
  return server->origin;
}

guint16
test_server_get_port (TestServer *server)
{
  return server->port;
}

guint64
test_server_get_written (TestServer *server)
{
  return __atomic_load_n (&server->written, __ATOMIC_SEQ_CST);
}

guint
test_server_get_requests (TestServer *server)
{
  return (guint) g_atomic_int_get (&server->requests);
}

guint
test_server_get_connections (TestServer *server)
{
  return (guint) g_atomic_int_get (&server->connections);
}

/* ------------------------------------------------------------------------
 * Raw socket helpers (fault server, blackhole, refused origin)
 * ------------------------------------------------------------------------ */

static int
loopback_socket (guint16 *port_out,
                 int      backlog)
{
  struct sockaddr_in addr = { 0 };
  socklen_t len = sizeof addr;
  int fd;

  fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    g_error ("socket: %s", g_strerror (errno));

  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  addr.sin_port = 0;

  if (bind (fd, (struct sockaddr *) &addr, sizeof addr) < 0)
    g_error ("bind 127.0.0.1:0: %s", g_strerror (errno));
  if (backlog >= 0 && listen (fd, backlog) < 0)
    g_error ("listen: %s", g_strerror (errno));
  if (getsockname (fd, (struct sockaddr *) &addr, &len) < 0)
    g_error ("getsockname: %s", g_strerror (errno));

  *port_out = ntohs (addr.sin_port);
  return fd;
}

char *
test_refused_origin (void)
{
  guint16 port;
  int fd;

  /* Bound but never listening, then closed: nothing accepts on the port. */
  fd = loopback_socket (&port, -1);
  close (fd);

  return g_strdup_printf ("http://127.0.0.1:%u", port);
}

/* ------------------------------------------------------------------------
 * TestFaultServer
 * ------------------------------------------------------------------------ */

#define FAULT_MAX_REQUEST (64 * 1024 * 1024)

struct _TestFaultServer
{
  int          listen_fd;
  int          stop_pipe[2];  /* readable once the server stops */
  guint16      port;
  char        *origin;

  GThread     *accept_thread;

  GMutex       mutex;
  GPtrArray   *conn_threads;  /* GThread, running */
  GPtrArray   *finished;      /* GThread, returned, to be joined */
  GPtrArray   *requests;      /* GBytes */
  int          connections;   /* atomic */
};

typedef struct
{
  TestFaultServer *server;
  int              fd;
  GByteArray      *buf;           /* received, not yet consumed */
  guint            n_requests;
  gboolean         close_next;    /* /keepalive-then-close answered */
} FaultConn;

typedef struct
{
  char       *method;
  char       *path;
  GHashTable *query;
} FaultRequest;

typedef enum {
  FAULT_WAIT_OK,
  FAULT_WAIT_STOP,
} FaultWait;

/* Waits until fd has the given events or the server stops. */
static FaultWait
fault_wait (FaultConn *conn,
            short      events)
{
  for (;;)
    {
      struct pollfd fds[2] = {
        { .fd = conn->fd, .events = events },
        { .fd = conn->server->stop_pipe[0], .events = POLLIN },
      };
      int r = poll (fds, 2, -1);

      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        g_error ("fault server: poll: %s", g_strerror (errno));
      if (fds[1].revents != 0)
        return FAULT_WAIT_STOP;
      if (fds[0].revents != 0)
        return FAULT_WAIT_OK;
    }
}

/* Reads what is available into conn->buf; returns bytes read, 0 on EOF,
 * -1 on error or stop. */
static gssize
fault_read_more (FaultConn *conn)
{
  guint8 tmp[16 * 1024];
  gssize n;

  if (fault_wait (conn, POLLIN) == FAULT_WAIT_STOP)
    return -1;

  do
    n = recv (conn->fd, tmp, sizeof tmp, 0);
  while (n < 0 && errno == EINTR);

  if (n > 0)
    g_byte_array_append (conn->buf, tmp, (guint) n);

  return n;
}

static gboolean
fault_send (FaultConn  *conn,
            const void *data,
            gsize       len)
{
  const guint8 *p = data;

  while (len > 0)
    {
      gssize n;

      if (fault_wait (conn, POLLOUT) == FAULT_WAIT_STOP)
        return FALSE;

      n = send (conn->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        continue;
      if (n < 0)
        return FALSE;

      p += n;
      len -= (gsize) n;
    }

  return TRUE;
}

static gboolean
fault_send_str (FaultConn  *conn,
                const char *str)
{
  return fault_send (conn, str, strlen (str));
}

/* Keeps the connection open, discarding input, until the peer closes it
 * or the server stops. */
static void
fault_hold (FaultConn *conn)
{
  while (fault_read_more (conn) > 0)
    g_byte_array_set_size (conn->buf, 0);
}

static void
fault_rst (FaultConn *conn)
{
  struct linger linger = { .l_onoff = 1, .l_linger = 0 };

  setsockopt (conn->fd, SOL_SOCKET, SO_LINGER, &linger, sizeof linger);
  close (conn->fd);
  conn->fd = -1;
}

static gssize
find_bytes (const guint8 *haystack,
            gsize         haystack_len,
            gsize         from,
            const char   *needle)
{
  gsize needle_len = strlen (needle);

  if (haystack_len < needle_len)
    return -1;

  for (gsize i = from; i + needle_len <= haystack_len; i++)
    if (memcmp (haystack + i, needle, needle_len) == 0)
      return (gssize) i;

  return -1;
}

/* Makes sure conn->buf holds at least `len` bytes. */
static gboolean
fault_fill (FaultConn *conn,
            gsize      len)
{
  while (conn->buf->len < len)
    if (fault_read_more (conn) <= 0)
      return FALSE;

  return TRUE;
}

/* Returns the offset just past a chunked body that starts at `start`,
 * reading more as needed; 0 on EOF/stop/garbage. */
static gsize
fault_read_chunked (FaultConn *conn,
                    gsize      start)
{
  gsize pos = start;

  for (;;)
    {
      gssize eol;
      guint64 size;
      char *end = NULL;
      g_autofree char *line = NULL;

      while ((eol = find_bytes (conn->buf->data, conn->buf->len, pos, "\r\n")) < 0)
        if (conn->buf->len > FAULT_MAX_REQUEST || fault_read_more (conn) <= 0)
          return 0;

      line = g_strndup ((const char *) conn->buf->data + pos, (gsize) eol - pos);
      size = g_ascii_strtoull (line, &end, 16);
      if (end == line)
        return 0;
      pos = (gsize) eol + 2;

      if (size == 0)
        {
          /* trailer section: lines until an empty one */
          for (;;)
            {
              while ((eol = find_bytes (conn->buf->data, conn->buf->len, pos, "\r\n")) < 0)
                if (conn->buf->len > FAULT_MAX_REQUEST || fault_read_more (conn) <= 0)
                  return 0;

              if ((gsize) eol == pos)
                return pos + 2;
              pos = (gsize) eol + 2;
            }
        }

      if (size > FAULT_MAX_REQUEST || !fault_fill (conn, pos + size + 2))
        return 0;
      pos += size + 2;
    }
}

static void
fault_request_free (FaultRequest *request)
{
  g_free (request->method);
  g_free (request->path);
  g_clear_pointer (&request->query, g_hash_table_unref);
  g_free (request);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (FaultRequest, fault_request_free)

/* Reads one request (head and body), records its raw bytes and returns
 * it parsed; NULL on EOF, stop or garbage. */
static FaultRequest *
fault_read_request (FaultConn *conn)
{
  g_autoptr(FaultRequest) request = g_new0 (FaultRequest, 1);
  g_auto(GStrv) lines = NULL;
  g_auto(GStrv) request_line = NULL;
  g_autofree char *head = NULL;
  gssize head_end;
  gsize total;
  gint64 content_length = -1;
  gboolean chunked = FALSE;
  char *query;

  while ((head_end = find_bytes (conn->buf->data, conn->buf->len, 0, "\r\n\r\n")) < 0)
    if (conn->buf->len > FAULT_MAX_REQUEST || fault_read_more (conn) <= 0)
      return NULL;

  head = g_strndup ((const char *) conn->buf->data, (gsize) head_end);
  lines = g_strsplit (head, "\r\n", -1);
  request_line = g_strsplit (lines[0], " ", 3);
  if (g_strv_length (request_line) < 2)
    return NULL;

  request->method = g_strdup (request_line[0]);
  query = strchr (request_line[1], '?');
  if (query != NULL)
    {
      request->query = g_uri_parse_params (query + 1, -1, "&",
                                           G_URI_PARAMS_NONE, NULL);
      *query = '\0';
    }
  request->path = g_strdup (request_line[1]);

  for (guint i = 1; lines[i] != NULL; i++)
    {
      char *colon = strchr (lines[i], ':');
      g_autofree char *name = NULL;
      g_autofree char *value = NULL;

      if (colon == NULL)
        continue;

      name = g_ascii_strdown (lines[i], colon - lines[i]);
      value = g_strstrip (g_strdup (colon + 1));

      if (g_str_equal (name, "content-length"))
        content_length = g_ascii_strtoll (value, NULL, 10);
      else if (g_str_equal (name, "transfer-encoding") &&
               g_ascii_strcasecmp (value, "chunked") == 0)
        chunked = TRUE;
    }

  total = (gsize) head_end + 4;
  if (chunked)
    {
      total = fault_read_chunked (conn, total);
      if (total == 0)
        return NULL;
    }
  else if (content_length > 0)
    {
      if (content_length > FAULT_MAX_REQUEST ||
          !fault_fill (conn, total + (gsize) content_length))
        return NULL;
      total += (gsize) content_length;
    }

  g_mutex_lock (&conn->server->mutex);
  g_ptr_array_add (conn->server->requests,
                   g_bytes_new (conn->buf->data, total));
  g_mutex_unlock (&conn->server->mutex);

  g_byte_array_remove_range (conn->buf, 0, (guint) total);
  conn->n_requests++;

  return g_steal_pointer (&request);
}

typedef enum {
  FAULT_NEXT,     /* read the next request on this connection */
  FAULT_CLOSE,    /* close cleanly */
  FAULT_RST,      /* close with RST */
  FAULT_HOLD,     /* keep open until the peer (or free()) closes */
} FaultAction;

static FaultAction
fault_respond (FaultConn    *conn,
               FaultRequest *request)
{
  const char *path = request->path;

  if (conn->close_next)
    {
      /* The request after a /keepalive-then-close response: close without
       * answering (stale keep-alive connection). */
      return FAULT_CLOSE;
    }

  if (g_str_equal (path, "/keepalive-then-close"))
    {
      fault_send_str (conn,
                      "HTTP/1.1 200 OK\r\n"
                      "Content-Length: 2\r\n"
                      "Connection: keep-alive\r\n"
                      "\r\n"
                      "ok");
      conn->close_next = TRUE;
      return FAULT_NEXT;
    }
  else if (g_str_equal (path, "/hang-headers"))
    {
      fault_send_str (conn,
                      "HTTP/1.1 200 OK\r\n"
                      "Content-Length: 100\r\n"
                      "\r\n");
      return FAULT_HOLD;
    }
  else if (g_str_equal (path, "/hang"))
    {
      return FAULT_HOLD;
    }
  else if (g_str_equal (path, "/close-mid-body") ||
           g_str_equal (path, "/close-mid-body-keepalive") ||
           g_str_equal (path, "/short-cl"))
    {
      /* /close-mid-body: no Connection header (HTTP/1.1 default is
       * keep-alive); -keepalive: says so explicitly; /short-cl:
       * Connection: close. */
      const char *connection = "";
      char body[500];

      if (g_str_equal (path, "/close-mid-body-keepalive"))
        connection = "Connection: keep-alive\r\n";
      else if (g_str_equal (path, "/short-cl"))
        connection = "Connection: close\r\n";

      memset (body, 'a', sizeof body);
      if (fault_send_str (conn, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n") &&
          fault_send_str (conn, connection) &&
          fault_send_str (conn, "\r\n"))
        fault_send (conn, body, sizeof body);
      return FAULT_CLOSE;
    }
  else if (g_str_equal (path, "/close-after-chunk"))
    {
      fault_send_str (conn,
                      "HTTP/1.1 200 OK\r\n"
                      "Transfer-Encoding: chunked\r\n"
                      "\r\n"
                      "5\r\nhello\r\n");
      return FAULT_CLOSE;
    }
  else if (g_str_equal (path, "/rst"))
    {
      char body[100];

      memset (body, 'r', sizeof body);
      if (fault_send_str (conn, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"))
        fault_send (conn, body, sizeof body);
      return FAULT_RST;
    }
  else if (g_str_equal (path, "/rst-before"))
    {
      return FAULT_RST;
    }
  else if (g_str_equal (path, "/close-before"))
    {
      return FAULT_CLOSE;
    }
  else if (g_str_equal (path, "/long-cl"))
    {
      fault_send_str (conn,
                      "HTTP/1.1 200 OK\r\n"
                      "Content-Length: 10\r\n"
                      "Connection: close\r\n"
                      "\r\n"
                      "0123456789abcdefghij");
      return FAULT_CLOSE;
    }
  else if (g_str_equal (path, "/garbage"))
    {
      fault_send_str (conn, "HTTP/1.1 abc garbage\r\n\r\n");
      return FAULT_CLOSE;
    }
  else if (g_str_equal (path, "/huge-headers"))
    {
      GString *head = g_string_new ("HTTP/1.1 200 OK\r\n");
      g_autofree char *filler = g_strnfill (1000, 'h');

      /* 100 lines of ~1 KiB: 100 KiB of header section */
      for (guint i = 0; i < 100; i++)
        g_string_append_printf (head, "X-Huge-%03u: %s\r\n", i, filler);
      g_string_append (head,
                       "Content-Length: 2\r\n"
                       "Connection: close\r\n"
                       "\r\n"
                       "ok");
      fault_send (conn, head->str, head->len);
      g_string_free (head, TRUE);
      return FAULT_CLOSE;
    }
  else if (g_str_equal (path, "/big-headers"))
    {
      const char *size_str = request->query ? g_hash_table_lookup (request->query, "size") : NULL;
      gsize size = size_str ? (gsize) g_ascii_strtoull (size_str, NULL, 10) : 1024;
      g_autofree char *value = g_strnfill (size, 'x');
      g_autofree char *head = NULL;

      head = g_strdup_printf ("HTTP/1.1 200 OK\r\n"
                              "X-Big: %s\r\n"
                              "Content-Length: 1\r\n"
                              "Connection: close\r\n"
                              "\r\n"
                              "b", value);
      fault_send_str (conn, head);
      return FAULT_CLOSE;
    }
  else if (g_str_equal (path, "/early-hints"))
    {
      fault_send_str (conn,
                      "HTTP/1.1 103 Early Hints\r\n"
                      "Link: </style.css>; rel=preload\r\n"
                      "\r\n"
                      "HTTP/1.1 200 OK\r\n"
                      "Content-Length: 2\r\n"
                      "Connection: close\r\n"
                      "\r\n"
                      "hi");
      return FAULT_CLOSE;
    }
  else if (g_str_equal (path, "/reason-ctl"))
    {
      fault_send_str (conn,
                      "HTTP/1.1 200 Bad\x01Reason\r\n"
                      "Content-Length: 0\r\n"
                      "Connection: close\r\n"
                      "\r\n");
      return FAULT_CLOSE;
    }

  fault_send_str (conn,
                  "HTTP/1.1 404 Not Found\r\n"
                  "Content-Length: 9\r\n"
                  "Connection: close\r\n"
                  "\r\n"
                  "not found");
  return FAULT_CLOSE;
}

static gpointer
fault_conn_thread_func (gpointer data)
{
  FaultConn *conn = data;
  FaultAction action = FAULT_CLOSE;

  for (;;)
    {
      g_autoptr(FaultRequest) request = fault_read_request (conn);

      if (request == NULL)
        {
          action = FAULT_CLOSE;
          break;
        }

      action = fault_respond (conn, request);
      if (action != FAULT_NEXT)
        break;
    }

  switch (action)
    {
    case FAULT_HOLD:
      fault_hold (conn);
      break;
    case FAULT_RST:
      fault_rst (conn);
      break;
    case FAULT_CLOSE:
    case FAULT_NEXT:
    default:
      break;
    }

  if (conn->fd >= 0)
    close (conn->fd);

  /* Hand ourselves over to be joined (by the accept thread or free()). */
  g_mutex_lock (&conn->server->mutex);
  if (g_ptr_array_remove_fast (conn->server->conn_threads, g_thread_self ()))
    g_ptr_array_add (conn->server->finished, g_thread_self ());
  g_mutex_unlock (&conn->server->mutex);

  g_byte_array_unref (conn->buf);
  g_free (conn);

  return NULL;
}

static void
join_all (GPtrArray *threads)
{
  for (guint i = 0; i < threads->len; i++)
    g_thread_join (g_ptr_array_index (threads, i));
  g_ptr_array_unref (threads);
}

static gpointer
fault_accept_thread_func (gpointer data)
{
  TestFaultServer *self = data;

  for (;;)
    {
      struct pollfd fds[2] = {
        { .fd = self->listen_fd, .events = POLLIN },
        { .fd = self->stop_pipe[0], .events = POLLIN },
      };
      FaultConn *conn;
      GPtrArray *finished;
      int fd;
      int r;

      r = poll (fds, 2, -1);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        g_error ("fault server: poll: %s", g_strerror (errno));
      if (fds[1].revents != 0)
        break;
      if (fds[0].revents == 0)
        continue;

      /* the listener is non-blocking: a connection that vanished between
       * poll() and accept() must not block us here */
      fd = accept4 (self->listen_fd, NULL, NULL, SOCK_CLOEXEC);
      if (fd < 0)
        continue;

      g_atomic_int_inc (&self->connections);

      conn = g_new0 (FaultConn, 1);
      conn->server = self;
      conn->fd = fd;
      conn->buf = g_byte_array_new ();

      /* Created under the lock, so the thread cannot look itself up in
       * conn_threads before it is there. */
      g_mutex_lock (&self->mutex);
      g_ptr_array_add (self->conn_threads,
                       g_thread_new ("fault-conn", fault_conn_thread_func, conn));
      finished = g_steal_pointer (&self->finished);
      self->finished = g_ptr_array_new ();
      g_mutex_unlock (&self->mutex);

      /* reap connections that are over, so threads do not pile up */
      join_all (finished);
    }

  return NULL;
}

TestFaultServer *
test_fault_server_new (void)
{
  TestFaultServer *self = g_new0 (TestFaultServer, 1);

  g_mutex_init (&self->mutex);
  self->conn_threads = g_ptr_array_new ();
  self->finished = g_ptr_array_new ();
  self->requests = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);

  if (pipe2 (self->stop_pipe, O_CLOEXEC) < 0)
    g_error ("pipe2: %s", g_strerror (errno));

  self->listen_fd = loopback_socket (&self->port, 128);
  fcntl (self->listen_fd, F_SETFL,
         fcntl (self->listen_fd, F_GETFL) | O_NONBLOCK);
  self->origin = g_strdup_printf ("http://127.0.0.1:%u", self->port);
  self->accept_thread = g_thread_new ("fault-accept", fault_accept_thread_func, self);

  return self;
}

void
test_fault_server_free (TestFaultServer *server)
{
  GPtrArray *running;
  GPtrArray *finished;

  if (server == NULL)
    return;

  /* The pipe stays readable: every poll in every thread wakes up. */
  if (write (server->stop_pipe[1], "x", 1) != 1)
    g_error ("fault server: cannot signal stop: %s", g_strerror (errno));

  g_thread_join (server->accept_thread);
  close (server->listen_fd);

  /* No new connection threads after the accept thread is gone. Threads
   * still running will not find themselves in the fresh conn_threads and
   * leave `finished` alone; every thread is joined exactly once here. */
  g_mutex_lock (&server->mutex);
  running = g_steal_pointer (&server->conn_threads);
  finished = g_steal_pointer (&server->finished);
  server->conn_threads = g_ptr_array_new ();
  server->finished = g_ptr_array_new ();
  g_mutex_unlock (&server->mutex);

  join_all (running);
  join_all (finished);
  g_assert_cmpuint (server->finished->len, ==, 0);
  g_ptr_array_unref (server->conn_threads);
  g_ptr_array_unref (server->finished);

  close (server->stop_pipe[0]);
  close (server->stop_pipe[1]);
  g_ptr_array_unref (server->requests);
  g_mutex_clear (&server->mutex);
  g_free (server->origin);
  g_free (server);
}

const char *
test_fault_server_get_origin (TestFaultServer *server)
{
  return server->origin;
}

GPtrArray *
test_fault_server_get_requests (TestFaultServer *server)
{
  GPtrArray *copy = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);

  g_mutex_lock (&server->mutex);
  for (guint i = 0; i < server->requests->len; i++)
    g_ptr_array_add (copy, g_bytes_ref (g_ptr_array_index (server->requests, i)));
  g_mutex_unlock (&server->mutex);

  return copy;
}

guint
test_fault_server_get_connections (TestFaultServer *server)
{
  return (guint) g_atomic_int_get (&server->connections);
}

/* ------------------------------------------------------------------------
 * TestBlackhole
 * ------------------------------------------------------------------------ */

#define BLACKHOLE_FILLERS 4

struct _TestBlackhole
{
  int   listen_fd;
  int   fillers[BLACKHOLE_FILLERS];
  char *origin;
};

TestBlackhole *
test_blackhole_new (void)
{
  TestBlackhole *self = g_new0 (TestBlackhole, 1);
  struct sockaddr_in addr = { 0 };
  guint16 port;

  /* backlog 0: the accept queue holds one connection; once it is there
   * (and never accepted) Linux drops further SYNs, so connect() hangs. */
  self->listen_fd = loopback_socket (&port, 0);

  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  addr.sin_port = htons (port);

  for (guint i = 0; i < BLACKHOLE_FILLERS; i++)
    {
      int fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

      if (fd < 0)
        g_error ("socket: %s", g_strerror (errno));
      if (connect (fd, (struct sockaddr *) &addr, sizeof addr) < 0 &&
          errno != EINPROGRESS)
        g_error ("blackhole: filler connect: %s", g_strerror (errno));

      self->fillers[i] = fd;

      if (i == 0)
        {
          /* Let the first one land in the accept queue before the others
           * arrive, so the queue is surely full when we return. */
          struct pollfd pfd = { .fd = fd, .events = POLLOUT };

          if (poll (&pfd, 1, TEST_WAIT_MS) != 1)
            g_error ("blackhole: the first filler connection did not complete");
        }
    }

  self->origin = g_strdup_printf ("http://127.0.0.1:%u", port);
  return self;
}

void
test_blackhole_free (TestBlackhole *hole)
{
  if (hole == NULL)
    return;

  for (guint i = 0; i < BLACKHOLE_FILLERS; i++)
    close (hole->fillers[i]);
  close (hole->listen_fd);
  g_free (hole->origin);
  g_free (hole);
}

const char *
test_blackhole_get_origin (TestBlackhole *hole)
{
  return hole->origin;
}

/* ------------------------------------------------------------------------
 * TestServerProcess
 * ------------------------------------------------------------------------ */

/* The child's argv after TEST_SERVE_ARG, in the order the origins come */
#define SERVE_FAULT_SERVER "fault-server"
#define SERVE_BLACKHOLE    "blackhole"

/* Spawned and reaped by hand (g_spawn + pidfd), not with GSubprocess:
 * GSubprocess watches its child from GLib's worker thread, one more thread
 * handing memory over inside GLib, where ThreadSanitizer cannot follow. */
struct _TestServerProcess
{
  GPid   pid;
  int    stdin_fd;
  char  *origin;        /* TestServer */
  char  *fault_origin;  /* TestFaultServer, or NULL */
  char  *hole_origin;   /* TestBlackhole, or NULL */
};

gboolean
test_serve_requested (int    argc,
                      char **argv)
{
  return argc >= 2 && g_str_equal (argv[1], TEST_SERVE_ARG);
}

int
test_serve_main (int    argc,
                 char **argv)
{
  TestServer *server;
  TestFaultServer *faults = NULL;
  TestBlackhole *hole = NULL;
  GString *line;
  char c;

  g_assert_true (test_serve_requested (argc, argv));

  signal (SIGPIPE, SIG_IGN);
  server = test_server_new ();
  line = g_string_new (test_server_get_origin (server));
  for (int i = 2; i < argc; i++)
    {
      if (g_str_equal (argv[i], SERVE_FAULT_SERVER) && faults == NULL)
        {
          faults = test_fault_server_new ();
          g_string_append_printf (line, " %s", test_fault_server_get_origin (faults));
        }
      else if (g_str_equal (argv[i], SERVE_BLACKHOLE) && hole == NULL)
        {
          hole = test_blackhole_new ();
          g_string_append_printf (line, " %s", test_blackhole_get_origin (hole));
        }
      else
        g_error ("%s: unknown or repeated server \"%s\"", TEST_SERVE_ARG, argv[i]);
    }
  /* "ORIGIN[ ORIGIN...]\n" */
  printf ("%s\n", line->str);
  fflush (stdout);
  g_string_free (line, TRUE);

  /* until the parent closes our stdin, or dies */
  while (read (STDIN_FILENO, &c, 1) > 0)
    ;

  test_blackhole_free (hole);
  test_fault_server_free (faults);
  test_server_free (server);
  return 0;
}

/* Waits (bounded) until fd is readable; FALSE on timeout. */
static gboolean
poll_readable (int   fd,
               guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  for (;;)
    {
      struct pollfd pfd = { .fd = fd, .events = POLLIN };
      gint64 left = (deadline - g_get_monotonic_time ()) / 1000;
      int r;

      if (left <= 0)
        return FALSE;
      r = poll (&pfd, 1, (int) left);
      if (r > 0)
        return TRUE;
      if (r < 0 && errno != EINTR)
        g_error ("poll: %s", g_strerror (errno));
    }
}

TestServerProcess *
test_server_process_new (TestServeFlags flags)
{
  TestServerProcess *self = g_new0 (TestServerProcess, 1);
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
  g_autofree char *tsan_options = NULL;
  g_auto(GStrv) envp = g_get_environ ();
  g_auto(GStrv) origins = NULL;
  g_autoptr(GString) line = g_string_new (NULL);
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  GError *error = NULL;
  int stdout_fd = -1;
  guint i;

  g_assert_nonnull (exe);
  g_ptr_array_add (argv, exe);
  g_ptr_array_add (argv, (char *) TEST_SERVE_ARG);
  if (flags & TEST_SERVE_FAULT_SERVER)
    g_ptr_array_add (argv, (char *) SERVE_FAULT_SERVER);
  if (flags & TEST_SERVE_BLACKHOLE)
    g_ptr_array_add (argv, (char *) SERVE_BLACKHOLE);
  g_ptr_array_add (argv, NULL);

  /* Under ThreadSanitizer the child runs only test-util's servers, whose
   * reports (GLib's thread pool inside libsoup's server) say nothing
   * about the library and would make the child exit with status 66. */
  tsan_options = g_strconcat (g_environ_getenv (envp, "TSAN_OPTIONS") ?
                              g_environ_getenv (envp, "TSAN_OPTIONS") : "",
                              " report_bugs=0", NULL);
  envp = g_environ_setenv (envp, "TSAN_OPTIONS", tsan_options, TRUE);

  g_spawn_async_with_pipes (NULL, (char **) argv->pdata, envp,
                            G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_CLOEXEC_PIPES,
                            NULL, NULL, &self->pid, &self->stdin_fd, &stdout_fd,
                            NULL, &error);
  g_assert_no_error (error);

  /* "ORIGIN[ ORIGIN...]\n" */
  while (line->len == 0 || line->str[line->len - 1] != '\n')
    {
      char buf[256];
      gssize n;

      if (!poll_readable (stdout_fd, TEST_WAIT_MS))
        g_error ("the server process did not give its origins within %d ms",
                 TEST_WAIT_MS);
      n = read (stdout_fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        g_error ("the server process exited before giving its origins");
      g_string_append_len (line, buf, n);
    }
  close (stdout_fd);
  g_strchomp (line->str);

  /* the child's argv after the executable is TEST_SERVE_ARG and one word
   * per server after the TestServer, and so many origins come */
  origins = g_strsplit (line->str, " ", -1);
  g_assert_cmpuint (g_strv_length (origins), ==, argv->len - 2);
  for (i = 0; origins[i] != NULL; i++)
    g_assert_true (g_str_has_prefix (origins[i], "http://127.0.0.1:"));

  i = 0;
  self->origin = g_strdup (origins[i++]);
  if (flags & TEST_SERVE_FAULT_SERVER)
    self->fault_origin = g_strdup (origins[i++]);
  if (flags & TEST_SERVE_BLACKHOLE)
    self->hole_origin = g_strdup (origins[i++]);

  return self;
}

void
test_server_process_free (TestServerProcess *self)
{
  GError *error = NULL;
  int status = 0;
  int pidfd;

  /* EOF on its stdin: the child frees its servers and exits */
  close (self->stdin_fd);

  pidfd = (int) syscall (SYS_pidfd_open, self->pid, 0);
  if (pidfd >= 0)
    {
      if (!poll_readable (pidfd, TEST_WAIT_MS))
        g_error ("the server process did not exit within %d ms", TEST_WAIT_MS);
      close (pidfd);
      g_assert_cmpint (waitpid (self->pid, &status, 0), ==, self->pid);
    }
  else
    {
      /* no pidfd (valgrind 3.19 does not know the syscall): poll */
      gint64 deadline = g_get_monotonic_time () + TEST_WAIT_MS * 1000;
      pid_t r;

      g_assert_cmpint (errno, ==, ENOSYS);
      while ((r = waitpid (self->pid, &status, WNOHANG)) == 0 &&
             g_get_monotonic_time () < deadline)
        test_iterate_for (10);
      if (r == 0)
        g_error ("the server process did not exit within %d ms", TEST_WAIT_MS);
      g_assert_cmpint (r, ==, self->pid);
    }
  g_assert_true (g_spawn_check_wait_status (status, &error));
  g_assert_no_error (error);
  g_spawn_close_pid (self->pid);

  g_free (self->origin);
  g_free (self->fault_origin);
  g_free (self->hole_origin);
  g_free (self);
}

const char *
test_server_process_get_origin (TestServerProcess *self)
{
  return self->origin;
}

const char *
test_server_process_get_fault_origin (TestServerProcess *self)
{
  g_assert_nonnull (self->fault_origin);  /* TEST_SERVE_FAULT_SERVER */
  return self->fault_origin;
}

const char *
test_server_process_get_hole_origin (TestServerProcess *self)
{
  g_assert_nonnull (self->hole_origin);  /* TEST_SERVE_BLACKHOLE */
  return self->hole_origin;
}

/* ------------------------------------------------------------------------
 * TestRecorder
 * ------------------------------------------------------------------------ */

/* Set while test_dispatch_and_wait() is inside dispatch(): a callback then
 * would be re-entrant. */
static GPrivate in_dispatch;

static void test_recorder_handler_iface_init (DispatchHandlerInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (TestRecorder, test_recorder, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (DISPATCH_TYPE_HANDLER,
                                                      test_recorder_handler_iface_init))

static const char *
event_name (TestEvent event)
{
  switch ((int) event)
    {
    case TEST_EVENT_REQUEST_START: return "request-start";
    case TEST_EVENT_INFORMATIONAL: return "informational";
    case TEST_EVENT_RESPONSE_START: return "response-start";
    case TEST_EVENT_DATA: return "data";
    case TEST_EVENT_END: return "end";
    case TEST_EVENT_ERROR: return "error";
    default: return "(invalid event)";
    }
}

char *
test_recorder_describe (TestRecorder *self)
{
  GString *str = g_string_new ("[");
  guint n_informational = 0;

  for (guint i = 0; i < self->events->len; i++)
    {
      TestEvent event = g_array_index (self->events, TestEvent, i);

      if (i > 0)
        g_string_append (str, ", ");
      g_string_append (str, event_name (event));

      switch ((int) event)
        {
        case TEST_EVENT_INFORMATIONAL:
          if (n_informational < self->informational_status->len)
            g_string_append_printf (str, " %u",
                                    g_array_index (self->informational_status,
                                                   guint, n_informational));
          n_informational++;
          break;
        case TEST_EVENT_RESPONSE_START:
          g_string_append_printf (str, " %u \"%s\"", self->status,
                                  self->reason ? self->reason : "(null)");
          break;
        case TEST_EVENT_DATA:
          g_string_append_printf (str, " (%u chunks, %" G_GUINT64_FORMAT
                                  " bytes in all)",
                                  self->n_chunks, self->body_bytes);
          break;
        case TEST_EVENT_ERROR:
          if (self->error != NULL)
            g_string_append_printf (str, " %s:%d \"%s\"",
                                    g_quark_to_string (self->error->domain),
                                    self->error->code, self->error->message);
          break;
        default:
          break;
        }
    }

  g_string_append (str, "]");
  return g_string_free (str, FALSE);
}

static gboolean
recorder_has (TestRecorder *self,
              TestEvent     event)
{
  for (guint i = 0; i < self->events->len; i++)
    if (g_array_index (self->events, TestEvent, i) == event)
      return TRUE;

  return FALSE;
}

/* The checks every callback shares. */
static void
recorder_check (TestRecorder              *self,
                DispatchRequestController *controller,
                TestEvent                  event)
{
  g_assert_true (DISPATCH_IS_REQUEST_CONTROLLER (controller));
  g_assert_true (g_thread_self () == self->thread);
  g_assert_null (g_private_get (&in_dispatch));

  if (self->done)
    {
      g_autofree char *events = test_recorder_describe (self);

      g_error ("TestRecorder: %s after the terminal callback; events: %s",
               event_name (event), events);
    }

  if (event == TEST_EVENT_REQUEST_START)
    {
      g_assert_cmpuint (self->events->len, ==, 0);
      g_assert_null (self->controller);
      return;
    }

  if (self->events->len == 0 ||
      g_array_index (self->events, TestEvent, 0) != TEST_EVENT_REQUEST_START)
    g_error ("TestRecorder: %s before request-start", event_name (event));

  g_assert_true (controller == self->controller);
}

static void
recorder_record (TestRecorder              *self,
                 DispatchRequestController *controller,
                 TestEvent                  event)
{
  gboolean collapse = event == TEST_EVENT_DATA &&
                      self->events->len > 0 &&
                      g_array_index (self->events, TestEvent,
                                     self->events->len - 1) == TEST_EVENT_DATA;

  if (!collapse)
    g_array_append_val (self->events, event);

  if (event == TEST_EVENT_END || event == TEST_EVENT_ERROR)
    {
      self->done = TRUE;
      self->done_time = g_get_monotonic_time ();
    }

  if (self->hook != NULL)
    self->hook (self, controller, event, self->hook_data);
}

static void
test_recorder_on_request_start (DispatchHandler           *handler,
                                DispatchRequestController *controller)
{
  TestRecorder *self = TEST_RECORDER (handler);

  recorder_check (self, controller, TEST_EVENT_REQUEST_START);
  self->controller = g_object_ref (controller);
  recorder_record (self, controller, TEST_EVENT_REQUEST_START);
}

static void
test_recorder_on_response_informational (DispatchHandler           *handler,
                                         DispatchRequestController *controller,
                                         guint                      status,
                                         DispatchHeaders           *headers)
{
  TestRecorder *self = TEST_RECORDER (handler);

  recorder_check (self, controller, TEST_EVENT_INFORMATIONAL);
  g_assert_false (recorder_has (self, TEST_EVENT_RESPONSE_START));
  g_assert_cmpuint (status, >=, 100);
  g_assert_cmpuint (status, <, 200);
  g_assert_nonnull (headers);

  g_ptr_array_add (self->informational, dispatch_headers_ref (headers));
  g_array_append_val (self->informational_status, status);
  recorder_record (self, controller, TEST_EVENT_INFORMATIONAL);
}

static void
test_recorder_on_response_start (DispatchHandler           *handler,
                                 DispatchRequestController *controller,
                                 guint                      status,
                                 DispatchHeaders           *headers,
                                 const char                *reason)
{
  TestRecorder *self = TEST_RECORDER (handler);

  recorder_check (self, controller, TEST_EVENT_RESPONSE_START);
  if (recorder_has (self, TEST_EVENT_RESPONSE_START))
    {
      g_autofree char *events = test_recorder_describe (self);

      g_error ("TestRecorder: a second response-start (%u); events: %s",
               status, events);
    }
  g_assert_nonnull (headers);

  self->status = status;
  self->headers = dispatch_headers_ref (headers);
  self->reason = g_strdup (reason);
  recorder_record (self, controller, TEST_EVENT_RESPONSE_START);
}

static void
test_recorder_on_response_data (DispatchHandler           *handler,
                                DispatchRequestController *controller,
                                GBytes                    *chunk)
{
  TestRecorder *self = TEST_RECORDER (handler);
  gsize size;
  const guint8 *data;

  recorder_check (self, controller, TEST_EVENT_DATA);
  if (!recorder_has (self, TEST_EVENT_RESPONSE_START))
    g_error ("TestRecorder: data before response-start");
  g_assert_nonnull (chunk);

  data = g_bytes_get_data (chunk, &size);
  self->n_chunks++;
  self->body_bytes += size;
  if (!self->discard_body)
    g_byte_array_append (self->body, data, (guint) size);

  if (self->pause_at > 0 && self->body_bytes >= self->pause_at &&
      !g_object_get_data (G_OBJECT (self), "test-recorder-paused"))
    {
      g_object_set_data (G_OBJECT (self), "test-recorder-paused",
                         GINT_TO_POINTER (1));
      dispatch_request_controller_pause (controller);
    }

  recorder_record (self, controller, TEST_EVENT_DATA);
}

static void
test_recorder_on_response_end (DispatchHandler           *handler,
                               DispatchRequestController *controller,
                               DispatchHeaders           *trailers)
{
  TestRecorder *self = TEST_RECORDER (handler);

  recorder_check (self, controller, TEST_EVENT_END);
  if (!recorder_has (self, TEST_EVENT_RESPONSE_START))
    g_error ("TestRecorder: end without response-start");
  g_assert_nonnull (trailers);

  self->trailers = dispatch_headers_ref (trailers);
  recorder_record (self, controller, TEST_EVENT_END);
}

static void
test_recorder_on_response_error (DispatchHandler           *handler,
                                 DispatchRequestController *controller,
                                 const GError              *error)
{
  TestRecorder *self = TEST_RECORDER (handler);

  recorder_check (self, controller, TEST_EVENT_ERROR);
  g_assert_nonnull (error);

  self->error = g_error_copy (error);
  recorder_record (self, controller, TEST_EVENT_ERROR);
}

static void
test_recorder_handler_iface_init (DispatchHandlerInterface *iface)
{
  iface->on_request_start = test_recorder_on_request_start;
  iface->on_response_informational = test_recorder_on_response_informational;
  iface->on_response_start = test_recorder_on_response_start;
  iface->on_response_data = test_recorder_on_response_data;
  iface->on_response_end = test_recorder_on_response_end;
  iface->on_response_error = test_recorder_on_response_error;
}

static void
test_recorder_finalize (GObject *object)
{
  TestRecorder *self = TEST_RECORDER (object);

  g_clear_pointer (&self->events, g_array_unref);
  g_clear_pointer (&self->body, g_byte_array_unref);
  g_clear_pointer (&self->reason, g_free);
  g_clear_pointer (&self->headers, dispatch_headers_unref);
  g_clear_pointer (&self->trailers, dispatch_headers_unref);
  g_clear_pointer (&self->informational, g_ptr_array_unref);
  g_clear_pointer (&self->informational_status, g_array_unref);
  g_clear_error (&self->error);
  g_clear_object (&self->controller);
  g_clear_pointer (&self->thread, g_thread_unref);

  G_OBJECT_CLASS (test_recorder_parent_class)->finalize (object);
}

static void
test_recorder_class_init (TestRecorderClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = test_recorder_finalize;
}

static void
test_recorder_init (TestRecorder *self)
{
  self->events = g_array_new (FALSE, FALSE, sizeof (TestEvent));
  self->body = g_byte_array_new ();
  self->informational = g_ptr_array_new_with_free_func ((GDestroyNotify) dispatch_headers_unref);
  self->informational_status = g_array_new (FALSE, FALSE, sizeof (guint));
  self->thread = g_thread_ref (g_thread_self ());
}

TestRecorder *
test_recorder_new (void)
{
  return g_object_new (TEST_TYPE_RECORDER, NULL);
}

void
test_recorder_wait (TestRecorder *self,
                    guint         timeout_ms)
{
  g_assert_true (TEST_IS_RECORDER (self));
  g_assert_true (g_thread_self () == self->thread);

  if (!iterate_until (&self->done, timeout_ms))
    {
      g_autofree char *events = test_recorder_describe (self);

      g_error ("test_recorder_wait: no terminal callback within %u ms; "
               "events so far: %s", timeout_ms, events);
    }
}

void
test_recorder_assert_events (TestRecorder *self,
                             ...)
{
  g_autoptr(GString) expected = g_string_new (NULL);
  g_autoptr(GString) actual = g_string_new (NULL);
  va_list args;
  int event;

  va_start (args, self);
  while ((event = va_arg (args, int)) != -1)
    {
      if (expected->len > 0)
        g_string_append_c (expected, ' ');
      g_string_append (expected, event_name ((TestEvent) event));
    }
  va_end (args);

  for (guint i = 0; i < self->events->len; i++)
    {
      if (actual->len > 0)
        g_string_append_c (actual, ' ');
      g_string_append (actual,
                       event_name (g_array_index (self->events, TestEvent, i)));
    }

  if (!g_str_equal (expected->str, actual->str))
    {
      g_autofree char *events = test_recorder_describe (self);

      g_test_message ("recorded: %s", events);
    }
  g_assert_cmpstr (actual->str, ==, expected->str);
}

void
test_recorder_assert_ok (TestRecorder *self,
                         guint         status,
                         const char   *body)
{
  g_autofree char *events = test_recorder_describe (self);

  if (!self->done || self->error != NULL ||
      !recorder_has (self, TEST_EVENT_END))
    g_test_message ("expected success, recorded: %s", events);

  g_assert_true (self->done);
  g_assert_no_error (self->error);
  g_assert_true (recorder_has (self, TEST_EVENT_END));
  g_assert_cmpuint (self->status, ==, status);

  if (body != NULL)
    {
      g_assert_false (self->discard_body);
      g_assert_cmpmem (self->body->data, self->body->len, body, strlen (body));
    }
}

void
test_recorder_assert_error (TestRecorder *self,
                            int           code)
{
  g_autofree char *events = test_recorder_describe (self);

  if (!self->done || self->error == NULL ||
      !g_error_matches (self->error, DISPATCH_ERROR, code))
    g_test_message ("expected DISPATCH_ERROR %d, recorded: %s", code, events);

  g_assert_true (self->done);
  g_assert_error (self->error, DISPATCH_ERROR, code);
  g_assert_false (recorder_has (self, TEST_EVENT_END));
}

TestRecorder *
test_dispatch_and_wait (DispatchDispatcher *agent,
                        DispatchRequest    *request)
{
  TestRecorder *recorder = test_recorder_new ();
  g_autoptr(DispatchRequestController) controller = NULL;

  g_private_set (&in_dispatch, GINT_TO_POINTER (1));
  controller = dispatch_dispatcher_dispatch (agent, request,
                                             DISPATCH_HANDLER (recorder));
  g_private_set (&in_dispatch, NULL);

  g_assert_true (DISPATCH_IS_REQUEST_CONTROLLER (controller));
  test_recorder_wait (recorder, TEST_WAIT_MS);
  g_assert_true (recorder->controller == controller);

  return recorder;
}

/* ------------------------------------------------------------------------
 * Fixture
 * ------------------------------------------------------------------------ */

void
test_fixture_setup (TestFixture   *fixture,
                    gconstpointer  data)
{
  fixture->server = test_server_new ();
  fixture->fault = test_fault_server_new ();
  fixture->agent = dispatch_agent_new ();
}

void
test_fixture_teardown (TestFixture   *fixture,
                       gconstpointer  data)
{
  g_clear_object (&fixture->agent);
  g_clear_pointer (&fixture->server, test_server_free);
  g_clear_pointer (&fixture->fault, test_fault_server_free);
}
