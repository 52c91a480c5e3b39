// Package operate is the Docker side of a service's logs, web terminal and
// volume files. The HTTP/WebSocket layer authenticates, authorizes and
// calls it; everything here goes through the Docker Engine API only (API
// 1.41 and newer), with no access to host paths, so it works the same when
// PanelX itself runs in a container.
//
// # Logs
//
// Logs finds a service's replica containers by label (only this
// installation's), opens ContainerLogs on each, always with timestamps,
// and parses the stream itself: stdcopy frames for containers without a
// TTY (stdout and stderr apart), the raw stream for TTY containers (one
// stream). Docker cuts lines longer than 16 KiB into "partial" messages of
// exactly 16 KiB, each with its own timestamp; they are joined again, then
// split at LogOptions.MaxLineBytes (LogLine.Partial). Lines of all replicas
// are merged by Docker timestamp: exactly without Follow; with Follow a line
// is held until it is 100 ms old so that other replicas' lines can overtake
// it. Memory is bounded (one line per replica) and a slow consumer blocks
// the producers, which stop reading from Docker.
//
// Following survives replacements: the reconciler starts a replica's new
// container beside the old one; a Docker "start" event for the service
// makes Logs open the new container (announced by a StreamSystem line), the
// old container's stream ends when it stops, and a restarted container
// resumes after its last line. Containers renamed while followed keep
// their lines tagged with the current name.
//
// # Terminal
//
// Exec runs an argument vector (never a shell string) with a TTY in a
// replica's running container, as the container's user, in its working
// directory, with its environment: a request chooses only the command and
// the terminal size. Without a command it runs the first of /bin/bash,
// /bin/sh and /busybox sh that exists, found with the archive stat API
// (nothing runs to look). The Session gives the output, stdin, Resize, the
// exit code (Wait) and an ExecRecord for the audit event.
//
// Docker keeps an exec's process running when its client disconnects, and
// has no call to stop one; Session.Close therefore types ctrl-C (SIGINT to
// the foreground job) and ctrl-D (end of input for a shell at its prompt)
// before closing. A program that ignores both outlives the session.
//
// # Swarm
//
// With the Swarm runtime a replica is a task slot of the service's Swarm
// service (index slot-1), and its containers are the tasks'
// (panelx-<p>-<s>.<slot>.<task>), possibly on other nodes. SwarmLogs and
// SwarmExec take the place of Logs and Exec (the caller chooses: the
// server passes its runtime down, internal/operations' Options.Swarm).
//
//   - SwarmLogs reads each task through the manager's task logs API
//     (/tasks/{id}/logs, API 1.29+: Swarm's log broker, the per-task form
//     of /services/{id}/logs, with follow, tail, since and timestamps), so
//     tasks on every node are included, and merges them exactly as Logs
//     merges containers. Tasks of Swarm's task history are included (their
//     logs explain a crash), read without following. While following, the
//     task list is polled every second (the Engine's events say nothing
//     of tasks on other nodes): a new task is announced and read from its
//     first line. Swarm keeps the follow stream of a task that is over
//     open until the client leaves; the stream is closed two seconds after
//     the task was seen over (or gone).
//   - SwarmExec finds the slot's running task (the one Swarm keeps during
//     a start-first update) and runs the command in its container when the
//     task is on this engine's node; a task on another node is
//     ErrOtherNode, whose message names the node: the Engine API has no
//     exec into another node's containers.
//   - Files needs nothing else: volumes are the manager's local volumes
//     and the services mounting one run on the manager's node, so the
//     helper containers and the project's image are local.
//
// # Files
//
// Files works on one PanelX volume (panelx-<project>-<volume>) whether or
// not a service runs, through short-lived helper containers whose only
// mount is that volume, at /.panelx-volume, with no network, no
// capabilities, no-new-privileges, and PanelX's labels plus
// dev.panelx.helper=files (RemoveHelpers sweeps orphans of a crashed
// process; operations remove their own containers even when canceled).
// They are created from FilesOptions.Image or, by default, the image of one
// of the project's containers: it exists locally while the container does,
// and none of it runs.
//
//   - List, Read, Mkdir and the upload part of Write use Docker's archive API
//     (stat, copy from, copy to) on a helper container that is created and
//     never started: no process, no host path. Its root file system is
//     read-only and its entrypoint does not exist. Reads mount the volume
//     read-only.
//   - Delete, Rename, the final step of Write, and the listing of a
//     directory too heavy for the archive API (which sends a directory with
//     all its contents) need a process: the static panelx binary copies
//     itself into a fresh helper container and runs `panelx volume-helper`
//     there (VolumeHelperMain), as root of the container with only
//     CAP_DAC_OVERRIDE and CAP_FOWNER (to act on files of any owner in the
//     volume), bounded memory and processes. The request travels as JSON in
//     the environment, so no path meets a command-line parser; the helper
//     re-checks every path and works through os.Root, which keeps every
//     operation, links included, inside the volume. Delete and Rename first
//     check their paths through the archive API, so that a refused request
//     runs nothing.
//
// Write uploads to a temporary name (.panelx-upload-<random>) in the target
// directory and renames it onto the target: a short, failed or canceled
// upload never leaves a truncated file, and readers see the old or the new
// content. New files and directories get their directory's owner (mode 0644
// and 0755); a replaced file keeps its owner and mode. Delete is recursive,
// as a file manager's delete after its confirmation. A helper run costs
// about a second on a small machine, an archive operation about 50 ms.
//
// # Path confinement
//
// CleanPath is the gate every path passes: only clean, relative,
// slash-separated paths within the bounds, refusing traversal, absolute
// paths, backslashes, control characters, invalid UTF-8, leftover
// percent-encoding and NFKC look-alikes (ErrInvalidPath, a 400). Symbolic
// links are never followed: each component is lstat'ed (archive stat API
// before Docker operations, os.Root in the helper) and a link anywhere but
// as the last component of a delete or rename (which act on the link
// itself) is refused with ErrInvalidPath. Listings show links as links,
// with their target. An upload is a tar of one entry with a single clean
// name, never a link, and Docker refuses to replace a directory with it.
//
// Between a check and Docker's use of the path, a process that can write to
// the volume — a service container mounting it, i.e. the volume's owner —
// could swap a directory for a link. Where that lands, verified by the
// tests against Docker 20.10:
//
//   - Docker resolves archive paths inside the helper container's root file
//     system, never the host's (since CVE-2018-15664, archive work is
//     chrooted there; newer engines use a mount namespace): a link to /etc
//     reaches the helper image's /etc. The worst a race gets is a file of
//     the helper image — the project's own image by default. The helper
//     mounts no other volume.
//   - Extraction is refused unless it resolves into a writable volume,
//     because the helper's root file system is read-only; the only volumes
//     are this one and the anonymous volumes of the image's VOLUME lines,
//     which are removed with the helper.
//   - Helper operations go through os.Root, which refuses, atomically, to
//     leave the volume.
//
// So a race can at most redirect an operation within the same volume, or
// read the helper image, both of which the racer can already do.
//
// # Wiring
//
// The binary must dispatch the helper before anything else, in
// cmd/panelx's main:
//
//	if len(os.Args) > 1 && os.Args[1] == operate.HelperCommand {
//		os.Exit(operate.VolumeHelperMain())
//	}
//
// and pass its own path (os.Executable()) as FilesOptions.HelperBinary; it
// must be statically linked (make build is). Map errors to HTTP statuses
// with errors.Is: ErrInvalidPath, ErrSizeMismatch, ErrInvalidCommand and
// ErrInvalidSize 400; ErrNotFound and ErrNoContainer 404; ErrExist,
// ErrNotDir, ErrIsDir, ErrNotRunning and ErrOtherNode 409; ErrTooLarge
// 413; ErrNoShell 422.
package operate
