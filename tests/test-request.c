/* test-request.c — DispatchRequest: validation, properties, query encoding
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every invalid request is checked twice: with dispatch_request_validate()
 * and through a real dispatch, where it must fail via on_response_error
 * with [request-start, error], name the field in the message, send
 * nothing and log nothing (a CRITICAL or WARNING is fatal in this binary).
 */

#include <string.h>

#include "test-util.h"

#include "dispatch-request-private.h"
#include "dispatch-util-private.h"

typedef TestFixture Fixture;

/* Nothing reached either server: no connection, no request. */
static void
assert_nothing_sent (Fixture *fixture)
{
  g_autoptr(GPtrArray) requests = test_fault_server_get_requests (fixture->fault);

  g_assert_cmpuint (test_server_get_requests (fixture->server), ==, 0);
  g_assert_cmpuint (test_server_get_connections (fixture->server), ==, 0);
  g_assert_cmpuint (requests->len, ==, 0);
  g_assert_cmpuint (test_fault_server_get_connections (fixture->fault), ==, 0);
}

static void
assert_message_names (const GError *error,
                      const char   *field)
{
  if (strstr (error->message, field) == NULL)
    g_test_message ("error message “%s” does not name “%s”", error->message, field);
  g_assert_nonnull (strstr (error->message, field));
}

/* The request must be rejected with (code, message naming field), both by
 * validate() and by a dispatch that sends nothing. */
static void
assert_rejected (Fixture         *fixture,
                 DispatchRequest *request,
                 int              code,
                 const char      *field)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(TestRecorder) recorder = NULL;
  gboolean valid;

  valid = dispatch_request_validate (request, &error);
  g_assert_error (error, DISPATCH_ERROR, code);
  g_assert_false (valid);
  assert_message_names (error, field);

  recorder = test_dispatch_and_wait (DISPATCH_DISPATCHER (fixture->agent), request);
  test_recorder_assert_events (recorder,
                               TEST_EVENT_REQUEST_START,
                               TEST_EVENT_ERROR,
                               -1);
  test_recorder_assert_error (recorder, code);
  assert_message_names (recorder->error, field);
  g_assert_true (dispatch_request_controller_get_finished (recorder->controller));

  assert_nothing_sent (fixture);
}

/* A request that would succeed against the fault server if it were sent
 * (an unknown path there answers 404 and closes). */
static DispatchRequest *
valid_request (Fixture *fixture)
{
  return dispatch_request_new ("GET", test_fault_server_get_origin (fixture->fault),
                               "/not-here");
}

/* ------------------------------------------------------------------------
 * Invalid requests
 * ------------------------------------------------------------------------ */

static void
test_invalid_method (Fixture       *fixture,
                     gconstpointer  data)
{
  const char * const methods[] = { "GE T", "", "GET\r\n", "GET\n", "G\x01T",
                                   "GÉT", "(GET)", "GET:" };

  g_test_summary ("a method that is not an RFC 9110 token, or NULL, fails "
                  "with INVALID_ARGUMENT naming “method”; nothing is sent");

  for (guint i = 0; i < G_N_ELEMENTS (methods); i++)
    {
      g_autoptr(DispatchRequest) request = valid_request (fixture);

      g_test_message ("method “%s”", methods[i]);
      dispatch_request_set_method (request, methods[i]);
      assert_rejected (fixture, request, DISPATCH_ERROR_INVALID_ARGUMENT, "method");
    }

  {
    g_autoptr(DispatchRequest) request = valid_request (fixture);

    g_test_message ("method NULL");
    dispatch_request_set_method (request, NULL);
    g_assert_null (dispatch_request_get_method (request));
    assert_rejected (fixture, request, DISPATCH_ERROR_INVALID_ARGUMENT, "method");
  }
}

static void
test_invalid_method_connect (Fixture       *fixture,
                             gconstpointer  data)
{
  g_autoptr(DispatchRequest) request = valid_request (fixture);

  g_test_summary ("CONNECT is INVALID_ARGUMENT naming “method”; nothing is sent");

  dispatch_request_set_method (request, "CONNECT");
  assert_rejected (fixture, request, DISPATCH_ERROR_INVALID_ARGUMENT, "method");
}

static void
test_invalid_origin (Fixture       *fixture,
                     gconstpointer  data)
{
  const char * const origins[] = {
    "",
    "ftp://h",
    "file:///etc/passwd",
    "http://",
    "http:///x",
    "http://h:99999",
    "http://h:65536",
    "http://h:0",
    "http://h/path",
    "http://h//",
    "http://h?x",
    "http://h/?x",
    "http://h#frag",
    "http://user@h",
    "http://user:pass@h",
    "not a uri",
    "127.0.0.1:8080",
    "/relative",
    "http://h :80",
    "http://h\r\n:80",
  };

  g_test_summary ("origins that are not http[s]://host[:port][/] fail with "
                  "INVALID_ARGUMENT naming “origin”; nothing is sent");

  for (guint i = 0; i < G_N_ELEMENTS (origins); i++)
    {
      g_autoptr(DispatchRequest) request = dispatch_request_new ("GET", origins[i], "/");

      g_test_message ("origin “%s”", origins[i]);
      assert_rejected (fixture, request, DISPATCH_ERROR_INVALID_ARGUMENT, "origin");
    }

  {
    g_autoptr(DispatchRequest) request = dispatch_request_new ("GET", NULL, "/");

    g_test_message ("origin NULL");
    g_assert_null (dispatch_request_get_origin (request));
    assert_rejected (fixture, request, DISPATCH_ERROR_INVALID_ARGUMENT, "origin");
  }
}

static void
test_invalid_path (Fixture       *fixture,
                   gconstpointer  data)
{
  const char * const paths[] = {
    "x",
    "",
    "*",
    "http://h/x",
    "/a b",
    "/a\tb",
    "/a\x01",
    "/a\x1f",
    "/a\x7f",
    "/a#frag",
    "/a?b#frag",
    "/a\r\nX-Injected: 1",
  };

  g_test_summary ("a path that does not start with “/” or carries a space, "
                  "a control byte, DEL or a fragment fails with "
                  "INVALID_ARGUMENT naming “path”; nothing is sent");

  for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      g_autoptr(DispatchRequest) request = valid_request (fixture);
      g_autofree char *escaped = g_strescape (paths[i], NULL);

      g_test_message ("path “%s”", escaped);
      dispatch_request_set_path (request, paths[i]);
      assert_rejected (fixture, request, DISPATCH_ERROR_INVALID_ARGUMENT, "path");
    }

  {
    g_autoptr(DispatchRequest) request = valid_request (fixture);

    g_test_message ("path NULL");
    dispatch_request_set_path (request, NULL);
    assert_rejected (fixture, request, DISPATCH_ERROR_INVALID_ARGUMENT, "path");
  }
}

