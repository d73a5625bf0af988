package config

import (
	"slices"
	"strings"

	"github.com/rbee-dev/rbee/spec"
)

// poolEngine checks the pool attributes that go to llama.cpp as they are:
// kv_cache_type, gpu_layers and chat_template.
func (v *validator) poolEngine(p *Pool) {
	r := p.Range
	if !p.bad["kv_cache_type"] && p.KVCacheType != "" {
		switch {
		case !slices.Contains(spec.KVCacheTypes, p.KVCacheType):
			v.errorf(r("kv_cache_type"), "Invalid kv_cache_type", "kv_cache_type of pool %q is %s; allowed: %s.", p.Name, clip(p.KVCacheType), strings.Join(spec.KVCacheTypes, ", "))
		case p.KVCacheType != spec.KVCacheTypes[0] && !p.FlashAttn:
			v.errorf(r("kv_cache_type"), "kv_cache_type needs flash_attn", "kv_cache_type %s of pool %q quantizes the V cache, which llama.cpp does only with flash attention; set flash_attn = true or use f16.", p.KVCacheType, p.Name)
		}
	}
	if !p.bad["gpu_layers"] && p.GPULayers < 0 {
		v.errorf(r("gpu_layers"), "Invalid gpu_layers", "gpu_layers of pool %q is %d; allowed: 0 (the default: every layer on the GPU) or the number of layers to offload.", p.Name, p.GPULayers)
	} else if !p.bad["gpu_layers"] && !p.bad["backend"] && p.Backend == spec.BackendCPU && p.GPULayers != 0 {
		v.errorf(r("gpu_layers"), "gpu_layers needs a GPU backend", "gpu_layers of pool %q is %d, but its backend is cpu, which offloads nothing; remove gpu_layers, or set backend = \"cuda\".", p.Name, p.GPULayers)
	}
	if !p.bad["chat_template"] && p.ChatTemplate != "" && !nameRe.MatchString(p.ChatTemplate) {
		v.errorf(r("chat_template"), "Invalid chat_template", "chat_template of pool %q is %s; name a built-in template such as chatml, llama3, llama2, phi3, gemma or mistral (the worker refuses names it does not know).", p.Name, clip(p.ChatTemplate))
	}
}
