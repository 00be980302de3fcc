/* test-controller.c — DispatchRequestController: abort, pause, resume,
 * wait_if_paused and the property notifications
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <string.h>

#include <sys/resource.h>

#include "test-util.h"

/* "Promptly": the terminal callback must follow abort() within this. */
#define PROMPT_USEC G_USEC_PER_SEC

/* How long "nothing happens" checks watch. */
#define QUIET_MS 300

typedef struct
{
  TestServer         *server;
  DispatchDispatcher *agent;
} Fixture;

static void
fixture_setup (Fixture       *fixture,
               gconstpointer  data)
{
  fixture->server = test_server_new ();
  fixture->agent = DISPATCH_DISPATCHER (dispatch_agent_new ());
}

static void
fixture_teardown (Fixture       *fixture,
                  gconstpointer  data)
{
  g_clear_object (&fixture->agent);
  g_clear_pointer (&fixture->server, test_server_free);
}

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

static DispatchRequestController *
start_get (DispatchDispatcher *agent,
           const char         *origin,
           const char         *path,
           TestRecorder       *recorder)
{
  g_autoptr(DispatchRequest) request = dispatch_request_new ("GET", origin, path);
  DispatchRequestController *controller;

  controller = dispatch_dispatcher_dispatch (agent, request, DISPATCH_HANDLER (recorder));
  g_assert_true (DISPATCH_IS_REQUEST_CONTROLLER (controller));

  return controller;
}

typedef gboolean (*Predicate) (gpointer user_data);

static gboolean
wake_cb (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

/* Iterates the thread-default context until pred() holds; fails the test
 * after timeout_ms. For state another thread changes (server counters),
 * which does not wake our context by itself. */
static void
wait_until (Predicate   pred,
            gpointer    user_data,
            guint       timeout_ms,
            const char *what)
{
  GMainContext *context = g_main_context_ref_thread_default ();
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  GSource *wake = g_timeout_source_new (5);

  g_source_set_name (wake, "[test-controller] wake");
  g_source_set_callback (wake, wake_cb, NULL, NULL);
  g_source_attach (wake, context);

  while (!pred (user_data))
    {
      if (g_get_monotonic_time () >= deadline)
        g_error ("wait_until: %s did not happen within %u ms", what, timeout_ms);
      g_main_context_iteration (context, TRUE);
    }

  g_source_destroy (wake);
  g_source_unref (wake);
  g_main_context_unref (context);
}

static gboolean
recorder_has_event (TestRecorder *recorder,
                    TestEvent     event)
{
  for (guint i = 0; i < recorder->events->len; i++)
    if (g_array_index (recorder->events, TestEvent, i) == event)
      return TRUE;

  return FALSE;
}

static gboolean
has_response_start (gpointer user_data)
{
  return recorder_has_event (user_data, TEST_EVENT_RESPONSE_START);
}

/* /stall sends "hello" and then nothing. */
static gboolean
has_hello (gpointer user_data)
{
  TestRecorder *recorder = user_data;

  return recorder->body_bytes >= 5;
}

typedef struct
{
  TestServer *server;
  guint       n;
} ServerCount;

static gboolean
server_has_requests (gpointer user_data)
{
  ServerCount *count = user_data;

  return test_server_get_requests (count->server) >= count->n;
}

static gboolean
fault_server_has_request (gpointer user_data)
{
  g_autoptr(GPtrArray) requests = test_fault_server_get_requests (user_data);

  return requests->len >= 1;
}

/* Waits for /stall's "hello" and checks what arrived so far. */
static void
wait_for_hello (TestRecorder *recorder)
{
  wait_until (has_hello, recorder, TEST_WAIT_MS, "the \"hello\" of /stall");
  g_assert_cmpuint (recorder->status, ==, 200);
  g_assert_false (recorder->discard_body);
  g_assert_cmpmem (recorder->body->data, recorder->body->len, "hello", 5);
  g_assert_false (recorder->done);
}

static void
assert_pattern_body (TestRecorder *recorder,
                     gsize         size)
{
  g_assert_cmpuint (recorder->body->len, ==, size);
  g_assert_cmpuint (recorder->body_bytes, ==, size);

  for (gsize i = 0; i < size; i++)
    {
      if (recorder->body->data[i] != test_pattern_byte (i))
        g_error ("body differs from the pattern at byte %" G_GSIZE_FORMAT
                 " of %" G_GSIZE_FORMAT ": 0x%02x, expected 0x%02x",
                 i, size, recorder->body->data[i], test_pattern_byte (i));
    }
}

/* Asserts the request ended promptly after abort() (abort_time). */
static void
assert_prompt (TestRecorder *recorder,
               gint64        abort_time)
{
  g_assert_true (recorder->done);
  g_test_message ("terminal callback %" G_GINT64_FORMAT " µs after abort()",
                  recorder->done_time - abort_time);
  g_assert_cmpint (recorder->done_time, >=, abort_time);
  g_assert_cmpint (recorder->done_time - abort_time, <, PROMPT_USEC);
}

static int
conn_id (DispatchDispatcher *agent,
         const char         *origin)
{
  g_autoptr(DispatchRequest) request = dispatch_request_new ("GET", origin, "/conn-id");
  g_autoptr(TestRecorder) recorder = test_dispatch_and_wait (agent, request);
  g_autofree char *text = NULL;
  int port;

  test_recorder_assert_ok (recorder, 200, NULL);
  text = g_strndup ((const char *) recorder->body->data, recorder->body->len);
  port = (int) g_ascii_strtoll (text, NULL, 10);
  g_assert_cmpint (port, >, 0);

  return port;
}

typedef struct
{
  DispatchRequestController *controller;
  GError                    *reason;
  gint64                     time;  /* set when abort() is called */
  gboolean                   done_at_return;
} AbortLater;

static gboolean
abort_later_cb (gpointer user_data)
{
  AbortLater *later = user_data;
  TestRecorder *recorder = g_object_get_data (G_OBJECT (later->controller), "test-recorder");

  later->time = g_get_monotonic_time ();
  dispatch_request_controller_abort (later->controller, later->reason);
  if (recorder != NULL)
    later->done_at_return = recorder->done;

  return G_SOURCE_REMOVE;
}

/* ------------------------------------------------------------------------
 * Abort
 * ------------------------------------------------------------------------ */

static void
test_abort_before_start (Fixture       *fixture,
                         gconstpointer  data)
{
  g_autoptr(TestRecorder) recorder = test_recorder_new ();
  g_autoptr(DispatchRequestController) controller = NULL;
  gint64 abort_time;

  g_test_summary ("abort() right after dispatch(), before the main loop ran: "
                  "request-start then ABORTED, nothing reaches the server");

  controller = start_get (fixture->agent, test_server_get_origin (fixture->server),
                          "/slow-headers?ms=5000", recorder);
  abort_time = g_get_monotonic_time ();
  dispatch_request_controller_abort (controller, NULL);

  g_assert_false (recorder->done);
  g_assert_cmpuint (recorder->events->len, ==, 0);
  g_assert_true (dispatch_request_controller_get_aborted (controller));

  test_recorder_wait (recorder, TEST_WAIT_MS);
  test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_ERROR, -1);
  test_recorder_assert_error (recorder, DISPATCH_ERROR_ABORTED);
  assert_prompt (recorder, abort_time);

  test_iterate_for (QUIET_MS);
  g_assert_cmpuint (test_server_get_connections (fixture->server), ==, 0);
  g_assert_cmpuint (test_server_get_requests (fixture->server), ==, 0);
  test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_ERROR, -1);
}

