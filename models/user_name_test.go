package models_test

import (
	"testing"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// A user's name that is not UTF-8 (crumbs admin create-user -name typed in
// a Latin-1 terminal: "Jos\xe9") is refused naming the field on every
// store. SQLite stored the bytes, which GraphQL then sent as U+FFFD; MySQL
// refused the row (Error 1366, an internal error).
func TestUserNameMustBeUTF8(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		_, err := models.CreateUser(t.Context(), db, "jose-"+t.Name()[len(t.Name())-5:]+"@example.com", "Jos\xe9", "correct horse battery")
		wantField(t, err, "name")
		u, err := models.CreateUser(t.Context(), db, "jose2-"+t.Name()[len(t.Name())-5:]+"@example.com", "José", "correct horse battery")
		if err != nil || u.Name != "José" {
			t.Fatalf("user %v, %v", u, err)
		}
	})
}
