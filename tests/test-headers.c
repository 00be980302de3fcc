/* test-headers.c — unit tests for DispatchHeaders
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include <string.h>

#include <libdispatch-gobject/dispatch-headers-private.h>
#include <libdispatch-gobject/dispatch-util-private.h>

#include "test-util.h"

/* get_all()/get_names() of nothing: accept NULL or an empty vector. */
static guint
strv_length0 (char **strv)
{
  return strv != NULL ? g_strv_length (strv) : 0;
}

static void
append_ok (DispatchHeaders *headers,
           const char      *name,
           const char      *value)
{
  g_autoptr(GError) error = NULL;
  gboolean ok;

  ok = dispatch_headers_append (headers, name, value, &error);
  g_assert_no_error (error);
  g_assert_true (ok);
}

static void
assert_all (DispatchHeaders    *headers,
            const char         *name,
            const char * const *expected)
{
  g_auto(GStrv) all = dispatch_headers_get_all (headers, name);
  guint n_expected = g_strv_length ((char **) expected);

  g_assert_cmpuint (strv_length0 (all), ==, n_expected);
  for (guint i = 0; i < n_expected; i++)
    g_assert_cmpstr (all[i], ==, expected[i]);
}

static void
test_headers_new_empty (void)
{
  g_autoptr(DispatchHeaders) headers = dispatch_headers_new ();
  g_auto(GStrv) all = NULL;
  g_auto(GStrv) names = NULL;

  g_assert_nonnull (headers);
  g_assert_false (dispatch_headers_is_read_only (headers));
  g_assert_cmpuint (dispatch_headers_get_length (headers), ==, 0);
  g_assert_false (dispatch_headers_contains (headers, "x-foo"));
  g_assert_null (dispatch_headers_get (headers, "x-foo"));

  all = dispatch_headers_get_all (headers, "x-foo");
  g_assert_cmpuint (strv_length0 (all), ==, 0);
  names = dispatch_headers_get_names (headers);
  g_assert_cmpuint (strv_length0 (names), ==, 0);

  g_assert_cmpuint (dispatch_headers_remove (headers, "x-foo"), ==, 0);
}

static void
test_headers_append_get (void)
{
  g_autoptr(DispatchHeaders) headers = dispatch_headers_new ();
  const char * const foo[] = { "one", "two", "three", NULL };
  const char * const bar[] = { "b", NULL };

  g_test_summary ("append keeps every value in order; get returns the last "
                  "one; names are stored in lower case");

  append_ok (headers, "X-Foo", "one");
  append_ok (headers, "X-Bar", "b");
  append_ok (headers, "x-foo", "two");
  append_ok (headers, "X-FOO", "three");

  g_assert_cmpuint (dispatch_headers_get_length (headers), ==, 4);
  g_assert_true (dispatch_headers_contains (headers, "x-foo"));
  g_assert_true (dispatch_headers_contains (headers, "x-bar"));
  g_assert_false (dispatch_headers_contains (headers, "x-baz"));

  g_assert_cmpstr (dispatch_headers_get (headers, "x-foo"), ==, "three");
  g_assert_cmpstr (dispatch_headers_get (headers, "x-bar"), ==, "b");
  assert_all (headers, "x-foo", foo);
  assert_all (headers, "x-bar", bar);

  /* entries keep insertion order, names reported in lower case */
  g_assert_cmpstr (dispatch_headers_get_name (headers, 0), ==, "x-foo");
  g_assert_cmpstr (dispatch_headers_get_value (headers, 0), ==, "one");
  g_assert_cmpstr (dispatch_headers_get_name (headers, 1), ==, "x-bar");
  g_assert_cmpstr (dispatch_headers_get_value (headers, 1), ==, "b");
  g_assert_cmpstr (dispatch_headers_get_name (headers, 2), ==, "x-foo");
  g_assert_cmpstr (dispatch_headers_get_value (headers, 2), ==, "two");
  g_assert_cmpstr (dispatch_headers_get_name (headers, 3), ==, "x-foo");
  g_assert_cmpstr (dispatch_headers_get_value (headers, 3), ==, "three");
}

