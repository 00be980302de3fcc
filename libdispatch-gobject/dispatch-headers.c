/* dispatch-headers.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * DispatchHeaders:
 *
 * An ordered list of HTTP header fields: a multimap of (name, value).
 *
 * Names compare case-insensitively and are stored and reported in lower
 * case. A name may occur several times; every field line is kept as its
 * own value, in order, and never comma-joined, so two `Set-Cookie` lines
 * stay two values of [method@Dispatch.Headers.get_all].
 *
 * Request headers are built by the caller with
 * [method@Dispatch.Headers.append] and [method@Dispatch.Headers.set], which
 * validate names (RFC 9110 tokens) and values (no CR or LF) at once.
 * Response headers and trailers handed to a [iface@Dispatch.Handler] are
 * read-only: appending to them fails with %DISPATCH_ERROR_NOT_SUPPORTED.
 * Use [method@Dispatch.Headers.copy] for a mutable copy.
 *
 * `DispatchHeaders` is reference counted and may be shared between
 * threads once it is no longer modified; read-only headers are immutable.
 *
 * Since: 0.1
 */

#include "config.h"

#include <string.h>

#include "dispatch-error.h"
#include "dispatch-headers-private.h"
#include "dispatch-util-private.h"

typedef struct
{
  char *name;   /* lower case */
  char *value;
} Entry;

struct _DispatchHeaders
{
  gatomicrefcount  ref_count;
  guint            read_only : 1;
  /* some entries were added without validation (request convenience API) */
  guint            unchecked : 1;
  GArray          *entries;
  /* for snapshots: every string lives in this one block */
  char            *block;
  /* a response head not copied yet (read-only headers are copied on
   * first use: many handlers never look at them); atomic */
  SoupMessageHeaders *source;
};

static void materialize (DispatchHeaders *self);

/* Every reader goes through here. */
static inline GArray *
entries_of (DispatchHeaders *self)
{
  if G_UNLIKELY (g_atomic_pointer_get (&self->source) != NULL)
    materialize (self);

  return self->entries;
}

G_DEFINE_BOXED_TYPE (DispatchHeaders, dispatch_headers,
                     dispatch_headers_ref, dispatch_headers_unref)

static void
entry_clear (gpointer data)
{
  Entry *entry = data;

  g_free (entry->name);
  g_free (entry->value);
}

static DispatchHeaders *
headers_alloc (gboolean owns_strings,
               guint    reserve)
{
  DispatchHeaders *self = g_new0 (DispatchHeaders, 1);

  g_atomic_ref_count_init (&self->ref_count);
  self->entries = g_array_sized_new (FALSE, FALSE, sizeof (Entry), reserve);
  if (owns_strings)
    g_array_set_clear_func (self->entries, entry_clear);

  return self;
}

/**
 * dispatch_headers_new:
 *
 * Creates an empty, mutable header list.
 *
 * Returns: (transfer full): a new #DispatchHeaders
 *
 * Since: 0.1
 */
DispatchHeaders *
dispatch_headers_new (void)
{
  return headers_alloc (TRUE, 8);
}

/**
 * dispatch_headers_ref:
 * @self: a #DispatchHeaders
 *
 * Acquires a reference on @self.
 *
 * Returns: (transfer full): @self
 *
 * Since: 0.1
 */
