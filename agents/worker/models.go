package worker

import (
	"net/http"

	"github.com/rbee-dev/rbee/agents/worker/workerapi"
	"github.com/rbee-dev/rbee/api"
)

// handleModels is GET /v1/models: the one model this worker serves, in
// OpenAI's list shape with rbee's fields added. It answers while the model
// loads too, from the configuration.
func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	m := workerapi.Model{
		ID:            modelName(s.cfg.ModelPath),
		Object:        "model",
		Created:       s.started.Unix(),
		OwnedBy:       "rbee",
		ContextLength: s.cfg.CtxSize,
		Embeddings:    s.cfg.Embeddings,
	}
	if sum := s.sha256.Load(); sum != nil {
		m.SHA256 = *sum
	}
	if eng := s.eng.Load(); eng != nil {
		info := eng.Info()
		m.ContextLength = info.CtxSize
		m.FileBytes = info.FileBytes
		m.ChatTemplate = info.ChatTemplate
		m.TrainedCtx = info.TrainedCtx
	}
	api.WriteJSON(w, http.StatusOK, workerapi.ModelList{Object: "list", Data: []workerapi.Model{m}})
}
