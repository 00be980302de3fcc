/* bench-soup.c — the raw libsoup 3 contender
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The best a libsoup 3 application can do by hand (PERFORMANCE-NOTES
 * §3): soup_session_send_async(), then a non-blocking pump —
 * g_pollable_input_stream_read_nonblocking() into one reused 256 KiB
 * buffer until WOULD_BLOCK, then a pollable source; at most 16 reads per
 * turn of the main loop, like ours. The session has the same pool as ours
 * and, like ours, no content decoder; like ours, it follows no redirects
 * (SOUP_MESSAGE_NO_REDIRECT: without it libsoup connects a header handler
 * to every message, 2 000–3 000 instructions). Unlike ours it has no auth
 * manager (see --contract-costs). Pausing is not reading; resume() reads
 * again at once, synchronously.
 *
 * With --contract-costs 1 ("libsoup-contract" in bench/run) it also pays,
 * per request, what libdispatch-gobject's contract costs outside the
 * library's own code, and nothing else of ours: the three GObjects of the
 * model (a request, a handler, a controller: made here as three plain
 * GObjects, alive until the request ends), the default User-Agent header
 * (/work/shared/design/ARCHITECTURE.md), and the auth manager kept in the
 * session but opted out per message — without it libsoup 3.2 reads a 401
 * or 407 body whole into memory before returning the head
 * (expected_to_be_requeued() in soup-session.c). It is a reference line
 * for scenario (a), not a contender: the gap between it and raw libsoup
 * is what GLib 2.74 and libsoup 3.2 charge for the contract; the gap
 * between ours and it is the dispatch layer's own code.
 */

#include <inttypes.h>
#include <libsoup/soup.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench-common.h"

#define READ_BUFFER_SIZE (256 * 1024)
#define MAX_READS_PER_RUN 16
#define MAX_SAMPLES 100000
#define CONTRACT_USER_AGENT "libdispatch-gobject/0.1.0"

typedef struct
{
  BenchArgs    args;
  const char  *contender;  /* "libsoup", or "libsoup-contract" */
  GMainLoop   *loop;
  SoupSession *session;
  GUri        *uri;
  guint8      *buffer;
  char        *error;

  long         total;
  long         started;
  long         completed;
  long         failed;
  guint64      bytes;
  int64_t      t0_us;
  int64_t      t1_us;
  double       cpu0;
  double       cpu1;

  double      *samples;
  long         n_samples;
  long         n_closed;
  int64_t      mark_us;

  guint64      delivered_at_pause;
  guint64      delivered_end;
  BenchSockStat stat_at_pause;
  BenchSockStat stat_end;
  long         rss_at_pause;
  long         rss_end;
  gboolean     resumed_ok;

  long         n_paused;
  long         rss_before;
  guint64      delivered_total;
  guint64      warmup_bytes;
} Bench;

typedef struct
{
  Bench                *bench;
  SoupMessage          *msg;
  GCancellable         *cancellable;
  GObject              *model[3];  /* --contract-costs */
  GInputStream         *body;
  GPollableInputStream *pollable;
  GSource              *source;
  guint64               received;
  gboolean              paused;
  gboolean              acted;
  gboolean              waiting;
  gboolean              done;
  int                   ref_count;
} Req;

/* --contract-costs: a stand-in for each GObject of the model (properties
 * or not, GLib 2.74 charges the same to make and free one) */
#define BENCH_TYPE_MODEL (bench_model_get_type ())
G_DECLARE_FINAL_TYPE (BenchModel, bench_model, BENCH, MODEL, GObject)

struct _BenchModel
{
  GObject parent_instance;
};

G_DEFINE_FINAL_TYPE (BenchModel, bench_model, G_TYPE_OBJECT)

static void
bench_model_class_init (BenchModelClass *klass)
{
}

static void
bench_model_init (BenchModel *self)
{
}

static void start_next (Bench *bench);
static void pump       (Req   *req);

static void
bench_record_message (Bench      *bench,
                      const char *message)
{
  if (bench->error == NULL)
    bench->error = g_strdelimit (g_strdup (message), "\"\\", '\'');
}

static Req *
req_ref (Req *req)
{
  req->ref_count++;
  return req;
}

static GQueue x_free_msgs = G_QUEUE_INIT;