DispatchHeaders *
dispatch_headers_ref (DispatchHeaders *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

/**
 * dispatch_headers_unref:
 * @self: (transfer full): a #DispatchHeaders
 *
 * Releases a reference on @self, freeing it when the last one is gone.
 *
 * Since: 0.1
 */
void
dispatch_headers_unref (DispatchHeaders *self)
{
  g_return_if_fail (self != NULL);

  if (g_atomic_ref_count_dec (&self->ref_count))
    {
      if (self->source != NULL)
        soup_message_headers_unref (self->source);
      g_clear_pointer (&self->entries, g_array_unref);
      g_free (self->block);
      g_free (self);
    }
}

/**
 * dispatch_headers_copy:
 * @self: a #DispatchHeaders
 *
 * Makes a mutable copy of @self, read-only or not.
 *
 * Returns: (transfer full): a new #DispatchHeaders with the same fields
 *
 * Since: 0.1
 */
DispatchHeaders *
dispatch_headers_copy (DispatchHeaders *self)
{
  GArray *entries;
  DispatchHeaders *copy;

  g_return_val_if_fail (self != NULL, NULL);

  entries = entries_of (self);

  copy = headers_alloc (TRUE, entries->len);
  copy->unchecked = self->unchecked;

  for (guint i = 0; i < entries->len; i++)
    {
      const Entry *entry = &g_array_index (entries, Entry, i);
      Entry dup = { g_strdup (entry->name), g_strdup (entry->value) };

      g_array_append_val (copy->entries, dup);
    }

  return copy;
}

/**
 * dispatch_headers_is_read_only:
 * @self: a #DispatchHeaders
 *
 * Whether @self is read-only (response headers and trailers are).
 *
 * Returns: %TRUE if @self cannot be modified
 *
 * Since: 0.1
 */
gboolean
dispatch_headers_is_read_only (DispatchHeaders *self)
{
  g_return_val_if_fail (self != NULL, TRUE);

  return self->read_only;
}

static gboolean
check_writable (DispatchHeaders  *self,
                GError          **error)
{
  if (self->read_only)
    {
      g_set_error_literal (error, DISPATCH_ERROR, DISPATCH_ERROR_NOT_SUPPORTED,
                           "header: these headers are read-only; "
                           "use dispatch_headers_copy() for a mutable copy");
      return FALSE;
    }

  return TRUE;
}

static void
append_entry (DispatchHeaders *self,
              const char      *name,
              const char      *value)
{
  Entry entry = { g_ascii_strdown (name, -1), g_strdup (value) };

  g_array_append_val (self->entries, entry);
}

/**
 * dispatch_headers_append:
 * @self: a mutable #DispatchHeaders
 * @name: the field name, an RFC 9110 token (any case)
 * @value: the field value, without CR or LF
 * @error: return location for a #GError
 *
 * Appends a field line, keeping any existing fields of the same name.
 *
 * Fails with %DISPATCH_ERROR_INVALID_ARGUMENT, naming the header, if @name
 * is not a token or @value contains CR or LF, and with
 * %DISPATCH_ERROR_NOT_SUPPORTED if @self is read-only.
 *
 * Returns: %TRUE if the field was appended
 *
 * Since: 0.1
 */
gboolean
dispatch_headers_append (DispatchHeaders  *self,
                         const char       *name,
                         const char       *value,
                         GError          **error)
{
  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_writable (self, error) ||
      !_dispatch_check_header (name, value, error))
    return FALSE;

  append_entry (self, name, value);
  return TRUE;
}

/**
 * dispatch_headers_set:
 * @self: a mutable #DispatchHeaders
 * @name: the field name, an RFC 9110 token (any case)
 * @value: the field value, without CR or LF
 * @error: return location for a #GError
 *
 * Replaces every field named @name with a single field. Validation as for
 * [method@Dispatch.Headers.append].
 *
 * Returns: %TRUE if the field was set
 *
 * Since: 0.1
 */
gboolean
dispatch_headers_set (DispatchHeaders  *self,
                      const char       *name,
                      const char       *value,
                      GError          **error)
{
  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_writable (self, error) ||
      !_dispatch_check_header (name, value, error))
    return FALSE;

  dispatch_headers_remove (self, name);
  append_entry (self, name, value);
  return TRUE;
}

/**
 * dispatch_headers_remove:
 * @self: a #DispatchHeaders
 * @name: a field name (any case)
 *
 * Removes every field named @name. Read-only headers are left alone.
 *
 * Returns: the number of fields removed
 *
 * Since: 0.1
 */
guint
dispatch_headers_remove (DispatchHeaders *self,
                         const char      *name)
{
  guint removed = 0;

  g_return_val_if_fail (self != NULL, 0);
  g_return_val_if_fail (name != NULL, 0);

  if (self->read_only)
    return 0;

  for (guint i = self->entries->len; i > 0; i--)
    {
      const Entry *entry = &g_array_index (self->entries, Entry, i - 1);

      if (g_ascii_strcasecmp (entry->name, name) == 0)
        {
          g_array_remove_index (self->entries, i - 1);
          removed++;
        }
    }

  return removed;
}

/**
 * dispatch_headers_contains:
 * @self: a #DispatchHeaders
 * @name: a field name (any case)
 *
 * Whether at least one field is named @name.
 *
 * Returns: %TRUE if @name is present
 *
 * Since: 0.1
 */
gboolean
dispatch_headers_contains (DispatchHeaders *self,
                           const char      *name)
{
  return dispatch_headers_get (self, name) != NULL;
}

/**
 * dispatch_headers_get:
 * @self: a #DispatchHeaders
 * @name: a field name (any case)
 *
 * Looks up the last field named @name. Use
 * [method@Dispatch.Headers.get_all] for fields that may repeat.
 *
 * Returns: (nullable): the value of the last field named @name, or %NULL
 *
 * Since: 0.1
 */
const char *
dispatch_headers_get (DispatchHeaders *self,
                      const char      *name)
{
  GArray *entries;

  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);

  entries = entries_of (self);

  for (guint i = entries->len; i > 0; i--)
    {
      const Entry *entry = &g_array_index (entries, Entry, i - 1);

      if (g_ascii_strcasecmp (entry->name, name) == 0)
        return entry->value;
    }

  return NULL;
}

