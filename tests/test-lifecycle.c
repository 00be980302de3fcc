/* test-lifecycle.c — close, destroy, object lifetimes and dispatch contexts
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <string.h>

#include "test-util.h"

static TestServer *server;

/* Completion order of requests and close/destroy callbacks. */
static guint sequence;

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
new_get (const char *path_and_query)
{
  const char *origin = test_server_get_origin (server);
  const char *q = strchr (path_and_query, '?');
  g_autofree char *path = NULL;
  DispatchRequest *request;

  if (q == NULL)
    return dispatch_request_new ("GET", origin, path_and_query);

  path = g_strndup (path_and_query, q - path_and_query);
  request = dispatch_request_new ("GET", origin, path);
  dispatch_request_set_query (request, q + 1);

  return request;
}

/* Records the sequence number of the terminal callback in *user_data. */
static void
terminal_seq_hook (TestRecorder              *recorder,
                   DispatchRequestController *controller,
                   TestEvent                  event,
                   gpointer                   user_data)
{
  guint *seq = user_data;

  if (event == TEST_EVENT_END || event == TEST_EVENT_ERROR)
    *seq = ++sequence;
}

static TestRecorder *
dispatch_path (DispatchAgent              *agent,
               const char                 *path,
               DispatchRequestController **controller_out)
{
  g_autoptr(DispatchRequest) request = new_get (path);
  TestRecorder *recorder = test_recorder_new ();
  DispatchRequestController *controller;

  controller = dispatch_dispatcher_dispatch (DISPATCH_DISPATCHER (agent), request,
                                             DISPATCH_HANDLER (recorder));
  g_assert_true (DISPATCH_IS_REQUEST_CONTROLLER (controller));

  if (controller_out != NULL)
    *controller_out = controller;
  else
    g_object_unref (controller);

  return recorder;
}

typedef struct
{
  gboolean  done;
  gboolean  ok;
  GError   *error;
  guint     seq;
} AsyncCtx;

static void
async_ctx_clear (AsyncCtx *ctx)
{
  g_clear_error (&ctx->error);
}

static void
close_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  AsyncCtx *ctx = user_data;

  g_assert_false (ctx->done);
  ctx->ok = dispatch_dispatcher_close_finish (DISPATCH_DISPATCHER (source), result, &ctx->error);
  g_assert_true (ctx->ok == (ctx->error == NULL));
  ctx->seq = ++sequence;
  ctx->done = TRUE;
}

static void
destroy_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  AsyncCtx *ctx = user_data;

  g_assert_false (ctx->done);
  ctx->ok = dispatch_dispatcher_destroy_finish (DISPATCH_DISPATCHER (source), result,
                                                &ctx->error);
  g_assert_true (ctx->ok == (ctx->error == NULL));
  ctx->seq = ++sequence;
  ctx->done = TRUE;
}

static void
close_agent (DispatchAgent *agent,
             AsyncCtx      *ctx)
{
  dispatch_dispatcher_close_async (DISPATCH_DISPATCHER (agent), NULL, close_cb, ctx);
}

static void
destroy_agent (DispatchAgent *agent,
               const GError  *reason,
               AsyncCtx      *ctx)
{
  dispatch_dispatcher_destroy_async (DISPATCH_DISPATCHER (agent), reason, NULL, destroy_cb, ctx);
}

/* Destroys the agent and waits: the end of most tests. */
static void
destroy_and_wait (DispatchAgent *agent)
{
  AsyncCtx ctx = { 0 };

  destroy_agent (agent, NULL, &ctx);
  test_wait_for_flag (&ctx.done, TEST_WAIT_MS);
  g_assert_no_error (ctx.error);
  g_assert_true (ctx.ok);
}

/* Iterates the thread-default context until *pointer is NULL (a weak
 * pointer); fails the test after timeout_ms. */
static void
wait_for_null (gpointer *pointer,
               guint     timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;

  while (*pointer != NULL)
    {
      if (g_get_monotonic_time () > deadline)
        g_error ("wait_for_null: the object was not finalized within %u ms", timeout_ms);
      test_iterate_for (10);
    }
}

/* ------------------------------------------------------------------------
 * Close
 * ------------------------------------------------------------------------ */

