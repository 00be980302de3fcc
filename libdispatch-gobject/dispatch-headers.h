/* dispatch-headers.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(DISPATCH_INSIDE) && !defined(DISPATCH_COMPILATION)
# error "Only <libdispatch-gobject/dispatch.h> can be included directly."
#endif

#include <glib-object.h>

#include "dispatch-version-macros.h"

G_BEGIN_DECLS

#define DISPATCH_TYPE_HEADERS (dispatch_headers_get_type ())

typedef struct _DispatchHeaders DispatchHeaders;

DISPATCH_AVAILABLE_IN_ALL
GType             dispatch_headers_get_type   (void) G_GNUC_CONST;
DISPATCH_AVAILABLE_IN_ALL
DispatchHeaders  *dispatch_headers_new        (void);
DISPATCH_AVAILABLE_IN_ALL
DispatchHeaders  *dispatch_headers_ref        (DispatchHeaders  *self);
DISPATCH_AVAILABLE_IN_ALL
void              dispatch_headers_unref      (DispatchHeaders  *self);
DISPATCH_AVAILABLE_IN_ALL
DispatchHeaders  *dispatch_headers_copy       (DispatchHeaders  *self);
DISPATCH_AVAILABLE_IN_ALL
gboolean          dispatch_headers_is_read_only (DispatchHeaders *self);
DISPATCH_AVAILABLE_IN_ALL
gboolean          dispatch_headers_append     (DispatchHeaders  *self,
                                               const char       *name,
                                               const char       *value,
                                               GError          **error);
DISPATCH_AVAILABLE_IN_ALL
gboolean          dispatch_headers_set        (DispatchHeaders  *self,
                                               const char       *name,
                                               const char       *value,
                                               GError          **error);
DISPATCH_AVAILABLE_IN_ALL
guint             dispatch_headers_remove     (DispatchHeaders  *self,
                                               const char       *name);
DISPATCH_AVAILABLE_IN_ALL
gboolean          dispatch_headers_contains   (DispatchHeaders  *self,
                                               const char       *name);
DISPATCH_AVAILABLE_IN_ALL
const char       *dispatch_headers_get        (DispatchHeaders  *self,
                                               const char       *name);
DISPATCH_AVAILABLE_IN_ALL
char            **dispatch_headers_get_all    (DispatchHeaders  *self,
                                               const char       *name);
DISPATCH_AVAILABLE_IN_ALL
char            **dispatch_headers_get_names  (DispatchHeaders  *self);
DISPATCH_AVAILABLE_IN_ALL
guint             dispatch_headers_get_length (DispatchHeaders  *self);
DISPATCH_AVAILABLE_IN_ALL
const char       *dispatch_headers_get_name   (DispatchHeaders  *self,
                                               guint             index_);
DISPATCH_AVAILABLE_IN_ALL
const char       *dispatch_headers_get_value  (DispatchHeaders  *self,
                                               guint             index_);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (DispatchHeaders, dispatch_headers_unref)

G_END_DECLS
