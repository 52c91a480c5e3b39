package operate

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"time"
	"unicode/utf8"
)

// Docker's log copier cuts a line longer than its 16 KiB buffer into
// "partial" messages of exactly this size; each is sent with its own
// timestamp and without a newline. Seeing a message of exactly this size
// without a newline means the line continues in the next message.
const dockerPartialSize = 16 * 1024

// minLineBytes bounds MaxLineBytes from below so a split always progresses
// past a multi-byte character.
const minLineBytes = 1024

// piece is one parsed log line (or one piece of a line longer than the
// limit, Partial set on all pieces but the last).
type piece struct {
	Stream  string
	Time    time.Time
	Text    string
	Partial bool
}

type sink func(piece) error

// assembler builds the lines of one stream from message contents, holding
// at most max bytes: a longer line leaves in pieces.
type assembler struct {
	stream  string
	max     int
	buf     []byte
	time    time.Time
	started bool
	emit    sink
}

// begin notes the timestamp of a message; the first one of a line dates it.
func (a *assembler) begin(t time.Time) {
	if !a.started {
		a.time, a.started = t, true
	}
}

// write adds message content, emitting a line at every newline.
func (a *assembler) write(p []byte) error {
	for len(p) > 0 {
		a.started = true
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if err := a.add(chunk); err != nil {
			return err
		}
		if i < 0 {
			return nil
		}
		if err := a.flush(); err != nil {
			return err
		}
		p = p[i+1:]
	}
	return nil
}

// add appends to the current line, emitting full pieces when it reaches
// max; a piece never ends inside a UTF-8 sequence.
func (a *assembler) add(chunk []byte) error {
	for len(a.buf)+len(chunk) > a.max {
		room := a.max - len(a.buf)
		a.buf = append(a.buf, chunk[:room]...)
		chunk = chunk[room:]
		cut := utf8Cut(a.buf)
		var carry [utf8.UTFMax]byte
		n := copy(carry[:], a.buf[cut:])
		if err := a.emit(piece{Stream: a.stream, Time: a.time, Text: string(a.buf[:cut]), Partial: true}); err != nil {
			return err
		}
		a.buf = append(a.buf[:0], carry[:n]...)
	}
	a.buf = append(a.buf, chunk...)
	return nil
}

// flush emits the current line (without a trailing CR: TTY output ends
// lines with CRLF) and starts a new one.
func (a *assembler) flush() error {
	if !a.started {
		return nil
	}
	text := a.buf
	if n := len(text); n > 0 && text[n-1] == '\r' {
		text = text[:n-1]
	}
	err := a.emit(piece{Stream: a.stream, Time: a.time, Text: string(text)})
	a.buf, a.started, a.time = a.buf[:0], false, time.Time{}
	return err
}

// utf8Cut returns the length of b without an incomplete trailing UTF-8
// sequence.
func utf8Cut(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return i
			}
			break
		}
	}
	return len(b)
}

// parseTimestamp parses Docker's RFC 3339 timestamp prefix (without the
// separating space).
func parseTimestamp(b []byte) (time.Time, bool) {
	if len(b) < len("2006-01-02T15:04:05Z") || len(b) > 40 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	return t, err == nil
}

// Stream IDs of Docker's stdcopy framing.
const (
	frameStdout = 1
	frameStderr = 2
	frameSystem = 3
)

// parseMultiplexed reads the logs of a container without a TTY: frames of
// an 8-byte header (stream, 3 zero bytes, big-endian length) and a payload,
// one log message per frame, each "<timestamp> <content>". Memory is bounded
// by the assemblers' limit and a fixed buffer, whatever the frame sizes.
func parseMultiplexed(r io.Reader, max int, emit sink) error {
	br := bufio.NewReaderSize(r, 64*1024)
	asm := map[byte]*assembler{
		frameStdout: {stream: StreamStdout, max: max, emit: emit},
		frameStderr: {stream: StreamStderr, max: max, emit: emit},
		frameSystem: {stream: StreamSystem, max: max, emit: emit},
	}
	var hdr [8]byte
	buf := make([]byte, 32*1024)
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return flushAll(asm)
			}
			return err
		}
		size := int64(binary.BigEndian.Uint32(hdr[4:]))
		a, ok := asm[hdr[0]]
		if !ok {
			if _, err := br.Discard(int(size)); err != nil {
				return err
			}
			continue
		}
		if err := readFrame(br, size, a, buf); err != nil {
			return err
		}
	}
}

// readFrame feeds one frame's message to its stream's assembler.
func readFrame(br *bufio.Reader, size int64, a *assembler, buf []byte) error {
	if peek, _ := br.Peek(int(min(size, 40))); len(peek) > 0 {
		if i := bytes.IndexByte(peek, ' '); i > 0 {
			if t, ok := parseTimestamp(peek[:i]); ok {
				a.begin(t)
				if _, err := br.Discard(i + 1); err != nil {
					return err
				}
				size -= int64(i + 1)
			}
		}
	}
	content := size
	var last byte
	for size > 0 {
		n, err := br.Read(buf[:min(int64(len(buf)), size)])
		if n > 0 {
			last = buf[n-1]
			if werr := a.write(buf[:n]); werr != nil {
				return werr
			}
			size -= int64(n)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	// A message without a newline is a partial line: it continues only when
	// Docker cut it at its buffer size; otherwise the output ended there.
	if content > 0 && last != '\n' && content != dockerPartialSize {
		return a.flush()
	}
	return nil
}

func flushAll(asm map[byte]*assembler) error {
	for _, id := range []byte{frameStdout, frameStderr, frameSystem} {
		if err := asm[id].flush(); err != nil {
			return err
		}
	}
	return nil
}

// parseRaw reads the logs of a container with a TTY: no framing, stdout and
// stderr already merged by the terminal, messages "<timestamp> <content>"
// back to back. A message ends at its newline, or after exactly
// dockerPartialSize bytes of content (a continuation with its own timestamp
// follows). A final line without a newline (the container stopped mid-line)
// cannot be told apart from the next message, which then appears joined to it.
func parseRaw(r io.Reader, max int, emit sink) error {
	br := bufio.NewReaderSize(r, 64*1024)
	a := &assembler{stream: StreamStdout, max: max, emit: emit}
	atMessage, count := true, 0
	for {
		if atMessage {
			if err := rawTimestamp(br, a); err != nil {
				return endRaw(a, err)
			}
			atMessage, count = false, 0
		}
		if _, err := br.Peek(1); err != nil {
			return endRaw(a, err)
		}
		b, _ := br.Peek(br.Buffered())
		n := min(len(b), dockerPartialSize-count)
		if i := bytes.IndexByte(b[:n], '\n'); i >= 0 {
			n = i + 1
			atMessage = true
		}
		if err := a.write(b[:n]); err != nil {
			return err
		}
		if _, err := br.Discard(n); err != nil {
			return err
		}
		count += n
		if count == dockerPartialSize {
			atMessage = true
		}
	}
}

// rawTimestamp consumes a message's timestamp; anything else is content.
func rawTimestamp(br *bufio.Reader, a *assembler) error {
	b, err := br.ReadSlice(' ')
	if err == nil {
		if t, ok := parseTimestamp(b[:len(b)-1]); ok {
			a.begin(t)
			return nil
		}
	}
	if len(b) > 0 {
		if werr := a.write(b); werr != nil {
			return werr
		}
	}
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil
	}
	return err
}

func endRaw(a *assembler, err error) error {
	if errors.Is(err, io.EOF) {
		return a.flush()
	}
	return err
}