static void
abort_in_request_start_hook (TestRecorder              *recorder,
                             DispatchRequestController *controller,
                             TestEvent                  event,
                             gpointer                   user_data)
{
  gboolean *done_at_return = user_data;

  if (event != TEST_EVENT_REQUEST_START)
    return;

  dispatch_request_controller_abort (controller, NULL);
  *done_at_return = recorder->done;
}

static void
test_abort_in_request_start (Fixture       *fixture,
                             gconstpointer  data)
{
  g_autoptr(TestRecorder) recorder = test_recorder_new ();
  g_autoptr(DispatchRequestController) controller = NULL;
  gboolean done_at_return = TRUE;

  g_test_summary ("abort() inside on_request_start: ABORTED is delivered after "
                  "the callback returns and nothing is sent (the connection was "
                  "opened: on_request_start comes when the request is about to be "
                  "written, as undici's onRequestStart)");

  recorder->hook = abort_in_request_start_hook;
  recorder->hook_data = &done_at_return;
  controller = start_get (fixture->agent, test_server_get_origin (fixture->server),
                          "/hello", recorder);

  test_recorder_wait (recorder, TEST_WAIT_MS);
  g_assert_false (done_at_return);
  test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_ERROR, -1);
  test_recorder_assert_error (recorder, DISPATCH_ERROR_ABORTED);

  test_iterate_for (QUIET_MS);
  g_assert_cmpuint (test_server_get_requests (fixture->server), ==, 0);
}

static void
test_abort_connecting (void)
{
  g_autoptr(DispatchDispatcher) agent = DISPATCH_DISPATCHER (dispatch_agent_new ());
  g_autoptr(TestRecorder) recorder = test_recorder_new ();
  g_autoptr(DispatchRequestController) controller = NULL;
  TestBlackhole *hole = test_blackhole_new ();
  AbortLater later = { 0 };

  g_test_summary ("abort() while connect() hangs (full-backlog listener): "
                  "ABORTED promptly, not a connect timeout");

  controller = start_get (agent, test_blackhole_get_origin (hole), "/hello", recorder);
  later.controller = controller;
  g_object_set_data (G_OBJECT (controller), "test-recorder", recorder);

  /* Nothing signals "connecting"; the blackhole never completes the
   * handshake, so after 200 ms the request is surely still connecting. */
  g_timeout_add_once (200, (GSourceOnceFunc) abort_later_cb, &later);

  test_recorder_wait (recorder, TEST_WAIT_MS);
  g_assert_cmpint (later.time, >, 0);
  g_assert_false (later.done_at_return);
  test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_ERROR, -1);
  test_recorder_assert_error (recorder, DISPATCH_ERROR_ABORTED);
  assert_prompt (recorder, later.time);

  g_object_set_data (G_OBJECT (controller), "test-recorder", NULL);
  test_blackhole_free (hole);
}

static void
test_abort_before_response (void)
{
  g_autoptr(DispatchDispatcher) agent = DISPATCH_DISPATCHER (dispatch_agent_new ());
  g_autoptr(TestRecorder) recorder = test_recorder_new ();
  g_autoptr(DispatchRequestController) controller = NULL;
  TestFaultServer *server = test_fault_server_new ();
  gint64 abort_time;

  g_test_summary ("abort() once the server (which never answers) has read the "
                  "request: ABORTED promptly, no response-start");

  controller = start_get (agent, test_fault_server_get_origin (server), "/hang", recorder);
  wait_until (fault_server_has_request, server, TEST_WAIT_MS,
              "the fault server receiving the request");
  g_assert_false (recorder->done);

  abort_time = g_get_monotonic_time ();
  dispatch_request_controller_abort (controller, NULL);
  g_assert_false (recorder->done);

  test_recorder_wait (recorder, TEST_WAIT_MS);
  test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_ERROR, -1);
  test_recorder_assert_error (recorder, DISPATCH_ERROR_ABORTED);
  assert_prompt (recorder, abort_time);

  test_fault_server_free (server);
}

static void
test_abort_waiting_headers (Fixture       *fixture,
                            gconstpointer  data)
{
  g_autoptr(TestRecorder) recorder = test_recorder_new ();
  g_autoptr(DispatchRequestController) controller = NULL;
  ServerCount count = { fixture->server, 1 };
  gint64 abort_time;

  g_test_summary ("abort() while waiting for a response head that comes after "
                  "5 s: ABORTED promptly, no response-start");

  controller = start_get (fixture->agent, test_server_get_origin (fixture->server),
                          "/slow-headers?ms=5000", recorder);
  wait_until (server_has_requests, &count, TEST_WAIT_MS, "the server reading the request");
  g_assert_false (recorder->done);

  abort_time = g_get_monotonic_time ();
  dispatch_request_controller_abort (controller, NULL);
  g_assert_false (recorder->done);

  test_recorder_wait (recorder, TEST_WAIT_MS);
  test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_ERROR, -1);
  test_recorder_assert_error (recorder, DISPATCH_ERROR_ABORTED);
  assert_prompt (recorder, abort_time);
}

static void
test_abort_mid_body (Fixture       *fixture,
                     gconstpointer  data)
{
  g_autoptr(TestRecorder) recorder = test_recorder_new ();
  g_autoptr(DispatchRequestController) controller = NULL;
  gint64 abort_time;

  g_test_summary ("abort() after part of the body arrived (/stall): "
                  "[start, response-start, data, error ABORTED], promptly");

  controller = start_get (fixture->agent, test_server_get_origin (fixture->server),
                          "/stall", recorder);
  wait_for_hello (recorder);

  abort_time = g_get_monotonic_time ();
  dispatch_request_controller_abort (controller, NULL);
  g_assert_false (recorder->done);

  test_recorder_wait (recorder, TEST_WAIT_MS);
  test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_RESPONSE_START,
                               TEST_EVENT_DATA, TEST_EVENT_ERROR, -1);
  test_recorder_assert_error (recorder, DISPATCH_ERROR_ABORTED);
  g_assert_cmpmem (recorder->body->data, recorder->body->len, "hello", 5);
  assert_prompt (recorder, abort_time);
}

typedef struct
{
  AbortLater later;
  gboolean   paused_seen;
  guint      chunks_at_pause;
  guint64    bytes_at_pause;
} PausedAbort;

static void
abort_when_paused_hook (TestRecorder              *recorder,
                        DispatchRequestController *controller,
                        TestEvent                  event,
                        gpointer                   user_data)
{
  PausedAbort *state = user_data;

  if (event != TEST_EVENT_DATA || state->paused_seen ||
      !dispatch_request_controller_get_paused (controller))
    return;

  state->paused_seen = TRUE;
  state->chunks_at_pause = recorder->n_chunks;
  state->bytes_at_pause = recorder->body_bytes;
  g_timeout_add_once (200, (GSourceOnceFunc) abort_later_cb, &state->later);
}