/* The agent remembers the last target built for each origin; a later
 * request to that origin with a missing path must still be refused
 * cleanly, not compared against the remembered one. */
static void
test_invalid_path_after_remembered_target (Fixture       *fixture,
                                           gconstpointer  data)
{
  const char *origin = test_server_get_origin (fixture->server);
  g_autoptr(DispatchRequest) good = dispatch_request_new ("GET", origin, "/echo");
  g_autoptr(DispatchRequest) bad = dispatch_request_new ("GET", origin, "/echo");
  g_autoptr(TestRecorder) recorder = NULL;
  g_autoptr(TestRecorder) rejected = NULL;

  g_test_summary ("a NULL path to an origin whose last target is remembered "
                  "fails with INVALID_ARGUMENT naming “path”");

  recorder = test_dispatch_and_wait (DISPATCH_DISPATCHER (fixture->agent), good);
  test_recorder_assert_ok (recorder, 200, "");
  g_assert_cmpuint (test_server_get_requests (fixture->server), ==, 1);

  dispatch_request_set_path (bad, NULL);
  rejected = test_dispatch_and_wait (DISPATCH_DISPATCHER (fixture->agent), bad);
  test_recorder_assert_events (rejected, TEST_EVENT_REQUEST_START, TEST_EVENT_ERROR, -1);
  test_recorder_assert_error (rejected, DISPATCH_ERROR_INVALID_ARGUMENT);
  assert_message_names (rejected->error, "path");
  g_assert_cmpuint (test_server_get_requests (fixture->server), ==, 1);
}

static void
test_invalid_query (Fixture       *fixture,
                    gconstpointer  data)
{
  const char * const queries[] = { "a b", "a=1 2", "a=\x01", "a=\x7f", "a#b",
                                   "a=1\r\nX-Injected: 1" };

  g_test_summary ("a pre-encoded query with a space, control byte, DEL or "
                  "“#” fails with INVALID_ARGUMENT naming “query”");

  for (guint i = 0; i < G_N_ELEMENTS (queries); i++)
    {
      g_autoptr(DispatchRequest) request = valid_request (fixture);
      g_autofree char *escaped = g_strescape (queries[i], NULL);

      g_test_message ("query “%s”", escaped);
      dispatch_request_set_query (request, queries[i]);
      assert_rejected (fixture, request, DISPATCH_ERROR_INVALID_ARGUMENT, "query");
    }
}

static void
test_invalid_header_name (Fixture       *fixture,
                          gconstpointer  data)
{
  const char * const names[] = { "bad name", "x:y", "", "x\r\ny", "x\n",
                                 "x(y)", "x/y", "é", "x\x7f" };

  g_test_summary ("dispatch_request_add_header() accepts anything; a name "
                  "that is not a token then fails the dispatch with "
                  "INVALID_ARGUMENT naming “header”, without a CRITICAL");

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autoptr(DispatchRequest) request = valid_request (fixture);
      g_autofree char *escaped = g_strescape (names[i], NULL);

      g_test_message ("header name “%s”", escaped);
      dispatch_request_add_header (request, "x-fine", "1");
      dispatch_request_add_header (request, names[i], "value");
      assert_rejected (fixture, request, DISPATCH_ERROR_INVALID_ARGUMENT, "header");
    }
}

static void
test_invalid_header_value (Fixture       *fixture,
                           gconstpointer  data)
{
  const char * const values[] = { "a\rb", "a\nb", "a\r\nX-Injected: 1", "\r", "\n" };

  g_test_summary ("a header value with CR or LF fails the dispatch with "
                  "INVALID_ARGUMENT naming “header”");

  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autoptr(DispatchRequest) request = valid_request (fixture);
      g_autofree char *escaped = g_strescape (values[i], NULL);

      g_test_message ("header value “%s”", escaped);
      dispatch_request_add_header (request, "x-value", values[i]);
      assert_rejected (fixture, request, DISPATCH_ERROR_INVALID_ARGUMENT, "header");
    }
}

static void
test_invalid_header_framing (Fixture       *fixture,
                             gconstpointer  data)
{
  const struct {
    const char *name;
    const char *value;
  } cases[] = {
    { "Content-Length", "5" },
    { "content-length", "0" },
    { "Transfer-Encoding", "chunked" },
    { "transfer-encoding", "gzip" },
    { "Keep-Alive", "timeout=5" },
  };

  g_test_summary ("content-length, transfer-encoding and keep-alive request "
                  "headers are INVALID_ARGUMENT naming “header” (the body "
                  "and the agent decide them)");

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(DispatchRequest) request = valid_request (fixture);

      g_test_message ("header %s: %s", cases[i].name, cases[i].value);
      dispatch_request_add_header (request, cases[i].name, cases[i].value);
      assert_rejected (fixture, request, DISPATCH_ERROR_INVALID_ARGUMENT, "header");
    }

  /* the same through the validating headers API, with a body whose
   * length agrees: still the body's job */
  {
    g_autoptr(DispatchRequest) request = valid_request (fixture);
    g_autoptr(GBytes) body = g_bytes_new_static ("abc", 3);
    g_autoptr(GError) error = NULL;

    g_assert_true (dispatch_headers_append (dispatch_request_get_headers (request),
                                            "Content-Length", "3", &error));
    g_assert_no_error (error);
    dispatch_request_set_method (request, "PUT");
    dispatch_request_set_body (request, body);
    assert_rejected (fixture, request, DISPATCH_ERROR_INVALID_ARGUMENT, "header");
  }
}

static void
test_unsupported_headers (Fixture       *fixture,
                          gconstpointer  data)
{
  const struct {
    const char *name;
    const char *value;
    const char *field;
  } cases[] = {
    { "Expect", "100-continue", "expect" },
    { "expect", "anything", "expect" },
    { "Upgrade", "websocket", "upgrade" },
    { "upgrade", "h2c", "upgrade" },
  };

  g_test_summary ("expect and upgrade request headers are NOT_SUPPORTED, "
                  "naming the header; nothing is sent");

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(DispatchRequest) request = valid_request (fixture);

      g_test_message ("header %s: %s", cases[i].name, cases[i].value);
      dispatch_request_add_header (request, cases[i].name, cases[i].value);
      assert_rejected (fixture, request, DISPATCH_ERROR_NOT_SUPPORTED, "header");
      assert_rejected (fixture, request, DISPATCH_ERROR_NOT_SUPPORTED, cases[i].field);
    }
}

