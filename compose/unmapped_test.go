package compose

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

type inner struct {
	Deep string `yaml:"deep,omitempty"`
}

type embedded struct {
	FromEmbedded string `yaml:"from_embedded,omitempty"`
}

// synthetic stands for a compose-go struct with every kind of field the
// walker must understand.
type synthetic struct {
	Handled   string            `yaml:"handled,omitempty"`
	Plain     string            `yaml:"plain,omitempty"`
	Unset     string            `yaml:"unset,omitempty"`
	Hidden    string            `yaml:"-"`
	FalsePtr  *bool             `yaml:"false_ptr,omitempty"`
	NilPtr    *bool             `yaml:"nil_ptr,omitempty"`
	EmptyOpts *inner            `yaml:"empty_opts,omitempty"`
	Opts      *inner            `yaml:"opts,omitempty"`
	EmptyList []string          `yaml:"empty_list,omitempty"`
	Map       map[string]string `yaml:"map,omitempty"`
	NoTag     int
	embedded  `yaml:",inline"`
	Ext       types.Extensions `yaml:"#extensions,inline,omitempty"`
	private   string
}

func TestReportUnset(t *testing.T) {
	c := &converter{}
	v := synthetic{
		Handled:   "x",
		Plain:     "x",
		Hidden:    "x",
		FalsePtr:  ptr(false),
		EmptyOpts: &inner{},
		Opts:      &inner{Deep: "x"},
		EmptyList: []string{},
		Map:       map[string]string{"b.key": "1", "a": "2"},
		NoTag:     7,
		embedded:  embedded{FromEmbedded: "x"},
		Ext:       types.Extensions{"x-note": "hi"},
		private:   "x",
	}
	c.reportUnset("s", v, "handled")
	var got []string
	for _, f := range c.findings {
		got = append(got, f.Field)
	}
	// Declaration order; a map per key, sorted, "b.key" in brackets.
	want := []string{"s.plain", "s.false_ptr", "s.opts", "s.map.a", "s.map[b.key]", "s.notag", "s.from_embedded", "s.x-note"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("reported %v\nwant     %v", got, want)
	}
	c.findings = nil
	c.reportUnset("s", (*synthetic)(nil))
	if len(c.findings) != 0 {
		t.Errorf("a nil struct reported %v", c.findings)
	}
}

func TestKeyPath(t *testing.T) {
	tests := []struct{ path, key, want string }{
		{"", "services", "services"},
		{"services", "web", "services.web"},
		{"services", "api.v2", "services[api.v2]"},
		{"services.web.labels", "com.example/x", "services.web.labels[com.example/x]"},
		{"services.web.environment", "MY_VAR", "services.web.environment.MY_VAR"},
	}
	for _, tt := range tests {
		if got := keyPath(tt.path, tt.key); got != tt.want {
			t.Errorf("keyPath(%q, %q) = %q, want %q", tt.path, tt.key, got, tt.want)
		}
	}
}

// Every field of the compose-go structs this package maps is either mapped
// or reported when set: a field added by a newer compose-go, which this
// package has never heard of, is reported rather than dropped. (That the
// mapped ones are mapped is what the mapping tests check.)
func TestEveryFieldIsMappedOrReported(t *testing.T) {
	tests := []struct {
		typ     reflect.Type
		handled []string
	}{
		{reflect.TypeFor[types.ServiceConfig](), serviceFields},
		{reflect.TypeFor[types.Project](), projectFields},
		{reflect.TypeFor[types.DeployConfig](), deployFields},
		{reflect.TypeFor[types.Resources](), resourcesFields},
		{reflect.TypeFor[types.Resource](), limitsFields},
		{reflect.TypeFor[types.RestartPolicy](), restartPolicyFields},
		{reflect.TypeFor[types.ServicePortConfig](), portFields},
		{reflect.TypeFor[types.ServiceVolumeConfig](), volumeMountFields},
		{reflect.TypeFor[types.ServiceVolumeConfig](), tmpfsMountFields},
		{reflect.TypeFor[types.ServiceVolumeTmpfs](), tmpfsOptionFields},
		{reflect.TypeFor[types.ServiceDependency](), dependencyFields},
		{reflect.TypeFor[types.HealthCheckConfig](), healthcheckFields},
		{reflect.TypeFor[types.DeviceMapping](), deviceFields},
		{reflect.TypeFor[types.VolumeConfig](), topVolumeFields},
		{reflect.TypeFor[types.NetworkConfig](), networkFields},
	}
	for _, tt := range tests {
		t.Run(tt.typ.Name()+"/"+strings.Join(tt.handled, ","), func(t *testing.T) {
			fields := yamlFields(tt.typ)
			for _, h := range tt.handled {
				if !slices.Contains(fields, h) {
					t.Errorf("handled field %q is not a field of %s", h, tt.typ)
				}
			}
			for _, f := range reflect.VisibleFields(tt.typ) {
				name := yamlName(f)
				if name == "" || f.Anonymous || name == "#extensions" {
					continue
				}
				v := reflect.New(tt.typ).Elem()
				fill(v.FieldByIndex(f.Index), 0)
				c := &converter{}
				c.reportUnset("s", v.Interface(), tt.handled...)
				reported := false
				for _, fd := range c.findings {
					reported = reported || fd.Field == "s."+name || strings.HasPrefix(fd.Field, "s."+name+".")
				}
				if mapped := slices.Contains(tt.handled, name); reported == mapped {
					t.Errorf("field %s: mapped %v, reported %v (findings %v)", name, mapped, reported, c.findings)
				}
			}
		})
	}
}

// yamlFields lists the YAML names of a struct's fields, inline ones flattened.
func yamlFields(t reflect.Type) []string {
	var out []string
	for _, f := range reflect.VisibleFields(t) {
		if name := yamlName(f); name != "" && !f.Anonymous && name != "#extensions" {
			out = append(out, name)
		}
	}
	return out
}

func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

// fill gives v a non-zero value, all the way down.
func fill(v reflect.Value, depth int) {
	if depth > 6 || !v.CanSet() {
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), depth+1)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0), depth+1)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k := reflect.New(v.Type().Key()).Elem()
		fill(k, depth+1)
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e, depth+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			fill(v.Field(i), depth+1)
		}
	case reflect.Interface:
		v.Set(reflect.ValueOf("x"))
	}
}
