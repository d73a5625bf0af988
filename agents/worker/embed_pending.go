package worker

import (
	"net/http"

	"github.com/rbee-dev/rbee/engine"
)

func (s *Server) embed(r *http.Request, eng *engine.Engine, batch [][]int) ([][]float32, error) {
	return nil, errEmbeddingsOff()
}
