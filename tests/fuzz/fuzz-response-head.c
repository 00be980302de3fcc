/* fuzz-response-head.c — response heads from the wire to DispatchHeaders
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The input is what a server sends. It is cut into heads the way libsoup
 * 3.2's HTTP/1 client reads them (soup_message_io_data_read_headers():
 * lines up to an empty line, "\n\n" or "\n\r\n"; a head cut short by the
 * end of the input is parsed as it is; more than 64 KiB is "Header too
 * big"), and each head is parsed by soup_headers_parse_response() into a
 * SoupMessageHeaders, status and reason, as libsoup does. 1xx heads are
 * followed by the next head, as on the wire.
 *
 * Each parsed head goes through _dispatch_headers_new_from_soup() (the
 * view handed to on_response_start, copied on first use) and
 * _dispatch_headers_copy_from_soup() (the copy handed to
 * on_response_informational), which must both match
 * soup_message_headers_foreach() exactly: same number of fields in the
 * same order, names lower-cased (ASCII only) and otherwise equal, values
 * byte-equal, _dispatch_headers_wire_size() equal to the sum of
 * "name: value\r\n" and finding the Content-Length that
 * soup_message_headers_get_one() gives, read-only with
 * get/get_all/get_names consistent; and
 * for a 1xx head, neither may change when libsoup clears its headers for
 * the next head.
 */

#include "config.h"

#include <string.h>

#include <libsoup/soup.h>
#include <libdispatch-gobject/dispatch.h>

#include "dispatch-headers-private.h"
#include "fuzz-common.h"

/* libsoup 3.2 http1/soup-message-io-data.c */
#define HEADER_SIZE_LIMIT (64 * 1024)
/* a peer can send any number of 1xx heads; a few are enough here */
#define MAX_HEADS 16

typedef struct
{
  GPtrArray *names;
  GPtrArray *values;
} Fields;

int
LLVMFuzzerInitialize (int    *argc,
                      char ***argv)
{
  fuzz_install_log_guards ();
  return 0;
}

/* Cuts the next head off data[*pos..size), as libsoup's reader would. The
 * returned buffer is NUL-terminated after *out_len bytes (libsoup does
 * that too). NULL at the end of the input or when the head is too big. */
static guint8 *
read_head (const guint8 *data,
           gsize         size,
           gsize        *pos,
           gsize        *out_len,
           gboolean     *too_big)
{
  g_autoptr(GByteArray) buf = g_byte_array_new ();

  *too_big = FALSE;

  while (*pos < size)
    {
      const guint8 *line = data + *pos;
      const guint8 *lf = memchr (line, '\n', size - *pos);
      gsize nread = lf ? (gsize) (lf - line) + 1 : size - *pos;
      gsize old_len = buf->len;

      g_byte_array_append (buf, line, (guint) nread);
      *pos += nread;

      if (lf != NULL)
        {
          if (nread == 1 && old_len >= 2 &&
              memcmp (buf->data + buf->len - 2, "\n\n", 2) == 0)
            {
              g_byte_array_set_size (buf, buf->len - 1);
              break;
            }
          if (nread == 2 && old_len >= 3 &&
              memcmp (buf->data + buf->len - 3, "\n\r\n", 3) == 0)
            {
              g_byte_array_set_size (buf, buf->len - 2);
              break;
            }
        }

      if (buf->len > HEADER_SIZE_LIMIT)
        {
          *too_big = TRUE;
          return NULL;
        }
    }

  if (buf->len == 0)
    return NULL;  /* "Connection terminated unexpectedly" */

  *out_len = buf->len;
  g_byte_array_append (buf, (const guint8 *) "", 1);
  return g_byte_array_free (g_steal_pointer (&buf), FALSE);
}

static void
collect_cb (const char *name,
            const char *value,
            gpointer    user_data)
{
  Fields *fields = user_data;

  g_ptr_array_add (fields->names, g_strdup (name));
  g_ptr_array_add (fields->values, g_strdup (value));
}

static gboolean
ascii_lower_equal (const char *lower,
                   const char *original)
{
  for (; *lower && *original; lower++, original++)
    if (*lower != g_ascii_tolower (*original))
      return FALSE;

  return *lower == '\0' && *original == '\0';
}

