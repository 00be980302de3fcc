/* dispatch-request.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * DispatchRequest:
 *
 * What to send: the options of one dispatch (undici's `DispatchOptions`).
 *
 * A request names an [property@Dispatch.Request:origin]
 * (`http[s]://host[:port]`), a [property@Dispatch.Request:path] and
 * optionally a pre-encoded [property@Dispatch.Request:query], a
 * [property@Dispatch.Request:method], [property@Dispatch.Request:headers]
 * and a body, either a [property@Dispatch.Request:body] (`GBytes`) or a
 * [property@Dispatch.Request:body-stream] (`GInputStream`, streamed, never
 * buffered whole; chunked when [property@Dispatch.Request:body-length] is
 * -1).
 *
 * Nothing is checked while the request is built. Everything is validated
 * when it is dispatched, before anything is sent; a bad request fails with
 * %DISPATCH_ERROR_INVALID_ARGUMENT through the handler's
 * `on_response_error`, with a message naming the field. Call
 * [method@Dispatch.Request.validate] to check earlier.
 *
 * A request may be dispatched more than once, but must not be modified
 * while a dispatch of it is in flight.
 *
 * Since: 0.1
 */

#include "config.h"

#include "dispatch-headers-private.h"
#include "dispatch-request-private.h"

G_DEFINE_FINAL_TYPE (DispatchRequest, dispatch_request, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_METHOD,
  PROP_ORIGIN,
  PROP_PATH,
  PROP_QUERY,
  PROP_HEADERS,
  PROP_BODY,
  PROP_BODY_STREAM,
  PROP_BODY_LENGTH,
  PROP_HEADERS_TIMEOUT,
  PROP_BODY_TIMEOUT,
  PROP_TIMEOUT,
  PROP_IDEMPOTENT,
  PROP_RESET,
  PROP_MAX_RESPONSE_SIZE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

/* The defaults of method and path, shared rather than copied into every
 * request; never written, never freed. */
static char default_method[] = "GET";
static char default_path[] = "/";

static void
free_string (char *value)
{
  if (value != default_method && value != default_path)
    g_free (value);
}

static void
dispatch_request_finalize (GObject *object)
{
  DispatchRequest *self = (DispatchRequest *) object;

  g_clear_pointer (&self->method, free_string);
  g_clear_pointer (&self->origin, g_free);
  g_clear_pointer (&self->path, free_string);
  g_clear_pointer (&self->query, g_free);
  g_clear_pointer (&self->headers, dispatch_headers_unref);
  g_clear_pointer (&self->body, g_bytes_unref);
  g_clear_object (&self->body_stream);

  G_OBJECT_CLASS (dispatch_request_parent_class)->finalize (object);
}

static void
dispatch_request_get_property (GObject    *object,
                               guint       prop_id,
                               GValue     *value,
                               GParamSpec *pspec)
{
  DispatchRequest *self = DISPATCH_REQUEST (object);

  switch (prop_id)
    {
    case PROP_METHOD:
      g_value_set_string (value, self->method);
      break;

    case PROP_ORIGIN:
      g_value_set_string (value, self->origin);
      break;

    case PROP_PATH:
      g_value_set_string (value, self->path);
      break;

    case PROP_QUERY:
      g_value_set_string (value, self->query);
      break;

    case PROP_HEADERS:
      g_value_set_boxed (value, dispatch_request_get_headers (self));
      break;

    case PROP_BODY:
      g_value_set_boxed (value, self->body);
      break;

    case PROP_BODY_STREAM:
      g_value_set_object (value, self->body_stream);
      break;

    case PROP_BODY_LENGTH:
      g_value_set_int64 (value, self->body_length);
      break;

    case PROP_HEADERS_TIMEOUT:
      g_value_set_int (value, self->headers_timeout);
      break;

    case PROP_BODY_TIMEOUT:
      g_value_set_int (value, self->body_timeout);
      break;

    case PROP_TIMEOUT:
      g_value_set_int (value, self->timeout);
      break;

    case PROP_IDEMPOTENT:
      g_value_set_boolean (value, dispatch_request_get_idempotent (self));
      break;

    case PROP_RESET:
      g_value_set_boolean (value, self->reset);
      break;

    case PROP_MAX_RESPONSE_SIZE:
      g_value_set_int64 (value, self->max_response_size);
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dispatch_request_set_property (GObject      *object,
                               guint         prop_id,
                               const GValue *value,
                               GParamSpec   *pspec)
{
  DispatchRequest *self = DISPATCH_REQUEST (object);

  switch (prop_id)
    {
    case PROP_METHOD:
      dispatch_request_set_method (self, g_value_get_string (value));
      break;

    case PROP_ORIGIN:
      dispatch_request_set_origin (self, g_value_get_string (value));
      break;

    case PROP_PATH:
      dispatch_request_set_path (self, g_value_get_string (value));
      break;

    case PROP_QUERY:
      dispatch_request_set_query (self, g_value_get_string (value));
      break;

    case PROP_HEADERS:
      dispatch_request_set_headers (self, g_value_get_boxed (value));
      break;

    case PROP_BODY:
      dispatch_request_set_body (self, g_value_get_boxed (value));
      break;

    case PROP_BODY_STREAM:
      dispatch_request_set_body_stream (self, g_value_get_object (value),
                                        self->body_length);
      break;

    case PROP_BODY_LENGTH:
      if (self->body_length != g_value_get_int64 (value))
        {
          self->body_length = g_value_get_int64 (value);
          g_object_notify_by_pspec (object, pspec);
        }
      break;

    case PROP_HEADERS_TIMEOUT:
      dispatch_request_set_headers_timeout (self, g_value_get_int (value));
      break;

    case PROP_BODY_TIMEOUT:
      dispatch_request_set_body_timeout (self, g_value_get_int (value));
      break;

    case PROP_TIMEOUT:
      dispatch_request_set_timeout (self, g_value_get_int (value));
      break;

    case PROP_IDEMPOTENT:
      dispatch_request_set_idempotent (self, g_value_get_boolean (value));
      break;

    case PROP_RESET:
      dispatch_request_set_reset (self, g_value_get_boolean (value));
      break;

    case PROP_MAX_RESPONSE_SIZE:
      dispatch_request_set_max_response_size (self, g_value_get_int64 (value));
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dispatch_request_class_init (DispatchRequestClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags flags = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY;

  object_class->finalize = dispatch_request_finalize;
  object_class->get_property = dispatch_request_get_property;
  object_class->set_property = dispatch_request_set_property;

  /**
   * DispatchRequest:method:
   *
   * The request method, an RFC 9110 token other than `CONNECT`.
   *
   * Since: 0.1
   */
  properties[PROP_METHOD] =
    g_param_spec_string ("method", NULL, NULL, "GET", flags);

  /**
   * DispatchRequest:origin:
   *
   * Where to send the request: `http://host[:port]` or
   * `https://host[:port]`, with nothing after the authority but an
   * optional `/`. Required.
   *
   * Since: 0.1
   */
  properties[PROP_ORIGIN] =
    g_param_spec_string ("origin", NULL, NULL, NULL, flags);

  /**
   * DispatchRequest:path:
   *
   * The request target's path, starting with `/`, already percent-encoded;
   * it may carry a query (`/search?q=x`). Bytes below 0x21 and 0x7F are
   * rejected; bytes from 0x80 are percent-encoded when sent. Otherwise the
   * path goes out exactly as given: dot segments are not removed and
   * escapes are not decoded.
   *
   * Since: 0.1
   */
  properties[PROP_PATH] =
    g_param_spec_string ("path", NULL, NULL, "/", flags);

  /**
   * DispatchRequest:query:
   *
   * A pre-encoded query string without the leading `?`, appended to
   * [property@Dispatch.Request:path]. See also
   * [method@Dispatch.Request.add_query].
   *
   * Since: 0.1
   */
  properties[PROP_QUERY] =
    g_param_spec_string ("query", NULL, NULL, NULL, flags);

  /**
   * DispatchRequest:headers:
   *
   * The request headers. Reading the property gives the request's own,
   * mutable list; setting it replaces the list.
   *
   * Since: 0.1
   */
  properties[PROP_HEADERS] =
    g_param_spec_boxed ("headers", NULL, NULL, DISPATCH_TYPE_HEADERS, flags);

  /**
   * DispatchRequest:body:
   *
   * The request body as bytes. It is sent with a `Content-Length` and sent
   * again, intact, if libsoup has to retry the request on a fresh
   * connection. Exclusive with [property@Dispatch.Request:body-stream].
   *
   * Since: 0.1
   */
  properties[PROP_BODY] =
    g_param_spec_boxed ("body", NULL, NULL, G_TYPE_BYTES, flags);

  /**
   * DispatchRequest:body-stream:
   *
   * The request body as a stream, read as it is sent (never buffered
   * whole) and closed when done. A stream cannot be re-sent: if the
   * request must be retried the dispatch fails with
   * %DISPATCH_ERROR_REQUEST_BODY_NOT_REPLAYABLE. Exclusive with
   * [property@Dispatch.Request:body].
   *
   * Since: 0.1
   */
  properties[PROP_BODY_STREAM] =
    g_param_spec_object ("body-stream", NULL, NULL, G_TYPE_INPUT_STREAM, flags);

  /**
   * DispatchRequest:body-length:
   *
   * The length of [property@Dispatch.Request:body-stream] in bytes, sent
   * as `Content-Length`, or -1 to send the stream chunked. The stream must
   * give exactly that many bytes: one that ends early or gives more fails
   * the request with %DISPATCH_ERROR_INVALID_ARGUMENT (naming
   * `body-stream`) rather than leaving the server waiting or cutting the
   * body silently.
   *
   * Since: 0.1
   */
  properties[PROP_BODY_LENGTH] =
    g_param_spec_int64 ("body-length", NULL, NULL, -1, G_MAXINT64, -1, flags);

  /**
   * DispatchRequest:headers-timeout:
   *
   * Overrides [property@Dispatch.Agent:headers-timeout] for this request,
   * in milliseconds: -1 uses the agent's, 0 disables.
   *
   * Since: 0.1
   */
  properties[PROP_HEADERS_TIMEOUT] =
    g_param_spec_int ("headers-timeout", NULL, NULL, -1, G_MAXINT, -1, flags);

  /**
   * DispatchRequest:body-timeout:
   *
   * Overrides [property@Dispatch.Agent:body-timeout] for this request, in
   * milliseconds: -1 uses the agent's, 0 disables.
   *
   * Since: 0.1
   */
  properties[PROP_BODY_TIMEOUT] =
    g_param_spec_int ("body-timeout", NULL, NULL, -1, G_MAXINT, -1, flags);

  /**
   * DispatchRequest:timeout:
   *
   * Overrides [property@Dispatch.Agent:timeout], the whole-request
   * deadline, in milliseconds: -1 uses the agent's, 0 disables.
   *
   * Since: 0.1
   */
  properties[PROP_TIMEOUT] =
    g_param_spec_int ("timeout", NULL, NULL, -1, G_MAXINT, -1, flags);

  /**
   * DispatchRequest:idempotent:
   *
   * Whether the request may be sent on a reused keep-alive connection.
   * Defaults to %TRUE for GET, HEAD, OPTIONS, PUT and DELETE.
   *
   * Since: 0.1
   */
  properties[PROP_IDEMPOTENT] =
    g_param_spec_boolean ("idempotent", NULL, NULL, TRUE, flags);

  /**
   * DispatchRequest:reset:
   *
   * Whether to close the connection after this request (`Connection:
   * close`) instead of keeping it alive for reuse.
   *
   * Since: 0.1
   */
  properties[PROP_RESET] =
    g_param_spec_boolean ("reset", NULL, NULL, FALSE, flags);

  /**
   * DispatchRequest:max-response-size:
   *
   * Overrides [property@Dispatch.Agent:max-response-size] for this
   * request: -2 uses the agent's, -1 is unlimited, otherwise the most body
   * bytes accepted.
   *
   * Since: 0.1
   */
  properties[PROP_MAX_RESPONSE_SIZE] =
    g_param_spec_int64 ("max-response-size", NULL, NULL, -2, G_MAXINT64, -2, flags);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
dispatch_request_init (DispatchRequest *self)
{
  self->method = default_method;
  self->path = default_path;
  self->body_length = -1;
  self->headers_timeout = -1;
  self->body_timeout = -1;
  self->timeout = -1;
  self->max_response_size = -2;
  self->idempotent = -1;
}

/**
 * dispatch_request_new:
 * @method: (nullable): the method, or %NULL for `GET`
 * @origin: (nullable): the origin, `http[s]://host[:port]`
 * @path: (nullable): the path, or %NULL for `/`
 *
 * Creates a request.
 *
 * Returns: (transfer full): a new #DispatchRequest
 *
 * Since: 0.1
 */
DispatchRequest *
dispatch_request_new (const char *method,
                      const char *origin,
                      const char *path)
{
  DispatchRequest *self = g_object_new (DISPATCH_TYPE_REQUEST, NULL);

  /* Directly, not as construct properties: nothing is listening yet and
   * this is on every request's path. */
  if (method != NULL)
    {
      free_string (self->method);
      self->method = g_strdup (method);
    }
  self->origin = g_strdup (origin);
  if (path != NULL)
    {
      free_string (self->path);
      self->path = g_strdup (path);
    }

  return self;
}

static void
set_string (DispatchRequest  *self,
            char            **field,
            const char       *value,
            int               prop)
{
  if (g_strcmp0 (*field, value) == 0)
    return;

  free_string (*field);
  *field = g_strdup (value);
  g_object_notify_by_pspec (G_OBJECT (self), properties[prop]);
}

/**
 * dispatch_request_get_method:
 * @self: a #DispatchRequest
 *
 * Gets the method.
 *
 * Returns: (nullable): the method
 *
 * Since: 0.1
 */
const char *
dispatch_request_get_method (DispatchRequest *self)
{
  g_return_val_if_fail (DISPATCH_IS_REQUEST (self), NULL);
  return self->method;
}

/**
 * dispatch_request_set_method:
 * @self: a #DispatchRequest
 * @method: (nullable): the method (validated at dispatch)
 *
 * Sets [property@Dispatch.Request:method].
 *
 * Since: 0.1
 */
void
dispatch_request_set_method (DispatchRequest *self,
                             const char      *method)
{
  gboolean idempotent;

  g_return_if_fail (DISPATCH_IS_REQUEST (self));

  idempotent = dispatch_request_get_idempotent (self);
  set_string (self, &self->method, method, PROP_METHOD);
  if (idempotent != dispatch_request_get_idempotent (self))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_IDEMPOTENT]);
}

/**
 * dispatch_request_get_origin:
 * @self: a #DispatchRequest
 *
 * Gets the origin.
 *
 * Returns: (nullable): the origin
 *
 * Since: 0.1
 */
const char *
dispatch_request_get_origin (DispatchRequest *self)
{
  g_return_val_if_fail (DISPATCH_IS_REQUEST (self), NULL);
  return self->origin;
}

/**
 * dispatch_request_set_origin:
 * @self: a #DispatchRequest
 * @origin: (nullable): the origin (validated at dispatch)
 *
 * Sets [property@Dispatch.Request:origin].
 *
 * Since: 0.1
 */
void
dispatch_request_set_origin (DispatchRequest *self,
                             const char      *origin)
{
  g_return_if_fail (DISPATCH_IS_REQUEST (self));
  set_string (self, &self->origin, origin, PROP_ORIGIN);
}

/**
 * dispatch_request_get_path:
 * @self: a #DispatchRequest
 *
 * Gets the path.
 *
 * Returns: (nullable): the path
 *
 * Since: 0.1
 */
const char *
dispatch_request_get_path (DispatchRequest *self)
{
  g_return_val_if_fail (DISPATCH_IS_REQUEST (self), NULL);
  return self->path;
}

/**
 * dispatch_request_set_path:
 * @self: a #DispatchRequest
 * @path: (nullable): the path (validated at dispatch)
 *
 * Sets [property@Dispatch.Request:path].
 *
 * Since: 0.1
 */
void
dispatch_request_set_path (DispatchRequest *self,
                           const char      *path)
{
  g_return_if_fail (DISPATCH_IS_REQUEST (self));
  set_string (self, &self->path, path, PROP_PATH);
}

/**
 * dispatch_request_get_query:
 * @self: a #DispatchRequest
 *
 * Gets the pre-encoded query, without `?`.
 *
 * Returns: (nullable): the pre-encoded query, without `?`
 *
 * Since: 0.1
 */
const char *
dispatch_request_get_query (DispatchRequest *self)
{
  g_return_val_if_fail (DISPATCH_IS_REQUEST (self), NULL);
  return self->query;
}

/**
 * dispatch_request_set_query:
 * @self: a #DispatchRequest
 * @query: (nullable): a pre-encoded query without the leading `?`
 *
 * Sets [property@Dispatch.Request:query].
 *
 * Since: 0.1
 */
void
dispatch_request_set_query (DispatchRequest *self,
                            const char      *query)
{
  g_return_if_fail (DISPATCH_IS_REQUEST (self));
  set_string (self, &self->query, query, PROP_QUERY);
}

/**
 * dispatch_request_add_query:
 * @self: a #DispatchRequest
 * @key: a query parameter name (not encoded)
 * @value: (nullable): its value (not encoded), or %NULL for a bare key
 *
 * Appends `key=value` to [property@Dispatch.Request:query],
 * percent-encoding both (every byte but RFC 3986 unreserved characters).
 *
 * Since: 0.1
 */
void
dispatch_request_add_query (DispatchRequest *self,
                            const char      *key,
                            const char      *value)
{
  GString *query;
  g_autofree char *ekey = NULL;

  g_return_if_fail (DISPATCH_IS_REQUEST (self));
  g_return_if_fail (key != NULL);

  query = g_string_new (self->query);
  if (query->len > 0)
    g_string_append_c (query, '&');

  ekey = g_uri_escape_string (key, NULL, FALSE);
  g_string_append (query, ekey);
  if (value != NULL)
    {
      g_autofree char *evalue = g_uri_escape_string (value, NULL, FALSE);

      g_string_append_c (query, '=');
      g_string_append (query, evalue);
    }

  g_free (self->query);
  self->query = g_string_free (query, FALSE);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_QUERY]);
}

/**
 * dispatch_request_get_headers:
 * @self: a #DispatchRequest
 *
 * Gets the request's own header list, which may be modified with
 * [method@Dispatch.Headers.append] and friends.
 *
 * Returns: (transfer none): the request headers
 *
 * Since: 0.1
 */
DispatchHeaders *
dispatch_request_get_headers (DispatchRequest *self)
{
  g_return_val_if_fail (DISPATCH_IS_REQUEST (self), NULL);

  /* made on first use: many requests carry no headers of their own */
  if (self->headers == NULL)
    self->headers = dispatch_headers_new ();

  return self->headers;
}

/**
 * dispatch_request_set_headers:
 * @self: a #DispatchRequest
 * @headers: (nullable): headers to use, or %NULL for none
 *
 * Replaces the request headers with a copy of @headers.
 *
 * Since: 0.1
 */
void
dispatch_request_set_headers (DispatchRequest *self,
                              DispatchHeaders *headers)
{
  g_return_if_fail (DISPATCH_IS_REQUEST (self));

  if (headers == self->headers)
    return;

  g_clear_pointer (&self->headers, dispatch_headers_unref);
  self->headers = headers ? dispatch_headers_copy (headers) : NULL;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_HEADERS]);
}

