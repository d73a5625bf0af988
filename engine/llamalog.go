package engine

/*
#include <stdlib.h>

typedef void (*rbee_log_fn)(int level, char * text, void * user_data);
void llama_log_set(rbee_log_fn cb, void * user_data);
extern void rbeeLlamaLog(int level, char * text, void * user_data);
*/
import "C"

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"unsafe"
)

// ggml's log levels (ggml.h).
const (
	logLevelInfo  = 2
	logLevelError = 4
	logLevelCont  = 5
)

// logCapture collects llama.cpp's error lines while a model loads, so that
// the error Load returns says why (llama.cpp returns only a null pointer).
var logCapture struct {
	mu     sync.Mutex
	on     bool
	lines  []string
	inErr  bool // the previous line was an error, so a continuation is one too
	serial sync.Mutex
}

func init() {
	C.llama_log_set(C.rbee_log_fn(C.rbeeLlamaLog), nil)
}

// rbeeLlamaLog prints llama.cpp's log as the binding does (to stderr, at the
// levels slog's default logger shows) and keeps error lines while captured.
//
//export rbeeLlamaLog
func rbeeLlamaLog(level C.int, text *C.char, _ unsafe.Pointer) {
	s := C.GoString(text)
	if slog.Default().Enabled(context.Background(), slog.Level(int(level-logLevelInfo)*4)) {
		fmt.Fprint(os.Stderr, s)
	}
	logCapture.mu.Lock()
	defer logCapture.mu.Unlock()
	if !logCapture.on {
		return
	}
	switch {
	case level == logLevelError:
		logCapture.lines = append(logCapture.lines, s)
		logCapture.inErr = true
	case level == logLevelCont && logCapture.inErr && len(logCapture.lines) > 0:
		logCapture.lines[len(logCapture.lines)-1] += s
	default:
		logCapture.inErr = false
	}
}

// captureErrors runs f while collecting llama.cpp's error lines and returns
// them. Captures run one at a time.
func captureErrors(f func()) []string {
	logCapture.serial.Lock()
	defer logCapture.serial.Unlock()
	logCapture.mu.Lock()
	logCapture.on, logCapture.lines, logCapture.inErr = true, nil, false
	logCapture.mu.Unlock()
	defer func() {
		logCapture.mu.Lock()
		logCapture.on, logCapture.lines = false, nil
		logCapture.mu.Unlock()
	}()
	f()
	logCapture.mu.Lock()
	defer logCapture.mu.Unlock()
	return append([]string(nil), logCapture.lines...)
}

// logCause turns captured error lines into the reason for a failure:
// llama.cpp's "error loading model: X" is X, unless X only says that loading
// failed; then the other error lines, without the function names that
// prefix them, joined by "; ".
func logCause(lines []string) string {
	const marker = "error loading model: "
	var main string
	var details []string
	seen := map[string]bool{}
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if i := strings.Index(l, marker); i >= 0 {
			main = strings.TrimSpace(l[i+len(marker):])
			continue
		}
		if i := strings.Index(l, ": "); i > 0 && !strings.ContainsAny(l[:i], " '\"") {
			l = l[i+2:] // "llama_model_load: ..." → "..."
		}
		if l == "" || generic(l) || seen[l] {
			continue
		}
		seen[l] = true
		details = append(details, l)
	}
	if main != "" && (!generic(main) || len(details) == 0) {
		return main
	}
	return strings.Join(details, "; ")
}

// generic reports a log line that says only that loading failed.
func generic(l string) bool {
	for _, p := range []string{"failed to load model", "llama_model_loader: failed to load model", "unable to load model"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}
