/* dispatch-exchange.c — one dispatched request on the wire
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* An exchange drives one request through libsoup in its dispatch context
 * and guarantees the handler contract: on_request_start first, at most one
 * on_response_start, data only after it, exactly one terminal callback and
 * nothing after it.
 *
 * Everything here runs in the dispatch context. Other threads only reach
 * an exchange through its controller, which records the request (pause,
 * resume, a failure) with atomics and kicks the controller's source; that
 * source calls exchange_drive() here. The timers share one source per
 * context (dispatch-deadlines.c), where the exchange is queued at its
 * earliest armed deadline; it calls exchange_drive() too.
 *
 * The body is read by a non-blocking pump: g_pollable_input_stream_
 * read_nonblocking() into the thread's shared read buffer until
 * WOULD_BLOCK, then a pollable source. While paused no read is issued and
 * no source is attached, so nothing leaves the socket buffer.
 */

#include "config.h"

#include <string.h>

#include "dispatch-deadlines-private.h"
#include "dispatch-error.h"
#include "dispatch-exchange-hooks-private.h"
#include "dispatch-exchange-private.h"
#include "dispatch-headers-private.h"
#include "dispatch-request-controller-private.h"
#include "dispatch-request-private.h"
#include "dispatch-util-private.h"

/* Reads per pump run before yielding to the main loop, so that one fast
 * download cannot starve the other sources of its context. */
#define MAX_READS_PER_RUN 16

typedef enum {
  PHASE_QUEUED,
  PHASE_SENDING,
  PHASE_BODY,
  PHASE_DONE,
} Phase;

typedef enum {
  TIMER_TOTAL,
  TIMER_CONNECT,
  TIMER_HEADERS,
  TIMER_BODY,
  N_TIMERS
} Timer;

struct _DispatchExchange
{
  int                        ref_count;  /* dispatch context only */
  Phase                      phase;

  DispatchExchangeConfig     config;
  DispatchRequest           *request;
  DispatchHandler           *handler;
  /* the handler's vtable, looked up once: the exchange calls it directly
   * (the public wrappers type-check both arguments on every call) */
  DispatchHandlerInterface  *iface;
  DispatchRequestController *controller;
  /* Passed to soup_session_send_async() and only ever cancelled here, in
   * the dispatch context, before the response head arrived: libsoup 3.2
   * crashes if the send task is cancelled after it created the body
   * stream (the stream left in the task is closed after its I/O is gone). */
  GCancellable              *send_cancellable;
  GMainContext              *context;
  GObject                   *owner;
  DispatchExchangeDone       done;
  GError                    *rejection;

  SoupMessage               *msg;
  /* the view of msg's response head handed to on_response_start: made
   * independent of msg before msg goes back to the agent's pool */
  DispatchHeaders           *response_headers;
  GInputStream              *body;
  GPollableInputStream      *pollable;  /* the body, as a pollable stream */
  GSource                   *read_source;
  /* a chunk read just before a pause from another thread took effect;
   * delivered first on resume (at most one read buffer is ever held) */
  GBytes                    *held;

  gint64                     deadline[N_TIMERS];  /* monotonic µs, 0 = off */
  DispatchDeadlines         *deadlines;  /* the context's timer queue */
  DispatchDeadline           timer;      /* in it, at most at the earliest */
  guint                      timeout_ms[N_TIMERS];

  gint64                     max_response_size;   /* -1 = unlimited */
  gint64                     content_length;      /* -1 = unknown */
  guint64                    received;

  GList                      link;  /* in the owner's in-flight list */

  guint                      has_body : 1;  /* the request has one */
  guint                      send_pending : 1;
  guint                      started : 1;   /* on_request_start delivered */
  guint                      pumping : 1;
  guint                      yielded : 1;
  guint                      restarted : 1;  /* libsoup sent msg again */
};

static const DispatchError timer_errors[N_TIMERS] = {
  [TIMER_TOTAL] = DISPATCH_ERROR_TIMEOUT,
  [TIMER_CONNECT] = DISPATCH_ERROR_CONNECT_TIMEOUT,
  [TIMER_HEADERS] = DISPATCH_ERROR_HEADERS_TIMEOUT,
  [TIMER_BODY] = DISPATCH_ERROR_BODY_TIMEOUT,
};

static const char * const timer_names[N_TIMERS] = {
  [TIMER_TOTAL] = "request timeout",
  [TIMER_CONNECT] = "connect timeout",
  [TIMER_HEADERS] = "headers timeout",
  [TIMER_BODY] = "body timeout",
};

