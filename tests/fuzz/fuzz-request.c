/* fuzz-request.c — request validation and SoupMessage building
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Input layout:
 *
 *   byte 0      flags (below)
 *   the rest    fields separated by NUL bytes:
 *               method, origin, path, query, then (name, value) pairs
 *
 * flags:
 *   0x01 method NULL       0x02 origin NULL      0x04 path NULL
 *   0x08 no query          0x10 a GBytes body    0x20 a body stream too
 *   0x40 the pairs are query parameters (dispatch_request_add_query)
 *        instead of headers (dispatch_request_add_header)
 *   0x80 reset (Connection: close)
 *
 * Checked for every input:
 *  - dispatch_request_validate() returns TRUE with no error, or FALSE with
 *    DISPATCH_ERROR_INVALID_ARGUMENT / NOT_SUPPORTED whose message starts
 *    with the field it is about ("method:", "origin:", ...);
 *  - a header that dispatch_headers_append() refuses makes the request
 *    invalid too;
 *  - dispatch_request_add_query() encodes anything: the query parses back
 *    to exactly the pairs added and never makes the request invalid;
 *  - _dispatch_request_build_message() agrees with validate(): a valid
 *    request builds a message, an invalid one fails with the same error;
 *    and building through an origin cache (shared by all inputs, as an
 *    agent's is by its requests) gives the same URI or the same error;
 *  - the message goes to the origin: same scheme, host and port (the path
 *    must not be able to change where the request is sent), with the
 *    method and every header of the request, and the target as given
 *    (path verbatim but for bytes from 0x80, percent-encoded; the query
 *    appended with "?" or "&");
 *  - no WARNING/CRITICAL is logged, nothing leaks (ASan), nothing crashes.
 */

#include "config.h"

#include <string.h>

#include <libsoup/soup.h>
#include <libdispatch-gobject/dispatch.h>

#include "dispatch-headers-private.h"
#include "dispatch-request-private.h"
#include "dispatch-util-private.h"
#include "fuzz-common.h"

#define MAX_PAIRS 32

enum {
  FLAG_NO_METHOD = 1 << 0,
  FLAG_NO_ORIGIN = 1 << 1,
  FLAG_NO_PATH   = 1 << 2,
  FLAG_NO_QUERY  = 1 << 3,
  FLAG_BODY      = 1 << 4,
  FLAG_STREAM    = 1 << 5,
  FLAG_QUERY_KV  = 1 << 6,
  FLAG_RESET     = 1 << 7,
};

/* Shared by every input, as an agent's cache is shared by its requests. */
static DispatchOriginCache *origin_cache;

/* Distinct methods libsoup is allowed to intern (see below). */
#define MAX_NEW_METHODS 1024
static guint new_methods;

int
LLVMFuzzerInitialize (int    *argc,
                      char ***argv)
{
  fuzz_install_log_guards ();
  origin_cache = _dispatch_origin_cache_new ();
  return 0;
}

/* Building through the origin cache (as the agent does) gives exactly what
 * building without it gives: the same URI, or the same error. Built twice,
 * so the second time the origin may come from the cache. */
static void
check_cached_build (DispatchRequest *request,
                    SoupMessage     *uncached,
                    const GError    *uncached_error)
{
  for (guint round = 0; round < 2; round++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(SoupMessage) msg = _dispatch_request_build_message (request, origin_cache, NULL, &error);

      if (uncached == NULL)
        {
          fuzz_checkf (msg == NULL, "built through the origin cache only (round %u)", round);
          fuzz_check (error != NULL);
          fuzz_checkf (error->code == uncached_error->code &&
                       strcmp (error->message, uncached_error->message) == 0,
                       "the origin cache changes the error: \"%s\" vs \"%s\"",
                       uncached_error->message, error->message);
        }
      else
        {
          g_autofree char *expected = NULL;
          g_autofree char *got = NULL;

          fuzz_checkf (msg != NULL, "the origin cache made the request fail: %s",
                       error ? error->message : "(no error)");
          expected = g_uri_to_string (soup_message_get_uri (uncached));
          got = g_uri_to_string (soup_message_get_uri (msg));
          fuzz_checkf (strcmp (expected, got) == 0,
                       "the origin cache changes the URI: \"%s\" vs \"%s\"", expected, got);
        }
    }
}