/**
 * dispatch_request_add_header:
 * @self: a #DispatchRequest
 * @name: a header name
 * @value: its value
 *
 * Appends a header field without checking it now. Unlike
 * [method@Dispatch.Headers.append], this never fails: an invalid name or
 * value makes the dispatch fail with %DISPATCH_ERROR_INVALID_ARGUMENT
 * through the handler, naming the header.
 *
 * Since: 0.1
 */
void
dispatch_request_add_header (DispatchRequest *self,
                             const char      *name,
                             const char      *value)
{
  g_return_if_fail (DISPATCH_IS_REQUEST (self));
  g_return_if_fail (name != NULL);
  g_return_if_fail (value != NULL);

  _dispatch_headers_append_unchecked (dispatch_request_get_headers (self), name, value);
}

/**
 * dispatch_request_get_body:
 * @self: a #DispatchRequest
 *
 * Gets the body bytes.
 *
 * Returns: (nullable) (transfer none): the body bytes
 *
 * Since: 0.1
 */
GBytes *
dispatch_request_get_body (DispatchRequest *self)
{
  g_return_val_if_fail (DISPATCH_IS_REQUEST (self), NULL);
  return self->body;
}

/**
 * dispatch_request_set_body:
 * @self: a #DispatchRequest
 * @body: (nullable): the body, or %NULL for none
 *
 * Sets [property@Dispatch.Request:body].
 *
 * Since: 0.1
 */
