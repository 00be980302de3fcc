/* test-timeouts.c — connect, headers, body and whole-request timeouts
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <string.h>

#include "test-util.h"

static TestServer *server;

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

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
new_get (const char *origin,
         const char *path_and_query)
{
  DispatchRequest *request;
  const char *q = strchr (path_and_query, '?');

  if (q == NULL)
    return dispatch_request_new ("GET", origin, path_and_query);

  {
    g_autofree char *path = g_strndup (path_and_query, q - path_and_query);

    request = dispatch_request_new ("GET", origin, path);
    dispatch_request_set_query (request, q + 1);
  }

  return request;
}

/* Dispatches without waiting; returns the recorder, stores the
 * controller (transfer full) and the start time. */
static TestRecorder *
start (DispatchAgent              *agent,
       DispatchRequest            *request,
       DispatchRequestController **controller_out,
       gint64                     *start_time)
{
  TestRecorder *recorder = test_recorder_new ();
  DispatchRequestController *controller;

  *start_time = g_get_monotonic_time ();
  controller = dispatch_dispatcher_dispatch (DISPATCH_DISPATCHER (agent), request,
                                             DISPATCH_HANDLER (recorder));
  g_assert_true (DISPATCH_IS_REQUEST_CONTROLLER (controller));

  if (controller_out != NULL)
    *controller_out = controller;
  else
    g_object_unref (controller);

  return recorder;
}

static gint64
elapsed_ms (TestRecorder *recorder,
            gint64        since)
{
  g_assert_true (recorder->done);
  return (recorder->done_time - since) / 1000;
}

/* The error message says which timeout fired: every timeout message
 * contains "timeout" and the name of its own kind, and none of the names
 * of the other kinds. */
static void
assert_timeout_message (const GError *error,
                        int           code)
{
  static const struct {
    int         code;
    const char *name;
  } kinds[] = {
    { DISPATCH_ERROR_CONNECT_TIMEOUT, "connect" },
    { DISPATCH_ERROR_HEADERS_TIMEOUT, "headers" },
    { DISPATCH_ERROR_BODY_TIMEOUT, "body" },
    { DISPATCH_ERROR_TIMEOUT, "request" },
  };
  g_autofree char *message = NULL;

  g_assert_error (error, DISPATCH_ERROR, code);

  /* "headers-timeout" and "headers timeout" both name it. */
  message = g_ascii_strdown (error->message, -1);
  g_strdelimit (message, "-_", ' ');

  if (strstr (message, "timeout") == NULL)
    g_error ("timeout message does not say \"timeout\": %s", error->message);

  for (guint i = 0; i < G_N_ELEMENTS (kinds); i++)
    {
      gboolean named = strstr (message, kinds[i].name) != NULL;

      if (kinds[i].code == code && !named)
        g_error ("the %s timeout's message does not name it: \"%s\"",
                 kinds[i].name, error->message);
      if (kinds[i].code != code && named)
        g_error ("a timeout message (code %d) names the %s timeout: \"%s\"",
                 code, kinds[i].name, error->message);
    }
}

/* A timeout is not an abort: the cancellable is cancelled (the work for
 * the request stops) but aborted stays FALSE and there is no reason. */
static void
assert_timed_out_controller (DispatchRequestController *controller)
{
  GCancellable *cancellable = dispatch_request_controller_get_cancellable (controller);

  g_assert_true (G_IS_CANCELLABLE (cancellable));
  g_assert_true (g_cancellable_is_cancelled (cancellable));
  g_assert_false (dispatch_request_controller_get_aborted (controller));
  g_assert_null (dispatch_request_controller_get_reason (controller));
  g_assert_true (dispatch_request_controller_get_finished (controller));
}

/* Checked from inside on_response_error: the cancellable is already
 * cancelled when the handler learns about the timeout. */
static void
check_cancelled_at_error_hook (TestRecorder              *recorder,
                               DispatchRequestController *controller,
                               TestEvent                  event,
                               gpointer                   user_data)
{
  gboolean *checked = user_data;
  GCancellable *cancellable = dispatch_request_controller_get_cancellable (controller);

  if (event != TEST_EVENT_ERROR)
    return;

  g_assert_true (g_cancellable_is_cancelled (cancellable));
  g_assert_false (dispatch_request_controller_get_aborted (controller));
  *checked = TRUE;
}

/* ------------------------------------------------------------------------
 * Pausing from the handler, resuming from a timer
 * ------------------------------------------------------------------------ */

typedef struct
{
  guint                      pause_ms;
  /* FALSE: pause inside on_response_start; TRUE: pause from a timer
   * 20 ms after the first chunk, while the body read is waiting */
  gboolean                   external;
  DispatchRequestController *controller;  /* unowned, valid while in flight */
  gboolean                   paused;
  gint64                     pause_time;
  gint64                     resume_time;
  guint                      chunks_while_paused;
  guint                      chunks_after_resume;
  guint                      pause_id;
  guint                      resume_id;
} PauseCtx;

