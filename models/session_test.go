package models_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// A subscription holds a viewer for as long as it runs; CheckSignIn tells it
// when the sign-in behind it has ended.
func TestCheckSignIn(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		tokens, err := models.NewTokens([][]byte{[]byte("a-test-signing-secret-of-32-bytes!!")}, "crumbs", "crumbs-dashboard", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		user, err := models.CreateUser(ctx, db, "check-"+time.Now().Format("150405.000000")+"@example.com", "", "correct horse battery")
		if err != nil {
			t.Fatal(err)
		}
		session, err := tokens.StartSession(ctx, db, user)
		if err != nil {
			t.Fatal(err)
		}
		grant, err := tokens.VerifyAccessToken(ctx, db, session.AccessToken)
		if err != nil || grant.UserID != user.ID || grant.SignInID == "" {
			t.Fatalf("verify: %+v %v", grant, err)
		}
		v := models.Viewer{UserID: grant.UserID, SignInID: grant.SignInID}
		if err := tokens.CheckSignIn(ctx, db, v); err != nil {
			t.Fatalf("live sign-in: %v", err)
		}
		if err := tokens.CheckSignIn(ctx, db, models.Viewer{Secret: "sk_x"}); err != nil {
			t.Fatalf("a secret-key viewer: %v", err)
		}
		if err := tokens.Logout(ctx, db, session.RefreshToken); err != nil {
			t.Fatal(err)
		}
		if err := tokens.CheckSignIn(ctx, db, v); !errors.Is(err, models.ErrUnauthenticated) {
			t.Fatalf("ended sign-in: %v", err)
		}
		if _, err := tokens.VerifyAccessToken(ctx, db, session.AccessToken); !errors.Is(err, models.ErrUnauthenticated) {
			t.Fatalf("token of an ended sign-in: %v", err)
		}
	})
}
