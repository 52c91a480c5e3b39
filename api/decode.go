package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Decoding is strict: every unknown field and every value of the wrong type
// is reported with its path, all at once, before anything is unmarshalled.
// It runs in two steps: the bytes are parsed into a small generic tree
// (keeping scalars as their source text, so "1.10" stays "1.10"), then the
// tree is checked against the Go type by reflection and normalised into
// plain JSON, which encoding/json unmarshals.

// Limits that keep hostile input (deep nesting, alias bombs) cheap.
const (
	maxDepth = 64
	maxNodes = 100_000
)

// DocumentError holds the problems of one document of a manifest stream.
type DocumentError struct {
	Index  int       `json:"index"`
	Kind   Kind      `json:"kind,omitempty"`
	Name   string    `json:"name,omitempty"`
	Errors ErrorList `json:"errors"`
}

func (d *DocumentError) Error() string {
	what := fmt.Sprintf("document %d", d.Index)
	if d.Kind != "" && d.Name != "" {
		what += fmt.Sprintf(" (%s %s)", d.Kind, d.Name)
	}
	return what + ": " + d.Errors.Error()
}

// ManifestError reports every invalid document of a stream.
type ManifestError struct {
	Documents []*DocumentError `json:"documents"`
}

func (e *ManifestError) Error() string {
	msgs := make([]string, len(e.Documents))
	for i, d := range e.Documents {
		msgs[i] = d.Error()
	}
	return strings.Join(msgs, "\n")
}

// FieldErrors flattens the errors of every document, prefixing paths with
// the document index ("[2].spec.image") when there is more than one document.
func (e *ManifestError) FieldErrors(multi bool) ErrorList {
	var out ErrorList
	for _, d := range e.Documents {
		for _, fe := range d.Errors {
			c := *fe
			if multi {
				c.Field = fmt.Sprintf("[%d]", d.Index) + prefixDot(c.Field)
			}
			out = append(out, &c)
		}
	}
	return out
}

func prefixDot(s string) string {
	if s == "" || strings.HasPrefix(s, "[") {
		return s
	}
	return "." + s
}

// CountDocuments returns how many documents ParseManifests would see in
// data (clients use it to say which file a document index came from).
func CountDocuments(data []byte) (int, error) {
	docs, err := parseDocuments(data)
	return len(docs), err
}

// ParseManifests decodes a stream of YAML documents or JSON (an object, an
// array of objects, or concatenated objects), defaults each object and
// validates it. It returns every problem of every document at once.
func ParseManifests(data []byte) ([]Object, error) {
	docs, err := parseDocuments(data)
	if err != nil {
		return nil, &ManifestError{Documents: []*DocumentError{{Index: 0, Errors: ErrorList{fieldErr("", ErrInvalid, "%s", err.Error())}}}}
	}
	var objs []Object
	var merr ManifestError
	for i, doc := range docs {
		obj, errs := decodeDocument(doc, "")
		if obj != nil {
			errs = validatePartial(obj, errs)
		}
		if len(errs) > 0 {
			de := &DocumentError{Index: i, Errors: errs}
			de.Kind, de.Name = peekKindName(doc)
			merr.Documents = append(merr.Documents, de)
			continue
		}
		objs = append(objs, obj)
	}
	if len(merr.Documents) > 0 {
		return nil, &merr
	}
	return objs, nil
}

