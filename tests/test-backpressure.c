/* test-backpressure.c — pause() is real backpressure
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A large download is paused after about 1 MiB. While it is paused the
 * client must read nothing: no on_response_data, flat memory, and the
 * server (which only writes the next 64 KiB once the previous chunk left
 * for the socket) must stall once the kernel's socket buffers are full.
 * After resume() the whole body must arrive, every byte checked against
 * the pattern as it arrives (the body is never stored).
 */

#include <string.h>

#include "test-util.h"

#define MIB (1024 * 1024)

/* Limits from the brief: client memory growth, and what may sit in the
 * kernel's socket buffers (written by the server, not read by us). */
#define MAX_RSS_GROWTH (16 * MIB)

/* AddressSanitizer keeps freed memory in a quarantine of up to 256 MiB,
 * and valgrind one of 20 MB, so RSS says nothing about our buffering
 * there: the RSS bounds are only checked in normal builds, natively. The
 * server-side proof (nothing more is sent while paused) holds
 * everywhere. */
#if defined(__SANITIZE_ADDRESS__)
# define CHECK_RSS 0
#elif defined(__has_feature)
# if __has_feature(address_sanitizer)
#  define CHECK_RSS 0
# endif
#endif
#if !defined(CHECK_RSS) && defined(__has_include)
# if __has_include(<valgrind/valgrind.h>)
#  include <valgrind/valgrind.h>
#  define CHECK_RSS (RUNNING_ON_VALGRIND == 0)
# endif
#endif
#ifndef CHECK_RSS
# define CHECK_RSS 1
#endif
#define MAX_IN_FLIGHT  ((guint64) 32 * MIB)

#define PAUSE_AT        MIB
#define SAMPLE_MS       100
#define N_SAMPLES       20   /* 2 s of pause */
#define FLAT_FROM       10   /* samples from 1 s on must all be equal */

/* Bound for the download after resume (256 MiB on loopback takes about
 * a second; this leaves room for a loaded machine). */
#define DOWNLOAD_WAIT_MS 40000

/* ------------------------------------------------------------------------
 * BpVerifier: a handler that checks every body byte against the pattern as
 * it passes, then hands each callback to a TestRecorder (in discard_body
 * mode) for the bookkeeping, the pause_at pause and the contract checks.
 * ------------------------------------------------------------------------ */

#define BP_TYPE_VERIFIER (bp_verifier_get_type ())
G_DECLARE_FINAL_TYPE (BpVerifier, bp_verifier, BP, VERIFIER, GObject)

struct _BpVerifier
{
  GObject       parent_instance;

  TestRecorder *recorder;
  guint64       verified;          /* bytes checked so far */
  gboolean      mismatch;
  guint64       mismatch_at;
  guint8        mismatch_got;
  gboolean      data_while_paused;

  gboolean      paused_seen;       /* the recorder's pause_at pause */
  guint64       bytes_at_pause;
  guint         chunks_at_pause;

  gsize         rss_max;           /* sampled every MiB of body */
  guint64       next_rss_sample;
};

