package models

import (
	"errors"
	"fmt"
	"testing"
)

// The collector keeps every bad field once, with its first message, in the
// order checked; the error it returns names the first to errors.As and Code
// (what the JSON endpoints answer), and one bad field is a plain
// *InvalidError, as before.
func TestValidationCollectsEveryBadField(t *testing.T) {
	var v validation
	if !v.check("ok", true, "unused") || v.err() != nil {
		t.Fatal("a good field is bad")
	}
	v.check("code", false, "bad %s", "code")
	v.add(Invalid("name", "too long"))
	v.check("code", false, "second message")
	v.add(&InvalidFieldsError{Fields: []*InvalidError{{Field: "color", Message: "not a color"}, {Field: "name", Message: "again"}}})
	err := fmt.Errorf("models.Create: %w", v.err())

	var fields *InvalidFieldsError
	if !errors.As(err, &fields) || fmt.Sprint(fields) != "code: bad code; name: too long; color: not a color" {
		t.Fatalf("fields %v", fields)
	}
	var first *InvalidError
	if !errors.As(err, &first) || first.Field != "code" {
		t.Fatalf("errors.As found %v", first)
	}
	if code, field := Code(err); code != CodeBadUserInput || field != "code" {
		t.Fatalf("Code %s %s", code, field)
	}

	var one validation
	one.check("name", false, "is required")
	if _, ok := one.err().(*InvalidError); !ok {
		t.Fatalf("one bad field is %T", one.err())
	}

	var other validation
	other.check("name", false, "is required")
	other.add(ErrUnavailable)
	if !errors.Is(other.err(), ErrUnavailable) {
		t.Fatalf("an error that is no input error was lost: %v", other.err())
	}
}
