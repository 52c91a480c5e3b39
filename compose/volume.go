package compose

import (
	"maps"

	"github.com/panelx/panelx/api"
)

// convertVolumes maps the top-level volumes to Volume objects, named by
// their compose key.
func (c *converter) convertVolumes() ([]*api.Volume, error) {
	c.volumes = map[string]string{}
	c.external = map[string]string{}
	c.volumeNames = newNameTable("volumes")
	var out []*api.Volume
	for _, key := range sortedKeys(c.project.Volumes) {
		v := c.project.Volumes[key]
		vp := keyPath("volumes", key)
		pname, err := c.volumeNames.add(key)
		if err != nil {
			return nil, err
		}
		if pname != key {
			c.report(vp, "%q is not a DNS-1123 label: the volume is named %q (mounts follow)", key, pname)
		}
		c.reportUnset(vp, v, topVolumeFields...)
		if bool(v.External) && !c.emptyExternal {
			// The data is in that volume: the services mount it as it is
			// (spec.volumes[].dockerVolume, which only administrators may
			// use). PanelX never creates or removes it.
			c.external[key] = v.Name
			continue
		}
		c.volumes[key] = pname
		switch {
		case bool(v.External):
			c.report(vp+".external", "PanelX manages its own volumes: the existing Docker volume %q is not used; a new, empty Volume %q is created (copy the data into it)", v.Name, pname)
		case v.Name != c.project.Name+"_"+key:
			c.report(vp+".name", "PanelX names Docker volumes itself: the Docker volume %q is not used; a new, empty Volume %q is created", v.Name, pname)
		}
		labels := map[string]string{}
		c.labels(vp+".labels", v.Labels, labels, volumeLabelNote)
		vol := &api.Volume{
			Metadata: api.ObjectMeta{Name: pname, Project: c.name, Labels: nilIfEmpty(labels)},
			Spec:     api.VolumeSpec{Driver: v.Driver},
		}
		if len(v.DriverOpts) > 0 {
			vol.Spec.DriverOpts = maps.Clone(map[string]string(v.DriverOpts))
		}
		out = append(out, vol)
	}
	return out, nil
}