static void bp_verifier_handler_iface_init (DispatchHandlerInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (BpVerifier, bp_verifier, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (DISPATCH_TYPE_HANDLER,
                                                      bp_verifier_handler_iface_init))

static void
bp_verifier_on_request_start (DispatchHandler           *handler,
                              DispatchRequestController *controller)
{
  BpVerifier *self = BP_VERIFIER (handler);

  dispatch_handler_on_request_start (DISPATCH_HANDLER (self->recorder), controller);
}

static void
bp_verifier_on_response_informational (DispatchHandler           *handler,
                                       DispatchRequestController *controller,
                                       guint                      status,
                                       DispatchHeaders           *headers)
{
  BpVerifier *self = BP_VERIFIER (handler);

  dispatch_handler_on_response_informational (DISPATCH_HANDLER (self->recorder), controller,
                                              status, headers);
}

static void
bp_verifier_on_response_start (DispatchHandler           *handler,
                               DispatchRequestController *controller,
                               guint                      status,
                               DispatchHeaders           *headers,
                               const char                *reason)
{
  BpVerifier *self = BP_VERIFIER (handler);

  dispatch_handler_on_response_start (DISPATCH_HANDLER (self->recorder), controller,
                                      status, headers, reason);
}

static void
bp_verifier_on_response_data (DispatchHandler           *handler,
                              DispatchRequestController *controller,
                              GBytes                    *chunk)
{
  BpVerifier *self = BP_VERIFIER (handler);
  const guint8 *data;
  gsize size;

  /* Only the test pauses and resumes, from this thread: data while the
   * flag is set means data was delivered while paused. */
  if (dispatch_request_controller_get_paused (controller))
    self->data_while_paused = TRUE;

  data = g_bytes_get_data (chunk, &size);
  if (!self->mismatch)
    {
      for (gsize i = 0; i < size; i++)
        {
          if (data[i] != test_pattern_byte (self->verified + i))
            {
              self->mismatch = TRUE;
              self->mismatch_at = self->verified + i;
              self->mismatch_got = data[i];
              break;
            }
        }
    }
  self->verified += size;

  if (self->verified >= self->next_rss_sample)
    {
      self->rss_max = MAX (self->rss_max, test_rss_bytes ());
      self->next_rss_sample = self->verified + MIB;
    }

  dispatch_handler_on_response_data (DISPATCH_HANDLER (self->recorder), controller, chunk);

  if (!self->paused_seen && dispatch_request_controller_get_paused (controller))
    {
      self->paused_seen = TRUE;
      self->bytes_at_pause = self->recorder->body_bytes;
      self->chunks_at_pause = self->recorder->n_chunks;
    }
}

static void
bp_verifier_on_response_end (DispatchHandler           *handler,
                             DispatchRequestController *controller,
                             DispatchHeaders           *trailers)
{
  BpVerifier *self = BP_VERIFIER (handler);

  dispatch_handler_on_response_end (DISPATCH_HANDLER (self->recorder), controller, trailers);
}

static void
bp_verifier_on_response_error (DispatchHandler           *handler,
                               DispatchRequestController *controller,
                               const GError              *error)
{
  BpVerifier *self = BP_VERIFIER (handler);

  dispatch_handler_on_response_error (DISPATCH_HANDLER (self->recorder), controller, error);
}

static void
bp_verifier_handler_iface_init (DispatchHandlerInterface *iface)
{
  iface->on_request_start = bp_verifier_on_request_start;
  iface->on_response_informational = bp_verifier_on_response_informational;
  iface->on_response_start = bp_verifier_on_response_start;
  iface->on_response_data = bp_verifier_on_response_data;
  iface->on_response_end = bp_verifier_on_response_end;
  iface->on_response_error = bp_verifier_on_response_error;
}

static void
bp_verifier_finalize (GObject *object)
{
  BpVerifier *self = BP_VERIFIER (object);

  g_clear_object (&self->recorder);

  G_OBJECT_CLASS (bp_verifier_parent_class)->finalize (object);
}

static void
bp_verifier_class_init (BpVerifierClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = bp_verifier_finalize;
}

static void
bp_verifier_init (BpVerifier *self)
{
  self->recorder = test_recorder_new ();
  self->recorder->discard_body = TRUE;
  self->recorder->pause_at = PAUSE_AT;
}

/* ------------------------------------------------------------------------
 * Sampling while paused
 * ------------------------------------------------------------------------ */

typedef struct
{
  TestServer   *server;
  TestRecorder *recorder;
  guint         n;
  guint64       written[N_SAMPLES];
  gsize         rss[N_SAMPLES];
  guint64       received[N_SAMPLES];
  gboolean      done;
} Samples;

static gboolean
sample_cb (gpointer user_data)
{
  Samples *samples = user_data;

  g_assert_cmpuint (samples->n, <, N_SAMPLES);

  samples->written[samples->n] = test_server_get_written (samples->server);
  samples->rss[samples->n] = test_rss_bytes ();
  samples->received[samples->n] = samples->recorder->body_bytes;
  samples->n++;

  if (samples->n < N_SAMPLES)
    return G_SOURCE_CONTINUE;

  samples->done = TRUE;
  return G_SOURCE_REMOVE;
}

static double
mib (guint64 bytes)
{
  return (double) bytes / MIB;
}

static double
mib_signed (gint64 bytes)
{
  return (double) bytes / MIB;
}

static void
run_backpressure (const char *route,
                  guint64     size)
{
  TestServer *server = test_server_new ();
  g_autoptr(DispatchDispatcher) agent = DISPATCH_DISPATCHER (dispatch_agent_new ());
  g_autoptr(BpVerifier) verifier = g_object_new (BP_TYPE_VERIFIER, NULL);
  g_autoptr(DispatchRequestController) controller = NULL;
  g_autoptr(DispatchRequest) request = NULL;
  g_autofree char *path = NULL;
  TestRecorder *recorder = verifier->recorder;
  Samples samples = { server, recorder, 0, { 0 }, { 0 }, { 0 }, FALSE };
  g_autoptr(GString) written_log = g_string_new (NULL);
  gsize rss_before;
  gsize rss_pause_max = 0;
  gsize rss_after;
  guint64 written_at_pause;
  guint64 written_during_pause;
  gint64 resume_time;
  gint64 download_usec;

  /* Warm up: one small download over the same agent, so that the
   * connection, libsoup's and GLib's one-time allocations and the read
   * buffer exist before the baseline is taken. */
  {
    g_autofree char *warm_path = g_strdup_printf ("%s?size=%u", route, MIB);
    g_autoptr(DispatchRequest) warm = dispatch_request_new ("GET",
                                                            test_server_get_origin (server),
                                                            warm_path);
    g_autoptr(TestRecorder) warm_recorder = test_dispatch_and_wait (agent, warm);

    test_recorder_assert_ok (warm_recorder, 200, NULL);
    g_assert_cmpuint (warm_recorder->body_bytes, ==, MIB);
  }

  rss_before = test_rss_bytes ();
  verifier->rss_max = rss_before;

  path = g_strdup_printf ("%s?size=%" G_GUINT64_FORMAT, route, size);
  request = dispatch_request_new ("GET", test_server_get_origin (server), path);
  controller = dispatch_dispatcher_dispatch (agent, request, DISPATCH_HANDLER (verifier));

  /* The recorder pauses from inside on_response_data at PAUSE_AT. */
  test_wait_for_flag (&verifier->paused_seen, TEST_WAIT_MS);
  g_assert_true (dispatch_request_controller_get_paused (controller));
  g_assert_false (recorder->done);
  written_at_pause = test_server_get_written (server);

  /* Watch for 2 s; nothing may move. */
  g_timeout_add (SAMPLE_MS, sample_cb, &samples);
  test_wait_for_flag (&samples.done, N_SAMPLES * SAMPLE_MS + TEST_WAIT_MS);

  for (guint i = 0; i < N_SAMPLES; i++)
    {
      rss_pause_max = MAX (rss_pause_max, samples.rss[i]);
      g_string_append_printf (written_log, "%s%.2f", i > 0 ? " " : "", mib (samples.written[i]));
    }
  written_during_pause = samples.written[N_SAMPLES - 1];

  g_test_message ("%s size %.0f MiB: paused after receiving %" G_GUINT64_FORMAT
                  " bytes (%.2f MiB, %u chunks)", route, mib (size),
                  verifier->bytes_at_pause, mib (verifier->bytes_at_pause),
                  verifier->chunks_at_pause);
  g_test_message ("server written (MiB) at pause %.2f, then every %u ms: %s",
                  mib (written_at_pause), SAMPLE_MS, written_log->str);
  g_test_message ("server written during the pause: %" G_GUINT64_FORMAT " bytes (%.2f MiB); "
                  "in kernel buffers (written - received): %.2f MiB",
                  written_during_pause, mib (written_during_pause),
                  mib (written_during_pause - verifier->bytes_at_pause));
  g_test_message ("RSS before dispatch %.2f MiB, max while paused %.2f MiB (growth %+.2f MiB)",
                  mib (rss_before), mib (rss_pause_max),
                  mib_signed ((gint64) rss_pause_max - (gint64) rss_before));

  /* (c) no data while paused */
  g_assert_false (verifier->data_while_paused);
  g_assert_cmpuint (recorder->n_chunks, ==, verifier->chunks_at_pause);
  for (guint i = 0; i < N_SAMPLES; i++)
    g_assert_cmpuint (samples.received[i], ==, verifier->bytes_at_pause);
  g_assert_cmpuint (verifier->bytes_at_pause, >=, PAUSE_AT);
  g_assert_false (recorder->done);

  /* (b) the server stalls: flat from 1 s on, and only what the kernel
   * buffers hold beyond what we received */
  for (guint i = FLAT_FROM; i < N_SAMPLES; i++)
    g_assert_cmpuint (samples.written[i], ==, samples.written[FLAT_FROM]);
  g_assert_cmpuint (written_during_pause, >=, verifier->bytes_at_pause);
  g_assert_cmpuint (written_during_pause - verifier->bytes_at_pause, <, MAX_IN_FLIGHT);
  g_assert_cmpuint (written_during_pause, <, size);

  /* (a) flat memory */
  if (CHECK_RSS)
    g_assert_cmpint ((gint64) rss_pause_max - (gint64) rss_before, <, MAX_RSS_GROWTH);
  else
    g_test_message ("RSS bounds not checked under AddressSanitizer");

  /* Resume: everything arrives, verified byte by byte. */
  resume_time = g_get_monotonic_time ();
  dispatch_request_controller_resume (controller);
  test_recorder_wait (recorder, DOWNLOAD_WAIT_MS);
  download_usec = g_get_monotonic_time () - resume_time;
  rss_after = test_rss_bytes ();
  verifier->rss_max = MAX (verifier->rss_max, rss_after);

  g_test_message ("after resume: %" G_GUINT64_FORMAT " bytes in %.2f s; server written %"
                  G_GUINT64_FORMAT, recorder->body_bytes, download_usec / 1e6,
                  test_server_get_written (server));
  g_test_message ("RSS before %.2f MiB, after %.2f MiB, max sampled during the run %.2f MiB "
                  "(growth %+.2f MiB)", mib (rss_before), mib (rss_after),
                  mib (verifier->rss_max),
                  mib_signed ((gint64) verifier->rss_max - (gint64) rss_before));

  test_recorder_assert_ok (recorder, 200, NULL);
  test_recorder_assert_events (recorder, TEST_EVENT_REQUEST_START, TEST_EVENT_RESPONSE_START,
                               TEST_EVENT_DATA, TEST_EVENT_END, -1);
  if (verifier->mismatch)
    g_error ("body byte %" G_GUINT64_FORMAT " is 0x%02x, the pattern says 0x%02x",
             verifier->mismatch_at, verifier->mismatch_got,
             test_pattern_byte (verifier->mismatch_at));
  g_assert_cmpuint (recorder->body_bytes, ==, size);
  g_assert_cmpuint (verifier->verified, ==, size);
  g_assert_cmpuint (recorder->body->len, ==, 0);
  g_assert_false (verifier->data_while_paused);
  if (CHECK_RSS)
    g_assert_cmpint ((gint64) verifier->rss_max - (gint64) rss_before, <, MAX_RSS_GROWTH);

  g_clear_object (&controller);
  g_clear_object (&agent);
  test_server_free (server);
}

static void
test_backpressure_content_length (void)
{
  g_test_summary ("a 256 MiB Content-Length download paused after 1 MiB: for "
                  "2 s no data, the server stalls (< 32 MiB beyond what was "
                  "received), RSS grows < 16 MiB; after resume all 268435456 "
                  "bytes arrive and match the pattern, RSS still < +16 MiB");

  run_backpressure ("/pattern", (guint64) 256 * MIB);
}

static void
test_backpressure_chunked (void)
{
  g_test_summary ("the same with a 64 MiB chunked body (/pattern-chunked)");

  run_backpressure ("/pattern-chunked", (guint64) 64 * MIB);
}

int
main (int   argc,
      char *argv[])
{
  test_init (&argc, &argv);

  g_test_add_func ("/backpressure/content-length-256m", test_backpressure_content_length);
  g_test_add_func ("/backpressure/chunked-64m", test_backpressure_chunked);

  return g_test_run ();
}
