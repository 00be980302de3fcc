/* bench-dispatch.c — the libdispatch-gobject contender ("ours")
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A DispatchAgent and a minimal C DispatchHandler, one handler and one
 * DispatchRequest per request, as an application would write them. Only
 * the public API. See bench/README.md for the modes and the JSON line it
 * prints.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <libdispatch-gobject/dispatch.h>

#include "bench-common.h"

#define CONTENDER "ours"
#define MAX_SAMPLES 100000

typedef struct
{
  BenchArgs      args;
  GMainLoop     *loop;
  DispatchAgent *agent;
  char          *error;   /* first unexpected error */

  /* small */
  long           total;
  long           started;
  long           completed;
  long           failed;
  guint64        bytes;
  int64_t        t0_us;
  int64_t        t1_us;
  double         cpu0;
  double         cpu1;

  /* latency modes */
  double        *samples;
  long           n_samples;
  long           n_closed;
  int64_t        mark_us;

  /* pause */
  guint64        delivered_at_pause;
  guint64        delivered_end;
  BenchSockStat  stat_at_pause;
  BenchSockStat  stat_end;
  long           rss_at_pause;
  long           rss_end;
  gboolean       resumed_ok;

  /* many-paused */
  long           n_paused;
  long           rss_before;
  guint64        delivered_total;
  guint64        warmup_bytes;
} Bench;

static void start_next (Bench *bench);

static void
bench_record_message (Bench      *bench,
                      const char *message)
{
  if (bench->error == NULL)
    bench->error = g_strdelimit (g_strdup (message), "\"\\", '\'');
}

static void
bench_record_error (Bench        *bench,
                    const GError *error)
{
  bench_record_message (bench, error->message);
}

/* ------------------------------------------------------------------------
 * The handler: one per request.
 * ------------------------------------------------------------------------ */

#define BENCH_TYPE_HANDLER (bench_handler_get_type ())
G_DECLARE_FINAL_TYPE (BenchHandler, bench_handler, BENCH, HANDLER, GObject)

struct _BenchHandler
{
  GObject                    parent_instance;
  Bench                     *bench;
  DispatchRequestController *controller;  /* not in small mode */
  guint64                    received;
  gboolean                   acted;        /* paused / abort scheduled */
  gboolean                   waiting;      /* resume-latency: resumed, no chunk yet */
};

