/* dispatch-request-controller-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include "dispatch-request-controller.h"

G_BEGIN_DECLS

/* Called in the dispatch context whenever the controller's source fires:
 * after a kick from any thread (pause, resume, abort, failure) or
 * _dispatch_request_controller_wake(). */
typedef void (*DispatchControllerDriver) (gpointer driver_data);

DispatchRequestController *_dispatch_request_controller_new               (GMainContext              *context,
                                                                           DispatchControllerDriver   driver,
                                                                           gpointer                   driver_data);
void                       _dispatch_request_controller_wake              (DispatchRequestController *self);
gboolean                   _dispatch_request_controller_fail              (DispatchRequestController *self,
                                                                           GError                    *error);
const GError              *_dispatch_request_controller_get_pending_error (DispatchRequestController *self);
void                       _dispatch_request_controller_finish            (DispatchRequestController *self);

G_END_DECLS