static void
test_headers_case_insensitive (void)
{
  g_autoptr(DispatchHeaders) headers = dispatch_headers_new ();
  const char * const values[] = { "text/plain", "text/html", NULL };

  g_test_summary ("every lookup ignores the case of the name");

  append_ok (headers, "Content-Type", "text/plain");
  append_ok (headers, "CONTENT-TYPE", "text/html");

  g_assert_true (dispatch_headers_contains (headers, "content-type"));
  g_assert_true (dispatch_headers_contains (headers, "CONTENT-TYPE"));
  g_assert_true (dispatch_headers_contains (headers, "Content-type"));
  g_assert_cmpstr (dispatch_headers_get (headers, "cOnTeNt-TyPe"), ==, "text/html");
  assert_all (headers, "content-type", values);
  assert_all (headers, "Content-Type", values);
  assert_all (headers, "CONTENT-TYPE", values);

  for (guint i = 0; i < dispatch_headers_get_length (headers); i++)
    g_assert_cmpstr (dispatch_headers_get_name (headers, i), ==, "content-type");

  g_assert_cmpuint (dispatch_headers_remove (headers, "CoNtEnT-tYpE"), ==, 2);
  g_assert_false (dispatch_headers_contains (headers, "content-type"));
}

static void
test_headers_set (void)
{
  g_autoptr(DispatchHeaders) headers = dispatch_headers_new ();
  g_autoptr(GError) error = NULL;
  const char * const replaced[] = { "new", NULL };
  const char * const other[] = { "keep", NULL };

  g_test_summary ("set replaces every value of a name and leaves other "
                  "names alone");

  append_ok (headers, "X-Foo", "a");
  append_ok (headers, "X-Other", "keep");
  append_ok (headers, "x-foo", "b");

  g_assert_true (dispatch_headers_set (headers, "X-FOO", "new", &error));
  g_assert_no_error (error);

  assert_all (headers, "x-foo", replaced);
  assert_all (headers, "x-other", other);
  g_assert_cmpstr (dispatch_headers_get (headers, "x-foo"), ==, "new");
  g_assert_cmpuint (dispatch_headers_get_length (headers), ==, 2);

  /* set on an absent name adds it */
  g_assert_true (dispatch_headers_set (headers, "X-New", "fresh", &error));
  g_assert_no_error (error);
  g_assert_cmpstr (dispatch_headers_get (headers, "x-new"), ==, "fresh");
  g_assert_cmpuint (dispatch_headers_get_length (headers), ==, 3);

  /* setting it again does not duplicate it */
  g_assert_true (dispatch_headers_set (headers, "x-new", "fresher", &error));
  g_assert_no_error (error);
  g_assert_cmpstr (dispatch_headers_get (headers, "x-new"), ==, "fresher");
  g_assert_cmpuint (dispatch_headers_get_length (headers), ==, 3);

  for (guint i = 0; i < dispatch_headers_get_length (headers); i++)
    {
      const char *name = dispatch_headers_get_name (headers, i);
      g_autofree char *lower = g_ascii_strdown (name, -1);

      g_assert_cmpstr (name, ==, lower);
    }
}

static void
test_headers_remove (void)
{
  g_autoptr(DispatchHeaders) headers = dispatch_headers_new ();

  g_test_summary ("remove drops every value of a name and returns how many "
                  "it dropped");

  append_ok (headers, "X-A", "1");
  append_ok (headers, "X-B", "2");
  append_ok (headers, "x-a", "3");
  append_ok (headers, "X-C", "4");

  g_assert_cmpuint (dispatch_headers_remove (headers, "x-a"), ==, 2);
  g_assert_false (dispatch_headers_contains (headers, "x-a"));
  g_assert_null (dispatch_headers_get (headers, "x-a"));
  g_assert_cmpuint (dispatch_headers_get_length (headers), ==, 2);

  /* the rest keeps its order */
  g_assert_cmpstr (dispatch_headers_get_name (headers, 0), ==, "x-b");
  g_assert_cmpstr (dispatch_headers_get_value (headers, 0), ==, "2");
  g_assert_cmpstr (dispatch_headers_get_name (headers, 1), ==, "x-c");
  g_assert_cmpstr (dispatch_headers_get_value (headers, 1), ==, "4");

  g_assert_cmpuint (dispatch_headers_remove (headers, "x-a"), ==, 0);
  g_assert_cmpuint (dispatch_headers_remove (headers, "x-missing"), ==, 0);
  g_assert_cmpuint (dispatch_headers_remove (headers, "X-B"), ==, 1);
  g_assert_cmpuint (dispatch_headers_remove (headers, "x-c"), ==, 1);
  g_assert_cmpuint (dispatch_headers_get_length (headers), ==, 0);

  /* still usable after being emptied */
  append_ok (headers, "X-A", "again");
  g_assert_cmpstr (dispatch_headers_get (headers, "x-a"), ==, "again");
}

