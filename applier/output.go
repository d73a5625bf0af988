package applier

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/rbee-dev/rbee/gguf"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// console serialises apply's output lines from parallel steps.
type console struct {
	mu  sync.Mutex
	out io.Writer
	tty bool
}

func newConsole(out io.Writer) *console {
	tty := false
	if f, ok := out.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd())) && os.Getenv("NO_COLOR") == ""
	}
	return &console{out: out, tty: tty}
}

func (c *console) printf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.out, format, args...)
}

// progress returns a callback that shows download progress for addr: a
// progress bar on a terminal, a plain line every 10 % (or 5 s) otherwise.
func (c *console) progress(addr string) (update func(bytes, total int64, rate float64), finish func()) {
	if c.tty {
		var bar *progressbar.ProgressBar
		update = func(bytes, total int64, _ float64) {
			c.mu.Lock()
			defer c.mu.Unlock()
			if bar == nil {
				max := total
				if max <= 0 {
					max = -1
				}
				bar = progressbar.NewOptions64(max,
					progressbar.OptionSetWriter(c.out),
					progressbar.OptionSetDescription(addr),
					progressbar.OptionShowBytes(true),
					progressbar.OptionSetWidth(30),
					progressbar.OptionThrottle(100*time.Millisecond),
					progressbar.OptionClearOnFinish(),
				)
			}
			_ = bar.Set64(bytes)
		}
		finish = func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if bar != nil {
				_ = bar.Finish()
			}
		}
		return update, finish
	}
	var lastPct int64 = -1
	var lastAt time.Time
	update = func(bytes, total int64, rate float64) {
		now := time.Now()
		pct := int64(-1)
		if total > 0 {
			pct = bytes * 100 / total
		}
		if pct >= 0 && pct/10 == lastPct/10 && now.Sub(lastAt) < 5*time.Second {
			return
		}
		if pct < 0 && now.Sub(lastAt) < 5*time.Second {
			return
		}
		lastPct, lastAt = pct, now
		if total > 0 {
			c.printf("%s: downloaded %s of %s (%d%%, %s/s)\n", addr, gguf.FormatBytes(bytes), gguf.FormatBytes(total), pct, gguf.FormatBytes(int64(rate)))
		} else {
			c.printf("%s: downloaded %s (%s/s)\n", addr, gguf.FormatBytes(bytes), gguf.FormatBytes(int64(rate)))
		}
	}
	return update, func() {}
}

func roundDuration(d time.Duration) string {
	if d < time.Second {
		return "0s"
	}
	return d.Round(time.Second).String()
}
