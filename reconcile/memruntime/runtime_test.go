package memruntime

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/panelx/panelx/reconcile"
)

// TestEngineRefusals: the engine's refusals the reconciler depends on.
func TestEngineRefusals(t *testing.T) {
	ctx := context.Background()
	owned := map[string]string{reconcile.LabelManaged: "true", reconcile.LabelInstance: "me", reconcile.LabelProject: "shop"}
	setup := func(t *testing.T) (*Runtime, string) {
		rt := New("me", nil)
		img := rt.Registry().Push("127.0.0.1:5000/shop/web:1", "1")
		if err := rt.PullImage(ctx, img, nil); err != nil {
			t.Fatal(err)
		}
		n, err := rt.CreateNetwork(ctx, "panelx-shop", owned)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rt.CreateVolume(ctx, reconcile.VolumeSpec{Name: "panelx-shop-data", Labels: owned}); err != nil {
			t.Fatal(err)
		}
		id, _ := rt.ImageID(ctx, img)
		labels := map[string]string{reconcile.LabelReplica: "0", reconcile.LabelService: "web"}
		for k, v := range owned {
			labels[k] = v
		}
		cid, err := rt.CreateContainer(ctx, reconcile.ContainerSpec{Name: "panelx-shop-web-0", Image: id, Labels: labels,
			Network: "panelx-shop", NetworkID: n.ID, Mounts: []reconcile.Mount{{Type: "volume", Source: "panelx-shop-data", Target: "/data"}}})
		if err != nil {
			t.Fatal(err)
		}
		return rt, cid
	}
	for _, c := range []struct {
		name  string
		do    func(rt *Runtime, cid string) error
		want  string
		is    error
		clean bool // no error wanted
	}{
		{name: "a second container of the same name", want: "name is taken", do: func(rt *Runtime, cid string) error {
			_, err := rt.CreateContainer(ctx, reconcile.ContainerSpec{Name: "panelx-shop-web-0", Image: rt.Containers()[0].ImageID})
			return err
		}},
		{name: "an image not pulled", want: "No such image", do: func(rt *Runtime, cid string) error {
			_, err := rt.CreateContainer(ctx, reconcile.ContainerSpec{Name: "x", Image: "sha256:nothere"})
			return err
		}},
		{name: "a network with endpoints", want: "active endpoints", do: func(rt *Runtime, cid string) error {
			return rt.RemoveNetwork(ctx, "panelx-shop")
		}},
		{name: "a volume in use", want: "volume is in use", do: func(rt *Runtime, cid string) error {
			return rt.RemoveVolume(ctx, "panelx-shop-data")
		}},
		{name: "a rename onto a taken name", want: "already in use", do: func(rt *Runtime, cid string) error {
			if _, err := rt.Outside().RunContainer("taken", "127.0.0.1:5000/shop/web:1", nil, true); err != nil {
				return err
			}
			return rt.RenameContainer(ctx, cid, "taken")
		}},
		{name: "someone else's container", is: reconcile.ErrNotFound, do: func(rt *Runtime, cid string) error {
			id, err := rt.Outside().RunContainer("theirs", "127.0.0.1:5000/shop/web:1", map[string]string{reconcile.LabelManaged: "true", reconcile.LabelInstance: "other"}, true)
			if err != nil {
				return err
			}
			_, err = rt.InspectContainer(ctx, id)
			return err
		}},
		{name: "someone else's network", is: reconcile.ErrNotOwned, do: func(rt *Runtime, cid string) error {
			if err := rt.Outside().CreateNetwork("panelx-other", nil); err != nil {
				return err
			}
			_, err := rt.CreateNetwork(ctx, "panelx-other", nil)
			return err
		}},
		{name: "a container removed twice", clean: true, do: func(rt *Runtime, cid string) error {
			if err := rt.RemoveContainer(ctx, cid); err != nil {
				return err
			}
			return rt.RemoveContainer(ctx, cid)
		}},
		{name: "the network once its container is gone", clean: true, do: func(rt *Runtime, cid string) error {
			if err := rt.RemoveContainer(ctx, cid); err != nil {
				return err
			}
			if err := rt.RemoveNetwork(ctx, "panelx-shop"); err != nil {
				return err
			}
			_, err := rt.InspectNetwork(ctx, "panelx-shop")
			if !errors.Is(err, reconcile.ErrNotFound) {
				return errors.New("still there")
			}
			return rt.RemoveVolume(ctx, "panelx-shop-data")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rt, cid := setup(t)
			err := c.do(rt, cid)
			switch {
			case c.clean && err != nil:
				t.Fatalf("error: %v", err)
			case c.is != nil && !errors.Is(err, c.is):
				t.Fatalf("error %v, want %v", err, c.is)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
		})
	}
}