static void     exchange_drive (gpointer           data);
static gboolean exchange_begin (DispatchExchange  *self,
                                GError           **error);
static void     reschedule     (DispatchExchange  *self);
static void     exchange_pump  (DispatchExchange  *self);
static void     message_unbind (DispatchExchange  *self);

static DispatchExchange *
exchange_ref (DispatchExchange *self)
{
  self->ref_count++;
  return self;
}

static void
exchange_unref (DispatchExchange *self)
{
  if (--self->ref_count > 0)
    return;

  g_assert (self->read_source == NULL);
  g_assert (self->body == NULL);
  g_assert (self->held == NULL);
  g_assert (!_dispatch_deadline_is_queued (&self->timer));

  g_clear_pointer (&self->response_headers, dispatch_headers_unref);
  g_clear_object (&self->msg);
  g_clear_error (&self->rejection);
  g_clear_object (&self->send_cancellable);
  g_clear_object (&self->config.session);
  g_clear_object (&self->config.tls_certificate);
  g_clear_object (&self->request);
  g_clear_object (&self->handler);
  g_clear_object (&self->controller);
  g_clear_pointer (&self->deadlines, _dispatch_deadlines_unref);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_object (&self->owner);
  g_free (self);
}

static guint
resolve_timeout (int   request_value,
                 guint agent_value)
{
  return request_value >= 0 ? (guint) request_value : agent_value;
}

DispatchExchange *
_dispatch_exchange_new (const DispatchExchangeConfig *config,
                        DispatchRequest              *request,
                        DispatchHandler              *handler,
                        GMainContext                 *context,
                        DispatchExchangeDone          done,
                        GObject                      *owner)
{
  /* Not g_new0(): glibc's calloc() skips the per-thread cache that
   * malloc() serves a request's small blocks from. */
  DispatchExchange *self = g_new (DispatchExchange, 1);
  gint64 max_size;

  _dispatch_exchange_hooks_install ();

  *self = (DispatchExchange) {
    .ref_count = 1,
    .phase = PHASE_QUEUED,
  };
  self->config = *config;
  g_object_ref (self->config.session);
  if (self->config.tls_certificate != NULL)
    g_object_ref (self->config.tls_certificate);
  self->request = g_object_ref (request);
  self->handler = g_object_ref (handler);
  self->iface = DISPATCH_HANDLER_GET_IFACE (handler);
  self->context = g_main_context_ref (context);
  self->owner = g_object_ref (owner);
  self->done = done;
  self->link.data = self;
  self->controller = _dispatch_request_controller_new (context, exchange_drive, self);
  self->deadlines = _dispatch_deadlines_ref_for_context (context);
  self->timer = DISPATCH_DEADLINE_INIT (exchange_drive, self);

  self->timeout_ms[TIMER_TOTAL] =
    resolve_timeout (dispatch_request_get_timeout (request), config->timeout);
  self->timeout_ms[TIMER_CONNECT] = config->connect_timeout;
  self->timeout_ms[TIMER_HEADERS] =
    resolve_timeout (dispatch_request_get_headers_timeout (request), config->headers_timeout);
  self->timeout_ms[TIMER_BODY] =
    resolve_timeout (dispatch_request_get_body_timeout (request), config->body_timeout);

  max_size = dispatch_request_get_max_response_size (request);
  self->max_response_size = max_size == -2 ? config->max_response_size : max_size;
  self->content_length = -1;

  return self;
}

DispatchRequestController *
_dispatch_exchange_get_controller (DispatchExchange *self)
{
  return self->controller;
}

GList *
_dispatch_exchange_get_link (DispatchExchange *self)
{
  return &self->link;
}

void
_dispatch_exchange_reject (DispatchExchange *self,
                           GError           *error)
{
  g_assert (self->rejection == NULL);
  self->rejection = error;
}

void
_dispatch_exchange_start (DispatchExchange *self)
{
  GError *error = NULL;

  if (self->rejection == NULL && !exchange_begin (self, &error))
    self->rejection = error;

  /* A rejected request (closed agent, invalid, bad settings) fails from
   * the first run of the controller's source: never inside dispatch(). */
  if (self->rejection != NULL)
    _dispatch_request_controller_wake (self->controller);
  else
    reschedule (self);
}

/* Timers */

static void
arm_timer (DispatchExchange *self,
           Timer             timer)
{
  if (self->timeout_ms[timer] == 0)
    return;

  self->deadline[timer] = g_get_monotonic_time () + (gint64) self->timeout_ms[timer] * 1000;
}

