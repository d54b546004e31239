//go:build hotplex_system

package hotplex

// With -tags hotplex_system, cgo takes the header and the library from an
// installed hotplex C release through pkg-config (`pkg-config --cflags
// --libs hotplex`; set PKG_CONFIG_PATH=<prefix>/lib/pkgconfig for a prefix
// outside the default search path). That links the shared library
// (libhotplex.so.1), which must then be found at run time too.

/*
#cgo pkg-config: hotplex
*/
import "C"
