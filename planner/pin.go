package planner

import (
	"slices"
	"strings"

	"github.com/rbee-dev/rbee/state"
)

// pinModels applies pin (if any) to every desired model record, in address
// order so that the first error is always the same one.
func pinModels(want *state.Snapshot, pin func(*state.ModelRecord) error) error {
	if pin == nil {
		return nil
	}
	addrs := make([]state.Addr, 0, len(want.Models))
	for a := range want.Models {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, func(a, b state.Addr) int { return strings.Compare(a.String(), b.String()) })
	for _, a := range addrs {
		if err := pin(want.Models[a]); err != nil {
			return err
		}
	}
	return nil
}