static void
reschedule (DispatchExchange *self)
{
  gint64 next = -1;

  if (self->phase == PHASE_DONE)
    return;

  /* a pump run that stopped to let other sources run goes on at once */
  if (self->yielded)
    _dispatch_request_controller_wake (self->controller);

  for (guint i = 0; i < N_TIMERS; i++)
    if (self->deadline[i] != 0 && (next == -1 || self->deadline[i] < next))
      next = self->deadline[i];

  /* Only ever move the timer earlier: a deadline that moved later or went
   * away leaves it early; it then fires once, finds nothing due and is
   * queued again from here. */
  if (next != -1 &&
      (!_dispatch_deadline_is_queued (&self->timer) || next < self->timer.when))
    _dispatch_deadlines_set (self->deadlines, &self->timer, next);
}

/* Terminal paths */

static void
drop_read_source (DispatchExchange *self)
{
  if (self->read_source != NULL)
    {
      g_source_destroy (self->read_source);
      g_clear_pointer (&self->read_source, g_source_unref);
    }
}

static void
close_body (DispatchExchange *self)
{
  g_clear_pointer (&self->held, g_bytes_unref);
  drop_read_source (self);

  if (self->body != NULL)
    {
      /* Before EOF this does not drain the body: libsoup marks the
       * connection unusable and drops it. After EOF it hands the
       * connection back to the pool. */
      g_input_stream_close (self->body, NULL, NULL);
      g_clear_object (&self->body);
      self->pollable = NULL;
    }
}

/* on_request_start, once, before anything else reaches the handler. */
static void
request_start (DispatchExchange *self)
{
  if (self->started)
    return;

  self->started = TRUE;
  self->iface->on_request_start (self->handler, self->controller);
}

/* After a clean end, before the terminal callback: hands the message to
 * the agent's pool for a later request, if nothing of this request can
 * reach it any more and libsoup left nothing in it that a new request
 * would not reset. libsoup still holds it here; the pool hands it out
 * only once libsoup has let go of it. */
static void
recycle_message (DispatchExchange *self)
{
  guint status;

  if (self->config.messages == NULL || self->msg == NULL ||
      self->has_body || self->restarted ||
      g_cancellable_is_cancelled (self->send_cancellable))
    return;

  /* A 421 marks the message for a connection of its own next time. */
  status = soup_message_get_status (self->msg);
  if (status < 200 || status == SOUP_STATUS_MISDIRECTED_REQUEST)
    return;

  /* libsoup clears the response head in place when msg is sent again */
  if (self->response_headers != NULL)
    _dispatch_headers_release_soup (g_steal_pointer (&self->response_headers));

  _dispatch_message_pool_give (self->config.messages, g_steal_pointer (&self->msg),
                               g_steal_pointer (&self->send_cancellable));
}

static void
finish (DispatchExchange *self,
        const GError     *error)
{
  g_assert (self->phase != PHASE_DONE);

  /* A request that fails before libsoup was about to write it (refused,
   * invalid, aborted early) still gets its start first. */
  request_start (self);
  if (self->phase == PHASE_DONE)
    return;  /* a nested main loop in the callback finished it */

  self->phase = PHASE_DONE;
  memset (self->deadline, 0, sizeof self->deadline);
  _dispatch_deadlines_remove (self->deadlines, &self->timer);
  close_body (self);

  /* Still connecting or waiting for the head: stop libsoup (this drops the
   * connection). Once the head is in (libsoup sets the final status just
   * before it makes the body stream), send_cb closes the stream instead. */
  if (self->send_pending &&
      (soup_message_get_status (self->msg) < 200 ||
       soup_message_get_status (self->msg) == SOUP_STATUS_MISDIRECTED_REQUEST))
    g_cancellable_cancel (self->send_cancellable);

  if (self->msg != NULL)
    message_unbind (self);
  if (error == NULL)
    recycle_message (self);

  /* Mark the controller finished first: abort(), pause() and resume()
   * called from the terminal callback are no-ops, and waiters wake. */
  _dispatch_request_controller_finish (self->controller);

  if (error != NULL)
    self->iface->on_response_error (self->handler, self->controller, error);
  else
    {
      g_autoptr(DispatchHeaders) trailers = _dispatch_headers_new_read_only_empty ();

      self->iface->on_response_end (self->handler, self->controller, trailers);
    }

  self->done (self, self->owner);
  exchange_unref (self);  /* the in-flight reference */
}

