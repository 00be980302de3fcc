/* dispatch-dispatcher.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(DISPATCH_INSIDE) && !defined(DISPATCH_COMPILATION)
# error "Only <libdispatch-gobject/dispatch.h> can be included directly."
#endif

#include <gio/gio.h>

#include "dispatch-handler.h"
#include "dispatch-request.h"
#include "dispatch-request-controller.h"
#include "dispatch-version-macros.h"

G_BEGIN_DECLS

#define DISPATCH_TYPE_DISPATCHER (dispatch_dispatcher_get_type ())

DISPATCH_AVAILABLE_IN_ALL
G_DECLARE_INTERFACE (DispatchDispatcher, dispatch_dispatcher, DISPATCH, DISPATCHER, GObject)

/**
 * DispatchDispatcherInterface:
 * @dispatch: starts a request; see [method@Dispatch.Dispatcher.dispatch].
 * @close_async: see [method@Dispatch.Dispatcher.close_async].
 * @close_finish: see [method@Dispatch.Dispatcher.close_finish].
 * @destroy_async: see [method@Dispatch.Dispatcher.destroy_async].
 * @destroy_finish: see [method@Dispatch.Dispatcher.destroy_finish].
 *
 * The virtual methods of [iface@Dispatch.Dispatcher].
 *
 * Since: 0.1
 */
struct _DispatchDispatcherInterface
{
  GTypeInterface parent_iface;

  DispatchRequestController *(*dispatch)       (DispatchDispatcher   *self,
                                                DispatchRequest      *request,
                                                DispatchHandler      *handler);
  void                       (*close_async)    (DispatchDispatcher   *self,
                                                GCancellable         *cancellable,
                                                GAsyncReadyCallback   callback,
                                                gpointer              user_data);
  gboolean                   (*close_finish)   (DispatchDispatcher   *self,
                                                GAsyncResult         *result,
                                                GError              **error);
  void                       (*destroy_async)  (DispatchDispatcher   *self,
                                                const GError         *reason,
                                                GCancellable         *cancellable,
                                                GAsyncReadyCallback   callback,
                                                gpointer              user_data);
  gboolean                   (*destroy_finish) (DispatchDispatcher   *self,
                                                GAsyncResult         *result,
                                                GError              **error);

  /*< private >*/
  gpointer _reserved[8];
};

DISPATCH_AVAILABLE_IN_ALL
DispatchRequestController *dispatch_dispatcher_dispatch       (DispatchDispatcher   *self,
                                                               DispatchRequest      *request,
                                                               DispatchHandler      *handler);
DISPATCH_AVAILABLE_IN_ALL
void                       dispatch_dispatcher_close_async    (DispatchDispatcher   *self,
                                                               GCancellable         *cancellable,
                                                               GAsyncReadyCallback   callback,
                                                               gpointer              user_data);
DISPATCH_AVAILABLE_IN_ALL
gboolean                   dispatch_dispatcher_close_finish   (DispatchDispatcher   *self,
                                                               GAsyncResult         *result,
                                                               GError              **error);
DISPATCH_AVAILABLE_IN_ALL
void                       dispatch_dispatcher_destroy_async  (DispatchDispatcher   *self,
                                                               const GError         *reason,
                                                               GCancellable         *cancellable,
                                                               GAsyncReadyCallback   callback,
                                                               gpointer              user_data);
DISPATCH_AVAILABLE_IN_ALL
gboolean                   dispatch_dispatcher_destroy_finish (DispatchDispatcher   *self,
                                                               GAsyncResult         *result,
                                                               GError              **error);

G_END_DECLS
