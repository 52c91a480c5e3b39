package api

import (
	"strings"
	"testing"
	"time"
)

func TestBackupSpecValidation(t *testing.T) {
	local := BackupTarget{Local: &LocalBackupTarget{Path: "nightly/db"}}
	s3 := BackupTarget{S3: &S3BackupTarget{Endpoint: "s3.example.com:9000", Bucket: "backups", Prefix: "panelx/", CredentialsSecret: "s3"}}
	for _, tc := range []struct {
		name string
		spec BackupSpec
		want string // a field path in the errors; "" means valid
	}{
		{"local", BackupSpec{Schedule: "0 3 * * *", Target: local}, ""},
		{"s3 with everything", BackupSpec{Schedule: "@every 6h", TimeZone: "Europe/Berlin", Target: s3,
			Retention:  BackupRetention{KeepLast: 3, KeepDaily: 7, KeepWeekly: 4},
			Encryption: &BackupEncryption{Recipients: []string{"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"}, IdentitySecret: &SecretKeySelector{Name: "age", Key: "id"}},
			Hook:       &BackupHook{Service: "db", Command: []string{"pg_dump", "-f", "/data/dump.sql"}}, Deadline: Duration{time.Hour}}, ""},
		{"no target", BackupSpec{}, "spec.backup.target"},
		{"two targets", BackupSpec{Target: BackupTarget{Local: local.Local, S3: s3.S3}}, "spec.backup.target"},
		{"bad cron", BackupSpec{Schedule: "every day", Target: local}, "spec.backup.schedule"},
		{"seconds field", BackupSpec{Schedule: "0 0 3 * * *", Target: local}, "spec.backup.schedule"},
		{"tz in expression", BackupSpec{Schedule: "CRON_TZ=UTC 0 3 * * *", Target: local}, "spec.backup.schedule"},
		{"bad zone", BackupSpec{Schedule: "@daily", TimeZone: "Mars/Olympus", Target: local}, "spec.backup.timeZone"},
		{"local path escapes", BackupSpec{Target: BackupTarget{Local: &LocalBackupTarget{Path: "../other"}}}, "spec.backup.target.local.path"},
		{"local path absolute", BackupSpec{Target: BackupTarget{Local: &LocalBackupTarget{Path: "/etc"}}}, "spec.backup.target.local.path"},
		{"s3 endpoint with scheme", BackupSpec{Target: BackupTarget{S3: &S3BackupTarget{Endpoint: "https://s3", Bucket: "backups", CredentialsSecret: "s3"}}}, "spec.backup.target.s3.endpoint"},
		{"s3 bucket", BackupSpec{Target: BackupTarget{S3: &S3BackupTarget{Endpoint: "s3", Bucket: "Bad_Bucket", CredentialsSecret: "s3"}}}, "spec.backup.target.s3.bucket"},
		{"s3 no credentials", BackupSpec{Target: BackupTarget{S3: &S3BackupTarget{Endpoint: "s3", Bucket: "backups"}}}, "spec.backup.target.s3.credentialsSecret"},
		{"negative retention", BackupSpec{Target: local, Retention: BackupRetention{KeepLast: -1}}, "spec.backup.retention.keepLast"},
		{"not an age key", BackupSpec{Target: local, Encryption: &BackupEncryption{Recipients: []string{"ssh-ed25519 AAAA"}}}, "spec.backup.encryption.recipients[0]"},
		{"hook as a string", BackupSpec{Target: local, Hook: &BackupHook{Service: "db"}}, "spec.backup.hook.command"},
		{"hook NUL", BackupSpec{Target: local, Hook: &BackupHook{Service: "db", Command: []string{"a\x00b"}}}, "spec.backup.hook.command[0]"},
		{"deadline too long", BackupSpec{Target: local, Deadline: Duration{48 * time.Hour}}, "spec.backup.deadline"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &Volume{Metadata: ObjectMeta{Project: "shop", Name: "data"}, Spec: VolumeSpec{Backup: &tc.spec}}
			v.Default()
			errs := v.Validate()
			if tc.want == "" {
				if len(errs) > 0 {
					t.Fatalf("errors: %v", errs)
				}
				return
			}
			found := false
			for _, e := range errs {
				if strings.HasPrefix(e.Field, tc.want) {
					found = true
				}
			}
			if !found {
				t.Fatalf("want an error at %s, got %v", tc.want, errs)
			}
		})
	}
}
