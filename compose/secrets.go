package compose

import (
	"fmt"
	"io"
	"os"
	"path"
	"regexp"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/panelx/panelx/api"
)

// composeSecret is where a compose secret's value lives in PanelX: one key
// of a Secret of the project.
type composeSecret struct{ name, key string }

// secretKeyRe is what a Secret's key may be (api's rule).
var secretKeyRe = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

// secretFields are the fields of a top-level secret convertSecrets maps.
var secretFields = []string{"name", "file", "environment", "content", "external"}

// convertSecrets maps each top-level secret to a Secret of the project
// holding its value under a key named after it (an external one to the
// Secret of that name, which must exist). The value is read here, from
// the file or the environment, as Compose reads it; the server seals it.
func (c *converter) convertSecrets() ([]*api.Secret, error) {
	c.secrets = map[string]composeSecret{}
	names := newNameTable("secrets")
	var out []*api.Secret
	for _, key := range sortedKeys(c.project.Secrets) {
		s := c.project.Secrets[key]
		sp := keyPath("secrets", key)
		pname, err := names.add(key)
		if err != nil {
			return nil, err
		}
		dataKey := key
		if !secretKeyRe.MatchString(key) {
			dataKey = pname
		}
		c.secrets[key] = composeSecret{name: pname, key: dataKey}
		c.reportUnset(sp, s, secretFields...)
		if bool(s.External) {
			c.report(sp+".external", "the services read it from Secret %q of the project, key %q, which must exist before they can start", pname, dataKey)
			continue
		}
		value, err := secretValue(sp, s)
		if err != nil {
			return nil, err
		}
		out = append(out, &api.Secret{
			Metadata: api.ObjectMeta{Project: c.name, Name: pname},
			Spec:     api.SecretSpec{Data: map[string]string{dataKey: value}},
		})
	}
	return out, nil
}

func secretValue(sp string, s types.SecretConfig) (string, error) {
	switch {
	case s.File != "":
		f, err := os.Open(s.File)
		if err != nil {
			return "", fmt.Errorf("compose: %s.file: %w", sp, err)
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, api.MaxSecretSize+1))
		if err != nil {
			return "", fmt.Errorf("compose: %s.file: %w", sp, err)
		}
		if len(data) > api.MaxSecretSize {
			return "", fmt.Errorf("compose: %s.file: %s is larger than a Secret may be (%d KiB)", sp, s.File, api.MaxSecretSize>>10)
		}
		return string(data), nil
	case s.Environment != "":
		// compose-go has read the variable into Content.
		return s.Content, nil
	default:
		return s.Content, nil
	}
}

// serviceSecrets mounts the service's secrets as files, at
// /run/secrets/<target or name> as Compose does.
func (c *converter) serviceSecrets(p string, refs []types.ServiceSecretConfig) []api.VolumeMount {
	var out []api.VolumeMount
	for i, ref := range refs {
		rp := indexPath(p, i)
		sec, ok := c.secrets[ref.Source]
		if !ok {
			c.report(rp, "secret %q is not declared at the top level: not imported", ref.Source)
			continue
		}
		target := ref.Target
		if target == "" {
			target = ref.Source
		}
		if !path.IsAbs(target) {
			target = path.Join("/run/secrets", target)
		}
		if ref.UID != "" || ref.GID != "" || ref.Mode != nil {
			c.report(rp, "PanelX writes secret files owned by root, readable by everyone in the container (0444): uid, gid and mode not imported")
		}
		out = append(out, api.VolumeMount{Secret: &api.SecretKeySelector{Name: sec.name, Key: sec.key}, MountPath: target, ReadOnly: true})
	}
	return out
}
