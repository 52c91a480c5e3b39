package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/client"
)

// loadManifests reads every -f input, converts Compose files, and returns
// one manifest stream for the server. Findings of the Compose conversion
// (what could not be mapped) go to stderr.
func loadManifests(files []string, stdin io.Reader, stderr io.Writer, copts composeOptions) ([]byte, []docSource, error) {
	ins, err := readInputs(files, stdin)
	if err != nil {
		return nil, nil, err
	}
	converted := make([]bool, len(ins))
	for i, in := range ins {
		if !isCompose(in) {
			continue
		}
		converted[i] = true
		data, err := convertCompose(in, stderr, copts)
		if err != nil {
			return nil, nil, err
		}
		ins[i].data = data
	}
	var sources []docSource
	first := 0
	for i, in := range ins {
		n, err := api.CountDocuments(in.data)
		if err != nil {
			sources = nil // the server will say what is wrong; indexes are not mapped
			break
		}
		sources = append(sources, docSource{name: in.name, first: first, count: n, compose: converted[i]})
		first += n
	}
	if len(ins) == 1 {
		return ins[0].data, sources, nil
	}
	return joinDocuments(ins), sources, nil
}

// docSource is where the documents first..first+count-1 of the stream
// sent to the server came from.
type docSource struct {
	name         string
	first, count int
	compose      bool // converted from a Compose file
}

var docIndex = regexp.MustCompile(`^\[(\d+)\]\.?`)

// nameDocuments rewrites the server's document indexes ("[5].spec.image")
// in an apply error as the file and the document in it, counted from 1
// ("deploy/web.yaml, document 2: spec.image"): the stream the server saw
// is every file joined, so its index alone sends a user counting.
func nameDocuments(err error, sources []docSource) error {
	var ae *client.APIError
	if !errors.As(err, &ae) || len(sources) == 0 {
		return err
	}
	out := *ae
	out.Problem.Errors = nil
	for _, fe := range ae.Problem.Errors {
		c := *fe
		idx, rest := 0, c.Field
		if m := docIndex.FindStringSubmatch(c.Field); m != nil {
			idx, _ = strconv.Atoi(m[1])
			rest = c.Field[len(m[0]):]
		} else if sources[len(sources)-1].first+sources[len(sources)-1].count > 1 {
			out.Problem.Errors = append(out.Problem.Errors, &c)
			continue // an error of the whole stream
		}
		for _, s := range sources {
			if idx >= s.first && idx < s.first+s.count {
				where := s.name
				if where == "-" {
					where = "stdin"
				}
				if s.count > 1 {
					where += fmt.Sprintf(", document %d", idx-s.first+1)
				}
				if rest != "" {
					where += ": " + rest
				}
				c.Field = where
				break
			}
		}
		out.Problem.Errors = append(out.Problem.Errors, &c)
	}
	return &out
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

// hintBindMounts adds, to a refusal of hostPath mounts in what came from a
// Compose file, the way to import it without them.
func hintBindMounts(err error, sources []docSource) error {
	compose := false
	for _, s := range sources {
		compose = compose || s.compose
	}
	if !compose {
		return err
	}
	if strings.Contains(err.Error(), "hostPath") {
		err = fmt.Errorf("%w\n(a Compose bind mount becomes a hostPath mount, which only administrators may use: --drop-bind-mounts imports the file without them, each reported)", err)
	}
	if strings.Contains(err.Error(), "dockerVolume") {
		err = fmt.Errorf("%w\n(a Compose external: true volume is mounted as the existing Docker volume, which only administrators may do: --empty-external-volumes imports it as a new, empty Volume instead)", err)
	}
	return err
}
