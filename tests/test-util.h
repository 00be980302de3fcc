/* test-util.h — shared test servers, a recording handler and loop helpers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <libdispatch-gobject/dispatch.h>

G_BEGIN_DECLS

/* Every wait in the tests is bounded by this unless a test says otherwise. */
#define TEST_WAIT_MS 10000

void     test_init              (int *argc, char ***argv);

/* Iterate the thread-default main context until *flag is TRUE or timeout_ms
 * passes; fails the test (g_error) on timeout. */
void     test_wait_for_flag     (const gboolean *flag, guint timeout_ms);
/* Iterate the thread-default main context for at least ms milliseconds
 * (only for "nothing must happen during this time" checks). */
void     test_iterate_for       (guint ms);

gsize    test_rss_bytes         (void);  /* current VmRSS of this process */
guint    test_fd_count          (void);  /* open fds of this process */
/* Polls the fd count (iterating the thread-default context in between)
 * until it is `target` or timeout_ms passed; returns the last count.
 * Nothing signals "the socket is closed" (libsoup may defer a close to an
 * idle callback, the server side closes asynchronously), hence the
 * polling. */
guint    test_settle_fds        (guint target, guint timeout_ms);
/* For failure reports: every open fd of this process, one
 * "\n  FD -> TARGET" line each. (transfer full) */
char    *test_list_fds          (void);

/* TRUE in a build with AddressSanitizer or ThreadSanitizer. */
gboolean test_under_sanitizer   (void);
/* TRUE when running under valgrind (`meson test --setup valgrind`);
 * always FALSE where <valgrind/valgrind.h> was missing at build time. */
gboolean test_under_valgrind    (void);

/* close_async, then destroy_async, each waited for (bounded by
 * TEST_WAIT_MS) and asserted to succeed. Waits for nothing in flight:
 * the caller has drained the agent. Does not drop the reference. */
void     test_close_and_destroy (DispatchDispatcher *agent);

/* ------------------------------------------------------------------------
 * TestServer: an in-process SoupServer on 127.0.0.1, port 0, running in a
 * thread of its own with its own GMainContext (so a blocked client never
 * blocks the server and vice versa). Routes:
 *   /hello               200, "Hello, World!" (13 bytes, Content-Length)
 *   /empty               204
 *   /reason              299 "Custom Reason", body "r"
 *   /multi               200 with two Set-Cookie (a=1, b=2) and X-Foo: one,
 *                         X-Foo: two (separate field lines), body "m"
 *   /echo (and /echo/ANY) 200; body is the request body; response headers
 *                         x-method, x-path (as sent, not decoded),
 *                         x-query (raw query or ""),
 *                         x-request-length (bytes received),
 *                         x-request-encoding ("chunked"/"content-length"/"none"),
 *                         x-seen-<name> for every request header, values
 *                         joined with "|" in arrival order (so repeated
 *                         request headers are visible)
 *   /pattern?size=N      200, N bytes (Content-Length) of the byte pattern
 *                         test_pattern_byte(i); streamed in 64 KiB chunks
 *                         appended from wrote-chunk, so the written-bytes
 *                         counter counts bytes really written to the socket
 *   /pattern-chunked?size=N  same, chunked encoding
 *   /check-pattern       POST: 200 and body "ok" if the request body is
 *                         exactly test_pattern_byte(0..len-1), else 400
 *                         with a description
 *   /slow-headers?ms=N   response head (200, "slow") only after N ms
 *   /stall[?status=N]    200 (or N) chunked, sends "hello" then nothing,
 *                        forever
 *   /stall-after?bytes=N sends N pattern bytes chunked then stalls
 *   /trickle?ms=N&count=K  chunked, K chunks of "x", one every N ms
 *   /status?code=N       N with body "status"
 *   /conn-id             200, body = "<peer port>" (tells whether the
 *                         client reused its connection)
 *   anything else        404, body "not found"
 * ------------------------------------------------------------------------ */
typedef struct _TestServer TestServer;

TestServer *test_server_new            (void);
void        test_server_free           (TestServer *server);
/* "http://127.0.0.1:PORT" */
const char *test_server_get_origin     (TestServer *server);
guint16     test_server_get_port       (TestServer *server);
/* bytes of response body the server wrote to sockets so far (all routes
 * that stream: /pattern, /pattern-chunked, /stall-after) — thread-safe */
guint64     test_server_get_written    (TestServer *server);
/* number of requests the server has seen, thread-safe */
guint       test_server_get_requests   (TestServer *server);
/* number of connections the server has accepted, thread-safe */
guint       test_server_get_connections (TestServer *server);

