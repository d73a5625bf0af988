package worker

import (
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/rbee-dev/rbee/api"
)

// sse writes a server-sent event stream through api.SSEWriter (headers,
// a flush after every event). Token events are built in a reused buffer so
// a token costs no allocation.
type sse struct {
	*api.SSEWriter
	buf []byte
}

func newSSE(w http.ResponseWriter) *sse {
	return &sse{SSEWriter: api.NewSSEWriter(w), buf: make([]byte, 0, 512)}
}

func (s *sse) write(b []byte) bool { return s.Write(b) }

// token writes data: {"type":"token","t":"...","i":N}.
func (s *sse) token(text string, index int) bool {
	b := append(s.buf[:0], `data: {"type":"token","t":`...)
	b = appendJSONString(b, text)
	b = append(b, `,"i":`...)
	b = strconv.AppendInt(b, int64(index), 10)
	b = append(b, "}\n\n"...)
	s.buf = b
	return s.write(b)
}

// started writes the first event of a native stream.
func (s *sse) started(jobID string, slot int) bool {
	b := append(s.buf[:0], `data: {"type":"started","job_id":`...)
	b = appendJSONString(b, jobID)
	b = append(b, `,"slot":`...)
	b = strconv.AppendInt(b, int64(slot), 10)
	b = append(b, "}\n\n"...)
	s.buf = b
	return s.write(b)
}

// raw writes data: <prefix><json string of text><suffix>.
func (s *sse) raw(prefix, text, suffix string) bool {
	b := append(s.buf[:0], "data: "...)
	b = append(b, prefix...)
	b = appendJSONString(b, text)
	b = append(b, suffix...)
	b = append(b, "\n\n"...)
	s.buf = b
	return s.write(b)
}

// json writes one event holding v.
func (s *sse) json(v any) bool { return s.JSON(v) }

// done writes the final data: [DONE].
func (s *sse) done() bool { return s.Done() }

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string literal. Invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