static void
test_close_idle (void)
{
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  AsyncCtx ctx = { 0 };

  g_test_summary ("close_async with nothing in flight completes successfully "
                  "(from the main loop, not inside close_async)");

  close_agent (agent, &ctx);
  g_assert_false (ctx.done);
  test_wait_for_flag (&ctx.done, TEST_WAIT_MS);
  g_assert_no_error (ctx.error);
  g_assert_true (ctx.ok);
  g_assert_true (dispatch_agent_get_closed (agent));
  g_assert_false (dispatch_agent_get_destroyed (agent));

  async_ctx_clear (&ctx);
}

static void
test_close_waits_for_in_flight (void)
{
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  g_autoptr(TestRecorder) recorder = NULL;
  AsyncCtx ctx = { 0 };
  guint request_seq = 0;

  g_test_summary ("close_async waits for the in-flight request (/slow-headers "
                  "500 ms), which completes successfully, then completes");

  recorder = dispatch_path (agent, "/slow-headers?ms=500", NULL);
  recorder->hook = terminal_seq_hook;
  recorder->hook_data = &request_seq;

  close_agent (agent, &ctx);
  g_assert_true (dispatch_agent_get_closed (agent));

  /* Still waiting while the request is in flight. */
  test_iterate_for (200);
  g_assert_false (recorder->done);
  g_assert_false (ctx.done);

  test_wait_for_flag (&ctx.done, TEST_WAIT_MS);
  g_assert_no_error (ctx.error);
  g_assert_true (ctx.ok);

  test_recorder_assert_ok (recorder, 200, "slow");
  g_assert_cmpuint (request_seq, !=, 0);
  g_assert_cmpuint (request_seq, <, ctx.seq);

  async_ctx_clear (&ctx);
}

static void
test_close_cancelled (void)
{
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(TestRecorder) recorder = NULL;
  AsyncCtx ctx = { 0 };
  AsyncCtx again = { 0 };

  g_test_summary ("cancelling close_async stops the wait at once with "
                  "G_IO_ERROR_CANCELLED; the agent stays closed and the in-flight "
                  "request still completes");

  recorder = dispatch_path (agent, "/slow-headers?ms=1500", NULL);
  dispatch_dispatcher_close_async (DISPATCH_DISPATCHER (agent), cancellable, close_cb, &ctx);
  test_iterate_for (100);
  g_assert_false (ctx.done);

  g_cancellable_cancel (cancellable);
  test_wait_for_flag (&ctx.done, 1000);
  g_assert_error (ctx.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_false (recorder->done);
  g_assert_true (dispatch_agent_get_closed (agent));

  /* closing again still waits for the request, then succeeds */
  close_agent (agent, &again);
  test_wait_for_flag (&again.done, TEST_WAIT_MS);
  g_assert_no_error (again.error);
  test_recorder_assert_ok (recorder, 200, "slow");

  async_ctx_clear (&ctx);
  async_ctx_clear (&again);
}

static void
test_close_dispatch_after (void)
{
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  g_autoptr(TestRecorder) recorder = NULL;
  AsyncCtx ctx = { 0 };
  guint requests_before;

  g_test_summary ("dispatch after close: on_request_start, then "
                  "on_response_error CLOSED; nothing is sent");

  close_agent (agent, &ctx);
  test_wait_for_flag (&ctx.done, TEST_WAIT_MS);
  g_assert_true (ctx.ok);

  requests_before = test_server_get_requests (server);
  recorder = dispatch_path (agent, "/hello", NULL);
  g_assert_cmpuint (recorder->events->len, ==, 0);  /* not re-entrant */
  test_recorder_wait (recorder, TEST_WAIT_MS);

  test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_ERROR, -1);
  test_recorder_assert_error (recorder, DISPATCH_ERROR_CLOSED);

  test_iterate_for (100);
  g_assert_cmpuint (test_server_get_requests (server), ==, requests_before);

  async_ctx_clear (&ctx);
}

