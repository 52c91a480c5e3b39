package compose

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
)

// Reporting by reflection: the mapping code names the fields it handles; every
// other field of compose-go's struct that is set becomes a Finding. So a field
// added to compose-go later, or one this package never heard of, is reported
// rather than silently dropped.

// reportUnset reports each field of v (a struct, or a pointer to one) that
// is set and not among handled. A map-valued field is reported per key.
func (c *converter) reportUnset(path string, v any, handled ...string) {
	for _, f := range setFields(reflect.ValueOf(v)) {
		if slices.Contains(handled, f.name) {
			continue
		}
		fp := keyPath(path, f.name)
		if f.value.Kind() == reflect.Map && !f.extension {
			for _, k := range sortedMapKeys(f.value) {
				c.report(keyPath(fp, k), "%s", advice(f.name))
			}
			continue
		}
		c.report(fp, "%s", advice(f.name))
	}
}

// field is one set field of a compose struct, by its YAML name.
type field struct {
	name      string
	value     reflect.Value
	extension bool // an x-* field
}

// setFields lists the fields of a struct that are set, by YAML name, in
// declaration order. Inline structs are flattened; extension fields (x-*)
// are listed one by one.
func setFields(v reflect.Value) []field {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	var out []field
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		inline := slices.Contains(strings.Split(opts, ","), "inline")
		fv := v.Field(i)
		switch {
		case !sf.IsExported() && !sf.Anonymous:
		case name == "-":
		case name == "#extensions":
			for _, k := range sortedMapKeys(fv) {
				out = append(out, field{name: k, value: fv.MapIndex(reflect.ValueOf(k)), extension: true})
			}
		case inline || (sf.Anonymous && name == ""):
			out = append(out, setFields(fv)...)
		default:
			if name == "" {
				name = strings.ToLower(sf.Name)
			}
			if !isEmpty(fv) {
				out = append(out, field{name: name, value: fv})
			}
		}
	}
	return out
}

// isEmpty says whether a field is unset. A pointer to a scalar is set even
// when the scalar is zero (`init: false` was written); a pointer to a struct
// is set when the struct is (compose-go allocates empty option structs).
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Invalid:
		return true
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return true
		}
		if e := v.Elem(); e.Kind() == reflect.Struct {
			return isEmpty(e)
		}
		return false
	case reflect.Map, reflect.Slice:
		return v.Len() == 0
	case reflect.Struct:
		return len(setFields(v)) == 0
	}
	return v.IsZero()
}

func sortedMapKeys(m reflect.Value) []string {
	if m.Kind() != reflect.Map || m.Type().Key().Kind() != reflect.String {
		return nil
	}
	keys := make([]string, 0, m.Len())
	for _, k := range m.MapKeys() {
		keys = append(keys, k.String())
	}
	slices.Sort(keys)
	return keys
}

var plainKeyRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// keyPath appends a key to a compose path: `.key` for a plain key,
// `[key]` for one with dots or other characters (labels, sysctls).
func keyPath(path, key string) string {
	switch {
	case !plainKeyRe.MatchString(key):
		return path + "[" + key + "]"
	case path == "":
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// advice says what to do about a field PanelX does not map, by its YAML name.
func advice(name string) string {
	if strings.HasPrefix(name, "x-") {
		return "extension field: PanelX ignores it (YAML anchors defined in it were applied where they are used)"
	}
	if a, ok := adviceByField[name]; ok {
		return a
	}
	return "PanelX has no equivalent setting: not imported"
}

var adviceByField = map[string]string{
	"annotations":        "PanelX has no container annotations: not imported",
	"attach":             "a docker compose CLI setting; PanelX keeps every service's logs: not imported",
	"build":              "PanelX runs images, it does not build them: the image must already be in a registry (build and push it)",
	"configs":            "PanelX has no configs: bake the file into the image or put it on a volume",
	"container_name":     "PanelX names containers itself; other services reach this one by its service name",
	"develop":            "compose watch is a development feature: not imported",
	"dns":                "PanelX containers use Docker's DNS on the project network: not imported",
	"dns_opt":            "PanelX containers use Docker's DNS on the project network: not imported",
	"dns_search":         "PanelX containers use Docker's DNS on the project network: not imported",
	"domainname":         "PanelX sets no domain name: not imported",
	"external_links":     "PanelX connects services of one project only: not imported",
	"extra_hosts":        "PanelX has no extra /etc/hosts entries: use a DNS name or the service name instead",
	"hostname":           "PanelX sets the container host name itself; other services reach this one by its service name",
	"init":               "PanelX does not inject an init process: use an image with one (tini) as entrypoint",
	"links":              "not needed: services reach each other by service name on the project network",
	"log_driver":         "PanelX uses the Docker daemon's logging configuration: not imported",
	"log_opt":            "PanelX uses the Docker daemon's logging configuration: not imported",
	"logging":            "PanelX uses the Docker daemon's logging configuration: not imported",
	"mac_address":        "PanelX assigns network addresses itself: not imported",
	"net":                "obsolete network setting: not imported",
	"platform":           "PanelX pulls the image for the host's platform: not imported",
	"post_start":         "PanelX has no lifecycle hooks: run the command from the image's entrypoint",
	"pre_start":          "PanelX has no lifecycle hooks: run the command from the image's entrypoint",
	"pre_stop":           "PanelX has no lifecycle hooks: handle the stop signal in the application",
	"profiles":           "PanelX has no profiles: the service was imported because one of its profiles is active",
	"read_only":          "PanelX has no read-only root filesystem setting: not imported",
	"shm_size":           "PanelX has no shm_size setting: mount a tmpfs at /dev/shm instead",
	"stdin_open":         "PanelX containers run without a terminal: not imported",
	"stop_signal":        "PanelX stops containers with SIGTERM: handle it in the application",
	"tty":                "PanelX containers run without a terminal: not imported",
	"ulimits":            "PanelX has no ulimits setting: the Docker daemon's defaults apply",
	"use_api_socket":     "PanelX does not give services the Docker API socket: not imported",
	"volumes_from":       "PanelX mounts volumes by name: mount the same volume in both services instead",
	"pull_refresh_after": "PanelX looks for a moved tag every PANELX_PULL_INTERVAL with imagePullPolicy Always: not imported",
	"start_interval":     "PanelX has no start interval: the healthcheck runs at its interval from the start",
	"reservations":       "PanelX sets limits only, not reservations: not imported",
	"update_config":      "PanelX replaces containers one by one, start-first unless a host port is published: not imported",
	"rollback_config":    "PanelX does not roll back: not imported",
	"placement":          "PanelX runs each project on one Docker host: not imported",
	"endpoint_mode":      "PanelX has no swarm endpoint modes: services are reached by service name",
	"nocopy":             "PanelX lets Docker copy the image's content into a new volume: not imported",
	"subpath":            "PanelX mounts whole volumes: not imported",
	"consistency":        "a Docker Desktop setting: not imported",
	"app_protocol":       "PanelX does not use the application protocol of a port: not imported",
	"aliases":            "PanelX registers the service name only: other services reach it by that name",
	"restart":            "PanelX does not restart a service when a dependency restarts: not imported",
}
