package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rbee-dev/rbee/applier"
	"github.com/rbee-dev/rbee/operation"
	"github.com/rbee-dev/rbee/planner"
	"github.com/rbee-dev/rbee/state"
)

// newBackend opens the state (openState) as an operation backend; the
// refresh reads hive tokens where the state keeps them.
func newBackend(cmd *cobra.Command) (*operation.Backend, error) {
	st, err := openState(cmd)
	if err != nil {
		return nil, err
	}
	return &operation.Backend{State: st, Refresher: applier.NewRefresher(st)}, nil
}

// lockPolicy is -lock and -lock-timeout (commands without -lock always lock).
func lockPolicy(cmd *cobra.Command) operation.LockPolicy {
	v := mustSettings(cmd)
	return operation.LockPolicy{
		Skip:    cmd.Flags().Lookup("lock") != nil && !v.GetBool("lock"),
		Timeout: v.GetDuration("lock-timeout"),
	}
}

// onSignals is the CLI's one signal handler. The first Ctrl-C (or SIGTERM)
// calls first and cancels the returned context, so the work in flight can
// finish; a second calls second, which exits. stop ends the handling and
// returns the signal received, if any.
func onSignals(parent context.Context, first func(os.Signal), second func()) (ctx context.Context, stop func() os.Signal) {
	ctx, cancel := context.WithCancel(parent)
	var got atomic.Value
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			got.Store(s)
			first(s)
			cancel()
		case <-done:
			return
		}
		select {
		case <-sigs:
			second()
		case <-done:
		}
	}()
	return ctx, func() os.Signal {
		signal.Stop(sigs)
		close(done)
		cancel()
		s, _ := got.Load().(os.Signal)
		return s
	}
}

// interrupts applies the operation interrupt rule to a command: before
// anything changes an interrupted operation stops and releases the lock;
// once changes execute (after executing is called) no new change starts and
// those in flight finish and are recorded. A second signal exits at once.
func interrupts(cmd *cobra.Command) (ctx context.Context, executing func(), stop func() os.Signal) {
	var running atomic.Bool
	ctx, stop = onSignals(cmd.Context(), func(os.Signal) {
		if running.Load() {
			fmt.Fprintln(cmd.ErrOrStderr(), "\nInterrupt received: no new change starts; the changes in flight finish and are recorded. Press Ctrl-C again to quit now (the state lock then stays; release it with rbee state unlock).")
		}
	}, func() { os.Exit(130) })
	return ctx, func() { running.Store(true) }, stop
}

// runOperation runs req with the interrupt rule of interrupts and turns an
// interruption before any change into exit status 130 (143 for SIGTERM) with
// the message users know.
func runOperation(cmd *cobra.Command, b *operation.Backend, req operation.Request) (*operation.Result, error) {
	ctx, executing, stop := interrupts(cmd)
	onApply := req.OnApply
	req.OnApply = func(p *planner.Plan) {
		executing()
		if onApply != nil {
			onApply(p)
		}
	}
	res, err := b.Run(ctx, req)
	return res, interrupted(cmd, req.Kind.String(), err, stop())
}

// interrupted turns an *operation.Interrupted in err into exit status 130
// (143 after SIGTERM) with the message users know; other errors pass.
func interrupted(cmd *cobra.Command, op string, err error, sig os.Signal) error {
	var intr *operation.Interrupted
	if !errors.As(err, &intr) {
		return err
	}
	msg := interruptMessage(op) + " Nothing was changed"
	if intr.LockReleased {
		msg += " and the state lock was released"
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "\n%s.\n", msg)
	if sig == syscall.SIGTERM {
		return exitCode(143, nil)
	}
	return exitCode(130, nil)
}

// interruptMessage is what an interrupted op prints before it exits.
func interruptMessage(op string) string {
	switch op {
	case "apply", "destroy":
		return "Apply cancelled."
	case "refresh":
		return "Refresh cancelled."
	}
	return fmt.Sprintf("Interrupted: rbee %s stopped.", op)
}

// lockedState runs fn under the state lock for op (state rm, state restore),
// with the same interrupt rule as every operation.
func lockedState(cmd *cobra.Command, op string, fn func(ctx context.Context, st operation.State, snap *state.Snapshot) error) error {
	b, err := newBackend(cmd)
	if err != nil {
		return err
	}
	ctx, _, stop := interrupts(cmd)
	err = b.Locked(ctx, op, lockPolicy(cmd), func(ctx context.Context, snap *state.Snapshot) error {
		return fn(ctx, b.State, snap)
	})
	if err = interrupted(cmd, op, err, stop()); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			return err
		}
		return exitCode(1, err)
	}
	return nil
}