static void
test_close_idempotent (void)
{
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  g_autoptr(TestRecorder) recorder = NULL;
  AsyncCtx first = { 0 };
  AsyncCtx second = { 0 };
  AsyncCtx third = { 0 };
  guint request_seq = 0;

  g_test_summary ("close is idempotent and joinable: two close_async calls "
                  "both complete, after the in-flight request ended; a close "
                  "after that completes too");

  recorder = dispatch_path (agent, "/slow-headers?ms=500", NULL);
  recorder->hook = terminal_seq_hook;
  recorder->hook_data = &request_seq;

  close_agent (agent, &first);
  close_agent (agent, &second);

  test_wait_for_flag (&first.done, TEST_WAIT_MS);
  test_wait_for_flag (&second.done, TEST_WAIT_MS);
  g_assert_no_error (first.error);
  g_assert_no_error (second.error);
  test_recorder_assert_ok (recorder, 200, "slow");
  g_assert_cmpuint (request_seq, !=, 0);
  g_assert_cmpuint (request_seq, <, first.seq);
  g_assert_cmpuint (request_seq, <, second.seq);

  close_agent (agent, &third);
  test_wait_for_flag (&third.done, TEST_WAIT_MS);
  g_assert_no_error (third.error);
  g_assert_true (third.ok);

  async_ctx_clear (&first);
  async_ctx_clear (&second);
  async_ctx_clear (&third);
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
test_close_property (void)
{
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  AsyncCtx first = { 0 };
  AsyncCtx second = { 0 };
  guint closed_notifies = 0;
  guint destroyed_notifies = 0;
  gboolean closed = FALSE;
  gboolean destroyed = TRUE;

  g_test_summary ("the closed property: FALSE, TRUE after close_async with "
                  "one notify::closed; a second close does not notify again");

  g_signal_connect (agent, "notify::closed", G_CALLBACK (count_notify_cb), &closed_notifies);
  g_signal_connect (agent, "notify::destroyed", G_CALLBACK (count_notify_cb),
                    &destroyed_notifies);

  g_object_get (agent, "closed", &closed, "destroyed", &destroyed, NULL);
  g_assert_false (closed);
  g_assert_false (destroyed);
  g_assert_false (dispatch_agent_get_closed (agent));

  close_agent (agent, &first);
  test_wait_for_flag (&first.done, TEST_WAIT_MS);
  g_assert_cmpuint (closed_notifies, ==, 1);
  g_object_get (agent, "closed", &closed, "destroyed", &destroyed, NULL);
  g_assert_true (closed);
  g_assert_false (destroyed);
  g_assert_true (dispatch_agent_get_closed (agent));

  close_agent (agent, &second);
  test_wait_for_flag (&second.done, TEST_WAIT_MS);
  g_assert_cmpuint (closed_notifies, ==, 1);
  g_assert_cmpuint (destroyed_notifies, ==, 0);

  async_ctx_clear (&first);
  async_ctx_clear (&second);
}

static void
test_close_timeouts_still_apply (void)
{
  g_autoptr(DispatchAgent) agent = new_agent ("headers-timeout", 300, NULL);
  g_autoptr(TestRecorder) recorder = NULL;
  AsyncCtx ctx = { 0 };
  guint request_seq = 0;

  g_test_summary ("close does not cancel timers: an in-flight request still "
                  "gets HEADERS_TIMEOUT, then close completes");

  recorder = dispatch_path (agent, "/slow-headers?ms=5000", NULL);
  recorder->hook = terminal_seq_hook;
  recorder->hook_data = &request_seq;
  close_agent (agent, &ctx);

  test_wait_for_flag (&ctx.done, TEST_WAIT_MS);
  g_assert_no_error (ctx.error);
  test_recorder_assert_error (recorder, DISPATCH_ERROR_HEADERS_TIMEOUT);
  g_assert_cmpuint (request_seq, <, ctx.seq);

  async_ctx_clear (&ctx);
}

/* ------------------------------------------------------------------------
 * Destroy
 * ------------------------------------------------------------------------ */

#define N_MANY 50

typedef struct
{
  gboolean destroy_returned;
  guint    n_response_start;
  gboolean enough_started;
  guint    n_terminal;
} ManyCtx;

static void
many_hook (TestRecorder              *recorder,
           DispatchRequestController *controller,
           TestEvent                  event,
           gpointer                   user_data)
{
  ManyCtx *ctx = user_data;

  if (event == TEST_EVENT_RESPONSE_START)
    {
      ctx->n_response_start++;
      if (ctx->n_response_start >= 3)
        ctx->enough_started = TRUE;
    }

  if (event == TEST_EVENT_END || event == TEST_EVENT_ERROR)
    {
      g_autofree char *events = test_recorder_describe (recorder);

      /* Nothing ends before destroy (none of these routes finishes on its
       * own in time), and destroy delivers nothing inside the call. */
      if (!ctx->destroy_returned)
        g_error ("a request ended before destroy_async returned: %s", events);
      ctx->n_terminal++;
    }
}

static void
many_destroy_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  AsyncCtx *async = user_data;
  ManyCtx *ctx = g_object_get_data (source, "test-many-ctx");

  /* destroy completes only after every request was torn down */
  g_assert_cmpuint (ctx->n_terminal, ==, N_MANY);
  destroy_cb (source, result, user_data);
  g_assert_no_error (async->error);
}