/* The next NUL-separated field (the last one ends at the end of the
 * input); NULL once the input is used up. */
static char *
next_field (FuzzReader *reader)
{
  const guint8 *start;
  const guint8 *nul;
  gsize len;

  if (fuzz_reader_done (reader))
    return NULL;

  start = reader->data + reader->pos;
  nul = memchr (start, '\0', reader->size - reader->pos);
  len = nul ? (gsize) (nul - start) : reader->size - reader->pos;

  reader->pos += len + (nul ? 1 : 0);
  return g_strndup ((const char *) start, len);
}

static gboolean
message_names_field (const char *message)
{
  static const char * const fields[] = {
    "method: ", "origin: ", "path: ", "query: ", "header: ", "body: ",
  };

  for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
    if (g_str_has_prefix (message, fields[i]))
      return TRUE;

  return FALSE;
}

static void
check_error (const GError *error)
{
  fuzz_check (error != NULL);
  fuzz_checkf (error->domain == DISPATCH_ERROR,
               "error from domain %s: %s", g_quark_to_string (error->domain), error->message);
  fuzz_checkf (error->code == DISPATCH_ERROR_INVALID_ARGUMENT ||
               error->code == DISPATCH_ERROR_NOT_SUPPORTED,
               "unexpected code %d: %s", error->code, error->message);
  fuzz_checkf (message_names_field (error->message),
               "the message does not start with the field: \"%s\"", error->message);
}

static void
check_added_query (const char *query,
                   GPtrArray  *added)
{
  g_auto(GStrv) pairs = NULL;

  fuzz_check (query != NULL);
  pairs = g_strsplit (query, "&", -1);
  fuzz_checkf (g_strv_length (pairs) * 2 == added->len,
               "query \"%s\" has %u pairs, %u were added",
               query, g_strv_length (pairs), added->len / 2);

  for (guint i = 0; pairs[i] != NULL; i++)
    {
      const char *key = g_ptr_array_index (added, 2 * i);
      const char *value = g_ptr_array_index (added, 2 * i + 1);
      char *eq = strchr (pairs[i], '=');
      g_autofree char *got_key = NULL;
      g_autofree char *got_value = NULL;

      fuzz_checkf (eq != NULL, "pair \"%s\" has no \"=\"", pairs[i]);
      *eq = '\0';
      got_key = g_uri_unescape_string (pairs[i], NULL);
      got_value = g_uri_unescape_string (eq + 1, NULL);

      fuzz_checkf (g_strcmp0 (got_key, key) == 0, "key \"%s\" came back as \"%s\"",
                   key, got_key ? got_key : "(invalid)");
      fuzz_checkf (g_strcmp0 (got_value, value) == 0, "value \"%s\" came back as \"%s\"",
                   value, got_value ? got_value : "(invalid)");
    }
}

static int
port_or_default (GUri *uri)
{
  int port = g_uri_get_port (uri);

  if (port > 0)
    return port;

  return g_strcmp0 (g_uri_get_scheme (uri), "https") == 0 ? 443 : 80;
}

static char *
encode_high_bytes (const char *str)
{
  GString *out = g_string_new (NULL);

  for (const guint8 *p = (const guint8 *) str; *p; p++)
    {
      if (*p >= 0x80)
        g_string_append_printf (out, "%%%02X", *p);
      else
        g_string_append_c (out, (char) *p);
    }

  return g_string_free (out, FALSE);
}

/* The built message goes where the origin says, with the request's
 * method and headers. */