/* Checks one snapshot of soup_headers against libsoup's own view. */
static void
check_snapshot (SoupMessageHeaders *soup_headers,
                DispatchHeaders    *headers)
{
  Fields fields = { g_ptr_array_new_with_free_func (g_free),
                    g_ptr_array_new_with_free_func (g_free) };
  g_autoptr(DispatchHeaders) copy = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) names = NULL;
  const char *content_length = NULL;
  gsize wire_size = _dispatch_headers_wire_size (soup_headers, &content_length);
  gsize expected_size = 0;
  guint n;

  fuzz_check (content_length == soup_message_headers_get_one (soup_headers, "Content-Length"));

  soup_message_headers_foreach (soup_headers, collect_cb, &fields);

  n = dispatch_headers_get_length (headers);
  fuzz_checkf (n == fields.names->len, "snapshot has %u fields, libsoup %u",
               n, fields.names->len);
  fuzz_check (dispatch_headers_is_read_only (headers));

  for (guint i = 0; i < n; i++)
    {
      const char *name = dispatch_headers_get_name (headers, i);
      const char *value = dispatch_headers_get_value (headers, i);
      const char *soup_name = g_ptr_array_index (fields.names, i);
      const char *soup_value = g_ptr_array_index (fields.values, i);
      g_auto(GStrv) all = NULL;
      guint n_all;

      fuzz_check (name != NULL && value != NULL);
      fuzz_checkf (ascii_lower_equal (name, soup_name),
                   "field %u: name \"%s\" is not \"%s\" lower-cased", i, name, soup_name);
      for (const char *p = name; *p; p++)
        fuzz_check (!g_ascii_isupper (*p));
      fuzz_checkf (strcmp (value, soup_value) == 0,
                   "field %u (%s): value \"%s\", libsoup has \"%s\"", i, name, value, soup_value);

      expected_size += strlen (soup_name) + strlen (soup_value) + 4;

      /* lookups by the name as libsoup spelled it */
      all = dispatch_headers_get_all (headers, soup_name);
      n_all = g_strv_length (all);
      fuzz_check (n_all > 0);
      fuzz_check (strcmp (dispatch_headers_get (headers, soup_name), all[n_all - 1]) == 0);
      fuzz_check (dispatch_headers_contains (headers, soup_name));
    }

  fuzz_check (dispatch_headers_get_name (headers, n) == NULL);
  fuzz_checkf (wire_size == expected_size,
               "reported wire size %" G_GSIZE_FORMAT ", fields add up to %" G_GSIZE_FORMAT,
               wire_size, expected_size);

  /* distinct names, lower case, each one present */
  names = dispatch_headers_get_names (headers);
  for (guint i = 0; names[i] != NULL; i++)
    {
      fuzz_check (dispatch_headers_contains (headers, names[i]));
      for (guint j = 0; j < i; j++)
        fuzz_check (strcmp (names[i], names[j]) != 0);
    }
  fuzz_check (g_strv_length (names) <= n);

  /* read-only, and a mutable copy with the same fields */
  fuzz_check (!dispatch_headers_append (headers, "x-a", "b", &error));
  fuzz_check (g_error_matches (error, DISPATCH_ERROR, DISPATCH_ERROR_NOT_SUPPORTED));
  g_clear_error (&error);

  copy = dispatch_headers_copy (headers);
  fuzz_check (!dispatch_headers_is_read_only (copy));
  fuzz_check (dispatch_headers_get_length (copy) == n);
  for (guint i = 0; i < n; i++)
    {
      fuzz_check (strcmp (dispatch_headers_get_name (copy, i),
                          dispatch_headers_get_name (headers, i)) == 0);
      fuzz_check (strcmp (dispatch_headers_get_value (copy, i),
                          dispatch_headers_get_value (headers, i)) == 0);
    }

  g_ptr_array_unref (fields.names);
  g_ptr_array_unref (fields.values);
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  SoupMessageHeaders *soup_headers = soup_message_headers_new (SOUP_MESSAGE_HEADERS_RESPONSE);
  gsize pos = 0;

  for (guint heads = 0; heads < MAX_HEADS; heads++)
    {
      g_autofree guint8 *head = NULL;
      g_autofree char *reason = NULL;
      SoupHTTPVersion version;
      gboolean too_big;
      gsize len = 0;
      guint status = 0;

      head = read_head (data, size, &pos, &len, &too_big);
      if (head == NULL)
        break;  /* HEADERS_OVERFLOW or SOCKET; nothing reaches DispatchHeaders */

      if (!soup_headers_parse_response ((const char *) head, (int) len, soup_headers,
                                        &version, &status, &reason))
        break;  /* SOUP_SESSION_ERROR_PARSING → DISPATCH_ERROR_PARSE */

      fuzz_checkf (status >= 100 && status <= 999, "status %u", status);
      fuzz_check (reason != NULL);

      /* on_response_start gets a view copied on first use; a 1xx head
       * (whose SoupMessageHeaders libsoup clears right after) a copy made
       * at once. Both must show exactly what libsoup parsed. */
      {
        g_autoptr(DispatchHeaders) lazy = _dispatch_headers_new_from_soup (soup_headers);
        g_autoptr(DispatchHeaders) eager = _dispatch_headers_copy_from_soup (soup_headers);

        check_snapshot (soup_headers, lazy);
        check_snapshot (soup_headers, eager);

        if (SOUP_STATUS_IS_INFORMATIONAL (status))
          {
            guint n = dispatch_headers_get_length (eager);
            g_autoptr(DispatchHeaders) before = dispatch_headers_copy (eager);

            /* what libsoup does after got-informational: the copy and the
             * view already read must not change */
            soup_message_headers_clear (soup_headers);
            fuzz_check (dispatch_headers_get_length (eager) == n);
            fuzz_check (dispatch_headers_get_length (lazy) == n);
            for (guint i = 0; i < n; i++)
              {
                fuzz_check (strcmp (dispatch_headers_get_name (eager, i),
                                    dispatch_headers_get_name (before, i)) == 0);
                fuzz_check (strcmp (dispatch_headers_get_value (eager, i),
                                    dispatch_headers_get_value (before, i)) == 0);
              }
          }
      }

      /* What the exchange asks of the head: never crash on it. */
      (void) soup_message_headers_get_encoding (soup_headers);
      (void) soup_message_headers_get_content_length (soup_headers);

      if (!SOUP_STATUS_IS_INFORMATIONAL (status))
        break;
      /* (cleared above, as soup_message_cleanup_response() does: the next
       * head starts afresh) */
    }

  soup_message_headers_unref (soup_headers);
  return 0;
}
