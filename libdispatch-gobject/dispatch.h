/* dispatch.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <gio/gio.h>

#define DISPATCH_INSIDE
# include "dispatch-version.h"
# include "dispatch-version-macros.h"
# include "dispatch-error.h"
# include "dispatch-enum-types.h"
# include "dispatch-headers.h"
# include "dispatch-request.h"
# include "dispatch-request-controller.h"
# include "dispatch-handler.h"
# include "dispatch-dispatcher.h"
# include "dispatch-agent.h"
#undef DISPATCH_INSIDE