/* Fails the request. The controller keeps the first failure recorded
 * (an abort from another thread may have won the race); that one is
 * delivered. Takes ownership of @error. */
static void
fail (DispatchExchange *self,
      GError           *error)
{
  const GError *pending;

  if (self->phase == PHASE_DONE)
    {
      g_clear_error (&error);
      return;
    }

  if (error != NULL)
    _dispatch_request_controller_fail (self->controller, error);
  pending = _dispatch_request_controller_get_pending_error (self->controller);
  g_assert (pending != NULL);

  finish (self, pending);
}

static void
fail_literal (DispatchExchange *self,
              DispatchError     code,
              const char       *message)
{
  fail (self, g_error_new_literal (DISPATCH_ERROR, code, message));
}

/* An error from libsoup or GIO: cancellation means we (or the caller)
 * cancelled, and the controller knows why. */
static void
fail_transport (DispatchExchange *self,
                GError           *error)
{
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) &&
      _dispatch_request_controller_get_pending_error (self->controller) != NULL)
    {
      g_error_free (error);
      fail (self, NULL);
      return;
    }

  /* Our own errors (the request body stream broke its declared length)
   * come back through libsoup unchanged. */
  if (error->domain == DISPATCH_ERROR)
    {
      fail (self, error);
      return;
    }

  if (error->domain == G_TLS_ERROR && self->msg != NULL &&
      soup_message_get_tls_peer_certificate_errors (self->msg) != 0)
    {
      g_autofree char *flags = NULL;
      GError *mapped;

      flags = g_flags_to_string (G_TYPE_TLS_CERTIFICATE_FLAGS,
                                 soup_message_get_tls_peer_certificate_errors (self->msg));
      mapped = _dispatch_error_from_transport (error);
      g_prefix_error (&mapped, "certificate rejected (%s): ", flags);
      fail (self, mapped);
      g_error_free (error);
      return;
    }

  fail (self, _dispatch_error_from_transport (error));
  g_error_free (error);
}

/* Message signal handlers, called from the emission hooks
 * (dispatch-exchange-hooks.c), and wrote-body, connected to the message of
 * a request with a body */

void
_dispatch_exchange_on_network_event (SoupMessage        *msg,
                                     GSocketClientEvent  event,
                                     GIOStream          *connection,
                                     gpointer            user_data)
{
  DispatchExchange *self = user_data;

  switch (event)
    {
    case G_SOCKET_CLIENT_RESOLVING:
    case G_SOCKET_CLIENT_CONNECTING:
      if (self->deadline[TIMER_CONNECT] == 0)
        {
          arm_timer (self, TIMER_CONNECT);
          reschedule (self);
        }
      break;

    case G_SOCKET_CLIENT_TLS_HANDSHAKING:
      /* libsoup 3.2 has no flow control on HTTP/2: offer only HTTP/1.1
       * unless the caller allowed h2 (LIBSOUP-3.2-NOTES §2). */
      if (!self->config.allow_h2 && G_IS_TLS_CONNECTION (connection))
        {
          static const char * const alpn[] = { "http/1.1", NULL };

          g_tls_connection_set_advertised_protocols (G_TLS_CONNECTION (connection), alpn);
        }
      /* The client certificate goes on the connection before the
       * handshake, so it is there whenever the server asks. */
      if (self->config.tls_certificate != NULL && G_IS_TLS_CONNECTION (connection))
        g_tls_connection_set_certificate (G_TLS_CONNECTION (connection),
                                          self->config.tls_certificate);
      break;

    case G_SOCKET_CLIENT_COMPLETE:
      self->deadline[TIMER_CONNECT] = 0;
      reschedule (self);
      break;

    default:
      break;
    }
}

/* The request is out (or, without a body, about to go out in one write):
 * the connection is up, and from here on only the headers timer runs
 * (undici starts it once the request is written). */
static void
request_sent (DispatchExchange *self)
{
  self->deadline[TIMER_CONNECT] = 0;
  arm_timer (self, TIMER_HEADERS);
  reschedule (self);
}

/* Connected for requests with a body only: an emission hook on
 * "wrote-body" would put every SoupMessage in the process on GLib's slow
 * emission path, and a request without a body is written in one go right
 * after "starting". */
static void
on_wrote_body (SoupMessage *msg,
               gpointer     user_data)
{
  request_sent (user_data);
}

