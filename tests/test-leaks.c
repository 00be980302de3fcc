/* test-leaks.c — the leak budget: aborted and completed requests leave
 * no file descriptors and no memory behind
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * 10 000 requests aborted in every phase (before start, in
 * on_request_start, while connecting, while waiting for the response head,
 * mid-body, while paused) and 10 000 completed ones, on one agent. Measured
 * after the agent is closed, destroyed and unreferenced and the loop
 * iterated: the fd count must be back to the baseline taken after a
 * warm-up round, and RSS must have grown by less than 1 MiB.
 *
 * The servers run in a child process (this binary run with --serve, see
 * TestServerProcess in test-util.h): the figures are the client's alone.
 * In-process they would not be: libsoup 3.2's SoupServer leaks a GSocket
 * per accepted connection (fixed in libsoup 3.4, commit b545d5f0
 * "soup-listener: Plug a leak") and TestServer keeps connections whose
 * response is paused in CLOSE_WAIT until it is freed.
 *
 * The binary is in the `slow` suite. Under a sanitizer the counts are cut
 * to a tenth, under valgrind to a twentieth, and RSS is reported, not
 * checked; DISPATCH_LEAKS_REQUESTS=N (aborted and completed each)
 * overrides the count.
 */

#include "test-util.h"

#define LEAK_REQUESTS        10000   /* aborted, and as many completed */
#define WARMUP_REQUESTS      1000
#define MAX_IN_FLIGHT        8   /* = connections: nothing waits in libsoup's queue,
                                     * so each abort hits the phase it aims at */
#define RSS_BUDGET           (1024 * 1024)
#define ROUND_DEADLINE_USEC  (60 * G_USEC_PER_SEC)
#define FD_SETTLE_MS         5000

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