/**
 * dispatch_headers_get_all:
 * @self: a #DispatchHeaders
 * @name: a field name (any case)
 *
 * Collects the value of every field named @name, one element per field
 * line, in order. Values are never joined.
 *
 * Returns: (transfer full) (array zero-terminated=1): the values, possibly
 *   an empty array
 *
 * Since: 0.1
 */
char **
dispatch_headers_get_all (DispatchHeaders *self,
                          const char      *name)
{
  GArray *entries;
  GPtrArray *values;

  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (name != NULL, NULL);

  entries = entries_of (self);

  values = g_ptr_array_new ();
  for (guint i = 0; i < entries->len; i++)
    {
      const Entry *entry = &g_array_index (entries, Entry, i);

      if (g_ascii_strcasecmp (entry->name, name) == 0)
        g_ptr_array_add (values, g_strdup (entry->value));
    }
  g_ptr_array_add (values, NULL);

  return (char **) g_ptr_array_free (values, FALSE);
}

/**
 * dispatch_headers_get_names:
 * @self: a #DispatchHeaders
 *
 * Lists the distinct field names, in lower case, in order of first
 * appearance.
 *
 * Returns: (transfer full) (array zero-terminated=1): the names
 *
 * Since: 0.1
 */
char **
dispatch_headers_get_names (DispatchHeaders *self)
{
  GArray *entries;
  GPtrArray *names;

  g_return_val_if_fail (self != NULL, NULL);

  entries = entries_of (self);

  names = g_ptr_array_new ();
  for (guint i = 0; i < entries->len; i++)
    {
      const Entry *entry = &g_array_index (entries, Entry, i);
      gboolean seen = FALSE;

      for (guint j = 0; j < names->len && !seen; j++)
        seen = strcmp (g_ptr_array_index (names, j), entry->name) == 0;

      if (!seen)
        g_ptr_array_add (names, g_strdup (entry->name));
    }
  g_ptr_array_add (names, NULL);

  return (char **) g_ptr_array_free (names, FALSE);
}

/**
 * dispatch_headers_get_length:
 * @self: a #DispatchHeaders
 *
 * The number of field lines.
 *
 * Returns: the number of fields
 *
 * Since: 0.1
 */
guint
dispatch_headers_get_length (DispatchHeaders *self)
{
  g_return_val_if_fail (self != NULL, 0);

  return entries_of (self)->len;
}

/**
 * dispatch_headers_get_name:
 * @self: a #DispatchHeaders
 * @index_: a position, less than [method@Dispatch.Headers.get_length]
 *
 * The name of the field at @index_, in lower case.
 *
 * Returns: (nullable): the name, or %NULL if @index_ is out of range
 *
 * Since: 0.1
 */
const char *
dispatch_headers_get_name (DispatchHeaders *self,
                           guint            index_)
{
  GArray *entries;

  g_return_val_if_fail (self != NULL, NULL);

  entries = entries_of (self);

  if (index_ >= entries->len)
    return NULL;

  return g_array_index (entries, Entry, index_).name;
}

/**
 * dispatch_headers_get_value:
 * @self: a #DispatchHeaders
 * @index_: a position, less than [method@Dispatch.Headers.get_length]
 *
 * The value of the field at @index_.
 *
 * Returns: (nullable): the value, or %NULL if @index_ is out of range
 *
 * Since: 0.1
 */
const char *
dispatch_headers_get_value (DispatchHeaders *self,
                            guint            index_)
{
  GArray *entries;

  g_return_val_if_fail (self != NULL, NULL);

  entries = entries_of (self);

  if (index_ >= entries->len)
    return NULL;

  return g_array_index (entries, Entry, index_).value;
}

/* Private API */

DispatchHeaders *
_dispatch_headers_new_read_only_empty (void)
{
  static DispatchHeaders *empty;

  if (g_once_init_enter (&empty))
    {
      DispatchHeaders *headers = headers_alloc (FALSE, 0);

      headers->read_only = TRUE;
      g_once_init_leave (&empty, headers);
    }

  return dispatch_headers_ref (empty);
}

typedef struct
{
  gsize n_entries;
  gsize n_bytes;
} MeasureData;

static void
measure_cb (const char *name,
            const char *value,
            gpointer    user_data)
{
  MeasureData *data = user_data;

  data->n_entries++;
  data->n_bytes += strlen (name) + strlen (value) + 2;
}

typedef struct
{
  GArray *entries;
  char   *cursor;
} FillData;