static void
test_destroy_many (void)
{
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  g_autoptr(GPtrArray) recorders = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GPtrArray) controllers = g_ptr_array_new_with_free_func (g_object_unref);
  ManyCtx ctx = { 0 };
  AsyncCtx async = { 0 };
  guint n_destroyed = 0;

  g_test_summary ("destroy_async with 50 requests in flight (stalled bodies, "
                  "slow heads, paused bodies, some still queued for a "
                  "connection): exactly 50 DESTROYED errors, none before "
                  "destroy_async returned, and destroy completes after all");

  g_object_set_data (G_OBJECT (agent), "test-many-ctx", &ctx);

  for (guint i = 0; i < N_MANY; i++)
    {
      static const char * const paths[] = {
        "/stall", "/slow-headers?ms=5000", "/pattern?size=1048576",
      };
      DispatchRequestController *controller = NULL;
      TestRecorder *recorder;

      recorder = dispatch_path (agent, paths[i % 3], &controller);
      recorder->hook = many_hook;
      recorder->hook_data = &ctx;
      recorder->discard_body = TRUE;
      if (i % 3 == 2)
        dispatch_request_controller_pause (controller);

      g_ptr_array_add (recorders, recorder);
      g_ptr_array_add (controllers, controller);
    }

  /* Let some of them get going: a few response heads in. */
  test_wait_for_flag (&ctx.enough_started, TEST_WAIT_MS);
  g_assert_cmpuint (ctx.n_terminal, ==, 0);

  dispatch_dispatcher_destroy_async (DISPATCH_DISPATCHER (agent), NULL, NULL,
                                     many_destroy_cb, &async);
  ctx.destroy_returned = TRUE;
  g_assert_cmpuint (ctx.n_terminal, ==, 0);
  g_assert_true (dispatch_agent_get_destroyed (agent));
  g_assert_true (dispatch_agent_get_closed (agent));

  test_wait_for_flag (&async.done, TEST_WAIT_MS);
  g_assert_true (async.ok);
  g_assert_cmpuint (ctx.n_terminal, ==, N_MANY);

  for (guint i = 0; i < N_MANY; i++)
    {
      TestRecorder *recorder = g_ptr_array_index (recorders, i);
      DispatchRequestController *controller = g_ptr_array_index (controllers, i);
      GCancellable *cancellable = dispatch_request_controller_get_cancellable (controller);

      test_recorder_assert_error (recorder, DISPATCH_ERROR_DESTROYED);
      g_assert_true (dispatch_request_controller_get_finished (controller));
      g_assert_true (g_cancellable_is_cancelled (cancellable));
      n_destroyed++;
    }
  g_assert_cmpuint (n_destroyed, ==, N_MANY);
  g_test_message ("%u of %u had a response head when destroyed",
                  ctx.n_response_start, N_MANY);

  /* Nothing more arrives (the recorders fail on a late callback). */
  test_iterate_for (200);
  g_assert_cmpuint (ctx.n_terminal, ==, N_MANY);

  g_object_set_data (G_OBJECT (agent), "test-many-ctx", NULL);
  async_ctx_clear (&async);
}