static void
test_headers_names (void)
{
  g_autoptr(DispatchHeaders) headers = dispatch_headers_new ();
  g_auto(GStrv) names = NULL;
  const char *expected[] = { "set-cookie", "x-foo", "content-type" };

  g_test_summary ("get_names lists each name once, in lower case");

  append_ok (headers, "Set-Cookie", "a=1");
  append_ok (headers, "X-Foo", "one");
  append_ok (headers, "set-cookie", "b=2");
  append_ok (headers, "Content-Type", "text/plain");
  append_ok (headers, "SET-COOKIE", "c=3");
  append_ok (headers, "x-foo", "two");

  names = dispatch_headers_get_names (headers);
  g_assert_nonnull (names);
  g_assert_cmpuint (g_strv_length (names), ==, G_N_ELEMENTS (expected));

  /* the order of distinct names is not part of the contract */
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    g_assert_true (g_strv_contains ((const char * const *) names, expected[i]));

  for (guint i = 0; names[i] != NULL; i++)
    for (guint j = i + 1; names[j] != NULL; j++)
      g_assert_cmpstr (names[i], !=, names[j]);
}

static void
test_headers_values (void)
{
  g_autoptr(DispatchHeaders) headers = dispatch_headers_new ();

  g_test_summary ("empty values, tabs inside values, UTF-8 and every token "
                  "character in names are accepted and kept as given");

  append_ok (headers, "X-Empty", "");
  append_ok (headers, "X-Tab", "a\tb");
  append_ok (headers, "X-Utf8", "caf\xc3\xa9");
  append_ok (headers, "X-Spaces", "a b  c");
  append_ok (headers, "x-!#$%&'*+-.^_`|~09AZ", "token");

  g_assert_true (dispatch_headers_contains (headers, "x-empty"));
  g_assert_cmpstr (dispatch_headers_get (headers, "x-empty"), ==, "");
  g_assert_cmpstr (dispatch_headers_get (headers, "x-tab"), ==, "a\tb");
  g_assert_cmpstr (dispatch_headers_get (headers, "x-utf8"), ==, "caf\xc3\xa9");
  g_assert_cmpstr (dispatch_headers_get (headers, "x-spaces"), ==, "a b  c");
  g_assert_cmpstr (dispatch_headers_get (headers, "X-!#$%&'*+-.^_`|~09az"), ==, "token");
  g_assert_cmpstr (dispatch_headers_get_name (headers, 4), ==, "x-!#$%&'*+-.^_`|~09az");
}

static void
assert_invalid (DispatchHeaders *headers,
                const char      *name,
                const char      *value)
{
  guint length = dispatch_headers_get_length (headers);
  g_autoptr(GError) error = NULL;
  g_autofree char *escaped_name = g_strescape (name, NULL);
  g_autofree char *escaped_value = g_strescape (value, NULL);

  g_test_message ("invalid: \"%s\": \"%s\"", escaped_name, escaped_value);

  g_assert_false (dispatch_headers_append (headers, name, value, &error));
  g_assert_error (error, DISPATCH_ERROR, DISPATCH_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "header"));
  g_clear_error (&error);

  g_assert_false (dispatch_headers_set (headers, name, value, &error));
  g_assert_error (error, DISPATCH_ERROR, DISPATCH_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "header"));
  g_clear_error (&error);

  /* the error path with no GError** to fill in */
  g_assert_false (dispatch_headers_append (headers, name, value, NULL));
  g_assert_false (dispatch_headers_set (headers, name, value, NULL));

  /* nothing was added */
  g_assert_cmpuint (dispatch_headers_get_length (headers), ==, length);
}