static void
test_abort_paused (Fixture       *fixture,
                   gconstpointer  data)
{
  g_autoptr(TestRecorder) recorder = test_recorder_new ();
  g_autoptr(DispatchRequestController) controller = NULL;
  PausedAbort state = { { 0 } };

  g_test_summary ("abort() from a timeout while paused at the first chunk of a "
                  "64 MiB body: ABORTED promptly, no data after the pause");

  recorder->pause_at = 1;
  recorder->discard_body = TRUE;
  recorder->hook = abort_when_paused_hook;
  recorder->hook_data = &state;
  controller = start_get (fixture->agent, test_server_get_origin (fixture->server),
                          "/pattern?size=67108864", recorder);
  state.later.controller = controller;
  g_object_set_data (G_OBJECT (controller), "test-recorder", recorder);

  test_recorder_wait (recorder, TEST_WAIT_MS);
  g_assert_true (state.paused_seen);
  g_assert_cmpint (state.later.time, >, 0);
  g_assert_false (state.later.done_at_return);
  test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_RESPONSE_START,
                               TEST_EVENT_DATA, TEST_EVENT_ERROR, -1);
  test_recorder_assert_error (recorder, DISPATCH_ERROR_ABORTED);
  assert_prompt (recorder, state.later.time);
  g_assert_cmpuint (recorder->n_chunks, ==, state.chunks_at_pause);
  g_assert_cmpuint (recorder->body_bytes, ==, state.bytes_at_pause);
  g_assert_cmpuint (recorder->body_bytes, <, 67108864);

  g_object_set_data (G_OBJECT (controller), "test-recorder", NULL);
}

typedef struct
{
  DispatchRequestController *controller;
  const GError              *reason;
  gboolean                   done;  /* atomic */
} ThreadCall;

static gpointer
abort_thread_func (gpointer user_data)
{
  ThreadCall *call = user_data;

  dispatch_request_controller_abort (call->controller, call->reason);
  g_atomic_int_set (&call->done, TRUE);

  return NULL;
}

static void
record_thread_hook (TestRecorder              *recorder,
                    DispatchRequestController *controller,
                    TestEvent                  event,
                    gpointer                   user_data)
{
  GThread **error_thread = user_data;

  if (event == TEST_EVENT_ERROR)
    *error_thread = g_thread_self ();
}

static void
test_abort_from_thread (Fixture       *fixture,
                        gconstpointer  data)
{
  g_autoptr(TestRecorder) recorder = test_recorder_new ();
  g_autoptr(DispatchRequestController) controller = NULL;
  GThread *error_thread = NULL;
  ThreadCall call = { 0 };
  GThread *thread;

  g_test_summary ("abort() from another thread while the main loop runs: "
                  "ABORTED is delivered on the dispatching (main) thread");

  recorder->hook = record_thread_hook;
  recorder->hook_data = &error_thread;
  controller = start_get (fixture->agent, test_server_get_origin (fixture->server),
                          "/stall", recorder);
  wait_for_hello (recorder);

  call.controller = controller;
  thread = g_thread_new ("test-abort", abort_thread_func, &call);

  test_recorder_wait (recorder, TEST_WAIT_MS);
  g_thread_join (thread);
  g_assert_true (g_atomic_int_get (&call.done));

  test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_RESPONSE_START,
                               TEST_EVENT_DATA, TEST_EVENT_ERROR, -1);
  test_recorder_assert_error (recorder, DISPATCH_ERROR_ABORTED);
  g_assert_true (error_thread == g_thread_self ());
  g_assert_true (recorder->thread == g_thread_self ());
  g_assert_true (dispatch_request_controller_get_aborted (controller));
}

typedef struct
{
  DispatchRequestController *controller;
  TestServer                *server;
  guint                      target;  /* 0: abort at once */
  gint64                     jitter;  /* µs to wait after the server read it */
} RaceCall;

static gpointer
race_thread_func (gpointer user_data)
{
  RaceCall *call = user_data;
  gint64 deadline = g_get_monotonic_time () + G_USEC_PER_SEC;

  /* Aim at the window around the response's arrival: once the server
   * has read the request, the response is microseconds away. Spinning
   * (bounded) rather than sleeping: this thread only picks a moment. */
  if (call->target > 0)
    {
      while (test_server_get_requests (call->server) < call->target &&
             g_get_monotonic_time () < deadline)
        g_thread_yield ();

      deadline = g_get_monotonic_time () + call->jitter;
      while (g_get_monotonic_time () < deadline)
        ;
    }

  dispatch_request_controller_abort (call->controller, NULL);

  return NULL;
}

/* Guards against a libsoup 3.2.3 crash: if the send_async cancellable
 * fires after libsoup created the response stream but before
 * soup_session_send_finish(), the stream stays in the GTask and is closed
 * when the task is freed, after soup_session_send_finish() already
 * dropped the message's I/O state: SIGSEGV in soup_message_io_skip()
 * (fixed upstream in 3.7.1, "soup-message: check io_data before visiting
 * it", GNOME/libsoup#418). Aborting from another thread right as the
 * response arrives hits that window. */
#define RACE_ROUNDS 1000

static void
test_abort_from_thread_race (Fixture       *fixture,
                             gconstpointer  data)
{
  guint n_aborted = 0;

  g_test_summary ("abort() from another thread racing a short request to its "
                  "end, " G_STRINGIFY (RACE_ROUNDS) " times at varied moments "
                  "around the response's arrival: exactly one terminal callback "
                  "every time, on the main thread; END or ABORTED, no crash");

  for (guint i = 0; i < RACE_ROUNDS; i++)
    {
      g_autoptr(TestRecorder) recorder = test_recorder_new ();
      g_autoptr(DispatchRequestController) controller = NULL;
      guint before = test_server_get_requests (fixture->server);
      RaceCall call = { 0 };
      GThread *thread;

      controller = start_get (fixture->agent, test_server_get_origin (fixture->server),
                              "/hello", recorder);
      call.controller = controller;
      call.server = fixture->server;
      call.target = i % 5 == 0 ? 0 : before + 1;
      call.jitter = (gint64) ((i * 37) % 300);
      thread = g_thread_new ("test-abort-race", race_thread_func, &call);

      test_recorder_wait (recorder, TEST_WAIT_MS);
      g_thread_join (thread);

      if (recorder->error != NULL)
        {
          test_recorder_assert_error (recorder, DISPATCH_ERROR_ABORTED);
          n_aborted++;
        }
      else
        test_recorder_assert_ok (recorder, 200, "Hello, World!");
    }

  g_test_message ("%u of %u aborted, the others completed", n_aborted, RACE_ROUNDS);

  /* Let anything left behind (a late callback would hit the recorder's
   * "after the terminal callback" check; a leaked response stream is
   * closed when libsoup's task is freed) happen inside this test. */
  test_iterate_for (100);
}