static void
test_invalid_body_both (Fixture       *fixture,
                        gconstpointer  data)
{
  g_autoptr(DispatchRequest) request = valid_request (fixture);
  g_autoptr(GBytes) body = g_bytes_new_static ("abc", 3);
  g_autoptr(GInputStream) stream = g_memory_input_stream_new_from_data ("abc", 3, NULL);

  g_test_summary ("body and body-stream both set is INVALID_ARGUMENT naming "
                  "“body”; nothing is sent and the stream is not read");

  dispatch_request_set_method (request, "POST");
  dispatch_request_set_body (request, body);
  dispatch_request_set_body_stream (request, stream, 3);
  g_assert_true (dispatch_request_get_body (request) == body);
  g_assert_true (dispatch_request_get_body_stream (request) == stream);

  assert_rejected (fixture, request, DISPATCH_ERROR_INVALID_ARGUMENT, "body");

  g_assert_false (g_input_stream_is_closed (stream));
  g_assert_cmpint (g_seekable_tell (G_SEEKABLE (stream)), ==, 0);
}

static void
test_invalid_agent_still_usable (Fixture       *fixture,
                                 gconstpointer  data)
{
  g_autoptr(DispatchRequest) bad = valid_request (fixture);
  g_autoptr(DispatchRequest) good = NULL;
  g_autoptr(TestRecorder) bad_recorder = NULL;
  g_autoptr(TestRecorder) good_recorder = NULL;
  g_autofree char *origin = g_strdup (test_server_get_origin (fixture->server));

  g_test_summary ("a rejected request leaves the agent usable: the next "
                  "valid request on it succeeds");

  dispatch_request_set_path (bad, "no-slash");
  bad_recorder = test_dispatch_and_wait (DISPATCH_DISPATCHER (fixture->agent), bad);
  test_recorder_assert_events (bad_recorder,
                               TEST_EVENT_REQUEST_START, TEST_EVENT_ERROR, -1);
  test_recorder_assert_error (bad_recorder, DISPATCH_ERROR_INVALID_ARGUMENT);

  good = dispatch_request_new ("GET", origin, "/hello");
  good_recorder = test_dispatch_and_wait (DISPATCH_DISPATCHER (fixture->agent), good);
  test_recorder_assert_events (good_recorder,
                               TEST_EVENT_REQUEST_START, TEST_EVENT_RESPONSE_START,
                               TEST_EVENT_DATA, TEST_EVENT_END, -1);
  test_recorder_assert_ok (good_recorder, 200, "Hello, World!");
  g_assert_cmpuint (test_server_get_requests (fixture->server), ==, 1);
}

/* ------------------------------------------------------------------------
 * Valid edge cases
 * ------------------------------------------------------------------------ */

static void
assert_valid (DispatchRequest *request)
{
  g_autoptr(GError) error = NULL;
  gboolean valid;

  valid = dispatch_request_validate (request, &error);
  g_assert_no_error (error);
  g_assert_true (valid);
}

static void
test_valid_origins (void)
{
  const char * const origins[] = {
    "http://h",
    "http://h/",
    "https://h:443",
    "https://h:443/",
    "http://h:1",
    "http://h:65535",
    "http://127.0.0.1:8080",
    "http://[::1]:8080",
    "http://[::1]",
    "https://[2001:db8::1]:8443/",
    "http://example.com:80",
    "HTTP://Example.COM",
  };

  g_test_summary ("http[s]://host[:port] with an optional trailing “/”, "
                  "IPv6 literals included, validates");

  for (guint i = 0; i < G_N_ELEMENTS (origins); i++)
    {
      g_autoptr(DispatchRequest) request = dispatch_request_new ("GET", origins[i], "/x");

      g_test_message ("origin “%s”", origins[i]);
      assert_valid (request);
    }
}

static void
test_valid_methods (void)
{
  const char * const methods[] = { "GET", "HEAD", "POST", "PUT", "DELETE",
                                   "OPTIONS", "PATCH", "TRACE", "PROPFIND",
                                   "x-custom!#$%&'*+-.^_`|~", "get" };

  g_test_summary ("every RFC 9110 token is an acceptable method");

  for (guint i = 0; i < G_N_ELEMENTS (methods); i++)
    {
      g_autoptr(DispatchRequest) request = dispatch_request_new (methods[i], "http://h", "/");

      g_test_message ("method “%s”", methods[i]);
      assert_valid (request);
    }
}

static void
test_valid_paths (void)
{
  const char * const paths[] = { "/", "/a/b/c", "/a?b=c", "/a?", "/%20",
                                 "/caf\xc3\xa9", "/!$&'()*+,;=:@-._~",
                                 "//double" };

  g_test_summary ("paths starting with “/”, with a query or non-ASCII bytes, "
                  "validate");

  for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      g_autoptr(DispatchRequest) request = dispatch_request_new ("GET", "http://h", paths[i]);

      g_test_message ("path “%s”", paths[i]);
      assert_valid (request);
    }
}

static void
test_valid_origin_trailing_slash (Fixture       *fixture,
                                  gconstpointer  data)
{
  g_autofree char *origin = g_strconcat (test_server_get_origin (fixture->server), "/", NULL);
  g_autoptr(DispatchRequest) request = dispatch_request_new ("GET", origin, "/echo");
  g_autoptr(TestRecorder) recorder = NULL;

  g_test_summary ("an origin with a trailing “/” is accepted and does not "
                  "double the slash of the path");

  assert_valid (request);

  recorder = test_dispatch_and_wait (DISPATCH_DISPATCHER (fixture->agent), request);
  test_recorder_assert_events (recorder,
                               TEST_EVENT_REQUEST_START, TEST_EVENT_RESPONSE_START,
                               TEST_EVENT_END, -1);
  test_recorder_assert_ok (recorder, 200, "");
  g_assert_cmpstr (dispatch_headers_get (recorder->headers, "x-path"), ==, "/echo");
  g_assert_cmpstr (dispatch_headers_get (recorder->headers, "x-method"), ==, "GET");
}

static void
test_valid_path_query_and_query (Fixture       *fixture,
                                 gconstpointer  data)
{
  g_autoptr(DispatchRequest) request = NULL;
  g_autoptr(TestRecorder) recorder = NULL;

  g_test_summary ("a path carrying “?a=1” plus a query property “b=2” sends "
                  "both: the server sees the query “a=1&b=2”");

  request = dispatch_request_new ("GET", test_server_get_origin (fixture->server),
                                  "/echo?a=1");
  dispatch_request_set_query (request, "b=2");
  assert_valid (request);

  recorder = test_dispatch_and_wait (DISPATCH_DISPATCHER (fixture->agent), request);
  test_recorder_assert_events (recorder,
                               TEST_EVENT_REQUEST_START, TEST_EVENT_RESPONSE_START,
                               TEST_EVENT_END, -1);
  test_recorder_assert_ok (recorder, 200, "");
  g_assert_cmpstr (dispatch_headers_get (recorder->headers, "x-path"), ==, "/echo");
  g_assert_cmpstr (dispatch_headers_get (recorder->headers, "x-query"), ==, "a=1&b=2");
}