// DecodeObject strictly decodes exactly one document of the given kind,
// defaults and validates it. apiVersion and kind may be left out.
func DecodeObject(data []byte, kind Kind) (Object, error) {
	docs, err := parseDocuments(data)
	if err != nil {
		return nil, ErrorList{fieldErr("", ErrInvalid, "%s", err.Error())}
	}
	if len(docs) != 1 {
		return nil, ErrorList{fieldErr("", ErrInvalid, "expected exactly one %s document, got %d", kind, len(docs))}
	}
	obj, errs := decodeDocument(docs[0], kind)
	if obj != nil {
		errs = validatePartial(obj, errs)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return obj, nil
}

// DecodeStrict decodes one document into v (any Go value) with the same
// strictness, without defaulting or validation. The HTTP layer uses it for
// request bodies that are not resources.
func DecodeStrict(data []byte, v any) error {
	docs, err := parseDocuments(data)
	if err != nil {
		return ErrorList{fieldErr("", ErrInvalid, "%s", err.Error())}
	}
	if len(docs) != 1 {
		return ErrorList{fieldErr("", ErrInvalid, "expected exactly one document, got %d", len(docs))}
	}
	return convert(docs[0], reflect.TypeOf(v).Elem(), v).Err()
}

func decodeDocument(doc any, want Kind) (Object, ErrorList) {
	m, ok := doc.(*mapping)
	if !ok {
		return nil, ErrorList{fieldErr("", ErrType, "a manifest must be a mapping with apiVersion, kind, metadata and spec")}
	}
	var errs ErrorList
	apiVersion, kind := scalarText(m.get("apiVersion")), Kind(scalarText(m.get("kind")))
	if want != "" {
		if apiVersion == "" {
			apiVersion = APIVersion
			m.set("apiVersion", &scalar{text: APIVersion, tag: tagStr})
		}
		if kind == "" {
			kind = want
			m.set("kind", &scalar{text: string(want), tag: tagStr})
		}
		if kind != want {
			return nil, ErrorList{Invalid("kind", string(kind), fmt.Sprintf("must be %q here", want))}
		}
	}
	if apiVersion == "" {
		errs = append(errs, Required("apiVersion", "is required: "+APIVersion))
	} else if apiVersion != APIVersion {
		errs = append(errs, NotSupported("apiVersion", apiVersion, APIVersion))
	}
	obj, err := New(kind)
	if err != nil {
		if kind == "" {
			errs = append(errs, Required("kind", "is required: one of Project, Secret, Service, Volume"))
		} else {
			errs = append(errs, NotSupported("kind", kind, KindProject, KindSecret, KindService, KindVolume))
		}
		return nil, errs
	}
	if len(errs) > 0 {
		return nil, errs
	}
	// The object comes back even with errors: what decoded can still be
	// validated, so every problem is reported at once.
	return obj, convert(doc, reflect.TypeOf(obj).Elem(), obj)
}

func peekKindName(doc any) (Kind, string) {
	m, ok := doc.(*mapping)
	if !ok {
		return "", ""
	}
	name := ""
	if meta, ok := m.get("metadata").(*mapping); ok {
		name = scalarText(meta.get("name"))
	}
	return Kind(scalarText(m.get("kind"))), name
}

// convert checks doc against t, and when it fits unmarshals it into out.
// convert checks doc against t and unmarshals what fits into out: unknown
// fields and mistyped values are left out (and reported), so the caller can
// still validate the rest and report every problem at once.
func convert(doc any, t reflect.Type, out any) ErrorList {
	var errs ErrorList
	norm := check(doc, t, "", &errs)
	data, err := json.Marshal(norm)
	if err == nil {
		err = json.Unmarshal(data, out)
	}
	if err != nil {
		// check keeps only what unmarshals, so this is a bug, reported plainly.
		return append(errs, fieldErr("", ErrInvalid, "decode: %v", err))
	}
	return errs
}

// validatePartial defaults and validates an object decoded with errors,
// adding the validation problems of fields the decode errors do not
// already name (a mistyped field would otherwise also be "required").
func validatePartial(obj Object, decodeErrs ErrorList) ErrorList {
	obj.Default()
	named := map[string]bool{}
	for _, e := range decodeErrs {
		named[e.Field] = true
	}
	errs := decodeErrs
	for _, e := range obj.Validate() {
		if !named[e.Field] {
			errs = append(errs, e)
		}
	}
	return errs
}

// ---- the generic tree ----

type scalarTag int

const (
	tagStr scalarTag = iota
	tagInt
	tagFloat
	tagBool
	tagNull
)

type scalar struct {
	text string
	tag  scalarTag
}

type mapping struct {
	keys []string
	vals map[string]any
}

func (m *mapping) get(k string) any { return m.vals[k] }

func (m *mapping) set(k string, v any) {
	if _, ok := m.vals[k]; !ok {
		m.keys = append(m.keys, k)
	}
	m.vals[k] = v
}

type sequence []any

func scalarText(v any) string {
	if s, ok := v.(*scalar); ok && s.tag != tagNull {
		return s.text
	}
	return ""
}

func parseDocuments(data []byte) ([]any, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		if docs, err := parseJSON(trimmed); err == nil {
			return docs, nil
		} else if !isSyntaxError(err) {
			return nil, err
		}
		// Not JSON after all: YAML flow style also starts with { or [.
	}
	return parseYAML(data)
}