static void
test_abort_twice (Fixture       *fixture,
                  gconstpointer  data)
{
  g_autoptr(TestRecorder) recorder = test_recorder_new ();
  g_autoptr(DispatchRequestController) controller = NULL;
  g_autoptr(GError) first = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "first");
  g_autoptr(GError) second = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_EXISTS, "second");
  const GError *reason;

  g_test_summary ("abort() twice: the first reason wins, the second call is a no-op");

  controller = start_get (fixture->agent, test_server_get_origin (fixture->server),
                          "/stall", recorder);
  wait_for_hello (recorder);

  dispatch_request_controller_abort (controller, first);
  dispatch_request_controller_abort (controller, second);
  dispatch_request_controller_abort (controller, NULL);

  reason = dispatch_request_controller_get_reason (controller);
  g_assert_error (reason, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_cmpstr (reason->message, ==, "first");

  test_recorder_wait (recorder, TEST_WAIT_MS);
  g_assert_error (recorder->error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_cmpstr (recorder->error->message, ==, "first");
  test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_RESPONSE_START,
                               TEST_EVENT_DATA, TEST_EVENT_ERROR, -1);

  /* and once more after the end */
  dispatch_request_controller_abort (controller, second);
  test_iterate_for (100);
  reason = dispatch_request_controller_get_reason (controller);
  g_assert_error (reason, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_cmpuint (recorder->events->len, ==, 4);
}

static void
count_notify_cb (GObject    *object,
                 GParamSpec *pspec,
                 gpointer    user_data)
{
  guint *count = user_data;

  (*count)++;
}

static void
test_abort_after_end (Fixture       *fixture,
                      gconstpointer  data)
{
  g_autoptr(DispatchRequest) request = NULL;
  g_autoptr(TestRecorder) recorder = NULL;
  DispatchRequestController *controller;
  GCancellable *cancellable;
  guint aborted_notifies = 0;

  g_test_summary ("abort() after on_response_end does nothing: no callback, "
                  "aborted stays FALSE, no reason, cancellable untouched");

  request = dispatch_request_new ("GET", test_server_get_origin (fixture->server), "/hello");
  recorder = test_dispatch_and_wait (fixture->agent, request);
  test_recorder_assert_ok (recorder, 200, "Hello, World!");

  controller = recorder->controller;
  g_assert_true (dispatch_request_controller_get_finished (controller));
  cancellable = dispatch_request_controller_get_cancellable (controller);
  g_signal_connect (controller, "notify::aborted", G_CALLBACK (count_notify_cb),
                    &aborted_notifies);

  dispatch_request_controller_abort (controller, NULL);

  g_assert_false (dispatch_request_controller_get_aborted (controller));
  g_assert_null (dispatch_request_controller_get_reason (controller));
  g_assert_false (g_cancellable_is_cancelled (cancellable));

  test_iterate_for (QUIET_MS);
  test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_RESPONSE_START,
                               TEST_EVENT_DATA, TEST_EVENT_END, -1);
  g_assert_no_error (recorder->error);
  g_assert_false (dispatch_request_controller_get_aborted (controller));
  g_assert_cmpuint (aborted_notifies, ==, 0);

  g_signal_handlers_disconnect_by_data (controller, &aborted_notifies);
}

static void
test_abort_custom_reason (Fixture       *fixture,
                          gconstpointer  data)
{
  g_autoptr(TestRecorder) recorder = test_recorder_new ();
  g_autoptr(DispatchRequestController) controller = NULL;
  g_autoptr(GError) reason = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED, "my reason");
  const GError *got;

  g_test_summary ("abort(reason): the handler gets exactly that domain, code and "
                  "message, and get_reason() returns it");

  controller = start_get (fixture->agent, test_server_get_origin (fixture->server),
                          "/stall", recorder);
  g_assert_null (dispatch_request_controller_get_reason (controller));
  g_assert_false (dispatch_request_controller_get_aborted (controller));
  wait_for_hello (recorder);

  dispatch_request_controller_abort (controller, reason);
  g_assert_true (dispatch_request_controller_get_aborted (controller));

  test_recorder_wait (recorder, TEST_WAIT_MS);
  g_assert_nonnull (recorder->error);
  g_assert_true (recorder->error->domain == G_IO_ERROR);
  g_assert_cmpint (recorder->error->code, ==, G_IO_ERROR_FAILED);
  g_assert_cmpstr (recorder->error->message, ==, "my reason");
  g_assert_false (recorder_has_event (recorder, TEST_EVENT_END));

  got = dispatch_request_controller_get_reason (controller);
  g_assert_nonnull (got);
  g_assert_true (got->domain == G_IO_ERROR);
  g_assert_cmpint (got->code, ==, G_IO_ERROR_FAILED);
  g_assert_cmpstr (got->message, ==, "my reason");
  g_assert_true (dispatch_request_controller_get_aborted (controller));
}

static void
test_abort_default_reason (Fixture       *fixture,
                           gconstpointer  data)
{
  g_autoptr(TestRecorder) recorder = test_recorder_new ();
  g_autoptr(DispatchRequestController) controller = NULL;
  const GError *got;

  g_test_summary ("abort(NULL): get_reason() is a DISPATCH_ERROR_ABORTED error, "
                  "the same the handler received");

  controller = start_get (fixture->agent, test_server_get_origin (fixture->server),
                          "/stall", recorder);
  wait_for_hello (recorder);
  dispatch_request_controller_abort (controller, NULL);

  got = dispatch_request_controller_get_reason (controller);
  g_assert_error (got, DISPATCH_ERROR, DISPATCH_ERROR_ABORTED);

  test_recorder_wait (recorder, TEST_WAIT_MS);
  test_recorder_assert_error (recorder, DISPATCH_ERROR_ABORTED);
  g_assert_cmpstr (recorder->error->message, ==, got->message);
}

static void
abort_in_response_start_hook (TestRecorder              *recorder,
                              DispatchRequestController *controller,
                              TestEvent                  event,
                              gpointer                   user_data)
{
  int *state = user_data;

  if (event != TEST_EVENT_RESPONSE_START)
    return;

  dispatch_request_controller_abort (controller, NULL);
  /* 1: abort() returned with no error delivered; 2: it was delivered
   * inside abort() */
  *state = recorder->done || recorder_has_event (recorder, TEST_EVENT_ERROR) ? 2 : 1;
}

static void
test_abort_not_reentrant (Fixture       *fixture,
                          gconstpointer  data)
{
  g_autoptr(TestRecorder) recorder = test_recorder_new ();
  g_autoptr(DispatchRequestController) controller = NULL;
  int state = 0;

  g_test_summary ("abort() called inside on_response_start returns before "
                  "on_response_error runs; the error comes from the main loop");

  recorder->hook = abort_in_response_start_hook;
  recorder->hook_data = &state;
  controller = start_get (fixture->agent, test_server_get_origin (fixture->server),
                          "/stall", recorder);

  test_recorder_wait (recorder, TEST_WAIT_MS);
  g_assert_cmpint (state, ==, 1);
  test_recorder_assert_error (recorder, DISPATCH_ERROR_ABORTED);
  g_assert_true (recorder_has_event (recorder, TEST_EVENT_RESPONSE_START));
  g_assert_false (recorder_has_event (recorder, TEST_EVENT_END));
}

static void
cancelled_in_error_hook (TestRecorder              *recorder,
                         DispatchRequestController *controller,
                         TestEvent                  event,
                         gpointer                   user_data)
{
  int *state = user_data;

  if (event != TEST_EVENT_ERROR)
    return;

  *state = g_cancellable_is_cancelled (dispatch_request_controller_get_cancellable (controller))
           ? 1 : 2;
}

static void
test_abort_cancellable (Fixture       *fixture,
                        gconstpointer  data)
{
  g_autoptr(TestRecorder) recorder = test_recorder_new ();
  g_autoptr(DispatchRequestController) controller = NULL;
  GCancellable *cancellable;
  GCancellable *from_property = NULL;
  int state = 0;

  g_test_summary ("the controller's cancellable is cancelled by abort(); the "
                  "handler already sees it cancelled in on_response_error");

  recorder->hook = cancelled_in_error_hook;
  recorder->hook_data = &state;
  controller = start_get (fixture->agent, test_server_get_origin (fixture->server),
                          "/stall", recorder);

  cancellable = dispatch_request_controller_get_cancellable (controller);
  g_assert_true (G_IS_CANCELLABLE (cancellable));
  g_assert_true (dispatch_request_controller_get_cancellable (controller) == cancellable);
  g_object_get (controller, "cancellable", &from_property, NULL);
  g_assert_true (from_property == cancellable);
  g_clear_object (&from_property);

  wait_for_hello (recorder);
  g_assert_false (g_cancellable_is_cancelled (cancellable));

  dispatch_request_controller_abort (controller, NULL);

  test_recorder_wait (recorder, TEST_WAIT_MS);
  test_recorder_assert_error (recorder, DISPATCH_ERROR_ABORTED);
  g_assert_cmpint (state, ==, 1);
  g_assert_true (g_cancellable_is_cancelled (cancellable));
}

