package infer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"syscall"
	"time"

	"github.com/rbee-dev/rbee/agents/worker/workerapi"
	"github.com/rbee-dev/rbee/api"
)

// errStalled is the cancel cause of a request whose worker went quiet for
// longer than the stall timeout.
var errStalled = errors.New("the worker stalled")

// stallGuard returns a context that ends with errStalled when touch is not
// called for d (never when d <= 0), and the func that releases its timer.
func stallGuard(ctx context.Context, d time.Duration) (_ context.Context, touch, stop func()) {
	sctx, cancel := context.WithCancelCause(ctx)
	if d <= 0 {
		return sctx, func() {}, func() { cancel(nil) }
	}
	timer := time.AfterFunc(d, func() { cancel(errStalled) })
	return sctx, func() { timer.Reset(d) }, func() { timer.Stop(); cancel(nil) }
}

// attempt is what one request to one worker has seen so far.
type attempt struct {
	events  int   // events of any kind
	tokens  int   // token events
	ended   bool  // the end event arrived
	sinkErr error // the sink refused an event
}

// stream runs the request on one worker. A context that ends while the job
// runs, or a worker that sends nothing for r.StallTimeout, cancels the job on
// the worker before stream returns.
func (r *Router) stream(ctx context.Context, c *candidate, req Request, sink Sink, start time.Time, out *Outcome) error {
	cl := workerapi.NewClient(c.worker.URL, c.token)
	cl.HTTP = r.HTTP
	sctx, touch, stop := stallGuard(ctx, r.StallTimeout)
	defer stop()
	var at attempt
	res, err := cl.Infer(sctx, req.Params, func(ev workerapi.Event) error {
		touch()
		at.events++
		switch ev.Type {
		case workerapi.EventToken:
			if out.Tokens == 0 {
				out.FirstToken = time.Since(start)
			}
			out.Tokens++
			at.tokens++
		case workerapi.EventEnd:
			out.End, at.ended = ev, true
		}
		if err := sink(c.worker, ev); err != nil {
			at.sinkErr = err
			return err
		}
		return nil
	})
	if err == nil {
		out.End = res.End
		return nil
	}
	if api.HasCode(err, CodeBusy) {
		return err
	}
	if at.events == 0 && ctx.Err() == nil && sctx.Err() == nil && refused(err) {
		// Nothing reached the worker: another one may take the request.
		return &GoneError{Worker: c.worker.Name(), URL: c.worker.URL, Err: err}
	}
	if sctx.Err() != nil || at.events > 0 || !api.FromServer(err) {
		wait := 3 * time.Second
		if errors.Is(context.Cause(sctx), errStalled) {
			// A hung worker answers late if at all; closing the stream frees
			// its slot when it wakes up, so do not hold the user up for it.
			wait = time.Second
		}
		r.cancelJob(ctx, cl, c, req.Params.JobID, wait)
	}
	return r.streamError(ctx, sctx, c, at, err)
}

// streamError names what ended a stream that did not finish: the caller's
// context, the stall timer, the worker dying or the connection breaking.
func (r *Router) streamError(ctx, sctx context.Context, c *candidate, at attempt, err error) error {
	switch {
	case ctx.Err() != nil:
		cause := context.Cause(ctx)
		if errors.Is(cause, context.DeadlineExceeded) {
			return fmt.Errorf("the request to %s (%s) timed out after %d tokens; the job was cancelled. Raise --timeout or lower --max-tokens", c.worker.Name(), c.worker.URL, at.tokens)
		}
		return cause
	case errors.Is(context.Cause(sctx), errStalled):
		return &StallError{Worker: c.worker.Name(), URL: c.worker.URL, Tokens: at.tokens, Timeout: r.StallTimeout}
	case at.sinkErr != nil || api.FromServer(err):
		return fmt.Errorf("%s (%s): %w", c.worker.Name(), c.worker.URL, err)
	}
	b := &BrokenStreamError{Worker: c.worker.Name(), URL: c.worker.URL, Tokens: at.tokens, Err: err}
	b.Exited = r.exited(ctx, c)
	return b
}

// cancelJob asks the worker to stop the job so that its slot is freed at
// once; it gives up after wait (a hung worker does not answer).
func (r *Router) cancelJob(ctx context.Context, cl *workerapi.Client, c *candidate, jobID string, wait time.Duration) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wait)
	defer cancel()
	if err := cl.Cancel(cctx, jobID); err != nil && !api.HasStatus(err, http.StatusNotFound) && !refused(err) {
		r.log().Warn("could not cancel the job on the worker", "worker", c.worker.Name(), "job", jobID, "err", err)
	}
}

// exited reports whether the worker's port refuses connections now, which
// means its process is gone (rather than the network path broke).
func (r *Router) exited(ctx context.Context, c *candidate) bool {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	cl := workerapi.NewClient(c.worker.URL, c.token)
	cl.HTTP = r.HTTP
	_, err := cl.Ready(pctx)
	return err != nil && refused(err)
}

// refused reports whether err is a refused TCP connection: nothing listens
// on the worker's port.
func refused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