static void bench_handler_iface_init (DispatchHandlerInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (BenchHandler, bench_handler, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (DISPATCH_TYPE_HANDLER,
                                                      bench_handler_iface_init))

static void
bench_handler_finalize (GObject *object)
{
  BenchHandler *self = BENCH_HANDLER (object);

  g_clear_object (&self->controller);

  G_OBJECT_CLASS (bench_handler_parent_class)->finalize (object);
}

static void
bench_handler_class_init (BenchHandlerClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = bench_handler_finalize;
}

static void
bench_handler_init (BenchHandler *self)
{
}

static gboolean
end_pause_cb (gpointer data)
{
  BenchHandler *self = data;
  Bench *bench = self->bench;

  bench->delivered_end = self->received;
  bench->rss_end = bench_rss_kib ();
  bench_sockstat (bench->args.port, &bench->stat_end);
  dispatch_request_controller_resume (self->controller);

  return G_SOURCE_REMOVE;
}

static gboolean
resume_cb (gpointer data)
{
  BenchHandler *self = data;

  self->waiting = TRUE;
  self->bench->mark_us = bench_now_us ();
  dispatch_request_controller_resume (self->controller);

  return G_SOURCE_REMOVE;
}

static gboolean
abort_cb (gpointer data)
{
  BenchHandler *self = data;

  self->bench->mark_us = bench_now_us ();
  dispatch_request_controller_abort (self->controller, NULL);

  return G_SOURCE_REMOVE;
}

static void
bench_handler_on_response_data (DispatchHandler           *handler,
                                DispatchRequestController *controller,
                                GBytes                    *chunk)
{
  BenchHandler *self = BENCH_HANDLER (handler);
  Bench *bench = self->bench;
  int64_t now;

  self->received += g_bytes_get_size (chunk);

  switch (bench->args.mode)
    {
    case BENCH_MODE_SMALL:
    case BENCH_MODE_STREAM:
      break;

    case BENCH_MODE_PAUSE:
      if (!self->acted && self->received >= (guint64) bench->args.pause_after)
        {
          self->acted = TRUE;
          dispatch_request_controller_pause (controller);
          bench->delivered_at_pause = self->received;
          bench->rss_at_pause = bench_rss_kib ();
          bench_sockstat (bench->args.port, &bench->stat_at_pause);
          g_timeout_add_full (G_PRIORITY_DEFAULT, (guint) (bench->args.pause_s * 1000),
                              end_pause_cb, g_object_ref (self), g_object_unref);
        }
      else if (self->acted && bench->rss_end != 0 && !bench->resumed_ok)
        {
          /* the first chunk after resume(): done */
          bench->resumed_ok = TRUE;
          dispatch_request_controller_abort (controller, NULL);
        }
      break;

    case BENCH_MODE_RESUME_LATENCY:
      now = bench_now_us ();
      if (self->waiting)
        {
          self->waiting = FALSE;
          if (bench->n_samples < MAX_SAMPLES)
            bench->samples[bench->n_samples++] = (double) (now - bench->mark_us);
          if (bench->n_samples >= bench->args.requests)
            {
              dispatch_request_controller_abort (controller, NULL);
              break;
            }
        }
      else if (self->acted)
        {
          bench_record_message (bench, "data while paused");
        }
      self->acted = TRUE;
      dispatch_request_controller_pause (controller);
      g_timeout_add_full (G_PRIORITY_DEFAULT, 1, resume_cb, g_object_ref (self), g_object_unref);
      break;

    case BENCH_MODE_ABORT_LATENCY:
      if (!self->acted && self->received >= (guint64) bench->args.pause_after)
        {
          self->acted = TRUE;
          g_idle_add_full (G_PRIORITY_DEFAULT, abort_cb, g_object_ref (self), g_object_unref);
        }
      break;

    case BENCH_MODE_MANY_PAUSED:
      if (!self->acted)
        {
          self->acted = TRUE;
          dispatch_request_controller_pause (controller);
          bench->delivered_total += self->received;
          if (++bench->n_paused == bench->args.requests)
            g_main_loop_quit (bench->loop);
        }
      break;
    }
}

static gboolean
check_closed_cb (gpointer data)
{
  Bench *bench = data;
  BenchSockStat stat;

  if (bench_sockstat (bench->args.port, &stat) == 0 && stat.n_client == 0)
    bench->n_closed++;

  if (bench->n_samples >= bench->args.requests)
    g_main_loop_quit (bench->loop);
  else
    start_next (bench);

  return G_SOURCE_REMOVE;
}

static void
request_done (BenchHandler *self,
              const GError *error)
{
  Bench *bench = self->bench;
  int64_t now = bench_now_us ();

  switch (bench->args.mode)
    {
    case BENCH_MODE_SMALL:
      bench->completed++;
      bench->bytes += self->received;
      if (error != NULL)
        {
          bench->failed++;
          bench_record_error (bench, error);
        }
      if (bench->completed == bench->total - bench->args.requests)
        {
          bench->t0_us = now;
          bench->cpu0 = bench_cpu_s ();
        }
      if (bench->completed == bench->total)
        {
          bench->t1_us = now;
          bench->cpu1 = bench_cpu_s ();
          g_main_loop_quit (bench->loop);
        }
      else
        start_next (bench);
      break;

    case BENCH_MODE_STREAM:
      bench->t1_us = now;
      bench->cpu1 = bench_cpu_s ();
      bench->bytes = self->received;
      if (error != NULL)
        bench_record_error (bench, error);
      g_main_loop_quit (bench->loop);
      break;

    case BENCH_MODE_PAUSE:
    case BENCH_MODE_RESUME_LATENCY:
      if (error == NULL)
        bench_record_message (bench, "the download ended early");
      else if (!g_error_matches (error, DISPATCH_ERROR, DISPATCH_ERROR_ABORTED))
        bench_record_error (bench, error);
      g_main_loop_quit (bench->loop);
      break;

    case BENCH_MODE_ABORT_LATENCY:
      if (error == NULL || !g_error_matches (error, DISPATCH_ERROR, DISPATCH_ERROR_ABORTED))
        {
          if (error != NULL)
            bench_record_error (bench, error);
          else
            bench_record_message (bench, "the download ended early");
          g_main_loop_quit (bench->loop);
          break;
        }
      bench->samples[bench->n_samples++] = (double) (now - bench->mark_us);
      g_timeout_add (20, check_closed_cb, bench);
      break;

    case BENCH_MODE_MANY_PAUSED:
      if (error != NULL)
        bench_record_error (bench, error);
      else
        bench_record_message (bench, "a download ended unpaused");
      g_main_loop_quit (bench->loop);
      break;
    }
}

static void
bench_handler_on_response_end (DispatchHandler           *handler,
                               DispatchRequestController *controller,
                               DispatchHeaders           *trailers)
{
  request_done (BENCH_HANDLER (handler), NULL);
}

static void
bench_handler_on_response_error (DispatchHandler           *handler,
                                 DispatchRequestController *controller,
                                 const GError              *error)
{
  request_done (BENCH_HANDLER (handler), error);
}

static void
bench_handler_iface_init (DispatchHandlerInterface *iface)
{
  iface->on_response_data = bench_handler_on_response_data;
  iface->on_response_end = bench_handler_on_response_end;
  iface->on_response_error = bench_handler_on_response_error;
}

/* ------------------------------------------------------------------------
 * Driving
 * ------------------------------------------------------------------------ */

static void
start_next (Bench *bench)
{
  g_autoptr(DispatchRequest) request = NULL;
  g_autoptr(BenchHandler) handler = NULL;
  g_autoptr(DispatchRequestController) controller = NULL;

  if (bench->started >= bench->total)
    return;
  bench->started++;

  request = dispatch_request_new ("GET", bench->args.origin, bench->args.path);
  handler = g_object_new (BENCH_TYPE_HANDLER, NULL);
  handler->bench = bench;

  controller = dispatch_dispatcher_dispatch (DISPATCH_DISPATCHER (bench->agent), request,
                                             DISPATCH_HANDLER (handler));
  if (bench->args.mode != BENCH_MODE_SMALL)
    handler->controller = g_steal_pointer (&controller);
}

static gboolean
timeout_cb (gpointer data)
{
  Bench *bench = data;

  bench_fail (&bench->args, CONTENDER, "timed out");
  return G_SOURCE_REMOVE;
}

/* One whole download of the target first, so that RSS "before" includes
 * the code and the pool. */
static void
warm_up_many_paused (Bench *bench)
{
  BenchArgs saved = bench->args;

  bench->args.mode = BENCH_MODE_STREAM;
  bench->total = 1;
  start_next (bench);
  g_main_loop_run (bench->loop);
  bench->warmup_bytes = bench->bytes;
  bench->args = saved;
  bench->started = 0;
  g_clear_pointer (&bench->error, g_free);
}

int
main (int    argc,
      char **argv)
{
  Bench bench = { 0 };
  double seconds;

  bench_parse_args (argc, argv, &bench.args, "bench-dispatch");

  bench.loop = g_main_loop_new (NULL, FALSE);
  bench.agent = g_object_new (DISPATCH_TYPE_AGENT,
                              "connections", bench.args.connections,
                              "max-connections", MAX (256, bench.args.connections),
                              NULL);
  bench.samples = g_new0 (double, MIN (bench.args.requests, MAX_SAMPLES));
  g_timeout_add_seconds ((guint) bench.args.timeout_s, timeout_cb, &bench);

  switch (bench.args.mode)
    {
    case BENCH_MODE_SMALL:
      bench.total = bench.args.warmup + bench.args.requests;
      bench.t0_us = bench_now_us ();
      bench.cpu0 = bench_cpu_s ();
      for (int i = 0; i < bench.args.concurrency; i++)
        start_next (&bench);
      g_main_loop_run (bench.loop);

      seconds = (bench.t1_us - bench.t0_us) / 1e6;
      if (bench.error != NULL && bench.failed == bench.completed)
        bench_fail (&bench.args, CONTENDER, bench.error);
      bench_report_small (&bench.args, CONTENDER, bench.failed, seconds,
                          bench.cpu1 - bench.cpu0, bench.bytes, bench.error);
      break;

    case BENCH_MODE_STREAM:
      bench.total = 1;
      bench.t0_us = bench_now_us ();
      bench.cpu0 = bench_cpu_s ();
      start_next (&bench);
      g_main_loop_run (bench.loop);

      if (bench.error != NULL)
        bench_fail (&bench.args, CONTENDER, bench.error);
      seconds = (bench.t1_us - bench.t0_us) / 1e6;
      bench_report_stream (&bench.args, CONTENDER, bench.bytes, seconds,
                           bench.cpu1 - bench.cpu0);
      break;

    case BENCH_MODE_PAUSE:
      {
        bench.total = 1;
        start_next (&bench);
        g_main_loop_run (bench.loop);

        if (bench.error != NULL)
          bench_fail (&bench.args, CONTENDER, bench.error);
        bench_report_pause (&bench.args, CONTENDER, bench.delivered_at_pause,
                            bench.delivered_end, &bench.stat_at_pause, &bench.stat_end,
                            bench.rss_at_pause, bench.rss_end, bench.resumed_ok);
        break;
      }

    case BENCH_MODE_RESUME_LATENCY:
    case BENCH_MODE_ABORT_LATENCY:
      {
        gboolean resume = bench.args.mode == BENCH_MODE_RESUME_LATENCY;

        bench.total = resume ? 1 : bench.args.requests;
        start_next (&bench);
        g_main_loop_run (bench.loop);

        if (bench.error != NULL)
          bench_fail (&bench.args, CONTENDER, bench.error);
        bench_report_latency (&bench.args, CONTENDER, bench.samples, bench.n_samples,
                              bench.n_closed);
        break;
      }

    case BENCH_MODE_MANY_PAUSED:
      {
        warm_up_many_paused (&bench);
        bench.rss_before = bench_rss_kib ();
        bench.total = bench.args.requests;
        for (long i = 0; i < bench.args.requests; i++)
          start_next (&bench);
        g_main_loop_run (bench.loop);
        if (bench.error != NULL)
          bench_fail (&bench.args, CONTENDER, bench.error);

        /* let anything already scheduled run */
        for (int i = 0; i < 100 && g_main_context_iteration (NULL, FALSE); i++)
          ;
        bench_report_many_paused (&bench.args, CONTENDER, bench.rss_before,
                                  bench.delivered_total, bench.warmup_bytes);
        fflush (stdout);
        /* Tearing 1000 paused requests down is not what is measured. */
        _exit (0);
      }
    }

  fflush (stdout);
  return 0;
}
