package main

import (
	"net"
	"testing"
)

func TestLoginURL(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 8080}, "http://localhost:8080"},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 9000}, "http://localhost:9000"},
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 41234}, "http://127.0.0.1:41234"},
		{&net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 80}, "http://10.1.2.3:80"},
		{&net.TCPAddr{IP: net.ParseIP("::1"), Port: 8080}, "http://[::1]:8080"},
	}
	for _, tt := range tests {
		if got := loginURL(tt.addr); got != tt.want {
			t.Errorf("loginURL(%v) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}
