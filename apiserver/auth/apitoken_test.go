package auth

import (
	"bytes"
	"crypto/sha256"
	"strings"
	"testing"
)

func TestGenerateAPIToken(t *testing.T) {
	seen := make(map[string]bool)
	for range 100 {
		tok, hash, err := GenerateAPIToken()
		if err != nil {
			t.Fatalf("GenerateAPIToken: %v", err)
		}
		if len(tok) != 47 || !strings.HasPrefix(tok, "pnx_") {
			t.Fatalf("token %q: want pnx_ + 43 characters", tok)
		}
		if !LooksLikeAPIToken(tok) {
			t.Fatalf("LooksLikeAPIToken(%q) = false", tok)
		}
		if want := sha256.Sum256([]byte(tok)); !bytes.Equal(hash, want[:]) || !bytes.Equal(hash, HashAPIToken(tok)) {
			t.Fatalf("hash does not match HashAPIToken")
		}
		if seen[tok] {
			t.Fatalf("duplicate token %q", tok)
		}
		seen[tok] = true
	}
}

func TestHashAPITokenDistinguishesTokens(t *testing.T) {
	a, _, _ := GenerateAPIToken()
	b := a[:len(a)-1] + string(a[len(a)-1]^1)
	if bytes.Equal(HashAPIToken(a), HashAPIToken(b)) {
		t.Fatal("one changed character gave the same hash")
	}
	if len(HashAPIToken("")) != sha256.Size {
		t.Fatal("hash is not SHA-256 sized")
	}
}

func TestLooksLikeAPIToken(t *testing.T) {
	good := "pnx_" + strings.Repeat("A", 40) + "-_9"
	tests := []struct {
		in   string
		want bool
	}{
		{good, true},
		{"", false},
		{"pnx_", false},
		{"pnx_abc", false},
		{good + "x", false},
		{"PNX_" + good[4:], false},
		{"pat_" + good[4:], false},
		{"pnx_" + strings.Repeat("A", 42) + "=", false},
		{"pnx_" + strings.Repeat("A", 42) + "+", false},
		{"pnx_" + strings.Repeat("A", 42) + "é"[:1], false},
		{"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ4In0.c2ln", false},
	}
	for _, tt := range tests {
		if got := LooksLikeAPIToken(tt.in); got != tt.want {
			t.Errorf("LooksLikeAPIToken(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestTokenPrefix(t *testing.T) {
	tok, _, err := GenerateAPIToken()
	if err != nil {
		t.Fatal(err)
	}
	p := TokenPrefix(tok)
	if len(p) != 12 || !strings.HasPrefix(tok, p) || !strings.HasPrefix(p, "pnx_") {
		t.Errorf("TokenPrefix(%q) = %q", tok, p)
	}
	if TokenPrefix("pnx_ab") != "pnx_ab" || TokenPrefix("") != "" {
		t.Error("TokenPrefix of short input")
	}
}