/* The agent's origin cache remembers the last target per origin under the
 * request's own path and query, before any encoding: a repeated request
 * that needs encoding (or carries its query in the path) reuses the URI. */
static void
test_target_remembered_as_given (void)
{
  static const struct {
    const char *path;
    const char *query;
    const char *sent_path;
    const char *sent_query;
  } cases[] = {
    { "/plain", NULL, "/plain", NULL },
    { "/a?b=1", NULL, "/a", "b=1" },
    { "/a?b=1", "c=2", "/a", "b=1&c=2" },
    { "/\xc3\xa9", NULL, "/%C3%A9", NULL },
    { "/q", "x=\xc3\xa9", "/q", "x=%C3%A9" },
  };
  DispatchOriginCache *cache = _dispatch_origin_cache_new ();
  const char *origin = "http://127.0.0.1:1";

  g_test_summary ("a built target is remembered under the request's path and "
                  "query as given, and found again by them only");

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(DispatchRequest) request = dispatch_request_new ("GET", origin, cases[i].path);
      g_autoptr(GError) error = NULL;
      g_autoptr(SoupMessage) first = NULL;
      g_autoptr(SoupMessage) again = NULL;
      g_autoptr(GUri) parsed = NULL;
      g_autoptr(GUri) target = NULL;
      g_autoptr(GUri) other = NULL;

      if (cases[i].query != NULL)
        dispatch_request_set_query (request, cases[i].query);

      first = _dispatch_request_build_message (request, cache, NULL, &error);
      g_assert_no_error (error);

      parsed = _dispatch_origin_cache_lookup (cache, origin, cases[i].path, cases[i].query,
                                              &target);
      g_assert_nonnull (parsed);
      g_assert_nonnull (target);
      g_assert_cmpstr (g_uri_get_path (target), ==, cases[i].sent_path);
      g_assert_cmpstr (g_uri_get_query (target), ==, cases[i].sent_query);

      /* Not under what went out, when that differs. */
      if (g_strcmp0 (cases[i].path, cases[i].sent_path) != 0 ||
          g_strcmp0 (cases[i].query, cases[i].sent_query) != 0)
        {
          g_autoptr(GUri) parsed_again = _dispatch_origin_cache_lookup (cache, origin,
                                                                        cases[i].sent_path,
                                                                        cases[i].sent_query,
                                                                        &other);

          g_assert_nonnull (parsed_again);
          g_assert_null (other);
        }

      again = _dispatch_request_build_message (request, cache, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (g_uri_get_path (soup_message_get_uri (again)), ==, cases[i].sent_path);
      g_assert_cmpstr (g_uri_get_query (soup_message_get_uri (again)), ==, cases[i].sent_query);
    }

  _dispatch_origin_cache_free (cache);
}

static void
test_valid_empty_query (Fixture       *fixture,
                        gconstpointer  data)
{
  g_autoptr(DispatchRequest) request = NULL;
  g_autoptr(TestRecorder) recorder = NULL;

  g_test_summary ("an empty query property adds nothing to the target");

  request = dispatch_request_new ("GET", test_server_get_origin (fixture->server), "/echo");
  dispatch_request_set_query (request, "");
  assert_valid (request);

  recorder = test_dispatch_and_wait (DISPATCH_DISPATCHER (fixture->agent), request);
  test_recorder_assert_events (recorder,
                               TEST_EVENT_REQUEST_START, TEST_EVENT_RESPONSE_START,
                               TEST_EVENT_END, -1);
  test_recorder_assert_ok (recorder, 200, "");
  g_assert_cmpstr (dispatch_headers_get (recorder->headers, "x-query"), ==, "");
}

/* The request line of the only request the fault server received. */
static char *
fault_request_line (TestFaultServer *fault)
{
  g_autoptr(GPtrArray) requests = test_fault_server_get_requests (fault);
  const char *data;
  const char *eol;
  gsize len;

  g_assert_cmpuint (requests->len, ==, 1);
  data = g_bytes_get_data (g_ptr_array_index (requests, 0), &len);
  eol = g_strstr_len (data, len, "\r\n");
  g_assert_nonnull (eol);

  return g_strndup (data, eol - data);
}

static void
test_valid_non_ascii_path (Fixture       *fixture,
                           gconstpointer  data)
{
  g_autoptr(DispatchRequest) request = NULL;
  g_autoptr(TestRecorder) recorder = NULL;
  g_autofree char *line = NULL;

  g_test_summary ("bytes from 0x80 in path and query are percent-encoded on "
                  "the wire; ASCII and existing %XX escapes are kept");

  request = dispatch_request_new ("GET", test_fault_server_get_origin (fixture->fault),
                                  "/caf\xc3\xa9/%2F?x=\xc3\xbc");
  dispatch_request_set_query (request, "y=\xe2\x82\xac");
  assert_valid (request);

  /* an unknown path on the fault server: 404, Connection: close */
  recorder = test_dispatch_and_wait (DISPATCH_DISPATCHER (fixture->agent), request);
  test_recorder_assert_events (recorder,
                               TEST_EVENT_REQUEST_START, TEST_EVENT_RESPONSE_START,
                               TEST_EVENT_DATA, TEST_EVENT_END, -1);
  test_recorder_assert_ok (recorder, 404, "not found");

  line = fault_request_line (fixture->fault);
  g_assert_cmpstr (line, ==, "GET /caf%C3%A9/%2F?x=%C3%BC&y=%E2%82%AC HTTP/1.1");
}

/* The path and query are already percent-encoded: they go out byte for
 * byte, without dot-segment removal or unescaping (as undici). */
static void
test_valid_path_sent_verbatim (Fixture       *fixture,
                               gconstpointer  data)
{
  g_autoptr(DispatchRequest) request = NULL;
  g_autoptr(TestRecorder) recorder = NULL;
  g_autofree char *line = NULL;

  g_test_summary ("the pre-encoded path and query go out byte for byte: no "
                  "dot-segment removal, no re-casing or decoding of %XX "
                  "(LIBRARY BUG: currently normalised by GUri)");

  request = dispatch_request_new ("GET", test_fault_server_get_origin (fixture->fault),
                                  "/a/../b/./c/%2f/%41");
  dispatch_request_set_query (request, "q=%7e");

  recorder = test_dispatch_and_wait (DISPATCH_DISPATCHER (fixture->agent), request);
  test_recorder_assert_events (recorder,
                               TEST_EVENT_REQUEST_START, TEST_EVENT_RESPONSE_START,
                               TEST_EVENT_DATA, TEST_EVENT_END, -1);
  test_recorder_assert_ok (recorder, 404, "not found");

  line = fault_request_line (fixture->fault);
  g_assert_cmpstr (line, ==, "GET /a/../b/./c/%2f/%41?q=%7e HTTP/1.1");
}

