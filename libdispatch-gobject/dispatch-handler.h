/* dispatch-handler.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(DISPATCH_INSIDE) && !defined(DISPATCH_COMPILATION)
# error "Only <libdispatch-gobject/dispatch.h> can be included directly."
#endif

#include <gio/gio.h>

#include "dispatch-headers.h"
#include "dispatch-request-controller.h"
#include "dispatch-version-macros.h"

G_BEGIN_DECLS

#define DISPATCH_TYPE_HANDLER (dispatch_handler_get_type ())

DISPATCH_AVAILABLE_IN_ALL
G_DECLARE_INTERFACE (DispatchHandler, dispatch_handler, DISPATCH, HANDLER, GObject)

/**
 * DispatchHandlerInterface:
 * @on_request_start: the request is about to be sent; called first, once.
 * @on_response_informational: a 1xx response head arrived.
 * @on_response_start: the final response head arrived.
 * @on_response_data: a chunk of the response body arrived.
 * @on_response_end: the response completed successfully.
 * @on_response_error: the request failed.
 *
 * The virtual methods of [iface@Dispatch.Handler]. Every method has a
 * default that does nothing, so an implementation overrides only what it
 * needs. All are invoked in the dispatch context of the request.
 *
 * Since: 0.1
 */
struct _DispatchHandlerInterface
{
  GTypeInterface parent_iface;

  void (*on_request_start)          (DispatchHandler           *self,
                                     DispatchRequestController *controller);
  void (*on_response_informational) (DispatchHandler           *self,
                                     DispatchRequestController *controller,
                                     guint                      status,
                                     DispatchHeaders           *headers);
  void (*on_response_start)         (DispatchHandler           *self,
                                     DispatchRequestController *controller,
                                     guint                      status,
                                     DispatchHeaders           *headers,
                                     const char                *reason);
  void (*on_response_data)          (DispatchHandler           *self,
                                     DispatchRequestController *controller,
                                     GBytes                    *chunk);
  void (*on_response_end)           (DispatchHandler           *self,
                                     DispatchRequestController *controller,
                                     DispatchHeaders           *trailers);
  void (*on_response_error)         (DispatchHandler           *self,
                                     DispatchRequestController *controller,
                                     const GError              *error);

  /*< private >*/
  gpointer _reserved[8];
};

DISPATCH_AVAILABLE_IN_ALL
void dispatch_handler_on_request_start          (DispatchHandler           *self,
                                                 DispatchRequestController *controller);
DISPATCH_AVAILABLE_IN_ALL
void dispatch_handler_on_response_informational (DispatchHandler           *self,
                                                 DispatchRequestController *controller,
                                                 guint                      status,
                                                 DispatchHeaders           *headers);
DISPATCH_AVAILABLE_IN_ALL
void dispatch_handler_on_response_start         (DispatchHandler           *self,
                                                 DispatchRequestController *controller,
                                                 guint                      status,
                                                 DispatchHeaders           *headers,
                                                 const char                *reason);
DISPATCH_AVAILABLE_IN_ALL
void dispatch_handler_on_response_data          (DispatchHandler           *self,
                                                 DispatchRequestController *controller,
                                                 GBytes                    *chunk);
DISPATCH_AVAILABLE_IN_ALL
void dispatch_handler_on_response_end           (DispatchHandler           *self,
                                                 DispatchRequestController *controller,
                                                 DispatchHeaders           *trailers);
DISPATCH_AVAILABLE_IN_ALL
void dispatch_handler_on_response_error         (DispatchHandler           *self,
                                                 DispatchRequestController *controller,
                                                 const GError              *error);

G_END_DECLS
