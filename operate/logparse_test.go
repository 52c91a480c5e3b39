package operate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

const (
	ts1 = "2026-01-02T03:04:05.000000001Z"
	ts2 = "2026-01-02T03:04:06.5Z"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// frame is one message of Docker's multiplexed log stream.
func frame(stream byte, payload string) string {
	var hdr [8]byte
	hdr[0] = stream
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(payload)))
	return string(hdr[:]) + payload
}

func collect(t *testing.T, parse func(io.Reader, int, sink) error, input string, max int) ([]piece, error) {
	t.Helper()
	var got []piece
	err := parse(strings.NewReader(input), max, func(p piece) error {
		if len(p.Text) > max {
			t.Errorf("piece of %d bytes exceeds the limit %d", len(p.Text), max)
		}
		got = append(got, p)
		return nil
	})
	return got, err
}

func TestParseMultiplexed(t *testing.T) {
	long := strings.Repeat("a", dockerPartialSize)
	for _, tc := range []struct {
		name  string
		input string
		max   int
		want  []piece
	}{
		{
			name:  "stdout and stderr demultiplexed",
			input: frame(1, ts1+" hello\n") + frame(2, ts2+" oops\n"),
			want:  []piece{{Stream: "stdout", Time: mustTime(t, ts1), Text: "hello"}, {Stream: "stderr", Time: mustTime(t, ts2), Text: "oops"}},
		},
		{
			name:  "Docker's 16 KiB partial messages are joined",
			input: frame(1, ts1+" "+long) + frame(1, ts2+" tail\n"),
			max:   64 * 1024,
			want:  []piece{{Stream: "stdout", Time: mustTime(t, ts1), Text: long + "tail"}},
		},
		{
			name:  "a short message without newline ends its line",
			input: frame(1, ts1+" no newline") + frame(1, ts2+" next\n"),
			want:  []piece{{Stream: "stdout", Time: mustTime(t, ts1), Text: "no newline"}, {Stream: "stdout", Time: mustTime(t, ts2), Text: "next"}},
		},
		{
			name:  "streams keep separate partial lines",
			input: frame(1, ts1+" "+long) + frame(2, ts2+" err\n") + frame(1, ts2+" out\n"),
			max:   64 * 1024,
			want:  []piece{{Stream: "stderr", Time: mustTime(t, ts2), Text: "err"}, {Stream: "stdout", Time: mustTime(t, ts1), Text: long + "out"}},
		},
		{
			name:  "CRLF and empty lines",
			input: frame(1, ts1+" dos\r\n") + frame(1, ts1+" \n"),
			want:  []piece{{Stream: "stdout", Time: mustTime(t, ts1), Text: "dos"}, {Stream: "stdout", Time: mustTime(t, ts1), Text: ""}},
		},
		{
			name:  "a long line is split at the limit",
			input: frame(1, ts1+" "+strings.Repeat("x", 2500)+"\n"),
			max:   1024,
			want: []piece{
				{Stream: "stdout", Time: mustTime(t, ts1), Text: strings.Repeat("x", 1024), Partial: true},
				{Stream: "stdout", Time: mustTime(t, ts1), Text: strings.Repeat("x", 1024), Partial: true},
				{Stream: "stdout", Time: mustTime(t, ts1), Text: strings.Repeat("x", 452)},
			},
		},
		{
			name:  "a split never cuts a UTF-8 sequence",
			input: frame(1, ts1+" "+strings.Repeat("a", 1023)+"éb\n"),
			max:   1024,
			want: []piece{
				{Stream: "stdout", Time: mustTime(t, ts1), Text: strings.Repeat("a", 1023), Partial: true},
				{Stream: "stdout", Time: mustTime(t, ts1), Text: "éb"},
			},
		},
		{
			name:  "Docker's own error frames",
			input: frame(3, "error from daemon in stream: boom\n"),
			want:  []piece{{Stream: "system", Text: "error from daemon in stream: boom"}},
		},
		{
			name:  "stdin frames are skipped",
			input: frame(0, "ignored\n") + frame(1, ts1+" kept\n"),
			want:  []piece{{Stream: "stdout", Time: mustTime(t, ts1), Text: "kept"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			max := tc.max
			if max == 0 {
				max = DefaultMaxLineBytes
			}
			got, err := collect(t, parseMultiplexed, tc.input, max)
			if err != nil {
				t.Fatal(err)
			}
			comparePieces(t, got, tc.want)
		})
	}
}

func TestParseMultiplexedTruncatedFrame(t *testing.T) {
	input := frame(1, ts1+" complete\n")
	input += input[:len(input)-3]
	if _, err := collect(t, parseMultiplexed, input, 1024); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
	}
}

