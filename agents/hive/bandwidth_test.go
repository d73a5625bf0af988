package hive

import (
	"runtime"
	"testing"
)

// TestMeasureBandwidth checks that the measurement gives a plausible
// figure for a buffer past the caches: above 100 MB/s (any machine since
// the 1990s) and below 10 TB/s (beyond any memory made).
func TestMeasureBandwidth(t *testing.T) {
	bw := MeasureBandwidth(64<<20, runtime.NumCPU())
	if bw < 100e6 || bw > 10e12 {
		t.Fatalf("MeasureBandwidth = %d bytes/s", bw)
	}
	t.Logf("memory read bandwidth: %.1f GB/s", float64(bw)/1e9)
}
