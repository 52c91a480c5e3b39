// Package metrics is the home of PanelX's Prometheus exporters. Each
// subpackage exports one family of metrics and registers nothing on its
// own: the server decides which registry they go to.
//
//   - containers: cAdvisor-compatible metrics of the containers PanelX
//     manages, sampled from cgroup files (or Docker's streaming stats).
package metrics