static void
req_unref (Req *req)
{
  if (--req->ref_count > 0)
    return;
  g_assert (req->source == NULL);
  g_clear_object (&req->body);
  if (g_getenv ("X_REUSE") && req->msg)
    g_queue_push_tail (&x_free_msgs, g_steal_pointer (&req->msg));
  g_clear_object (&req->msg);
  g_clear_object (&req->cancellable);
  for (int i = 0; i < (int) G_N_ELEMENTS (req->model); i++)
    g_clear_object (&req->model[i]);
  g_free (req);
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

/* The terminal step: @error NULL for a complete body. */
static void
req_done (Req          *req,
          const GError *error)
{
  Bench *bench = req->bench;
  int64_t now;
  gboolean cancelled = error && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  g_assert (!req->done);
  req->done = TRUE;
  if (req->source != NULL)
    {
      g_source_destroy (req->source);
      g_clear_pointer (&req->source, g_source_unref);
    }
  /* At EOF this returns the connection to the pool; before it, libsoup
   * drops the connection. */
  if (req->body != NULL)
    g_input_stream_close (req->body, NULL, NULL);

  now = bench_now_us ();

  switch (bench->args.mode)
    {
    case BENCH_MODE_SMALL:
      bench->completed++;
      bench->bytes += req->received;
      if (error != NULL)
        {
          bench->failed++;
          bench_record_message (bench, error->message);
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
      bench->bytes = req->received;
      if (error != NULL)
        bench_record_message (bench, error->message);
      g_main_loop_quit (bench->loop);
      break;

    case BENCH_MODE_PAUSE:
    case BENCH_MODE_RESUME_LATENCY:
      if (error == NULL)
        bench_record_message (bench, "the download ended early");
      else if (!cancelled)
        bench_record_message (bench, error->message);
      g_main_loop_quit (bench->loop);
      break;

    case BENCH_MODE_ABORT_LATENCY:
      if (!cancelled)
        {
          bench_record_message (bench, error ? error->message : "the download ended early");
          g_main_loop_quit (bench->loop);
          break;
        }
      bench->samples[bench->n_samples++] = (double) (now - bench->mark_us);
      g_timeout_add (20, check_closed_cb, bench);
      break;

    case BENCH_MODE_MANY_PAUSED:
      bench_record_message (bench, error ? error->message : "a download ended unpaused");
      g_main_loop_quit (bench->loop);
      break;
    }

  req_unref (req);  /* the in-flight reference */
}

/* The application's abort: cancel; a waiting pump sees CANCELLED from its
 * source on the next main loop turn; an idle (paused) one ends now. */
static void
req_abort (Req *req)
{
  g_cancellable_cancel (req->cancellable);
  if (req->source == NULL && !req->done)
    {
      g_autoptr(GError) error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                     "Operation was cancelled");

      req_done (req, error);
    }
}

static void
req_resume (Req *req)
{
  if (!req->paused)
    return;
  req->paused = FALSE;
  pump (req);
}

static gboolean
end_pause_cb (gpointer data)
{
  Req *req = data;
  Bench *bench = req->bench;

  bench->delivered_end = req->received;
  bench->rss_end = bench_rss_kib ();
  bench_sockstat (bench->args.port, &bench->stat_end);
  req_resume (req);

  return G_SOURCE_REMOVE;
}

static gboolean
resume_cb (gpointer data)
{
  Req *req = data;

  req->waiting = TRUE;
  req->bench->mark_us = bench_now_us ();
  req_resume (req);

  return G_SOURCE_REMOVE;
}

static gboolean
abort_cb (gpointer data)
{
  Req *req = data;

  if (!req->done)
    {
      req->bench->mark_us = bench_now_us ();
      req_abort (req);
    }

  return G_SOURCE_REMOVE;
}

static void
on_data (Req   *req,
         gsize  n)
{
  Bench *bench = req->bench;
  int64_t now;

  req->received += n;

  switch (bench->args.mode)
    {
    case BENCH_MODE_SMALL:
    case BENCH_MODE_STREAM:
      break;

    case BENCH_MODE_PAUSE:
      if (!req->acted && req->received >= (guint64) bench->args.pause_after)
        {
          req->acted = TRUE;
          req->paused = TRUE;
          bench->delivered_at_pause = req->received;
          bench->rss_at_pause = bench_rss_kib ();
          bench_sockstat (bench->args.port, &bench->stat_at_pause);
          g_timeout_add_full (G_PRIORITY_DEFAULT, (guint) (bench->args.pause_s * 1000),
                              end_pause_cb, req_ref (req), (GDestroyNotify) req_unref);
        }
      else if (req->acted && bench->rss_end != 0 && !bench->resumed_ok)
        {
          bench->resumed_ok = TRUE;
          req_abort (req);
        }
      break;

    case BENCH_MODE_RESUME_LATENCY:
      now = bench_now_us ();
      if (req->waiting)
        {
          req->waiting = FALSE;
          if (bench->n_samples < MAX_SAMPLES)
            bench->samples[bench->n_samples++] = (double) (now - bench->mark_us);
          if (bench->n_samples >= bench->args.requests)
            {
              req_abort (req);
              break;
            }
        }
      req->acted = TRUE;
      req->paused = TRUE;
      g_timeout_add_full (G_PRIORITY_DEFAULT, 1, resume_cb, req_ref (req),
                          (GDestroyNotify) req_unref);
      break;

    case BENCH_MODE_ABORT_LATENCY:
      if (!req->acted && req->received >= (guint64) bench->args.pause_after)
        {
          req->acted = TRUE;
          g_idle_add_full (G_PRIORITY_DEFAULT, abort_cb, req_ref (req),
                           (GDestroyNotify) req_unref);
        }
      break;

    case BENCH_MODE_MANY_PAUSED:
      if (!req->acted)
        {
          req->acted = TRUE;
          req->paused = TRUE;
          bench->delivered_total += req->received;
          if (++bench->n_paused == bench->args.requests)
            g_main_loop_quit (bench->loop);
        }
      break;
    }
}

static gboolean
readable_cb (GObject  *stream,
             gpointer  data)
{
  Req *req = data;

  g_clear_pointer (&req->source, g_source_unref);
  pump (req);

  return G_SOURCE_REMOVE;
}

static void
wait_readable (Req *req)
{
  req->source = g_pollable_input_stream_create_source (req->pollable, req->cancellable);
  g_source_set_callback (req->source, G_SOURCE_FUNC (readable_cb), req_ref (req),
                         (GDestroyNotify) req_unref);
  g_source_attach (req->source, NULL);
}

static void
pump (Req *req)
{
  req_ref (req);

  for (int reads = 0; !req->done && !req->paused; reads++)
    {
      g_autoptr(GError) error = NULL;
      gssize n;

      if (reads == MAX_READS_PER_RUN)
        {
          wait_readable (req);
          break;
        }

      n = g_pollable_input_stream_read_nonblocking (req->pollable, req->bench->buffer,
                                                    READ_BUFFER_SIZE, req->cancellable, &error);
      if (n > 0)
        on_data (req, n);
      else if (n == 0)
        req_done (req, NULL);
      else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          wait_readable (req);
          break;
        }
      else
        req_done (req, error);
    }

  req_unref (req);
}

