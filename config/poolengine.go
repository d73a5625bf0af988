package config

import (
	"slices"
	"strings"

	"github.com/rbee-dev/rbee/spec"
)

// poolEngine checks the pool attributes that go to llama.cpp as they are:
// kv_cache_type and chat_template.
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
	if !p.bad["chat_template"] && p.ChatTemplate != "" && !nameRe.MatchString(p.ChatTemplate) {
		v.errorf(r("chat_template"), "Invalid chat_template", "chat_template of pool %q is %s; name a built-in template such as chatml, llama3, llama2, phi3, gemma or mistral (the worker refuses names it does not know).", p.Name, clip(p.ChatTemplate))
	}
}
