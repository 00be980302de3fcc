/* fuzz-headers.c — DispatchHeaders against a reference model
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The input is a program: a sequence of operations on one mutable
 * DispatchHeaders, mirrored on a trivially correct model (an array of
 * lower-case name / value pairs). Each operation is one opcode byte
 * followed by its string operands. A string operand is one length byte:
 * with the high bit set it picks a string from a dictionary (names in
 * several cases, invalid names, values with CR/LF), otherwise the low six
 * bits are the number of raw bytes that follow (a NUL in them ends the C
 * string, as it would for a caller).
 *
 * Operations: append, set, remove, get/get_all/contains, get_names, copy
 * (and carry on with the copy), unchecked append + validate (the request
 * convenience path), a read-only snapshot through SoupMessageHeaders (the
 * response path), index access.
 *
 * After every operation: length, every (name, value) by index, names lower
 * case, get == last of get_all, get_all == the model's values in order,
 * get_names == distinct names in order of first appearance.
 */

#include "config.h"

#include <string.h>

#include <libsoup/soup.h>
#include <libdispatch-gobject/dispatch.h>

#include "dispatch-headers-private.h"
#include "fuzz-common.h"

#define MAX_OPS 256

typedef struct
{
  char *name;   /* lower case */
  char *value;
} ModelEntry;

static const char * const dictionary[] = {
  /* names: the same field in several cases, common and uncommon to libsoup */
  "content-type", "Content-Type", "CONTENT-TYPE", "set-cookie", "Set-Cookie",
  "x-a", "X-A", "x-A", "x-b", "link", "Content-Length", "transfer-encoding",
  "connection", "expect", "upgrade", "keep-alive", "host", "te", "a", "Z",
  "!#$%&'*+-.^_`|~", "x-0123456789",
  /* not tokens */
  "", " ", "x a", "x:a", "x\ta", "(x)", "x@y", "\xc3\xa9t\xc3\xa9", "\x7f", "a\r\nb", "x\n",
  /* values */
  "v", "", " spaced  ", "a, b", "a\rb", "a\nb", "\r\n", "\t", "\xff\xfe", "\x01\x7f",
  "text/html; charset=utf-8", "chunked", "100-continue", "close",
};

int
LLVMFuzzerInitialize (int    *argc,
                      char ***argv)
{
  fuzz_install_log_guards ();
  return 0;
}

static char *
read_string (FuzzReader *reader)
{
  guint8 b = fuzz_reader_byte (reader);
  char *raw;
  char *str;

  if (b & 0x80)
    return g_strdup (dictionary[(b & 0x7f) % G_N_ELEMENTS (dictionary)]);

  raw = fuzz_reader_bytes (reader, b & 0x3f, NULL);
  str = g_strdup (raw);  /* up to the first NUL, like a caller's string */
  g_free (raw);

  return str;
}

/* RFC 9110 tchar, written independently of dispatch-util.c */
static gboolean
model_is_token (const char *str)
{
  if (str[0] == '\0')
    return FALSE;

  for (const char *p = str; *p; p++)
    if (!(g_ascii_isalnum (*p) || strchr ("!#$%&'*+-.^_`|~", *p) != NULL) || (guint8) *p >= 0x80)
      return FALSE;

  return TRUE;
}

static gboolean
model_is_valid (const char *name,
                const char *value)
{
  return model_is_token (name) && strpbrk (value, "\r\n") == NULL;
}

static gboolean
model_all_valid (GArray *model)
{
  for (guint i = 0; i < model->len; i++)
    {
      const ModelEntry *entry = &g_array_index (model, ModelEntry, i);

      if (!model_is_valid (entry->name, entry->value))
        return FALSE;
    }

  return TRUE;
}

static void
model_entry_clear (gpointer data)
{
  ModelEntry *entry = data;

  g_free (entry->name);
  g_free (entry->value);
}

static GArray *
model_new (void)
{
  GArray *model = g_array_new (FALSE, FALSE, sizeof (ModelEntry));

  g_array_set_clear_func (model, model_entry_clear);
  return model;
}

static void
model_append (GArray     *model,
              const char *name,
              const char *value)
{
  ModelEntry entry = { g_ascii_strdown (name, -1), g_strdup (value) };

  g_array_append_val (model, entry);
}

static guint
model_remove (GArray     *model,
              const char *name)
{
  g_autofree char *lower = g_ascii_strdown (name, -1);
  guint removed = 0;

  for (guint i = model->len; i > 0; i--)
    if (strcmp (g_array_index (model, ModelEntry, i - 1).name, lower) == 0)
      {
        g_array_remove_index (model, i - 1);
        removed++;
      }

  return removed;
}

static gboolean
has_upper (const char *str)
{
  for (const char *p = str; *p; p++)
    if (g_ascii_isupper (*p))
      return TRUE;

  return FALSE;
}