static void
connection_reuse_case (Fixture  *fixture,
                       gboolean  abort_mid_body)
{
  const char *origin = test_server_get_origin (fixture->server);
  g_autoptr(TestRecorder) recorder = test_recorder_new ();
  g_autoptr(DispatchRequestController) controller = NULL;
  int first;
  int last;

  first = conn_id (fixture->agent, origin);
  g_assert_cmpuint (test_server_get_connections (fixture->server), ==, 1);

  if (abort_mid_body)
    {
      controller = start_get (fixture->agent, origin, "/stall", recorder);
      wait_for_hello (recorder);
      dispatch_request_controller_abort (controller, NULL);
      test_recorder_wait (recorder, TEST_WAIT_MS);
      test_recorder_assert_error (recorder, DISPATCH_ERROR_ABORTED);
    }
  else
    {
      controller = start_get (fixture->agent, origin, "/pattern?size=100000", recorder);
      test_recorder_wait (recorder, TEST_WAIT_MS);
      test_recorder_assert_ok (recorder, 200, NULL);
      assert_pattern_body (recorder, 100000);
    }

  /* the middle request went over the first connection */
  g_assert_cmpuint (test_server_get_connections (fixture->server), ==, 1);

  last = conn_id (fixture->agent, origin);
  g_test_message ("peer ports: first %d, after the %s request %d", first,
                  abort_mid_body ? "aborted" : "completed", last);

  if (abort_mid_body)
    {
      g_assert_cmpint (last, !=, first);
      g_assert_cmpuint (test_server_get_connections (fixture->server), ==, 2);
    }
  else
    {
      g_assert_cmpint (last, ==, first);
      g_assert_cmpuint (test_server_get_connections (fixture->server), ==, 1);
    }
}

static void
test_abort_connection_dropped (Fixture       *fixture,
                               gconstpointer  data)
{
  g_test_summary ("after abort() mid-body the connection is not reused: the "
                  "next request on the agent comes from a new peer port");

  connection_reuse_case (fixture, TRUE);
}

static void
test_abort_connection_control (Fixture       *fixture,
                               gconstpointer  data)
{
  g_test_summary ("control for connection-dropped: after a completed body the "
                  "next request reuses the connection (same peer port)");

  connection_reuse_case (fixture, FALSE);
}

/* ------------------------------------------------------------------------
 * Property notifications
 * ------------------------------------------------------------------------ */

typedef struct
{
  guint    paused;
  guint    aborted;
  gboolean off_thread;
  GThread *main_thread;
} Notifies;

static void
notify_cb (GObject    *object,
           GParamSpec *pspec,
           gpointer    user_data)
{
  Notifies *notifies = user_data;

  if (g_thread_self () != notifies->main_thread)
    notifies->off_thread = TRUE;

  if (g_str_equal (pspec->name, "paused"))
    notifies->paused++;
  else if (g_str_equal (pspec->name, "aborted"))
    notifies->aborted++;
}

static gpointer
pause_thread_func (gpointer user_data)
{
  ThreadCall *call = user_data;

  dispatch_request_controller_pause (call->controller);
  g_atomic_int_set (&call->done, TRUE);

  return NULL;
}

static gpointer
resume_thread_func (gpointer user_data)
{
  ThreadCall *call = user_data;

  dispatch_request_controller_resume (call->controller);
  g_atomic_int_set (&call->done, TRUE);

  return NULL;
}

static void
run_in_thread (GThreadFunc                func,
               DispatchRequestController *controller)
{
  ThreadCall call = { controller, NULL, FALSE };
  GThread *thread = g_thread_new ("test-controller-call", func, &call);

  g_thread_join (thread);
  g_assert_true (g_atomic_int_get (&call.done));
}

static gboolean
paused_notified_once (gpointer user_data)
{
  return ((Notifies *) user_data)->paused >= 1;
}

static gboolean
paused_notified_twice (gpointer user_data)
{
  return ((Notifies *) user_data)->paused >= 2;
}

static gboolean
aborted_notified (gpointer user_data)
{
  return ((Notifies *) user_data)->aborted >= 1;
}

static void
test_notify_main_thread (Fixture       *fixture,
                         gconstpointer  data)
{
  g_autoptr(TestRecorder) recorder = test_recorder_new ();
  g_autoptr(DispatchRequestController) controller = NULL;
  Notifies notifies = { 0 };

  g_test_summary ("notify::paused and notify::aborted are emitted on the "
                  "dispatching (main) thread even when pause(), resume() and "
                  "abort() are called from other threads");

  notifies.main_thread = g_thread_self ();
  controller = start_get (fixture->agent, test_server_get_origin (fixture->server),
                          "/stall", recorder);
  g_signal_connect (controller, "notify::paused", G_CALLBACK (notify_cb), &notifies);
  g_signal_connect (controller, "notify::aborted", G_CALLBACK (notify_cb), &notifies);
  wait_for_hello (recorder);

  run_in_thread (pause_thread_func, controller);
  g_assert_true (dispatch_request_controller_get_paused (controller));
  wait_until (paused_notified_once, &notifies, TEST_WAIT_MS, "notify::paused after pause()");
  g_assert_false (notifies.off_thread);
  g_assert_cmpuint (notifies.paused, ==, 1);

  run_in_thread (resume_thread_func, controller);
  g_assert_false (dispatch_request_controller_get_paused (controller));
  wait_until (paused_notified_twice, &notifies, TEST_WAIT_MS, "notify::paused after resume()");
  g_assert_false (notifies.off_thread);
  g_assert_cmpuint (notifies.paused, ==, 2);
  g_assert_cmpuint (notifies.aborted, ==, 0);

  run_in_thread (abort_thread_func, controller);
  g_assert_true (dispatch_request_controller_get_aborted (controller));
  wait_until (aborted_notified, &notifies, TEST_WAIT_MS, "notify::aborted after abort()");
  test_recorder_wait (recorder, TEST_WAIT_MS);
  test_recorder_assert_error (recorder, DISPATCH_ERROR_ABORTED);

  test_iterate_for (100);
  g_assert_false (notifies.off_thread);
  g_assert_cmpuint (notifies.aborted, ==, 1);
  g_assert_cmpuint (notifies.paused, ==, 2);

  g_signal_handlers_disconnect_by_data (controller, &notifies);
}

/* ------------------------------------------------------------------------
 * Pause and resume
 * ------------------------------------------------------------------------ */

#define PATTERN_4M 4194304

typedef struct
{
  DispatchRequestController *controller;
  TestRecorder              *recorder;
  gboolean                   paused;          /* by the test, not resumed yet */
  guint                      chunks_at_resume;
  guint                      n_pauses;
  gboolean                   data_while_paused;
  gboolean                   resumed;
} PauseState;

static gboolean
resume_later_cb (gpointer user_data)
{
  PauseState *state = user_data;

  state->chunks_at_resume = state->recorder->n_chunks;
  state->paused = FALSE;
  state->resumed = TRUE;
  dispatch_request_controller_resume (state->controller);

  return G_SOURCE_REMOVE;
}