static void
test_headers_invalid_name (void)
{
  g_autoptr(DispatchHeaders) headers = dispatch_headers_new ();
  const char *names[] = {
    "",
    "x foo",
    " x-foo",
    "x-foo ",
    "x:foo",
    "x-foo:",
    ":authority",
    "x\tfoo",
    "x\rfoo",
    "x\nfoo",
    "x(foo)",
    "x<foo>",
    "x@foo",
    "x,foo",
    "x;foo",
    "x\\foo",
    "x\"foo\"",
    "x/foo",
    "x[foo]",
    "x?foo",
    "x=foo",
    "x{foo}",
    "x\x7f",
    "x\x01",
    "caf\xc3\xa9",
  };

  g_test_summary ("names that are not RFC 9110 tokens fail with "
                  "INVALID_ARGUMENT, a message about the header, and change "
                  "nothing");

  append_ok (headers, "X-Keep", "1");

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    assert_invalid (headers, names[i], "value");

  g_assert_cmpuint (dispatch_headers_get_length (headers), ==, 1);
  g_assert_cmpstr (dispatch_headers_get (headers, "x-keep"), ==, "1");
}

static void
test_headers_invalid_value (void)
{
  g_autoptr(DispatchHeaders) headers = dispatch_headers_new ();
  const char *values[] = {
    "\r",
    "\n",
    "\r\n",
    "a\rb",
    "a\nb",
    "a\r\nb",
    "a\r\nX-Injected: 1",
    "trailing\n",
    "\r\nleading",
  };

  g_test_summary ("values with CR or LF fail with INVALID_ARGUMENT "
                  "(header injection); NUL cannot be passed in a C string");

  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    assert_invalid (headers, "X-Foo", values[i]);

  g_assert_cmpuint (dispatch_headers_get_length (headers), ==, 0);
  g_assert_false (dispatch_headers_contains (headers, "x-injected"));
}

static void
test_headers_copy (void)
{
  g_autoptr(DispatchHeaders) headers = dispatch_headers_new ();
  g_autoptr(DispatchHeaders) copy = NULL;
  const char * const original_foo[] = { "1", "2", NULL };
  const char * const copy_foo[] = { "1", "2", "3", NULL };

  g_test_summary ("a copy has the same entries in the same order, is "
                  "mutable and is independent of the original");

  append_ok (headers, "X-Foo", "1");
  append_ok (headers, "X-Bar", "b");
  append_ok (headers, "X-Foo", "2");

  copy = dispatch_headers_copy (headers);
  g_assert_nonnull (copy);
  g_assert_true (copy != headers);
  g_assert_false (dispatch_headers_is_read_only (copy));
  g_assert_cmpuint (dispatch_headers_get_length (copy), ==, 3);

  for (guint i = 0; i < 3; i++)
    {
      g_assert_cmpstr (dispatch_headers_get_name (copy, i), ==,
                       dispatch_headers_get_name (headers, i));
      g_assert_cmpstr (dispatch_headers_get_value (copy, i), ==,
                       dispatch_headers_get_value (headers, i));
    }

  /* changing the copy leaves the original alone ... */
  append_ok (copy, "X-Foo", "3");
  g_assert_cmpuint (dispatch_headers_remove (copy, "x-bar"), ==, 1);
  assert_all (copy, "x-foo", copy_foo);
  assert_all (headers, "x-foo", original_foo);
  g_assert_true (dispatch_headers_contains (headers, "x-bar"));

  /* ... and the other way round */
  g_assert_true (dispatch_headers_set (headers, "X-Bar", "changed", NULL));
  g_assert_false (dispatch_headers_contains (copy, "x-bar"));

  /* the copy outlives the original */
  g_clear_pointer (&headers, dispatch_headers_unref);
  g_assert_cmpstr (dispatch_headers_get (copy, "x-foo"), ==, "3");
}

static void
test_headers_ref_unref (void)
{
  DispatchHeaders *headers = dispatch_headers_new ();
  DispatchHeaders *ref;

  g_test_summary ("ref returns the same instance; it lives until the last "
                  "unref");

  append_ok (headers, "X-Foo", "1");

  ref = dispatch_headers_ref (headers);
  g_assert_true (ref == headers);

  dispatch_headers_unref (headers);
  /* still alive through ref, and still mutable */
  g_assert_cmpstr (dispatch_headers_get (ref, "x-foo"), ==, "1");
  append_ok (ref, "X-Foo", "2");
  g_assert_cmpstr (dispatch_headers_get (ref, "x-foo"), ==, "2");

  dispatch_headers_unref (ref);
}

