/* dispatch-util.c — validation, error mapping and shared buffers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include <string.h>

#include <libsoup/soup.h>

#include "dispatch-util-private.h"

/* RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
 * "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
static const guint8 token_table[256] = {
  ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1,
  ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1,
  ['`'] = 1, ['|'] = 1, ['~'] = 1,
  ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1,
  ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
  ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,
  ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1,
  ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
  ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
  ['Y'] = 1, ['Z'] = 1,
  ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
  ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1,
  ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
  ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
  ['y'] = 1, ['z'] = 1,
};

gboolean
_dispatch_is_token (const char *str)
{
  const guint8 *p = (const guint8 *) str;

  if (str == NULL || *p == '\0')
    return FALSE;

  for (; *p; p++)
    if (!token_table[*p])
      return FALSE;

  return TRUE;
}

static gboolean
header_value_is_valid (const char *value)
{
  if (value == NULL)
    return FALSE;

  /* NUL cannot occur inside a C string; CR and LF would split the field. */
  return strpbrk (value, "\r\n") == NULL;
}

gboolean
_dispatch_check_header (const char  *name,
                        const char  *value,
                        GError     **error)
{
  if (!_dispatch_is_token (name))
    {
      g_set_error (error, DISPATCH_ERROR, DISPATCH_ERROR_INVALID_ARGUMENT,
                   "header: name “%s” is not a valid HTTP token",
                   name ? name : "(null)");
      return FALSE;
    }

  if (value == NULL)
    {
      g_set_error (error, DISPATCH_ERROR, DISPATCH_ERROR_INVALID_ARGUMENT,
                   "header: value of “%s” is NULL", name);
      return FALSE;
    }

  if (!header_value_is_valid (value))
    {
      g_set_error (error, DISPATCH_ERROR, DISPATCH_ERROR_INVALID_ARGUMENT,
                   "header: value of “%s” contains CR or LF", name);
      return FALSE;
    }

  return TRUE;
}

static void
free_read_buffer (gpointer data)
{
  g_free (data);
}

static GPrivate read_buffer_key = G_PRIVATE_INIT (free_read_buffer);

/* One read buffer per thread. Body reads are synchronous (non-blocking)
 * within the dispatch context and every chunk is copied into its own GBytes
 * before the handler sees it, so all requests of a thread share it. */
guint8 *
_dispatch_get_read_buffer (void)
{
  guint8 *buffer = g_private_get (&read_buffer_key);

  if G_UNLIKELY (buffer == NULL)
    {
      buffer = g_malloc (DISPATCH_READ_BUFFER_SIZE);
      g_private_set (&read_buffer_key, buffer);
    }

  return buffer;
}

static char *
describe_error (const GError *error)
{
  return g_strdup_printf ("%s (%s %d)",
                          error->message,
                          g_quark_to_string (error->domain),
                          error->code);
}

/* Map an error from GIO, the resolver, TLS or libsoup to our domain. The
 * message keeps the original text, domain and code. Cancellation is not
 * handled here: the exchange knows why it cancelled. */