static gboolean
resume_cb (gpointer user_data)
{
  PauseCtx *ctx = user_data;

  ctx->resume_id = 0;
  ctx->paused = FALSE;
  ctx->resume_time = g_get_monotonic_time ();
  dispatch_request_controller_resume (ctx->controller);

  return G_SOURCE_REMOVE;
}

static void
pause_now (PauseCtx *ctx)
{
  ctx->paused = TRUE;
  ctx->pause_time = g_get_monotonic_time ();
  dispatch_request_controller_pause (ctx->controller);
  ctx->resume_id = g_timeout_add (ctx->pause_ms, resume_cb, ctx);
}

static gboolean
pause_cb (gpointer user_data)
{
  PauseCtx *ctx = user_data;

  ctx->pause_id = 0;
  pause_now (ctx);

  return G_SOURCE_REMOVE;
}

static void
pause_hook (TestRecorder              *recorder,
            DispatchRequestController *controller,
            TestEvent                  event,
            gpointer                   user_data)
{
  PauseCtx *ctx = user_data;

  switch ((int) event)
    {
    case TEST_EVENT_RESPONSE_START:
      ctx->controller = controller;
      if (!ctx->external)
        pause_now (ctx);
      break;

    case TEST_EVENT_DATA:
      if (ctx->paused)
        ctx->chunks_while_paused++;
      else if (ctx->resume_time != 0)
        ctx->chunks_after_resume++;
      else if (ctx->external && ctx->pause_id == 0 && ctx->pause_time == 0)
        ctx->pause_id = g_timeout_add (20, pause_cb, ctx);
      break;

    default:
      break;
    }
}

static void
pause_ctx_clear (PauseCtx *ctx)
{
  if (ctx->pause_id != 0)
    g_source_remove (ctx->pause_id);
  ctx->pause_id = 0;
  if (ctx->resume_id != 0)
    g_source_remove (ctx->resume_id);
  ctx->resume_id = 0;
}

/* ------------------------------------------------------------------------
 * Connect timeout
 * ------------------------------------------------------------------------ */

static void
test_connect_timeout (void)
{
  TestBlackhole *hole = test_blackhole_new ();
  g_autoptr(DispatchAgent) agent = new_agent ("connect-timeout", 300, NULL);
  g_autoptr(DispatchRequest) request = NULL;
  g_autoptr(DispatchRequestController) controller = NULL;
  g_autoptr(TestRecorder) recorder = NULL;
  gboolean checked = FALSE;
  gint64 t0;
  gint64 ms;

  g_test_summary ("connect-timeout against a listener whose backlog is full: "
                  "CONNECT_TIMEOUT after about 300 ms, with no response-start; "
                  "the controller is cancelled but not aborted");

  request = new_get (test_blackhole_get_origin (hole), "/");
  recorder = start (agent, request, &controller, &t0);
  recorder->hook = check_cancelled_at_error_hook;
  recorder->hook_data = &checked;
  test_recorder_wait (recorder, TEST_WAIT_MS);

  test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_ERROR, -1);
  assert_timeout_message (recorder->error, DISPATCH_ERROR_CONNECT_TIMEOUT);
  ms = elapsed_ms (recorder, t0);
  g_test_message ("connect timeout after %" G_GINT64_FORMAT " ms", ms);
  g_assert_cmpint (ms, >=, 250);
  g_assert_cmpint (ms, <, 2000);
  g_assert_true (checked);
  assert_timed_out_controller (controller);

  test_blackhole_free (hole);
}

static void
test_connect_timeout_zero (void)
{
  TestBlackhole *hole = test_blackhole_new ();
  g_autoptr(DispatchAgent) agent = new_agent ("connect-timeout", 0, NULL);
  g_autoptr(DispatchRequest) request = NULL;
  g_autoptr(DispatchRequestController) controller = NULL;
  g_autoptr(TestRecorder) recorder = NULL;
  gint64 t0;

  g_test_summary ("connect-timeout 0 disables the connect timer: after 700 ms "
                  "against a black hole nothing has happened; an abort then "
                  "ends the request with ABORTED");

  request = new_get (test_blackhole_get_origin (hole), "/");
  recorder = start (agent, request, &controller, &t0);

  /* still connecting: on_request_start comes when the request is about
   * to be written, so nothing at all has been delivered yet */
  test_iterate_for (700);
  test_recorder_assert_events (recorder, -1);
  g_assert_false (recorder->done);

  dispatch_request_controller_abort (controller, NULL);
  test_recorder_wait (recorder, TEST_WAIT_MS);
  test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_ERROR, -1);
  test_recorder_assert_error (recorder, DISPATCH_ERROR_ABORTED);

  test_blackhole_free (hole);
}

/* ------------------------------------------------------------------------
 * Headers timeout
 * ------------------------------------------------------------------------ */

