/* dispatch-body-stream-private.h — a request body stream held to its
 * declared length
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define DISPATCH_TYPE_BODY_STREAM (dispatch_body_stream_get_type ())

G_DECLARE_FINAL_TYPE (DispatchBodyStream, dispatch_body_stream,
                      DISPATCH, BODY_STREAM, GFilterInputStream)

GInputStream *_dispatch_body_stream_new (GInputStream *base,
                                         gint64        length);

G_END_DECLS