void
_dispatch_exchange_on_got_informational (SoupMessage *msg,
                                         gpointer     user_data)
{
  DispatchExchange *self = user_data;
  g_autoptr(DispatchHeaders) headers = NULL;

  if (self->phase != PHASE_SENDING ||
      _dispatch_request_controller_get_pending_error (self->controller) != NULL)
    return;

  headers = _dispatch_headers_copy_from_soup (soup_message_get_response_headers (msg));

  if (self->deadline[TIMER_HEADERS] != 0)
    {
      arm_timer (self, TIMER_HEADERS);
      reschedule (self);
    }

  self->iface->on_response_informational (self->handler, self->controller,
                                          soup_message_get_status (msg), headers);
}

void
_dispatch_exchange_on_restarted (SoupMessage *msg,
                                 gpointer     user_data)
{
  DispatchExchange *self = user_data;
  GBytes *body = dispatch_request_get_body (self->request);

  self->restarted = TRUE;

  /* libsoup drops the request body when it re-sends a request on a fresh
   * connection (LIBSOUP-3.2-NOTES §6). */
  if (body != NULL)
    soup_message_set_request_body_from_bytes (msg, NULL, body);
  else if (dispatch_request_get_body_stream (self->request) != NULL)
    fail_literal (self, DISPATCH_ERROR_REQUEST_BODY_NOT_REPLAYABLE,
                  "body: the request had to be sent again on a new connection, "
                  "but its body stream was already consumed");
}

void
_dispatch_exchange_on_starting (SoupMessage *msg,
                                gpointer     user_data)
{
  DispatchExchange *self = user_data;

  /* Emitted every time libsoup sends the message (again after a
   * restart). */
  if (self->phase != PHASE_SENDING)
    return;

  if (!self->has_body)
    request_sent (self);

  /* libsoup has a connection and is about to write the request: this is
   * undici's onRequestStart moment. Aborting in the callback cancels the
   * send here, synchronously, so libsoup writes nothing; the error is
   * delivered from the controller's source. */
  if (self->started)
    return;

  request_start (self);

  if (self->phase == PHASE_SENDING &&
      _dispatch_request_controller_get_pending_error (self->controller) != NULL)
    g_cancellable_cancel (self->send_cancellable);
}

static gboolean
on_accept_certificate (SoupMessage          *msg,
                       GTlsCertificate      *certificate,
                       GTlsCertificateFlags  errors,
                       gpointer              user_data)
{
  g_debug ("accepting an unverified TLS certificate (flags 0x%x): "
           "reject-unauthorized is FALSE", errors);
  return TRUE;
}

static void
message_bind (DispatchExchange *self)
{
  _dispatch_exchange_hooks_bind (self->msg, self);

  if (self->has_body)
    g_signal_connect (self->msg, "wrote-body", G_CALLBACK (on_wrote_body), self);
  if (self->config.accept_any_certificate)
    g_signal_connect (self->msg, "accept-certificate", G_CALLBACK (on_accept_certificate), self);
}

/* Nothing reaches the exchange from its message after this. */
static void
message_unbind (DispatchExchange *self)
{
  _dispatch_exchange_hooks_unbind (self->msg);

  if (self->has_body)
    g_signal_handlers_disconnect_by_func (self->msg, on_wrote_body, self);
  if (self->config.accept_any_certificate)
    g_signal_handlers_disconnect_by_func (self->msg, on_accept_certificate, self);
}

/* Response */

static gboolean
response_has_body (DispatchExchange *self,
                   guint             status)
{
  return !(_dispatch_request_is_head (self->request) ||
           status == SOUP_STATUS_NO_CONTENT ||
           status == SOUP_STATUS_NOT_MODIFIED ||
           SOUP_STATUS_IS_INFORMATIONAL (status));
}

/* Whether the final response head can be taken: sets the expected body
 * length, or returns why the response is refused. */