static void
run_headers_timeout (guint       agent_ms,
                     int         request_ms,
                     const char *path,
                     gboolean    expect_timeout)
{
  g_autoptr(DispatchAgent) agent = new_agent ("headers-timeout", agent_ms, NULL);
  g_autoptr(DispatchRequest) request = new_get (test_server_get_origin (server), path);
  g_autoptr(DispatchRequestController) controller = NULL;
  g_autoptr(TestRecorder) recorder = NULL;
  GCancellable *cancellable;
  gboolean checked = FALSE;
  gint64 t0;
  gint64 ms;

  g_assert_cmpint (dispatch_request_get_headers_timeout (request), ==, -1);
  if (request_ms != -2)
    {
      dispatch_request_set_headers_timeout (request, request_ms);
      g_assert_cmpint (dispatch_request_get_headers_timeout (request), ==, request_ms);
    }

  recorder = start (agent, request, &controller, &t0);
  cancellable = dispatch_request_controller_get_cancellable (controller);
  recorder->hook = check_cancelled_at_error_hook;
  recorder->hook_data = &checked;
  test_recorder_wait (recorder, TEST_WAIT_MS);
  ms = elapsed_ms (recorder, t0);
  g_test_message ("agent %u, request %d, %s: terminal after %" G_GINT64_FORMAT " ms",
                  agent_ms, request_ms, path, ms);

  if (expect_timeout)
    {
      test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_ERROR, -1);
      assert_timeout_message (recorder->error, DISPATCH_ERROR_HEADERS_TIMEOUT);
      g_assert_cmpint (ms, >=, 250);
      g_assert_cmpint (ms, <, 2000);
      g_assert_true (checked);
      assert_timed_out_controller (controller);
    }
  else
    {
      test_recorder_assert_ok (recorder, 200, "slow");
      test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START,
                                   TEST_EVENT_RESPONSE_START, TEST_EVENT_DATA,
                                   TEST_EVENT_END, -1);
      g_assert_false (g_cancellable_is_cancelled (cancellable));
    }
}

static void
test_headers_timeout_agent (void)
{
  g_test_summary ("agent headers-timeout 300 ms, response head after 3 s: "
                  "HEADERS_TIMEOUT after about 300 ms, no response-start; "
                  "cancelled, not aborted");

  /* -2: leave the request at its default (-1) */
  run_headers_timeout (300, -2, "/slow-headers?ms=3000", TRUE);
}

static void
test_headers_timeout_request_override (void)
{
  g_test_summary ("a request headers-timeout beats the agent's: agent 60000, "
                  "request 300 fires after about 300 ms");

  run_headers_timeout (60000, 300, "/slow-headers?ms=3000", TRUE);
}

static void
test_headers_timeout_request_zero (void)
{
  g_test_summary ("request headers-timeout 0 disables the agent's 300 ms: a "
                  "head that comes after 800 ms is a success");

  run_headers_timeout (300, 0, "/slow-headers?ms=800", FALSE);
}

static void
test_headers_timeout_request_inherit (void)
{
  g_test_summary ("request headers-timeout -1 inherits the agent's 300 ms");

  run_headers_timeout (300, -1, "/slow-headers?ms=3000", TRUE);
}

static void
test_headers_timeout_agent_zero (void)
{
  g_test_summary ("agent headers-timeout 0 disables it: a head after 800 ms "
                  "is a success");

  run_headers_timeout (0, -1, "/slow-headers?ms=800", FALSE);
}

/* A request body that a producer hands out slowly: read_async answers
 * every read from a timer in the caller's context, so libsoup's splice
 * (which reads the body with g_input_stream_read_async) takes
 * n_chunks * interval_ms to upload it. No threads, no sleeps. */

#define TEST_TYPE_SLOW_STREAM (test_slow_stream_get_type ())
G_DECLARE_FINAL_TYPE (TestSlowStream, test_slow_stream, TEST, SLOW_STREAM, GInputStream)

struct _TestSlowStream
{
  GInputStream parent_instance;

  guint        chunk_size;
  guint        n_chunks;
  guint        interval_ms;

  guint        produced;  /* reads that returned data */
  guint64      bytes;
  gint64       first_read_time;
  gint64       eof_time;
  gboolean     sync_read;  /* a blocking read happened (unexpected) */
};

G_DEFINE_FINAL_TYPE (TestSlowStream, test_slow_stream, G_TYPE_INPUT_STREAM)

typedef struct
{
  void  *buffer;
  gsize  count;
} SlowRead;

static gssize
slow_stream_produce (TestSlowStream *self,
                     void           *buffer,
                     gsize           count)
{
  guint64 total = (guint64) self->chunk_size * self->n_chunks;
  gsize n;

  if (self->bytes == total)
    {
      if (self->eof_time == 0)
        self->eof_time = g_get_monotonic_time ();
      return 0;
    }

  n = (gsize) MIN ((guint64) MIN (count, self->chunk_size), total - self->bytes);
  for (gsize i = 0; i < n; i++)
    ((guint8 *) buffer)[i] = test_pattern_byte (self->bytes + i);
  self->bytes += n;
  self->produced++;

  return (gssize) n;
}

