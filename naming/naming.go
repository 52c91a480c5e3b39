// Package naming holds the names and labels of the Docker objects PanelX
// owns. It imports nothing, so every package that needs a label or a name
// (the reconciler, logs/exec/files, the metrics collector, tests) takes it
// from here rather than importing the reconciler for constants.
package naming

import "strconv"

// Labels PanelX puts on every Docker object it owns, reverse-DNS like
// Compose's com.docker.compose.*.
const (
	LabelManaged    = "dev.panelx.managed"
	LabelInstance   = "dev.panelx.instance"
	LabelProject    = "dev.panelx.project"
	LabelService    = "dev.panelx.service"
	LabelVolume     = "dev.panelx.volume"
	LabelReplica    = "dev.panelx.replica"
	LabelSpecHash   = "dev.panelx.spec-hash"
	LabelGeneration = "dev.panelx.generation"
	// LabelFields holds short hashes of each part of the configuration, so a
	// plan can say what changed ("env LOG_LEVEL") without storing values.
	LabelFields = "dev.panelx.fields"
	// LabelImage is the image reference the user asked for; containers run
	// the resolved image ID.
	LabelImage = "dev.panelx.image"
	// LabelEpoch is the leadership term that created a container: a new
	// leader can tell what a stale one started. Not part of the spec hash.
	LabelEpoch = "dev.panelx.epoch"
	// LabelNetwork is the name of a project's named network (spec.networks
	// of a service); the project's default network does not carry it.
	LabelNetwork = "dev.panelx.network"
)

// DefaultNetwork is the name services use for their project's default
// network (the one every service without spec.networks joins).
const DefaultNetwork = "default"

// NamePrefix starts the name of every Docker object PanelX creates.
const NamePrefix = "panelx-"

// NetworkName is the bridge network of a project.
func NetworkName(project string) string { return NamePrefix + project }

// ProjectNetworkName is the Docker network of one of a project's networks:
// the default one, or a named one after an underscore (which no project
// name holds, so "shop" + "db" never meets project "shop-db").
func ProjectNetworkName(project, network string) string {
	if network == "" || network == DefaultNetwork {
		return NetworkName(project)
	}
	return NamePrefix + project + "_" + network
}

// VolumeName is the Docker volume of a project's Volume.
func VolumeName(project, volume string) string { return NamePrefix + project + "-" + volume }

// WorkloadName is an orchestrator's service of a PanelX service (Swarm:
// its task containers are named <WorkloadName>.<slot>.<task ID>).
func WorkloadName(project, service string) string { return NamePrefix + project + "-" + service }

// ContainerName is the final name of a replica's container.
func ContainerName(project, service string, index int) string {
	return NamePrefix + project + "-" + service + "-" + strconv.Itoa(index)
}

// TempContainerName is the name a replacement container runs under until
// the container it replaces is gone (then it is renamed to the final name).
func TempContainerName(project, service string, index int, specHash string) string {
	return ContainerName(project, service, index) + "-" + specHash[:8]
}

// OwnerLabels are the labels every object of an installation carries.
func OwnerLabels(instance string) map[string]string {
	return map[string]string{LabelManaged: "true", LabelInstance: instance}
}

// DeadContainerName is where a container the engine could not remove (left
// "dead") is moved, so the name it held is free for its replacement.
func DeadContainerName(project, service string, index int, id string) string {
	if len(id) > 12 {
		id = id[:12]
	}
	return ContainerName(project, service, index) + "-dead-" + id
}