GError *
_dispatch_error_from_transport (const GError *error)
{
  g_autofree char *detail = describe_error (error);
  DispatchError code = DISPATCH_ERROR_SOCKET;
  const char *what = "connection failed";

  if (error->domain == G_RESOLVER_ERROR)
    {
      code = DISPATCH_ERROR_DNS;
      what = "could not resolve host";
    }
  else if (error->domain == G_TLS_ERROR)
    {
      code = DISPATCH_ERROR_TLS;
      what = "TLS failure";
    }
  else if (error->domain == SOUP_SESSION_ERROR)
    {
      switch (error->code)
        {
        case SOUP_SESSION_ERROR_PARSING:
        case SOUP_SESSION_ERROR_ENCODING:
          code = DISPATCH_ERROR_PARSE;
          what = "malformed HTTP response";
          break;

        default:
          /* too many restarts or redirects, a message queued twice */
          what = "HTTP exchange failed";
          break;
        }
    }
  else if (error->domain == G_IO_ERROR)
    {
      switch (error->code)
        {
        case G_IO_ERROR_PARTIAL_INPUT:
          /* libsoup 3.2 reports an oversized header section this way; only
           * the text tells it apart from a truncated response. */
          if (strstr (error->message, "Header too big") != NULL)
            {
              code = DISPATCH_ERROR_HEADERS_OVERFLOW;
              what = "response header section too large";
            }
          else
            what = "other side closed";
          break;

        case G_IO_ERROR_CONNECTION_REFUSED:
          what = "connection refused";
          break;

        case G_IO_ERROR_BROKEN_PIPE:
        case G_IO_ERROR_NOT_CONNECTED:
          what = "connection reset or closed";
          break;

        case G_IO_ERROR_HOST_NOT_FOUND:
          code = DISPATCH_ERROR_DNS;
          what = "could not resolve host";
          break;

        case G_IO_ERROR_PROXY_FAILED:
        case G_IO_ERROR_PROXY_AUTH_FAILED:
        case G_IO_ERROR_PROXY_NEED_AUTH:
        case G_IO_ERROR_PROXY_NOT_ALLOWED:
          code = DISPATCH_ERROR_PROXY;
          what = "proxy failure";
          break;

        case G_IO_ERROR_TIMED_OUT:
          /* our own timers carry their own codes; this is the kernel's */
          what = "socket timed out";
          break;

        default:
          break;
        }
    }

  return g_error_new (DISPATCH_ERROR, code, "%s: %s", what, detail);
}

/* Response head values */

/* NULL (no header), or digits within gint64; libsoup accepts a list of
 * equal values ("N, N"), so allow that too. No allocation: this runs for
 * every response head. */
gboolean
_dispatch_content_length_is_valid (const char *value)
{
  const char *first = NULL;
  gsize first_len = 0;
  const char *p = value;

  if (value == NULL)
    return TRUE;

  for (;;)
    {
      const char *digits;
      guint64 n = 0;

      while (*p == ' ' || *p == '\t')
        p++;

      for (digits = p; g_ascii_isdigit (*p); p++)
        {
          guint d = *p - '0';

          if (n > (guint64) (G_MAXINT64 - d) / 10)
            return FALSE;
          n = n * 10 + d;
        }

      if (p == digits)
        return FALSE;

      if (first == NULL)
        {
          first = digits;
          first_len = p - digits;
        }
      else if ((gsize) (p - digits) != first_len || memcmp (digits, first, first_len) != 0)
        return FALSE;

      while (*p == ' ' || *p == '\t')
        p++;

      if (*p == '\0')
        return TRUE;
      if (*p++ != ',')
        return FALSE;
    }
}

/* The reason phrase goes to bindings as a UTF-8 string: control bytes or
 * invalid UTF-8 from the server are replaced by the standard phrase. */