static gssize
test_slow_stream_read (GInputStream  *stream,
                       void          *buffer,
                       gsize          count,
                       GCancellable  *cancellable,
                       GError       **error)
{
  TestSlowStream *self = TEST_SLOW_STREAM (stream);

  /* libsoup is expected to read asynchronously; if it ever reads
   * synchronously the test says so (and the upload is then fast). */
  self->sync_read = TRUE;
  return slow_stream_produce (self, buffer, count);
}

static gboolean
slow_read_timer_cb (gpointer user_data)
{
  GTask *task = user_data;
  TestSlowStream *self = g_task_get_source_object (task);
  SlowRead *op = g_task_get_task_data (task);

  if (!g_task_return_error_if_cancelled (task))
    g_task_return_int (task, slow_stream_produce (self, op->buffer, op->count));

  return G_SOURCE_REMOVE;
}

static void
test_slow_stream_read_async (GInputStream        *stream,
                             void                *buffer,
                             gsize                count,
                             int                  io_priority,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  TestSlowStream *self = TEST_SLOW_STREAM (stream);
  g_autoptr(GTask) task = g_task_new (stream, cancellable, callback, user_data);
  g_autoptr(GSource) timer = NULL;
  SlowRead *op = g_new0 (SlowRead, 1);

  if (self->first_read_time == 0)
    self->first_read_time = g_get_monotonic_time ();

  op->buffer = buffer;
  op->count = count;
  g_task_set_task_data (task, op, g_free);
  g_task_set_priority (task, io_priority);

  /* EOF comes without a delay once everything was produced. */
  timer = g_timeout_source_new (self->bytes < (guint64) self->chunk_size * self->n_chunks
                                ? self->interval_ms : 0);
  g_source_set_name (timer, "[test] slow request body");
  g_task_attach_source (task, timer, slow_read_timer_cb);
}

static gssize
test_slow_stream_read_finish (GInputStream  *stream,
                              GAsyncResult  *result,
                              GError       **error)
{
  return g_task_propagate_int (G_TASK (result), error);
}

static gboolean
test_slow_stream_close (GInputStream  *stream,
                        GCancellable  *cancellable,
                        GError       **error)
{
  return TRUE;
}

static void
test_slow_stream_class_init (TestSlowStreamClass *klass)
{
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  stream_class->read_fn = test_slow_stream_read;
  stream_class->read_async = test_slow_stream_read_async;
  stream_class->read_finish = test_slow_stream_read_finish;
  stream_class->close_fn = test_slow_stream_close;
}

static void
test_slow_stream_init (TestSlowStream *self)
{
}

static void
test_headers_timeout_after_upload (void)
{
  g_autoptr(DispatchAgent) agent = new_agent ("headers-timeout", 400, NULL);
  g_autoptr(DispatchRequest) request = NULL;
  g_autoptr(TestSlowStream) body = NULL;
  g_autoptr(TestRecorder) recorder = NULL;
  const guint chunk_size = 1024;
  const guint n_chunks = 8;
  g_autofree char *expected_length = NULL;
  gint64 upload_ms;
  gint64 t0;

  g_test_summary ("headers-timeout counts from the end of the upload, not "
                  "from the send (undici #645): a stream body produced over "
                  "~800 ms with headers-timeout 400 ms succeeds");

  body = g_object_new (TEST_TYPE_SLOW_STREAM, NULL);
  body->chunk_size = chunk_size;
  body->n_chunks = n_chunks;
  body->interval_ms = 100;

  request = dispatch_request_new ("POST", test_server_get_origin (server), "/echo");
  dispatch_request_set_body_stream (request, G_INPUT_STREAM (body),
                                    (gint64) chunk_size * n_chunks);

  recorder = start (agent, request, NULL, &t0);
  test_recorder_wait (recorder, TEST_WAIT_MS);

  test_recorder_assert_ok (recorder, 200, NULL);
  g_assert_false (body->sync_read);
  g_assert_cmpuint (body->bytes, ==, (guint64) chunk_size * n_chunks);
  g_assert_cmpuint (body->produced, >=, n_chunks);
  g_assert_cmpint (body->eof_time, !=, 0);

  /* The upload really was slower than the headers timeout. */
  upload_ms = (body->eof_time - body->first_read_time) / 1000;
  g_test_message ("upload took %" G_GINT64_FORMAT " ms", upload_ms);
  g_assert_cmpint (upload_ms, >=, 700);
  g_assert_cmpint (elapsed_ms (recorder, t0), >=, 700);

  expected_length = g_strdup_printf ("%u", chunk_size * n_chunks);
  g_assert_cmpstr (dispatch_headers_get (recorder->headers, "x-request-length"), ==,
                   expected_length);
  g_assert_cmpuint (recorder->body->len, ==, chunk_size * n_chunks);
  for (guint i = 0; i < recorder->body->len; i++)
    if (recorder->body->data[i] != test_pattern_byte (i))
      g_error ("echoed body differs at byte %u", i);
}

