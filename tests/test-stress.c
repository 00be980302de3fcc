/* test-stress.c — reliability under load, and the controller's thread
 * safety
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * /stress/mixed-load sends 10 000 requests against TestServer and
 * TestFaultServer — normal, slow (/trickle), stalled (/stall with a body
 * timeout), reset (/rst) and truncated (/close-mid-body, /short-cl) bodies —
 * with at most 64 in flight, while storm threads pause, resume and abort
 * random in-flight requests. It checks the handler contract of every
 * request, that no data arrives while a pause is in effect, and that file
 * descriptors and RSS come back to their baseline once the agent is gone.
 * The servers of that test run in a child process (this binary run with
 * --serve), so the figures are the client's alone (see TestServerProcess
 * in test-util.h).
 *
 * /stress/controller/... put many threads on one controller at once.
 *
 * The whole binary is in the `slow` suite. Under a sanitizer the mixed load
 * is cut to SANITIZER_REQUESTS requests, under valgrind to VALGRIND_REQUESTS
 * (and RSS is reported, not checked); DISPATCH_STRESS_REQUESTS=N in the
 * environment overrides the count.
 */

#include <string.h>

#include "test-util.h"

#define STRESS_REQUESTS      10000
#define SANITIZER_REQUESTS   4000
#define VALGRIND_REQUESTS    1000
#define WARMUP_REQUESTS      1000
#define MAX_IN_FLIGHT        64
#define N_STORMS             3
/* The mixed load must be over within this (it takes ~11 s here). */
#define ROUND_DEADLINE_USEC  (60 * G_USEC_PER_SEC)
#define RSS_BUDGET           (8 * 1024 * 1024)
/* Sockets close asynchronously on the server side: allow this long. */
#define FD_SETTLE_MS         5000
/* abort() from a storm thread → the terminal callback, under full load */
#define ABORT_LATENCY_USEC   (5 * G_USEC_PER_SEC)

/* ------------------------------------------------------------------------
 * Shared helpers
 * ------------------------------------------------------------------------ */

/* One global sequence: orders "a pause() returned" against "a callback
 * ended" across threads (each step is a seq-cst read-modify-write). */
static guint64 seq_counter;

static guint64
seq_next (void)
{
  return __atomic_add_fetch (&seq_counter, 1, __ATOMIC_SEQ_CST);
}

static gboolean
wake_cb (gpointer user_data)
{
  return G_SOURCE_CONTINUE;
}

typedef gboolean (*Predicate) (gpointer user_data);

/* Iterates the thread-default context until pred() holds; fails after
 * timeout_ms. For state other threads change, which does not wake the
 * context by itself (a 5 ms wake-up source rechecks). */
static void
wait_until (Predicate   pred,
            gpointer    user_data,
            guint       timeout_ms,
            const char *what)
{
  GMainContext *context = g_main_context_ref_thread_default ();
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  GSource *wake = g_timeout_source_new (5);

  g_source_set_name (wake, "[test-stress] wake");
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

/* close_async (waits for nothing: the caller drained the agent), then
 * destroy_async (test_close_and_destroy), the agent's closed and
 * destroyed properties checked, then drop the last reference. */
static void
close_destroy_unref (DispatchDispatcher *agent)
{
  test_close_and_destroy (agent);

  g_assert_true (dispatch_agent_get_closed (DISPATCH_AGENT (agent)));
  g_assert_true (dispatch_agent_get_destroyed (DISPATCH_AGENT (agent)));
  g_object_unref (agent);
}

/* For failure reports: what the open fds are. Sockets are matched with
 * /proc/net/tcp and told apart by the ports given (a server's port, as
 * the local side: accepted by that server; as the remote side: a client
 * connection to it). */
static char *
describe_fds (const guint16      *ports,
              const char * const *names,
              guint               n_ports,
              guint              *n_client_out)
{
  g_autoptr(GHashTable) tcp = g_hash_table_new_full (g_str_hash, g_str_equal,
                                                     g_free, g_free);
  g_autoptr(GHashTable) counts = g_hash_table_new_full (g_str_hash, g_str_equal,
                                                        g_free, NULL);
  g_autofree char *contents = NULL;
  g_auto(GStrv) lines = NULL;
  GString *text = g_string_new (NULL);
  GHashTableIter iter;
  gpointer key, value;
  const char *name;
  guint n_client = 0;
  GDir *dir;

  if (g_file_get_contents ("/proc/net/tcp", &contents, NULL, NULL))
    {
      lines = g_strsplit (contents, "\n", -1);
      for (guint i = 1; lines[i] != NULL; i++)
        {
          g_auto(GStrv) f = g_strsplit_set (g_strstrip (lines[i]), " ", -1);
          GPtrArray *fields = g_ptr_array_new ();
          guint local_port;
          guint remote_port;
          g_autofree char *side = NULL;

          for (guint j = 0; f[j] != NULL; j++)
            if (*f[j] != '\0')
              g_ptr_array_add (fields, f[j]);
          if (fields->len < 10)
            {
              g_ptr_array_free (fields, TRUE);
              continue;
            }

          local_port = (guint) g_ascii_strtoull (strchr (fields->pdata[1], ':') + 1, NULL, 16);
          remote_port = (guint) g_ascii_strtoull (strchr (fields->pdata[2], ':') + 1, NULL, 16);
          for (guint p = 0; p < n_ports; p++)
            {
              if (local_port == ports[p])
                side = g_strdup_printf ("%s side", names[p]);
              else if (remote_port == ports[p])
                side = g_strdup_printf ("client to %s", names[p]);
            }
          g_hash_table_insert (tcp, g_strdup (fields->pdata[9]),
                               g_strdup_printf ("tcp %s, state 0x%s",
                                                side != NULL ? side : "other",
                                                (char *) fields->pdata[3]));
          g_ptr_array_free (fields, TRUE);
        }
    }

  dir = g_dir_open ("/proc/self/fd", 0, NULL);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename ("/proc/self/fd", name, NULL);
      g_autofree char *target = g_file_read_link (path, NULL);
      char *kind;
      guint n;

      if (target == NULL)
        continue;
      if (g_str_has_prefix (target, "socket:["))
        {
          g_autofree char *inode = g_strndup (target + 8, strlen (target) - 9);
          const char *desc = g_hash_table_lookup (tcp, inode);

          kind = g_strdup (desc != NULL ? desc : "socket (not tcp4)");
          if (desc != NULL && strstr (desc, "client to ") != NULL)
            n_client++;
        }
      else if (g_str_has_prefix (target, "anon_inode:"))
        kind = g_strdup (target);
      else if (g_str_has_prefix (target, "pipe:"))
        kind = g_strdup ("pipe");
      else
        kind = g_strdup (target);

      n = GPOINTER_TO_UINT (g_hash_table_lookup (counts, kind));
      g_hash_table_insert (counts, kind, GUINT_TO_POINTER (n + 1));
    }
  if (dir != NULL)
    g_dir_close (dir);

  g_hash_table_iter_init (&iter, counts);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_string_append_printf (text, "\n  %4u x %s", GPOINTER_TO_UINT (value), (char *) key);

  if (n_client_out != NULL)
    *n_client_out = n_client;

  return g_string_free (text, FALSE);
}

static guint16
origin_port (const char *origin)
{
  return (guint16) g_ascii_strtoull (strrchr (origin, ':') + 1, NULL, 10);
}

/* ------------------------------------------------------------------------
 * Requests and their handler
 * ------------------------------------------------------------------------ */

typedef enum {
  KIND_HELLO,
  KIND_EMPTY,
  KIND_PATTERN,
  KIND_PATTERN_CHUNKED,
  KIND_TRICKLE,
  KIND_STALL,
  KIND_RST,
  KIND_CLOSE_MID_BODY,
  KIND_SHORT_CL,
  KIND_STALL_AFTER,   /* not in the mix: the single-request tests */
  N_KINDS
} Kind;

#define N_MIXED_KINDS KIND_STALL_AFTER

