package containers

import (
	"strings"
	"testing"
)

const fixtureID = "f5dbf9404b6b73909675a6d057976017f40b4a1d045c48450e5a1322d32732e5"

func TestCgroupResolve(t *testing.T) {
	tests := []struct {
		name       string
		mountinfo  string
		procCgroup string
		id         string
		want       cgroupDirs
		wantErr    string
	}{
		{
			name:      "v1 cgroupfs driver (this host); the hybrid unified mount is ignored",
			mountinfo: "mountinfo/v1_cgroupfs", procCgroup: "proccgroup/v1_cgroupfs", id: fixtureID,
			want: cgroupDirs{
				cpu:    "/sys/fs/cgroup/cpuacct/docker/" + fixtureID,
				memory: "/sys/fs/cgroup/memory/docker/" + fixtureID,
				blkio:  "/sys/fs/cgroup/blkio/docker/" + fixtureID,
			},
		},
		{
			name:      "v1 systemd driver with cpu,cpuacct co-mounted",
			mountinfo: "mountinfo/v1_systemd_combined", procCgroup: "proccgroup/v1_systemd_combined", id: fixtureID,
			want: cgroupDirs{
				cpu:    "/sys/fs/cgroup/cpu,cpuacct/system.slice/docker-" + fixtureID + ".scope",
				memory: "/sys/fs/cgroup/memory/system.slice/docker-" + fixtureID + ".scope",
				blkio:  "/sys/fs/cgroup/blkio/system.slice/docker-" + fixtureID + ".scope",
			},
		},
		{
			name:      "v2 systemd driver",
			mountinfo: "mountinfo/v2_unified", procCgroup: "proccgroup/v2_systemd", id: fixtureID,
			want: cgroupDirs{
				v2:     true,
				cpu:    "/sys/fs/cgroup/system.slice/docker-" + fixtureID + ".scope",
				memory: "/sys/fs/cgroup/system.slice/docker-" + fixtureID + ".scope",
				blkio:  "/sys/fs/cgroup/system.slice/docker-" + fixtureID + ".scope",
			},
		},
		{
			name:      "v2 in a container: the host's hierarchy bind-mounted at /host wins over its own",
			mountinfo: "mountinfo/v2_in_container", procCgroup: "proccgroup/v2_systemd", id: fixtureID,
			want: cgroupDirs{
				v2:     true,
				cpu:    "/host/sys/fs/cgroup/system.slice/docker-" + fixtureID + ".scope",
				memory: "/host/sys/fs/cgroup/system.slice/docker-" + fixtureID + ".scope",
				blkio:  "/host/sys/fs/cgroup/system.slice/docker-" + fixtureID + ".scope",
			},
		},
		{
			name:      "PID of another process (reused, or from another PID namespace)",
			mountinfo: "mountinfo/v1_cgroupfs", procCgroup: "proccgroup/other_process", id: fixtureID,
			wantErr: "is not container f5dbf9404b6b's",
		},
		{
			name:      "v2 path outside our cgroup namespace",
			mountinfo: "mountinfo/v2_unified", procCgroup: "proccgroup/v2_cgroupns", id: fixtureID,
			wantErr: "outside this process's cgroup namespace",
		},
		{
			name:      "v1 host but the process shows only a v2 entry",
			mountinfo: "mountinfo/v1_cgroupfs", procCgroup: "proccgroup/v2_systemd", id: fixtureID,
			wantErr: "no cpuacct entry",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mounts, err := parseMountinfo(fixture(t, tt.mountinfo))
			if err != nil {
				t.Fatal(err)
			}
			layout, err := detectLayout(mounts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := layout.resolve(fixture(t, tt.procCgroup), tt.id)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDetectLayout(t *testing.T) {
	tests := []struct {
		mountinfo string
		wantV2    bool
		wantErr   bool
	}{
		{"mountinfo/v1_cgroupfs", false, false},
		{"mountinfo/v1_systemd_combined", false, false},
		{"mountinfo/v2_unified", true, false},
		{"mountinfo/v2_in_container", true, false},
		{"mountinfo/none", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.mountinfo, func(t *testing.T) {
			mounts, err := parseMountinfo(fixture(t, tt.mountinfo))
			if err != nil {
				t.Fatal(err)
			}
			layout, err := detectLayout(mounts)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if err == nil && layout.v2 != tt.wantV2 {
				t.Fatalf("v2 = %v, want %v", layout.v2, tt.wantV2)
			}
		})
	}
}

func TestParseMountinfo(t *testing.T) {
	got, err := parseMountinfo([]byte(
		`31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct` + "\n" +
			`40 30 0:37 /a\040b /mnt/with\040space rw shared:9 master:2 - cgroup2 cgroup2 rw` + "\n" +
			`22 1 254:0 / / rw - ext4 /dev/vda rw` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []cgroupMount{
		{point: "/sys/fs/cgroup/cpu,cpuacct", root: "/", controllers: []string{"cpu", "cpuacct"}},
		{point: "/mnt/with space", root: "/a b", v2: true},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].point != want[i].point || got[i].root != want[i].root || got[i].v2 != want[i].v2 ||
			strings.Join(got[i].controllers, ",") != strings.Join(want[i].controllers, ",") {
			t.Errorf("mount %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := parseMountinfo([]byte("garbage line\n")); err == nil {
		t.Error("a line without the separator: want an error")
	}
}
