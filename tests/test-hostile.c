/* test-hostile.c — hostile servers: floods, malformed framing, slowloris
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A raw-socket server of its own (HostileServer, below) on 127.0.0.1 port
 * 0 reads one request head per connection and then misbehaves as the path
 * says. Every case checks:
 *  - the outcome, precisely: the DispatchError code that libsoup 3.2.3
 *    plus our mapping produce (or success, with the exact body);
 *  - that it ends promptly: a stated bound on the time from dispatch() to
 *    the terminal callback;
 *  - exactly one terminal callback: TestRecorder enforces the handler
 *    contract, and the main loop is run a little longer afterwards so a
 *    late second callback would still be caught;
 *  - bounded client memory for the floods (RSS growth, normal builds).
 *
 * One case shows a libsoup 3.2 limitation the dispatcher cannot see past
 * (an overflowing chunk size is read as the last chunk): it checks the
 * known behaviour precisely and is marked incomplete (TAP "# TODO"), so
 * it turns into a plain pass on a libsoup that gets it right. Any other
 * outcome fails.
 */

#define _GNU_SOURCE 1   /* accept4, pipe2 */

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test-util.h"

#define KIB 1024
#define MIB (1024 * 1024)

/* Client memory growth allowed during a flood. */
#define MAX_RSS_GROWTH (16 * MIB)

/* AddressSanitizer keeps freed memory in a quarantine of up to 256 MiB,
 * so RSS says nothing about our buffering there (as in
 * test-backpressure.c): RSS bounds are checked in normal builds only. */
#if defined(__SANITIZE_ADDRESS__)
# define CHECK_RSS 0
#elif defined(__has_feature)
# if __has_feature(address_sanitizer)
#  define CHECK_RSS 0
# endif
#endif
#ifndef CHECK_RSS
# define CHECK_RSS 1
#endif

/* Under valgrind, RSS is mostly valgrind's own: not checked there either. */
#if defined(__has_include)
# if __has_include(<valgrind/valgrind.h>)
#  include <valgrind/valgrind.h>
#  define UNDER_VALGRIND() (RUNNING_ON_VALGRIND != 0)
# endif
#endif
#ifndef UNDER_VALGRIND
# define UNDER_VALGRIND() FALSE
#endif

/* Caps on what the server sends "forever", so a client that never gives
 * up cannot keep a server thread busy without end (the test fails on its
 * time bound long before). */
#define FOREVER_BYTES ((guint64) 512 * MIB)
#define FOREVER_MS    30000

/* ------------------------------------------------------------------------
 * HostileServer
 * ------------------------------------------------------------------------ */

typedef struct
{
  int        listen_fd;
  int        stop_pipe[2];   /* readable once the server stops */
  char      *origin;
  GThread   *accept_thread;

  GMutex     mutex;
  GPtrArray *threads;        /* every connection thread, joined by free() */

  guint64    written;        /* __atomic: bytes the scripts sent */
  int        peer_gone;      /* atomic: the client closed the connection */
} HostileServer;

typedef struct
{
  HostileServer *server;
  int            fd;
} HostileConn;

typedef enum {
  WAIT_READY,
  WAIT_TIMEOUT,
  WAIT_STOP,
} WaitResult;

/* Waits for events on the connection (or, with events == 0, for
 * timeout_ms); the server stopping ends any wait. */
static WaitResult
hostile_wait (HostileConn *conn,
              short        events,
              int          timeout_ms)
{
  for (;;)
    {
      struct pollfd fds[2] = {
        { .fd = conn->server->stop_pipe[0], .events = POLLIN },
        { .fd = conn->fd, .events = events },
      };
      int r = poll (fds, events != 0 ? 2 : 1, timeout_ms);

      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        g_error ("hostile server: poll: %s", g_strerror (errno));
      if (fds[0].revents != 0)
        return WAIT_STOP;
      if (r == 0)
        return WAIT_TIMEOUT;
      if (fds[1].revents != 0)
        return WAIT_READY;
    }
}

/* Sleeps ms, or less if the server stops; FALSE if it stopped. */
static gboolean
hostile_sleep (HostileConn *conn,
               int          ms)
{
  return hostile_wait (conn, 0, ms) == WAIT_TIMEOUT;
}