void
dispatch_request_set_body (DispatchRequest *self,
                           GBytes          *body)
{
  g_return_if_fail (DISPATCH_IS_REQUEST (self));

  if (body == self->body)
    return;

  g_clear_pointer (&self->body, g_bytes_unref);
  self->body = body ? g_bytes_ref (body) : NULL;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BODY]);
}

/**
 * dispatch_request_get_body_stream:
 * @self: a #DispatchRequest
 *
 * Gets the body stream.
 *
 * Returns: (nullable) (transfer none): the body stream
 *
 * Since: 0.1
 */
GInputStream *
dispatch_request_get_body_stream (DispatchRequest *self)
{
  g_return_val_if_fail (DISPATCH_IS_REQUEST (self), NULL);
  return self->body_stream;
}

/**
 * dispatch_request_set_body_stream:
 * @self: a #DispatchRequest
 * @stream: (nullable): the body stream, or %NULL for none
 * @length: its length in bytes, or -1 to send it chunked
 *
 * Sets [property@Dispatch.Request:body-stream] and
 * [property@Dispatch.Request:body-length].
 *
 * Since: 0.1
 */
void
dispatch_request_set_body_stream (DispatchRequest *self,
                                  GInputStream    *stream,
                                  gint64           length)
{
  g_return_if_fail (DISPATCH_IS_REQUEST (self));
  g_return_if_fail (stream == NULL || G_IS_INPUT_STREAM (stream));
  g_return_if_fail (length >= -1);

  g_object_freeze_notify (G_OBJECT (self));
  if (g_set_object (&self->body_stream, stream))
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BODY_STREAM]);
  if (self->body_length != length)
    {
      self->body_length = length;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BODY_LENGTH]);
    }
  g_object_thaw_notify (G_OBJECT (self));
}