static GError *
check_response_head (DispatchExchange   *self,
                     guint               status,
                     SoupMessageHeaders *headers)
{
  gsize header_size;
  const char *content_length;

  /* A 407 to an https request through a proxy is the proxy refusing the
   * CONNECT tunnel, not the origin's answer. */
  if (status == SOUP_STATUS_PROXY_AUTHENTICATION_REQUIRED && self->config.via_proxy &&
      g_strcmp0 (g_uri_get_scheme (soup_message_get_uri (self->msg)), "https") == 0)
    return g_error_new_literal (DISPATCH_ERROR, DISPATCH_ERROR_PROXY,
                                "proxy refused the CONNECT tunnel: 407 Proxy "
                                "Authentication Required (give credentials in proxy-uri)");

  /* libsoup 3.2 itself refuses a head over 64 KiB; below that, count. */
  if (self->config.max_header_size < 64 * 1024)
    {
      header_size = _dispatch_headers_wire_size (headers, &content_length);
      if (header_size > self->config.max_header_size)
        return g_error_new (DISPATCH_ERROR, DISPATCH_ERROR_HEADERS_OVERFLOW,
                            "response header section of %" G_GSIZE_FORMAT " bytes "
                            "exceeds max-header-size (%u)",
                            header_size, self->config.max_header_size);
    }
  else
    content_length = soup_message_headers_get_one (headers, "Content-Length");

  /* libsoup 3.2 reads a Content-Length that overflows (or a negative one)
   * as a negative length and then as "none": never take that for a body. */
  if (!_dispatch_content_length_is_valid (content_length))
    return g_error_new_literal (DISPATCH_ERROR, DISPATCH_ERROR_PARSE,
                                "malformed HTTP response: invalid Content-Length");

  if (!response_has_body (self, status))
    self->content_length = 0;
  else if (soup_message_headers_get_encoding (headers) == SOUP_ENCODING_CONTENT_LENGTH)
    self->content_length = soup_message_headers_get_content_length (headers);

  if (self->max_response_size >= 0 && self->content_length > self->max_response_size)
    return g_error_new (DISPATCH_ERROR, DISPATCH_ERROR_RESPONSE_TOO_LARGE,
                        "response Content-Length %" G_GINT64_FORMAT
                        " exceeds max-response-size (%" G_GINT64_FORMAT ")",
                        self->content_length, self->max_response_size);

  return NULL;
}

static void
send_cb (GObject      *source_object,
         GAsyncResult *result,
         gpointer      user_data)
{
  DispatchExchange *self = user_data;
  g_autoptr(GInputStream) stream = NULL;
  g_autoptr(DispatchHeaders) headers = NULL;
  GError *error = NULL;
  SoupMessageHeaders *response_headers;
  guint status;

  stream = soup_session_send_finish (SOUP_SESSION (source_object), result, &error);
  self->send_pending = FALSE;

  if (self->phase == PHASE_DONE)
    {
      /* Failed while sending (abort, timeout): drop the connection. */
      g_clear_error (&error);
      if (stream != NULL)
        g_input_stream_close (stream, NULL, NULL);
      exchange_unref (self);
      return;
    }

  if (error != NULL)
    {
      fail_transport (self, error);
      exchange_unref (self);
      return;
    }

  self->deadline[TIMER_CONNECT] = 0;
  self->deadline[TIMER_HEADERS] = 0;
  self->body = g_steal_pointer (&stream);

  /* Every body stream of libsoup 3.2 polls (SoupClientInputStream, the
   * HTTP/2 one, GMemoryInputStream); the pump relies on it. */
  if (!G_IS_POLLABLE_INPUT_STREAM (self->body) ||
      !g_pollable_input_stream_can_poll (G_POLLABLE_INPUT_STREAM (self->body)))
    {
      fail (self, g_error_new (DISPATCH_ERROR, DISPATCH_ERROR_NOT_SUPPORTED,
                               "libsoup returned a body stream that cannot poll (%s)",
                               G_OBJECT_TYPE_NAME (self->body)));
      exchange_unref (self);
      return;
    }
  self->pollable = G_POLLABLE_INPUT_STREAM (self->body);

  status = soup_message_get_status (self->msg);
  response_headers = soup_message_get_response_headers (self->msg);

  error = check_response_head (self, status, response_headers);
  if (error != NULL)
    {
      fail (self, error);
      exchange_unref (self);
      return;
    }

  /* Copied when first read, except with HTTP/2, where libsoup 3.2 appends
   * trailers to these same headers while the body is read. */
  if (self->config.allow_h2)
    headers = _dispatch_headers_copy_from_soup (response_headers);
  else
    headers = _dispatch_headers_new_from_soup (response_headers);

  self->phase = PHASE_BODY;
  self->iface->on_response_start (self->handler, self->controller, status, headers,
                                  _dispatch_sanitize_reason (status,
                                                             soup_message_get_reason_phrase (self->msg)));
  /* Ours is then the exchange's only: a request that ends in the pump
   * below gives its message back, and copies the head first only if the
   * handler kept it. */
  self->response_headers = g_steal_pointer (&headers);

  exchange_pump (self);
  reschedule (self);
  exchange_unref (self);
}