static void
test_destroy_custom_reason (void)
{
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  g_autoptr(GError) reason = NULL;
  g_autoptr(GPtrArray) recorders = g_ptr_array_new_with_free_func (g_object_unref);
  static const char * const paths[] = {
    "/stall", "/slow-headers?ms=5000", "/pattern?size=1048576", "/trickle?ms=100&count=50",
  };
  AsyncCtx async = { 0 };

  g_test_summary ("destroy with a custom reason: every in-flight request fails "
                  "with exactly that error, both for requests that are "
                  "running and for requests not started yet");

  reason = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                                "shutting down for maintenance");

  /* Running requests; requests not started yet are below, on a second
   * agent (destroy is final). */
  for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      DispatchRequestController *controller = NULL;
      TestRecorder *recorder = dispatch_path (agent, paths[i], &controller);

      recorder->discard_body = TRUE;
      if (i == 2)
        dispatch_request_controller_pause (controller);
      g_object_unref (controller);
      g_ptr_array_add (recorders, recorder);
    }

  /* Running: wait until the stalled one has its head. */
  {
    TestRecorder *stall = g_ptr_array_index (recorders, 0);
    gint64 deadline = g_get_monotonic_time () + (gint64) TEST_WAIT_MS * 1000;

    while (stall->events->len < 2 && g_get_monotonic_time () < deadline)
      test_iterate_for (10);
    g_assert_cmpuint (stall->events->len, >=, 2);
  }

  destroy_agent (agent, reason, &async);
  test_wait_for_flag (&async.done, TEST_WAIT_MS);
  g_assert_no_error (async.error);

  for (guint i = 0; i < recorders->len; i++)
    {
      TestRecorder *recorder = g_ptr_array_index (recorders, i);

      g_assert_true (recorder->done);
      g_assert_error (recorder->error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
      g_assert_cmpstr (recorder->error->message, ==, "shutting down for maintenance");
    }

  /* Not started yet: destroyed right after dispatch. */
  {
    g_autoptr(DispatchAgent) agent2 = new_agent (NULL, NULL);
    g_autoptr(TestRecorder) early = dispatch_path (agent2, "/hello", NULL);
    AsyncCtx async2 = { 0 };

    destroy_agent (agent2, reason, &async2);
    test_wait_for_flag (&async2.done, TEST_WAIT_MS);
    g_assert_no_error (async2.error);
    test_recorder_wait (early, TEST_WAIT_MS);
    test_recorder_assert_events (early, TEST_EVENT_REQUEST_START, TEST_EVENT_ERROR, -1);
    g_assert_error (early->error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
    g_assert_cmpstr (early->error->message, ==, "shutting down for maintenance");
    async_ctx_clear (&async2);
  }

  async_ctx_clear (&async);
}

static void
test_destroy_idempotent (void)
{
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  g_autoptr(TestRecorder) recorder = NULL;
  g_autoptr(GError) reason_a = NULL;
  g_autoptr(GError) reason_b = NULL;
  AsyncCtx first = { 0 };
  AsyncCtx second = { 0 };
  AsyncCtx third = { 0 };
  guint request_seq = 0;
  guint destroyed_notifies = 0;
  guint closed_notifies = 0;

  g_test_summary ("destroy is idempotent and joinable: two destroy_async "
                  "calls both complete after the request failed with the "
                  "first reason; notify::destroyed once; a later destroy "
                  "completes at once");

  g_signal_connect (agent, "notify::destroyed", G_CALLBACK (count_notify_cb),
                    &destroyed_notifies);
  g_signal_connect (agent, "notify::closed", G_CALLBACK (count_notify_cb), &closed_notifies);

  reason_a = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED, "reason a");
  reason_b = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED, "reason b");

  recorder = dispatch_path (agent, "/slow-headers?ms=5000", NULL);
  recorder->hook = terminal_seq_hook;
  recorder->hook_data = &request_seq;
  test_iterate_for (50);

  destroy_agent (agent, reason_a, &first);
  destroy_agent (agent, reason_b, &second);
  g_assert_false (recorder->done);

  test_wait_for_flag (&first.done, TEST_WAIT_MS);
  test_wait_for_flag (&second.done, TEST_WAIT_MS);
  g_assert_no_error (first.error);
  g_assert_no_error (second.error);

  g_assert_true (recorder->done);
  g_assert_error (recorder->error, G_IO_ERROR, G_IO_ERROR_FAILED);
  g_assert_cmpstr (recorder->error->message, ==, "reason a");
  g_assert_cmpuint (request_seq, <, first.seq);
  g_assert_cmpuint (request_seq, <, second.seq);

  g_assert_cmpuint (destroyed_notifies, ==, 1);
  g_assert_cmpuint (closed_notifies, ==, 1);
  g_assert_true (dispatch_agent_get_destroyed (agent));

  destroy_agent (agent, NULL, &third);
  test_wait_for_flag (&third.done, TEST_WAIT_MS);
  g_assert_no_error (third.error);
  g_assert_cmpuint (destroyed_notifies, ==, 1);

  async_ctx_clear (&first);
  async_ctx_clear (&second);
  async_ctx_clear (&third);
}

