/* dispatch-request-build.c — validating a request and building its
 * SoupMessage
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <string.h>

#include "dispatch-body-stream-private.h"
#include "dispatch-error.h"
#include "dispatch-headers-private.h"
#include "dispatch-request-private.h"
#include "dispatch-util-private.h"

/* Validation */

#define invalid(error, ...) \
  (g_set_error (error, DISPATCH_ERROR, DISPATCH_ERROR_INVALID_ARGUMENT, __VA_ARGS__), FALSE)
#define not_supported(error, ...) \
  (g_set_error (error, DISPATCH_ERROR, DISPATCH_ERROR_NOT_SUPPORTED, __VA_ARGS__), FALSE)

static gboolean
validate_origin (const char  *origin,
                 GUri       **out_uri,
                 GError     **error)
{
  g_autoptr(GUri) uri = NULL;
  g_autoptr(GError) local_error = NULL;
  const char *scheme;
  const char *host;
  const char *path;

  if (origin == NULL || origin[0] == '\0')
    return invalid (error, "origin: required, e.g. “http://host:port”");

  for (const guint8 *p = (const guint8 *) origin; *p; p++)
    if (*p < 0x21 || *p == 0x7f)
      return invalid (error, "origin: “%s” contains a space or control byte", origin);

  uri = g_uri_parse (origin, G_URI_FLAGS_ENCODED | G_URI_FLAGS_SCHEME_NORMALIZE, &local_error);
  if (uri == NULL)
    return invalid (error, "origin: “%s” is not a valid URI: %s", origin, local_error->message);

  scheme = g_uri_get_scheme (uri);
  if (g_strcmp0 (scheme, "http") != 0 && g_strcmp0 (scheme, "https") != 0)
    return invalid (error, "origin: scheme of “%s” must be http or https", origin);

  host = g_uri_get_host (uri);
  if (host == NULL || host[0] == '\0')
    return invalid (error, "origin: “%s” has no host", origin);

  if (g_uri_get_userinfo (uri) != NULL)
    return invalid (error, "origin: “%s” must not carry user information", origin);

  path = g_uri_get_path (uri);
  if ((path[0] != '\0' && strcmp (path, "/") != 0) ||
      g_uri_get_query (uri) != NULL || g_uri_get_fragment (uri) != NULL)
    return invalid (error,
                    "origin: “%s” must be scheme://host[:port] only; "
                    "put the path in “path”", origin);

  /* GUri rejects ports above 65535; 0 is never a valid destination. */
  if (g_uri_get_port (uri) == 0)
    return invalid (error, "origin: port of “%s” must be between 1 and 65535", origin);

  if (out_uri != NULL)
    *out_uri = g_steal_pointer (&uri);

  return TRUE;
}

static gboolean
validate_target_chars (const char  *field,
                       const char  *value,
                       gboolean     allow_hash,
                       GError     **error)
{
  for (const guint8 *p = (const guint8 *) value; *p; p++)
    {
      if (*p < 0x21 || *p == 0x7f)
        return invalid (error, "%s: contains a space or control byte (0x%02x) at offset %u",
                        field, *p, (guint) (p - (const guint8 *) value));
      if (*p == '#' && !allow_hash)
        return invalid (error, "%s: must not contain a fragment (“#”)", field);
    }

  return TRUE;
}

static gboolean
validate_headers (DispatchRequest  *self,
                  GError          **error)
{
  guint n;

  if (self->headers == NULL)
    return TRUE;

  if (!_dispatch_headers_validate (self->headers, error))
    return FALSE;

  n = dispatch_headers_get_length (self->headers);
  for (guint i = 0; i < n; i++)
    {
      const char *name = dispatch_headers_get_name (self->headers, i);
      const char *value = dispatch_headers_get_value (self->headers, i);

      switch (name[0])
        {
        case 'c':
          if (strcmp (name, "content-length") == 0)
            return invalid (error, "header: “content-length” is set from the body; "
                            "use “body” or “body-length”");
          if (strcmp (name, "connection") == 0 &&
              g_ascii_strcasecmp (value, "close") != 0 &&
              g_ascii_strcasecmp (value, "keep-alive") != 0)
            return invalid (error, "header: “connection” may only be “close” or “keep-alive”");
          break;

        case 'e':
          if (strcmp (name, "expect") == 0)
            return not_supported (error, "header: “expect” is not supported");
          break;

        case 'k':
          if (strcmp (name, "keep-alive") == 0)
            return invalid (error, "header: “keep-alive” is managed by the agent");
          break;

        case 't':
          if (strcmp (name, "transfer-encoding") == 0)
            return invalid (error, "header: “transfer-encoding” is set from the body; "
                            "use “body-length” -1 for chunked");
          break;

        case 'u':
          if (strcmp (name, "upgrade") == 0)
            return not_supported (error, "header: “upgrade” is not supported");
          break;

        default:
          break;
        }
    }

  return TRUE;
}

/* The query as it goes out: %NULL for none. */
static const char *
request_query (DispatchRequest *self)
{
  return self->query != NULL && self->query[0] != '\0' ? self->query : NULL;
}

/* With @origins and @out_target (nullable), a cached origin also yields
 * the target URI last built for this path and query, if it was
 * (*@out_target, else %NULL). */
