package main

import (
	"strings"
	"testing"
	"time"
)

func TestConfigDefaultsAndTokens(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://u@localhost/quire")
	t.Setenv("API_TOKENS", "acme:aaaaaaaaaaaaaaaa1, globex : bbbbbbbbbbbbbbbb2")
	c, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8080" || c.MaxUploadBytes != 50<<20 || c.ResultTTL != time.Hour {
		t.Fatalf("defaults = %+v", c)
	}
	tokens, err := c.tokens()
	if err != nil {
		t.Fatal(err)
	}
	if tokens["aaaaaaaaaaaaaaaa1"] != "acme" || tokens["bbbbbbbbbbbbbbbb2"] != "globex" || len(tokens) != 2 {
		t.Fatalf("tokens = %v", tokens)
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		name, key, value, want string
	}{
		{"no tokens", "API_TOKENS", "", "API_TOKENS"},
		{"token without tenant", "API_TOKENS", "aaaaaaaaaaaaaaaaaaaa", "API_TOKENS"},
		{"short token", "API_TOKENS", "acme:short", "API_TOKENS"},
		{"bad size", "MAX_UPLOAD_BYTES", "lots", "MAX_UPLOAD_BYTES"},
		{"bad ttl", "RESULT_TTL", "1ms", "RESULT_TTL"},
		{"short admin token", "API_ADMIN_TOKEN", "admin", "API_ADMIN_TOKEN"},
		{"bad database url", "DATABASE_URL", "mysql://x", "DATABASE_URL"},
		{"negative rate limit", "API_RATE_LIMIT", "-1", "API_RATE_LIMIT"},
		{"rate limit not a number", "API_RATE_LIMIT", "NaN", "API_RATE_LIMIT"},
		{"negative burst", "API_RATE_BURST", "-2", "API_RATE_BURST"},
		{"price of an unknown metric", "BILLING_PRICES", "widgets=1", "BILLING_PRICES"},
		{"price not a decimal", "BILLING_PRICES", "documents=0,01", "BILLING_PRICES"},
		{"bad currency", "BILLING_CURRENCY", "dollars", "BILLING_CURRENCY"},
		{"metering neither on nor off", "USAGE_METERING", "maybe", "USAGE_METERING"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DATABASE_URL", "postgres://u@localhost/quire")
			t.Setenv("API_TOKENS", "acme:aaaaaaaaaaaaaaaa1")
			t.Setenv(tt.key, tt.value)
			_, err := loadConfig()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("loadConfig with %s=%q: error %v, want one naming %s", tt.key, tt.value, err, tt.want)
			}
		})
	}
}