static void
send_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      data)
{
  Req *req = data;
  g_autoptr(GError) error = NULL;

  req->body = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  if (req->body == NULL)
    req_done (req, error);
  else
    {
      req->pollable = G_POLLABLE_INPUT_STREAM (req->body);
      pump (req);
    }

  req_unref (req);
}

static void
start_next (Bench *bench)
{
  Req *req;

  if (bench->started >= bench->total)
    return;
  bench->started++;

  req = g_new0 (Req, 1);
  req->ref_count = 1;  /* in flight, until req_done() */
  req->bench = bench;
  req->cancellable = g_cancellable_new ();
  req->msg = (g_queue_peek_head (&x_free_msgs) && G_OBJECT (g_queue_peek_head (&x_free_msgs))->ref_count == 1) ? g_queue_pop_head (&x_free_msgs) : NULL;
  static int x_reused; if (req->msg != NULL && ++x_reused % 1000 == 0) g_printerr ("reused %d\n", x_reused);
  if (req->msg != NULL)
    soup_message_headers_clear (soup_message_get_request_headers (req->msg));
  else
    req->msg = soup_message_new_from_uri ("GET", bench->uri);
  soup_message_set_flags (req->msg, SOUP_MESSAGE_NO_REDIRECT);
  if (bench->args.contract_costs)
    {
      for (int i = 0; i < (int) G_N_ELEMENTS (req->model); i++)
        req->model[i] = g_object_new (BENCH_TYPE_MODEL, NULL);
      soup_message_headers_append (soup_message_get_request_headers (req->msg),
                                   "User-Agent", CONTRACT_USER_AGENT);
      soup_message_disable_feature (req->msg, SOUP_TYPE_AUTH_MANAGER);
    }
  soup_session_send_async (bench->session, req->msg, G_PRIORITY_DEFAULT, req->cancellable,
                           send_cb, req_ref (req));
}