func isSyntaxError(err error) bool {
	var se *json.SyntaxError
	return errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF)
}

func parseJSON(data []byte) ([]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	p := &jsonParser{dec: dec}
	var docs []any
	for {
		v, err := p.value(0)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if seq, ok := v.(sequence); ok && len(docs) == 0 {
			docs = append(docs, seq...)
			continue
		}
		docs = append(docs, v)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("no documents")
	}
	return docs, nil
}

type jsonParser struct {
	dec   *json.Decoder
	nodes int
}

func (p *jsonParser) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nested more than %d levels", maxDepth)
	}
	if p.nodes++; p.nodes > maxNodes {
		return nil, fmt.Errorf("more than %d values", maxNodes)
	}
	tok, err := p.dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := &mapping{vals: map[string]any{}}
			for p.dec.More() {
				kt, err := p.dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				if _, dup := m.vals[k]; dup {
					return nil, fmt.Errorf("duplicate key %q", k)
				}
				v, err := p.value(depth + 1)
				if err != nil {
					return nil, err
				}
				m.set(k, v)
			}
			_, err := p.dec.Token() // '}'
			return m, err
		case '[':
			seq := sequence{}
			for p.dec.More() {
				v, err := p.value(depth + 1)
				if err != nil {
					return nil, err
				}
				seq = append(seq, v)
			}
			_, err := p.dec.Token() // ']'
			return seq, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case string:
		return &scalar{text: t, tag: tagStr}, nil
	case json.Number:
		tag := tagInt
		if strings.ContainsAny(string(t), ".eE") {
			tag = tagFloat
		}
		return &scalar{text: string(t), tag: tag}, nil
	case bool:
		return &scalar{text: strconv.FormatBool(t), tag: tagBool}, nil
	case nil:
		return &scalar{tag: tagNull}, nil
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

func parseYAML(data []byte) ([]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []any
	nodes := 0
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("yaml: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		if len(n.Content) == 0 {
			continue // an empty document between two "---"
		}
		v, err := fromYAML(n.Content[0], 0, &nodes)
		if err != nil {
			return nil, err
		}
		if s, ok := v.(*scalar); ok && s.tag == tagNull {
			continue
		}
		docs = append(docs, v)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("no documents")
	}
	return docs, nil
}

func fromYAML(n *yaml.Node, depth int, nodes *int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("yaml: line %d: nested more than %d levels", n.Line, maxDepth)
	}
	if *nodes++; *nodes > maxNodes {
		return nil, fmt.Errorf("yaml: more than %d values (aliases included)", maxNodes)
	}
	switch n.Kind {
	case yaml.AliasNode:
		return fromYAML(n.Alias, depth+1, nodes)
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int":
			return &scalar{text: n.Value, tag: tagInt}, nil
		case "!!float":
			return &scalar{text: n.Value, tag: tagFloat}, nil
		case "!!bool":
			return &scalar{text: n.Value, tag: tagBool}, nil
		case "!!null":
			return &scalar{tag: tagNull}, nil
		case "!!str", "!!timestamp", "!!binary":
			return &scalar{text: n.Value, tag: tagStr}, nil
		default:
			return nil, fmt.Errorf("yaml: line %d: unsupported tag %s", n.Line, n.ShortTag())
		}
	case yaml.SequenceNode:
		seq := make(sequence, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := fromYAML(c, depth+1, nodes)
			if err != nil {
				return nil, err
			}
			seq = append(seq, v)
		}
		return seq, nil
	case yaml.MappingNode:
		m := &mapping{vals: make(map[string]any, len(n.Content)/2)}
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn, vn := n.Content[i], n.Content[i+1]
			if kn.Kind != yaml.ScalarNode || kn.ShortTag() == "!!merge" {
				return nil, fmt.Errorf("yaml: line %d: keys must be plain strings (merge keys are not supported)", kn.Line)
			}
			if _, dup := m.vals[kn.Value]; dup {
				return nil, fmt.Errorf("yaml: line %d: key %q appears twice", kn.Line, kn.Value)
			}
			v, err := fromYAML(vn, depth+1, nodes)
			if err != nil {
				return nil, err
			}
			m.set(kn.Value, v)
		}
		return m, nil
	}
	return nil, fmt.Errorf("yaml: line %d: unexpected node", n.Line)
}