static inline guint8
test_pattern_byte (guint64 i)
{
  return (guint8) ((i * 31 + (i >> 16)) & 0xff);
}

/* ------------------------------------------------------------------------
 * TestFaultServer: a raw-socket server in its own thread on 127.0.0.1 port
 * 0 that reads one request head per connection and then misbehaves as the
 * path says:
 *   /hang-headers      sends a 200 head with Content-Length: 100, then no
 *                      body, keeps the connection open
 *   /hang              reads the request, sends nothing, keeps it open
 *   /close-mid-body    200 with Content-Length: 1000, 500 bytes, then close
 *                      (no Connection header: HTTP/1.1 default keep-alive)
 *   /close-mid-body-keepalive  same, but the head says keep-alive (libsoup
 *                      reports PARTIAL_INPUT)
 *   /close-after-chunk 200 chunked, one complete chunk, then close
 *   /rst               200 with Content-Length: 1000, 100 bytes, then RST
 *   /rst-before        closes with RST before any response
 *   /close-before      closes cleanly before any response
 *   /short-cl          200, Content-Length: 1000, 500 bytes, Connection:
 *                      close, close (libsoup 3.2 reads that as success)
 *   /long-cl           200, Content-Length: 10, 20 bytes, Connection: close
 *   /garbage           "HTTP/1.1 abc garbage\r\n\r\n", close
 *   /huge-headers      200 with 100 KiB of headers
 *   /big-headers?size=N 200 with one X-Big header of N bytes, body "b"
 *   /early-hints       103 with Link: </style.css>; rel=preload, then 200
 *                      body "hi"
 *   /reason-ctl        "HTTP/1.1 200 Bad\x01Reason" head
 *   /keepalive-then-close  first request on a connection: 200 "ok"
 *                      keep-alive; then the server closes that connection
 *                      without answering the next request on it (the
 *                      stale keep-alive case that makes libsoup restart);
 *                      that next request, whatever its path, is read in
 *                      full and recorded first
 *   anything else      404 "not found", Connection: close
 * Responses not described as keep-alive are followed by a clean close.
 * Every request it receives (head and body bytes as received) is
 * recorded; test_fault_server_get_requests() returns a copy.
 * ------------------------------------------------------------------------ */
typedef struct _TestFaultServer TestFaultServer;

TestFaultServer *test_fault_server_new          (void);
void             test_fault_server_free         (TestFaultServer *server);
const char      *test_fault_server_get_origin   (TestFaultServer *server);
/* (transfer full): array of GBytes, one per request received, in order */
GPtrArray       *test_fault_server_get_requests (TestFaultServer *server);
/* number of connections accepted so far, thread-safe */
guint            test_fault_server_get_connections (TestFaultServer *server);

/* A listener whose backlog is full: connect() to it hangs (connect
 * timeout tests). "http://127.0.0.1:PORT" */
typedef struct _TestBlackhole TestBlackhole;
TestBlackhole *test_blackhole_new        (void);
void           test_blackhole_free       (TestBlackhole *hole);
const char    *test_blackhole_get_origin (TestBlackhole *hole);

/* An origin on which nothing listens (connection refused). */
char          *test_refused_origin       (void);

/* ------------------------------------------------------------------------
 * TestServerProcess: a TestServer (and, on request, a TestFaultServer
 * and a TestBlackhole) in a child process, for tests whose fd and memory
 * figures must be the client's alone. In-process they would not be:
 * libsoup 3.2's SoupServer leaks a GSocket for every connection it accepts
 * (fixed in libsoup 3.4, commit b545d5f0 "soup-listener: Plug a leak"),
 * and TestServer keeps a connection whose response is paused (/stall) in
 * CLOSE_WAIT until it is freed.
 *
 * The child is this same test binary run with TEST_SERVE_ARG, so a test
 * that uses it starts its main() with
 *
 *   if (test_serve_requested (argc, argv))
 *     return test_serve_main (argc, argv);
 *
 * The child prints its origins on one line of stdout and serves until its
 * stdin reaches EOF (the parent closes it, or dies).
 * ------------------------------------------------------------------------ */
#define TEST_SERVE_ARG "--serve"

typedef enum {
  TEST_SERVE_SERVER_ONLY  = 0,
  TEST_SERVE_FAULT_SERVER = 1 << 0,  /* a TestFaultServer as well */
  TEST_SERVE_BLACKHOLE    = 1 << 1,  /* a TestBlackhole as well */
} TestServeFlags;

typedef struct _TestServerProcess TestServerProcess;

/* Spawns the child and waits (bounded by TEST_WAIT_MS) for its origins;
 * fails the test if they do not come. */