static void
test_destroy_idle (void)
{
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  AsyncCtx ctx = { 0 };
  gboolean destroyed = FALSE;

  g_test_summary ("destroy_async with nothing in flight completes; destroyed "
                  "and closed are TRUE");

  destroy_agent (agent, NULL, &ctx);
  g_assert_false (ctx.done);
  test_wait_for_flag (&ctx.done, TEST_WAIT_MS);
  g_assert_no_error (ctx.error);
  g_assert_true (ctx.ok);

  g_object_get (agent, "destroyed", &destroyed, NULL);
  g_assert_true (destroyed);
  g_assert_true (dispatch_agent_get_closed (agent));

  async_ctx_clear (&ctx);
}

static void
test_destroy_then_close (void)
{
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  g_autoptr(TestRecorder) recorder = NULL;
  AsyncCtx destroy = { 0 };
  AsyncCtx close_pending = { 0 };
  AsyncCtx close_after = { 0 };

  g_test_summary ("close after destroy fails with DESTROYED, whether the "
                  "destroy is still pending or completed");

  recorder = dispatch_path (agent, "/slow-headers?ms=5000", NULL);
  test_iterate_for (50);

  destroy_agent (agent, NULL, &destroy);
  close_agent (agent, &close_pending);

  test_wait_for_flag (&destroy.done, TEST_WAIT_MS);
  test_wait_for_flag (&close_pending.done, TEST_WAIT_MS);
  g_assert_no_error (destroy.error);
  g_assert_error (close_pending.error, DISPATCH_ERROR, DISPATCH_ERROR_DESTROYED);
  g_assert_false (close_pending.ok);
  test_recorder_assert_error (recorder, DISPATCH_ERROR_DESTROYED);

  close_agent (agent, &close_after);
  test_wait_for_flag (&close_after.done, TEST_WAIT_MS);
  g_assert_error (close_after.error, DISPATCH_ERROR, DISPATCH_ERROR_DESTROYED);
  g_assert_false (close_after.ok);

  async_ctx_clear (&destroy);
  async_ctx_clear (&close_pending);
  async_ctx_clear (&close_after);
}

static void
test_destroy_dispatch_after (void)
{
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  g_autoptr(TestRecorder) recorder = NULL;
  guint requests_before;

  g_test_summary ("dispatch after destroy: on_request_start, then "
                  "on_response_error DESTROYED; nothing is sent");

  destroy_and_wait (agent);

  requests_before = test_server_get_requests (server);
  recorder = dispatch_path (agent, "/hello", NULL);
  g_assert_cmpuint (recorder->events->len, ==, 0);
  test_recorder_wait (recorder, TEST_WAIT_MS);

  test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_ERROR, -1);
  test_recorder_assert_error (recorder, DISPATCH_ERROR_DESTROYED);

  test_iterate_for (100);
  g_assert_cmpuint (test_server_get_requests (server), ==, requests_before);
}

static void
test_destroy_while_close_pending (void)
{
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  g_autoptr(TestRecorder) recorder = NULL;
  AsyncCtx close = { 0 };
  AsyncCtx destroy = { 0 };
  guint request_seq = 0;

  g_test_summary ("destroy while a close waits for an in-flight request: the "
                  "request fails DESTROYED and both the close and the destroy "
                  "complete successfully (undici: destroy resolves a pending "
                  "close)");

  recorder = dispatch_path (agent, "/slow-headers?ms=5000", NULL);
  recorder->hook = terminal_seq_hook;
  recorder->hook_data = &request_seq;

  close_agent (agent, &close);
  test_iterate_for (100);
  g_assert_false (close.done);

  destroy_agent (agent, NULL, &destroy);
  test_wait_for_flag (&destroy.done, TEST_WAIT_MS);
  test_wait_for_flag (&close.done, TEST_WAIT_MS);

  test_recorder_assert_error (recorder, DISPATCH_ERROR_DESTROYED);
  g_assert_no_error (destroy.error);
  g_assert_no_error (close.error);
  g_assert_true (close.ok);
  g_assert_cmpuint (request_seq, <, close.seq);
  g_assert_cmpuint (request_seq, <, destroy.seq);

  async_ctx_clear (&close);
  async_ctx_clear (&destroy);
}

