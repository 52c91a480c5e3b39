package cli

import (
	"bytes"
	"testing"
	"time"

	"github.com/panelx/panelx/client"
)

func TestCRLFWriter(t *testing.T) {
	for _, c := range []struct {
		name   string
		chunks []string
		want   string
	}{
		{"line ends", []string{"a\r\nb\r\n"}, "a\nb\n"},
		{"split between CR and LF", []string{"a\r", "\nb\r", "\n"}, "a\nb\n"},
		{"a lone CR stays", []string{"50%\r100%\r\n"}, "50%\r100%\n"},
		{"a CR at the very end", []string{"x\r"}, "x\r"},
		{"LF alone", []string{"a\nb"}, "a\nb"},
		{"empty writes", []string{"", "a\r", "", "\n"}, "a\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			w := &crlfWriter{w: &out}
			for _, ch := range c.chunks {
				if n, err := w.Write([]byte(ch)); err != nil || n != len(ch) {
					t.Fatalf("Write(%q) = %d, %v", ch, n, err)
				}
			}
			w.flush()
			if out.String() != c.want {
				t.Errorf("got %q, want %q", out.String(), c.want)
			}
		})
	}
}

func TestFormatLogLine(t *testing.T) {
	at := time.Date(2025, 3, 4, 5, 6, 7, 800, time.FixedZone("x", 3600))
	for _, c := range []struct {
		line       client.LogLine
		timestamps bool
		want       string
	}{
		{client.LogLine{Replica: 0, Stream: "stdout", Text: "hi"}, false, "[0] hi"},
		{client.LogLine{Replica: 2, Stream: "stderr", Text: "oops"}, false, "[2 stderr] oops"},
		{client.LogLine{Replica: -1, Stream: "system", Text: "following"}, false, "[- system] following"},
		{client.LogLine{Replica: 1, Stream: "stdout", Text: "t", Time: at}, true, "2025-03-04T04:06:07.0000008Z [1] t"},
	} {
		if got := formatLogLine(c.line, c.timestamps); got != c.want {
			t.Errorf("%+v: %q, want %q", c.line, got, c.want)
		}
	}
}