static gboolean
read_ready_cb (GObject  *stream,
               gpointer  user_data)
{
  DispatchExchange *self = user_data;

  g_clear_pointer (&self->read_source, g_source_unref);
  self->deadline[TIMER_BODY] = 0;

  exchange_pump (self);
  reschedule (self);

  return G_SOURCE_REMOVE;
}

static void
wait_readable (DispatchExchange *self)
{
  g_assert (self->read_source == NULL);

  /* No cancellable: an abort reaches the exchange through the
   * controller's source, and finishing destroys this source. */
  self->read_source = g_pollable_input_stream_create_source (self->pollable, NULL);
  g_source_set_static_name (self->read_source, "[dispatch] body");
  g_source_set_callback (self->read_source, G_SOURCE_FUNC (read_ready_cb),
                         exchange_ref (self), (GDestroyNotify) exchange_unref);
  g_source_attach (self->read_source, self->context);

  arm_timer (self, TIMER_BODY);
}

static gboolean
deliver_checked (DispatchExchange *self,
                 GBytes           *chunk)
{
  if (dispatch_request_controller_get_paused (self->controller))
    {
      g_assert (self->held == NULL);
      self->held = g_bytes_ref (chunk);
      return FALSE;
    }

  self->iface->on_response_data (self->handler, self->controller, chunk);
  return self->phase == PHASE_BODY;
}

static gboolean
deliver (DispatchExchange *self,
         GBytes           *chunk)
{
  gsize n = g_bytes_get_size (chunk);

  self->received += n;

  if (self->max_response_size >= 0 && self->received > (guint64) self->max_response_size)
    {
      fail (self, g_error_new (DISPATCH_ERROR, DISPATCH_ERROR_RESPONSE_TOO_LARGE,
                               "response body exceeds max-response-size (%" G_GINT64_FORMAT ")",
                               self->max_response_size));
      return FALSE;
    }

  if (self->content_length >= 0 && self->received > (guint64) self->content_length)
    {
      fail (self, g_error_new (DISPATCH_ERROR, DISPATCH_ERROR_RESPONSE_LENGTH_MISMATCH,
                               "response body is longer than its Content-Length (%" G_GINT64_FORMAT ")",
                               self->content_length));
      return FALSE;
    }

  return deliver_checked (self, chunk);
}

static void
end_of_body (DispatchExchange *self)
{
  if (self->content_length >= 0 && self->received != (guint64) self->content_length)
    {
      fail (self, g_error_new (DISPATCH_ERROR, DISPATCH_ERROR_RESPONSE_LENGTH_MISMATCH,
                               "response body ended after %" G_GUINT64_FORMAT " of %"
                               G_GINT64_FORMAT " bytes announced by Content-Length",
                               self->received, self->content_length));
      return;
    }

  /* Closing at EOF returns the connection to the pool. */
  close_body (self);
  finish (self, NULL);
}

static void
exchange_pump (DispatchExchange *self)
{
  guint8 *buffer;

  if (self->phase != PHASE_BODY || self->pumping || self->read_source != NULL)
    return;

  self->pumping = TRUE;
  self->yielded = FALSE;
  exchange_ref (self);

  buffer = _dispatch_get_read_buffer ();

  for (guint reads = 0; self->phase == PHASE_BODY; reads++)
    {
      g_autoptr(GBytes) chunk = NULL;
      GError *error = NULL;
      gssize n;

      if (_dispatch_request_controller_get_pending_error (self->controller) != NULL)
        {
          fail (self, NULL);
          break;
        }

      /* Paused: issue no read, attach no source. */
      if (dispatch_request_controller_get_paused (self->controller))
        break;

      if (self->held != NULL)
        {
          g_autoptr(GBytes) held = g_steal_pointer (&self->held);

          if (!deliver_checked (self, held))
            break;
          continue;
        }

      if (reads == MAX_READS_PER_RUN)
        {
          self->yielded = TRUE;
          break;
        }

      n = g_pollable_input_stream_read_nonblocking (self->pollable, buffer,
                                                    DISPATCH_READ_BUFFER_SIZE,
                                                    NULL, &error);
      if (n > 0)
        {
          chunk = g_bytes_new (buffer, n);
          if (!deliver (self, chunk))
            break;
        }
      else if (n == 0)
        {
          end_of_body (self);
          break;
        }
      else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          g_error_free (error);
          wait_readable (self);
          break;
        }
      else
        {
          fail_transport (self, error);
          break;
        }
    }

  self->pumping = FALSE;
  exchange_unref (self);
}

/* Start */