// ---- checking against a Go type ----

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

func typeName(v any) string {
	switch v := v.(type) {
	case *mapping:
		return "a mapping"
	case sequence:
		return "a list"
	case *scalar:
		switch v.tag {
		case tagInt, tagFloat:
			return "a number"
		case tagBool:
			return "a boolean"
		case tagNull:
			return "null"
		}
		return "a string"
	}
	return "a value"
}

// check returns v normalised to plain JSON values for type t, appending an
// error for each unknown field or mismatched type.
func check(v any, t reflect.Type, p Path, errs *ErrorList) any {
	if s, ok := v.(*scalar); ok && s.tag == tagNull {
		return nil // null leaves the zero value
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		plain := toPlain(v)
		data, _ := json.Marshal(plain)
		if err := reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(data); err != nil {
			*errs = append(*errs, fieldErr(p, ErrType, "%s", cleanJSONErr(err)))
		}
		return plain
	}
	switch t.Kind() {
	case reflect.Pointer:
		return check(v, t.Elem(), p, errs)
	case reflect.Struct:
		m, ok := v.(*mapping)
		if !ok {
			*errs = append(*errs, fieldErr(p, ErrType, "must be a mapping, not %s", typeName(v)))
			return nil
		}
		fields := structFields(t)
		out := make(map[string]any, len(m.keys))
		for _, k := range m.keys {
			f, ok := fields[k]
			if !ok {
				if near := nearestField(k, fields); near != "" {
					*errs = append(*errs, fieldErr(p.Child(k), ErrUnknownField, "unknown field %q; did you mean %q?", k, near))
				} else {
					*errs = append(*errs, fieldErr(p.Child(k), ErrUnknownField, "unknown field %q", k))
				}
				continue
			}
			out[k] = check(m.vals[k], f, p.Child(k), errs)
		}
		return out
	case reflect.Map:
		m, ok := v.(*mapping)
		if !ok {
			*errs = append(*errs, fieldErr(p, ErrType, "must be a mapping, not %s", typeName(v)))
			return nil
		}
		if len(m.keys) == 0 {
			return nil // empty and absent mean the same; keep one form
		}
		out := make(map[string]any, len(m.keys))
		for _, k := range m.keys {
			out[k] = check(m.vals[k], t.Elem(), p.Key(k), errs)
		}
		return out
	case reflect.Slice:
		seq, ok := v.(sequence)
		if !ok {
			*errs = append(*errs, fieldErr(p, ErrType, "must be a list, not %s", typeName(v)))
			return nil
		}
		if len(seq) == 0 {
			return nil
		}
		out := make([]any, len(seq))
		for i, e := range seq {
			out[i] = check(e, t.Elem(), p.Index(i), errs)
		}
		return out
	case reflect.String:
		s, ok := v.(*scalar)
		if !ok {
			*errs = append(*errs, fieldErr(p, ErrType, "must be a string, not %s", typeName(v)))
			return nil
		}
		// A number or boolean where a string belongs keeps its text: YAML
		// users write `value: 8080` and `cpus: 0.5`.
		return s.text
	case reflect.Bool:
		s, ok := v.(*scalar)
		if !ok || s.tag != tagBool {
			*errs = append(*errs, fieldErr(p, ErrType, "must be true or false, not %s", typeName(v)))
			return nil
		}
		b, err := strconv.ParseBool(strings.ToLower(s.text))
		if err != nil {
			*errs = append(*errs, fieldErr(p, ErrType, "must be true or false"))
		}
		return b
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		s, ok := v.(*scalar)
		if !ok || s.tag != tagInt {
			*errs = append(*errs, fieldErr(p, ErrType, "must be an integer, not %s", typeName(v)))
			return nil
		}
		n, err := strconv.ParseInt(s.text, 0, t.Bits())
		if err != nil {
			*errs = append(*errs, fieldErr(p, ErrType, "integer %s out of range", s.text))
			return nil
		}
		return json.Number(strconv.FormatInt(n, 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		s, ok := v.(*scalar)
		if !ok || s.tag != tagInt {
			*errs = append(*errs, fieldErr(p, ErrType, "must be an integer, not %s", typeName(v)))
			return nil
		}
		n, err := strconv.ParseUint(s.text, 0, t.Bits())
		if err != nil {
			*errs = append(*errs, fieldErr(p, ErrType, "integer %s out of range", s.text))
			return nil
		}
		return json.Number(strconv.FormatUint(n, 10))
	case reflect.Float32, reflect.Float64:
		s, ok := v.(*scalar)
		if !ok || (s.tag != tagInt && s.tag != tagFloat) {
			*errs = append(*errs, fieldErr(p, ErrType, "must be a number, not %s", typeName(v)))
			return nil
		}
		f, err := strconv.ParseFloat(s.text, t.Bits())
		if err != nil {
			*errs = append(*errs, fieldErr(p, ErrType, "not a number: %s", s.text))
			return nil
		}
		return f
	case reflect.Interface:
		return toPlain(v)
	}
	*errs = append(*errs, fieldErr(p, ErrType, "cannot decode into %s", t))
	return nil
}

// toPlain turns the tree into plain JSON values without a target type.
func toPlain(v any) any {
	switch v := v.(type) {
	case *mapping:
		out := make(map[string]any, len(v.keys))
		for _, k := range v.keys {
			out[k] = toPlain(v.vals[k])
		}
		return out
	case sequence:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = toPlain(e)
		}
		return out
	case *scalar:
		switch v.tag {
		case tagNull:
			return nil
		case tagBool:
			b, _ := strconv.ParseBool(strings.ToLower(v.text))
			return b
		case tagInt, tagFloat:
			if json.Valid([]byte(v.text)) {
				return json.Number(v.text)
			}
			return v.text // YAML-only spellings such as 0x1F or .inf
		}
		return v.text
	}
	return nil
}

func cleanJSONErr(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "json: ")
	if strings.HasPrefix(msg, "cannot unmarshal") {
		return "has the wrong type: " + msg
	}
	return msg
}

var fieldCache sync.Map // reflect.Type → map[string]reflect.Type

// structFields maps the JSON names of a struct's fields (embedded structs
// flattened, as encoding/json does) to their types.
func structFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	fields := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k, v := range structFields(f.Type) {
				fields[k] = v
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	fieldCache.Store(t, fields)
	return fields
}

// nearestField is the known field a misspelt key most likely meant: the
// same letters in another case (containerport), or one at most two edits
// away (replcas, imagee) — and only when exactly one field is that close.
func nearestField[V any](key string, fields map[string]V) string {
	best, bestDist, ties := "", 3, 0
	for f := range fields {
		d := editDistance(strings.ToLower(key), strings.ToLower(f))
		if strings.EqualFold(key, f) {
			d = 0
		}
		switch {
		case d < bestDist:
			best, bestDist, ties = f, d, 0
		case d == bestDist:
			ties++
		}
	}
	// A short key is one or two edits from many fields: suggest only what
	// is plainly close.
	if best == "" || ties > 0 || (bestDist > 1 && len(key) < 6) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
