package models_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

func TestMain(m *testing.M) { os.Exit(modelstest.Main(m)) }

// env is one app in one store with a running writer.
type env struct {
	t      *testing.T
	ctx    context.Context
	db     *gorm.DB
	app    *models.App
	secret string
	owner  models.Viewer
	writer *models.Writer
}

func newEnv(t *testing.T, db *gorm.DB) *env {
	t.Helper()
	ctx := context.Background()
	name := "Test " + t.Name()
	owner := newUser(t, db)
	app, secret, err := models.CreateApp(ctx, db, owner, models.AppInput{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	w := models.NewWriter(db, models.NewCatalog(db, time.Minute), models.WriterOptions{})
	t.Cleanup(w.Close)
	return &env{t: t, ctx: ctx, db: db, app: app, secret: secret, owner: owner, writer: w}
}

var userSeq atomic.Int64

// newUser creates a dashboard user and returns it as a viewer.
func newUser(t testing.TB, db *gorm.DB) models.Viewer {
	t.Helper()
	email := fmt.Sprintf("user%d-%d@example.com", time.Now().UnixNano(), userSeq.Add(1))
	u, err := models.CreateUser(context.Background(), db, email, "Test User", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	return models.Viewer{UserID: u.ID}
}

// trigger sends one trigger and returns its result.
func (e *env) trigger(in models.TriggerInput) models.TriggerResult {
	e.t.Helper()
	if in.AppPublicID == "" {
		in.AppPublicID = e.app.PublicID
	}
	if in.DeviceID == "" {
		in.DeviceID = "device-1"
	}
	return e.writer.Trigger(e.ctx, []models.TriggerInput{in})[0]
}

func (e *env) mustTrigger(in models.TriggerInput) models.TriggerResult {
	e.t.Helper()
	res := e.trigger(in)
	if res.Err != nil || !res.Accepted {
		e.t.Fatalf("trigger %q: %+v", in.Code, res)
	}
	return res
}

func (e *env) define(code string) *models.EventDefinition {
	e.t.Helper()
	name := "Def " + code
	def, err := models.CreateEventDefinition(e.ctx, e.db, e.owner, e.app.PublicID, models.EventDefinitionInput{Code: &code, Name: &name})
	if err != nil {
		e.t.Fatal(err)
	}
	return def
}

func (e *env) countEvents(where string, args ...any) int64 {
	e.t.Helper()
	var n int64
	if err := e.db.Model(&models.Event{}).Where("app_id = ?", e.app.ID).Where(where, args...).Count(&n).Error; err != nil {
		e.t.Fatal(err)
	}
	return n
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got, _ := models.Code(err); got != code {
		t.Fatalf("error code = %s (%v), want %s", got, err, code)
	}
}

func wantField(t *testing.T, err error, field string) {
	t.Helper()
	var invalid *models.InvalidError
	if !errors.As(err, &invalid) || invalid.Field != field {
		t.Fatalf("error %v, want BAD_USER_INPUT on field %q", err, field)
	}
}

func ptr[T any](v T) *T { return &v }
