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

gboolean  _dispatch_is_token              (const char   *str);
gboolean  _dispatch_header_value_is_valid (const char   *value);
gboolean  _dispatch_check_header          (const char   *name,
                                           const char   *value,
                                           GError      **error);
guint8   *_dispatch_get_read_buffer       (void);
GError   *_dispatch_error_from_transport  (const GError *error);
char     *_dispatch_describe_error        (const GError *error);

G_END_DECLS
