package features

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cucumber/godog"
)

// Steps of the rolling-apply scenario: a client that streams through the
// gateway in a loop while apply replaces the pool's workers.

// clientLoop is one client streaming completions back to back until stopped.
type clientLoop struct {
	stop   chan struct{}
	done   chan struct{}
	ok     atomic.Int64
	mu     sync.Mutex
	errors []string
}

// registerRollingSteps adds the client-loop steps to the gateway's (g).
func registerRollingSteps(sc *godog.ScenarioContext, g *gatewayWorld) {
	loops := map[string]*clientLoop{}
	sc.After(func(ctx context.Context, _ *godog.Scenario, _ error) (context.Context, error) {
		for _, l := range loops {
			l.halt()
		}
		return ctx, nil
	})
	sc.Step(`^a client streams completions of (\d+) tokens from "([^"]*)" through the gateway in a loop as "([^"]*)"$`, func(n int, model, name string) error {
		if g.url == "" {
			return fmt.Errorf("no gateway runs in this scenario")
		}
		l := &clientLoop{stop: make(chan struct{}), done: make(chan struct{})}
		loops[name] = l
		go func() {
			defer close(l.done)
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				if err := g.completionStream(model, n); err != nil {
					l.mu.Lock()
					l.errors = append(l.errors, err.Error())
					l.mu.Unlock()
					continue
				}
				l.ok.Add(1)
			}
		}()
		return nil
	})
	sc.Step(`^client loop "([^"]*)" has completed (\d+) (?:more )?requests? without an error$`, func(name string, more int) error {
		l := loops[name]
		if l == nil {
			return fmt.Errorf("no client loop %q", name)
		}
		start := l.ok.Load()
		return eventually(3*time.Minute, func() error {
			if errs := l.errs(); len(errs) > 0 {
				return fmt.Errorf("client loop %q lost %d request(s): %v", name, len(errs), errs)
			}
			if got := l.ok.Load() - start; got < int64(more) {
				return fmt.Errorf("client loop %q completed %d more, want %d", name, got, more)
			}
			return nil
		})
	})
	sc.Step(`^client loop "([^"]*)" lost no request$`, func(name string) error {
		l := loops[name]
		if l == nil {
			return fmt.Errorf("no client loop %q", name)
		}
		l.halt()
		if errs := l.errs(); len(errs) > 0 {
			return fmt.Errorf("client loop %q lost %d request(s) of %d: %v", name, len(errs), int64(len(errs))+l.ok.Load(), errs)
		}
		if l.ok.Load() == 0 {
			return fmt.Errorf("client loop %q completed no request", name)
		}
		return nil
	})
}

func (l *clientLoop) errs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errors...)
}

// halt stops the loop after its request in flight and waits for it.
func (l *clientLoop) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}
