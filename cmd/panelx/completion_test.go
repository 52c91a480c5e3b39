package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestCompletionKnowsEveryVerb: shell completion offers every command, the
// new ones included, and their flags (cobra's __complete, which the bash,
// zsh and fish scripts call).
func TestCompletionKnowsEveryVerb(t *testing.T) {
	complete := func(args ...string) string {
		t.Helper()
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&bytes.Buffer{})
		root.SetArgs(append([]string{"__complete"}, args...))
		if err := root.Execute(); err != nil {
			t.Fatalf("__complete %v: %v", args, err)
		}
		return out.String()
	}
	verbs := complete("")
	for _, v := range []string{"apply", "cp", "describe", "edit", "events", "get", "health", "restart", "scale", "start",
		"stop", "token", "top", "use", "version", "volumes"} {
		if !strings.Contains(verbs, "\n"+v+"\t") && !strings.HasPrefix(verbs, v+"\t") {
			t.Errorf("completion does not offer %q:\n%s", v, verbs)
		}
	}
	if flags := complete("scale", "web", "--"); !strings.Contains(flags, "--replicas") || !strings.Contains(flags, "--wait") {
		t.Errorf("scale's flags:\n%s", flags)
	}
	if subs := complete("token", ""); !strings.Contains(subs, "list") || !strings.Contains(subs, "revoke") || !strings.Contains(subs, "create") {
		t.Errorf("token's subcommands:\n%s", subs)
	}
	var script bytes.Buffer
	root := newRootCmd()
	root.SetOut(&script)
	root.SetArgs([]string{"completion", "bash"})
	if err := root.Execute(); err != nil || !strings.Contains(script.String(), "__start_panelx") {
		t.Errorf("completion bash: %v\n%.200s", err, script.String())
	}
}
