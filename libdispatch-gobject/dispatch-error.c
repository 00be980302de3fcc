/* dispatch-error.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "config.h"

#include "dispatch-error.h"

/**
 * dispatch_error_quark:
 *
 * The quark of the %DISPATCH_ERROR domain.
 *
 * Returns: the error domain quark
 *
 * Since: 0.1
 */
G_DEFINE_QUARK (dispatch-error-quark, dispatch_error)