static void
pause_in_response_start_hook (TestRecorder              *recorder,
                              DispatchRequestController *controller,
                              TestEvent                  event,
                              gpointer                   user_data)
{
  PauseState *state = user_data;

  if (event == TEST_EVENT_DATA && state->paused)
    state->data_while_paused = TRUE;

  if (event != TEST_EVENT_RESPONSE_START)
    return;

  state->controller = controller;
  state->paused = TRUE;
  state->n_pauses++;
  dispatch_request_controller_pause (controller);
  g_assert_true (dispatch_request_controller_get_paused (controller));
  g_timeout_add (300, resume_later_cb, state);
}

static void
test_pause_in_response_start (Fixture       *fixture,
                              gconstpointer  data)
{
  g_autoptr(TestRecorder) recorder = test_recorder_new ();
  g_autoptr(DispatchRequestController) controller = NULL;
  PauseState state = { 0 };

  g_test_summary ("pause() in on_response_start, resume() 300 ms later from a "
                  "timeout: no data in between, then the whole 4 MiB body intact");

  state.recorder = recorder;
  recorder->hook = pause_in_response_start_hook;
  recorder->hook_data = &state;
  controller = start_get (fixture->agent, test_server_get_origin (fixture->server),
                          "/pattern?size=4194304", recorder);

  test_recorder_wait (recorder, TEST_WAIT_MS);
  test_recorder_assert_ok (recorder, 200, NULL);
  g_assert_true (state.resumed);
  g_assert_false (state.data_while_paused);
  g_assert_cmpuint (state.chunks_at_resume, ==, 0);
  test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_RESPONSE_START,
                               TEST_EVENT_DATA, TEST_EVENT_END, -1);
  assert_pattern_body (recorder, PATTERN_4M);
}

static void
test_pause_before_headers (Fixture       *fixture,
                           gconstpointer  data)
{
  g_autoptr(TestRecorder) recorder = test_recorder_new ();
  g_autoptr(DispatchRequestController) controller = NULL;

  g_test_summary ("pause() right after dispatch(), before anything arrived: "
                  "on_response_start still comes, then no data until resume(), "
                  "then the whole body");

  controller = start_get (fixture->agent, test_server_get_origin (fixture->server),
                          "/pattern?size=1048576", recorder);
  dispatch_request_controller_pause (controller);
  g_assert_true (dispatch_request_controller_get_paused (controller));

  wait_until (has_response_start, recorder, TEST_WAIT_MS, "on_response_start while paused");
  g_assert_cmpuint (recorder->status, ==, 200);

  test_iterate_for (QUIET_MS);
  g_assert_cmpuint (recorder->n_chunks, ==, 0);
  g_assert_false (recorder->done);
  test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_RESPONSE_START, -1);
  g_assert_true (dispatch_request_controller_get_paused (controller));

  dispatch_request_controller_resume (controller);
  g_assert_false (dispatch_request_controller_get_paused (controller));

  test_recorder_wait (recorder, TEST_WAIT_MS);
  test_recorder_assert_ok (recorder, 200, NULL);
  assert_pattern_body (recorder, 1048576);
}

static gboolean
resume_idle_cb (gpointer user_data)
{
  PauseState *state = user_data;

  state->paused = FALSE;
  dispatch_request_controller_resume (state->controller);

  return G_SOURCE_REMOVE;
}

static void
pause_every_chunk_hook (TestRecorder              *recorder,
                        DispatchRequestController *controller,
                        TestEvent                  event,
                        gpointer                   user_data)
{
  PauseState *state = user_data;

  if (event != TEST_EVENT_DATA)
    return;

  if (state->paused)
    state->data_while_paused = TRUE;

  state->controller = controller;
  state->paused = TRUE;
  state->n_pauses++;
  dispatch_request_controller_pause (controller);
  g_idle_add (resume_idle_cb, state);
}

static void
test_pause_many (Fixture       *fixture,
                 gconstpointer  data)
{
  g_autoptr(TestRecorder) recorder = test_recorder_new ();
  g_autoptr(DispatchRequestController) controller = NULL;
  PauseState state = { 0 };

  g_test_summary ("pause() at every chunk, resume() from an idle: no data "
                  "while paused, the 8 MiB body arrives intact");

  state.recorder = recorder;
  recorder->hook = pause_every_chunk_hook;
  recorder->hook_data = &state;
  controller = start_get (fixture->agent, test_server_get_origin (fixture->server),
                          "/pattern?size=8388608", recorder);

  test_recorder_wait (recorder, TEST_WAIT_MS);
  test_recorder_assert_ok (recorder, 200, NULL);
  g_test_message ("%u pauses over %u chunks", state.n_pauses, recorder->n_chunks);
  g_assert_false (state.data_while_paused);
  g_assert_cmpuint (state.n_pauses, ==, recorder->n_chunks);
  g_assert_cmpuint (state.n_pauses, >=, 8388608 / (256 * 1024));
  assert_pattern_body (recorder, 8388608);
}

typedef struct
{
  DispatchRequestController *controller;
  guint                      n;
  gboolean                   stop;  /* atomic */
  gboolean                   done;  /* atomic */
} Toggler;

static gpointer
toggle_thread_func (gpointer user_data)
{
  Toggler *toggler = user_data;

  for (toggler->n = 0; !g_atomic_int_get (&toggler->stop) && toggler->n < 20000; toggler->n++)
    {
      dispatch_request_controller_pause (toggler->controller);
      g_thread_yield ();
      dispatch_request_controller_resume (toggler->controller);
      g_thread_yield ();
    }

  g_atomic_int_set (&toggler->done, TRUE);
  return NULL;
}

static void
test_pause_from_thread (Fixture       *fixture,
                        gconstpointer  data)
{
  g_autoptr(TestRecorder) recorder = test_recorder_new ();
  g_autoptr(DispatchRequestController) controller = NULL;
  Toggler toggler = { 0 };
  GThread *thread;

  g_test_summary ("another thread toggles pause()/resume() as fast as it can "
                  "while a 16 MiB body downloads: it completes intact");

  controller = start_get (fixture->agent, test_server_get_origin (fixture->server),
                          "/pattern?size=16777216", recorder);
  toggler.controller = controller;
  thread = g_thread_new ("test-toggle", toggle_thread_func, &toggler);

  /* the toggler always ends resumed; stop it once the body is done */
  test_recorder_wait (recorder, TEST_WAIT_MS);
  g_atomic_int_set (&toggler.stop, TRUE);
  g_thread_join (thread);
  g_test_message ("%u pause/resume pairs from the other thread", toggler.n);

  test_recorder_assert_ok (recorder, 200, NULL);
  assert_pattern_body (recorder, 16777216);
}

static void
idempotent_pause_hook (TestRecorder              *recorder,
                       DispatchRequestController *controller,
                       TestEvent                  event,
                       gpointer                   user_data)
{
  PauseState *state = user_data;

  if (event == TEST_EVENT_DATA && state->paused)
    state->data_while_paused = TRUE;

  if (event != TEST_EVENT_RESPONSE_START)
    return;

  state->controller = controller;
  state->paused = TRUE;
  dispatch_request_controller_pause (controller);
  dispatch_request_controller_pause (controller);
  g_assert_true (dispatch_request_controller_get_paused (controller));
}

static gboolean
state_paused (gpointer user_data)
{
  return ((PauseState *) user_data)->paused;
}