static gboolean
wake_cb (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------------------
 * Requests
 * ------------------------------------------------------------------------ */

typedef enum {
  PHASE_COMPLETE,
  PHASE_BEFORE_START,      /* abort() right after dispatch() */
  PHASE_IN_REQUEST_START,  /* abort() in on_request_start */
  PHASE_CONNECTING,        /* TestBlackhole: connect() hangs */
  PHASE_WAITING_HEADERS,   /* /slow-headers?ms=60000 */
  PHASE_MID_BODY,          /* in on_response_data */
  PHASE_PAUSED,            /* paused in on_response_start, aborted later */
  N_PHASES
} Phase;

static const char * const phase_names[N_PHASES] = {
  [PHASE_COMPLETE] = "completed",
  [PHASE_BEFORE_START] = "aborted before start",
  [PHASE_IN_REQUEST_START] = "aborted in on_request_start",
  [PHASE_CONNECTING] = "aborted while connecting",
  [PHASE_WAITING_HEADERS] = "aborted waiting for the head",
  [PHASE_MID_BODY] = "aborted mid-body",
  [PHASE_PAUSED] = "aborted while paused",
};

typedef struct _Round Round;

typedef struct
{
  Round                     *round;
  guint                      index;
  Phase                      phase;
  const char                *path_kind;  /* for messages */
  guint                      status;     /* expected, PHASE_COMPLETE */
  guint64                    size;       /* expected body bytes */
  DispatchRequestController *controller;
  GSource                   *timer;
  gboolean                   paused;     /* by us, in the dispatch context */

  guint                      n_request_start;
  guint                      n_response_start;
  guint                      n_terminal;
  guint                      got_status;
  guint64                    received;
  gint64                     dispatch_time;
} LeakReq;

struct _Round
{
  DispatchDispatcher *agent;
  TestServerProcess  *servers;
  GRand              *rand;
  GThread            *thread;

  guint               n_aborted;     /* to dispatch */
  guint               n_completed;
  guint               dispatched;
  guint               done;
  guint               in_flight;
  guint               per_phase[N_PHASES];
  gint64              total_usec[N_PHASES];  /* dispatch → terminal */
  gint64              max_usec[N_PHASES];

  /* aborts from another thread (half of the paused ones) */
  GAsyncQueue        *abort_queue;   /* DispatchRequestController */
  GThread            *aborter;
  int                 stop;          /* atomic */
};

static void
leak_req_free (LeakReq *req)
{
  if (req->timer != NULL)
    {
      g_source_destroy (req->timer);
      g_source_unref (req->timer);
    }
  g_clear_object (&req->controller);
  g_free (req);
}

static char *
leak_req_describe (LeakReq *req)
{
  return g_strdup_printf ("request %u (%s, %s): request-start %u, response-start %u "
                          "(status %u), %" G_GUINT64_FORMAT " bytes, terminal %u",
                          req->index, phase_names[req->phase], req->path_kind,
                          req->n_request_start, req->n_response_start, req->got_status,
                          req->received, req->n_terminal);
}

#define LEAK_TYPE_HANDLER (leak_handler_get_type ())
G_DECLARE_FINAL_TYPE (LeakHandler, leak_handler, LEAK, HANDLER, GObject)

struct _LeakHandler
{
  GObject  parent_instance;
  LeakReq *req;  /* owned */
};

static void leak_handler_iface_init (DispatchHandlerInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (LeakHandler, leak_handler, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (DISPATCH_TYPE_HANDLER,
                                                      leak_handler_iface_init))

static void
leak_handler_finalize (GObject *object)
{
  LeakHandler *self = LEAK_HANDLER (object);

  g_clear_pointer (&self->req, leak_req_free);

  G_OBJECT_CLASS (leak_handler_parent_class)->finalize (object);
}

static void
leak_handler_class_init (LeakHandlerClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = leak_handler_finalize;
}

static void
leak_handler_init (LeakHandler *self)
{
}

static LeakReq *
check (DispatchHandler           *handler,
       DispatchRequestController *controller,
       const char                *event)
{
  LeakReq *req = LEAK_HANDLER (handler)->req;

  if (g_thread_self () != req->round->thread)
    g_error ("request %u: %s on another thread than the dispatch context's",
             req->index, event);
  if (controller != req->controller)
    g_error ("request %u: %s with a foreign controller", req->index, event);
  if (req->n_terminal > 0 || (req->n_request_start == 0 &&
                              !g_str_equal (event, "request-start")))
    {
      g_autofree char *state = leak_req_describe (req);

      g_error ("%s out of order: %s", event, state);
    }

  return req;
}

static gboolean
abort_timer_cb (gpointer user_data)
{
  LeakReq *req = user_data;

  g_clear_pointer (&req->timer, g_source_unref);

  /* half of the paused ones are aborted from another thread */
  if (req->phase == PHASE_PAUSED && req->index % 4 == 0)
    g_async_queue_push (req->round->abort_queue, g_object_ref (req->controller));
  else
    dispatch_request_controller_abort (req->controller, NULL);

  return G_SOURCE_REMOVE;
}

static void
abort_later (LeakReq *req,
             guint    min_ms,
             guint    max_ms)
{
  g_assert_null (req->timer);

  req->timer = g_timeout_source_new (g_rand_int_range (req->round->rand, min_ms, max_ms));
  g_source_set_name (req->timer, "[test-leaks] abort");
  g_source_set_callback (req->timer, abort_timer_cb, req, NULL);
  g_source_attach (req->timer, g_main_context_get_thread_default ());
}

static void
leak_on_request_start (DispatchHandler           *handler,
                       DispatchRequestController *controller)
{
  LeakReq *req = check (handler, controller, "request-start");

  req->n_request_start++;

  switch (req->phase)
    {
    case PHASE_IN_REQUEST_START:
      dispatch_request_controller_abort (controller, NULL);
      break;
    case PHASE_COMPLETE:
    case PHASE_BEFORE_START:
    case PHASE_CONNECTING:
    case PHASE_WAITING_HEADERS:
    case PHASE_MID_BODY:
    case PHASE_PAUSED:
    case N_PHASES:
    default:
      break;
    }
}

static void
leak_on_response_informational (DispatchHandler           *handler,
                                DispatchRequestController *controller,
                                guint                      status,
                                DispatchHeaders           *headers)
{
  LeakReq *req = check (handler, controller, "informational");

  g_error ("request %u: unexpected informational %u", req->index, status);
}

static void
leak_on_response_start (DispatchHandler           *handler,
                        DispatchRequestController *controller,
                        guint                      status,
                        DispatchHeaders           *headers,
                        const char                *reason)
{
  LeakReq *req = check (handler, controller, "response-start");

  if (req->n_response_start > 0)
    g_error ("request %u: a second response-start", req->index);
  req->n_response_start++;
  req->got_status = status;

  if (req->phase == PHASE_PAUSED)
    {
      dispatch_request_controller_pause (controller);
      req->paused = TRUE;
      abort_later (req, 1, 6);
    }
}

static void
leak_on_response_data (DispatchHandler           *handler,
                       DispatchRequestController *controller,
                       GBytes                    *chunk)
{
  LeakReq *req = check (handler, controller, "data");

  if (req->n_response_start != 1)
    g_error ("request %u: data before response-start", req->index);
  if (req->paused)
    {
      g_autofree char *state = leak_req_describe (req);

      g_error ("data while paused: %s", state);
    }

  req->received += g_bytes_get_size (chunk);

  if (req->phase == PHASE_MID_BODY)
    dispatch_request_controller_abort (controller, NULL);
}

static void
leak_finish (LeakReq      *req,
             const GError *error)
{
  Round *round = req->round;

  req->n_terminal++;
  if (req->timer != NULL)
    {
      g_source_destroy (req->timer);
      g_clear_pointer (&req->timer, g_source_unref);
    }

  if (req->phase == PHASE_COMPLETE)
    {
      if (error != NULL || req->got_status != req->status || req->received != req->size)
        {
          g_autofree char *state = leak_req_describe (req);

          g_error ("expected %u with %" G_GUINT64_FORMAT " bytes, got %s: %s",
                   req->status, req->size, error ? error->message : "success", state);
        }
    }
  else
    {
      gboolean started = req->phase == PHASE_MID_BODY || req->phase == PHASE_PAUSED;

      if (!g_error_matches (error, DISPATCH_ERROR, DISPATCH_ERROR_ABORTED) ||
          req->n_response_start != (started ? 1u : 0u))
        {
          g_autofree char *state = leak_req_describe (req);

          g_error ("expected ABORTED, got %s: %s",
                   error ? error->message : "success", state);
        }
    }

  round->per_phase[req->phase]++;
  round->total_usec[req->phase] += g_get_monotonic_time () - req->dispatch_time;
  round->max_usec[req->phase] = MAX (round->max_usec[req->phase],
                                     g_get_monotonic_time () - req->dispatch_time);
  round->done++;
  round->in_flight--;
}

static void
leak_on_response_end (DispatchHandler           *handler,
                      DispatchRequestController *controller,
                      DispatchHeaders           *trailers)
{
  LeakReq *req = check (handler, controller, "end");

  if (req->n_response_start != 1)
    g_error ("request %u: end without response-start", req->index);
  leak_finish (req, NULL);
}

static void
leak_on_response_error (DispatchHandler           *handler,
                        DispatchRequestController *controller,
                        const GError              *error)
{
  LeakReq *req = check (handler, controller, "error");

  g_assert_nonnull (error);
  leak_finish (req, error);
}

static void
leak_handler_iface_init (DispatchHandlerInterface *iface)
{
  iface->on_request_start = leak_on_request_start;
  iface->on_response_informational = leak_on_response_informational;
  iface->on_response_start = leak_on_response_start;
  iface->on_response_data = leak_on_response_data;
  iface->on_response_end = leak_on_response_end;
  iface->on_response_error = leak_on_response_error;
}

/* ------------------------------------------------------------------------
 * Rounds
 * ------------------------------------------------------------------------ */

static gpointer
aborter_thread_func (gpointer data)
{
  Round *round = data;

  while (!g_atomic_int_get (&round->stop))
    {
      DispatchRequestController *controller =
        g_async_queue_timeout_pop (round->abort_queue, 50 * 1000);

      if (controller == NULL)
        continue;
      dispatch_request_controller_abort (controller, NULL);
      g_object_unref (controller);
    }

  return NULL;
}

static void
round_dispatch_one (Round *round)
{
  g_autoptr(DispatchRequest) request = NULL;
  LeakHandler *handler;
  LeakReq *req = g_new0 (LeakReq, 1);
  g_autofree char *path = NULL;
  const char *origin = test_server_process_get_origin (round->servers);
  guint i = round->dispatched;

  req->round = round;
  req->index = i;
  req->dispatch_time = g_get_monotonic_time ();

  /* even: completed; odd: the abort phases in turn */
  if (i % 2 == 0 || i / 2 >= round->n_aborted)
    {
      guint choice = (guint) g_rand_int_range (round->rand, 0, 5);

      req->phase = PHASE_COMPLETE;
      req->status = 200;
      switch (choice)
        {
        case 0:
          path = g_strdup ("/hello");
          req->path_kind = "hello";
          req->size = 13;
          break;
        case 1:
        case 2:
          req->size = (guint64) g_rand_int_range (round->rand, 1, 64 * 1024);
          path = g_strdup_printf ("/pattern%s?size=%" G_GUINT64_FORMAT,
                                  choice == 2 ? "-chunked" : "", req->size);
          req->path_kind = choice == 2 ? "pattern-chunked" : "pattern";
          break;
        case 3:
          path = g_strdup ("/empty");
          req->path_kind = "empty";
          req->status = 204;
          break;
        default:
          path = g_strdup ("/status?code=404");
          req->path_kind = "status";
          req->status = 404;
          req->size = 6;
          break;
        }
    }
  else
    {
      req->phase = PHASE_BEFORE_START + (i / 2) % (N_PHASES - 1);
      switch (req->phase)
        {
        case PHASE_CONNECTING:
          origin = test_server_process_get_hole_origin (round->servers);
          path = g_strdup ("/hello");
          req->path_kind = "blackhole";
          break;
        case PHASE_WAITING_HEADERS:
          path = g_strdup ("/slow-headers?ms=60000");
          req->path_kind = "slow-headers";
          break;
        case PHASE_MID_BODY:
          /* a stalled body, or one the server is still writing */
          if (i % 4 == 1)
            {
              path = g_strdup ("/stall");
              req->path_kind = "stall";
            }
          else
            {
              path = g_strdup ("/pattern?size=1048576");
              req->path_kind = "pattern 1 MiB";
            }
          break;
        case PHASE_PAUSED:
          path = g_strdup ("/pattern?size=4194304");
          req->path_kind = "pattern 4 MiB";
          break;
        case PHASE_BEFORE_START:
        case PHASE_IN_REQUEST_START:
        case PHASE_COMPLETE:
        case N_PHASES:
        default:
          path = g_strdup ("/hello");
          req->path_kind = "hello";
          break;
        }
    }

  request = dispatch_request_new ("GET", origin, path);
  handler = g_object_new (LEAK_TYPE_HANDLER, NULL);
  handler->req = req;
  req->controller = dispatch_dispatcher_dispatch (round->agent, request,
                                                  DISPATCH_HANDLER (handler));
  g_object_unref (handler);  /* the exchange holds it now */

  /* Timed from dispatch(), not from on_request_start: that may come only
   * once libsoup has a connection and is about to write (undici's
   * onRequestStart moment), which the blackhole never gives. */
  if (req->phase == PHASE_BEFORE_START)
    dispatch_request_controller_abort (req->controller, NULL);
  else if (req->phase == PHASE_CONNECTING)
    /* nothing tells "connecting"; the blackhole never completes the
     * handshake, so a few ms after dispatch() the request is in it */
    abort_later (req, 5, 20);
  else if (req->phase == PHASE_WAITING_HEADERS)
    /* the head comes after 60 s: with no queueing in libsoup the request
     * is written within a millisecond or two on loopback, then waits */
    abort_later (req, 10, 30);

  round->dispatched++;
  round->in_flight++;
}

static void
run_round (TestServerProcess *servers,
           guint              n_each,
           gboolean           report)
{
  Round round = { 0 };
  guint total = 2 * n_each;
  gint64 start = g_get_monotonic_time ();
  GSource *wake;

  round.servers = servers;
  round.rand = g_rand_new ();
  round.thread = g_thread_self ();
  round.n_aborted = n_each;
  round.n_completed = n_each;
  round.abort_queue = g_async_queue_new ();
  round.aborter = g_thread_new ("aborter", aborter_thread_func, &round);
  round.agent = g_object_new (DISPATCH_TYPE_AGENT,
                              /* TestServer listens with GSocket's default
                               * backlog of 10: more simultaneous connects
                               * overflow it, and a dropped SYN costs 1 s */
                              "connections", 8,
                              /* a safety net: aborts come within 20 ms */
                              "connect-timeout", 5000,
                              NULL);

  wake = g_timeout_source_new (100);
  g_source_set_name (wake, "[test-leaks] deadline");
  g_source_set_callback (wake, wake_cb, NULL, NULL);
  g_source_attach (wake, g_main_context_get_thread_default ());

  while (round.done < total)
    {
      while (round.in_flight < MAX_IN_FLIGHT && round.dispatched < total)
        round_dispatch_one (&round);

      if (g_get_monotonic_time () - start > ROUND_DEADLINE_USEC)
        g_error ("the round did not finish within %d s: %u of %u done, %u in flight",
                 (int) (ROUND_DEADLINE_USEC / G_USEC_PER_SEC), round.done, total,
                 round.in_flight);

      g_main_context_iteration (NULL, TRUE);
    }

  g_source_destroy (wake);
  g_source_unref (wake);

  g_atomic_int_set (&round.stop, TRUE);
  g_thread_join (round.aborter);
  g_assert_cmpint (g_async_queue_length (round.abort_queue), ==, 0);
  g_async_queue_unref (round.abort_queue);

  /* late callbacks would fail in check() */
  test_iterate_for (100);
  test_close_and_destroy (round.agent);
  g_object_unref (round.agent);

  if (report)
    {
      g_test_message ("%u requests in %.1f s", total,
                      (g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC);
      for (guint p = 0; p < N_PHASES; p++)
        g_test_message ("  %-30s %5u   dispatch to terminal: mean %.1f ms, max %.1f ms",
                        phase_names[p], round.per_phase[p],
                        round.total_usec[p] / 1000.0 / MAX (1, round.per_phase[p]),
                        round.max_usec[p] / 1000.0);
    }

  g_assert_cmpuint (round.per_phase[PHASE_COMPLETE], ==, n_each);
  g_rand_free (round.rand);
}

static guint
leak_request_count (void)
{
  const char *env = g_getenv ("DISPATCH_LEAKS_REQUESTS");

  if (env != NULL && *env != '\0')
    return (guint) g_ascii_strtoull (env, NULL, 10);

  if (test_under_valgrind ())
    return LEAK_REQUESTS / 20;

  return test_under_sanitizer () ? LEAK_REQUESTS / 10 : LEAK_REQUESTS;
}

static void
test_leak_budget (void)
{
  TestServerProcess *servers;
  guint n_each = leak_request_count ();
  guint n_warmup = MIN (WARMUP_REQUESTS, n_each);
  guint fds_start;
  guint fds_baseline;
  guint fds_end;
  gsize rss_baseline;
  gsize rss_end;
  gssize growth;

  g_test_summary ("10 000 requests aborted in every phase (before start, in "
                  "on_request_start, connecting, waiting for the head, mid-body, "
                  "paused) and 10 000 completed ones: once the agent is destroyed, "
                  "no fd more than after a warm-up round and less than 1 MiB more "
                  "RSS");

  servers = test_server_process_new (TEST_SERVE_BLACKHOLE);
  /* A few requests first: state created once (an eventfd, GLib's and
   * libsoup's singletons) is then there when the count starts. */
  run_round (servers, 10, FALSE);
  fds_start = test_fd_count ();

  run_round (servers, n_warmup, FALSE);
  fds_baseline = test_settle_fds (fds_start, FD_SETTLE_MS);
  rss_baseline = test_rss_bytes ();

  run_round (servers, n_each, TRUE);
  fds_end = test_settle_fds (fds_baseline, FD_SETTLE_MS);
  rss_end = test_rss_bytes ();
  growth = (gssize) rss_end - (gssize) rss_baseline;

  g_test_message ("fds: %u before the warm-up round, %u after it (%u aborted + %u "
                  "completed), %u after the measured round", fds_start, fds_baseline,
                  n_warmup, n_warmup, fds_end);
  g_test_message ("RSS: %.2f MiB after the warm-up round, %.2f MiB after the "
                  "measured round: %+.1f KiB (budget %d KiB)",
                  rss_baseline / 1048576.0, rss_end / 1048576.0, growth / 1024.0,
                  RSS_BUDGET / 1024);

  if (fds_end != fds_baseline)
    {
      g_autofree char *fds = test_list_fds ();

      g_test_message ("open fds:%s", fds);
    }
  g_assert_cmpuint (fds_end, ==, fds_baseline);
  if (test_under_sanitizer () || test_under_valgrind ())
    g_test_message ("RSS not checked under a sanitizer or valgrind");
  else
    g_assert_cmpint (growth, <, RSS_BUDGET);

  test_server_process_free (servers);
}

int
main (int   argc,
      char *argv[])
{
  if (test_serve_requested (argc, argv))
    return test_serve_main (argc, argv);

  test_init (&argc, &argv);

  g_test_add_func ("/leaks/abort-and-complete-budget", test_leak_budget);

  return g_test_run ();
}