static void
fill_cb (const char *name,
         const char *value,
         gpointer    user_data)
{
  FillData *data = user_data;
  Entry entry;
  gsize len;

  entry.name = data->cursor;
  for (const char *p = name; *p; p++)
    *data->cursor++ = (*p >= 'A' && *p <= 'Z') ? *p + ('a' - 'A') : *p;
  *data->cursor++ = '\0';

  len = strlen (value) + 1;
  entry.value = memcpy (data->cursor, value, len);
  data->cursor += len;

  g_array_append_val (data->entries, entry);
}

static GMutex materialize_mutex;

/* Copies the response head into one block of lower-cased names and
 * values. Read-only headers may be shared between threads, so the first
 * reader does this under a lock and publishes it by clearing source. */
static void
materialize (DispatchHeaders *self)
{
  g_mutex_lock (&materialize_mutex);
  if (self->source != NULL)
    {
      MeasureData measure = { 0, 0 };
      FillData fill;

      soup_message_headers_foreach (self->source, measure_cb, &measure);
      fill.entries = g_array_sized_new (FALSE, FALSE, sizeof (Entry), measure.n_entries);
      if (measure.n_entries > 0)
        {
          self->block = g_malloc (measure.n_bytes);
          fill.cursor = self->block;
          soup_message_headers_foreach (self->source, fill_cb, &fill);
        }
      self->entries = fill.entries;
      soup_message_headers_unref (self->source);
      g_atomic_pointer_set (&self->source, NULL);
    }
  g_mutex_unlock (&materialize_mutex);
}

/* A read-only view of a response head, copied on first use. */
DispatchHeaders *
_dispatch_headers_new_from_soup (SoupMessageHeaders *headers)
{
  /* Made for every response: g_new0() would be calloc(), which skips
   * glibc's per-thread cache. */
  DispatchHeaders *self = g_new (DispatchHeaders, 1);

  *self = (DispatchHeaders) {
    .read_only = TRUE,
    .source = soup_message_headers_ref (headers),
  };
  g_atomic_ref_count_init (&self->ref_count);

  return self;
}

/* Drops the caller's reference to a view made by
 * _dispatch_headers_new_from_soup(), before libsoup clears the headers it
 * views for another request: copied now if anyone else still holds it. */
void
_dispatch_headers_release_soup (DispatchHeaders *self)
{
  if (!g_atomic_ref_count_compare (&self->ref_count, 1) &&
      g_atomic_pointer_get (&self->source) != NULL)
    materialize (self);
  dispatch_headers_unref (self);
}

/* The size of a header section on the wire: "name: value\r\n" per field.
 * The same pass finds the last Content-Length field (what libsoup's
 * soup_message_headers_get_one() gives), for @content_length (nullable):
 * this runs for every response head. */
gsize
_dispatch_headers_wire_size (SoupMessageHeaders  *headers,
                             const char         **content_length)
{
  SoupMessageHeadersIter iter;
  const char *name;
  const char *value;
  const char *length = NULL;
  gsize size = 0;

  soup_message_headers_iter_init (&iter, headers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    {
      gsize name_len = strlen (name);

      /* libsoup spells the names it knows its own way: try that first. */
      if (name_len == strlen ("Content-Length") &&
          (memcmp (name, "Content-Length", name_len) == 0 ||
           g_ascii_strcasecmp (name, "Content-Length") == 0))
        length = value;
      size += name_len + strlen (value) + 4;
    }

  if (content_length != NULL)
    *content_length = length;

  return size;
}

/* A read-only copy made now: for heads whose SoupMessageHeaders libsoup
 * reuses (1xx heads are cleared right after got-informational). */
DispatchHeaders *
_dispatch_headers_copy_from_soup (SoupMessageHeaders *headers)
{
  DispatchHeaders *self = _dispatch_headers_new_from_soup (headers);

  materialize (self);
  return self;
}

void
_dispatch_headers_append_unchecked (DispatchHeaders *self,
                                    const char      *name,
                                    const char      *value)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (!self->read_only);

  self->unchecked = TRUE;
  append_entry (self, name ? name : "", value ? value : "");
}

gboolean
_dispatch_headers_validate (DispatchHeaders  *self,
                            GError          **error)
{
  if (!self->unchecked)
    return TRUE;

  for (guint i = 0; i < self->entries->len; i++)
    {
      const Entry *entry = &g_array_index (self->entries, Entry, i);

      if (!_dispatch_check_header (entry->name, entry->value, error))
        return FALSE;
    }

  return TRUE;
}

void
_dispatch_headers_apply_to_soup (DispatchHeaders    *self,
                                 SoupMessageHeaders *dest)
{
  for (guint i = 0; i < self->entries->len; i++)
    {
      const Entry *entry = &g_array_index (self->entries, Entry, i);

      soup_message_headers_append (dest, entry->name, entry->value);
    }
}