const char *
_dispatch_sanitize_reason (guint       status,
                           const char *reason)
{
  if (reason == NULL)
    return NULL;

  if (g_utf8_validate (reason, -1, NULL))
    {
      const guchar *p;

      for (p = (const guchar *) reason; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
          break;
      if (*p == '\0')
        return reason;
    }

  return soup_status_get_phrase (status);
}

/* Origin cache
 *
 * Parsing and checking an origin costs more than the rest of building a
 * request, and an agent talks to a handful of origins: each is parsed
 * once. Each entry also keeps the last request target built for it: the
 * request's path and query as given, and the URI built from them. A
 * client that polls or repeats a request reuses that GUri instead of
 * encoding, building and freeing one per request. */

#define ORIGIN_CACHE_MAX 256

typedef struct
{
  const char *key;  /* owned by the table */
  GUri *origin;
  char *path;    /* the last target, or NULL */
  char *query;
  GUri *target;
} OriginEntry;

struct _DispatchOriginCache
{
  GMutex       mutex;
  GHashTable  *table;   /* origin string -> OriginEntry */
  OriginEntry *recent;  /* the last one found: most agents use one origin */
};

static void
origin_entry_free (OriginEntry *entry)
{
  g_uri_unref (entry->origin);
  g_free (entry->path);
  g_free (entry->query);
  g_clear_pointer (&entry->target, g_uri_unref);
  g_free (entry);
}

DispatchOriginCache *
_dispatch_origin_cache_new (void)
{
  DispatchOriginCache *cache = g_new0 (DispatchOriginCache, 1);

  g_mutex_init (&cache->mutex);
  cache->table = g_hash_table_new_full (g_str_hash, g_str_equal,
                                        g_free, (GDestroyNotify) origin_entry_free);

  return cache;
}

void
_dispatch_origin_cache_free (DispatchOriginCache *cache)
{
  g_hash_table_unref (cache->table);
  g_mutex_clear (&cache->mutex);
  g_free (cache);
}

/* Under the mutex. */
static OriginEntry *
find_entry (DispatchOriginCache *cache,
            const char          *origin)
{
  OriginEntry *entry = cache->recent;

  if (entry != NULL && strcmp (entry->key, origin) == 0)
    return entry;

  entry = g_hash_table_lookup (cache->table, origin);
  if (entry != NULL)
    cache->recent = entry;

  return entry;
}

/* The parsed @origin, or %NULL if it is not cached. With @target, also
 * the target URI last remembered for it if that had this @path and
 * @query (%NULL for none), else %NULL: one lookup for both. Runs before
 * the request is validated: @path may be anything, %NULL included. */
GUri *
_dispatch_origin_cache_lookup (DispatchOriginCache  *cache,
                               const char           *origin,
                               const char           *path,
                               const char           *query,
                               GUri                **target)
{
  OriginEntry *entry;
  GUri *uri = NULL;

  if (target != NULL)
    *target = NULL;

  g_mutex_lock (&cache->mutex);
  entry = find_entry (cache, origin);
  if (entry != NULL)
    {
      uri = g_uri_ref (entry->origin);
      if (target != NULL && entry->target != NULL &&
          g_strcmp0 (entry->path, path) == 0 && g_strcmp0 (entry->query, query) == 0)
        *target = g_uri_ref (entry->target);
    }
  g_mutex_unlock (&cache->mutex);

  return uri;
}

void
_dispatch_origin_cache_insert (DispatchOriginCache *cache,
                               const char          *origin,
                               GUri                *uri)
{
  OriginEntry *entry = g_new0 (OriginEntry, 1);
  char *key = g_strdup (origin);

  entry->key = key;
  entry->origin = g_uri_ref (uri);

  g_mutex_lock (&cache->mutex);
  /* An agent talks to a handful of origins; one that sees many just
   * starts over rather than growing without bound. */
  cache->recent = NULL;
  if (g_hash_table_size (cache->table) >= ORIGIN_CACHE_MAX)
    g_hash_table_remove_all (cache->table);
  g_hash_table_replace (cache->table, key, entry);
  g_mutex_unlock (&cache->mutex);
}

void
_dispatch_origin_cache_remember_target (DispatchOriginCache *cache,
                                        const char          *origin,
                                        const char          *path,
                                        const char          *query,
                                        GUri                *target)
{
  OriginEntry *entry;

  g_mutex_lock (&cache->mutex);
  entry = find_entry (cache, origin);
  if (entry != NULL)
    {
      g_free (entry->path);
      g_free (entry->query);
      g_clear_pointer (&entry->target, g_uri_unref);
      entry->path = g_strdup (path);
      entry->query = g_strdup (query);
      entry->target = g_uri_ref (target);
    }
  g_mutex_unlock (&cache->mutex);
}
