/* dispatch-request-controller.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(DISPATCH_INSIDE) && !defined(DISPATCH_COMPILATION)
# error "Only <libdispatch-gobject/dispatch.h> can be included directly."
#endif

#include <gio/gio.h>

#include "dispatch-version-macros.h"

G_BEGIN_DECLS

#define DISPATCH_TYPE_REQUEST_CONTROLLER (dispatch_request_controller_get_type ())

DISPATCH_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (DispatchRequestController, dispatch_request_controller,
                      DISPATCH, REQUEST_CONTROLLER, GObject)

DISPATCH_AVAILABLE_IN_ALL
void                       dispatch_request_controller_abort          (DispatchRequestController *self,
                                                                       const GError              *reason);
DISPATCH_AVAILABLE_IN_ALL
void                       dispatch_request_controller_pause          (DispatchRequestController *self);
DISPATCH_AVAILABLE_IN_ALL
void                       dispatch_request_controller_resume         (DispatchRequestController *self);
DISPATCH_AVAILABLE_IN_ALL
gboolean                   dispatch_request_controller_get_paused     (DispatchRequestController *self);
DISPATCH_AVAILABLE_IN_ALL
gboolean                   dispatch_request_controller_get_aborted    (DispatchRequestController *self);
DISPATCH_AVAILABLE_IN_ALL
const GError              *dispatch_request_controller_get_reason     (DispatchRequestController *self);
DISPATCH_AVAILABLE_IN_ALL
GCancellable              *dispatch_request_controller_get_cancellable (DispatchRequestController *self);
DISPATCH_AVAILABLE_IN_ALL
GMainContext              *dispatch_request_controller_get_context    (DispatchRequestController *self);
DISPATCH_AVAILABLE_IN_ALL
gboolean                   dispatch_request_controller_get_finished   (DispatchRequestController *self);
DISPATCH_AVAILABLE_IN_ALL
gboolean                   dispatch_request_controller_wait_if_paused (DispatchRequestController *self,
                                                                       GCancellable              *cancellable,
                                                                       GError                   **error);

G_END_DECLS