static gboolean
validate (DispatchRequest      *self,
          DispatchOriginCache  *origins,
          GUri                **out_origin,
          GUri                **out_target,
          GError              **error)
{
  if (!_dispatch_is_token (self->method))
    return invalid (error, "method: “%s” is not a valid HTTP token",
                    self->method ? self->method : "(null)");

  if (g_ascii_strcasecmp (self->method, "CONNECT") == 0)
    return invalid (error, "method: CONNECT is not supported by dispatch");

  if (origins != NULL && self->origin != NULL &&
      (*out_origin = _dispatch_origin_cache_lookup (origins, self->origin, self->path,
                                                    request_query (self),
                                                    out_target)) != NULL)
    ;
  else if (!validate_origin (self->origin, out_origin, error))
    return FALSE;
  else if (origins != NULL)
    _dispatch_origin_cache_insert (origins, self->origin, *out_origin);

  if (self->path == NULL || self->path[0] != '/')
    return invalid (error, "path: “%s” must start with “/”",
                    self->path ? self->path : "(null)");

  if (!validate_target_chars ("path", self->path, FALSE, error))
    return FALSE;

  if (self->query != NULL && !validate_target_chars ("query", self->query, FALSE, error))
    return FALSE;

  if (!validate_headers (self, error))
    return FALSE;

  if (self->body != NULL && self->body_stream != NULL)
    return invalid (error, "body: “body” and “body-stream” are both set; use one");

  return TRUE;
}

gboolean
_dispatch_request_validate_full (DispatchRequest      *self,
                                 DispatchOriginCache  *origins,
                                 GUri                **out_origin,
                                 GError              **error)
{
  return validate (self, origins, out_origin, NULL, error);
}

gboolean
_dispatch_request_is_head (DispatchRequest *self)
{
  return g_strcmp0 (self->method, "HEAD") == 0;
}

static gboolean
needs_encoding (const char *target)
{
  for (const guint8 *p = (const guint8 *) target; *p; p++)
    if (*p >= 0x80)
      return TRUE;

  return FALSE;
}

static void
append_encoded_target (GString    *out,
                       const char *target)
{
  static const char hex[] = "0123456789ABCDEF";

  for (const guint8 *p = (const guint8 *) target; *p; p++)
    {
      if (*p >= 0x80)
        {
          g_string_append_c (out, '%');
          g_string_append_c (out, hex[*p >> 4]);
          g_string_append_c (out, hex[*p & 0xf]);
        }
      else
        g_string_append_c (out, *p);
    }
}

/* The target URI: the common case (ASCII path without a query of its
 * own) is used as it is; otherwise the path's query is split off and
 * high bytes are encoded. */
static GUri *
build_target (DispatchRequest *self,
              GUri            *origin)
{
  g_autofree char *path_owned = NULL;
  g_autofree char *query_owned = NULL;
  const char *path = self->path;
  const char *query = request_query (self);

  if (needs_encoding (path) || strchr (path, '?') != NULL ||
      (query != NULL && needs_encoding (query)))
    {
      const char *question = strchr (self->path, '?');
      GString *p = g_string_sized_new (64);
      GString *q = g_string_new (NULL);

      if (question != NULL)
        {
          g_autofree char *bare = g_strndup (self->path, question - self->path);

          append_encoded_target (p, bare);
          append_encoded_target (q, question + 1);
        }
      else
        append_encoded_target (p, self->path);

      if (query != NULL)
        {
          if (q->len > 0)
            g_string_append_c (q, '&');
          append_encoded_target (q, query);
        }

      path = path_owned = g_string_free (p, FALSE);
      query = (question != NULL || q->len > 0) ? (query_owned = g_string_free (q, FALSE))
                                               : (g_string_free (q, TRUE), NULL);
    }

  return g_uri_build (SOUP_HTTP_URI_FLAGS,
                      g_uri_get_scheme (origin), NULL,
                      g_uri_get_host (origin), g_uri_get_port (origin),
                      path, query, NULL);
}

/* Validates and builds the SoupMessage (headers and body set, flags not).
 * The path and query go out as given (only bytes from 0x80 are
 * percent-encoded): no dot-segment removal, no unescaping, as undici. */
SoupMessage *
_dispatch_request_build_message (DispatchRequest      *self,
                                 DispatchOriginCache  *origins,
                                 SoupMessage          *reuse,
                                 GError              **error)
{
  g_autoptr(GUri) origin = NULL;
  g_autoptr(GUri) uri = NULL;
  SoupMessage *msg;

  if (!validate (self, origins, &origin, &uri, error))
    {
      g_clear_object (&reuse);
      return NULL;
    }

  /* A request repeating the last path and query (as given, before any
   * encoding) to its origin got that target's URI from the cache. */
  if (uri == NULL)
    {
      uri = build_target (self, origin);
      if (origins != NULL)
        _dispatch_origin_cache_remember_target (origins, self->origin, self->path,
                                                request_query (self), uri);
    }

  if (reuse != NULL)
    {
      /* Sent before and unqueued since: libsoup clears the response and
       * connection state when it queues it; the rest is the request's. */
      msg = reuse;
      if (strcmp (soup_message_get_method (msg), self->method) != 0)
        soup_message_set_method (msg, self->method);
      soup_message_set_uri (msg, uri);
      soup_message_headers_clear (soup_message_get_request_headers (msg));
    }
  else
    msg = soup_message_new_from_uri (self->method, uri);
  if (self->headers != NULL)
    _dispatch_headers_apply_to_soup (self->headers, soup_message_get_request_headers (msg));

  if (self->body != NULL)
    soup_message_set_request_body_from_bytes (msg, NULL, self->body);
  else if (self->body_stream != NULL && self->body_length >= 0)
    {
      g_autoptr(GInputStream) checked = _dispatch_body_stream_new (self->body_stream,
                                                                   self->body_length);

      soup_message_set_request_body (msg, NULL, checked, self->body_length);
    }
  else if (self->body_stream != NULL)
    soup_message_set_request_body (msg, NULL, self->body_stream, -1);

  if (self->reset)
    soup_message_headers_replace (soup_message_get_request_headers (msg),
                                  "Connection", "close");

  return msg;
}
