/* dispatch-util-private.h — validation, error mapping and shared buffers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

#include "dispatch-error.h"

G_BEGIN_DECLS

/* Size of the per-thread read buffer the body pump reads into. */
#define DISPATCH_READ_BUFFER_SIZE (256 * 1024)

/* Response head values: a Content-Length libsoup 3.2 would misread, a
 * reason phrase unfit for bindings (replaced by the standard phrase). */
gboolean    _dispatch_content_length_is_valid (const char *value);
const char *_dispatch_sanitize_reason         (guint       status,
                                               const char *reason);

/* Validated origins (scheme, host, port) by their string, so that a
 * dispatch to a known origin skips parsing it, and the last target URI
 * built for each. Thread-safe, bounded. */
typedef struct _DispatchOriginCache DispatchOriginCache;

DispatchOriginCache *_dispatch_origin_cache_new    (void);
void                 _dispatch_origin_cache_free   (DispatchOriginCache *cache);
GUri                *_dispatch_origin_cache_lookup (DispatchOriginCache  *cache,
                                                    const char           *origin,
                                                    const char           *path,
                                                    const char           *query,
                                                    GUri                **target);
void                 _dispatch_origin_cache_insert (DispatchOriginCache *cache,
                                                    const char          *origin,
                                                    GUri                *uri);
void                 _dispatch_origin_cache_remember_target (DispatchOriginCache *cache,
                                                             const char          *origin,
                                                             const char          *path,
                                                             const char          *query,
                                                             GUri                *target);

gboolean  _dispatch_is_token              (const char   *str);
gboolean  _dispatch_check_header          (const char   *name,
                                           const char   *value,
                                           GError      **error);
guint8   *_dispatch_get_read_buffer       (void);
GError   *_dispatch_error_from_transport  (const GError *error);

G_END_DECLS
