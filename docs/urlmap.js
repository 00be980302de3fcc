// SPDX-License-Identifier: LGPL-2.1-or-later

// Base URLs of the online documentation of the namespaces the Dispatch
// reference links to; gi-docgen's pages read this table.
baseURLs = [
    [ 'GLib', 'https://docs.gtk.org/glib/' ],
    [ 'GObject', 'https://docs.gtk.org/gobject/' ],
    [ 'Gio', 'https://docs.gtk.org/gio/' ],
]
