package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReadyzURL(t *testing.T) {
	tests := []struct {
		listen, want, err string
	}{
		{listen: ":8080", want: "http://127.0.0.1:8080/readyz"},
		{listen: "0.0.0.0:9000", want: "http://127.0.0.1:9000/readyz"},
		{listen: "[::]:9000", want: "http://[::1]:9000/readyz"},
		{listen: "10.0.0.5:80", want: "http://10.0.0.5:80/readyz"},
		{listen: "8080", err: "want host:port"},
		{listen: "host:", err: "want host:port"},
	}
	for _, tt := range tests {
		got, err := readyzURL(tt.listen)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("readyzURL(%q) = %q, %v; want error %q", tt.listen, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("readyzURL(%q) = %q, %v; want %q", tt.listen, got, err, tt.want)
		}
	}
}

func TestCheckReady(t *testing.T) {
	status := http.StatusServiceUnavailable
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		_, _ = w.Write([]byte("database unreachable\n"))
	}))
	defer srv.Close()
	err := checkReady(context.Background(), srv.URL+"/readyz")
	if err == nil || !strings.Contains(err.Error(), "503: database unreachable") {
		t.Errorf("not ready: err = %v", err)
	}
	status = http.StatusOK
	if err := checkReady(context.Background(), srv.URL+"/readyz"); err != nil {
		t.Errorf("ready: %v", err)
	}
	srv.Close()
	if err := checkReady(context.Background(), srv.URL+"/readyz"); err == nil {
		t.Error("a server that is gone passed")
	}
}
