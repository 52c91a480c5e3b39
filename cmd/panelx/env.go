package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// envFlags registers flags whose defaults come from environment variables,
// so `--listen` and PANELX_LISTEN mean the same thing and a flag wins over
// the environment. A malformed variable is an error, not a silent default.
type envFlags struct {
	fs   *pflag.FlagSet
	errs []error
}

func newEnvFlags(fs *pflag.FlagSet) *envFlags { return &envFlags{fs: fs} }

func usage(env, text string) string { return text + " [$" + env + "]" }

func (e *envFlags) String(p *string, name, env, def, text string) {
	if v, ok := os.LookupEnv(env); ok {
		def = v
	}
	e.fs.StringVar(p, name, def, usage(env, text))
}

// Secret is String for values that must not appear in --help (where a
// default taken from the environment would otherwise be printed).
func (e *envFlags) Secret(p *string, name, env, text string) {
	e.fs.StringVar(p, name, "", usage(env, text))
	*p = os.Getenv(env)
}

func (e *envFlags) Duration(p *time.Duration, name, env string, def time.Duration, text string) {
	if v, ok := os.LookupEnv(env); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			e.errs = append(e.errs, fmt.Errorf("%s=%q: not a duration such as 30s", env, v))
		} else {
			def = d
		}
	}
	e.fs.DurationVar(p, name, def, usage(env, text))
}

func (e *envFlags) Int(p *int, name, env string, def int, text string) {
	if v, ok := os.LookupEnv(env); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			e.errs = append(e.errs, fmt.Errorf("%s=%q: want a positive whole number", env, v))
		} else {
			def = n
		}
	}
	e.fs.IntVar(p, name, def, usage(env, text))
}

func (e *envFlags) Bool(p *bool, name, env string, def bool, text string) {
	if v, ok := os.LookupEnv(env); ok {
		switch v {
		case "1", "true", "TRUE", "True", "yes":
			def = true
		case "0", "false", "FALSE", "False", "no", "":
			def = false
		default:
			e.errs = append(e.errs, fmt.Errorf("%s=%q: want true or false", env, v))
		}
	}
	e.fs.BoolVar(p, name, def, usage(env, text))
}

// Err reports every malformed environment variable.
func (e *envFlags) Err() error { return errors.Join(e.errs...) }

// List reads a comma-separated list ("a, b,c"); empty items are dropped.
func (e *envFlags) List(p *[]string, name, env string, def []string, text string) {
	if v, ok := os.LookupEnv(env); ok {
		def = splitList(v)
	}
	e.fs.StringSliceVar(p, name, def, usage(env, text))
}

func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