static void
push_context (GMainContext *context,
              gboolean     *pushed)
{
  GMainContext *current = g_main_context_get_thread_default ();

  if (current == NULL)
    current = g_main_context_default ();

  *pushed = current != context;
  if (*pushed)
    g_main_context_push_thread_default (context);
}

/* In dispatch(), in the dispatch context's thread: build the message and
 * hand it to libsoup, which writes nothing before a later main-loop
 * iteration (and emits "starting" first). Returns FALSE with @error if the
 * request is invalid. */
static gboolean
exchange_begin (DispatchExchange  *self,
                GError           **error)
{
  SoupMessageFlags flags = SOUP_MESSAGE_NO_REDIRECT;
  SoupMessage *spare = NULL;
  GCancellable *cancellable = NULL;
  gboolean reused;
  gboolean pushed;

  if (self->config.messages != NULL)
    spare = _dispatch_message_pool_take (self->config.messages, &cancellable);
  reused = spare != NULL;
  self->send_cancellable = cancellable != NULL ? cancellable : g_cancellable_new ();

  self->msg = _dispatch_request_build_message (self->request, self->config.origins,
                                               spare, error);
  if (self->msg == NULL)
    return FALSE;

  /* Not the session's user-agent: libsoup would overwrite the request's
   * own User-Agent with it. */
  if (self->config.user_agent != NULL && self->config.user_agent[0] != '\0')
    {
      SoupMessageHeaders *headers = soup_message_get_request_headers (self->msg);

      /* the message's headers are the request's own */
      if (self->request->headers == NULL ||
          dispatch_headers_get (self->request->headers, "User-Agent") == NULL)
        soup_message_headers_append (headers, "User-Agent", self->config.user_agent);
    }

  /* libsoup reuses a connection for an idempotent method or flag, and
   * never for the rest: NEW_CONNECTION makes idempotent=FALSE hold for
   * GET and friends too. */
  if (dispatch_request_get_idempotent (self->request))
    flags |= SOUP_MESSAGE_IDEMPOTENT;
  else
    flags |= SOUP_MESSAGE_NEW_CONNECTION;
  soup_message_set_flags (self->msg, flags);
  /* A pooled message comes from this agent: it is opted out already. */
  if (!self->config.proxy_auth && !reused)
    soup_message_disable_feature (self->msg, SOUP_TYPE_AUTH_MANAGER);

  self->has_body = dispatch_request_get_body (self->request) != NULL ||
                   dispatch_request_get_body_stream (self->request) != NULL;
  message_bind (self);

  arm_timer (self, TIMER_TOTAL);

  self->phase = PHASE_SENDING;
  self->send_pending = TRUE;

  push_context (self->context, &pushed);
  soup_session_send_async (self->config.session, self->msg, G_PRIORITY_DEFAULT,
                           self->send_cancellable, send_cb, exchange_ref (self));
  if (pushed)
    g_main_context_pop_thread_default (self->context);

  return TRUE;
}

/* The controller's source fired (a kick from any thread: pause, resume,
 * abort, destroy; a rejected start; a yield), or the timer did. */
static void
exchange_drive (gpointer data)
{
  DispatchExchange *self = data;
  gint64 now;

  if (self->phase == PHASE_DONE)
    return;

  exchange_ref (self);
  self->yielded = FALSE;  /* this run is the one the yield asked for */

  if (self->phase == PHASE_QUEUED)
    {
      /* only rejected requests stay queued: start, then fail */
      request_start (self);
      if (self->phase == PHASE_QUEUED)
        fail (self, g_steal_pointer (&self->rejection));
      goto out;
    }

  if (_dispatch_request_controller_get_pending_error (self->controller) != NULL)
    {
      fail (self, NULL);
      goto out;
    }

  now = g_get_monotonic_time ();
  for (guint i = 0; i < N_TIMERS; i++)
    {
      if (self->deadline[i] != 0 && self->deadline[i] <= now)
        {
          fail (self, g_error_new (DISPATCH_ERROR, timer_errors[i],
                                   "%s: no progress within %u ms",
                                   timer_names[i], self->timeout_ms[i]));
          goto out;
        }
    }

  if (self->phase == PHASE_BODY)
    {
      if (dispatch_request_controller_get_paused (self->controller))
        {
          /* Nothing may be read while paused, and idle time while paused
           * is not a body timeout. */
          drop_read_source (self);
          self->deadline[TIMER_BODY] = 0;
        }
      else
        exchange_pump (self);
    }

out:
  reschedule (self);
  exchange_unref (self);
}
