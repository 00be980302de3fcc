/* dispatch-version-macros.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(DISPATCH_INSIDE) && !defined(DISPATCH_COMPILATION)
# error "Only <libdispatch-gobject/dispatch.h> can be included directly."
#endif

#include <glib.h>

#ifndef _DISPATCH_EXTERN
# define _DISPATCH_EXTERN __attribute__((visibility("default"))) extern
#endif

#define DISPATCH_AVAILABLE_IN_ALL _DISPATCH_EXTERN
#define DISPATCH_AVAILABLE_IN_0_1 _DISPATCH_EXTERN