/* get, get_all and contains for one name */
static void
check_name (DispatchHeaders *headers,
            GArray          *model,
            const char      *name)
{
  g_autofree char *lower = g_ascii_strdown (name, -1);
  g_auto(GStrv) all = dispatch_headers_get_all (headers, name);
  const char *get = dispatch_headers_get (headers, name);
  guint n = 0;

  fuzz_check (all != NULL);

  for (guint i = 0; i < model->len; i++)
    {
      const ModelEntry *entry = &g_array_index (model, ModelEntry, i);

      if (strcmp (entry->name, lower) != 0)
        continue;

      fuzz_checkf (all[n] != NULL && strcmp (all[n], entry->value) == 0,
                   "get_all(\"%s\")[%u] = \"%s\", expected \"%s\"",
                   name, n, all[n] ? all[n] : "(end)", entry->value);
      n++;
    }
  fuzz_checkf (all[n] == NULL, "get_all(\"%s\") has %u values, expected %u",
               name, g_strv_length (all), n);

  if (n == 0)
    {
      fuzz_check (get == NULL);
      fuzz_check (!dispatch_headers_contains (headers, name));
    }
  else
    {
      fuzz_checkf (get != NULL && strcmp (get, all[n - 1]) == 0,
                   "get(\"%s\") = \"%s\" is not the last of get_all (\"%s\")",
                   name, get ? get : "(null)", all[n - 1]);
      fuzz_check (dispatch_headers_contains (headers, name));
    }
}

static void
check_names (DispatchHeaders *headers,
             GArray          *model)
{
  g_auto(GStrv) names = dispatch_headers_get_names (headers);
  g_autoptr(GPtrArray) expected = g_ptr_array_new ();

  for (guint i = 0; i < model->len; i++)
    {
      const char *name = g_array_index (model, ModelEntry, i).name;
      gboolean seen = FALSE;

      for (guint j = 0; j < expected->len && !seen; j++)
        seen = strcmp (g_ptr_array_index (expected, j), name) == 0;
      if (!seen)
        g_ptr_array_add (expected, (gpointer) name);
    }

  fuzz_check (names != NULL);
  fuzz_checkf (g_strv_length (names) == expected->len,
               "get_names() has %u names, expected %u", g_strv_length (names), expected->len);
  for (guint i = 0; i < expected->len; i++)
    {
      fuzz_check (strcmp (names[i], g_ptr_array_index (expected, i)) == 0);
      fuzz_check (!has_upper (names[i]));
    }
}

/* Length, every field by index, lower-case names. */
static void
check_all (DispatchHeaders *headers,
           GArray          *model)
{
  guint len = dispatch_headers_get_length (headers);

  fuzz_checkf (len == model->len, "length %u, model %u", len, model->len);

  for (guint i = 0; i < len; i++)
    {
      const ModelEntry *entry = &g_array_index (model, ModelEntry, i);
      const char *name = dispatch_headers_get_name (headers, i);
      const char *value = dispatch_headers_get_value (headers, i);

      fuzz_check (name != NULL && value != NULL);
      fuzz_checkf (strcmp (name, entry->name) == 0, "name %u is \"%s\", expected \"%s\"",
                   i, name, entry->name);
      fuzz_checkf (strcmp (value, entry->value) == 0, "value %u is \"%s\", expected \"%s\"",
                   i, value, entry->value);
      fuzz_check (!has_upper (name));
    }

  fuzz_check (dispatch_headers_get_name (headers, len) == NULL);
  fuzz_check (dispatch_headers_get_value (headers, len) == NULL);
  fuzz_check (dispatch_headers_get_name (headers, G_MAXUINT) == NULL);
}

static void
check_refused (const GError *error,
               int           code)
{
  fuzz_check (error != NULL);
  fuzz_check (error->domain == DISPATCH_ERROR);
  fuzz_checkf (error->code == code, "code %d, expected %d: %s", error->code, code, error->message);
  fuzz_check (g_str_has_prefix (error->message, "header: "));
}

/* A read-only snapshot made the way the exchange makes response heads:
 * through a SoupMessageHeaders. libsoup groups the fields it knows ahead
 * of the others, so only the order within one name is kept. */
