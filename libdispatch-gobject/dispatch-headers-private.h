/* dispatch-headers-private.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <libsoup/soup.h>

#include "dispatch-headers.h"

G_BEGIN_DECLS

DispatchHeaders *_dispatch_headers_new_read_only_empty (void);
DispatchHeaders *_dispatch_headers_new_from_soup       (SoupMessageHeaders  *headers);
void             _dispatch_headers_release_soup        (DispatchHeaders     *self);
gsize            _dispatch_headers_wire_size           (SoupMessageHeaders  *headers,
                                                        const char         **content_length);
DispatchHeaders *_dispatch_headers_copy_from_soup      (SoupMessageHeaders  *headers);
void             _dispatch_headers_append_unchecked    (DispatchHeaders     *self,
                                                        const char          *name,
                                                        const char          *value);
gboolean         _dispatch_headers_validate            (DispatchHeaders     *self,
                                                        GError             **error);
void             _dispatch_headers_apply_to_soup       (DispatchHeaders     *self,
                                                        SoupMessageHeaders  *dest);

G_END_DECLS