TestServerProcess *test_server_process_new      (TestServeFlags     flags);
/* Ends the child (EOF on its stdin), reaps it (bounded by TEST_WAIT_MS)
 * and asserts it exited with status 0; then frees self. */
void               test_server_process_free     (TestServerProcess *self);
/* The TestServer's "http://127.0.0.1:PORT" */
const char        *test_server_process_get_origin       (TestServerProcess *self);
/* The TestFaultServer's origin; only with TEST_SERVE_FAULT_SERVER */
const char        *test_server_process_get_fault_origin (TestServerProcess *self);
/* The TestBlackhole's origin; only with TEST_SERVE_BLACKHOLE */
const char        *test_server_process_get_hole_origin  (TestServerProcess *self);

/* The child side: TRUE if argv asks for it (argv[1] is TEST_SERVE_ARG). */
gboolean           test_serve_requested  (int argc, char **argv);
/* Runs the servers argv names until stdin reaches EOF; returns the
 * process exit status. Called before test_init(). */
int                test_serve_main       (int argc, char **argv);

/* ------------------------------------------------------------------------
 * TestRecorder: a DispatchHandler that records every callback and asserts
 * the handler contract as it goes (start first, at most one response
 * start, data only after it, exactly one terminal callback, nothing after
 * it, every callback on the thread that created the recorder).
 * ------------------------------------------------------------------------ */
typedef enum {
  TEST_EVENT_REQUEST_START,
  TEST_EVENT_INFORMATIONAL,
  TEST_EVENT_RESPONSE_START,
  TEST_EVENT_DATA,
  TEST_EVENT_END,
  TEST_EVENT_ERROR,
} TestEvent;

#define TEST_TYPE_RECORDER (test_recorder_get_type ())
G_DECLARE_FINAL_TYPE (TestRecorder, test_recorder, TEST, RECORDER, GObject)

typedef void (*TestRecorderHook) (TestRecorder              *recorder,
                                  DispatchRequestController *controller,
                                  TestEvent                  event,
                                  gpointer                   user_data);

struct _TestRecorder
{
  GObject parent_instance;

  /* all public for reading in tests */
  GArray                    *events;        /* TestEvent, in order; DATA
                                               events collapsed: one entry
                                               per run of chunks */
  guint                      n_chunks;
  GByteArray                *body;
  guint                      status;
  char                      *reason;
  DispatchHeaders           *headers;
  DispatchHeaders           *trailers;
  GPtrArray                 *informational; /* DispatchHeaders per 1xx */
  GArray                    *informational_status; /* guint */
  GError                    *error;
  DispatchRequestController *controller;    /* as seen in callbacks (a
                                               strong ref, taken at
                                               request-start) */
  gboolean                   done;          /* terminal callback seen */
  gint64                     done_time;     /* g_get_monotonic_time at it */
  GThread                   *thread;

  /* optional: called after each event is recorded */
  TestRecorderHook           hook;
  gpointer                   hook_data;
  /* optional: if > 0, the recorder pauses the controller once the body
   * reaches this many bytes (from inside on_response_data) */
  gsize                      pause_at;
  /* optional: if TRUE, the body is not kept, only counted */
  gboolean                   discard_body;
  guint64                    body_bytes;
};

TestRecorder *test_recorder_new          (void);
/* Wait (bounded) for the terminal callback; fails the test on timeout. */
void          test_recorder_wait         (TestRecorder *self,
                                          guint         timeout_ms);
/* A one-line description of the recorded events (for messages), e.g.
 * "[request-start, response-start 200 \"OK\", data (3 chunks, 13 bytes
 * in all), end]". (transfer full) */
char         *test_recorder_describe     (TestRecorder *self);
/* Assert the recorded events equal the given list, terminated by -1. */
void          test_recorder_assert_events (TestRecorder *self, ...);
/* Assert success with the given status and body (body NULL: don't care). */
void          test_recorder_assert_ok    (TestRecorder *self,
                                          guint         status,
                                          const char   *body);
/* Assert failure with DISPATCH_ERROR code; no END event. */
void          test_recorder_assert_error (TestRecorder *self,
                                          int           code);

/* The usual fixture: both servers and a default agent. */
typedef struct
{
  TestServer      *server;
  TestFaultServer *fault;
  DispatchAgent   *agent;
} TestFixture;

void          test_fixture_setup         (TestFixture  *fixture,
                                          gconstpointer data);
void          test_fixture_teardown      (TestFixture  *fixture,
                                          gconstpointer data);

/* Dispatch req on agent with a fresh recorder, wait for the terminal
 * callback, return the recorder (transfer full). */
TestRecorder *test_dispatch_and_wait     (DispatchDispatcher *agent,
                                          DispatchRequest    *request);

G_END_DECLS