static void
test_headers_autoptr (void)
{
  g_autoptr(DispatchHeaders) headers = NULL;

  /* a NULL autoptr must be fine too */
  {
    g_autoptr(DispatchHeaders) unused = NULL;
    (void) unused;
  }

  headers = dispatch_headers_new ();
  append_ok (headers, "X-Foo", "1");

  {
    g_autoptr(DispatchHeaders) scoped = dispatch_headers_ref (headers);

    g_assert_cmpstr (dispatch_headers_get (scoped, "x-foo"), ==, "1");
  }

  g_assert_cmpstr (dispatch_headers_get (headers, "x-foo"), ==, "1");
}

static void
test_headers_boxed (void)
{
  g_autoptr(DispatchHeaders) headers = dispatch_headers_new ();
  DispatchHeaders *boxed;
  g_auto(GValue) value = G_VALUE_INIT;
  DispatchHeaders *dup;

  g_test_summary ("DispatchHeaders is a boxed type: g_boxed_copy, "
                  "g_boxed_free and GValue work");

  g_assert_true (G_TYPE_IS_BOXED (DISPATCH_TYPE_HEADERS));
  g_assert_cmpstr (g_type_name (DISPATCH_TYPE_HEADERS), ==, "DispatchHeaders");

  append_ok (headers, "X-Foo", "1");

  boxed = g_boxed_copy (DISPATCH_TYPE_HEADERS, headers);
  g_assert_nonnull (boxed);
  g_assert_cmpstr (dispatch_headers_get (boxed, "x-foo"), ==, "1");
  g_boxed_free (DISPATCH_TYPE_HEADERS, boxed);

  /* the original survives the boxed copy being freed */
  g_assert_cmpstr (dispatch_headers_get (headers, "x-foo"), ==, "1");

  g_value_init (&value, DISPATCH_TYPE_HEADERS);
  g_value_set_boxed (&value, headers);
  g_assert_nonnull (g_value_get_boxed (&value));
  dup = g_value_dup_boxed (&value);
  g_assert_cmpstr (dispatch_headers_get (dup, "x-foo"), ==, "1");
  dispatch_headers_unref (dup);
}

static void
test_headers_read_only (void)
{
  g_autoptr(DispatchHeaders) headers = _dispatch_headers_new_read_only_empty ();
  g_autoptr(DispatchHeaders) copy = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) names = NULL;

  g_test_summary ("read-only headers (response headers, trailers) refuse "
                  "changes with NOT_SUPPORTED; their copy is mutable");

  g_assert_nonnull (headers);
  g_assert_true (dispatch_headers_is_read_only (headers));
  g_assert_cmpuint (dispatch_headers_get_length (headers), ==, 0);
  names = dispatch_headers_get_names (headers);
  g_assert_cmpuint (strv_length0 (names), ==, 0);

  g_assert_false (dispatch_headers_append (headers, "X-Foo", "1", &error));
  g_assert_error (error, DISPATCH_ERROR, DISPATCH_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);

  g_assert_false (dispatch_headers_set (headers, "X-Foo", "1", &error));
  g_assert_error (error, DISPATCH_ERROR, DISPATCH_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);

  g_assert_false (dispatch_headers_append (headers, "X-Foo", "1", NULL));
  g_assert_cmpuint (dispatch_headers_remove (headers, "x-foo"), ==, 0);
  g_assert_cmpuint (dispatch_headers_get_length (headers), ==, 0);
  g_assert_false (dispatch_headers_contains (headers, "x-foo"));

  /* a ref of a read-only instance is the same read-only instance */
  {
    g_autoptr(DispatchHeaders) ref = dispatch_headers_ref (headers);

    g_assert_true (dispatch_headers_is_read_only (ref));
  }

  copy = dispatch_headers_copy (headers);
  g_assert_false (dispatch_headers_is_read_only (copy));
  append_ok (copy, "X-Foo", "1");
  g_assert_cmpstr (dispatch_headers_get (copy, "x-foo"), ==, "1");
  g_assert_cmpuint (dispatch_headers_get_length (headers), ==, 0);
}