typedef struct
{
  const char *name;
  guint       weight;     /* in the mix, out of 100 */
  gboolean    fault;      /* on the fault server */
  int         error;      /* what it ends with unless aborted; -1 success */
  int         alt_error;  /* also acceptable, or -1 */
} KindInfo;

static const KindInfo kind_info[N_KINDS] = {
  [KIND_HELLO] = { "hello", 20, FALSE, -1, -1 },
  [KIND_EMPTY] = { "empty", 5, FALSE, -1, -1 },
  [KIND_PATTERN] = { "pattern", 20, FALSE, -1, -1 },
  [KIND_PATTERN_CHUNKED] = { "pattern-chunked", 10, FALSE, -1, -1 },
  [KIND_TRICKLE] = { "trickle", 10, FALSE, -1, -1 },
  [KIND_STALL] = { "stall", 8, FALSE, DISPATCH_ERROR_BODY_TIMEOUT, DISPATCH_ERROR_TIMEOUT },
  [KIND_RST] = { "rst", 9, TRUE, DISPATCH_ERROR_SOCKET, -1 },
  /* test-dispatch pins SOCKET; a close racing the read may also end as
   * a short body */
  [KIND_CLOSE_MID_BODY] = { "close-mid-body", 9, TRUE, DISPATCH_ERROR_SOCKET,
                            DISPATCH_ERROR_RESPONSE_LENGTH_MISMATCH },
  [KIND_SHORT_CL] = { "short-cl", 9, TRUE, DISPATCH_ERROR_RESPONSE_LENGTH_MISMATCH, -1 },
  [KIND_STALL_AFTER] = { "stall-after", 0, FALSE, -1, -1 },
};

/* outcome index: 0 success, 1 + DispatchError code otherwise */
#define N_OUTCOMES (DISPATCH_ERROR_DESTROYED + 2)

typedef struct _Stress Stress;
typedef struct _Req Req;

typedef void (*ReqDoneFunc) (Req          *req,
                             const GError *error);

struct _Req
{
  int                        ref_count;   /* atomic */
  Stress                    *stress;      /* NULL outside the mixed load */
  guint                      index;
  Kind                       kind;
  guint64                    size;        /* pattern bytes, trickle chunks */
  gboolean                   self_pausing;
  gboolean                   pause_at_start;  /* pause in on_response_start */
  DispatchRequestController *controller;  /* set before any callback */
  ReqDoneFunc                done_func;
  guint                      live_index;  /* under stress->live_lock */

  /* A pause() and the gate going up, and the gate going down and a
   * resume(), are each one step under `lock`: while `gate` is TRUE the
   * controller is paused by a pause() call that has returned. */
  GMutex                     lock;
  gboolean                   gate;
  gboolean                   gate_in_context;  /* that pause() was ours */
  guint64                    gate_seq;         /* seq_next() after it */
  gboolean                   storm_abort;      /* a storm thread aborted */
  gint64                     storm_abort_time;

  /* dispatch context only */
  guint                      n_request_start;
  guint                      n_response_start;
  guint                      n_terminal;
  guint                      n_chunks;
  guint64                    received;
  guint                      status;
  guint64                    last_exit_seq;    /* a callback returned */
  GSource                   *resume_source;
  GError                    *error;
  gboolean                   done;
};

static Req *
req_new (Kind kind)
{
  Req *req = g_new0 (Req, 1);

  req->ref_count = 1;
  req->kind = kind;
  g_mutex_init (&req->lock);

  return req;
}

static Req *
req_ref (Req *req)
{
  g_atomic_int_inc (&req->ref_count);
  return req;
}

static void
req_unref (Req *req)
{
  if (!g_atomic_int_dec_and_test (&req->ref_count))
    return;

  g_assert_null (req->resume_source);
  g_clear_object (&req->controller);
  g_clear_error (&req->error);
  g_mutex_clear (&req->lock);
  g_free (req);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Req, req_unref)

/* The pause()+gate step; `in_context` says the dispatch context made it. */
static void
req_pause (Req      *req,
           gboolean  in_context)
{
  g_mutex_lock (&req->lock);
  dispatch_request_controller_pause (req->controller);
  /* pause() is idempotent: the first one that returned is in effect */
  if (!req->gate)
    {
      req->gate = TRUE;
      req->gate_in_context = in_context;
      req->gate_seq = seq_next ();
    }
  g_mutex_unlock (&req->lock);
}

static void
req_resume (Req *req)
{
  g_mutex_lock (&req->lock);
  req->gate = FALSE;
  req->gate_in_context = FALSE;
  dispatch_request_controller_resume (req->controller);
  g_mutex_unlock (&req->lock);
}

static char *
req_describe (Req *req)
{
  return g_strdup_printf ("request %u (%s, size %" G_GUINT64_FORMAT "): "
                          "request-start %u, response-start %u (status %u), "
                          "%u chunks / %" G_GUINT64_FORMAT " bytes, terminal %u, "
                          "paused %d, aborted %d, finished %d, gate %d%s",
                          req->index, kind_info[req->kind].name, req->size,
                          req->n_request_start, req->n_response_start, req->status,
                          req->n_chunks, req->received, req->n_terminal,
                          dispatch_request_controller_get_paused (req->controller),
                          dispatch_request_controller_get_aborted (req->controller),
                          dispatch_request_controller_get_finished (req->controller),
                          req->gate, req->gate_in_context ? " (context)" : "");
}

typedef enum {
  OP_PAUSE,
  OP_RESUME,
  OP_ABORT,
  OP_QUERY,
  N_OPS
} StormOp;

struct _Stress
{
  DispatchDispatcher *agent;
  const char         *origin;
  const char         *fault_origin;
  GMainContext       *context;
  GRand              *rand;        /* dispatch thread only */

  guint               n_requests;
  guint               dispatched;
  guint               completed;
  guint               in_flight;
  guint               max_in_flight;

  GMutex              live_lock;
  GPtrArray          *live;        /* Req (one ref each), in flight */

  int                 stop;        /* atomic */
  GThread            *storms[N_STORMS];
  GError             *storm_reason;

  /* figures */
  guint               outcomes[N_KINDS][N_OUTCOMES];
  int                 storm_ops[N_OPS];  /* atomic */
  int                 ambiguous;         /* atomic */
  guint               context_pauses;
  guint               storm_aborts_won;
  guint64             bytes;
  gint64              max_abort_latency;
};

#define STRESS_TYPE_HANDLER (stress_handler_get_type ())
G_DECLARE_FINAL_TYPE (StressHandler, stress_handler, STRESS, HANDLER, GObject)

struct _StressHandler
{
  GObject  parent_instance;
  Req     *req;
  GThread *thread;
};