/* ------------------------------------------------------------------------
 * Properties
 * ------------------------------------------------------------------------ */

static void
test_properties_defaults (void)
{
  g_autoptr(DispatchRequest) request = dispatch_request_new (NULL, NULL, NULL);
  g_autofree char *method = NULL;
  g_autofree char *origin = NULL;
  g_autofree char *path = NULL;
  g_autofree char *query = NULL;
  g_autoptr(DispatchHeaders) headers = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GInputStream) stream = NULL;
  gint64 body_length;
  int headers_timeout;
  int body_timeout;
  int timeout;
  gint64 max_response_size;
  gboolean idempotent;
  gboolean reset;

  g_test_summary ("defaults: GET, no origin, “/”, no query, empty mutable "
                  "headers, no body, body-length -1, timeouts -1, "
                  "max-response-size -2, idempotent, no reset");

  g_assert_cmpstr (dispatch_request_get_method (request), ==, "GET");
  g_assert_null (dispatch_request_get_origin (request));
  g_assert_cmpstr (dispatch_request_get_path (request), ==, "/");
  g_assert_null (dispatch_request_get_query (request));
  g_assert_nonnull (dispatch_request_get_headers (request));
  g_assert_cmpuint (dispatch_headers_get_length (dispatch_request_get_headers (request)), ==, 0);
  g_assert_false (dispatch_headers_is_read_only (dispatch_request_get_headers (request)));
  g_assert_null (dispatch_request_get_body (request));
  g_assert_null (dispatch_request_get_body_stream (request));
  g_assert_cmpint (dispatch_request_get_body_length (request), ==, -1);
  g_assert_cmpint (dispatch_request_get_headers_timeout (request), ==, -1);
  g_assert_cmpint (dispatch_request_get_body_timeout (request), ==, -1);
  g_assert_cmpint (dispatch_request_get_timeout (request), ==, -1);
  g_assert_cmpint (dispatch_request_get_max_response_size (request), ==, -2);
  g_assert_true (dispatch_request_get_idempotent (request));
  g_assert_false (dispatch_request_get_reset (request));

  g_object_get (request,
                "method", &method,
                "origin", &origin,
                "path", &path,
                "query", &query,
                "headers", &headers,
                "body", &body,
                "body-stream", &stream,
                "body-length", &body_length,
                "headers-timeout", &headers_timeout,
                "body-timeout", &body_timeout,
                "timeout", &timeout,
                "max-response-size", &max_response_size,
                "idempotent", &idempotent,
                "reset", &reset,
                NULL);

  g_assert_cmpstr (method, ==, "GET");
  g_assert_null (origin);
  g_assert_cmpstr (path, ==, "/");
  g_assert_null (query);
  g_assert_nonnull (headers);
  g_assert_cmpuint (dispatch_headers_get_length (headers), ==, 0);
  g_assert_null (body);
  g_assert_null (stream);
  g_assert_cmpint (body_length, ==, -1);
  g_assert_cmpint (headers_timeout, ==, -1);
  g_assert_cmpint (body_timeout, ==, -1);
  g_assert_cmpint (timeout, ==, -1);
  g_assert_cmpint (max_response_size, ==, -2);
  g_assert_true (idempotent);
  g_assert_false (reset);

  /* the pspec defaults agree with the instance defaults */
  {
    GObjectClass *klass = G_OBJECT_GET_CLASS (request);
    const struct {
      const char *name;
      gint64      value;
    } numeric[] = {
      { "body-length", -1 }, { "headers-timeout", -1 }, { "body-timeout", -1 },
      { "timeout", -1 }, { "max-response-size", -2 },
    };

    g_assert_cmpstr (g_value_get_string (g_param_spec_get_default_value (
                       g_object_class_find_property (klass, "method"))), ==, "GET");
    g_assert_cmpstr (g_value_get_string (g_param_spec_get_default_value (
                       g_object_class_find_property (klass, "path"))), ==, "/");

    for (guint i = 0; i < G_N_ELEMENTS (numeric); i++)
      {
        GParamSpec *pspec = g_object_class_find_property (klass, numeric[i].name);
        g_auto(GValue) value = G_VALUE_INIT;
        const GValue *def;

        g_assert_nonnull (pspec);
        def = g_param_spec_get_default_value (pspec);
        g_value_init (&value, G_TYPE_INT64);
        g_assert_true (g_value_transform (def, &value));
        g_assert_cmpint (g_value_get_int64 (&value), ==, numeric[i].value);
      }
  }
}

static void
test_properties_dispatch_request_new (void)
{
  g_autoptr(DispatchRequest) request = dispatch_request_new ("PUT", "http://h:1", "/p?q");

  g_test_summary ("dispatch_request_new() sets method, origin and path");

  g_assert_cmpstr (dispatch_request_get_method (request), ==, "PUT");
  g_assert_cmpstr (dispatch_request_get_origin (request), ==, "http://h:1");
  g_assert_cmpstr (dispatch_request_get_path (request), ==, "/p?q");
}

