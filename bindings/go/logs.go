package hotplex

/*
#include <stdbool.h>
#include <stdint.h>
#include "hotplex.h"

// Implemented in Go (telemetry.go).
extern void hotplexGoLog(char *record, size_t len);

// Forwards log records to Go (the handler is a package variable there).
static void hotplex_go_log_trampoline(void *user_data, const char *record, size_t len) {
    (void)user_data;
    hotplexGoLog((char *)record, len);
}

// Sends log records at min_level and above to Go, or (on false) none.
static hotplex_status hotplex_go_set_log(int32_t min_level, bool on) {
    return hotplex_set_log_callback(min_level, on ? hotplex_go_log_trampoline : NULL, NULL);
}
*/
import "C"

import (
	"log/slog"
	"sync"
	"sync/atomic"
)

// logBridge is the handler SetLogHandler installed, with its level.
type logBridge struct {
	h     slog.Handler
	level slog.Level
}

var (
	// logMu orders SetLogHandler calls.
	logMu sync.Mutex
	// currentLog is read by every record (on hotplex's log thread).
	currentLog atomic.Pointer[logBridge]
)

// SetLogHandler sends hotplex's logs at level and above to h, as slog
// records: the message, the level (hotplex's trace is LogLevelTrace, its
// debug, info, warn and error are slog's), and the attributes "target"
// (where in hotplex: "hotplex_core::engine::session", "hotplex::agent"
// for agent stderr lines, which come at debug) and "session_id" (when the
// record concerns a session). A nil h turns hotplex's logging off (the
// default).
//
// Process-wide: it replaces the handler of an earlier call, for every
// Engine. Records are handed over on a thread of hotplex's own, through a
// bounded queue: a slow handler loses records, it never stalls a turn; a
// handler that panics loses that record.
func SetLogHandler(h slog.Handler, level slog.Level) error {
	logMu.Lock()
	defer logMu.Unlock()
	if h == nil {
		err := call(func() C.hotplex_status { return C.hotplex_status(C.hotplex_go_set_log(C.HOTPLEX_LOG_ERROR, false)) })
		if err == nil {
			currentLog.Store(nil)
		}
		return err
	}
	previous := currentLog.Swap(&logBridge{h: h, level: level})
	err := call(func() C.hotplex_status { return C.hotplex_status(C.hotplex_go_set_log(minLogLevel(level), true)) })
	if err != nil {
		currentLog.Store(previous)
	}
	return err
}

// minLogLevel is the least severe hotplex level that level lets through.
func minLogLevel(level slog.Level) C.int32_t {
	switch {
	case level <= LogLevelTrace:
		return C.HOTPLEX_LOG_TRACE
	case level <= slog.LevelDebug:
		return C.HOTPLEX_LOG_DEBUG
	case level <= slog.LevelInfo:
		return C.HOTPLEX_LOG_INFO
	case level <= slog.LevelWarn:
		return C.HOTPLEX_LOG_WARN
	}
	return C.HOTPLEX_LOG_ERROR
}