static void
test_headers_timeout_starts_after_upload (void)
{
  g_autoptr(DispatchAgent) agent = new_agent ("headers-timeout", 400, NULL);
  g_autoptr(DispatchRequest) request = NULL;
  g_autoptr(TestSlowStream) body = NULL;
  g_autoptr(TestRecorder) recorder = NULL;
  gint64 after_upload_ms;
  gint64 t0;

  g_test_summary ("the headers timer starts once the upload is done: a slow "
                  "(~800 ms) stream body to a route that answers 3 s later, "
                  "with headers-timeout 400 ms, fails HEADERS_TIMEOUT about "
                  "400 ms after the body's end");

  body = g_object_new (TEST_TYPE_SLOW_STREAM, NULL);
  body->chunk_size = 1024;
  body->n_chunks = 8;
  body->interval_ms = 100;

  request = dispatch_request_new ("POST", test_server_get_origin (server), "/slow-headers");
  dispatch_request_set_query (request, "ms=3000");
  dispatch_request_set_body_stream (request, G_INPUT_STREAM (body), -1);

  recorder = start (agent, request, NULL, &t0);
  test_recorder_wait (recorder, TEST_WAIT_MS);

  test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_ERROR, -1);
  assert_timeout_message (recorder->error, DISPATCH_ERROR_HEADERS_TIMEOUT);
  g_assert_false (body->sync_read);
  g_assert_cmpint (body->eof_time, !=, 0);
  g_assert_cmpint ((body->eof_time - body->first_read_time) / 1000, >=, 700);

  after_upload_ms = (recorder->done_time - body->eof_time) / 1000;
  g_test_message ("headers timeout %" G_GINT64_FORMAT " ms after the end of the upload",
                  after_upload_ms);
  g_assert_cmpint (after_upload_ms, >=, 350);
  g_assert_cmpint (after_upload_ms, <, 2000);
}

static void
test_headers_timeout_paused (void)
{
  g_autoptr(DispatchAgent) agent = new_agent ("headers-timeout", 300, NULL);
  g_autoptr(DispatchRequest) request = new_get (test_server_get_origin (server),
                                                "/slow-headers?ms=3000");
  g_autoptr(DispatchRequestController) controller = NULL;
  g_autoptr(TestRecorder) recorder = NULL;
  gint64 t0;

  g_test_summary ("pause applies to the body only: a request paused before "
                  "its head arrives still gets HEADERS_TIMEOUT (undici cannot "
                  "pause while waiting for headers either)");

  recorder = start (agent, request, &controller, &t0);
  dispatch_request_controller_pause (controller);
  test_recorder_wait (recorder, TEST_WAIT_MS);

  test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_ERROR, -1);
  assert_timeout_message (recorder->error, DISPATCH_ERROR_HEADERS_TIMEOUT);
  g_assert_cmpint (elapsed_ms (recorder, t0), <, 2000);
  assert_timed_out_controller (controller);
}

/* ------------------------------------------------------------------------
 * Body timeout
 * ------------------------------------------------------------------------ */

static void
test_body_timeout (void)
{
  g_autoptr(DispatchAgent) agent = new_agent ("body-timeout", 300, NULL);
  g_autoptr(DispatchRequest) request = new_get (test_server_get_origin (server), "/stall");
  g_autoptr(DispatchRequestController) controller = NULL;
  g_autoptr(TestRecorder) recorder = NULL;
  gboolean checked = FALSE;
  gint64 t0;
  gint64 ms;

  g_test_summary ("body-timeout 300 ms on a body that stalls after \"hello\": "
                  "the data, then BODY_TIMEOUT; cancelled, not aborted");

  recorder = start (agent, request, &controller, &t0);
  recorder->hook = check_cancelled_at_error_hook;
  recorder->hook_data = &checked;
  test_recorder_wait (recorder, TEST_WAIT_MS);

  test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_RESPONSE_START,
                               TEST_EVENT_DATA, TEST_EVENT_ERROR, -1);
  assert_timeout_message (recorder->error, DISPATCH_ERROR_BODY_TIMEOUT);
  g_assert_cmpuint (recorder->status, ==, 200);
  g_assert_cmpmem (recorder->body->data, recorder->body->len, "hello", 5);
  ms = elapsed_ms (recorder, t0);
  g_assert_cmpint (ms, >=, 250);
  g_assert_cmpint (ms, <, 2000);
  g_assert_true (checked);
  assert_timed_out_controller (controller);
}

static void
test_body_timeout_request_override (void)
{
  g_autoptr(DispatchAgent) agent = new_agent ("body-timeout", 60000, NULL);
  g_autoptr(DispatchRequest) request = new_get (test_server_get_origin (server), "/stall");
  g_autoptr(TestRecorder) recorder = NULL;
  gint64 t0;

  g_test_summary ("a request body-timeout (300) beats the agent's (60000)");

  dispatch_request_set_body_timeout (request, 300);
  recorder = start (agent, request, NULL, &t0);
  test_recorder_wait (recorder, TEST_WAIT_MS);

  assert_timeout_message (recorder->error, DISPATCH_ERROR_BODY_TIMEOUT);
  g_assert_cmpint (elapsed_ms (recorder, t0), <, 2000);
}

