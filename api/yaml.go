package api

import (
	"bytes"
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// MarshalYAML writes v as block-style YAML with the field order of its JSON
// encoding (apiVersion, kind, metadata, spec, status — not alphabetical).
func MarshalYAML(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	// YAML is a superset of JSON: parsing the JSON keeps its key order.
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	blockStyle(&n)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	return b.Bytes(), nil
}

// blockStyle turns JSON's flow style into YAML's block style; the encoder
// still quotes strings that would otherwise read as numbers or booleans.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// MarshalYAMLStream writes objects as one multi-document YAML stream.
func MarshalYAMLStream[T any](objs []T) ([]byte, error) {
	var b bytes.Buffer
	for i, o := range objs {
		if i > 0 {
			b.WriteString("---\n")
		}
		data, err := MarshalYAML(o)
		if err != nil {
			return nil, err
		}
		b.Write(data)
	}
	return b.Bytes(), nil
}