/* Sends everything; FALSE once the peer is gone or the server stops. */
static gboolean
hostile_send (HostileConn *conn,
              const void  *data,
              gsize        len)
{
  const guint8 *p = data;

  while (len > 0)
    {
      gssize n;

      if (hostile_wait (conn, POLLOUT, -1) == WAIT_STOP)
        return FALSE;

      n = send (conn->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        continue;
      if (n < 0)
        {
          g_atomic_int_set (&conn->server->peer_gone, TRUE);
          return FALSE;
        }

      __atomic_add_fetch (&conn->server->written, (guint64) n, __ATOMIC_SEQ_CST);
      p += n;
      len -= (gsize) n;
    }

  return TRUE;
}

static gboolean
hostile_send_str (HostileConn *conn,
                  const char  *str)
{
  return hostile_send (conn, str, strlen (str));
}

/* Keeps the connection open, discarding input, until the peer closes it
 * or the server stops. */
static void
hostile_hold (HostileConn *conn)
{
  for (;;)
    {
      char buf[4096];
      gssize n;

      if (hostile_wait (conn, POLLIN, -1) == WAIT_STOP)
        return;

      n = recv (conn->fd, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          g_atomic_int_set (&conn->server->peer_gone, TRUE);
          return;
        }
    }
}

/* Reads the request head; returns the request target ("/path?query"). */
static char *
hostile_read_request (HostileConn *conn)
{
  g_autoptr(GByteArray) buf = g_byte_array_new ();
  g_auto(GStrv) request_line = NULL;
  char *end;

  while (buf->len < 64 * KIB)
    {
      guint8 tmp[4096];
      gssize n;

      if (hostile_wait (conn, POLLIN, -1) == WAIT_STOP)
        return NULL;

      n = recv (conn->fd, tmp, sizeof tmp, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return NULL;

      g_byte_array_append (buf, tmp, (guint) n);
      if (g_strstr_len ((const char *) buf->data, buf->len, "\r\n\r\n") != NULL)
        break;
    }

  g_byte_array_append (buf, (const guint8 *) "", 1);
  end = strstr ((const char *) buf->data, "\r\n");
  if (end == NULL)
    return NULL;
  *end = '\0';

  request_line = g_strsplit ((const char *) buf->data, " ", 3);
  if (g_strv_length (request_line) < 2)
    return NULL;

  return g_strdup (request_line[1]);
}

static const char *
param (GHashTable *params,
       const char *name,
       const char *fallback)
{
  const char *value = params ? g_hash_table_lookup (params, name) : NULL;

  return value ? value : fallback;
}

static guint
param_uint (GHashTable *params,
            const char *name,
            guint       fallback)
{
  const char *value = param (params, name, NULL);

  return value ? (guint) g_ascii_strtoull (value, NULL, 10) : fallback;
}

/* Sends `unit` over and over, up to the caps; for the floods. */
static void
send_forever (HostileConn *conn,
              const char  *unit)
{
  gsize unit_len = strlen (unit);
  g_autoptr(GString) batch = g_string_new (NULL);
  gint64 deadline = g_get_monotonic_time () + (gint64) FOREVER_MS * 1000;
  guint64 sent = 0;

  while (batch->len < 16 * KIB)
    g_string_append_len (batch, unit, unit_len);

  while (sent < FOREVER_BYTES && g_get_monotonic_time () < deadline)
    {
      if (!hostile_send (conn, batch->str, batch->len))
        return;
      sent += batch->len;
    }
}

/* Sends data one byte at a time, ms apart. */
static gboolean
send_slowly (HostileConn *conn,
             const char  *data,
             gsize        len,
             guint        ms)
{
  for (gsize i = 0; i < len; i++)
    {
      if (i > 0 && !hostile_sleep (conn, (int) ms))
        return FALSE;
      if (!hostile_send (conn, data + i, 1))
        return FALSE;
    }

  return TRUE;
}

static const char slow_head[] =
  "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

/* The scripts, by path. After a script returns the connection is closed
 * (cleanly) unless it says otherwise by holding it. */
static void
hostile_respond (HostileConn *conn,
                 const char  *path,
                 GHashTable  *params)
{
  if (g_str_equal (path, "/headers-forever"))
    {
      /* a head that never ends: field lines, forever */
      if (hostile_send_str (conn, "HTTP/1.1 200 OK\r\n"))
        send_forever (conn, "X-A: b\r\n");
    }
  else if (g_str_equal (path, "/header-line-forever"))
    {
      /* one field line that never ends (no LF at all) */
      if (hostile_send_str (conn, "HTTP/1.1 200 OK\r\nX-A: "))
        send_forever (conn, "aaaaaaaaaaaaaaaa");
    }
  else if (g_str_equal (path, "/body-forever"))
    {
      /* no Content-Length, not chunked: the body ends at close, never */
      if (hostile_send_str (conn, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"))
        send_forever (conn, "0123456789abcdef");
    }
  else if (g_str_equal (path, "/informational-flood"))
    {
      guint count = param_uint (params, "count", 10000);
      const char *then = param (params, "then", "silence");
      g_autoptr(GString) flood = g_string_new (NULL);

      for (guint i = 0; i < count; i++)
        g_string_append (flood, "HTTP/1.1 102 Processing\r\n\r\n");
      if (!hostile_send (conn, flood->str, flood->len))
        return;

      if (g_str_equal (then, "200"))
        hostile_send_str (conn,
                          "HTTP/1.1 200 OK\r\n"
                          "Content-Length: 4\r\n"
                          "Connection: close\r\n"
                          "\r\n"
                          "done");
      else
        hostile_hold (conn);
    }
  else if (g_str_equal (path, "/informational-trickle"))
    {
      guint ms = param_uint (params, "ms", 200);
      gint64 deadline = g_get_monotonic_time () + (gint64) FOREVER_MS * 1000;

      while (g_get_monotonic_time () < deadline &&
             hostile_send_str (conn, "HTTP/1.1 102 Processing\r\n\r\n") &&
             hostile_sleep (conn, (int) ms))
        ;
    }
  else if (g_str_equal (path, "/reason-control"))
    {
      hostile_send_str (conn,
                        "HTTP/1.1 200 Bad\x01Re\x7f" "ason\r\n"
                        "Content-Length: 2\r\n"
                        "Connection: close\r\n"
                        "\r\n"
                        "ok");
    }
  else if (g_str_equal (path, "/reason-not-utf8"))
    {
      hostile_send_str (conn,
                        "HTTP/1.1 200 \xff\xfe\xc3\r\n"
                        "Content-Length: 2\r\n"
                        "Connection: close\r\n"
                        "\r\n"
                        "ok");
    }
  else if (g_str_equal (path, "/nul-in-value"))
    {
      static const char head[] =
        "HTTP/1.1 200 OK\r\n"
        "X-Nul: a\0b\r\n"
        "Content-Length: 2\r\n"
        "Connection: close\r\n"
        "\r\n"
        "ok";

      hostile_send (conn, head, sizeof head - 1);
    }
  else if (g_str_equal (path, "/content-length"))
    {
      /* Content-Length as given, then "hello" and a close */
      g_autofree char *head = NULL;

      head = g_strdup_printf ("HTTP/1.1 200 OK\r\n"
                              "Content-Length: %s\r\n"
                              "%s"
                              "\r\n"
                              "hello",
                              param (params, "value", "5"),
                              g_str_equal (param (params, "connection", "close"), "close")
                                ? "Connection: close\r\n" : "");
      hostile_send_str (conn, head);
    }
  else if (g_str_equal (path, "/chunk-size-overflow"))
    {
      /* a chunk whose size overflows 64 bits, with its data, then more
       * chunks and the end; the connection stays open */
      hostile_send_str (conn,
                        "HTTP/1.1 200 OK\r\n"
                        "Transfer-Encoding: chunked\r\n"
                        "\r\n"
                        "5\r\nhello\r\n"
                        "FFFFFFFFFFFFFFFFFFFF\r\n"
                        "xyz\r\n"
                        "5\r\nworld\r\n"
                        "0\r\n\r\n");
      hostile_hold (conn);
    }
  else if (g_str_equal (path, "/slow-head"))
    {
      send_slowly (conn, slow_head, strlen (slow_head), param_uint (params, "ms", 1000));
      hostile_hold (conn);
    }
  else if (g_str_equal (path, "/slow-body"))
    {
      guint size = param_uint (params, "size", 8);
      g_autofree char *head = g_strdup_printf ("HTTP/1.1 200 OK\r\n"
                                               "Content-Length: %u\r\n"
                                               "Connection: close\r\n"
                                               "\r\n", size);
      g_autofree char *body = g_strnfill (size, 's');

      if (hostile_send_str (conn, head))
        send_slowly (conn, body, size, param_uint (params, "ms", 300));
    }
  else
    {
      hostile_send_str (conn,
                        "HTTP/1.1 404 Not Found\r\n"
                        "Content-Length: 0\r\n"
                        "Connection: close\r\n"
                        "\r\n");
    }
}

static gpointer
hostile_conn_thread (gpointer data)
{
  HostileConn *conn = data;
  g_autofree char *target = hostile_read_request (conn);

  if (target != NULL)
    {
      g_autoptr(GHashTable) params = NULL;
      char *query = strchr (target, '?');

      if (query != NULL)
        {
          *query = '\0';
          params = g_uri_parse_params (query + 1, -1, "&", G_URI_PARAMS_NONE, NULL);
        }

      hostile_respond (conn, target, params);
    }

  close (conn->fd);
  g_free (conn);
  return NULL;
}

static gpointer
hostile_accept_thread (gpointer data)
{
  HostileServer *self = data;

  for (;;)
    {
      struct pollfd fds[2] = {
        { .fd = self->listen_fd, .events = POLLIN },
        { .fd = self->stop_pipe[0], .events = POLLIN },
      };
      HostileConn *conn;
      int fd;

      if (poll (fds, 2, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          g_error ("hostile server: poll: %s", g_strerror (errno));
        }
      if (fds[1].revents != 0)
        break;
      if (fds[0].revents == 0)
        continue;

      fd = accept4 (self->listen_fd, NULL, NULL, SOCK_CLOEXEC);
      if (fd < 0)
        continue;

      conn = g_new0 (HostileConn, 1);
      conn->server = self;
      conn->fd = fd;

      g_mutex_lock (&self->mutex);
      g_ptr_array_add (self->threads, g_thread_new ("hostile-conn", hostile_conn_thread, conn));
      g_mutex_unlock (&self->mutex);
    }

  return NULL;
}

static HostileServer *
hostile_server_new (void)
{
  HostileServer *self = g_new0 (HostileServer, 1);
  struct sockaddr_in addr = { 0 };
  socklen_t len = sizeof addr;

  g_mutex_init (&self->mutex);
  self->threads = g_ptr_array_new ();

  if (pipe2 (self->stop_pipe, O_CLOEXEC) < 0)
    g_error ("pipe2: %s", g_strerror (errno));

  self->listen_fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  g_assert_cmpint (self->listen_fd, >=, 0);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  addr.sin_port = 0;
  g_assert_cmpint (bind (self->listen_fd, (struct sockaddr *) &addr, sizeof addr), ==, 0);
  g_assert_cmpint (listen (self->listen_fd, 64), ==, 0);
  g_assert_cmpint (getsockname (self->listen_fd, (struct sockaddr *) &addr, &len), ==, 0);

  self->origin = g_strdup_printf ("http://127.0.0.1:%u", ntohs (addr.sin_port));
  self->accept_thread = g_thread_new ("hostile-accept", hostile_accept_thread, self);

  return self;
}

static void
hostile_server_free (HostileServer *self)
{
  if (write (self->stop_pipe[1], "x", 1) != 1)
    g_error ("hostile server: cannot signal stop: %s", g_strerror (errno));

  g_thread_join (self->accept_thread);

  /* no new threads once the accept thread is gone */
  for (guint i = 0; i < self->threads->len; i++)
    g_thread_join (g_ptr_array_index (self->threads, i));
  g_ptr_array_unref (self->threads);

  close (self->listen_fd);
  close (self->stop_pipe[0]);
  close (self->stop_pipe[1]);
  g_mutex_clear (&self->mutex);
  g_free (self->origin);
  g_free (self);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (HostileServer, hostile_server_free)

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

typedef struct
{
  TestRecorder *recorder;
  gint64        start;       /* monotonic µs at dispatch */
  gsize         rss_before;
  gsize         rss_max;
  gint64        last_informational;  /* monotonic µs, 0 = none */
} Run;

static DispatchAgent *new_agent (const char *first_property,
                                 ...) G_GNUC_NULL_TERMINATED;

static DispatchAgent *
new_agent (const char *first_property,
           ...)
{
  DispatchAgent *agent;
  va_list args;

  va_start (args, first_property);
  agent = (DispatchAgent *) g_object_new_valist (DISPATCH_TYPE_AGENT, first_property, args);
  va_end (args);

  g_assert_true (DISPATCH_IS_AGENT (agent));
  return agent;
}

static DispatchRequest *
new_request (HostileServer *server,
             const char    *path_and_query)
{
  const char *q = strchr (path_and_query, '?');
  g_autofree char *path = g_strndup (path_and_query,
                                     q ? (gsize) (q - path_and_query) : strlen (path_and_query));
  DispatchRequest *request = dispatch_request_new ("GET", server->origin, path);

  if (q != NULL)
    dispatch_request_set_query (request, q + 1);

  return request;
}

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
    default: return "(invalid)";
    }
}

/* Like test_recorder_describe(), with runs of the same event collapsed
 * ("informational x10000"), for the floods. */
static char *
describe_compact (TestRecorder *recorder)
{
  GString *str = g_string_new ("[");

  for (guint i = 0; i < recorder->events->len; )
    {
      TestEvent event = g_array_index (recorder->events, TestEvent, i);
      guint run = 1;

      while (i + run < recorder->events->len &&
             g_array_index (recorder->events, TestEvent, i + run) == event)
        run++;

      if (i > 0)
        g_string_append (str, ", ");
      g_string_append (str, event_name (event));
      if (run > 1)
        g_string_append_printf (str, " x%u", run);

      switch ((int) event)
        {
        case TEST_EVENT_INFORMATIONAL:
          g_string_append_printf (str, " (first status %u)",
                                  g_array_index (recorder->informational_status, guint, 0));
          break;
        case TEST_EVENT_RESPONSE_START:
          {
            g_autofree char *reason = g_strescape (recorder->reason ? recorder->reason : "", NULL);

            g_string_append_printf (str, " %u \"%s\"", recorder->status, reason);
          }
          break;
        case TEST_EVENT_DATA:
          g_string_append_printf (str, " (%u chunks, %" G_GUINT64_FORMAT " bytes)",
                                  recorder->n_chunks, recorder->body_bytes);
          break;
        case TEST_EVENT_ERROR:
          g_string_append_printf (str, " %s:%d \"%s\"",
                                  g_quark_to_string (recorder->error->domain),
                                  recorder->error->code, recorder->error->message);
          break;
        default:
          break;
        }

      i += run;
    }

  g_string_append (str, "]");
  return g_string_free (str, FALSE);
}

static void
run_hook (TestRecorder              *recorder,
          DispatchRequestController *controller,
          TestEvent                  event,
          gpointer                   user_data)
{
  Run *run = user_data;

  if (event == TEST_EVENT_INFORMATIONAL)
    run->last_informational = g_get_monotonic_time ();
}

static gboolean
sample_rss_cb (gpointer user_data)
{
  Run *run = user_data;

  run->rss_max = MAX (run->rss_max, test_rss_bytes ());
  return G_SOURCE_CONTINUE;
}

/* Dispatches, waits (bounded by wait_ms) for the terminal callback while
 * sampling RSS, then runs the loop a little longer so that a callback
 * after the terminal one would fail the test (TestRecorder). */
static void
run_request (Run             *run,
             DispatchAgent   *agent,
             DispatchRequest *request,
             gboolean         discard_body,
             guint            wait_ms)
{
  g_autoptr(DispatchRequestController) controller = NULL;
  g_autoptr(GSource) sampler = g_timeout_source_new (20);

  run->recorder = test_recorder_new ();
  run->recorder->discard_body = discard_body;
  run->recorder->hook = run_hook;
  run->recorder->hook_data = run;

  g_source_set_callback (sampler, sample_rss_cb, run, NULL);
  g_source_attach (sampler, g_main_context_get_thread_default ());

  run->rss_before = test_rss_bytes ();
  run->rss_max = run->rss_before;
  run->start = g_get_monotonic_time ();

  controller = dispatch_dispatcher_dispatch (DISPATCH_DISPATCHER (agent), request,
                                             DISPATCH_HANDLER (run->recorder));
  g_assert_true (DISPATCH_IS_REQUEST_CONTROLLER (controller));

  test_recorder_wait (run->recorder, wait_ms);
  sample_rss_cb (run);
  g_source_destroy (sampler);

  /* nothing may follow the terminal callback */
  test_iterate_for (200);

  {
    g_autofree char *events = describe_compact (run->recorder);

    g_test_message ("after %" G_GINT64_FORMAT " ms: %s",
                    (run->recorder->done_time - run->start) / 1000, events);
  }
}

static void
run_clear (Run *run)
{
  g_clear_object (&run->recorder);
}

static gint64
run_elapsed_ms (Run *run)
{
  g_assert_true (run->recorder->done);
  return (run->recorder->done_time - run->start) / 1000;
}

static void
assert_rss_bounded (Run *run)
{
  gsize growth = run->rss_max > run->rss_before ? run->rss_max - run->rss_before : 0;

  g_test_message ("RSS %" G_GSIZE_FORMAT " KiB before, at most %" G_GSIZE_FORMAT
                  " KiB during (growth %" G_GSIZE_FORMAT " KiB)",
                  run->rss_before / KIB, run->rss_max / KIB, growth / KIB);
#if CHECK_RSS
  if (!UNDER_VALGRIND ())
    g_assert_cmpuint (growth, <, MAX_RSS_GROWTH);
#endif
}

/* Waits (bounded) until the server noticed the client closed the
 * connection: the request's connection was dropped, not left open. */
static void
assert_connection_dropped (HostileServer *server)
{
  gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  while (!g_atomic_int_get (&server->peer_gone) && g_get_monotonic_time () < deadline)
    test_iterate_for (20);

  g_assert_true (g_atomic_int_get (&server->peer_gone));
}

static gboolean
has_event (TestRecorder *recorder,
           TestEvent     event)
{
  for (guint i = 0; i < recorder->events->len; i++)
    if (g_array_index (recorder->events, TestEvent, i) == event)
      return TRUE;

  return FALSE;
}

/* ------------------------------------------------------------------------
 * Floods
 * ------------------------------------------------------------------------ */

static void
check_headers_flood (const char *path)
{
  g_autoptr(HostileServer) server = hostile_server_new ();
  g_autoptr(DispatchAgent) agent = new_agent ("headers-timeout", 10000, NULL);
  g_autoptr(DispatchRequest) request = new_request (server, path);
  Run run = { 0 };

  run_request (&run, agent, request, FALSE, 10000);

  /* libsoup 3.2 gives up on a head past 64 KiB ("Header too big") */
  test_recorder_assert_events (run.recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_ERROR, -1);
  test_recorder_assert_error (run.recorder, DISPATCH_ERROR_HEADERS_OVERFLOW);
  g_assert_nonnull (strstr (run.recorder->error->message, "Header too big"));
  g_assert_cmpint (run_elapsed_ms (&run), <, 2000);
  assert_rss_bounded (&run);
  assert_connection_dropped (server);

  /* the server got no further than libsoup's limit plus what the socket
   * buffers hold */
  g_test_message ("server sent %" G_GUINT64_FORMAT " KiB",
                  __atomic_load_n (&server->written, __ATOMIC_SEQ_CST) / KIB);

  run_clear (&run);
}

static void
test_headers_forever (void)
{
  g_test_summary ("A head that never ends (\"X-A: b\" lines forever): "
                  "HEADERS_OVERFLOW within 2 s, once, bounded memory, "
                  "connection dropped");

  check_headers_flood ("/headers-forever");
}

static void
test_header_line_forever (void)
{
  g_test_summary ("A header line that never ends (no LF at all): "
                  "HEADERS_OVERFLOW within 2 s, once, bounded memory, "
                  "connection dropped");

  check_headers_flood ("/header-line-forever");
}

static void
test_body_forever (void)
{
  g_autoptr(HostileServer) server = hostile_server_new ();
  g_autoptr(DispatchAgent) agent = new_agent ("max-response-size", (gint64) MIB, NULL);
  g_autoptr(DispatchRequest) request = new_request (server, "/body-forever");
  Run run = { 0 };

  g_test_summary ("An endless body without Content-Length (Connection: close, "
                  "streaming forever) with max-response-size 1 MiB: "
                  "RESPONSE_TOO_LARGE after at most 1 MiB delivered, within "
                  "5 s, once, bounded memory, connection dropped");

  run_request (&run, agent, request, TRUE, 10000);

  test_recorder_assert_events (run.recorder, TEST_EVENT_REQUEST_START,
                               TEST_EVENT_RESPONSE_START, TEST_EVENT_DATA,
                               TEST_EVENT_ERROR, -1);
  test_recorder_assert_error (run.recorder, DISPATCH_ERROR_RESPONSE_TOO_LARGE);
  g_assert_cmpuint (run.recorder->status, ==, 200);
  /* delivered: everything up to the limit, never past it */
  g_assert_cmpuint (run.recorder->body_bytes, <=, MIB);
  g_assert_cmpuint (run.recorder->body_bytes, >, MIB / 2);
  g_assert_cmpint (run_elapsed_ms (&run), <, 5000);
  assert_rss_bounded (&run);
  assert_connection_dropped (server);

  run_clear (&run);
}

static void
test_informational_flood_then_silence (void)
{
  g_autoptr(HostileServer) server = hostile_server_new ();
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  g_autoptr(DispatchRequest) request = new_request (server, "/informational-flood?count=10000");
  Run run = { 0 };
  gint64 elapsed;

  g_test_summary ("10000 x \"102 Processing\" at once, then nothing, with "
                  "headers-timeout 1 s: each 1xx is delivered to "
                  "on_response_informational (documented: a 1xx re-arms the "
                  "headers timer), then HEADERS_TIMEOUT 1 s (under 1.5 s) "
                  "after the last, once, bounded memory");

  dispatch_request_set_headers_timeout (request, 1000);
  run_request (&run, agent, request, FALSE, 10000);

  test_recorder_assert_error (run.recorder, DISPATCH_ERROR_HEADERS_TIMEOUT);
  g_assert_false (has_event (run.recorder, TEST_EVENT_RESPONSE_START));
  g_assert_cmpuint (run.recorder->informational_status->len, ==, 10000);
  for (guint i = 0; i < run.recorder->informational_status->len; i++)
    g_assert_cmpuint (g_array_index (run.recorder->informational_status, guint, i), ==, 102);

  /* 1 s after the last 1xx (the flood itself takes a few dozen ms, or
   * seconds under valgrind) */
  g_assert_cmpint (run.last_informational, >, 0);
  elapsed = (run.recorder->done_time - run.last_informational) / 1000;
  g_test_message ("HEADERS_TIMEOUT %" G_GINT64_FORMAT " ms after the last 1xx", elapsed);
  g_assert_cmpint (elapsed, >=, 1000);
  g_assert_cmpint (elapsed, <, 1500);
  assert_rss_bounded (&run);
  assert_connection_dropped (server);

  run_clear (&run);
}

static void
test_informational_flood_then_200 (void)
{
  g_autoptr(HostileServer) server = hostile_server_new ();
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  g_autoptr(DispatchRequest) request =
    new_request (server, "/informational-flood?count=10000&then=200");
  Run run = { 0 };

  g_test_summary ("10000 x \"102 Processing\" then a 200: 10000 informational "
                  "callbacks, then the 200 and its body, within 8 s (about "
                  "50 ms natively; the bound leaves room for valgrind), "
                  "bounded memory");

  dispatch_request_set_headers_timeout (request, 1000);
  run_request (&run, agent, request, FALSE, 10000);

  test_recorder_assert_ok (run.recorder, 200, "done");
  g_assert_cmpuint (run.recorder->informational_status->len, ==, 10000);
  g_assert_cmpint (run_elapsed_ms (&run), <, 8000);
  assert_rss_bounded (&run);

  run_clear (&run);
}

static void
test_informational_trickle (void)
{
  g_autoptr(HostileServer) server = hostile_server_new ();
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  g_autoptr(DispatchRequest) request = new_request (server, "/informational-trickle?ms=200");
  Run run = { 0 };
  gint64 elapsed;

  g_test_summary ("A \"102 Processing\" every 200 ms, forever, with "
                  "headers-timeout 1 s and timeout 3 s: every 1xx re-arms the "
                  "headers timer, so only the whole-request timeout ends it: "
                  "TIMEOUT at 3 s, once");

  dispatch_request_set_headers_timeout (request, 1000);
  dispatch_request_set_timeout (request, 3000);
  run_request (&run, agent, request, FALSE, 10000);

  test_recorder_assert_error (run.recorder, DISPATCH_ERROR_TIMEOUT);
  g_assert_false (has_event (run.recorder, TEST_EVENT_RESPONSE_START));
  /* about 15; at least well past what a 1 s headers timeout would allow */
  g_assert_cmpuint (run.recorder->informational_status->len, >=, 8);

  elapsed = run_elapsed_ms (&run);
  g_assert_cmpint (elapsed, >=, 3000);
  g_assert_cmpint (elapsed, <, 3600);
  assert_connection_dropped (server);

  run_clear (&run);
}

/* ------------------------------------------------------------------------
 * Malformed heads
 * ------------------------------------------------------------------------ */

static gboolean
has_control_bytes (const char *str)
{
  for (const guint8 *p = (const guint8 *) str; *p; p++)
    if (*p < 0x20 || *p == 0x7f)
      return TRUE;

  return FALSE;
}

static void
test_reason_control_bytes (void)
{
  g_autoptr(HostileServer) server = hostile_server_new ();
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  g_autoptr(DispatchRequest) request = new_request (server, "/reason-control");
  Run run = { 0 };

  g_test_summary ("A reason phrase with control bytes (\"Bad\\x01Re\\x7fason\"): "
                  "PARSE, or success with a reason without control bytes; "
                  "no crash, once, within 2 s");

  run_request (&run, agent, request, FALSE, 5000);
  g_assert_cmpint (run_elapsed_ms (&run), <, 2000);

  if (run.recorder->error != NULL)
    {
      test_recorder_assert_error (run.recorder, DISPATCH_ERROR_PARSE);
    }
  else
    {
      test_recorder_assert_ok (run.recorder, 200, "ok");
      g_assert_nonnull (run.recorder->reason);

      /* replaced by the standard phrase */
      g_assert_false (has_control_bytes (run.recorder->reason));
      g_assert_cmpstr (run.recorder->reason, ==, "OK");
    }

  run_clear (&run);
}

static void
test_reason_not_utf8 (void)
{
  g_autoptr(HostileServer) server = hostile_server_new ();
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  g_autoptr(DispatchRequest) request = new_request (server, "/reason-not-utf8");
  Run run = { 0 };

  g_test_summary ("A reason phrase that is not UTF-8 (\\xff\\xfe\\xc3): PARSE, "
                  "or success with a valid UTF-8 reason (the reason is a utf8 "
                  "string to GObject introspection); no crash, once, within 2 s");

  run_request (&run, agent, request, FALSE, 5000);
  g_assert_cmpint (run_elapsed_ms (&run), <, 2000);

  if (run.recorder->error != NULL)
    {
      test_recorder_assert_error (run.recorder, DISPATCH_ERROR_PARSE);
    }
  else
    {
      test_recorder_assert_ok (run.recorder, 200, "ok");
      g_assert_nonnull (run.recorder->reason);

      /* a utf8 argument to introspection: replaced by the standard phrase */
      g_assert_true (g_utf8_validate (run.recorder->reason, -1, NULL));
      g_assert_cmpstr (run.recorder->reason, ==, "OK");
    }

  run_clear (&run);
}

static void
test_nul_in_header_value (void)
{
  g_autoptr(HostileServer) server = hostile_server_new ();
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  g_autoptr(DispatchRequest) request = new_request (server, "/nul-in-value");
  Run run = { 0 };

  g_test_summary ("A header value with a NUL byte (\"X-Nul: a\\0b\"): PARSE "
                  "(libsoup 3.2.3 as patched by Debian rejects NUL anywhere in "
                  "a head, CVE-2024-52530), once, within 2 s");

  run_request (&run, agent, request, FALSE, 5000);

  test_recorder_assert_events (run.recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_ERROR, -1);
  test_recorder_assert_error (run.recorder, DISPATCH_ERROR_PARSE);
  g_assert_cmpint (run_elapsed_ms (&run), <, 2000);

  run_clear (&run);
}

/* ------------------------------------------------------------------------
 * Framing
 * ------------------------------------------------------------------------ */

typedef struct
{
  const char *value;
  const char *connection;   /* "close" or "keep-alive" */
} ContentLengthCase;

/* libsoup 3.2 hands a Content-Length it parsed as negative to its body
 * stream's "content-length" property (range -1..G_MAXINT64), and GObject
 * warns. GTest makes warnings fatal (and reports them as "Bail out!"), so
 * while a case runs, warnings are not fatal and that one warning (only
 * that one) is recorded, so the case can report what the client does
 * next. */
static gboolean content_length_warning_seen;

static void
content_length_warning_handler (const char     *log_domain,
                                GLogLevelFlags  log_level,
                                const char     *message,
                                gpointer        user_data)
{
  if (strstr (message, "for property 'content-length'") == NULL)
    g_error ("unexpected warning from %s: %s", log_domain, message);

  g_test_message ("logged by libsoup: %s-WARNING: %s", log_domain, message);
  content_length_warning_seen = TRUE;
}

static void
test_content_length (gconstpointer data)
{
  const ContentLengthCase *c = data;
  g_autoptr(HostileServer) server = hostile_server_new ();
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  g_autofree char *path = g_strdup_printf ("/content-length?value=%s&connection=%s",
                                           c->value, c->connection);
  g_autoptr(DispatchRequest) request = new_request (server, path);
  g_autoptr(GString) problems = g_string_new (NULL);
  GLogLevelFlags always_fatal;
  guint handler;
  Run run = { 0 };

  g_test_summary ("A Content-Length that does not fit in int64 (or is "
                  "negative), body \"hello\", then close: PARSE naming "
                  "Content-Length before any response start, never success with "
                  "a bogus length; once, within 3 s");
  g_test_message ("Content-Length: %s, Connection: %s, body \"hello\", close",
                  c->value, c->connection);

  content_length_warning_seen = FALSE;
  always_fatal = g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
  handler = g_log_set_handler ("GLib-GObject", G_LOG_LEVEL_WARNING,
                               content_length_warning_handler, NULL);

  dispatch_request_set_body_timeout (request, 2000);
  run_request (&run, agent, request, FALSE, 5000);

  g_log_remove_handler ("GLib-GObject", handler);
  g_log_set_always_fatal (always_fatal);

  g_assert_cmpint (run_elapsed_ms (&run), <, 3000);

  /* libsoup 3.2 reads the value with strtoull into a signed length; the
   * exchange checks the header itself and refuses the response */
  test_recorder_assert_events (run.recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_ERROR, -1);
  test_recorder_assert_error (run.recorder, DISPATCH_ERROR_PARSE);
  g_assert_nonnull (strstr (run.recorder->error->message, "Content-Length"));

  /* Out of range for its own body stream, libsoup logs a GLib-GObject
   * WARNING while building it, before the head reaches us: a libsoup 3.2
   * limitation we cannot prevent (documented). */
  if (content_length_warning_seen)
    g_test_message ("libsoup 3.2 logged a GLib-GObject warning for this value");

  run_clear (&run);
}

static void
test_chunk_size_overflow (void)
{
  g_autoptr(HostileServer) server = hostile_server_new ();
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  g_autoptr(DispatchRequest) request = new_request (server, "/chunk-size-overflow");
  Run run = { 0 };

  g_test_summary ("A chunk size that overflows 64 bits "
                  "(FFFFFFFFFFFFFFFFFFFF) after a good chunk: an error "
                  "(PARSE), no hang (body-timeout 2 s as a backstop), once, "
                  "within 3 s");

  dispatch_request_set_body_timeout (request, 2000);
  run_request (&run, agent, request, FALSE, 5000);
  g_assert_cmpint (run_elapsed_ms (&run), <, 3000);

  if (run.recorder->error != NULL)
    {
      test_recorder_assert_error (run.recorder, DISPATCH_ERROR_PARSE);
    }
  else
    {
      /* libsoup 3.2 reads the size with strtoul into a signed length:
       * -1, "not > 0", so it takes the chunk for the last one and the
       * next line for a trailer */
      test_recorder_assert_ok (run.recorder, 200, "hello");
      g_test_incomplete ("libsoup 3.2 limitation (documented): an overflowing "
                         "chunk size is read as the last chunk and the response "
                         "ends in on_response_end with a truncated body "
                         "(\"hello\" of \"hello...world\"); the chunk framing is "
                         "not visible to the dispatcher");
    }

  run_clear (&run);
}

/* ------------------------------------------------------------------------
 * Slowloris
 * ------------------------------------------------------------------------ */

static void
test_slowloris_head (void)
{
  g_autoptr(HostileServer) server = hostile_server_new ();
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  g_autoptr(DispatchRequest) request = new_request (server, "/slow-head?ms=1000");
  Run run = { 0 };
  gint64 elapsed;

  g_test_summary ("The response head one byte per second, headers-timeout "
                  "2 s: bytes arriving do not re-arm the headers timer: "
                  "HEADERS_TIMEOUT between 2 and 2.5 s, once");

  dispatch_request_set_headers_timeout (request, 2000);
  run_request (&run, agent, request, FALSE, 10000);

  test_recorder_assert_events (run.recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_ERROR, -1);
  test_recorder_assert_error (run.recorder, DISPATCH_ERROR_HEADERS_TIMEOUT);
  elapsed = run_elapsed_ms (&run);
  g_assert_cmpint (elapsed, >=, 2000);
  g_assert_cmpint (elapsed, <, 2500);
  assert_connection_dropped (server);

  run_clear (&run);
}

static void
test_slowloris_body_idle (void)
{
  g_autoptr(HostileServer) server = hostile_server_new ();
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  g_autoptr(DispatchRequest) request = new_request (server, "/slow-body?size=8&ms=300");
  Run run = { 0 };
  gint64 elapsed;

  g_test_summary ("A body of 8 bytes, one byte per 300 ms, body-timeout 1 s "
                  "(an idle timeout): completes, in about 2.1 s (under 3.5 s)");

  dispatch_request_set_body_timeout (request, 1000);
  run_request (&run, agent, request, FALSE, 10000);

  test_recorder_assert_ok (run.recorder, 200, "ssssssss");
  elapsed = run_elapsed_ms (&run);
  g_assert_cmpint (elapsed, >=, 2000);
  g_assert_cmpint (elapsed, <, 3500);

  run_clear (&run);
}

static void
test_slowloris_body_total (void)
{
  g_autoptr(HostileServer) server = hostile_server_new ();
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  g_autoptr(DispatchRequest) request = new_request (server, "/slow-body?size=100&ms=300");
  Run run = { 0 };
  gint64 elapsed;

  g_test_summary ("A body of 100 bytes, one byte per 300 ms, body-timeout 1 s "
                  "and timeout 2 s (whole request): TIMEOUT between 2 and "
                  "2.5 s, after part of the body, once");

  dispatch_request_set_body_timeout (request, 1000);
  dispatch_request_set_timeout (request, 2000);
  run_request (&run, agent, request, FALSE, 10000);

  test_recorder_assert_events (run.recorder, TEST_EVENT_REQUEST_START,
                               TEST_EVENT_RESPONSE_START, TEST_EVENT_DATA,
                               TEST_EVENT_ERROR, -1);
  test_recorder_assert_error (run.recorder, DISPATCH_ERROR_TIMEOUT);
  g_assert_cmpuint (run.recorder->body->len, >=, 3);
  g_assert_cmpuint (run.recorder->body->len, <=, 8);
  elapsed = run_elapsed_ms (&run);
  g_assert_cmpint (elapsed, >=, 2000);
  g_assert_cmpint (elapsed, <, 2500);
  assert_connection_dropped (server);

  run_clear (&run);
}

int
main (int    argc,
      char **argv)
{
  test_init (&argc, &argv);

  g_test_add_func ("/hostile/flood/headers-forever", test_headers_forever);
  g_test_add_func ("/hostile/flood/header-line-forever", test_header_line_forever);
  g_test_add_func ("/hostile/flood/body-forever", test_body_forever);
  g_test_add_func ("/hostile/flood/informational-then-silence",
                   test_informational_flood_then_silence);
  g_test_add_func ("/hostile/flood/informational-then-200", test_informational_flood_then_200);
  g_test_add_func ("/hostile/flood/informational-trickle", test_informational_trickle);
  g_test_add_func ("/hostile/head/reason-control-bytes", test_reason_control_bytes);
  g_test_add_func ("/hostile/head/reason-not-utf8", test_reason_not_utf8);
  g_test_add_func ("/hostile/head/nul-in-header-value", test_nul_in_header_value);
  {
    static const struct {
      const char        *path;
      ContentLengthCase  c;
    } cases[] = {
      { "/hostile/framing/content-length/above-uint64-close",
        { "99999999999999999999", "close" } },
      { "/hostile/framing/content-length/above-uint64-keep-alive",
        { "99999999999999999999", "keep-alive" } },
      { "/hostile/framing/content-length/two-to-the-64-close",
        { "18446744073709551616", "close" } },
      { "/hostile/framing/content-length/two-to-the-63-close",
        { "9223372036854775808", "close" } },
      { "/hostile/framing/content-length/two-to-the-63-keep-alive",
        { "9223372036854775808", "keep-alive" } },
      { "/hostile/framing/content-length/minus-one-close", { "-1", "close" } },
      { "/hostile/framing/content-length/minus-two-close", { "-2", "close" } },
    };

    for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
      g_test_add_data_func (cases[i].path, &cases[i].c, test_content_length);
  }
  g_test_add_func ("/hostile/framing/chunk-size-overflow", test_chunk_size_overflow);
  g_test_add_func ("/hostile/slowloris/head", test_slowloris_head);
  g_test_add_func ("/hostile/slowloris/body-idle", test_slowloris_body_idle);
  g_test_add_func ("/hostile/slowloris/body-total", test_slowloris_body_total);

  return g_test_run ();
}