// A huge line without a newline leaves in bounded pieces as it arrives.
func TestParseMultiplexedBoundsHugeLines(t *testing.T) {
	var in strings.Builder
	const frames = 200 // 3.2 MiB without a newline
	for range frames {
		in.WriteString(frame(1, ts1+" "+strings.Repeat("z", dockerPartialSize)))
	}
	in.WriteString(frame(1, ts1+" end\n"))
	got, err := collect(t, parseMultiplexed, in.String(), 4096)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for i, p := range got {
		total += len(p.Text)
		if p.Partial != (i < len(got)-1) {
			t.Fatalf("piece %d: Partial = %v", i, p.Partial)
		}
	}
	if want := frames*dockerPartialSize + 3; total != want {
		t.Fatalf("got %d bytes in %d pieces, want %d", total, len(got), want)
	}
}

func TestParseRaw(t *testing.T) {
	long := strings.Repeat("r", dockerPartialSize)
	for _, tc := range []struct {
		name  string
		input string
		want  []piece
	}{
		{
			name:  "TTY lines with CRLF, one stream",
			input: ts1 + " started\r\n" + ts2 + " stderr too\r\n",
			want:  []piece{{Stream: "stdout", Time: mustTime(t, ts1), Text: "started"}, {Stream: "stdout", Time: mustTime(t, ts2), Text: "stderr too"}},
		},
		{
			name:  "partial message continuation timestamps are removed",
			input: ts1 + " " + long + ts2 + " end\r\n",
			want:  []piece{{Stream: "stdout", Time: mustTime(t, ts1), Text: long + "end"}},
		},
		{
			name:  "last line without newline",
			input: ts1 + " a\n" + ts2 + " b",
			want:  []piece{{Stream: "stdout", Time: mustTime(t, ts1), Text: "a"}, {Stream: "stdout", Time: mustTime(t, ts2), Text: "b"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := collect(t, parseRaw, tc.input, DefaultMaxLineBytes)
			if err != nil {
				t.Fatal(err)
			}
			comparePieces(t, got, tc.want)
		})
	}
}

func comparePieces(t *testing.T, got, want []piece) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d pieces, want %d: %s", len(got), len(want), describe(got))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Stream != w.Stream || !g.Time.Equal(w.Time) || g.Text != w.Text || g.Partial != w.Partial {
			t.Errorf("piece %d = {%s %s %q partial=%v}, want {%s %s %q partial=%v}", i,
				g.Stream, g.Time.Format(time.RFC3339Nano), short(g.Text), g.Partial,
				w.Stream, w.Time.Format(time.RFC3339Nano), short(w.Text), w.Partial)
		}
		if !utf8.ValidString(g.Text) {
			t.Errorf("piece %d is not valid UTF-8", i)
		}
	}
}

func describe(ps []piece) string {
	var b bytes.Buffer
	for _, p := range ps {
		b.WriteString(p.Stream + ":" + short(p.Text) + " ")
	}
	return b.String()
}

func short(s string) string {
	if len(s) > 40 {
		return s[:20] + "…" + s[len(s)-10:] + " (" + strconv.Itoa(len(s)) + " bytes)"
	}
	return s
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{in: ""},
		{in: "15m", want: now.Add(-15 * time.Minute)},
		{in: "2026-04-30T10:00:00.5Z", want: time.Date(2026, 4, 30, 10, 0, 0, 5e8, time.UTC)},
		{in: "1700000000", want: time.Unix(1700000000, 0)},
		{in: "-5m", bad: true},
		{in: "yesterday", bad: true},
	} {
		got, err := ParseSince(tc.in, now)
		if (err != nil) != tc.bad || (!tc.bad && !got.Equal(tc.want)) {
			t.Errorf("ParseSince(%q) = %v, %v; want %v (error: %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
	if got := dockerTime(time.Unix(12, 5)); got != "12.000000005" {
		t.Errorf("dockerTime = %q", got)
	}
}
