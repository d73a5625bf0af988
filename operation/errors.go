package operation

import (
	"errors"
	"fmt"
)

// Interrupted is returned when the operation's context was cancelled (Ctrl-C
// or SIGTERM) before anything changed: no change started, nothing was
// written, and the lock, if it had been taken, was released.
type Interrupted struct {
	Op           string // plan, apply, destroy, refresh, ...
	LockReleased bool   // the operation held the lock and released it
}

func (e *Interrupted) Error() string {
	msg := "interrupted before anything changed"
	if e.LockReleased {
		msg += "; the state lock was released"
	}
	return fmt.Sprintf("%s %s", e.Op, msg)
}

// ErrDeclined is returned when the approval hook declined the plan.
var ErrDeclined = errors.New("not approved: nothing was changed")

// IsInterrupted reports whether err is an *Interrupted.
func IsInterrupted(err error) bool {
	var i *Interrupted
	return errors.As(err, &i)
}
