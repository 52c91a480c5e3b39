// Package backup writes, verifies, restores and prunes archives of a
// volume's files. It knows nothing of Docker or the store: a Source gives
// the volume's contents as a tar stream, a Sink takes one back, and a
// Target (a local directory or an S3-compatible bucket) stores objects.
//
// An archive is a tar of the volume's files, its first entry
// .panelx-backup.json (format version, project, volume, labels, creation
// time, the root directory's owner and mode), compressed with gzip and,
// optionally, encrypted with age. It is streamed from the Source through
// the compressor (and encryptor) to the Target: nothing holds more than a
// buffer of it (an S3 multipart part, PartSize, is the largest). Beside
// each archive lies a manifest, <key>.json, with the same metadata plus
// the archive's size and SHA-256.
//
// A backup writes the archive under a temporary key (<key>.partial-<id>),
// reads it back whole and compares size and SHA-256, and only then makes
// it the final key (a rename; a server-side copy on S3) and writes the
// manifest. An archive is good only when its manifest exists and the run
// that made it was recorded as Succeeded: a process killed at any point
// leaves at most a temporary object, which no restore or listing takes
// for an archive and SweepPartials removes later.
//
// A restore reads the archive twice. The first pass checks everything
// before the volume is touched: size and SHA-256 against the run's record,
// the age decryption (its authentication tags), the gzip stream (its CRC)
// and the tar structure, and the metadata's project and volume. The second
// pass streams the entries into the Sink, which stages them beside the
// volume's data and swaps them in only when the whole stream arrived and
// matched the checksum again.
package backup