static void
test_properties_idempotent (void)
{
  const char * const idempotent[] = { "GET", "HEAD", "PUT", "DELETE", "OPTIONS" };
  const char * const not_idempotent[] = { "POST", "PATCH", "x-custom", "get" };

  g_test_summary ("idempotent defaults to TRUE for GET, HEAD, PUT, DELETE, "
                  "OPTIONS and FALSE for other methods unless set; an "
                  "explicit value survives a method change");

  for (guint i = 0; i < G_N_ELEMENTS (idempotent); i++)
    {
      g_autoptr(DispatchRequest) request = dispatch_request_new (idempotent[i], "http://h", "/");
      gboolean value;

      g_test_message ("method %s", idempotent[i]);
      g_assert_true (dispatch_request_get_idempotent (request));
      g_object_get (request, "idempotent", &value, NULL);
      g_assert_true (value);
    }

  for (guint i = 0; i < G_N_ELEMENTS (not_idempotent); i++)
    {
      g_autoptr(DispatchRequest) request = dispatch_request_new (not_idempotent[i],
                                                                 "http://h", "/");
      gboolean value;

      g_test_message ("method %s", not_idempotent[i]);
      g_assert_false (dispatch_request_get_idempotent (request));
      g_object_get (request, "idempotent", &value, NULL);
      g_assert_false (value);

      dispatch_request_set_idempotent (request, TRUE);
      g_assert_true (dispatch_request_get_idempotent (request));
    }

  /* derived value follows the method until set explicitly */
  {
    g_autoptr(DispatchRequest) request = dispatch_request_new ("GET", "http://h", "/");

    dispatch_request_set_method (request, "POST");
    g_assert_false (dispatch_request_get_idempotent (request));
    dispatch_request_set_method (request, "DELETE");
    g_assert_true (dispatch_request_get_idempotent (request));

    dispatch_request_set_idempotent (request, FALSE);
    g_assert_false (dispatch_request_get_idempotent (request));
    dispatch_request_set_method (request, "GET");
    g_assert_false (dispatch_request_get_idempotent (request));
  }

  {
    g_autoptr(DispatchRequest) request = dispatch_request_new ("POST", "http://h", "/");

    g_object_set (request, "idempotent", TRUE, NULL);
    dispatch_request_set_method (request, "PATCH");
    g_assert_true (dispatch_request_get_idempotent (request));
  }
}

static void
notify_cb (GObject    *object,
           GParamSpec *pspec,
           gpointer    user_data)
{
  GHashTable *counts = user_data;
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (counts, pspec->name));

  g_hash_table_insert (counts, (gpointer) g_intern_string (pspec->name),
                       GUINT_TO_POINTER (n + 1));
}

/* Asserts exactly the named properties were notified (once each), then
 * resets the counts. names is NULL-terminated. */
static void
assert_notified (GHashTable         *counts,
                 const char * const *names)
{
  guint n_names = names ? g_strv_length ((char **) names) : 0;

  if (g_hash_table_size (counts) != n_names)
    {
      GHashTableIter iter;
      gpointer key, value;

      g_hash_table_iter_init (&iter, counts);
      while (g_hash_table_iter_next (&iter, &key, &value))
        g_test_message ("notified: %s ×%u", (const char *) key, GPOINTER_TO_UINT (value));
    }
  g_assert_cmpuint (g_hash_table_size (counts), ==, n_names);

  for (guint i = 0; i < n_names; i++)
    g_assert_cmpuint (GPOINTER_TO_UINT (g_hash_table_lookup (counts, g_intern_string (names[i]))),
                      ==, 1);

  g_hash_table_remove_all (counts);
}

#define NOTIFIED(...) ((const char * const []) { __VA_ARGS__, NULL })

static void
test_properties_notify (void)
{
  g_autoptr(DispatchRequest) request = dispatch_request_new ("GET", "http://h", "/");
  g_autoptr(GHashTable) counts = g_hash_table_new (NULL, NULL);
  g_autoptr(GBytes) body = g_bytes_new_static ("x", 1);
  g_autoptr(GInputStream) stream = g_memory_input_stream_new ();
  g_autoptr(DispatchHeaders) headers = dispatch_headers_new ();

  g_test_summary ("every property notifies exactly once when it changes and "
                  "not at all when set to its current value");

  g_signal_connect (request, "notify", G_CALLBACK (notify_cb), counts);

  /* strings */
  dispatch_request_set_method (request, "GET");
  dispatch_request_set_origin (request, "http://h");
  dispatch_request_set_path (request, "/");
  dispatch_request_set_query (request, NULL);
  assert_notified (counts, NULL);

  /* idempotent is derived from the method unless set: GET -> POST
   * changes it too */
  dispatch_request_set_method (request, "POST");
  assert_notified (counts, NOTIFIED ("method", "idempotent"));
  dispatch_request_set_method (request, "POST");
  g_object_set (request, "method", "POST", NULL);
  assert_notified (counts, NULL);

  dispatch_request_set_origin (request, "http://other");
  assert_notified (counts, NOTIFIED ("origin"));
  dispatch_request_set_origin (request, "http://other");
  assert_notified (counts, NULL);
  dispatch_request_set_origin (request, NULL);
  assert_notified (counts, NOTIFIED ("origin"));
  dispatch_request_set_origin (request, NULL);
  assert_notified (counts, NULL);

  dispatch_request_set_path (request, "/x");
  assert_notified (counts, NOTIFIED ("path"));
  g_object_set (request, "path", "/x", NULL);
  assert_notified (counts, NULL);

  dispatch_request_set_query (request, "a=1");
  assert_notified (counts, NOTIFIED ("query"));
  dispatch_request_set_query (request, "a=1");
  assert_notified (counts, NULL);
  dispatch_request_add_query (request, "b", "2");
  assert_notified (counts, NOTIFIED ("query"));

  /* body */
  dispatch_request_set_body (request, NULL);
  assert_notified (counts, NULL);
  dispatch_request_set_body (request, body);
  assert_notified (counts, NOTIFIED ("body"));
  dispatch_request_set_body (request, body);
  assert_notified (counts, NULL);
  dispatch_request_set_body (request, NULL);
  assert_notified (counts, NOTIFIED ("body"));

  /* body stream and length */
  dispatch_request_set_body_stream (request, NULL, -1);
  assert_notified (counts, NULL);
  dispatch_request_set_body_stream (request, stream, 10);
  assert_notified (counts, NOTIFIED ("body-stream", "body-length"));
  dispatch_request_set_body_stream (request, stream, 10);
  assert_notified (counts, NULL);
  dispatch_request_set_body_stream (request, stream, -1);
  assert_notified (counts, NOTIFIED ("body-length"));
  g_object_set (request, "body-length", (gint64) -1, NULL);
  assert_notified (counts, NULL);
  g_object_set (request, "body-length", (gint64) 5, NULL);
  assert_notified (counts, NOTIFIED ("body-length"));
  g_assert_true (dispatch_request_get_body_stream (request) == stream);
  dispatch_request_set_body_stream (request, NULL, 5);
  assert_notified (counts, NOTIFIED ("body-stream"));

  /* integers */
  dispatch_request_set_headers_timeout (request, -1);
  dispatch_request_set_body_timeout (request, -1);
  dispatch_request_set_timeout (request, -1);
  dispatch_request_set_max_response_size (request, -2);
  assert_notified (counts, NULL);

  dispatch_request_set_headers_timeout (request, 0);
  dispatch_request_set_body_timeout (request, 100);
  dispatch_request_set_timeout (request, G_MAXINT);
  dispatch_request_set_max_response_size (request, -1);
  assert_notified (counts, NOTIFIED ("headers-timeout", "body-timeout", "timeout",
                                     "max-response-size"));
  g_object_set (request,
                "headers-timeout", 0,
                "body-timeout", 100,
                "timeout", G_MAXINT,
                "max-response-size", (gint64) -1,
                NULL);
  assert_notified (counts, NULL);

  /* booleans */
  dispatch_request_set_reset (request, FALSE);
  assert_notified (counts, NULL);
  dispatch_request_set_reset (request, TRUE);
  assert_notified (counts, NOTIFIED ("reset"));
  dispatch_request_set_reset (request, 42);  /* any non-zero is TRUE */
  assert_notified (counts, NULL);
  g_assert_true (dispatch_request_get_reset (request));

  /* The method is POST, so idempotent reads FALSE already; whether making
   * that explicit notifies is not specified: only count from here. */
  dispatch_request_set_idempotent (request, FALSE);
  g_hash_table_remove_all (counts);
  dispatch_request_set_idempotent (request, FALSE);
  assert_notified (counts, NULL);
  dispatch_request_set_idempotent (request, TRUE);
  assert_notified (counts, NOTIFIED ("idempotent"));
  dispatch_request_set_idempotent (request, 7);
  assert_notified (counts, NULL);

  /* headers: same object is no change; another list is */
  dispatch_request_set_headers (request, dispatch_request_get_headers (request));
  assert_notified (counts, NULL);
  dispatch_request_set_headers (request, headers);
  assert_notified (counts, NOTIFIED ("headers"));
  g_assert_true (dispatch_request_get_headers (request) != headers);
}