static void
check_snapshot (DispatchHeaders *headers,
                GArray          *model)
{
  SoupMessageHeaders *soup = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  g_autoptr(DispatchHeaders) snapshot = NULL;
  g_autoptr(DispatchHeaders) copy = NULL;
  g_autoptr(GError) error = NULL;
  gsize wire_size = 0;
  gsize expected_size = 0;

  _dispatch_headers_apply_to_soup (headers, soup);
  wire_size = _dispatch_headers_wire_size (soup, NULL);
  snapshot = _dispatch_headers_new_from_soup (soup);
  soup_message_headers_unref (soup);  /* the snapshot keeps what it needs */

  fuzz_check (dispatch_headers_is_read_only (snapshot));
  fuzz_check (dispatch_headers_get_length (snapshot) == model->len);

  for (guint i = 0; i < model->len; i++)
    {
      const ModelEntry *entry = &g_array_index (model, ModelEntry, i);

      check_name (snapshot, model, entry->name);
      expected_size += strlen (entry->name) + strlen (entry->value) + 4;
    }
  fuzz_checkf (wire_size == expected_size, "wire size %" G_GSIZE_FORMAT ", expected %"
               G_GSIZE_FORMAT, wire_size, expected_size);

  /* read-only: every change is refused and changes nothing */
  fuzz_check (!dispatch_headers_append (snapshot, "x-a", "b", &error));
  check_refused (error, DISPATCH_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);
  fuzz_check (!dispatch_headers_set (snapshot, "x-a", "b", &error));
  check_refused (error, DISPATCH_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);
  if (model->len > 0)
    fuzz_check (dispatch_headers_remove (snapshot, g_array_index (model, ModelEntry, 0).name) == 0);
  fuzz_check (dispatch_headers_get_length (snapshot) == model->len);

  /* a copy of it is mutable */
  copy = dispatch_headers_copy (snapshot);
  fuzz_check (!dispatch_headers_is_read_only (copy));
  fuzz_check (dispatch_headers_get_length (copy) == model->len);
  fuzz_check (dispatch_headers_append (copy, "x-copy", "1", &error));
  fuzz_check (error == NULL);
  fuzz_check (dispatch_headers_get_length (snapshot) == model->len);
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  FuzzReader reader = { data, size, 0 };
  g_autoptr(DispatchHeaders) headers = dispatch_headers_new ();
  g_autoptr(GArray) model = model_new ();

  {
    g_autoptr(DispatchHeaders) empty = _dispatch_headers_new_read_only_empty ();
    g_autoptr(GError) error = NULL;

    fuzz_check (dispatch_headers_is_read_only (empty));
    fuzz_check (dispatch_headers_get_length (empty) == 0);
    fuzz_check (!dispatch_headers_append (empty, "a", "b", &error));
    check_refused (error, DISPATCH_ERROR_NOT_SUPPORTED);
  }

  for (guint op_count = 0; op_count < MAX_OPS && !fuzz_reader_done (&reader); op_count++)
    {
      guint8 op = fuzz_reader_byte (&reader) % 9;
      g_autofree char *name = read_string (&reader);
      g_autoptr(GError) error = NULL;

      switch (op)
        {
        case 0:  /* append */
        case 1:  /* set */
          {
            g_autofree char *value = read_string (&reader);
            gboolean valid = model_is_valid (name, value);
            gboolean ok;

            if (op == 0)
              ok = dispatch_headers_append (headers, name, value, &error);
            else
              ok = dispatch_headers_set (headers, name, value, &error);

            fuzz_checkf (ok == valid, "%s (\"%s\", \"%s\") returned %d, the model says %d",
                         op == 0 ? "append" : "set", name, value, ok, valid);
            if (ok)
              {
                fuzz_check (error == NULL);
                if (op == 1)
                  model_remove (model, name);
                model_append (model, name, value);
              }
            else
              check_refused (error, DISPATCH_ERROR_INVALID_ARGUMENT);
          }
          break;

        case 2:  /* remove */
          {
            guint expected = model_remove (model, name);
            guint removed = dispatch_headers_remove (headers, name);

            fuzz_checkf (removed == expected, "remove (\"%s\") removed %u, expected %u",
                         name, removed, expected);
          }
          break;

        case 3:  /* get, get_all, contains */
          break;

        case 4:  /* get_names */
          check_names (headers, model);
          break;

        case 5:  /* copy, and carry on with the copy */
          {
            DispatchHeaders *copy = dispatch_headers_copy (headers);

            fuzz_check (!dispatch_headers_is_read_only (copy));
            check_all (copy, model);
            dispatch_headers_unref (headers);
            headers = copy;
          }
          break;

        case 6:  /* the request convenience path: unchecked, validated later */
          {
            g_autofree char *value = read_string (&reader);

            _dispatch_headers_append_unchecked (headers, name, value);
            model_append (model, name, value);
          }
          break;

        case 7:  /* response path: read-only snapshot through libsoup */
          /* libsoup refuses (CRITICAL) names and values we would never
           * hand it: dispatch validates first */
          if (model_all_valid (model))
            check_snapshot (headers, model);
          break;

        case 8:  /* index access past the end */
          {
            guint index = model->len + (guint) strlen (name);

            fuzz_check (dispatch_headers_get_name (headers, index) == NULL);
            fuzz_check (dispatch_headers_get_value (headers, index) == NULL);
          }
          break;

        default:
          g_assert_not_reached ();
        }

      check_all (headers, model);
      check_name (headers, model, name);

      /* validation of unchecked entries agrees with the model */
      {
        gboolean expected = model_all_valid (model);
        gboolean valid;

        g_clear_error (&error);
        valid = _dispatch_headers_validate (headers, &error);
        fuzz_checkf (valid == expected, "_dispatch_headers_validate() = %d, the model says %d",
                     valid, expected);
        if (!valid)
          check_refused (error, DISPATCH_ERROR_INVALID_ARGUMENT);
      }
    }

  check_names (headers, model);
  return 0;
}