static void
test_pause_idempotent (Fixture       *fixture,
                       gconstpointer  data)
{
  g_autoptr(TestRecorder) recorder = test_recorder_new ();
  g_autoptr(DispatchRequestController) controller = NULL;
  PauseState state = { 0 };
  guint notifies = 0;

  g_test_summary ("pause() and resume() are idempotent: resume() when not "
                  "paused does nothing, two pauses need one resume, one "
                  "notify::paused per change");

  state.recorder = recorder;
  recorder->hook = idempotent_pause_hook;
  recorder->hook_data = &state;
  controller = start_get (fixture->agent, test_server_get_origin (fixture->server),
                          "/pattern?size=2097152", recorder);
  g_signal_connect (controller, "notify::paused", G_CALLBACK (count_notify_cb), &notifies);

  dispatch_request_controller_resume (controller);
  g_assert_false (dispatch_request_controller_get_paused (controller));

  wait_until (state_paused, &state, TEST_WAIT_MS, "the pause in on_response_start");
  test_iterate_for (QUIET_MS);
  g_assert_true (dispatch_request_controller_get_paused (controller));
  g_assert_cmpuint (recorder->n_chunks, ==, 0);
  g_assert_cmpuint (notifies, ==, 1);

  /* one resume undoes both pauses */
  state.paused = FALSE;
  dispatch_request_controller_resume (controller);
  dispatch_request_controller_resume (controller);
  g_assert_false (dispatch_request_controller_get_paused (controller));

  test_recorder_wait (recorder, TEST_WAIT_MS);
  test_recorder_assert_ok (recorder, 200, NULL);
  g_assert_false (state.data_while_paused);
  assert_pattern_body (recorder, 2097152);
  g_assert_cmpuint (notifies, ==, 2);

  g_signal_handlers_disconnect_by_data (controller, &notifies);
}

/* ------------------------------------------------------------------------
 * wait_if_paused
 * ------------------------------------------------------------------------ */