static void
test_properties_construct (void)
{
  g_autoptr(GBytes) body = g_bytes_new_static ("payload", 7);
  g_autoptr(DispatchHeaders) headers = dispatch_headers_new ();
  g_autoptr(DispatchRequest) request = NULL;
  g_autoptr(GInputStream) stream = g_memory_input_stream_new_from_data ("abc", 3, NULL);

  g_test_summary ("g_object_new() with every property sets each of them; "
                  "body-stream and body-length combine in either order; "
                  "headers are copied");

  g_assert_true (dispatch_headers_append (headers, "X-A", "1", NULL));

  request = g_object_new (DISPATCH_TYPE_REQUEST,
                          "method", "PATCH",
                          "origin", "https://example.com:8443",
                          "path", "/items/1",
                          "query", "a=1&b=2",
                          "headers", headers,
                          "body", body,
                          "headers-timeout", 1000,
                          "body-timeout", 2000,
                          "timeout", 0,
                          "idempotent", TRUE,
                          "reset", TRUE,
                          "max-response-size", (gint64) 4096,
                          NULL);

  g_assert_cmpstr (dispatch_request_get_method (request), ==, "PATCH");
  g_assert_cmpstr (dispatch_request_get_origin (request), ==, "https://example.com:8443");
  g_assert_cmpstr (dispatch_request_get_path (request), ==, "/items/1");
  g_assert_cmpstr (dispatch_request_get_query (request), ==, "a=1&b=2");
  g_assert_true (dispatch_request_get_body (request) == body);
  g_assert_null (dispatch_request_get_body_stream (request));
  g_assert_cmpint (dispatch_request_get_headers_timeout (request), ==, 1000);
  g_assert_cmpint (dispatch_request_get_body_timeout (request), ==, 2000);
  g_assert_cmpint (dispatch_request_get_timeout (request), ==, 0);
  g_assert_true (dispatch_request_get_idempotent (request));
  g_assert_true (dispatch_request_get_reset (request));
  g_assert_cmpint (dispatch_request_get_max_response_size (request), ==, 4096);

  /* the headers were copied: later changes to ours do not leak in */
  g_assert_true (dispatch_request_get_headers (request) != headers);
  g_assert_cmpstr (dispatch_headers_get (dispatch_request_get_headers (request), "x-a"), ==, "1");
  g_assert_true (dispatch_headers_append (headers, "X-B", "2", NULL));
  g_assert_false (dispatch_headers_contains (dispatch_request_get_headers (request), "x-b"));
  assert_valid (request);
  g_clear_object (&request);

  /* body-length before body-stream */
  request = g_object_new (DISPATCH_TYPE_REQUEST,
                          "origin", "http://h",
                          "body-length", (gint64) 3,
                          "body-stream", stream,
                          NULL);
  g_assert_true (dispatch_request_get_body_stream (request) == stream);
  g_assert_cmpint (dispatch_request_get_body_length (request), ==, 3);
  g_clear_object (&request);

  /* body-stream before body-length */
  request = g_object_new (DISPATCH_TYPE_REQUEST,
                          "origin", "http://h",
                          "body-stream", stream,
                          "body-length", (gint64) 3,
                          NULL);
  g_assert_true (dispatch_request_get_body_stream (request) == stream);
  g_assert_cmpint (dispatch_request_get_body_length (request), ==, 3);
  g_clear_object (&request);

  /* a NULL method through g_object_new stays NULL (invalid at dispatch) */
  request = g_object_new (DISPATCH_TYPE_REQUEST, "method", NULL, "origin", "http://h", NULL);
  g_assert_null (dispatch_request_get_method (request));
  g_assert_false (dispatch_request_validate (request, NULL));
}

static void
test_properties_headers_roundtrip (void)
{
  g_autoptr(DispatchRequest) request = dispatch_request_new ("GET", "http://h", "/");
  DispatchHeaders *own;

  g_test_summary ("get_headers() is the request's own mutable list; "
                  "add_header() appends to it (lower-cased, repeated names "
                  "kept); set_headers(NULL) empties it");

  own = dispatch_request_get_headers (request);
  dispatch_request_add_header (request, "X-Multi", "a");
  dispatch_request_add_header (request, "x-multi", "b");
  g_assert_true (dispatch_headers_append (own, "X-Other", "c", NULL));

  g_assert_cmpuint (dispatch_headers_get_length (own), ==, 3);
  g_assert_cmpstr (dispatch_headers_get_name (own, 0), ==, "x-multi");
  g_assert_cmpstr (dispatch_headers_get_value (own, 0), ==, "a");
  g_assert_cmpstr (dispatch_headers_get_value (own, 1), ==, "b");
  g_assert_cmpstr (dispatch_headers_get_name (own, 2), ==, "x-other");

  dispatch_request_set_headers (request, NULL);
  g_assert_nonnull (dispatch_request_get_headers (request));
  g_assert_cmpuint (dispatch_headers_get_length (dispatch_request_get_headers (request)), ==, 0);
}