/**
 * dispatch_request_get_body_length:
 * @self: a #DispatchRequest
 *
 * Gets the body stream length, or -1 for chunked.
 *
 * Returns: the body stream length, or -1 for chunked
 *
 * Since: 0.1
 */
gint64
dispatch_request_get_body_length (DispatchRequest *self)
{
  g_return_val_if_fail (DISPATCH_IS_REQUEST (self), -1);
  return self->body_length;
}

#define DEFINE_INT_ACCESSORS(field, PROP)                               \
int                                                                     \
dispatch_request_get_##field (DispatchRequest *self)                    \
{                                                                       \
  g_return_val_if_fail (DISPATCH_IS_REQUEST (self), -1);                \
  return self->field;                                                   \
}                                                                       \
                                                                        \
void                                                                    \
dispatch_request_set_##field (DispatchRequest *self,                    \
                              int              timeout_ms)              \
{                                                                       \
  g_return_if_fail (DISPATCH_IS_REQUEST (self));                        \
  g_return_if_fail (timeout_ms >= -1);                                  \
  if (self->field != timeout_ms)                                        \
    {                                                                   \
      self->field = timeout_ms;                                         \
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP]);     \
    }                                                                   \
}

/**
 * dispatch_request_get_headers_timeout:
 * @self: a #DispatchRequest
 *
 * Gets the headers timeout override in ms (-1: agent default).
 *
 * Returns: the headers timeout override in ms (-1: agent default)
 *
 * Since: 0.1
 */