static void
check_message (DispatchRequest *request,
               SoupMessage     *msg)
{
  g_autoptr(GUri) origin = NULL;
  GUri *uri = soup_message_get_uri (msg);
  SoupMessageHeaders *soup_headers = soup_message_get_request_headers (msg);
  DispatchHeaders *headers = dispatch_request_get_headers (request);
  const char *origin_host;
  const char *host;

  origin = g_uri_parse (dispatch_request_get_origin (request),
                        G_URI_FLAGS_ENCODED | G_URI_FLAGS_SCHEME_NORMALIZE, NULL);
  fuzz_check (origin != NULL);
  fuzz_check (uri != NULL);

  origin_host = g_uri_get_host (origin);
  host = g_uri_get_host (uri);

  fuzz_checkf (g_ascii_strcasecmp (g_uri_get_scheme (uri), g_uri_get_scheme (origin)) == 0,
               "scheme changed: origin %s, message %s",
               g_uri_get_scheme (origin), g_uri_get_scheme (uri));
  fuzz_checkf (host != NULL && g_ascii_strcasecmp (host, origin_host) == 0,
               "the request would go to host \"%s\", not the origin's \"%s\" "
               "(origin \"%s\", path \"%s\")",
               host ? host : "(null)", origin_host,
               dispatch_request_get_origin (request), dispatch_request_get_path (request));
  fuzz_checkf (port_or_default (uri) == port_or_default (origin),
               "port changed: origin %d, message %d (path \"%s\")",
               port_or_default (origin), port_or_default (uri),
               dispatch_request_get_path (request));

  fuzz_check (strcmp (soup_message_get_method (msg), dispatch_request_get_method (request)) == 0);

  /* The target is sent as given: no dot-segment removal, no decoding, only
   * bytes from 0x80 percent-encoded; the query is appended with ? or &. */
  {
    const char *path = dispatch_request_get_path (request);
    const char *query = dispatch_request_get_query (request);
    const char *question = strchr (path, '?');
    g_autofree char *bare = g_strndup (path, question ? (gsize) (question - path) : strlen (path));
    g_autofree char *expected_path = encode_high_bytes (bare);
    g_autoptr(GString) expected_query = g_string_new (NULL);
    gboolean has_query = question != NULL;

    if (question != NULL)
      {
        g_autofree char *encoded = encode_high_bytes (question + 1);

        g_string_append (expected_query, encoded);
      }
    if (query != NULL && query[0] != '\0')
      {
        g_autofree char *encoded = encode_high_bytes (query);

        if (expected_query->len > 0)
          g_string_append_c (expected_query, '&');
        g_string_append (expected_query, encoded);
        has_query = TRUE;
      }

    fuzz_checkf (strcmp (g_uri_get_path (uri), expected_path) == 0,
                 "path \"%s\" is sent as \"%s\"", path, g_uri_get_path (uri));
    if (has_query)
      fuzz_checkf (g_strcmp0 (g_uri_get_query (uri), expected_query->str) == 0,
                   "query \"%s\" is sent as \"%s\"", expected_query->str,
                   g_uri_get_query (uri) ? g_uri_get_query (uri) : "(none)");
    else
      fuzz_check (g_uri_get_query (uri) == NULL);
    fuzz_check (g_uri_get_fragment (uri) == NULL);
  }

  for (guint i = 0; i < dispatch_headers_get_length (headers); i++)
    {
      const char *name = dispatch_headers_get_name (headers, i);

      fuzz_checkf (soup_message_headers_get_one (soup_headers, name) != NULL,
                   "header \"%s\" was not applied to the message", name);
    }

  if (dispatch_request_get_reset (request))
    fuzz_check (soup_message_headers_header_equals (soup_headers, "Connection", "close"));
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  FuzzReader reader = { data, size, 0 };
  g_autoptr(DispatchRequest) request = NULL;
  g_autoptr(DispatchHeaders) scratch = NULL;
  g_autoptr(GPtrArray) added_query = NULL;
  g_autoptr(GError) validate_error = NULL;
  g_autoptr(GError) build_error = NULL;
  g_autoptr(SoupMessage) msg = NULL;
  g_autofree char *method = NULL;
  g_autofree char *origin = NULL;
  g_autofree char *path = NULL;
  g_autofree char *query = NULL;
  gboolean append_refused = FALSE;
  gboolean valid;
  guint8 flags;

  if (size == 0)
    return 0;

  flags = fuzz_reader_byte (&reader);
  method = next_field (&reader);
  origin = next_field (&reader);
  path = next_field (&reader);
  query = next_field (&reader);

  request = dispatch_request_new (NULL, NULL, NULL);
  dispatch_request_set_method (request, (flags & FLAG_NO_METHOD) ? NULL : method);
  dispatch_request_set_origin (request, (flags & FLAG_NO_ORIGIN) ? NULL : origin);
  dispatch_request_set_path (request, (flags & FLAG_NO_PATH) ? NULL : path);
  if (!(flags & FLAG_NO_QUERY))
    dispatch_request_set_query (request, query);

  scratch = dispatch_headers_new ();
  added_query = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; i < MAX_PAIRS && !fuzz_reader_done (&reader); i++)
    {
      g_autofree char *name = next_field (&reader);
      g_autofree char *value = next_field (&reader);
      g_autoptr(GError) error = NULL;

      if (value == NULL)
        value = g_strdup ("");

      if (flags & FLAG_QUERY_KV)
        {
          dispatch_request_add_query (request, name, value);
          g_ptr_array_add (added_query, g_steal_pointer (&name));
          g_ptr_array_add (added_query, g_steal_pointer (&value));
          continue;
        }

      dispatch_request_add_header (request, name, value);

      /* the validating API must refuse exactly what dispatch refuses */
      if (!dispatch_headers_append (scratch, name, value, &error))
        {
          check_error (error);
          fuzz_check (error->code == DISPATCH_ERROR_INVALID_ARGUMENT);
          fuzz_check (g_str_has_prefix (error->message, "header: "));
          append_refused = TRUE;
        }
      else
        fuzz_check (error == NULL);
    }

  if (flags & FLAG_BODY)
    {
      g_autoptr(GBytes) body = g_bytes_new_static ("body", 4);

      dispatch_request_set_body (request, body);
    }

  if (flags & FLAG_STREAM)
    {
      g_autoptr(GInputStream) stream = g_memory_input_stream_new_from_data ("s", 1, NULL);

      dispatch_request_set_body_stream (request, stream, (flags & FLAG_RESET) ? -1 : 1);
    }

  dispatch_request_set_reset (request, (flags & FLAG_RESET) != 0);

  /* add_query() encodes whatever it is given: the query parses back to
   * exactly those pairs, and is never what makes the request invalid */
  if ((flags & FLAG_NO_QUERY) && added_query->len > 0)
    check_added_query (dispatch_request_get_query (request), added_query);

  valid = dispatch_request_validate (request, &validate_error);
  if (valid)
    fuzz_check (validate_error == NULL);
  else
    check_error (validate_error);

  if ((flags & FLAG_QUERY_KV) && (flags & FLAG_NO_QUERY))
    fuzz_checkf (valid || !g_str_has_prefix (validate_error->message, "query: "),
                 "dispatch_request_add_query() made the query invalid: %s",
                 validate_error->message);

  if (append_refused)
    fuzz_checkf (!valid, "dispatch_headers_append() refused a header that "
                 "dispatch_request_validate() accepts");

  /* libsoup interns every method it is given (soup_message_set_method()
   * → g_intern_string()), for the life of the process, and GLib drops the
   * old quark table each time it grows past a multiple of 2048: LSan then
   * reports a "leak" at exit. So once MAX_NEW_METHODS distinct methods
   * have been built, a valid method libsoup has not seen yet is swapped for
   * one it has (the method was checked by validate() above already). */
  if (valid && dispatch_request_get_method (request) != NULL &&
      g_quark_try_string (dispatch_request_get_method (request)) == 0 &&
      ++new_methods > MAX_NEW_METHODS)
    dispatch_request_set_method (request, "FUZZ");

  /* Dispatch does exactly this before sending anything (with the agent's
   * origin cache, which lives as long as the agent: here, the process). */
  msg = _dispatch_request_build_message (request, NULL, NULL, &build_error);
  check_cached_build (request, msg, build_error);

  if (msg == NULL)
    {
      check_error (build_error);
      fuzz_checkf (!valid,
                   "dispatch_request_validate() accepted the request but building "
                   "it failed: %s", build_error->message);
      fuzz_checkf (build_error->code == validate_error->code &&
                   strcmp (build_error->message, validate_error->message) == 0,
                   "validate and build disagree: \"%s\" vs \"%s\"",
                   validate_error->message, build_error->message);
    }
  else
    {
      fuzz_check (build_error == NULL);
      fuzz_checkf (valid, "an invalid request (%s) was built into a message",
                   validate_error->message);
      fuzz_check (SOUP_IS_MESSAGE (msg));
      check_message (request, msg);
    }

  return 0;
}
