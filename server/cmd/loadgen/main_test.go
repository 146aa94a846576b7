package main

import (
	"encoding/json"
	"testing"
)

func TestRequestBodiesAreValidJSON(t *testing.T) {
	for _, batch := range []int{0, 3} {
		body := requestBody(options{batch: batch, devices: 10, codes: 2}, "app_x", 1, 7)
		var req struct {
			Query     string
			Variables struct{ In json.RawMessage }
		}
		if err := json.Unmarshal(body, &req); err != nil || req.Query == "" || len(req.Variables.In) == 0 {
			t.Fatalf("batch %d: %v %s", batch, err, body)
		}
	}
}

func TestOnlyLoopbackTargets(t *testing.T) {
	for target, ok := range map[string]bool{
		"http://127.0.0.1:8080/graphql": true, "http://localhost:8080/graphql": true, "http://[::1]:8080/graphql": true,
		"http://10.0.0.5:8080/graphql": false, "https://example.com/graphql": false,
	} {
		if err := checkLoopback(target); (err == nil) != ok {
			t.Errorf("%s: %v", target, err)
		}
	}
}
