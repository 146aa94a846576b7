package models

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// Properties or fields far over their size are refused after looking at
// about as much of them as the limit allows: an anonymous trigger whose
// properties held 99,000 keys (1.4 MB, under the body limit) was copied,
// checked and encoded whole, 15 times the CPU of decoding its body, before
// the size refused it, and before the per-IP limit, which counts only
// requests that pass validation.
func TestOversizedJSONIsRefusedWithBoundedWork(t *testing.T) {
	big := map[string]any{}
	for i := range 99_000 {
		big[fmt.Sprint("k", i)] = i
	}
	in := TriggerInput{AppPublicID: "app_0123456789", DeviceID: "d", Code: "view", Origin: "https://site.example", Properties: big}
	var err error
	allocs := testing.AllocsPerRun(1, func() {
		_, err = prepare(context.Background(), nil, nil, in, time.Now(), &senderMemo{})
	})
	wantInvalid(t, err, "properties")
	if allocs > 1000 {
		t.Errorf("refusing the properties took %.0f allocations", allocs)
	}
	allocs = testing.AllocsPerRun(1, func() { _, err = checkLeadFields(big) })
	wantInvalid(t, err, "fields")
	if allocs > 1000 {
		t.Errorf("refusing the fields took %.0f allocations", allocs)
	}
}

func wantInvalid(t *testing.T, err error, field string) {
	t.Helper()
	var inv *InvalidError
	if !errors.As(err, &inv) || inv.Field != field {
		t.Fatalf("error %v, want invalid %s", err, field)
	}
}
