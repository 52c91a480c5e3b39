package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// maxInput bounds what -f reads, like the server's body limit.
const maxInput = 16 << 20

// input is one manifest source named by -f.
type input struct {
	name string // path, or "-" for stdin
	data []byte
}

// readInputs reads every -f argument: a file, a directory (its .yaml, .yml
// and .json files, in name order, not recursive), or "-" for stdin.
func readInputs(paths []string, stdin io.Reader) ([]input, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("no manifests: give -f FILE, -f DIR or -f -")
	}
	var out []input
	for _, p := range paths {
		if p == "-" {
			data, err := io.ReadAll(io.LimitReader(stdin, maxInput+1))
			if err != nil {
				return nil, fmt.Errorf("read stdin: %w", err)
			}
			if len(data) > maxInput {
				return nil, fmt.Errorf("stdin: more than %d bytes", maxInput)
			}
			out = append(out, input{name: "-", data: data})
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			data, err := readFile(p)
			if err != nil {
				return nil, err
			}
			out = append(out, input{name: p, data: data})
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		var names []string
		for _, e := range entries {
			ext := strings.ToLower(filepath.Ext(e.Name()))
			if !e.IsDir() && (ext == ".yaml" || ext == ".yml" || ext == ".json") {
				names = append(names, e.Name())
			}
		}
		slices.Sort(names)
		if len(names) == 0 {
			return nil, fmt.Errorf("%s: no .yaml, .yml or .json files", p)
		}
		for _, n := range names {
			full := filepath.Join(p, n)
			data, err := readFile(full)
			if err != nil {
				return nil, err
			}
			out = append(out, input{name: full, data: data})
		}
	}
	return out, nil
}

func readFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxInput+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if len(data) > maxInput {
		return nil, fmt.Errorf("%s: more than %d bytes", p, maxInput)
	}
	return data, nil
}

// joinDocuments concatenates manifest streams into one YAML stream.
func joinDocuments(ins []input) []byte {
	var b bytes.Buffer
	for _, in := range ins {
		if b.Len() > 0 {
			b.WriteString("\n---\n")
		}
		b.Write(in.data)
	}
	return b.Bytes()
}
