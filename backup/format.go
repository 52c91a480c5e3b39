package backup

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path"
	"strings"
	"time"
)

// FormatVersion is written into every archive; a reader refuses newer ones.
const FormatVersion = 1

// MetadataName is the first entry of every archive.
const MetadataName = ".panelx-backup.json"

// Suffixes of the objects of one archive.
const (
	ManifestSuffix = ".json"
	partialMarker  = ".partial-"
)

// RootAttrs are the owner and mode of the volume's root directory, which
// an extraction does not carry (a database's data directory must keep its
// 0700 and owner).
type RootAttrs struct {
	Mode int64 `json:"mode"`
	UID  int   `json:"uid"`
	GID  int   `json:"gid"`
}

// Metadata travels inside the archive (its first entry) and in the
// manifest beside it.
type Metadata struct {
	FormatVersion int               `json:"formatVersion"`
	Project       string            `json:"project"`
	Volume        string            `json:"volume"`
	VolumeUID     string            `json:"volumeUID,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
	CreatedAt     time.Time         `json:"createdAt"`
	RunID         string            `json:"runID,omitempty"`
	Root          *RootAttrs        `json:"root,omitempty"`
}

// Manifest is the object beside an archive, written once it was verified.
type Manifest struct {
	Metadata
	ArchiveBytes int64    `json:"archiveBytes"`
	SHA256       string   `json:"sha256"`
	ContentBytes int64    `json:"contentBytes"`
	Entries      int64    `json:"entries"`
	Compression  string   `json:"compression"`
	Encryption   string   `json:"encryption,omitempty"`
	Recipients   []string `json:"recipients,omitempty"`
}

// ArchiveKey is the key of a new archive of a volume under dir:
// <dir>/<volume>/<UTC time>-<run id>.tar.gz[.age].
func ArchiveKey(dir, volume string, at time.Time, runID string, encrypted bool) string {
	name := at.UTC().Format("20060102T150405Z") + "-" + runID + ".tar.gz"
	if encrypted {
		name += ".age"
	}
	return path.Join(dir, volume, name)
}

// IsPartial reports whether key is a temporary object of an unfinished
// write.
func IsPartial(key string) bool { return strings.Contains(path.Base(key), partialMarker) }

func partialKey(key string) string { return key + partialMarker + randomID() }

func randomID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// cleanEntryName turns an entry name of Docker's archive ("./a/b",
// "./") into the archive's ("a/b", "" for the root), refusing names that
// leave the volume.
func cleanEntryName(name string) (string, error) {
	n := strings.TrimPrefix(name, "./")
	n = strings.TrimSuffix(n, "/")
	if n == "." || n == "" {
		return "", nil
	}
	if strings.HasPrefix(n, "/") || path.Clean(n) != n || n == ".." || strings.HasPrefix(n, "../") {
		return "", fmt.Errorf("archive entry %q leaves the volume", name)
	}
	return n, nil
}