static void
test_body_timeout_zero (void)
{
  g_autoptr(DispatchAgent) agent = new_agent ("body-timeout", 200, NULL);
  g_autoptr(DispatchRequest) request = new_get (test_server_get_origin (server),
                                                "/trickle?ms=400&count=2");
  g_autoptr(TestRecorder) recorder = NULL;

  g_test_summary ("request body-timeout 0 disables the agent's 200 ms: "
                  "chunks 400 ms apart complete");

  dispatch_request_set_body_timeout (request, 0);
  recorder = test_dispatch_and_wait (DISPATCH_DISPATCHER (agent), request);
  test_recorder_assert_ok (recorder, 200, "xx");
}

static void
test_body_timeout_slowloris (void)
{
  g_autoptr(DispatchAgent) agent = new_agent ("body-timeout", 500, NULL);
  g_autoptr(DispatchRequest) request = new_get (test_server_get_origin (server),
                                                "/trickle?ms=200&count=10");
  g_autoptr(TestRecorder) recorder = NULL;
  gint64 t0;

  g_test_summary ("body-timeout is an idle timer: ten chunks 200 ms apart "
                  "(2 s in all) with body-timeout 500 ms complete");

  recorder = start (agent, request, NULL, &t0);
  test_recorder_wait (recorder, TEST_WAIT_MS);

  test_recorder_assert_ok (recorder, 200, "xxxxxxxxxx");
  /* the whole body took four times the body timeout */
  g_assert_cmpint (elapsed_ms (recorder, t0), >=, 1800);
}

static void
run_body_timeout_paused (const char *path,
                         gboolean    external,
                         const char *expected_body,
                         gsize       expected_size)
{
  g_autoptr(DispatchAgent) agent = new_agent ("body-timeout", 300, NULL);
  g_autoptr(DispatchRequest) request = new_get (test_server_get_origin (server), path);
  g_autoptr(TestRecorder) recorder = NULL;
  PauseCtx ctx = { .pause_ms = 1000, .external = external };
  gint64 t0;

  recorder = start (agent, request, NULL, &t0);
  recorder->hook = pause_hook;
  recorder->hook_data = &ctx;
  recorder->discard_body = expected_body == NULL;
  test_recorder_wait (recorder, TEST_WAIT_MS);

  test_recorder_assert_ok (recorder, 200, expected_body);
  g_assert_cmpuint (recorder->body_bytes, ==, expected_size);
  g_assert_cmpint (ctx.pause_time, !=, 0);
  g_assert_cmpint (ctx.resume_time, !=, 0);
  g_assert_cmpint ((ctx.resume_time - ctx.pause_time) / 1000, >=, 900);
  g_assert_cmpint (recorder->done_time, >=, ctx.resume_time);
  g_assert_cmpuint (ctx.chunks_while_paused, ==, 0);
  g_assert_cmpuint (ctx.chunks_after_resume, >, 0);

  pause_ctx_clear (&ctx);
}

static void
test_body_timeout_paused_trickle (void)
{
  g_test_summary ("body-timeout 300 ms does not run while paused: /trickle "
                  "paused for 1 s at response-start, then resumed, completes");

  run_body_timeout_paused ("/trickle?ms=50&count=5", FALSE, "xxxxx", 5);
}

static void
test_body_timeout_paused_pattern (void)
{
  g_test_summary ("body-timeout 300 ms does not run while paused: a 256 KiB "
                  "/pattern paused for 1 s at response-start completes");

  run_body_timeout_paused ("/pattern?size=262144", FALSE, NULL, 262144);
}

static void
test_body_timeout_paused_external (void)
{
  g_test_summary ("body-timeout 300 ms does not run while paused, also when "
                  "the pause comes from outside the handler while the body "
                  "read is waiting: /trickle (a chunk every 100 ms) paused "
                  "from a timer for 1 s completes");

  run_body_timeout_paused ("/trickle?ms=100&count=6", TRUE, "xxxxxx", 6);
}

static void
run_body_timeout_rearmed (gboolean external)
{
  g_autoptr(DispatchAgent) agent = new_agent ("body-timeout", 300, NULL);
  g_autoptr(DispatchRequest) request = new_get (test_server_get_origin (server), "/stall");
  g_autoptr(DispatchRequestController) controller = NULL;
  g_autoptr(TestRecorder) recorder = NULL;
  PauseCtx ctx = { .pause_ms = 600, .external = external };
  gint64 after_resume_ms;
  gint64 t0;

  recorder = start (agent, request, &controller, &t0);
  recorder->hook = pause_hook;
  recorder->hook_data = &ctx;
  test_recorder_wait (recorder, TEST_WAIT_MS);

  test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_RESPONSE_START,
                               TEST_EVENT_DATA, TEST_EVENT_ERROR, -1);
  assert_timeout_message (recorder->error, DISPATCH_ERROR_BODY_TIMEOUT);
  g_assert_cmpmem (recorder->body->data, recorder->body->len, "hello", 5);
  g_assert_cmpint (ctx.pause_time, !=, 0);
  g_assert_cmpint (ctx.resume_time, !=, 0);
  g_assert_cmpuint (ctx.chunks_while_paused, ==, 0);
  if (!external)
    g_assert_cmpuint (ctx.chunks_after_resume, >, 0);

  after_resume_ms = (recorder->done_time - ctx.resume_time) / 1000;
  g_test_message ("body timeout %" G_GINT64_FORMAT " ms after the resume", after_resume_ms);
  g_assert_cmpint (after_resume_ms, >=, 250);
  g_assert_cmpint (after_resume_ms, <, 2000);
  assert_timed_out_controller (controller);

  pause_ctx_clear (&ctx);
}