static void
test_destroy_cancels_timers (void)
{
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  g_autoptr(DispatchRequest) request = new_get ("/slow-headers?ms=5000");
  g_autoptr(TestRecorder) recorder = test_recorder_new ();
  g_autoptr(DispatchRequestController) controller = NULL;
  AsyncCtx ctx = { 0 };
  guint n_events;

  g_test_summary ("destroy cancels the request's timers: headers-timeout "
                  "200 ms, destroyed at 50 ms, gets DESTROYED and never "
                  "HEADERS_TIMEOUT; nothing more arrives in the next 400 ms");

  dispatch_request_set_headers_timeout (request, 200);
  controller = dispatch_dispatcher_dispatch (DISPATCH_DISPATCHER (agent), request,
                                             DISPATCH_HANDLER (recorder));
  test_iterate_for (50);
  g_assert_false (recorder->done);

  destroy_agent (agent, NULL, &ctx);
  test_recorder_wait (recorder, TEST_WAIT_MS);
  test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_ERROR, -1);
  test_recorder_assert_error (recorder, DISPATCH_ERROR_DESTROYED);

  n_events = recorder->events->len;
  test_iterate_for (400);
  g_assert_cmpuint (recorder->events->len, ==, n_events);
  test_recorder_assert_error (recorder, DISPATCH_ERROR_DESTROYED);
  g_assert_true (ctx.done);
  g_assert_no_error (ctx.error);

  async_ctx_clear (&ctx);
}

/* ------------------------------------------------------------------------
 * Object lifetimes
 * ------------------------------------------------------------------------ */

static void
test_agent_kept_alive_by_request (void)
{
  DispatchAgent *agent = new_agent (NULL, NULL);
  gpointer weak_agent = agent;
  g_autoptr(TestRecorder) recorder = NULL;

  g_test_summary ("dropping the last reference to the agent while a request "
                  "is in flight: the request still completes, then the agent "
                  "is finalized");

  g_object_add_weak_pointer (G_OBJECT (agent), &weak_agent);

  recorder = dispatch_path (agent, "/slow-headers?ms=300", NULL);
  g_object_unref (agent);
  agent = NULL;
  g_assert_nonnull (weak_agent);

  test_recorder_wait (recorder, TEST_WAIT_MS);
  test_recorder_assert_ok (recorder, 200, "slow");

  wait_for_null (&weak_agent, TEST_WAIT_MS);
  g_assert_null (weak_agent);
}

static void
test_controller_finalized (void)
{
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  DispatchRequestController *controller = NULL;
  gpointer weak_controller;
  TestRecorder *recorder;

  g_test_summary ("the controller lives while the caller holds it and is "
                  "finalized once the request completed and the caller (and "
                  "the handler) dropped it; dropping it right after dispatch "
                  "does not stop the request");

  recorder = dispatch_path (agent, "/hello", &controller);
  weak_controller = controller;
  g_object_add_weak_pointer (G_OBJECT (controller), &weak_controller);

  test_recorder_wait (recorder, TEST_WAIT_MS);
  test_recorder_assert_ok (recorder, 200, "Hello, World!");

  /* the recorder keeps a reference of its own: drop it first */
  g_object_unref (recorder);
  test_iterate_for (50);
  g_assert_nonnull (weak_controller);
  g_assert_true (dispatch_request_controller_get_finished (controller));

  g_object_unref (controller);
  wait_for_null (&weak_controller, TEST_WAIT_MS);

  /* Dropped right after dispatch: the library keeps what it needs. */
  recorder = dispatch_path (agent, "/slow-headers?ms=100", &controller);
  weak_controller = controller;
  g_object_add_weak_pointer (G_OBJECT (controller), &weak_controller);
  g_object_unref (controller);

  test_recorder_wait (recorder, TEST_WAIT_MS);
  test_recorder_assert_ok (recorder, 200, "slow");
  g_object_unref (recorder);
  wait_for_null (&weak_controller, TEST_WAIT_MS);

  destroy_and_wait (agent);
}

/* ------------------------------------------------------------------------
 * Dispatch contexts
 * ------------------------------------------------------------------------ */

typedef struct
{
  DispatchAgent *agent;
  GThread       *main_thread;
  GMainContext  *context;   /* the worker's */
  guint          n_callbacks;

  GMutex         mutex;
  GCond          cond;
  gboolean       finished;
} WorkerData;

static void
worker_hook (TestRecorder              *recorder,
             DispatchRequestController *controller,
             TestEvent                  event,
             gpointer                   user_data)
{
  WorkerData *data = user_data;

  g_assert_true (g_thread_self () != data->main_thread);
  g_assert_true (g_main_context_get_thread_default () == data->context);
  g_assert_true (g_main_context_is_owner (data->context));
  data->n_callbacks++;
}