static void
test_headers_many (void)
{
  g_autoptr(DispatchHeaders) headers = dispatch_headers_new ();
  g_auto(GStrv) all = NULL;
  g_auto(GStrv) names = NULL;

  g_test_summary ("a few thousand entries keep order and count");

  for (guint i = 0; i < 2000; i++)
    {
      g_autofree char *name = g_strdup_printf ("X-Name-%u", i % 100);
      g_autofree char *value = g_strdup_printf ("%u", i);

      append_ok (headers, name, value);
    }

  g_assert_cmpuint (dispatch_headers_get_length (headers), ==, 2000);
  names = dispatch_headers_get_names (headers);
  g_assert_cmpuint (g_strv_length (names), ==, 100);

  all = dispatch_headers_get_all (headers, "x-name-7");
  g_assert_cmpuint (g_strv_length (all), ==, 20);
  for (guint i = 0; i < 20; i++)
    {
      g_autofree char *expected = g_strdup_printf ("%u", i * 100 + 7);

      g_assert_cmpstr (all[i], ==, expected);
    }
  g_assert_cmpstr (dispatch_headers_get (headers, "x-name-7"), ==, "1907");

  g_assert_cmpuint (dispatch_headers_remove (headers, "x-name-7"), ==, 20);
  g_assert_cmpuint (dispatch_headers_get_length (headers), ==, 1980);
}

static void
test_response_head_values (void)
{
  static const struct { const char *value; gboolean valid; } lengths[] = {
    { NULL, TRUE },              /* no header */
    { "0", TRUE },
    { "13", TRUE },
    { " 13\t", TRUE },
    { "13, 13", TRUE },          /* a list of equal values, as libsoup takes */
    { "9223372036854775807", TRUE },
    { "9223372036854775808", FALSE },  /* overflows gint64 */
    { "-1", FALSE },
    { "", FALSE },
    { "13, 14", FALSE },
    { "13,", FALSE },
    { "0x10", FALSE },
    { "1 3", FALSE },
  };

  g_test_summary ("response head values: a Content-Length is digits within "
                  "gint64 (or a list of equal ones); a reason phrase with "
                  "control bytes or invalid UTF-8 becomes the standard phrase");

  for (guint i = 0; i < G_N_ELEMENTS (lengths); i++)
    {
      g_test_message ("Content-Length: %s", lengths[i].value ? lengths[i].value : "(none)");
      g_assert_cmpint (_dispatch_content_length_is_valid (lengths[i].value), ==, lengths[i].valid);
    }

  g_assert_cmpstr (_dispatch_sanitize_reason (200, "Fine\tthanks"), ==, "Fine\tthanks");
  g_assert_cmpstr (_dispatch_sanitize_reason (404, "Not\x01Found"), ==, "Not Found");
  g_assert_cmpstr (_dispatch_sanitize_reason (404, "Gone\x7f"), ==, "Not Found");
  g_assert_cmpstr (_dispatch_sanitize_reason (200, "\xff\xfe"), ==, "OK");
  g_assert_null (_dispatch_sanitize_reason (200, NULL));
}

int
main (int   argc,
      char *argv[])
{
  test_init (&argc, &argv);

  g_test_add_func ("/headers/new-empty", test_headers_new_empty);
  g_test_add_func ("/headers/append-get", test_headers_append_get);
  g_test_add_func ("/headers/case-insensitive", test_headers_case_insensitive);
  g_test_add_func ("/headers/set", test_headers_set);
  g_test_add_func ("/headers/remove", test_headers_remove);
  g_test_add_func ("/headers/names", test_headers_names);
  g_test_add_func ("/headers/values", test_headers_values);
  g_test_add_func ("/headers/invalid-name", test_headers_invalid_name);
  g_test_add_func ("/headers/invalid-value", test_headers_invalid_value);
  g_test_add_func ("/headers/copy", test_headers_copy);
  g_test_add_func ("/headers/ref-unref", test_headers_ref_unref);
  g_test_add_func ("/headers/autoptr", test_headers_autoptr);
  g_test_add_func ("/headers/boxed", test_headers_boxed);
  g_test_add_func ("/headers/read-only", test_headers_read_only);
  g_test_add_func ("/headers/many", test_headers_many);
  g_test_add_func ("/headers/response-head-values", test_response_head_values);

  return g_test_run ();
}
