/* bench-curl.c — the libcurl multi contender
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One CURLM driven by curl_multi_perform() + curl_multi_poll(), easy
 * handles reused across requests (the connection cache keeps the
 * connections alive), CURLMOPT_MAX_HOST_CONNECTIONS as the pool size.
 * Downloads use a 512 KiB CURLOPT_BUFFERSIZE (PERFORMANCE-NOTES), small
 * requests and many-paused curl's default (16 KiB); --buffer-size
 * overrides both. Pause after a chunk is returning CURL_WRITEFUNC_PAUSE
 * from the next write callback (curl holds that data), resume is
 * curl_easy_pause (CURLPAUSE_CONT); abort is
 * curl_multi_remove_handle() of an unfinished transfer, which is
 * synchronous: its "latency" is the time that call takes.
 */

#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench-common.h"

#define CONTENDER "curl"
#define MAX_SAMPLES 100000

typedef enum
{
  ACTION_NONE,
  ACTION_END_PAUSE,
  ACTION_RESUME,
  ACTION_ABORT,
  ACTION_CHECK_CLOSED,
} Action;

typedef struct Xfer Xfer;

typedef struct
{
  BenchArgs     args;
  CURLM        *multi;
  char          error[256];
  int           quit;

  long          total;
  long          started;
  long          completed;
  long          failed;
  uint64_t      bytes;
  int64_t       t0_us;
  int64_t       t1_us;
  double        cpu0;
  double        cpu1;

  /* one pending timed action (the modes that need one have one transfer) */
  Action        action;
  int64_t       action_at_us;
  Xfer         *action_xfer;

  double       *samples;
  long          n_samples;
  long          n_closed;
  int64_t       mark_us;

  uint64_t      delivered_at_pause;
  uint64_t      delivered_end;
  BenchSockStat stat_at_pause;
  BenchSockStat stat_end;
  long          rss_at_pause;
  long          rss_end;
  int           resumed_ok;

  long          n_paused;
  long          rss_before;
  uint64_t      delivered_total;
  uint64_t      warmup_bytes;
} Bench;

struct Xfer
{
  Bench   *bench;
  CURL    *easy;
  uint64_t received;
  int      acted;
  int      waiting;
  int      paused;
};

static Bench bench;

static void
record_error (const char *message)
{
  if (bench.error[0] == '\0')
    {
      snprintf (bench.error, sizeof bench.error, "%s", message);
      for (char *p = bench.error; *p; p++)
        if (*p == '"' || *p == '\\')
          *p = '\'';
    }
}

static void
schedule (Action  action,
          Xfer   *xfer,
          int     delay_ms)
{
  bench.action = action;
  bench.action_xfer = xfer;
  bench.action_at_us = bench_now_us () + (int64_t) delay_ms * 1000;
}

/* Pauses after the chunk just taken, the way curl documents it: the next
 * write callback returns CURL_WRITEFUNC_PAUSE, curl keeps that data (at
 * most one buffer) and stops reading the socket. */
static void
xfer_pause (Xfer *xfer)
{
  xfer->paused = 1;
}

static void
xfer_resume (Xfer *xfer)
{
  xfer->paused = 0;
  curl_easy_pause (xfer->easy, CURLPAUSE_CONT);
}

static size_t
write_cb (char   *data,
          size_t  size,
          size_t  nmemb,
          void   *user_data)
{
  Xfer *xfer = user_data;
  size_t n = size * nmemb;
  int64_t now;

  if (xfer->paused)
    return CURL_WRITEFUNC_PAUSE;

  xfer->received += n;

  switch (bench.args.mode)
    {
    case BENCH_MODE_SMALL:
    case BENCH_MODE_STREAM:
      break;

    case BENCH_MODE_PAUSE:
      if (!xfer->acted && xfer->received >= (uint64_t) bench.args.pause_after)
        {
          xfer->acted = 1;
          xfer_pause (xfer);
          bench.delivered_at_pause = xfer->received;
          bench.rss_at_pause = bench_rss_kib ();
          bench_sockstat (bench.args.port, &bench.stat_at_pause);
          schedule (ACTION_END_PAUSE, xfer, (int) (bench.args.pause_s * 1000));
        }
      else if (xfer->acted && bench.rss_end != 0 && !bench.resumed_ok)
        {
          bench.resumed_ok = 1;
          schedule (ACTION_ABORT, xfer, 0);
          xfer_pause (xfer);
        }
      break;

    case BENCH_MODE_RESUME_LATENCY:
      now = bench_now_us ();
      if (xfer->waiting)
        {
          xfer->waiting = 0;
          if (bench.n_samples < MAX_SAMPLES)
            bench.samples[bench.n_samples++] = (double) (now - bench.mark_us);
          if (bench.n_samples >= bench.args.requests)
            {
              schedule (ACTION_ABORT, xfer, 0);
              xfer_pause (xfer);
              break;
            }
        }
      xfer->acted = 1;
      xfer_pause (xfer);
      schedule (ACTION_RESUME, xfer, 1);
      break;

    case BENCH_MODE_ABORT_LATENCY:
      if (!xfer->acted && xfer->received >= (uint64_t) bench.args.pause_after)
        {
          xfer->acted = 1;
          schedule (ACTION_ABORT, xfer, 0);
        }
      break;

    case BENCH_MODE_MANY_PAUSED:
      if (!xfer->acted)
        {
          xfer->acted = 1;
          xfer_pause (xfer);
          bench.delivered_total += xfer->received;
          if (++bench.n_paused == bench.args.requests)
            bench.quit = 1;
        }
      break;
    }

  return n;
}

