package hiveapi

import (
	"fmt"
	"regexp"

	"github.com/rbee-dev/rbee/spec"
)

// MaxNameLen is the longest model name or worker id the hive accepts.
const MaxNameLen = spec.MaxNameLen

var nameRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// ValidName checks a model name or worker id: DNS-safe (lowercase letters,
// digits and inner hyphens) and at most 64 characters.
func ValidName(kind, name string) error {
	if name == "" {
		return fmt.Errorf("%s is empty; use lowercase letters, digits and '-' (at most %d characters)", kind, MaxNameLen)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%s %.20q… is %d characters long; at most %d are allowed", kind, name, len(name), MaxNameLen)
	}
	if !nameRe.MatchString(name) {
		return fmt.Errorf("%s %q is not DNS-safe; use lowercase letters, digits and '-', starting and ending with a letter or digit", kind, name)
	}
	return nil
}