static void
test_body_timeout_rearmed_after_resume (void)
{
  g_test_summary ("body-timeout is re-armed on resume: /stall paused 600 ms "
                  "at response-start, resumed, gets \"hello\" and then "
                  "BODY_TIMEOUT about 300 ms after the resume");

  run_body_timeout_rearmed (FALSE);
}

static void
test_body_timeout_rearmed_after_external_resume (void)
{
  g_test_summary ("body-timeout while waiting is suspended by a pause from "
                  "outside the handler and re-armed on resume: /stall, "
                  "\"hello\", paused 20 ms later for 600 ms (longer than "
                  "the 300 ms body timeout), BODY_TIMEOUT about 300 ms after "
                  "the resume, never during the pause");

  run_body_timeout_rearmed (TRUE);
}

/* ------------------------------------------------------------------------
 * Whole-request timeout
 * ------------------------------------------------------------------------ */

static void
test_total_timeout (void)
{
  g_autoptr(DispatchAgent) agent = new_agent ("timeout", 500, NULL);
  g_autoptr(DispatchRequest) request = new_get (test_server_get_origin (server),
                                                "/trickle?ms=100&count=50");
  g_autoptr(DispatchRequestController) controller = NULL;
  g_autoptr(TestRecorder) recorder = NULL;
  gboolean checked = FALSE;
  gint64 t0;
  gint64 ms;

  g_test_summary ("timeout 500 ms bounds the whole request: a body that "
                  "trickles a chunk every 100 ms (well within the body "
                  "timeout) for 5 s fails with TIMEOUT after about 500 ms");

  recorder = start (agent, request, &controller, &t0);
  recorder->hook = check_cancelled_at_error_hook;
  recorder->hook_data = &checked;
  test_recorder_wait (recorder, TEST_WAIT_MS);

  test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_RESPONSE_START,
                               TEST_EVENT_DATA, TEST_EVENT_ERROR, -1);
  assert_timeout_message (recorder->error, DISPATCH_ERROR_TIMEOUT);
  g_assert_cmpuint (recorder->body_bytes, >, 0);
  g_assert_cmpuint (recorder->body_bytes, <, 50);
  ms = elapsed_ms (recorder, t0);
  g_test_message ("request timeout after %" G_GINT64_FORMAT " ms, %" G_GUINT64_FORMAT
                  " chunks", ms, recorder->body_bytes);
  g_assert_cmpint (ms, >=, 450);
  g_assert_cmpint (ms, <, 2000);
  g_assert_true (checked);
  assert_timed_out_controller (controller);
}

static void
test_total_timeout_counts_pauses (void)
{
  g_autoptr(DispatchAgent) agent = new_agent ("timeout", 500, NULL);
  g_autoptr(DispatchRequest) request = new_get (test_server_get_origin (server),
                                                "/pattern?size=65536");
  g_autoptr(DispatchRequestController) controller = NULL;
  g_autoptr(TestRecorder) recorder = NULL;
  PauseCtx ctx = { .pause_ms = 1000 };
  gint64 t0;
  gint64 ms;

  g_test_summary ("the whole-request timeout keeps running while paused: "
                  "/pattern paused for 1 s at response-start with timeout "
                  "500 ms fails with TIMEOUT during the pause");

  recorder = start (agent, request, &controller, &t0);
  recorder->hook = pause_hook;
  recorder->hook_data = &ctx;
  test_recorder_wait (recorder, TEST_WAIT_MS);

  test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_RESPONSE_START,
                               TEST_EVENT_ERROR, -1);
  assert_timeout_message (recorder->error, DISPATCH_ERROR_TIMEOUT);
  ms = elapsed_ms (recorder, t0);
  g_assert_cmpint (ms, >=, 450);
  g_assert_cmpint (ms, <, 2000);
  /* it fired during the pause, not after the resume */
  g_assert_cmpint (ctx.resume_time, ==, 0);
  g_assert_true (dispatch_request_controller_get_paused (controller));
  assert_timed_out_controller (controller);

  pause_ctx_clear (&ctx);
}