static void
test_wait_if_paused_not_paused (Fixture       *fixture,
                                gconstpointer  data)
{
  g_autoptr(TestRecorder) recorder = test_recorder_new ();
  g_autoptr(DispatchRequestController) controller = NULL;
  g_autoptr(GCancellable) cancelled = g_cancellable_new ();
  GError *error = NULL;
  gint64 before;

  g_test_summary ("wait_if_paused() returns TRUE at once when the request is "
                  "not paused (before the start, mid-body, and after the end)");

  controller = start_get (fixture->agent, test_server_get_origin (fixture->server),
                          "/stall", recorder);

  before = g_get_monotonic_time ();
  g_assert_true (dispatch_request_controller_wait_if_paused (controller, NULL, &error));
  g_assert_no_error (error);

  wait_for_hello (recorder);
  g_assert_true (dispatch_request_controller_wait_if_paused (controller, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_get_monotonic_time () - before, <, TEST_WAIT_MS * 1000);

  dispatch_request_controller_abort (controller, NULL);
  test_recorder_wait (recorder, TEST_WAIT_MS);
  test_recorder_assert_error (recorder, DISPATCH_ERROR_ABORTED);

  /* not paused: TRUE even after the end */
  g_assert_true (dispatch_request_controller_wait_if_paused (controller, NULL, &error));
  g_assert_no_error (error);
}

typedef struct
{
  DispatchRequestController *controller;
  GCancellable              *cancellable;
  gboolean                   waiting;       /* atomic: worker is about to wait */
  gboolean                   released;      /* atomic: main is about to release it */
  gboolean                   released_seen; /* released, as seen after the wait */
  gboolean                   result;
  GError                    *error;
  gboolean                   done;          /* atomic */
} Waiter;

static gpointer
waiter_thread_func (gpointer user_data)
{
  Waiter *waiter = user_data;

  g_atomic_int_set (&waiter->waiting, TRUE);
  waiter->result = dispatch_request_controller_wait_if_paused (waiter->controller,
                                                               waiter->cancellable,
                                                               &waiter->error);
  waiter->released_seen = g_atomic_int_get (&waiter->released);
  g_atomic_int_set (&waiter->done, TRUE);

  return NULL;
}

typedef enum {
  RELEASE_RESUME,
  RELEASE_ABORT,
  RELEASE_CANCEL,
} Release;

typedef struct
{
  Waiter  *waiter;
  Release  how;
} ReleaseLater;

static gboolean
release_later_cb (gpointer user_data)
{
  ReleaseLater *later = user_data;
  Waiter *waiter = later->waiter;

  /* Still blocked: the worker must not have returned yet. */
  g_assert_false (g_atomic_int_get (&waiter->done));

  g_atomic_int_set (&waiter->released, TRUE);
  switch (later->how)
    {
    case RELEASE_RESUME:
      dispatch_request_controller_resume (waiter->controller);
      break;
    case RELEASE_ABORT:
      dispatch_request_controller_abort (waiter->controller, NULL);
      break;
    case RELEASE_CANCEL:
      g_cancellable_cancel (waiter->cancellable);
      break;
    default:
      g_assert_not_reached ();
    }

  return G_SOURCE_REMOVE;
}

static void
pause_at_start_hook (TestRecorder              *recorder,
                     DispatchRequestController *controller,
                     TestEvent                  event,
                     gpointer                   user_data)
{
  gboolean *paused = user_data;

  if (event != TEST_EVENT_RESPONSE_START)
    return;

  dispatch_request_controller_pause (controller);
  *paused = TRUE;
}

/* Pauses a 4 MiB download at its response start, blocks a worker in
 * wait_if_paused() and releases it 200 ms later from a timeout in the way
 * given. Returns the recorder after the request ended. */
static TestRecorder *
run_waiter (Fixture *fixture,
            Release  how,
            Waiter  *waiter)
{
  TestRecorder *recorder = test_recorder_new ();
  g_autoptr(DispatchRequestController) controller = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  ReleaseLater later = { waiter, how };
  gboolean paused = FALSE;
  GThread *thread;

  recorder->hook = pause_at_start_hook;
  recorder->hook_data = &paused;
  controller = start_get (fixture->agent, test_server_get_origin (fixture->server),
                          "/pattern?size=4194304", recorder);
  test_wait_for_flag (&paused, TEST_WAIT_MS);
  g_assert_true (dispatch_request_controller_get_paused (controller));

  waiter->controller = controller;
  waiter->cancellable = cancellable;
  thread = g_thread_new ("test-waiter", waiter_thread_func, waiter);
  test_wait_for_flag (&waiter->waiting, TEST_WAIT_MS);

  g_timeout_add (200, release_later_cb, &later);
  test_wait_for_flag (&waiter->done, TEST_WAIT_MS);
  g_thread_join (thread);
  g_assert_true (waiter->released_seen);

  if (how == RELEASE_CANCEL)
    {
      /* Cancelling the wait does not touch the request. */
      test_iterate_for (100);
      g_assert_true (dispatch_request_controller_get_paused (controller));
      g_assert_false (recorder->done);
      g_assert_cmpuint (recorder->n_chunks, ==, 0);
      dispatch_request_controller_resume (controller);
    }

  test_recorder_wait (recorder, TEST_WAIT_MS);

  waiter->controller = NULL;
  waiter->cancellable = NULL;

  return recorder;
}

static void
test_wait_if_paused_resume (Fixture       *fixture,
                            gconstpointer  data)
{
  g_autoptr(TestRecorder) recorder = NULL;
  Waiter waiter = { 0 };

  g_test_summary ("wait_if_paused() in a worker thread blocks while paused and "
                  "returns TRUE once the main thread resumes");

  recorder = run_waiter (fixture, RELEASE_RESUME, &waiter);
  g_assert_no_error (waiter.error);
  g_assert_true (waiter.result);
  test_recorder_assert_ok (recorder, 200, NULL);
  assert_pattern_body (recorder, PATTERN_4M);
}

static void
test_wait_if_paused_abort (Fixture       *fixture,
                           gconstpointer  data)
{
  g_autoptr(TestRecorder) recorder = NULL;
  Waiter waiter = { 0 };

  g_test_summary ("wait_if_paused() in a worker returns FALSE with the abort "
                  "error when the request is aborted while paused");

  recorder = run_waiter (fixture, RELEASE_ABORT, &waiter);
  g_assert_false (waiter.result);
  g_assert_error (waiter.error, DISPATCH_ERROR, DISPATCH_ERROR_ABORTED);
  test_recorder_assert_error (recorder, DISPATCH_ERROR_ABORTED);
  g_assert_cmpuint (recorder->n_chunks, ==, 0);
  g_clear_error (&waiter.error);
}

static void
test_wait_if_paused_cancel (Fixture       *fixture,
                            gconstpointer  data)
{
  g_autoptr(TestRecorder) recorder = NULL;
  Waiter waiter = { 0 };

  g_test_summary ("wait_if_paused() in a worker returns FALSE with "
                  "G_IO_ERROR_CANCELLED when its cancellable fires; the request "
                  "stays paused");

  recorder = run_waiter (fixture, RELEASE_CANCEL, &waiter);
  g_assert_false (waiter.result);
  g_assert_error (waiter.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  test_recorder_assert_ok (recorder, 200, NULL);
  assert_pattern_body (recorder, PATTERN_4M);
  g_clear_error (&waiter.error);
}

static gint64
cpu_usec (void)
{
  struct rusage usage;

  getrusage (RUSAGE_SELF, &usage);
  return (gint64) usage.ru_utime.tv_sec * G_USEC_PER_SEC + usage.ru_utime.tv_usec +
         (gint64) usage.ru_stime.tv_sec * G_USEC_PER_SEC + usage.ru_stime.tv_usec;
}

/* Pauses the request from a high-priority idle scheduled on the
 * sixteenth chunk after a resume: the pump yields to the main loop after
 * sixteen reads, so the pause lands between that yield and the run the
 * yield asked for -- where a pump that forgot its yield kept the loop
 * spinning for as long as the request stayed paused. */
typedef struct
{
  DispatchRequestController *controller;
  guint                      since_resume;
  guint                      chunks_at_pause;
  gboolean                   pause_pending;
} YieldPause;

static gboolean
pause_now_cb (gpointer user_data)
{
  YieldPause *state = user_data;
  TestRecorder *recorder = g_object_get_data (G_OBJECT (state->controller), "recorder");

  dispatch_request_controller_pause (state->controller);
  state->chunks_at_pause = recorder->n_chunks;
  state->pause_pending = FALSE;
  return G_SOURCE_REMOVE;
}

static void
yield_pause_hook (TestRecorder              *recorder,
                  DispatchRequestController *controller,
                  TestEvent                  event,
                  gpointer                   user_data)
{
  YieldPause *state = user_data;

  if (event != TEST_EVENT_DATA || state->pause_pending)
    return;

  if (++state->since_resume == 16)
    {
      state->pause_pending = TRUE;
      g_idle_add_full (G_PRIORITY_HIGH, pause_now_cb, state, NULL);
    }
}

static void
test_pause_costs_no_cpu (Fixture       *fixture,
                         gconstpointer  data)
{
  g_autoptr(DispatchRequest) request =
    dispatch_request_new ("GET", test_server_get_origin (fixture->server), "/pattern?size=1073741824");
  g_autoptr(TestRecorder) recorder = test_recorder_new ();
  g_autoptr(DispatchRequestController) controller = NULL;
  YieldPause state = { 0 };
  gint64 worst = 0;

  g_test_summary ("a request paused right after its body pump yielded to the main loop "
                  "costs no CPU while paused: nothing spins (five pause cycles, each "
                  "after a resume that finds the socket buffer full)");

  recorder->discard_body = TRUE;
  recorder->hook = yield_pause_hook;
  recorder->hook_data = &state;
  controller = dispatch_dispatcher_dispatch (fixture->agent, request, DISPATCH_HANDLER (recorder));
  g_object_set_data (G_OBJECT (controller), "recorder", recorder);
  state.controller = controller;

  for (guint cycle = 0; cycle < 5; cycle++)
    {
      gint64 cpu_before;
      gint64 cpu_used;

      while (!dispatch_request_controller_get_paused (controller) && !recorder->done)
        g_main_context_iteration (NULL, TRUE);
      g_assert_false (recorder->done);

      cpu_before = cpu_usec ();
      test_iterate_for (300);
      cpu_used = cpu_usec () - cpu_before;
      worst = MAX (worst, cpu_used);

      g_assert_cmpuint (recorder->n_chunks, ==, state.chunks_at_pause);

      /* the server refills the socket buffer while paused: the next run
       * of the pump reads sixteen times and yields */
      state.since_resume = 0;
      dispatch_request_controller_resume (controller);
    }

  g_test_message ("worst CPU while paused for 300 ms: %" G_GINT64_FORMAT " µs", worst);
  /* a spinning main loop burns the whole 300 ms */
  g_assert_cmpint (worst, <, 150 * 1000);

  dispatch_request_controller_abort (controller, NULL);
  test_recorder_wait (recorder, TEST_WAIT_MS);
}

int
main (int   argc,
      char *argv[])
{
  test_init (&argc, &argv);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("/controller/abort/before-start", test_abort_before_start);
  ADD ("/controller/abort/in-request-start", test_abort_in_request_start);
  g_test_add_func ("/controller/abort/connecting", test_abort_connecting);
  g_test_add_func ("/controller/abort/before-response", test_abort_before_response);
  ADD ("/controller/abort/waiting-headers", test_abort_waiting_headers);
  ADD ("/controller/abort/mid-body", test_abort_mid_body);
  ADD ("/controller/abort/paused", test_abort_paused);
  ADD ("/controller/abort/from-thread", test_abort_from_thread);
  ADD ("/controller/abort/twice", test_abort_twice);
  ADD ("/controller/abort/after-end", test_abort_after_end);
  ADD ("/controller/abort/custom-reason", test_abort_custom_reason);
  ADD ("/controller/abort/default-reason", test_abort_default_reason);
  ADD ("/controller/abort/not-reentrant", test_abort_not_reentrant);
  ADD ("/controller/abort/cancellable", test_abort_cancellable);
  ADD ("/controller/abort/connection-dropped", test_abort_connection_dropped);
  ADD ("/controller/abort/connection-reused-control", test_abort_connection_control);
  ADD ("/controller/notify/main-thread", test_notify_main_thread);
  ADD ("/controller/pause/in-response-start", test_pause_in_response_start);
  ADD ("/controller/pause/before-headers", test_pause_before_headers);
  ADD ("/controller/pause/many", test_pause_many);
  ADD ("/controller/pause/from-thread", test_pause_from_thread);
  ADD ("/controller/pause/idempotent", test_pause_idempotent);
  ADD ("/controller/pause/costs-no-cpu", test_pause_costs_no_cpu);
  ADD ("/controller/wait-if-paused/not-paused", test_wait_if_paused_not_paused);
  ADD ("/controller/wait-if-paused/resume", test_wait_if_paused_resume);
  ADD ("/controller/wait-if-paused/abort", test_wait_if_paused_abort);
  ADD ("/controller/wait-if-paused/cancel", test_wait_if_paused_cancel);
  /* Last: if the library loses the race described at RACE_ROUNDS, the
   * process crashes, which must not hide the others' results. */
  ADD ("/controller/race/abort-from-thread", test_abort_from_thread_race);

#undef ADD

  return g_test_run ();
}
