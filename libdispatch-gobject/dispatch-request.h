/* dispatch-request.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(DISPATCH_INSIDE) && !defined(DISPATCH_COMPILATION)
# error "Only <libdispatch-gobject/dispatch.h> can be included directly."
#endif

#include <gio/gio.h>

#include "dispatch-headers.h"
#include "dispatch-version-macros.h"

G_BEGIN_DECLS

#define DISPATCH_TYPE_REQUEST (dispatch_request_get_type ())

DISPATCH_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (DispatchRequest, dispatch_request, DISPATCH, REQUEST, GObject)

DISPATCH_AVAILABLE_IN_ALL
DispatchRequest *dispatch_request_new                (const char       *method,
                                                      const char       *origin,
                                                      const char       *path);
DISPATCH_AVAILABLE_IN_ALL
const char      *dispatch_request_get_method         (DispatchRequest  *self);
DISPATCH_AVAILABLE_IN_ALL
void             dispatch_request_set_method         (DispatchRequest  *self,
                                                      const char       *method);
DISPATCH_AVAILABLE_IN_ALL
const char      *dispatch_request_get_origin         (DispatchRequest  *self);
DISPATCH_AVAILABLE_IN_ALL
void             dispatch_request_set_origin         (DispatchRequest  *self,
                                                      const char       *origin);
DISPATCH_AVAILABLE_IN_ALL
const char      *dispatch_request_get_path           (DispatchRequest  *self);
DISPATCH_AVAILABLE_IN_ALL
void             dispatch_request_set_path           (DispatchRequest  *self,
                                                      const char       *path);
DISPATCH_AVAILABLE_IN_ALL
const char      *dispatch_request_get_query          (DispatchRequest  *self);
DISPATCH_AVAILABLE_IN_ALL
void             dispatch_request_set_query          (DispatchRequest  *self,
                                                      const char       *query);
DISPATCH_AVAILABLE_IN_ALL
void             dispatch_request_add_query          (DispatchRequest  *self,
                                                      const char       *key,
                                                      const char       *value);
DISPATCH_AVAILABLE_IN_ALL
DispatchHeaders *dispatch_request_get_headers        (DispatchRequest  *self);
DISPATCH_AVAILABLE_IN_ALL
void             dispatch_request_set_headers        (DispatchRequest  *self,
                                                      DispatchHeaders  *headers);
DISPATCH_AVAILABLE_IN_ALL
void             dispatch_request_add_header         (DispatchRequest  *self,
                                                      const char       *name,
                                                      const char       *value);
DISPATCH_AVAILABLE_IN_ALL
GBytes          *dispatch_request_get_body           (DispatchRequest  *self);
DISPATCH_AVAILABLE_IN_ALL
void             dispatch_request_set_body           (DispatchRequest  *self,
                                                      GBytes           *body);
DISPATCH_AVAILABLE_IN_ALL
GInputStream    *dispatch_request_get_body_stream    (DispatchRequest  *self);
DISPATCH_AVAILABLE_IN_ALL
void             dispatch_request_set_body_stream    (DispatchRequest  *self,
                                                      GInputStream     *stream,
                                                      gint64            length);
DISPATCH_AVAILABLE_IN_ALL
gint64           dispatch_request_get_body_length    (DispatchRequest  *self);
DISPATCH_AVAILABLE_IN_ALL
int              dispatch_request_get_headers_timeout (DispatchRequest *self);
DISPATCH_AVAILABLE_IN_ALL
void             dispatch_request_set_headers_timeout (DispatchRequest *self,
                                                       int              timeout_ms);
DISPATCH_AVAILABLE_IN_ALL
int              dispatch_request_get_body_timeout   (DispatchRequest  *self);
DISPATCH_AVAILABLE_IN_ALL
void             dispatch_request_set_body_timeout   (DispatchRequest  *self,
                                                      int               timeout_ms);
DISPATCH_AVAILABLE_IN_ALL
int              dispatch_request_get_timeout        (DispatchRequest  *self);
DISPATCH_AVAILABLE_IN_ALL
void             dispatch_request_set_timeout        (DispatchRequest  *self,
                                                      int               timeout_ms);
DISPATCH_AVAILABLE_IN_ALL
gboolean         dispatch_request_get_idempotent     (DispatchRequest  *self);
DISPATCH_AVAILABLE_IN_ALL
void             dispatch_request_set_idempotent     (DispatchRequest  *self,
                                                      gboolean          idempotent);
DISPATCH_AVAILABLE_IN_ALL
gboolean         dispatch_request_get_reset          (DispatchRequest  *self);
DISPATCH_AVAILABLE_IN_ALL
void             dispatch_request_set_reset          (DispatchRequest  *self,
                                                      gboolean          reset);
DISPATCH_AVAILABLE_IN_ALL
gint64           dispatch_request_get_max_response_size (DispatchRequest *self);
DISPATCH_AVAILABLE_IN_ALL
void             dispatch_request_set_max_response_size (DispatchRequest *self,
                                                         gint64           max_size);
DISPATCH_AVAILABLE_IN_ALL
gboolean         dispatch_request_validate           (DispatchRequest  *self,
                                                      GError          **error);

G_END_DECLS
