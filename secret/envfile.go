package secret

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
)

// MaxEnvFileBytes bounds an environment file: well over what a process can
// be started with.
const MaxEnvFileBytes = 1 << 20

var envKeyRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

const envFileHeader = "# Environment of the rbee hive and its workers, written by rbee apply. Keep it private (mode 0600).\n"

// EnvFile is the content of an environment file holding env: a comment,
// then one KEY=VALUE line per key, sorted. Values must not hold a newline
// (the configuration refuses them); EnvFile refuses one too, rather than
// writing a file that reads back differently.
func EnvFile(env map[string]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(envFileHeader)
	for _, k := range slices.Sorted(maps.Keys(env)) {
		v := env[k]
		if !envKeyRe.MatchString(k) {
			return nil, fmt.Errorf("environment variable name %q is not valid: letters, digits and _, not starting with a digit", k)
		}
		if strings.ContainsAny(v, "\x00\n\r") {
			return nil, fmt.Errorf("the value of environment variable %s holds a newline or NUL, which an environment file cannot carry", k)
		}
		b.WriteString(k + "=" + v + "\n")
	}
	return b.Bytes(), nil
}

// ReadEnvFile reads an environment file written from EnvFile and returns its
// KEY=VALUE pairs in file order. The file must be private (no group or other
// permission bits), as token files are. Errors name the line, never a value.
func ReadEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("env file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("env file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("env file %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("env file %s has mode %04o; it must be private: run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	pairs, err := ParseEnv(f)
	if err != nil {
		return nil, fmt.Errorf("env file %s: %w", path, err)
	}
	return pairs, nil
}

// ParseEnv reads KEY=VALUE lines; blank lines and lines starting with # are
// skipped. At most MaxEnvFileBytes are read.
func ParseEnv(r io.Reader) ([]string, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxEnvFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxEnvFileBytes {
		return nil, fmt.Errorf("larger than %d bytes", MaxEnvFileBytes)
	}
	var pairs []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), MaxEnvFileBytes)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" || strings.HasPrefix(text, "#") {
			continue
		}
		k, v, ok := strings.Cut(text, "=")
		switch {
		case !ok:
			return nil, fmt.Errorf("line %d is not KEY=VALUE", line)
		case !envKeyRe.MatchString(k):
			return nil, fmt.Errorf("line %d: the name before = is not a valid environment variable name (letters, digits and _, not starting with a digit)", line)
		case strings.IndexByte(v, 0) >= 0:
			return nil, fmt.Errorf("line %d: the value holds a NUL byte", line)
		}
		pairs = append(pairs, k+"="+v)
	}
	if err := sc.Err(); err != nil {
		return nil, errors.New("cannot be read: " + err.Error())
	}
	return pairs, nil
}