/**
 * dispatch_request_set_headers_timeout:
 * @self: a #DispatchRequest
 * @timeout_ms: milliseconds; -1 for the agent default, 0 to disable
 *
 * Sets [property@Dispatch.Request:headers-timeout].
 *
 * Since: 0.1
 */
DEFINE_INT_ACCESSORS (headers_timeout, PROP_HEADERS_TIMEOUT)

/**
 * dispatch_request_get_body_timeout:
 * @self: a #DispatchRequest
 *
 * Gets the body timeout override in ms (-1: agent default).
 *
 * Returns: the body timeout override in ms (-1: agent default)
 *
 * Since: 0.1
 */
/**
 * dispatch_request_set_body_timeout:
 * @self: a #DispatchRequest
 * @timeout_ms: milliseconds; -1 for the agent default, 0 to disable
 *
 * Sets [property@Dispatch.Request:body-timeout].
 *
 * Since: 0.1
 */
DEFINE_INT_ACCESSORS (body_timeout, PROP_BODY_TIMEOUT)

/**
 * dispatch_request_get_timeout:
 * @self: a #DispatchRequest
 *
 * Gets the whole-request timeout override in ms (-1: agent default).
 *
 * Returns: the whole-request timeout override in ms (-1: agent default)
 *
 * Since: 0.1
 */
