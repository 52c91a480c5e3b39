package reconcile

import "github.com/panelx/panelx/naming"

// The names and labels of PanelX's Docker objects live in package naming;
// these are the same values, for the reconciler's own code.
const (
	LabelManaged    = naming.LabelManaged
	LabelInstance   = naming.LabelInstance
	LabelProject    = naming.LabelProject
	LabelService    = naming.LabelService
	LabelVolume     = naming.LabelVolume
	LabelReplica    = naming.LabelReplica
	LabelSpecHash   = naming.LabelSpecHash
	LabelGeneration = naming.LabelGeneration
	LabelFields     = naming.LabelFields
	LabelImage      = naming.LabelImage
	LabelEpoch      = naming.LabelEpoch
	LabelNetwork    = naming.LabelNetwork
	NamePrefix      = naming.NamePrefix
	DefaultNetwork  = naming.DefaultNetwork
)

var (
	NetworkName        = naming.NetworkName
	ProjectNetworkName = naming.ProjectNetworkName
	VolumeName         = naming.VolumeName
	ContainerName      = naming.ContainerName
	WorkloadName       = naming.WorkloadName
	tempContainerName  = naming.TempContainerName
	deadContainerName  = naming.DeadContainerName
	ownerLabels        = naming.OwnerLabels
)