static void
test_total_timeout_request_override (void)
{
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  g_autoptr(DispatchRequest) request = new_get (test_server_get_origin (server),
                                                "/slow-headers?ms=3000");
  g_autoptr(TestRecorder) recorder = NULL;
  gint64 t0;

  g_test_summary ("a request timeout (400 ms) applies on an agent without one");

  g_assert_cmpuint (dispatch_agent_get_timeout (agent), ==, 0);
  g_assert_cmpint (dispatch_request_get_timeout (request), ==, -1);
  dispatch_request_set_timeout (request, 400);

  recorder = start (agent, request, NULL, &t0);
  test_recorder_wait (recorder, TEST_WAIT_MS);

  test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_ERROR, -1);
  assert_timeout_message (recorder->error, DISPATCH_ERROR_TIMEOUT);
  g_assert_cmpint (elapsed_ms (recorder, t0), >=, 350);
  g_assert_cmpint (elapsed_ms (recorder, t0), <, 2000);
}

static void
test_total_timeout_zero (void)
{
  g_autoptr(DispatchAgent) agent = new_agent ("timeout", 300, NULL);
  g_autoptr(DispatchRequest) request = new_get (test_server_get_origin (server),
                                                "/trickle?ms=100&count=8");
  g_autoptr(TestRecorder) recorder = NULL;

  g_test_summary ("request timeout 0 disables the agent's 300 ms: an 800 ms "
                  "response completes");

  dispatch_request_set_timeout (request, 0);
  recorder = test_dispatch_and_wait (DISPATCH_DISPATCHER (agent), request);
  test_recorder_assert_ok (recorder, 200, "xxxxxxxx");
}

static void
test_timeouts_default_off (void)
{
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  g_autoptr(DispatchRequest) request = new_get (test_server_get_origin (server),
                                                "/trickle?ms=100&count=6");
  g_autoptr(TestRecorder) recorder = NULL;

  g_test_summary ("the agent defaults: no whole-request timeout, long "
                  "connect, headers and body timeouts");

  g_assert_cmpuint (dispatch_agent_get_timeout (agent), ==, 0);
  g_assert_cmpuint (dispatch_agent_get_connect_timeout (agent), ==, 10000);
  g_assert_cmpuint (dispatch_agent_get_headers_timeout (agent), ==, 300000);
  g_assert_cmpuint (dispatch_agent_get_body_timeout (agent), ==, 300000);

  recorder = test_dispatch_and_wait (DISPATCH_DISPATCHER (agent), request);
  test_recorder_assert_ok (recorder, 200, "xxxxxx");
}

int
main (int    argc,
      char **argv)
{
  int ret;

  test_init (&argc, &argv);

  g_test_add_func ("/timeouts/connect/fires", test_connect_timeout);
  g_test_add_func ("/timeouts/connect/zero-disables", test_connect_timeout_zero);
  g_test_add_func ("/timeouts/headers/agent", test_headers_timeout_agent);
  g_test_add_func ("/timeouts/headers/request-override", test_headers_timeout_request_override);
  g_test_add_func ("/timeouts/headers/request-zero-disables", test_headers_timeout_request_zero);
  g_test_add_func ("/timeouts/headers/request-inherits", test_headers_timeout_request_inherit);
  g_test_add_func ("/timeouts/headers/agent-zero-disables", test_headers_timeout_agent_zero);
  g_test_add_func ("/timeouts/headers/not-during-upload", test_headers_timeout_after_upload);
  g_test_add_func ("/timeouts/headers/starts-after-upload",
                   test_headers_timeout_starts_after_upload);
  g_test_add_func ("/timeouts/headers/while-paused", test_headers_timeout_paused);
  g_test_add_func ("/timeouts/body/stall", test_body_timeout);
  g_test_add_func ("/timeouts/body/request-override", test_body_timeout_request_override);
  g_test_add_func ("/timeouts/body/request-zero-disables", test_body_timeout_zero);
  g_test_add_func ("/timeouts/body/slowloris", test_body_timeout_slowloris);
  g_test_add_func ("/timeouts/body/not-while-paused-trickle", test_body_timeout_paused_trickle);
  g_test_add_func ("/timeouts/body/not-while-paused-pattern", test_body_timeout_paused_pattern);
  g_test_add_func ("/timeouts/body/not-while-paused-external", test_body_timeout_paused_external);
  g_test_add_func ("/timeouts/body/rearmed-after-resume", test_body_timeout_rearmed_after_resume);
  g_test_add_func ("/timeouts/body/rearmed-after-external-resume",
                   test_body_timeout_rearmed_after_external_resume);
  g_test_add_func ("/timeouts/total/fires", test_total_timeout);
  g_test_add_func ("/timeouts/total/counts-pauses", test_total_timeout_counts_pauses);
  g_test_add_func ("/timeouts/total/request-override", test_total_timeout_request_override);
  g_test_add_func ("/timeouts/total/request-zero-disables", test_total_timeout_zero);
  g_test_add_func ("/timeouts/defaults", test_timeouts_default_off);

  server = test_server_new ();
  ret = g_test_run ();
  test_server_free (server);

  return ret;
}