static long
buffer_size (void)
{
  if (bench.args.buffer_size > 0)
    return bench.args.buffer_size;
  if (bench.args.mode == BENCH_MODE_SMALL || bench.args.mode == BENCH_MODE_MANY_PAUSED)
    return CURL_MAX_WRITE_SIZE;
  return 512 * 1024;
}

static void
xfer_start (Xfer *xfer)
{
  xfer->received = 0;
  xfer->acted = 0;
  xfer->waiting = 0;
  xfer->paused = 0;
  if (xfer->easy == NULL)
    {
      xfer->easy = curl_easy_init ();
      curl_easy_setopt (xfer->easy, CURLOPT_URL, bench.args.url);
      curl_easy_setopt (xfer->easy, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1);
      curl_easy_setopt (xfer->easy, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt (xfer->easy, CURLOPT_BUFFERSIZE, buffer_size ());
      curl_easy_setopt (xfer->easy, CURLOPT_WRITEFUNCTION, write_cb);
      curl_easy_setopt (xfer->easy, CURLOPT_WRITEDATA, xfer);
      curl_easy_setopt (xfer->easy, CURLOPT_PRIVATE, xfer);
    }
  curl_multi_add_handle (bench.multi, xfer->easy);
}

static void
start_next (Xfer *xfer)
{
  if (bench.started >= bench.total)
    return;
  bench.started++;

  if (xfer == NULL)
    {
      xfer = calloc (1, sizeof *xfer);
      xfer->bench = &bench;
    }
  xfer_start (xfer);
}

static void
xfer_done (Xfer     *xfer,
           CURLcode  result)
{
  int64_t now = bench_now_us ();

  curl_multi_remove_handle (bench.multi, xfer->easy);

  switch (bench.args.mode)
    {
    case BENCH_MODE_SMALL:
      bench.completed++;
      bench.bytes += xfer->received;
      if (result != CURLE_OK)
        {
          bench.failed++;
          record_error (curl_easy_strerror (result));
        }
      if (bench.completed == bench.total - bench.args.requests)
        {
          bench.t0_us = now;
          bench.cpu0 = bench_cpu_s ();
        }
      if (bench.completed == bench.total)
        {
          bench.t1_us = now;
          bench.cpu1 = bench_cpu_s ();
          bench.quit = 1;
        }
      else if (bench.started < bench.total)
        start_next (xfer);
      break;

    case BENCH_MODE_STREAM:
      bench.t1_us = now;
      bench.cpu1 = bench_cpu_s ();
      bench.bytes = xfer->received;
      if (result != CURLE_OK)
        record_error (curl_easy_strerror (result));
      bench.quit = 1;
      break;

    default:
      record_error (result == CURLE_OK ? "the download ended early"
                                       : curl_easy_strerror (result));
      bench.quit = 1;
      break;
    }
}

static void
run_action (void)
{
  Action action = bench.action;
  Xfer *xfer = bench.action_xfer;

  bench.action = ACTION_NONE;

  switch (action)
    {
    case ACTION_NONE:
      break;

    case ACTION_END_PAUSE:
      bench.delivered_end = xfer->received;
      bench.rss_end = bench_rss_kib ();
      bench_sockstat (bench.args.port, &bench.stat_end);
      xfer_resume (xfer);
      break;

    case ACTION_RESUME:
      xfer->waiting = 1;
      bench.mark_us = bench_now_us ();
      xfer_resume (xfer);
      break;

    case ACTION_ABORT:
      bench.mark_us = bench_now_us ();
      curl_multi_remove_handle (bench.multi, xfer->easy);
      curl_easy_cleanup (xfer->easy);
      xfer->easy = NULL;
      if (bench.args.mode != BENCH_MODE_ABORT_LATENCY)
        {
          bench.quit = 1;
          break;
        }
      bench.samples[bench.n_samples++] = (double) (bench_now_us () - bench.mark_us);
      schedule (ACTION_CHECK_CLOSED, xfer, 20);
      break;

    case ACTION_CHECK_CLOSED:
      {
        BenchSockStat stat;

        if (bench_sockstat (bench.args.port, &stat) == 0 && stat.n_client == 0)
          bench.n_closed++;
        if (bench.n_samples >= bench.args.requests)
          bench.quit = 1;
        else
          start_next (xfer);
        break;
      }
    }
}

static void
run (void)
{
  int64_t deadline = bench_now_us () + (int64_t) (bench.args.timeout_s * 1e6);

  bench.quit = 0;
  while (!bench.quit)
    {
      CURLMsg *msg;
      int running;
      int left;
      int timeout_ms = 1000;
      int64_t now;

      curl_multi_perform (bench.multi, &running);
      while (!bench.quit && (msg = curl_multi_info_read (bench.multi, &left)) != NULL)
        if (msg->msg == CURLMSG_DONE)
          {
            Xfer *xfer = NULL;

            curl_easy_getinfo (msg->easy_handle, CURLINFO_PRIVATE, (char **) &xfer);
            xfer_done (xfer, msg->data.result);
          }
      if (bench.quit)
        break;

      now = bench_now_us ();
      if (bench.action != ACTION_NONE && bench.action_at_us <= now)
        {
          run_action ();
          continue;
        }
      if (now > deadline)
        bench_fail (&bench.args, CONTENDER, "timed out");

      if (bench.action != ACTION_NONE)
        {
          int64_t wait = (bench.action_at_us - now + 999) / 1000;

          timeout_ms = wait < timeout_ms ? (int) wait : timeout_ms;
        }
      curl_multi_poll (bench.multi, NULL, 0, timeout_ms, NULL);
    }
}

int
main (int    argc,
      char **argv)
{
  double seconds;

  bench_parse_args (argc, argv, &bench.args, "bench-curl");

  curl_global_init (CURL_GLOBAL_DEFAULT);
  bench.multi = curl_multi_init ();
  curl_multi_setopt (bench.multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long) bench.args.connections);
  curl_multi_setopt (bench.multi, CURLMOPT_MAXCONNECTS,
                     (long) (bench.args.connections > bench.args.concurrency
                             ? bench.args.connections : bench.args.concurrency));
  bench.samples = calloc (bench.args.requests < MAX_SAMPLES ? bench.args.requests : MAX_SAMPLES,
                          sizeof (double));

  switch (bench.args.mode)
    {
    case BENCH_MODE_SMALL:
      bench.total = bench.args.warmup + bench.args.requests;
      bench.t0_us = bench_now_us ();
      bench.cpu0 = bench_cpu_s ();
      for (int i = 0; i < bench.args.concurrency; i++)
        start_next (NULL);
      run ();

      if (bench.error[0] && bench.failed == bench.completed)
        bench_fail (&bench.args, CONTENDER, bench.error);
      seconds = (bench.t1_us - bench.t0_us) / 1e6;
      bench_report_small (&bench.args, CONTENDER, bench.failed, seconds,
                          bench.cpu1 - bench.cpu0, bench.bytes, bench.error);
      break;

    case BENCH_MODE_STREAM:
      bench.total = 1;
      bench.t0_us = bench_now_us ();
      bench.cpu0 = bench_cpu_s ();
      start_next (NULL);
      run ();

      if (bench.error[0])
        bench_fail (&bench.args, CONTENDER, bench.error);
      seconds = (bench.t1_us - bench.t0_us) / 1e6;
      bench_report_stream (&bench.args, CONTENDER, bench.bytes, seconds,
                           bench.cpu1 - bench.cpu0);
      break;

    case BENCH_MODE_PAUSE:
      {
        bench.total = 1;
        start_next (NULL);
        run ();

        if (bench.error[0])
          bench_fail (&bench.args, CONTENDER, bench.error);
        bench_report_pause (&bench.args, CONTENDER, bench.delivered_at_pause,
                            bench.delivered_end, &bench.stat_at_pause, &bench.stat_end,
                            bench.rss_at_pause, bench.rss_end, bench.resumed_ok);
        break;
      }

    case BENCH_MODE_RESUME_LATENCY:
    case BENCH_MODE_ABORT_LATENCY:
      {
        int resume = bench.args.mode == BENCH_MODE_RESUME_LATENCY;

        bench.total = resume ? 1 : bench.args.requests;
        start_next (NULL);
        run ();

        if (bench.error[0])
          bench_fail (&bench.args, CONTENDER, bench.error);
        bench_report_latency (&bench.args, CONTENDER, bench.samples, bench.n_samples,
                              bench.n_closed);
        break;
      }

    case BENCH_MODE_MANY_PAUSED:
      {
        BenchArgs saved = bench.args;

        /* one whole download first, so that "before" includes the code */
        bench.args.mode = BENCH_MODE_STREAM;
        bench.total = 1;
        start_next (NULL);
        run ();
        bench.warmup_bytes = bench.bytes;
        bench.args = saved;
        bench.started = 0;
        bench.error[0] = '\0';

        bench.rss_before = bench_rss_kib ();
        bench.total = bench.args.requests;
        for (long i = 0; i < bench.args.requests; i++)
          start_next (NULL);
        run ();
        if (bench.error[0])
          bench_fail (&bench.args, CONTENDER, bench.error);

        bench_report_many_paused (&bench.args, CONTENDER, bench.rss_before,
                                  bench.delivered_total, bench.warmup_bytes);
        fflush (stdout);
        _exit (0);
      }
    }

  fflush (stdout);
  return 0;
}
