// Package containers collects the resource use of the containers PanelX
// manages and exports it under cAdvisor's metric names, so that Grafana
// dashboards written for cAdvisor work unchanged; its Go API (Latest,
// ForProject) serves the same samples with derived rates to live views.
//
// # Design
//
// A Collector asks a Source for the containers to watch every Interval
// (default 1s), samples each, and keeps the latest two samples per
// container in memory. Scrapes (Collect) and the Go API read only that
// memory: no Docker call, no file read.
//
// DockerSource is the Source for one installation: it lists the containers
// labelled dev.panelx.managed=true and dev.panelx.instance=<id>, follows
// Docker's events to re-inspect the one container an event names, and
// re-lists every few seconds as a safety net, inspecting only new or
// changed containers — never every container every tick.
//
// Samples come from the cgroup files, as cAdvisor reads them: on Engine
// 20.10 a one-shot stats call takes about a second per container, and a
// streaming subscription per container makes the daemon ask containerd,
// and containerd each container's shim, for the same numbers every second,
// and the collector decode a JSON frame per container per second. Reading
// the files is a handful of preads per container (the files stay open;
// re-reading at offset 0 makes the kernel regenerate them). The program
// bench/collector measures both: on this project's 2-core host, with 200
// idle containers sampled every second, reading the files costs the
// collector's process 1.2–1.4% of one core, and Docker nothing beyond one
// container list every few seconds; streams cost the collector 2.6–3.1%,
// dockerd, containerd and the shims together another 50–60% of a core,
// and still deliver a frame only every 2.4–2.7 s, as the daemon cannot
// collect 200 containers a second.
//
// The cgroup of a container is resolved from /proc/<pid>/cgroup of its init
// process against this process's mount table (/proc/self/mountinfo), which
// covers cgroup v1 (cgroupfs: /sys/fs/cgroup/<controller>/docker/<id>;
// systemd: …/system.slice/docker-<id>.scope; co-mounted cpu,cpuacct),
// "hybrid" hosts (v1 controllers plus an empty unified hierarchy), and
// cgroup v2 (/sys/fs/cgroup/system.slice/docker-<id>.scope). The path must
// contain the container ID, which rejects a recycled PID and a PID from
// another PID namespace. Read per container:
//
//	        v1                                           v2
//	CPU     cpuacct.usage (ns)                           cpu.stat usage_usec
//	memory  memory.usage_in_bytes,                       memory.current,
//	        memory.stat total_inactive_file              memory.stat inactive_file
//	block   blkio.throttle.io_service_bytes(_recursive)  io.stat rbytes/wbytes
//	network /proc/<pid>/net/dev, all interfaces but lo (the container's network namespace)
//
// The working set is usage minus inactive file pages, as cAdvisor and
// docker stats compute it. The memory limit is the configured one (docker
// inspect), refreshed by "update" events.
//
// When a container's cgroup cannot be resolved or read — PanelX runs in a
// container without the host's PID namespace or cgroup mounts, or rootless
// — that container falls back to one streaming stats subscription
// (ContainerStats with stream=true) whose latest frame is kept; never a
// one-shot call per tick. The choice is per container and visible: the
// panelx_container_metrics_source{source=cgroup_v1|cgroup_v2|stats_stream}
// series, Sample.Source, and a log line for each fallback.
//
// To read cgroup files with PanelX in a container, it needs the host's
// PIDs — the host's PID namespace (pid: host), or the host's /proc mounted
// elsewhere and Options.ProcRoot — and the host's cgroup hierarchy, a
// read-only bind of /sys/fs/cgroup at any mount point (the mount table
// tells where; a mount showing the whole tree wins over the container's
// own). The deploy/ compose file gives it neither today, so there every
// container is read through a stream.
//
// # Metrics
//
// Labels of every series: project, service, replica (PanelX's labels) and
// name (the container name, as cAdvisor's "name"). Only containers of the
// installation are exported, and a container that is gone leaves the
// output at the next tick.
//
//	container_cpu_usage_seconds_total{cpu="total"}  counter  seconds
//	container_memory_usage_bytes                    gauge    bytes, page cache included
//	container_memory_working_set_bytes              gauge    bytes
//	container_spec_memory_limit_bytes               gauge    bytes, 0 when unlimited (as cAdvisor)
//	container_network_receive_bytes_total{interface}   counter  bytes
//	container_network_transmit_bytes_total{interface}  counter  bytes
//	container_fs_reads_bytes_total{device}          counter  bytes
//	container_fs_writes_bytes_total{device}         counter  bytes
//	container_start_time_seconds                    gauge    Unix seconds of the current start
//	container_last_seen                             gauge    Unix seconds of the latest sample
//	panelx_container_restarts_total                 counter  Docker's RestartCount
//	panelx_container_metrics_source{source}         gauge    1
//
// container_start_time_seconds is when the current process started (docker
// inspect's State.StartedAt), so that it moves on a restart; cAdvisor
// reports the creation time for Docker containers, which is the same for a
// container PanelX created and has not restarted.
//
// Cardinality is bounded by the containers themselves: no container ID,
// image or free-form label is a label, so a replacement under the same
// name continues the same series. interface takes at most 8 values per
// container (by name; one per attached network in practice; interfaces
// that never carried a byte, such as the tunl0 or sit0 every namespace gets
// from loaded tunnel modules, are left out), and device only the host's
// real block devices (named from /sys/dev/block, at most 8 per container). Containers in the host's network namespace, or another
// container's, get no network series: their /proc/<pid>/net/dev counts
// someone else's traffic.
//
// # Block I/O and the page cache
//
// Buffered writes sit in the page cache; on cgroup v1 the kernel's flusher
// threads write them back later and that I/O is charged to the root
// cgroup, not the container, so only synchronous writes (fsync, O_DIRECT)
// appear in container_fs_writes_bytes_total. On v2 writeback is charged to
// the owning cgroup. Since Linux 6.10 the v1 counters only move for a disk
// on which some cgroup has a blkio throttle rule (the throttle code that
// counts is not set up before); without one they stay 0, docker stats
// shows "0B / 0B" too.
package containers