/**
 * dispatch_request_set_timeout:
 * @self: a #DispatchRequest
 * @timeout_ms: milliseconds; -1 for the agent default, 0 to disable
 *
 * Sets [property@Dispatch.Request:timeout].
 *
 * Since: 0.1
 */
DEFINE_INT_ACCESSORS (timeout, PROP_TIMEOUT)

static gboolean
method_is_idempotent (const char *method)
{
  static const char * const idempotent[] = { "GET", "HEAD", "OPTIONS", "PUT", "DELETE", NULL };

  return method != NULL && g_strv_contains (idempotent, method);
}

/**
 * dispatch_request_get_idempotent:
 * @self: a #DispatchRequest
 *
 * Gets whether the request may go out on a reused connection.
 *
 * Returns: whether the request may go out on a reused connection
 *
 * Since: 0.1
 */
gboolean
dispatch_request_get_idempotent (DispatchRequest *self)
{
  g_return_val_if_fail (DISPATCH_IS_REQUEST (self), FALSE);

  if (self->idempotent >= 0)
    return self->idempotent;

  return method_is_idempotent (self->method);
}

/**
 * dispatch_request_set_idempotent:
 * @self: a #DispatchRequest
 * @idempotent: whether the request is idempotent
 *
 * Sets [property@Dispatch.Request:idempotent].
 *
 * Since: 0.1
 */
