package containers

import (
	"testing"
	"time"
)

func TestComputeRates(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	base := rawStats{
		cpu: 10 * time.Second, memUsage: 300, memWorkSet: 200,
		networks: []InterfaceStats{{"eth0", 1000, 2000}, {"eth1", 10, 10}},
		blockIO:  []DeviceStats{{"/dev/vda", 4096, 8192}},
	}
	at := func(d time.Duration, s rawStats) *reading { return &reading{stats: s, at: t0.Add(d)} }
	with := func(f func(*rawStats)) rawStats {
		s := base
		s.networks = append([]InterfaceStats(nil), base.networks...)
		s.blockIO = append([]DeviceStats(nil), base.blockIO...)
		f(&s)
		return s
	}
	tests := []struct {
		name       string
		prev, cur  *reading
		limit      uint64
		want       Rates
		hostMemory uint64
	}{
		{
			name: "first sample: memory only, limit from the host when unlimited",
			cur:  at(0, base), hostMemory: 1000,
			want: Rates{MemoryUsed: 200, MemoryLimit: 1000, MemoryPercent: 20},
		},
		{
			name: "one and a half cores, traffic and I/O over two seconds",
			prev: at(0, base),
			cur: at(2*time.Second, with(func(s *rawStats) {
				s.cpu += 3 * time.Second
				s.networks[0].RxBytes += 4000
				s.networks[0].TxBytes += 2000
				s.blockIO[0].ReadBytes += 1 << 20
				s.blockIO[0].WriteBytes += 2 << 20
			})),
			limit: 400,
			want: Rates{
				Valid: true, Window: 2 * time.Second, CPUPercent: 150,
				MemoryUsed: 200, MemoryLimit: 400, MemoryPercent: 50,
				NetworkRxBytesPerSecond: 2000, NetworkTxBytesPerSecond: 1000,
				BlockReadBytesPerSecond: 1 << 19, BlockWriteBytesPerSecond: 1 << 20,
			},
		},
		{
			name: "CPU time went back (restart): no rates",
			prev: at(0, base),
			cur:  at(time.Second, with(func(s *rawStats) { s.cpu = time.Millisecond })),
			want: Rates{MemoryUsed: 200},
		},
		{
			name: "an interface that went away and one that came add nothing",
			prev: at(0, base),
			cur: at(time.Second, with(func(s *rawStats) {
				s.networks = []InterfaceStats{{"eth0", 1100, 2000}, {"eth2", 1 << 30, 1 << 30}}
			})),
			want: Rates{Valid: true, Window: time.Second, MemoryUsed: 200, NetworkRxBytesPerSecond: 100},
		},
		{
			name: "a network counter that went back counts as zero",
			prev: at(0, base),
			cur:  at(time.Second, with(func(s *rawStats) { s.networks[0].RxBytes = 5 })),
			want: Rates{Valid: true, Window: time.Second, MemoryUsed: 200},
		},
		{
			name: "same time twice: no rates",
			prev: at(time.Second, base),
			cur:  at(time.Second, base),
			want: Rates{MemoryUsed: 200},
		},
		{
			name:  "a limit above the host's memory shows the host's",
			cur:   at(0, base),
			limit: 1 << 62, hostMemory: 400,
			want: Rates{MemoryUsed: 200, MemoryLimit: 400, MemoryPercent: 50},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := computeRates(tt.prev, tt.cur, tt.limit, tt.hostMemory); got != tt.want {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
