package dockerd_test

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/panelx/panelx/internal/testenv/dockerd"
)

// TestCluster: a swarm of three engines in network namespaces; the
// manager sees a killed node go down and come back; nothing is left after.
func TestCluster(t *testing.T) {
	var dirs []string
	t.Run("swarm", func(t *testing.T) {
		c := dockerd.StartCluster(t, dockerd.ClusterOptions{Nodes: 3})
		cli := c.Manager().Client(t)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		nodes, err := cli.NodeList(ctx, swarm.NodeListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, n := range nodes {
			names[n.Description.Hostname] = n.Status.State == swarm.NodeStateReady
		}
		for _, n := range c.Nodes() {
			if !names[n.Hostname()] {
				t.Errorf("node %s not ready in %v", n.Hostname(), names)
			}
			// The host reaches every node on its address (gossip port).
			conn, err := net.DialTimeout("tcp", net.JoinHostPort(n.Addr().String(), "7946"), 5*time.Second)
			if err != nil {
				t.Errorf("dial %s: %v", n.Hostname(), err)
			} else {
				conn.Close()
			}
		}
		stateOf := func(id string) swarm.NodeState {
			n, _, err := cli.NodeInspectWithRaw(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return n.Status.State
		}
		lost := c.Node(3)
		lost.Kill(t)
		for stateOf(lost.SwarmID()) != swarm.NodeStateDown {
			if ctx.Err() != nil {
				t.Fatalf("%s never went down", lost.Hostname())
			}
			time.Sleep(200 * time.Millisecond)
		}
		lost.Start(t)
		for stateOf(lost.SwarmID()) != swarm.NodeStateReady {
			if ctx.Err() != nil {
				t.Fatalf("%s never came back", lost.Hostname())
			}
			time.Sleep(200 * time.Millisecond)
		}
		dirs = append(dirs, c.Dir())
	})
	for _, d := range dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s is still there after cleanup (%v)", d, err)
		}
	}
}