void
dispatch_request_set_idempotent (DispatchRequest *self,
                                 gboolean         idempotent)
{
  g_return_if_fail (DISPATCH_IS_REQUEST (self));

  idempotent = !!idempotent;
  if (self->idempotent != idempotent)
    {
      gboolean before = dispatch_request_get_idempotent (self);

      self->idempotent = idempotent;
      if (before != idempotent)
        g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_IDEMPOTENT]);
    }
}

/**
 * dispatch_request_get_reset:
 * @self: a #DispatchRequest
 *
 * Gets whether the connection is closed after this request.
 *
 * Returns: whether the connection is closed after this request
 *
 * Since: 0.1
 */
gboolean
dispatch_request_get_reset (DispatchRequest *self)
{
  g_return_val_if_fail (DISPATCH_IS_REQUEST (self), FALSE);
  return self->reset;
}

/**
 * dispatch_request_set_reset:
 * @self: a #DispatchRequest
 * @reset: whether to close the connection afterwards
 *
 * Sets [property@Dispatch.Request:reset].
 *
 * Since: 0.1
 */
void
dispatch_request_set_reset (DispatchRequest *self,
                            gboolean         reset)
{
  g_return_if_fail (DISPATCH_IS_REQUEST (self));

  reset = !!reset;
  if (self->reset != (guint) reset)
    {
      self->reset = reset;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_RESET]);
    }
}

/**
 * dispatch_request_get_max_response_size:
 * @self: a #DispatchRequest
 *
 * Gets the body size limit override (-2: agent default, -1: none).
 *
 * Returns: the body size limit override (-2: agent default, -1: none)
 *
 * Since: 0.1
 */
gint64
dispatch_request_get_max_response_size (DispatchRequest *self)
{
  g_return_val_if_fail (DISPATCH_IS_REQUEST (self), -2);
  return self->max_response_size;
}

/**
 * dispatch_request_set_max_response_size:
 * @self: a #DispatchRequest
 * @max_size: -2 for the agent default, -1 for no limit, else bytes
 *
 * Sets [property@Dispatch.Request:max-response-size].
 *
 * Since: 0.1
 */
void
dispatch_request_set_max_response_size (DispatchRequest *self,
                                        gint64           max_size)
{
  g_return_if_fail (DISPATCH_IS_REQUEST (self));
  g_return_if_fail (max_size >= -2);

  if (self->max_response_size != max_size)
    {
      self->max_response_size = max_size;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MAX_RESPONSE_SIZE]);
    }
}

/**
 * dispatch_request_validate:
 * @self: a #DispatchRequest
 * @error: return location for a #GError
 *
 * Checks the request as dispatching it would, without sending anything:
 * the method is a token other than `CONNECT`; the origin is http or https
 * with a host, a valid port and nothing else; the path starts with `/` and
 * has no bytes below 0x21 or 0x7F; header names are tokens and values have
 * no CR or LF; `body` and `body-stream` are not both set.
 *
 * Returns: %TRUE if the request is valid, else %FALSE with @error set
 *   (%DISPATCH_ERROR_INVALID_ARGUMENT naming the field, or
 *   %DISPATCH_ERROR_NOT_SUPPORTED)
 *
 * Since: 0.1
 */
gboolean
dispatch_request_validate (DispatchRequest  *self,
                           GError          **error)
{
  g_autoptr(GUri) origin = NULL;

  g_return_val_if_fail (DISPATCH_IS_REQUEST (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return _dispatch_request_validate_full (self, NULL, &origin, error);
}