static gpointer
worker_func (gpointer user_data)
{
  WorkerData *data = user_data;
  static const char * const paths[] = {
    "/hello", "/pattern?size=300000", "/trickle?ms=20&count=3",
  };

  data->context = g_main_context_new ();
  g_main_context_push_thread_default (data->context);

  for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      g_autoptr(DispatchRequestController) controller = NULL;
      g_autoptr(TestRecorder) recorder = NULL;

      recorder = dispatch_path (data->agent, paths[i], &controller);
      recorder->hook = worker_hook;
      recorder->hook_data = data;
      recorder->discard_body = TRUE;
      g_assert_true (dispatch_request_controller_get_context (controller) == data->context);

      test_recorder_wait (recorder, TEST_WAIT_MS);
      test_recorder_assert_ok (recorder, 200, NULL);
    }

  g_main_context_pop_thread_default (data->context);
  g_main_context_unref (data->context);
  data->context = NULL;

  g_mutex_lock (&data->mutex);
  data->finished = TRUE;
  g_cond_signal (&data->cond);
  g_mutex_unlock (&data->mutex);

  return NULL;
}

static void
test_worker_thread_context (void)
{
  g_autoptr(DispatchAgent) agent = new_agent (NULL, NULL);
  WorkerData data = { 0 };
  GThread *thread;
  gint64 deadline;

  g_test_summary ("dispatch from a worker thread with its own thread-default "
                  "GMainContext: every callback arrives on that thread, in "
                  "that context, while the main thread does not iterate its "
                  "own context");

  data.agent = agent;
  data.main_thread = g_thread_self ();
  g_mutex_init (&data.mutex);
  g_cond_init (&data.cond);

  thread = g_thread_new ("test-dispatch-worker", worker_func, &data);

  /* Bounded wait without iterating the main context. */
  deadline = g_get_monotonic_time () + (gint64) TEST_WAIT_MS * 3 * 1000;
  g_mutex_lock (&data.mutex);
  while (!data.finished)
    if (!g_cond_wait_until (&data.cond, &data.mutex, deadline))
      break;
  g_mutex_unlock (&data.mutex);
  if (!data.finished)
    g_error ("the worker thread did not finish in time");

  g_thread_join (thread);
  g_assert_cmpuint (data.n_callbacks, >=, 3 * 4);

  destroy_and_wait (agent);
  g_mutex_clear (&data.mutex);
  g_cond_clear (&data.cond);
}

int
main (int    argc,
      char **argv)
{
  int ret;

  test_init (&argc, &argv);

  g_test_add_func ("/lifecycle/close/idle", test_close_idle);
  g_test_add_func ("/lifecycle/close/waits-for-in-flight", test_close_waits_for_in_flight);
  g_test_add_func ("/lifecycle/close/cancelled", test_close_cancelled);
  g_test_add_func ("/lifecycle/close/dispatch-after-close", test_close_dispatch_after);
  g_test_add_func ("/lifecycle/close/idempotent-joinable", test_close_idempotent);
  g_test_add_func ("/lifecycle/close/closed-property", test_close_property);
  g_test_add_func ("/lifecycle/close/timeouts-still-apply", test_close_timeouts_still_apply);
  g_test_add_func ("/lifecycle/destroy/idle", test_destroy_idle);
  g_test_add_func ("/lifecycle/destroy/many-in-flight", test_destroy_many);
  g_test_add_func ("/lifecycle/destroy/custom-reason", test_destroy_custom_reason);
  g_test_add_func ("/lifecycle/destroy/idempotent-joinable", test_destroy_idempotent);
  g_test_add_func ("/lifecycle/destroy/close-after-destroy", test_destroy_then_close);
  g_test_add_func ("/lifecycle/destroy/dispatch-after-destroy", test_destroy_dispatch_after);
  g_test_add_func ("/lifecycle/destroy/while-close-pending", test_destroy_while_close_pending);
  g_test_add_func ("/lifecycle/destroy/cancels-timers", test_destroy_cancels_timers);
  g_test_add_func ("/lifecycle/refs/agent-kept-alive-by-request", test_agent_kept_alive_by_request);
  g_test_add_func ("/lifecycle/refs/controller-finalized", test_controller_finalized);
  g_test_add_func ("/lifecycle/threads/worker-context", test_worker_thread_context);

  server = test_server_new ();
  ret = g_test_run ();
  test_server_free (server);

  return ret;
}