static gboolean
timeout_cb (gpointer data)
{
  Bench *bench = data;

  bench_fail (&bench->args, bench->contender, "timed out");
  return G_SOURCE_REMOVE;
}

int
main (int    argc,
      char **argv)
{
  Bench bench = { 0 };
  double seconds;

  bench_parse_args (argc, argv, &bench.args, "bench-soup");
  bench.contender = bench.args.contract_costs ? "libsoup-contract" : "libsoup";

  bench.loop = g_main_loop_new (NULL, FALSE);
  bench.buffer = g_malloc (READ_BUFFER_SIZE);
  bench.uri = g_uri_parse (bench.args.url, SOUP_HTTP_URI_FLAGS, NULL);
  bench.session = g_object_new (SOUP_TYPE_SESSION,
                                "max-conns", MAX (256, bench.args.connections),
                                "max-conns-per-host", bench.args.connections,
                                "timeout", 0,
                                "idle-timeout", 4,
                                NULL);
  soup_session_remove_feature_by_type (bench.session, SOUP_TYPE_CONTENT_DECODER);
  if (!bench.args.contract_costs)
    soup_session_remove_feature_by_type (bench.session, SOUP_TYPE_AUTH_MANAGER);
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

      if (bench.error != NULL && bench.failed == bench.completed)
        bench_fail (&bench.args, bench.contender, bench.error);
      seconds = (bench.t1_us - bench.t0_us) / 1e6;
      bench_report_small (&bench.args, bench.contender, bench.failed, seconds,
                          bench.cpu1 - bench.cpu0, bench.bytes, bench.error);
      break;

    case BENCH_MODE_STREAM:
      bench.total = 1;
      bench.t0_us = bench_now_us ();
      bench.cpu0 = bench_cpu_s ();
      start_next (&bench);
      g_main_loop_run (bench.loop);

      if (bench.error != NULL)
        bench_fail (&bench.args, bench.contender, bench.error);
      seconds = (bench.t1_us - bench.t0_us) / 1e6;
      bench_report_stream (&bench.args, bench.contender, bench.bytes, seconds,
                           bench.cpu1 - bench.cpu0);
      break;

    case BENCH_MODE_PAUSE:
      {
        bench.total = 1;
        start_next (&bench);
        g_main_loop_run (bench.loop);

        if (bench.error != NULL)
          bench_fail (&bench.args, bench.contender, bench.error);
        bench_report_pause (&bench.args, bench.contender, bench.delivered_at_pause,
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
          bench_fail (&bench.args, bench.contender, bench.error);
        bench_report_latency (&bench.args, bench.contender, bench.samples,
                              bench.n_samples, bench.n_closed);
        break;
      }

    case BENCH_MODE_MANY_PAUSED:
      {
        BenchArgs saved = bench.args;

        /* one whole download first, so that "before" includes the code */
        bench.args.mode = BENCH_MODE_STREAM;
        bench.total = 1;
        start_next (&bench);
        g_main_loop_run (bench.loop);
        bench.warmup_bytes = bench.bytes;
        bench.args = saved;
        bench.started = 0;
        g_clear_pointer (&bench.error, g_free);

        bench.rss_before = bench_rss_kib ();
        bench.total = bench.args.requests;
        for (long i = 0; i < bench.args.requests; i++)
          start_next (&bench);
        g_main_loop_run (bench.loop);
        if (bench.error != NULL)
          bench_fail (&bench.args, bench.contender, bench.error);

        for (int i = 0; i < 100 && g_main_context_iteration (NULL, FALSE); i++)
          ;
        bench_report_many_paused (&bench.args, bench.contender, bench.rss_before,
                                  bench.delivered_total, bench.warmup_bytes);
        fflush (stdout);
        _exit (0);
      }
    }

  fflush (stdout);
  return 0;
}
