package bench

import (
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rbee-dev/rbee/gguf"
)

// BenchmarkSynth measures `rbee model synth --preset tinyllama-q4_0` (620 MB
// of Q4_0 blocks streamed to disk, atomically, with its sha256) against a
// baseline measured in the same run: writing the same number of random bytes
// to a file in the same folder with the same generator. A ratio near 1 means
// synth costs little beyond producing and storing the bytes.
func BenchmarkSynth(b *testing.B) {
	dir := b.TempDir()
	ctx := context.Background()
	var synthTime, baseTime time.Duration
	var size int64
	for i := 0; b.Loop(); i++ {
		path := filepath.Join(dir, "tl.gguf")
		start := time.Now()
		res, err := gguf.SynthFile(ctx, path, "tinyllama-q4_0", 1)
		if err != nil {
			b.Fatal(err)
		}
		synthTime += time.Since(start)
		size = res.Size
		os.Remove(path)

		start = time.Now()
		f, err := os.Create(filepath.Join(dir, "baseline.bin"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyN(f, rand.NewChaCha8([32]byte{1}), size); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		baseTime += time.Since(start)
		os.Remove(f.Name())
	}
	mbps := func(d time.Duration) float64 { return float64(size) * float64(b.N) / 1e6 / d.Seconds() }
	b.ReportMetric(mbps(synthTime), "synth-MB/s")
	b.ReportMetric(mbps(baseTime), "baseline-MB/s")
	b.ReportMetric(baseTime.Seconds()/synthTime.Seconds(), "synth/baseline")
	b.Logf("synth tinyllama-q4_0 (%s): %.0f MB/s; random bytes to disk: %.0f MB/s; ratio %.2f (1 = as fast as writing random bytes)",
		gguf.FormatBytes(size), mbps(synthTime), mbps(baseTime), baseTime.Seconds()/synthTime.Seconds())
}
