package worker

import (
	"strings"
	"testing"
)

func TestNewChecksPort(t *testing.T) {
	for _, tc := range []struct {
		port    int
		wantErr bool
	}{
		{0, true},
		{-1, true},
		{80, true},
		{1023, true},
		{1024, false},
		{8001, false},
		{65535, false},
		{65536, true},
	} {
		_, err := New(Config{ModelPath: "tiny.gguf", Port: tc.port})
		if tc.wantErr {
			if err == nil || !strings.Contains(err.Error(), "--port must be 1024-65535") {
				t.Errorf("port %d: error %v, want one saying --port must be 1024-65535", tc.port, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("port %d: %v, want it accepted", tc.port, err)
		}
	}
}
