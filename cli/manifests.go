package cli

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// loadManifests reads every -f input, converts Compose files, and returns
// one manifest stream for the server. Findings of the Compose conversion
// (what could not be mapped) go to stderr.
func loadManifests(files []string, stdin io.Reader, stderr io.Writer) ([]byte, error) {
	ins, err := readInputs(files, stdin)
	if err != nil {
		return nil, err
	}
	for i, in := range ins {
		if !isCompose(in) {
			continue
		}
		converted, err := convertCompose(in, stderr)
		if err != nil {
			return nil, err
		}
		ins[i].data = converted
	}
	if len(ins) == 1 {
		return ins[0].data, nil
	}
	return joinDocuments(ins), nil
}

var composeName = regexp.MustCompile(`^(docker-)?compose([.-].*)?\.ya?ml$`)

// isCompose recognises a Compose file by its name, or by a top-level
// "services" key without an apiVersion.
func isCompose(in input) bool {
	if composeName.MatchString(strings.ToLower(filepath.Base(in.name))) {
		return true
	}
	var top map[string]yaml.Node
	if err := yaml.Unmarshal(in.data, &top); err != nil {
		return false // several documents or not YAML: a manifest stream
	}
	_, services := top["services"]
	_, apiVersion := top["apiVersion"]
	return services && !apiVersion
}

func getenv(k string) string { return os.Getenv(k) }
