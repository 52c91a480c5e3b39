package compose

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/panelx/panelx/api"
)

// metadataFields are the metadata a manifest carries; the rest (uid,
// resourceVersion, …) is the server's.
var metadataFields = map[string]bool{"name": true, "project": true, "labels": true, "annotations": true}

// WriteYAML writes objs as a multi-document YAML stream, one "---" document
// per object with apiVersion, kind, metadata and spec (no status) in the
// field order of the api types, map keys sorted. The findings, if any, open
// the stream as comments. api.ParseManifests reads the stream back.
func WriteYAML(w io.Writer, objs []api.Object, findings ...Finding) error {
	bw := bufio.NewWriter(w)
	writeFindings(bw, findings)
	for _, obj := range objs {
		doc, err := manifestNode(obj)
		if err != nil {
			return fmt.Errorf("compose: %s %s: %w", obj.GetKind(), obj.GetMeta().Name, err)
		}
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(doc); err != nil {
			return fmt.Errorf("compose: encode %s %s: %w", obj.GetKind(), obj.GetMeta().Name, err)
		}
		if err := enc.Close(); err != nil {
			return fmt.Errorf("compose: encode %s %s: %w", obj.GetKind(), obj.GetMeta().Name, err)
		}
		bw.WriteString("---\n")
		bw.Write(buf.Bytes())
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("compose: write manifests: %w", err)
	}
	return nil
}

func writeFindings(w *bufio.Writer, findings []Finding) {
	if len(findings) == 0 {
		return
	}
	fmt.Fprintf(w, "# Converted from compose. Not imported, or imported differently (%d):\n", len(findings))
	for _, f := range findings {
		line := strings.Join(strings.Fields(f.String()), " ") // one line, whatever the detail holds
		fmt.Fprintf(w, "#   %s\n", line)
	}
}

// manifestNode renders an object as a YAML mapping in the order of its
// JSON encoding, which follows the Go struct fields.
func manifestNode(obj api.Object) (*yaml.Node, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	root, err := jsonNode(dec)
	if err != nil {
		return nil, err
	}
	root.Content = keepKeys(root.Content, func(k string) bool { return k != "status" })
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "metadata" {
			meta := root.Content[i+1]
			meta.Content = keepKeys(meta.Content, func(k string) bool { return metadataFields[k] })
		}
	}
	return root, nil
}

// keepKeys filters the key/value pairs of a mapping node's content.
func keepKeys(content []*yaml.Node, keep func(string) bool) []*yaml.Node {
	var out []*yaml.Node
	for i := 0; i+1 < len(content); i += 2 {
		if keep(content[i].Value) {
			out = append(out, content[i], content[i+1])
		}
	}
	return out
}

var yaml11Bools = map[string]bool{"y": true, "yes": true, "n": true, "no": true, "on": true, "off": true}

// jsonNode reads one JSON value from the token stream as a YAML node.
// Strings keep the !!str tag, so the encoder quotes those that would read
// back as another type ("true", "0.5", "").
func jsonNode(dec *json.Decoder) (*yaml.Node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		if t == '{' {
			n = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		}
		for dec.More() {
			if n.Kind == yaml.MappingNode {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k.(string)})
			}
			v, err := jsonNode(dec)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, v)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
		return n, nil
	case string:
		n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: t}
		if yaml11Bools[strings.ToLower(t)] {
			n.Style = yaml.DoubleQuotedStyle // YAML 1.1 readers take these for booleans
		}
		return n, nil
	case json.Number:
		tag := "!!int"
		if strings.ContainsAny(t.String(), ".eE") {
			tag = "!!float"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: t.String()}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(t)}, nil
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok)
}
