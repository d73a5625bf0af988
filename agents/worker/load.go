package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/rbee-dev/rbee/engine"
)

// engineOptions are the engine settings of the configuration.
func (s *Server) engineOptions() engine.Options {
	return engine.Options{
		Slots:    s.cfg.Slots,
		CtxSize:  s.cfg.CtxSize,
		Threads:  s.cfg.Threads,
		Progress: func(p float32) { s.progress.Store(uint64FromFloat(float64(p))) },

		FlashAttention: s.cfg.FlashAttention,
		KVCacheType:    s.cfg.KVCacheType,
		ChatTemplate:   s.cfg.ChatTemplate,
		Embeddings:     s.cfg.Embeddings,

		Backend:   s.cfg.Backend,
		Device:    s.cfg.Device,
		GPULayers: s.cfg.GPULayers,
	}
}

// hashModel computes the model file's sha256 for GET /v1/models, in the
// background: a large file takes seconds to read, and requests are served
// meanwhile, so it runs on a thread of the lowest priority that decoding
// always preempts. It must be the goroutine's last work (see
// lowerThreadPriority).
func (s *Server) hashModel(ctx context.Context) {
	if err := lowerThreadPriority(); err != nil {
		s.log.Debug("the model file is hashed at normal priority", "err", err)
	}
	f, err := os.Open(s.cfg.ModelPath)
	if err != nil {
		s.log.Warn("cannot hash the model file", "err", err)
		return
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, ctxReader{ctx, f}); err != nil {
		if ctx.Err() == nil {
			s.log.Warn("cannot hash the model file", "err", err)
		}
		return
	}
	sum := hex.EncodeToString(h.Sum(nil))
	s.sha256.Store(&sum)
}

// ctxReader stops reading once ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, fmt.Errorf("hashing stopped: %w", err)
	}
	return c.r.Read(p)
}
