package models_test

import (
	"errors"
	"fmt"
	"testing"

	"gorm.io/gorm"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
)

// Headers given for one origin never go to another: a headers edit made
// while the action was at A (headersOrigin A) that lands after another
// editor moved it to B is refused CONFLICT, whichever order the two reach
// the store in; before, the headers meant for A's CRM were sent to B.
func TestHeadersEditRacingAMoveKeepsHeadersOnTheirOrigin(t *testing.T) {
	const originA, originB = "http://127.0.0.1:8001", "http://127.0.0.1:8002"
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		created, update := keyedWebhook(t, e, originA+"/hooks", "key-for-a")
		stored := func() *models.AutomationAction {
			var a models.AutomationAction
			if err := db.Take(&a, created.Secrets[0].Action.ID).Error; err != nil {
				t.Fatal(err)
			}
			return &a
		}

		// In turn: an edit made against A and sent after the move is refused.
		if _, err := update(models.AutomationActionInput{URL: ptr(originB + "/hooks"), Headers: key("key-for-b")}); err != nil {
			t.Fatal(err)
		}
		_, err := update(models.AutomationActionInput{Headers: key("new-key-for-a"), HeadersOrigin: ptr(originA)})
		wantCode(t, err, "CONFLICT")
		var conflict *models.ConflictError
		if !errors.As(err, &conflict) || conflict.Field != "input.headers" {
			t.Fatalf("refused %v, want CONFLICT on input.headers", err)
		}
		if a := stored(); a.Headers[0].Value != "key-for-b" {
			t.Fatalf("stored %+v", a.Headers)
		}
		// The url as the API shows it names its origin as well; dropping
		// headers, and an edit made against where the action is, go through.
		if _, err := update(models.AutomationActionInput{Headers: key("newer-key-for-b"), HeadersOrigin: ptr(originB + "/…")}); err != nil {
			t.Fatal(err)
		}
		if _, err := update(models.AutomationActionInput{Headers: []models.Header{}, HeadersOrigin: ptr(originA)}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			in    models.AutomationActionInput
			field string
		}{
			{models.AutomationActionInput{Headers: key("k"), HeadersOrigin: ptr("crm.example")}, "input.headersOrigin"},
			{models.AutomationActionInput{Headers: key("k"), HeadersOrigin: ptr("ftp://crm.example")}, "input.headersOrigin"},
			{models.AutomationActionInput{HeadersOrigin: ptr(originB)}, "input.headersOrigin"},
			{models.AutomationActionInput{URL: ptr(originA + "/hooks"), Headers: key("k"), HeadersOrigin: ptr(originB)}, "input.headersOrigin"},
		} {
			_, err := update(c.in)
			wantField(t, err, c.field)
		}

		// At once, many times: the move always goes through, the headers
		// edit only when it came first, and B never has A's key.
		conflicts := 0
		for i := range 40 {
			if _, err := update(models.AutomationActionInput{URL: ptr(originA + "/hooks"), Headers: key("key-for-a")}); err != nil {
				t.Fatal(err)
			}
			edited := make(chan error, 1)
			go func() {
				_, err := update(models.AutomationActionInput{Headers: key(fmt.Sprint("new-key-for-a-", i)), HeadersOrigin: ptr(originA)})
				edited <- err
			}()
			_, moveErr := update(models.AutomationActionInput{URL: ptr(originB + "/hooks"), Headers: key(fmt.Sprint("key-for-b-", i))})
			editErr := <-edited
			if moveErr != nil {
				t.Fatalf("round %d: the move: %v", i, moveErr)
			}
			if editErr != nil {
				wantCode(t, editErr, "CONFLICT")
				conflicts++
			}
			if a := stored(); a.URL != originB+"/hooks" || len(a.Headers) != 1 || a.Headers[0].Value != fmt.Sprint("key-for-b-", i) {
				t.Fatalf("round %d: %s has headers %+v", i, a.URL, a.Headers)
			}
		}
		t.Logf("%d of 40 headers edits came second and were refused", conflicts)
	})
}

// An origin is the same with its scheme's default port written out or left
// out, as in a browser's URL.origin: headers given for https://crm.example
// (the origin a client reads off the action's url) go to an action at
// https://crm.example:443/…, and a url with its default port names the
// origin without it. They were CONFLICT ("moved to https://crm.example:443
// meanwhile"), whatever the client did, or refused as not url's origin.
func TestHeadersOriginWithOrWithoutTheDefaultPort(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		_, updateAction := keyedWebhook(t, newEnv(t, db), "http://LocalHost:80/hooks", "k1")
		update := func(in models.AutomationActionInput) error {
			_, err := updateAction(in)
			return err
		}
		if err := update(models.AutomationActionInput{Headers: key("k2"), HeadersOrigin: ptr("http://localhost")}); err != nil {
			t.Fatalf("headers for the action's own origin: %v", err)
		}
		if err := update(models.AutomationActionInput{URL: ptr("http://localhost/other"), Headers: key("k3"), HeadersOrigin: ptr("http://localhost:80")}); err != nil {
			t.Fatalf("headersOrigin with url: %v", err)
		}
		// Moving within the origin keeps the headers without giving them again.
		if err := update(models.AutomationActionInput{URL: ptr("http://localhost:80/third")}); err != nil {
			t.Fatalf("a move within the origin: %v", err)
		}
		// Another port is another origin.
		wantCode(t, update(models.AutomationActionInput{Headers: key("k4"), HeadersOrigin: ptr("http://localhost:8080")}), "CONFLICT")
		wantCode(t, update(models.AutomationActionInput{URL: ptr("http://localhost:8080/x")}), "BAD_USER_INPUT")
	})
}

// keyedWebhook makes a rule whose one action is a webhook to url with an
// X-Api-Key header, and answers it with a function that updates that
// action as the app's owner.
func keyedWebhook(t *testing.T, e *env, url, apiKey string) (*models.CreatedRule, func(models.AutomationActionInput) (*models.AutomationAction, error)) {
	t.Helper()
	guard := models.URLGuard{AllowPrivate: true}
	if _, err := models.CreateEventMatcher(e.ctx, e.db, e.app, models.EventMatcherInput{Name: ptr("Demos"), Code: ptr("demo")}); err != nil {
		t.Fatal(err)
	}
	created, err := models.CreateAutomationRuleFor(e.ctx, e.db, e.owner, guard, e.app.PublicID, models.AutomationRuleInput{Name: ptr("CRM"), Matcher: ptr("Demos")},
		[]models.AutomationActionInput{webhookTo(url, models.Header{Name: "X-Api-Key", Value: apiKey})})
	if err != nil {
		t.Fatal(err)
	}
	id := models.FormatID(created.Secrets[0].Action.ID)
	return created, func(in models.AutomationActionInput) (*models.AutomationAction, error) {
		return models.UpdateAutomationActionFor(e.ctx, e.db, e.owner, guard, e.app.PublicID, id, in)
	}
}

// key is an X-Api-Key header of value v.
func key(v string) []models.Header { return []models.Header{{Name: "X-Api-Key", Value: v}} }
