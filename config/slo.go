package config

import (
	"fmt"
	"math"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// SLO is a pool's optional slo block: what refresh's canary (a short fixed
// greedy request on each worker) must measure. A worker below it is drift,
// reported with the numbers; it is not replaced, which would not make a slow
// machine faster.
type SLO struct {
	MinDecodeTPS float64       `json:"min_decode_tps,omitempty"` // tokens per second of one stream; 0: not checked
	MaxTTFT      time.Duration `json:"max_ttft,omitempty"`       // time to the first token of a short prompt; 0: not checked
}

// MaxSLODecodeTPS bounds min_decode_tps: no stream decodes faster.
const MaxSLODecodeTPS = 1e6

// sloBlock is the block type of a pool's SLO.
const sloBlock = "slo"

var sloSchema = schema("min_decode_tps", "max_ttft")

// decodeSLO reads the slo blocks of pool (at most one), or returns nil when
// there is none.
func (d *decoder) decodeSLO(ctx *hcl.EvalContext, pool string, blocks hcl.Blocks) *SLO {
	var out *SLO
	for _, b := range blocks {
		if b.Type != sloBlock {
			continue
		}
		if out != nil {
			d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate slo block",
				Detail: fmt.Sprintf("pool %q has more than one slo block; merge them into one.", pool), Subject: b.DefRange.Ptr()})
			continue
		}
		a := d.content(ctx, b, sloSchema)
		s := &SLO{}
		a.duration("max_ttft", &s.MaxTTFT)
		a.number("min_decode_tps", &s.MinDecodeTPS)
		if !a.bad["min_decode_tps"] && a.attrs["min_decode_tps"] != nil && (s.MinDecodeTPS <= 0 || s.MinDecodeTPS > MaxSLODecodeTPS) {
			d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid min_decode_tps",
				Detail:  fmt.Sprintf("min_decode_tps of pool %q is %g; it is tokens per second of one stream, above 0 and at most %g (such as 15).", pool, s.MinDecodeTPS, float64(MaxSLODecodeTPS)),
				Subject: a.ranges["min_decode_tps"].Ptr()})
		}
		if len(a.attrs) == 0 {
			d.diags = append(d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Empty slo block",
				Detail:  fmt.Sprintf("the slo block of pool %q sets nothing: set min_decode_tps (tokens per second, such as 15) or max_ttft (such as \"2s\"), or remove it.", pool),
				Subject: b.DefRange.Ptr()})
		}
		out = s
	}
	return out
}

// number reads a finite number.
func (a *attrs) number(name string, dst *float64) {
	v, ok := a.value(name, cty.Number)
	if !ok {
		return
	}
	f, _ := v.AsBigFloat().Float64()
	if math.IsInf(f, 0) || math.IsNaN(f) {
		a.d.diags = append(a.d.diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid number",
			Detail: fmt.Sprintf("%s must be a finite number; got %s.", name, v.AsBigFloat().Text('g', 10)), Subject: a.ranges[name].Ptr()})
		a.bad[name] = true
		return
	}
	*dst = f
}

// withBlocks adds nested block types to a block's schema.
func withBlocks(s *hcl.BodySchema, types ...string) *hcl.BodySchema {
	for _, t := range types {
		s.Blocks = append(s.Blocks, hcl.BlockHeaderSchema{Type: t})
	}
	return s
}