static void
test_add_query (void)
{
  const struct {
    const char *key;
    const char *value;
    const char *expected;
  } single[] = {
    { "a", "b", "a=b" },
    { "k y", "v&w=x", "k%20y=v%26w%3Dx" },
    { "caf\xc3\xa9", "\xc3\xbc\xe2\x82\xac", "caf%C3%A9=%C3%BC%E2%82%AC" },
    { "flag", NULL, "flag" },
    { "empty", "", "empty=" },
    { "", "v", "=v" },
    { "a+b/c~d-e_f.g", "?#[]@!$'()*,;:%",
      "a%2Bb%2Fc~d-e_f.g=%3F%23%5B%5D%40%21%24%27%28%29%2A%2C%3B%3A%25" },
    { "AZaz09", "-._~", "AZaz09=-._~" },
    { "nl", "a\r\nb", "nl=a%0D%0Ab" },
  };

  g_test_summary ("add_query() percent-encodes key and value (all but RFC "
                  "3986 unreserved) and joins parameters with “&”");

  for (guint i = 0; i < G_N_ELEMENTS (single); i++)
    {
      g_autoptr(DispatchRequest) request = dispatch_request_new ("GET", "http://h", "/");

      g_test_message ("add_query (“%s”, “%s”)", single[i].key,
                      single[i].value ? single[i].value : "(null)");
      dispatch_request_add_query (request, single[i].key, single[i].value);
      g_assert_cmpstr (dispatch_request_get_query (request), ==, single[i].expected);
      assert_valid (request);
    }

  {
    g_autoptr(DispatchRequest) request = dispatch_request_new ("GET", "http://h", "/");

    dispatch_request_add_query (request, "a", "b");
    dispatch_request_add_query (request, "k y", "v&w=x");
    dispatch_request_add_query (request, "flag", NULL);
    dispatch_request_add_query (request, "a", "again");
    g_assert_cmpstr (dispatch_request_get_query (request), ==,
                     "a=b&k%20y=v%26w%3Dx&flag&a=again");
  }

  {
    g_autoptr(DispatchRequest) request = dispatch_request_new ("GET", "http://h", "/");

    dispatch_request_set_query (request, "x=1%202");
    dispatch_request_add_query (request, "y", "3 4");
    g_assert_cmpstr (dispatch_request_get_query (request), ==, "x=1%202&y=3%204");

    dispatch_request_set_query (request, "");
    dispatch_request_add_query (request, "z", "5");
    g_assert_cmpstr (dispatch_request_get_query (request), ==, "z=5");
  }
}

static void
test_add_query_on_server (Fixture       *fixture,
                          gconstpointer  data)
{
  g_autoptr(DispatchRequest) request = NULL;
  g_autoptr(TestRecorder) recorder = NULL;
  g_autoptr(GHashTable) params = NULL;
  const char *query;

  g_test_summary ("what add_query() encodes, the server decodes back to the "
                  "original strings");

  request = dispatch_request_new ("GET", test_server_get_origin (fixture->server), "/echo");
  dispatch_request_add_query (request, "q", "a b&c=d");
  dispatch_request_add_query (request, "caf\xc3\xa9", "\xc3\xbc \xe2\x82\xac");
  dispatch_request_add_query (request, "plus", "1+1");

  recorder = test_dispatch_and_wait (DISPATCH_DISPATCHER (fixture->agent), request);
  test_recorder_assert_events (recorder,
                               TEST_EVENT_REQUEST_START, TEST_EVENT_RESPONSE_START,
                               TEST_EVENT_END, -1);
  test_recorder_assert_ok (recorder, 200, "");

  query = dispatch_headers_get (recorder->headers, "x-query");
  g_assert_cmpstr (query, ==, dispatch_request_get_query (request));
  params = g_uri_parse_params (query, -1, "&", G_URI_PARAMS_NONE, NULL);
  g_assert_nonnull (params);
  g_assert_cmpuint (g_hash_table_size (params), ==, 3);
  g_assert_cmpstr (g_hash_table_lookup (params, "q"), ==, "a b&c=d");
  g_assert_cmpstr (g_hash_table_lookup (params, "caf\xc3\xa9"), ==, "\xc3\xbc \xe2\x82\xac");
  g_assert_cmpstr (g_hash_table_lookup (params, "plus"), ==, "1+1");
}

int
main (int   argc,
      char *argv[])
{
  test_init (&argc, &argv);

  /* A CRITICAL or WARNING anywhere (library, libsoup, GLib) aborts the
   * binary and fails the run: validation must never reach libsoup's
   * g_return_if_fail() checks. (g_test_init() already does this; be
   * explicit, it is what these tests rely on.) */
  g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, test_fixture_setup, func, test_fixture_teardown)

  ADD ("/request/invalid/method", test_invalid_method);
  ADD ("/request/invalid/method-connect", test_invalid_method_connect);
  ADD ("/request/invalid/origin", test_invalid_origin);
  ADD ("/request/invalid/path", test_invalid_path);
  ADD ("/request/invalid/query", test_invalid_query);
  ADD ("/request/invalid/header-name", test_invalid_header_name);
  ADD ("/request/invalid/header-value", test_invalid_header_value);
  ADD ("/request/invalid/header-framing", test_invalid_header_framing);
  ADD ("/request/invalid/header-unsupported", test_unsupported_headers);
  ADD ("/request/invalid/body-and-body-stream", test_invalid_body_both);
  ADD ("/request/invalid/path-after-remembered-target", test_invalid_path_after_remembered_target);
  ADD ("/request/invalid/agent-still-usable", test_invalid_agent_still_usable);

  g_test_add_func ("/request/valid/origins", test_valid_origins);
  g_test_add_func ("/request/valid/methods", test_valid_methods);
  g_test_add_func ("/request/valid/paths", test_valid_paths);
  g_test_add_func ("/request/target/remembered-as-given", test_target_remembered_as_given);
  ADD ("/request/valid/origin-trailing-slash", test_valid_origin_trailing_slash);
  ADD ("/request/valid/path-query-and-query", test_valid_path_query_and_query);
  ADD ("/request/valid/empty-query", test_valid_empty_query);
  ADD ("/request/valid/non-ascii-path", test_valid_non_ascii_path);

  g_test_add_func ("/request/properties/defaults", test_properties_defaults);
  g_test_add_func ("/request/properties/new", test_properties_dispatch_request_new);
  g_test_add_func ("/request/properties/idempotent", test_properties_idempotent);
  g_test_add_func ("/request/properties/notify", test_properties_notify);
  g_test_add_func ("/request/properties/construct", test_properties_construct);
  g_test_add_func ("/request/properties/headers", test_properties_headers_roundtrip);

  g_test_add_func ("/request/query/add-query", test_add_query);
  ADD ("/request/query/add-query-on-server", test_add_query_on_server);

  ADD ("/request/valid/path-sent-verbatim", test_valid_path_sent_verbatim);

#undef ADD

  return g_test_run ();
}
