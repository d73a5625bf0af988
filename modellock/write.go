package modellock

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// Header is the comment a lock file starts with.
const Header = `# This file is maintained automatically by "rbee lock".
# Manual edits may be lost in future updates. Commit it beside the configuration:
# plan and apply download exactly what it names and refuse models it lacks.
`

// Bytes is the lock file's text, formatted as rbee fmt formats HCL.
func (l *Lock) Bytes() []byte {
	f := hclwrite.NewEmptyFile()
	body := f.Body()
	if l.LlamaCpp != nil {
		b := body.AppendNewBlock("llama_cpp", nil).Body()
		b.SetAttributeValue("module", cty.StringVal(l.LlamaCpp.Module))
		b.SetAttributeValue("version", cty.StringVal(l.LlamaCpp.Version))
	}
	for _, e := range l.Models {
		body.AppendNewline()
		b := body.AppendNewBlock("model", []string{e.Name}).Body()
		b.SetAttributeValue("source", cty.StringVal(e.Source))
		if e.Revision != "" {
			b.SetAttributeValue("revision", cty.StringVal(e.Revision))
		}
		if e.Commit != "" {
			b.SetAttributeValue("commit", cty.StringVal(e.Commit))
		}
		if e.Generator != "" {
			b.SetAttributeValue("generator", cty.StringVal(e.Generator))
			b.SetAttributeValue("seed", cty.NumberIntVal(e.Seed))
		}
		for _, file := range e.Files {
			b.AppendNewline()
			fb := b.AppendNewBlock("file", []string{file.Name}).Body()
			fb.SetAttributeValue("size", cty.NumberIntVal(file.Size))
			fb.SetAttributeValue("sha256", cty.StringVal(file.SHA256))
		}
	}
	return hclwrite.Format(append([]byte(Header+"\n"), f.Bytes()...))
}

// Write saves the lock at path atomically (a temporary file renamed over it).
func (l *Lock) Write(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), FileName+".*.tmp")
	if err != nil {
		return fmt.Errorf("write the model lock file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(l.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("write the model lock file %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write the model lock file %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write the model lock file %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write the model lock file %s: %w", path, err)
	}
	return nil
}