static void stress_handler_iface_init (DispatchHandlerInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (StressHandler, stress_handler, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (DISPATCH_TYPE_HANDLER,
                                                      stress_handler_iface_init))

static void
stress_handler_finalize (GObject *object)
{
  StressHandler *self = STRESS_HANDLER (object);

  g_clear_pointer (&self->req, req_unref);
  g_clear_pointer (&self->thread, g_thread_unref);

  G_OBJECT_CLASS (stress_handler_parent_class)->finalize (object);
}

static void
stress_handler_class_init (StressHandlerClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = stress_handler_finalize;
}

static void
stress_handler_init (StressHandler *self)
{
}

static DispatchHandler *
stress_handler_new (Req *req)
{
  StressHandler *self = g_object_new (STRESS_TYPE_HANDLER, NULL);

  self->req = req_ref (req);
  self->thread = g_thread_ref (g_thread_self ());

  return DISPATCH_HANDLER (self);
}

/* The checks every callback shares. */
static Req *
handler_check (DispatchHandler           *handler,
               DispatchRequestController *controller,
               const char                *event)
{
  StressHandler *self = STRESS_HANDLER (handler);
  Req *req = self->req;

  if (g_thread_self () != self->thread)
    g_error ("request %u (%s): %s on another thread than the dispatch context's",
             req->index, kind_info[req->kind].name, event);

  if (controller != req->controller)
    g_error ("request %u (%s): %s with a foreign controller",
             req->index, kind_info[req->kind].name, event);

  if (req->n_terminal > 0)
    {
      g_autofree char *state = req_describe (req);

      g_error ("%s after the terminal callback: %s", event, state);
    }

  if (req->n_request_start != 1 && !g_str_equal (event, "request-start"))
    {
      g_autofree char *state = req_describe (req);

      g_error ("%s before request-start: %s", event, state);
    }

  return req;
}

static gboolean
context_resume_cb (gpointer user_data)
{
  Req *req = user_data;

  g_clear_pointer (&req->resume_source, g_source_unref);
  req_resume (req);

  return G_SOURCE_REMOVE;
}

/* A pause made in the dispatch context, resumed there 1–3 ms later. */
static void context_pause (Req *req);

static void
stress_on_request_start (DispatchHandler           *handler,
                         DispatchRequestController *controller)
{
  Req *req = handler_check (handler, controller, "request-start");

  if (req->n_request_start > 0)
    g_error ("request %u: a second request-start", req->index);
  req->n_request_start++;
  req->last_exit_seq = seq_next ();
}

static void
stress_on_response_informational (DispatchHandler           *handler,
                                  DispatchRequestController *controller,
                                  guint                      status,
                                  DispatchHeaders           *headers)
{
  Req *req = handler_check (handler, controller, "informational");

  /* none of the routes sends a 1xx */
  g_error ("request %u (%s): unexpected informational %u", req->index,
           kind_info[req->kind].name, status);
}

static void
stress_on_response_start (DispatchHandler           *handler,
                          DispatchRequestController *controller,
                          guint                      status,
                          DispatchHeaders           *headers,
                          const char                *reason)
{
  Req *req = handler_check (handler, controller, "response-start");

  if (req->n_response_start > 0)
    {
      g_autofree char *state = req_describe (req);

      g_error ("a second response-start (%u): %s", status, state);
    }
  g_assert_nonnull (headers);

  req->n_response_start++;
  req->status = status;

  if (req->pause_at_start)
    req_pause (req, TRUE);
  else if (req->self_pausing && g_random_int_range (0, 3) == 0)
    context_pause (req);

  req->last_exit_seq = seq_next ();
}

static void
check_chunk (Req          *req,
             const guint8 *data,
             gsize         size)
{
  static const char hello[] = "Hello, World!";
  static const char stall[] = "hello";
  guint64 offset = req->received;
  guint64 limit;
  guint8 fill = 0;

  switch (req->kind)
    {
    case KIND_HELLO:
      limit = 13;
      break;
    case KIND_PATTERN:
    case KIND_PATTERN_CHUNKED:
    case KIND_STALL_AFTER:
      limit = req->size;
      break;
    case KIND_TRICKLE:
      limit = req->size;
      fill = 'x';
      break;
    case KIND_STALL:
      limit = 5;
      break;
    case KIND_RST:
      limit = 100;
      fill = 'r';
      break;
    case KIND_CLOSE_MID_BODY:
    case KIND_SHORT_CL:
      limit = 500;
      fill = 'a';
      break;
    case KIND_EMPTY:
    case N_KINDS:
    default:
      limit = 0;
      break;
    }

  if (offset + size > limit)
    g_error ("request %u (%s): %" G_GUINT64_FORMAT " bytes of body, more than "
             "the %" G_GUINT64_FORMAT " sent", req->index, kind_info[req->kind].name,
             offset + size, limit);

  for (gsize i = 0; i < size; i++)
    {
      guint8 expected;

      if (req->kind == KIND_HELLO)
        expected = (guint8) hello[offset + i];
      else if (req->kind == KIND_STALL)
        expected = (guint8) stall[offset + i];
      else if (fill != 0)
        expected = fill;
      else
        expected = test_pattern_byte (offset + i);

      if (data[i] != expected)
        g_error ("request %u (%s): body byte %" G_GUINT64_FORMAT " is 0x%02x, "
                 "expected 0x%02x (data lost, repeated or reordered)",
                 req->index, kind_info[req->kind].name, offset + i, data[i], expected);
    }
}

static void
stress_on_response_data (DispatchHandler           *handler,
                         DispatchRequestController *controller,
                         GBytes                    *chunk)
{
  Req *req = handler_check (handler, controller, "data");
  const guint8 *data;
  gsize size;
  gboolean gate;
  gboolean gate_in_context;
  guint64 gate_seq;

  if (req->n_response_start != 1)
    {
      g_autofree char *state = req_describe (req);

      g_error ("data before response-start: %s", state);
    }

  g_mutex_lock (&req->lock);
  gate = req->gate;
  gate_in_context = req->gate_in_context;
  gate_seq = req->gate_seq;
  g_mutex_unlock (&req->lock);

  /* A pause() that returned before the previous callback of this request
   * ended (or one made in the dispatch context) surely preceded the
   * library's decision to deliver this chunk: the chunk breaks "once
   * pause() has returned, no data until resume". A pause() that returned
   * later may have come after that decision (the library checks, then
   * calls us): that is the unavoidable window of an off-thread pause,
   * counted, not failed. */
  if (gate)
    {
      if (gate_in_context || gate_seq < req->last_exit_seq)
        {
          g_autofree char *state = req_describe (req);

          g_error ("on_response_data (%" G_GSIZE_FORMAT " bytes) while paused: the "
                   "pause() (from %s) returned before the previous callback ended "
                   "(pause at seq %" G_GUINT64_FORMAT ", callback end at seq %"
                   G_GUINT64_FORMAT "); %s",
                   g_bytes_get_size (chunk),
                   gate_in_context ? "the dispatch context" : "another thread",
                   gate_seq, req->last_exit_seq, state);
        }

      if (req->stress == NULL)
        g_error ("request %u: gate without a stress round", req->index);
    }

  data = g_bytes_get_data (chunk, &size);
  g_assert_cmpuint (size, >, 0);
  check_chunk (req, data, size);
  req->received += size;
  req->n_chunks++;

  if (gate && req->stress != NULL)
    g_atomic_int_inc ((int *) &req->stress->ambiguous);

  if (req->self_pausing && req->resume_source == NULL &&
      g_random_int_range (0, 4) == 0)
    context_pause (req);

  req->last_exit_seq = seq_next ();
}

static void
req_finish (Req          *req,
            const GError *error)
{
  if (req->resume_source != NULL)
    {
      g_source_destroy (req->resume_source);
      g_clear_pointer (&req->resume_source, g_source_unref);
    }

  /* the controller is marked finished before the terminal callback */
  g_assert_true (dispatch_request_controller_get_finished (req->controller));

  req->n_terminal++;
  req->done = TRUE;
  if (error != NULL)
    req->error = g_error_copy (error);

  req->done_func (req, error);
}

static void
stress_on_response_end (DispatchHandler           *handler,
                        DispatchRequestController *controller,
                        DispatchHeaders           *trailers)
{
  Req *req = handler_check (handler, controller, "end");

  if (req->n_response_start != 1)
    {
      g_autofree char *state = req_describe (req);

      g_error ("end without response-start: %s", state);
    }
  g_assert_nonnull (trailers);

  req_finish (req, NULL);
}

static void
stress_on_response_error (DispatchHandler           *handler,
                          DispatchRequestController *controller,
                          const GError              *error)
{
  Req *req = handler_check (handler, controller, "error");

  g_assert_nonnull (error);
  req_finish (req, error);
}

static void
stress_handler_iface_init (DispatchHandlerInterface *iface)
{
  iface->on_request_start = stress_on_request_start;
  iface->on_response_informational = stress_on_response_informational;
  iface->on_response_start = stress_on_response_start;
  iface->on_response_data = stress_on_response_data;
  iface->on_response_end = stress_on_response_end;
  iface->on_response_error = stress_on_response_error;
}

/* ------------------------------------------------------------------------
 * The mixed load
 * ------------------------------------------------------------------------ */

static void
context_pause (Req *req)
{
  GSource *source;

  req_pause (req, TRUE);
  if (req->stress != NULL)
    req->stress->context_pauses++;

  if (req->resume_source != NULL)
    return;

  source = g_timeout_source_new (g_random_int_range (1, 4));
  g_source_set_name (source, "[test-stress] resume");
  g_source_set_callback (source, context_resume_cb, req_ref (req),
                         (GDestroyNotify) req_unref);
  g_source_attach (source, g_main_context_get_thread_default ());
  req->resume_source = source;
}

static Req *
stress_pick (Stress *stress,
             GRand  *rand)
{
  Req *req = NULL;

  g_mutex_lock (&stress->live_lock);
  if (stress->live->len > 0)
    req = req_ref (g_ptr_array_index (stress->live,
                                      g_rand_int_range (rand, 0, stress->live->len)));
  g_mutex_unlock (&stress->live_lock);

  return req;
}

static gpointer
storm_thread_func (gpointer data)
{
  Stress *stress = data;
  g_autoptr(GRand) rand = g_rand_new ();

  while (!g_atomic_int_get (&stress->stop))
    {
      Req *req = stress_pick (stress, rand);
      guint r = (guint) g_rand_int_range (rand, 0, 1000);
      StormOp op;

      if (req == NULL)
        {
          g_thread_yield ();
          continue;
        }

      /* resumes outnumber pauses so that nothing stays paused long */
      if (r < 400)
        op = OP_PAUSE;
      else if (r < 900)
        op = OP_RESUME;
      else if (r < 903)
        op = OP_ABORT;
      else
        op = OP_QUERY;

      switch (op)
        {
        case OP_PAUSE:
          req_pause (req, FALSE);
          break;

        case OP_RESUME:
          req_resume (req);
          break;

        case OP_ABORT:
          g_mutex_lock (&req->lock);
          if (!req->storm_abort)
            {
              req->storm_abort = TRUE;
              req->storm_abort_time = g_get_monotonic_time ();
            }
          g_mutex_unlock (&req->lock);
          dispatch_request_controller_abort (req->controller, stress->storm_reason);
          break;

        case OP_QUERY:
        case N_OPS:
        default:
          /* read-only calls, for the sanitizers */
          (void) dispatch_request_controller_get_paused (req->controller);
          (void) dispatch_request_controller_get_finished (req->controller);
          if (dispatch_request_controller_get_aborted (req->controller))
            (void) dispatch_request_controller_get_reason (req->controller);
          (void) dispatch_request_controller_get_cancellable (req->controller);
          break;
        }

      g_atomic_int_inc (&stress->storm_ops[op]);
      req_unref (req);

      /* Pacing, not synchronisation: leave the two CPUs to the dispatch
       * thread and the servers part of the time. */
      g_usleep (g_rand_int_range (rand, 0, 200));
    }

  return NULL;
}

static void
stress_unlist (Stress *stress,
               Req    *req)
{
  Req *last;

  g_mutex_lock (&stress->live_lock);
  g_assert_true (g_ptr_array_index (stress->live, req->live_index) == req);
  last = g_ptr_array_index (stress->live, stress->live->len - 1);
  g_ptr_array_remove_index_fast (stress->live, req->live_index);
  if (last != req)
    last->live_index = req->live_index;
  g_mutex_unlock (&stress->live_lock);

  req_unref (req);  /* the list's */
}

static void
stress_req_done (Req          *req,
                 const GError *error)
{
  Stress *stress = req->stress;
  const KindInfo *info = &kind_info[req->kind];
  gboolean storm_abort;
  gint64 storm_abort_time;

  g_mutex_lock (&req->lock);
  storm_abort = req->storm_abort;
  storm_abort_time = req->storm_abort_time;
  g_mutex_unlock (&req->lock);

  if (error != NULL)
    {
      if (error->domain != DISPATCH_ERROR)
        {
          g_autofree char *state = req_describe (req);

          g_error ("error outside DISPATCH_ERROR: %s:%d %s; %s",
                   g_quark_to_string (error->domain), error->code, error->message, state);
        }

      if (error->code == DISPATCH_ERROR_ABORTED)
        {
          gint64 latency = g_get_monotonic_time () - storm_abort_time;

          if (!storm_abort)
            g_error ("request %u (%s): ABORTED, but nobody aborted it", req->index,
                     info->name);
          g_assert_cmpstr (error->message, ==, stress->storm_reason->message);
          g_assert_true (dispatch_request_controller_get_aborted (req->controller));

          stress->storm_aborts_won++;
          stress->max_abort_latency = MAX (stress->max_abort_latency, latency);
          if (latency > ABORT_LATENCY_USEC)
            g_error ("request %u (%s): abort() took %" G_GINT64_FORMAT " µs to be "
                     "delivered", req->index, info->name, latency);
        }
      else if (error->code != info->error && error->code != info->alt_error)
        {
          g_autofree char *state = req_describe (req);

          g_error ("unexpected error %d \"%s\" (expected %d): %s", error->code,
                   error->message, info->error, state);
        }
    }
  else
    {
      guint status = 200;
      guint64 length = req->size;

      if (info->error != -1)
        {
          g_autofree char *state = req_describe (req);

          g_error ("success where error %d was expected: %s", info->error, state);
        }

      if (req->kind == KIND_HELLO)
        length = 13;
      else if (req->kind == KIND_EMPTY)
        {
          status = 204;
          length = 0;
        }

      if (req->status != status || req->received != length)
        {
          g_autofree char *state = req_describe (req);

          g_error ("success with status %u and %" G_GUINT64_FORMAT " bytes, expected "
                   "%u and %" G_GUINT64_FORMAT ": %s", req->status, req->received,
                   status, length, state);
        }
    }

  stress->outcomes[req->kind][error != NULL ? error->code + 1 : 0]++;
  stress->bytes += req->received;
  stress->completed++;
  stress->in_flight--;

  stress_unlist (stress, req);
}

static void
stress_dispatch_one (Stress *stress)
{
  g_autoptr(DispatchRequest) request = NULL;
  g_autoptr(DispatchHandler) handler = NULL;
  g_autofree char *path = NULL;
  guint pick = (guint) g_rand_int_range (stress->rand, 0, 100);
  Kind kind = KIND_HELLO;
  const char *origin;
  Req *req;

  for (guint k = 0; k < N_MIXED_KINDS; k++)
    {
      if (pick < kind_info[k].weight)
        {
          kind = k;
          break;
        }
      pick -= kind_info[k].weight;
    }

  req = req_new (kind);
  req->stress = stress;
  req->index = stress->dispatched;
  req->done_func = stress_req_done;
  req->self_pausing = g_rand_int_range (stress->rand, 0, 4) == 0;

  switch (kind)
    {
    case KIND_HELLO:
      path = g_strdup ("/hello");
      break;
    case KIND_EMPTY:
      path = g_strdup ("/empty");
      break;
    case KIND_PATTERN:
    case KIND_PATTERN_CHUNKED:
      req->size = (guint64) g_rand_int_range (stress->rand, 1, 256 * 1024);
      path = g_strdup_printf ("/pattern%s?size=%" G_GUINT64_FORMAT,
                              kind == KIND_PATTERN_CHUNKED ? "-chunked" : "", req->size);
      break;
    case KIND_TRICKLE:
      req->size = (guint64) g_rand_int_range (stress->rand, 1, 6);
      path = g_strdup_printf ("/trickle?ms=5&count=%" G_GUINT64_FORMAT, req->size);
      break;
    case KIND_STALL:
      path = g_strdup ("/stall");
      break;
    case KIND_RST:
      path = g_strdup ("/rst");
      break;
    case KIND_CLOSE_MID_BODY:
      path = g_strdup ("/close-mid-body");
      break;
    case KIND_SHORT_CL:
      path = g_strdup ("/short-cl");
      break;
    case KIND_STALL_AFTER:
    case N_KINDS:
    default:
      g_assert_not_reached ();
    }

  origin = kind_info[kind].fault ? stress->fault_origin : stress->origin;
  request = dispatch_request_new ("GET", origin, path);
  if (kind == KIND_STALL)
    {
      /* the body timeout does not run while paused, and the storms pause
       * often: the whole-request timeout bounds its life */
      dispatch_request_set_body_timeout (request, g_rand_int_range (stress->rand, 20, 100));
      dispatch_request_set_timeout (request, 250);
    }

  handler = stress_handler_new (req);
  req->controller = dispatch_dispatcher_dispatch (stress->agent, request, handler);
  g_assert_true (DISPATCH_IS_REQUEST_CONTROLLER (req->controller));

  g_mutex_lock (&stress->live_lock);
  req->live_index = stress->live->len;
  g_ptr_array_add (stress->live, req);  /* takes the first reference */
  g_mutex_unlock (&stress->live_lock);

  stress->dispatched++;
  stress->in_flight++;
  stress->max_in_flight = MAX (stress->max_in_flight, stress->in_flight);
}

static void
stress_fail_stuck (Stress *stress)
{
  GString *text = g_string_new (NULL);

  g_mutex_lock (&stress->live_lock);
  for (guint i = 0; i < stress->live->len && i < 20; i++)
    {
      g_autofree char *state = req_describe (g_ptr_array_index (stress->live, i));

      g_string_append_printf (text, "\n  %s", state);
    }
  g_mutex_unlock (&stress->live_lock);

  g_error ("the round did not finish within %d s: %u of %u done, %u in flight:%s",
           (int) (ROUND_DEADLINE_USEC / G_USEC_PER_SEC), stress->completed,
           stress->n_requests, stress->in_flight, text->str);
}

static const char *
error_name (int code)
{
  GEnumClass *klass = g_type_class_ref (DISPATCH_TYPE_ERROR);
  GEnumValue *value = g_enum_get_value (klass, code);
  const char *name = value != NULL ? value->value_nick : "?";

  g_type_class_unref (klass);  /* static type: the nick stays valid */
  return name;
}

/* One round: a fresh agent, n_requests requests, the storms, then close,
 * destroy and unref the agent. Returns the wall time in µs. */
static gint64
stress_round (const char *origin,
              const char *fault_origin,
              guint       n_requests,
              gboolean    report)
{
  Stress stress = { 0 };
  GSource *wake;
  gint64 start = g_get_monotonic_time ();
  gint64 elapsed;

  stress.origin = origin;
  stress.fault_origin = fault_origin;
  stress.n_requests = n_requests;
  stress.context = g_main_context_ref_thread_default ();
  stress.rand = g_rand_new ();
  stress.live = g_ptr_array_new ();
  g_mutex_init (&stress.live_lock);
  stress.storm_reason = g_error_new_literal (DISPATCH_ERROR, DISPATCH_ERROR_ABORTED,
                                             "stress: aborted by a storm thread");
  stress.agent = g_object_new (DISPATCH_TYPE_AGENT,
                               /* TestServer listens with GSocket's default
                                * backlog of 10: a burst of more connects
                                * than that overflows it (a dropped SYN
                                * costs 1 s), so not too many */
                               "connections", 16,
                               NULL);

  for (guint i = 0; i < N_STORMS; i++)
    stress.storms[i] = g_thread_new ("storm", storm_thread_func, &stress);

  /* rechecks the deadline even if nothing happens */
  wake = g_timeout_source_new (100);
  g_source_set_name (wake, "[test-stress] deadline");
  g_source_set_callback (wake, wake_cb, NULL, NULL);
  g_source_attach (wake, stress.context);

  while (stress.completed < n_requests)
    {
      while (stress.in_flight < MAX_IN_FLIGHT && stress.dispatched < n_requests)
        stress_dispatch_one (&stress);

      if (g_get_monotonic_time () - start > ROUND_DEADLINE_USEC)
        stress_fail_stuck (&stress);

      g_main_context_iteration (stress.context, TRUE);
    }

  g_atomic_int_set (&stress.stop, TRUE);
  for (guint i = 0; i < N_STORMS; i++)
    g_thread_join (stress.storms[i]);

  g_source_destroy (wake);
  g_source_unref (wake);

  elapsed = g_get_monotonic_time () - start;

  /* Every dispatch got exactly one terminal callback (req_finish fails on
   * a second one), and nothing is left listed. */
  g_assert_cmpuint (stress.completed, ==, n_requests);
  g_assert_cmpuint (stress.dispatched, ==, n_requests);
  g_assert_cmpuint (stress.in_flight, ==, 0);
  g_assert_cmpuint (stress.live->len, ==, 0);

  /* Late callbacks would fail in handler_check: give them a chance. */
  test_iterate_for (100);

  close_destroy_unref (stress.agent);
  test_iterate_for (100);

  if (report)
    {
      g_test_message ("%u requests in %.1f s, at most %u in flight, %" G_GUINT64_FORMAT
                      " body bytes", n_requests, elapsed / (double) G_USEC_PER_SEC,
                      stress.max_in_flight, stress.bytes);
      g_test_message ("storm ops: %d pause, %d resume, %d abort, %d query; "
                      "%u aborts delivered (slowest %.1f ms); %u pauses in the dispatch "
                      "context; %d chunks inside an off-thread pause's race window",
                      stress.storm_ops[OP_PAUSE], stress.storm_ops[OP_RESUME],
                      stress.storm_ops[OP_ABORT], stress.storm_ops[OP_QUERY],
                      stress.storm_aborts_won, stress.max_abort_latency / 1000.0,
                      stress.context_pauses, stress.ambiguous);
      for (guint k = 0; k < N_MIXED_KINDS; k++)
        {
          GString *line = g_string_new (NULL);

          for (guint o = 0; o < N_OUTCOMES; o++)
            {
              if (stress.outcomes[k][o] == 0)
                continue;
              if (o == 0)
                g_string_append_printf (line, " ok=%u", stress.outcomes[k][o]);
              else
                g_string_append_printf (line, " error-%s=%u", error_name (o - 1),
                                        stress.outcomes[k][o]);
            }
          g_test_message ("  %-16s%s", kind_info[k].name, line->str);
          g_string_free (line, TRUE);
        }
    }

  g_error_free (stress.storm_reason);
  g_mutex_clear (&stress.live_lock);
  g_ptr_array_unref (stress.live);
  g_rand_free (stress.rand);
  g_main_context_unref (stress.context);

  return elapsed;
}

static guint
stress_request_count (void)
{
  const char *env = g_getenv ("DISPATCH_STRESS_REQUESTS");

  if (env != NULL && *env != '\0')
    return (guint) g_ascii_strtoull (env, NULL, 10);

  if (test_under_valgrind ())
    return VALGRIND_REQUESTS;

  return test_under_sanitizer () ? SANITIZER_REQUESTS : STRESS_REQUESTS;
}


static void
test_mixed_load (void)
{
  static const char * const names[] = { "TestServer", "TestFaultServer" };
  TestServerProcess *servers;
  const char *origin;
  const char *fault_origin;
  guint n_requests = stress_request_count ();
  guint16 ports[2];
  guint fds_start;
  guint fds_baseline;
  guint fds_end;
  gsize rss_baseline;
  gsize rss_end;
  gssize rss_growth;

  g_test_summary ("10 000 requests (normal, slow, stalled, reset and truncated "
                  "bodies; at most 64 in flight) while 3 threads pause, resume and "
                  "abort random in-flight requests: one terminal callback each, no "
                  "data while paused; once the agent is gone the fd count is back to "
                  "its baseline and RSS within 8 MiB of it");

  /* the measured rounds talk to a TestServer and a TestFaultServer in a
   * child process, so the fd and memory figures are the client's alone */
  servers = test_server_process_new (TEST_SERVE_FAULT_SERVER);
  origin = test_server_process_get_origin (servers);
  fault_origin = test_server_process_get_fault_origin (servers);
  ports[0] = origin_port (origin);
  ports[1] = origin_port (fault_origin);

  /* Warm-up: lazily created state (GIO modules, thread pools, malloc
   * arenas, per-thread read buffers, cached thread stacks) exists before
   * the baseline is taken. */
  /* A few requests first: state created once (an eventfd, GLib's and
   * libsoup's singletons) is then there when the count starts. */
  stress_round (origin, fault_origin, 20, FALSE);
  fds_start = test_fd_count ();
  stress_round (origin, fault_origin, MIN (WARMUP_REQUESTS, n_requests), FALSE);
  fds_baseline = test_settle_fds (fds_start, FD_SETTLE_MS);
  rss_baseline = test_rss_bytes ();

  stress_round (origin, fault_origin, n_requests, TRUE);

  /* the agent is gone: its sockets close (libsoup may defer a close to
   * an idle callback, hence the iterations) */
  fds_end = test_settle_fds (fds_baseline, FD_SETTLE_MS);
  rss_end = test_rss_bytes ();
  rss_growth = (gssize) rss_end - (gssize) rss_baseline;

  g_test_message ("fds: %u before the warm-up round, baseline %u after it (%u "
                  "requests), %u after the measured round's agent is gone", fds_start,
                  fds_baseline, MIN (WARMUP_REQUESTS, n_requests), fds_end);
  g_test_message ("RSS: baseline %.2f MiB, after the agent is gone %.2f MiB "
                  "(%+.2f MiB; budget %d MiB)",
                  rss_baseline / 1048576.0, rss_end / 1048576.0,
                  rss_growth / 1048576.0, RSS_BUDGET / (1024 * 1024));

  if (fds_end != fds_baseline)
    {
      g_autofree char *fds = describe_fds (ports, names, G_N_ELEMENTS (ports), NULL);

      g_test_message ("open fds:%s", fds);
    }
  g_assert_cmpuint (fds_end, ==, fds_baseline);
  if (test_under_sanitizer () || test_under_valgrind ())
    g_test_message ("RSS not checked under a sanitizer or valgrind");
  else
    g_assert_cmpint (rss_growth, <, RSS_BUDGET);

  test_server_process_free (servers);
}

/* ------------------------------------------------------------------------
 * Many threads on one controller
 * ------------------------------------------------------------------------ */

#define SAME_THREADS    8
#define STORM_RUN_USEC  (G_USEC_PER_SEC)
#define SAME_SIZE       (G_GUINT64_CONSTANT (1) << 30)  /* 1 GiB, then stalls */

static void
single_done (Req          *req,
             const GError *error)
{
}

/* A single request on `agent` with a StressHandler; *req_out gets a ref. */
static DispatchRequestController *
single_start (DispatchDispatcher *agent,
              const char         *origin,
              const char         *path,
              Kind                kind,
              guint64             size,
              Req               **req_out)
{
  g_autoptr(DispatchRequest) request = dispatch_request_new ("GET", origin, path);
  g_autoptr(DispatchHandler) handler = NULL;
  Req *req = req_new (kind);

  req->size = size;
  req->done_func = single_done;
  handler = stress_handler_new (req);
  req->controller = dispatch_dispatcher_dispatch (agent, request, handler);
  *req_out = req;

  return g_object_ref (req->controller);
}

typedef struct
{
  DispatchRequestController *controller;
  GMainContext              *context;
  GCancellable              *cancellable;  /* bounds every wait_if_paused */
  GError                    *reasons[SAME_THREADS];

  int                        go;             /* atomic: storm */
  int                        stop;           /* atomic: storm over */
  int                        stopped;        /* atomic: threads out of it */
  int                        go_abort;       /* atomic */
  int                        exited;         /* atomic */

  /* per thread, read after `exited` */
  guint                      ops[SAME_THREADS];
  guint                      waits_true[SAME_THREADS];
  guint                      waits_false[SAME_THREADS];
  GError                    *wait_errors[SAME_THREADS];  /* first FALSE */
  gboolean                   aborted_seen[SAME_THREADS];
  gboolean                   reason_missing[SAME_THREADS];
  gboolean                   final_wait[SAME_THREADS];
  GError                    *final_error[SAME_THREADS];
} SameStorm;

typedef struct
{
  SameStorm *storm;
  guint      index;
} SameThread;

static void
spin_until (const int *flag)
{
  /* a start barrier: the threads are released together */
  while (!g_atomic_int_get (flag))
    g_thread_yield ();
}

static gpointer
same_thread_func (gpointer data)
{
  SameThread *self = data;
  SameStorm *storm = self->storm;
  guint i = self->index;
  g_autoptr(GRand) rand = g_rand_new ();
  GError *error = NULL;

  spin_until (&storm->go);

  while (!g_atomic_int_get (&storm->stop))
    {
      guint r = (guint) g_rand_int_range (rand, 0, 100);

      if (r < 45)
        dispatch_request_controller_pause (storm->controller);
      else if (r < 90)
        dispatch_request_controller_resume (storm->controller);
      else if (r < 95)
        {
          /* blocks until some other thread resumes */
          if (dispatch_request_controller_wait_if_paused (storm->controller,
                                                          storm->cancellable, &error))
            storm->waits_true[i]++;
          else
            {
              storm->waits_false[i]++;
              if (storm->wait_errors[i] == NULL)
                storm->wait_errors[i] = g_steal_pointer (&error);
              g_clear_error (&error);
            }
        }
      else
        {
          (void) dispatch_request_controller_get_paused (storm->controller);
          (void) dispatch_request_controller_get_aborted (storm->controller);
          (void) dispatch_request_controller_get_finished (storm->controller);
        }
      storm->ops[i]++;
    }

  /* Nobody is left to resume: leave the request resumed so that no
   * thread stays in wait_if_paused, then all abort at once. */
  dispatch_request_controller_resume (storm->controller);
  g_atomic_int_inc (&storm->stopped);
  spin_until (&storm->go_abort);

  dispatch_request_controller_abort (storm->controller, storm->reasons[i]);

  /* After abort() returned the request counts as aborted, with the
   * winner's reason. */
  storm->aborted_seen[i] = dispatch_request_controller_get_aborted (storm->controller);
  storm->reason_missing[i] = dispatch_request_controller_get_reason (storm->controller) == NULL;

  /* A pause after the abort: wait_if_paused must not block for ever; it
   * returns FALSE with the request's error once that is known. */
  if (i % 2 == 0)
    dispatch_request_controller_pause (storm->controller);
  storm->final_wait[i] = dispatch_request_controller_wait_if_paused (storm->controller,
                                                                     storm->cancellable,
                                                                     &storm->final_error[i]);

  g_atomic_int_inc (&storm->exited);
  g_main_context_wakeup (storm->context);

  return NULL;
}

static gboolean
all_stopped (gpointer user_data)
{
  SameStorm *storm = user_data;

  return g_atomic_int_get (&storm->stopped) == SAME_THREADS;
}

static gboolean
all_exited (gpointer user_data)
{
  SameStorm *storm = user_data;

  return g_atomic_int_get (&storm->exited) == SAME_THREADS;
}

static gboolean
req_is_done (gpointer user_data)
{
  Req *req = user_data;

  return req->done;
}

static gboolean
storm_time_over_cb (gpointer user_data)
{
  SameStorm *storm = user_data;

  g_atomic_int_set (&storm->stop, TRUE);
  return G_SOURCE_REMOVE;
}

static gboolean
req_has_body (gpointer user_data)
{
  Req *req = user_data;

  return req->received > 0;
}

/* Waits (bounded) until every thread left the storm; keeps resuming
 * meanwhile, so that a thread that paused and then waits on its own pause
 * is released. */
static gboolean
resume_until_stopped (gpointer user_data)
{
  SameStorm *storm = user_data;

  dispatch_request_controller_resume (storm->controller);
  return all_stopped (storm);
}

static gboolean
storm_over (gpointer user_data)
{
  SameStorm *storm = user_data;
  Req *req = g_object_get_data (G_OBJECT (storm->cancellable), "req");

  return all_exited (storm) && req->done;
}

static void
test_storm_same_request (void)
{
  TestServer *server = test_server_new ();
  DispatchDispatcher *agent = DISPATCH_DISPATCHER (dispatch_agent_new ());
  g_autofree char *path = g_strdup_printf ("/stall-after?bytes=%" G_GUINT64_FORMAT,
                                           SAME_SIZE);
  g_autoptr(Req) req = NULL;
  SameStorm storm = { 0 };
  SameThread threads[SAME_THREADS];
  GThread *handles[SAME_THREADS];
  guint64 received_before;
  guint64 received_storm;
  guint total_ops = 0;
  guint total_true = 0;
  guint total_false = 0;
  const GError *reason;
  guint winner = SAME_THREADS;

  g_test_summary ("8 threads at once pause, resume, wait_if_paused and query one "
                  "streaming request for 1 s, then all abort it together: one "
                  "terminal error carrying the winner's reason, get_reason() agrees, "
                  "the body is an intact prefix of what was sent, no thread is left "
                  "blocked");

  storm.context = g_main_context_ref_thread_default ();
  storm.cancellable = g_cancellable_new ();
  storm.controller = single_start (agent, test_server_get_origin (server), path,
                                   KIND_STALL_AFTER, SAME_SIZE, &req);
  g_object_set_data (G_OBJECT (storm.cancellable), "req", req);

  for (guint i = 0; i < SAME_THREADS; i++)
    {
      storm.reasons[i] = g_error_new (G_IO_ERROR, G_IO_ERROR_FAILED,
                                      "aborted by storm thread %u", i);
      threads[i].storm = &storm;
      threads[i].index = i;
      handles[i] = g_thread_new ("same-storm", same_thread_func, &threads[i]);
    }

  /* the storm hits a request that is streaming */
  wait_until (req_has_body, req, TEST_WAIT_MS, "the first body bytes");
  received_before = req->received;

  g_atomic_int_set (&storm.go, TRUE);
  g_timeout_add_once (STORM_RUN_USEC / 1000, (GSourceOnceFunc) storm_time_over_cb, &storm);
  wait_until (resume_until_stopped, &storm, STORM_RUN_USEC / 1000 + TEST_WAIT_MS,
              "every storm thread leaving the storm");
  received_storm = req->received - received_before;
  g_assert_false (req->done);

  g_atomic_int_set (&storm.go_abort, TRUE);
  {
    gint64 deadline = g_get_monotonic_time () + TEST_WAIT_MS * 1000;

    while (!storm_over (&storm) && g_get_monotonic_time () < deadline)
      test_iterate_for (5);
    if (!storm_over (&storm))
      {
        g_autofree char *state = req_describe (req);

        /* release whoever still waits, so the report is not a hang */
        g_cancellable_cancel (storm.cancellable);
        g_error ("after the abort storm: %d of %d threads returned; %s",
                 g_atomic_int_get (&storm.exited), SAME_THREADS, state);
      }
  }

  for (guint i = 0; i < SAME_THREADS; i++)
    g_thread_join (handles[i]);

  /* Late callbacks would fail in handler_check. */
  test_iterate_for (100);

  /* One terminal error, one of the reasons, the same as get_reason(). */
  g_assert_true (req->done);
  g_assert_cmpuint (req->n_terminal, ==, 1);
  g_assert_error (req->error, G_IO_ERROR, G_IO_ERROR_FAILED);
  for (guint i = 0; i < SAME_THREADS; i++)
    if (g_str_equal (req->error->message, storm.reasons[i]->message))
      winner = i;
  g_assert_cmpuint (winner, <, SAME_THREADS);
  reason = dispatch_request_controller_get_reason (storm.controller);
  g_assert_nonnull (reason);
  g_assert_cmpstr (reason->message, ==, req->error->message);
  g_assert_true (dispatch_request_controller_get_aborted (storm.controller));
  g_assert_true (dispatch_request_controller_get_finished (storm.controller));

  for (guint i = 0; i < SAME_THREADS; i++)
    {
      total_ops += storm.ops[i];
      total_true += storm.waits_true[i];
      total_false += storm.waits_false[i];

      /* while streaming, nothing but a resume may end a wait */
      if (storm.wait_errors[i] != NULL)
        g_error ("thread %u: wait_if_paused() failed during the storm: %s", i,
                 storm.wait_errors[i]->message);

      /* after its own abort() returned, every thread sees the request
       * aborted, and the reason */
      g_assert_true (storm.aborted_seen[i]);
      if (storm.reason_missing[i])
        g_error ("thread %u: get_reason() was NULL right after abort() returned "
                 "and get_aborted() was TRUE", i);

      /* even threads paused after aborting: their wait ends with the
       * winner's reason */
      if (i % 2 == 0)
        g_assert_false (storm.final_wait[i]);
      if (!storm.final_wait[i])
        {
          g_assert_error (storm.final_error[i], G_IO_ERROR, G_IO_ERROR_FAILED);
          g_assert_cmpstr (storm.final_error[i]->message, ==, req->error->message);
        }
      else
        g_assert_no_error (storm.final_error[i]);
    }

  g_test_message ("%u calls from %d threads; %u waits returned TRUE; %"
                  G_GUINT64_FORMAT " body bytes during the storm, %" G_GUINT64_FORMAT
                  " in all; thread %u won the abort",
                  total_ops, SAME_THREADS, total_true, received_storm, req->received,
                  winner);
  g_assert_cmpuint (total_false, ==, 0);
  g_assert_cmpuint (received_storm, >, 0);

  for (guint i = 0; i < SAME_THREADS; i++)
    {
      g_clear_error (&storm.reasons[i]);
      g_clear_error (&storm.wait_errors[i]);
      g_clear_error (&storm.final_error[i]);
    }
  g_object_unref (storm.controller);
  g_object_unref (storm.cancellable);
  g_main_context_unref (storm.context);
  close_destroy_unref (agent);
  test_server_free (server);
}

/* ------------------------------------------------------------------------
 * wait_if_paused: every blocked thread wakes
 * ------------------------------------------------------------------------ */

#define N_WAITERS 6
#define QUIET_MS  200

typedef enum {
  WAKE_RESUME,
  WAKE_ABORT,
  WAKE_TIMEOUT,
} WakeHow;

typedef struct
{
  DispatchRequestController *controller;
  GMainContext              *context;
  GCancellable              *cancellable;
  int                        entered;   /* atomic */
  int                        returned;  /* atomic */
  gboolean                   results[N_WAITERS];
  GError                    *errors[N_WAITERS];
} Waiters;

typedef struct
{
  Waiters *waiters;
  guint    index;
} Waiter;

static gpointer
waiter_func (gpointer data)
{
  Waiter *self = data;
  Waiters *waiters = self->waiters;

  g_atomic_int_inc (&waiters->entered);
  waiters->results[self->index] =
    dispatch_request_controller_wait_if_paused (waiters->controller,
                                                waiters->cancellable,
                                                &waiters->errors[self->index]);
  g_atomic_int_inc (&waiters->returned);
  g_main_context_wakeup (waiters->context);

  return NULL;
}

static gboolean
waiters_entered (gpointer user_data)
{
  Waiters *waiters = user_data;

  return g_atomic_int_get (&waiters->entered) == N_WAITERS;
}

static gboolean
waiters_returned (gpointer user_data)
{
  Waiters *waiters = user_data;

  return g_atomic_int_get (&waiters->returned) == N_WAITERS;
}

static gpointer
resume_thread_func (gpointer data)
{
  req_resume (data);  /* the gate goes down, then resume() */
  return NULL;
}

static gpointer
abort_thread_func (gpointer data)
{
  DispatchRequestController *controller = data;
  const GError *reason = g_object_get_data (G_OBJECT (controller), "test-reason");

  dispatch_request_controller_abort (controller, reason);
  return NULL;
}

static gboolean
req_has_hello (gpointer user_data)
{
  Req *req = user_data;

  return req->received == 5;
}

static gboolean
req_has_response_start (gpointer user_data)
{
  Req *req = user_data;

  return req->n_response_start == 1;
}

static void
test_wait_if_paused_wakes_all (gconstpointer data)
{
  WakeHow how = GPOINTER_TO_INT (data);
  TestServer *server = test_server_new ();
  DispatchDispatcher *agent = DISPATCH_DISPATCHER (dispatch_agent_new ());
  g_autoptr(DispatchRequest) request = NULL;
  g_autoptr(DispatchHandler) handler = NULL;
  g_autoptr(GError) reason = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED,
                                                   "the waiters' abort");
  Req *req = req_new (KIND_STALL);
  Waiters waiters = { 0 };
  Waiter slots[N_WAITERS];
  GThread *threads[N_WAITERS];
  GThread *late;
  Waiters late_waiter = { 0 };
  Waiter late_slot = { &late_waiter, 0 };

  g_test_summary (how == WAKE_RESUME ?
                  "6 threads blocked in wait_if_paused() on a request paused in "
                  "on_response_start: one resume() from another thread wakes them "
                  "all, each returns TRUE; the body then arrives" :
                  how == WAKE_ABORT ?
                  "6 threads blocked in wait_if_paused(): one abort() from another "
                  "thread wakes them all, each returns FALSE with the abort reason; "
                  "a wait after the end returns that error at once" :
                  "6 threads blocked in wait_if_paused() on a paused request with a "
                  "300 ms whole-request timeout: the timeout wakes them all, each "
                  "returns FALSE with DISPATCH_ERROR_TIMEOUT");

  /* /stall: "hello", then nothing; paused at the response head, so the
   * request stays paused until we act */
  request = dispatch_request_new ("GET", test_server_get_origin (server), "/stall");
  if (how == WAKE_TIMEOUT)
    dispatch_request_set_timeout (request, 300);
  req->pause_at_start = TRUE;
  req->done_func = single_done;
  handler = stress_handler_new (req);
  req->controller = dispatch_dispatcher_dispatch (agent, request, handler);

  wait_until (req_has_response_start, req, TEST_WAIT_MS, "the response head");
  g_assert_true (dispatch_request_controller_get_paused (req->controller));

  waiters.controller = req->controller;
  waiters.context = g_main_context_ref_thread_default ();
  waiters.cancellable = g_cancellable_new ();
  for (guint i = 0; i < N_WAITERS; i++)
    {
      slots[i].waiters = &waiters;
      slots[i].index = i;
      threads[i] = g_thread_new ("waiter", waiter_func, &slots[i]);
    }

  /* all blocked: none returns while the request stays paused */
  wait_until (waiters_entered, &waiters, TEST_WAIT_MS, "every waiter starting");
  if (how != WAKE_TIMEOUT)
    {
      test_iterate_for (QUIET_MS);
      g_assert_cmpint (g_atomic_int_get (&waiters.returned), ==, 0);
      g_assert_cmpuint (req->received, ==, 0);
    }

  if (how == WAKE_RESUME)
    g_thread_join (g_thread_new ("resumer", resume_thread_func, req));
  else if (how == WAKE_ABORT)
    {
      g_object_set_data (G_OBJECT (req->controller), "test-reason", reason);
      g_thread_join (g_thread_new ("aborter", abort_thread_func, req->controller));
    }

  {
    gint64 deadline = g_get_monotonic_time () + TEST_WAIT_MS * 1000;

    while (!waiters_returned (&waiters) && g_get_monotonic_time () < deadline)
      test_iterate_for (5);
    if (!waiters_returned (&waiters))
      {
        g_cancellable_cancel (waiters.cancellable);
        g_error ("only %d of %d threads in wait_if_paused() woke up",
                 g_atomic_int_get (&waiters.returned), N_WAITERS);
      }
  }
  for (guint i = 0; i < N_WAITERS; i++)
    g_thread_join (threads[i]);

  for (guint i = 0; i < N_WAITERS; i++)
    {
      if (how == WAKE_RESUME)
        {
          g_assert_no_error (waiters.errors[i]);
          g_assert_true (waiters.results[i]);
        }
      else if (how == WAKE_ABORT)
        {
          g_assert_false (waiters.results[i]);
          g_assert_error (waiters.errors[i], G_IO_ERROR, G_IO_ERROR_FAILED);
          g_assert_cmpstr (waiters.errors[i]->message, ==, reason->message);
        }
      else
        {
          g_assert_false (waiters.results[i]);
          g_assert_error (waiters.errors[i], DISPATCH_ERROR, DISPATCH_ERROR_TIMEOUT);
        }
    }

  if (how == WAKE_RESUME)
    {
      /* resumed for real: the body comes */
      wait_until (req_has_hello, req, TEST_WAIT_MS, "the body after resume()");
      g_assert_false (req->done);
      dispatch_request_controller_abort (req->controller, NULL);
    }

  wait_until (req_is_done, req, TEST_WAIT_MS, "the terminal callback");
  if (how == WAKE_ABORT)
    {
      g_assert_error (req->error, G_IO_ERROR, G_IO_ERROR_FAILED);
      g_assert_cmpstr (req->error->message, ==, reason->message);
    }
  else if (how == WAKE_TIMEOUT)
    g_assert_error (req->error, DISPATCH_ERROR, DISPATCH_ERROR_TIMEOUT);
  else
    g_assert_error (req->error, DISPATCH_ERROR, DISPATCH_ERROR_ABORTED);

  /* A wait that starts after the request ended while paused returns its
   * error at once. */
  dispatch_request_controller_pause (req->controller);
  late_waiter.controller = req->controller;
  late_waiter.context = waiters.context;
  late_waiter.cancellable = waiters.cancellable;
  late = g_thread_new ("late-waiter", waiter_func, &late_slot);
  {
    gint64 deadline = g_get_monotonic_time () + TEST_WAIT_MS * 1000;

    while (g_atomic_int_get (&late_waiter.returned) == 0 &&
           g_get_monotonic_time () < deadline)
      test_iterate_for (5);
    if (g_atomic_int_get (&late_waiter.returned) == 0)
      {
        g_cancellable_cancel (waiters.cancellable);
        g_error ("wait_if_paused() after the end blocked");
      }
  }
  g_thread_join (late);
  g_assert_false (late_waiter.results[0]);
  g_assert_nonnull (late_waiter.errors[0]);
  g_assert_true (late_waiter.errors[0]->domain == req->error->domain);
  g_assert_cmpint (late_waiter.errors[0]->code, ==, req->error->code);
  g_assert_cmpstr (late_waiter.errors[0]->message, ==, req->error->message);

  test_iterate_for (50);
  g_assert_cmpuint (req->n_terminal, ==, 1);

  for (guint i = 0; i < N_WAITERS; i++)
    g_clear_error (&waiters.errors[i]);
  g_clear_error (&late_waiter.errors[0]);
  g_object_unref (waiters.cancellable);
  g_main_context_unref (waiters.context);
  req_unref (req);
  g_clear_object (&handler);
  close_destroy_unref (agent);
  test_server_free (server);
}

int
main (int   argc,
      char *argv[])
{
  if (test_serve_requested (argc, argv))
    return test_serve_main (argc, argv);

  test_init (&argc, &argv);

  g_test_add_func ("/stress/mixed-load", test_mixed_load);
  g_test_add_func ("/stress/controller/storm-same-request", test_storm_same_request);
  g_test_add_data_func ("/stress/controller/wait-if-paused/woken-by-resume",
                        GINT_TO_POINTER (WAKE_RESUME), test_wait_if_paused_wakes_all);
  g_test_add_data_func ("/stress/controller/wait-if-paused/woken-by-abort",
                        GINT_TO_POINTER (WAKE_ABORT), test_wait_if_paused_wakes_all);
  g_test_add_data_func ("/stress/controller/wait-if-paused/woken-by-timeout",
                        GINT_TO_POINTER (WAKE_TIMEOUT), test_wait_if_paused_wakes_all);

  return g_test_run ();
}
