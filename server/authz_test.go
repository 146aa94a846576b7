package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/graph"
	"github.com/crumbs-dev/crumbs/graph/generated"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"github.com/vektah/gqlparser/v2/ast"
	"gorm.io/gorm"
)

// The callers every root field, and every field reachable from it, is
// tried as.
const (
	anon        = "anonymous"             // a visitor's browser: no credentials
	other       = "member of another app" // signed in, owner of app B only
	viewer      = "viewer"
	editor      = "editor"
	owner       = "owner"
	server      = "server"                // app A's secret key
	otherServer = "server of another app" // app B's secret key
)

var callers = []string{anon, other, viewer, editor, owner, server, otherServer}

// expect gives the outcome per caller: an error code, or "" (absent) for success.
type expect map[string]string

const (
	unauth    = "UNAUTHENTICATED"
	notFound  = "NOT_FOUND"
	forbidden = "FORBIDDEN"
)

var (
	publicAuth = expect{}
	browser    = expect{otherServer: unauth}
	signedIn   = expect{anon: unauth, server: unauth, otherServer: unauth}
	readApp    = expect{anon: unauth, other: notFound, otherServer: unauth}
	editApp    = expect{anon: unauth, other: notFound, viewer: forbidden, otherServer: unauth}
	// Root fields that take an object's own id: another app's key is told
	// NOT_FOUND, as for an id that does not exist (TestIDsRevealNothing).
	readByID    = expect{anon: unauth, other: notFound, otherServer: notFound}
	editByID    = expect{anon: unauth, other: notFound, viewer: forbidden, otherServer: notFound}
	ownApp      = expect{anon: unauth, other: notFound, viewer: forbidden, editor: forbidden, server: forbidden, otherServer: unauth}
	editAppUser = expect{anon: unauth, other: notFound, viewer: forbidden, server: unauth, otherServer: unauth}
	ownAppUser  = expect{anon: unauth, other: notFound, viewer: forbidden, editor: forbidden, server: unauth, otherServer: unauth}
	needsKey    = expect{anon: unauth, other: unauth, viewer: unauth, editor: unauth, owner: unauth, otherServer: unauth}
)

// access is who may read a field of an object, wherever the object was
// reached from. Objects are checked by models.Authorize as fields return
// them; the fields a caller may not read make the object answer the code.
type access int

const (
	// anyone who reached the object: payloads, connections, and aggregates
	// (overview numbers, breakdown rows), which only root fields that check
	// the app compute.
	anyone access = iota
	// sentByCaller: what the caller sent itself (identify's device id and
	// app id), readable even by a browser.
	sentByCaller
	// appReader: a viewer, editor or owner of the object's app, or its key.
	appReader
	// appOwner: owners of the object's app.
	appOwner
	// appEditor: editors and owners of the object's app, or its key.
	appEditor
	// userReader: the user, the holder of a session of theirs, owners of an
	// app they are in (models.Authorize's rule for User).
	userReader
)

func (a access) code(caller string) string {
	switch a {
	case appReader:
		return readApp[caller]
	case appOwner:
		return ownApp[caller]
	case appEditor:
		return editApp[caller]
	}
	return ""
}

func classify(groups ...any) map[string]access {
	out := map[string]access{}
	for i := 0; i < len(groups); i += 3 {
		a, typ, fields := groups[i].(access), groups[i+1].(string), groups[i+2].(string)
		for _, f := range strings.Fields(fields) {
			out[typ+"."+f] = a
		}
	}
	return out
}

// fieldAccess classifies every field reachable from a root field.
// TestEveryFieldIsClassified fails when the schema gains one that is not
// here, so whoever adds a field decides who may read it.
var fieldAccess = classify(
	appReader, "App", "id name allowedOrigins timezone secretKeyHint secretKeyRotatedAt retentionDays createdAt updatedAt eventDefinitions unknownCodes refusedOrigins setAsideOrigins viewerRole",
	anyone, "SetAsideOrigin", "entry reason",
	appReader, "UnknownCode", "code count firstSeenAt lastSeenAt suggestion typoOf",
	appReader, "RefusedOrigin", "origin count firstSeenAt lastSeenAt",
	anyone, "AppWithSecret", "app secretKey",
	anyone, "AppKeyCheck", "appId appName keyValid",
	userReader, "User", "id email name createdAt",
	anyone, "Session", "user accessToken accessTokenExpiresAt refreshToken refreshTokenExpiresAt",
	appOwner, "Member", "user role createdAt",
	appOwner, "Invitation", "id appId email role createdAt expiresAt",
	anyone, "AddMemberPayload", "invitation invitationToken",
	appReader, "EventDefinition", "id appId code name color description enabled builtIn triggerCount firstTriggeredAt lastTriggeredAt createdAt updatedAt",
	anyone, "DeletePayload", "id",
	appReader, "Event", "id code definition device lead url referrer title properties source occurredAt receivedAt integration",
	appEditor, "IngestToken", "id name hint createdAt revokedAt",
	anyone, "CreatedIngestToken", "ingestToken token url",
	anyone, "EventEdge", "cursor node",
	anyone, "EventConnection", "edges pageInfo",
	anyone, "PageInfo", "hasNextPage endCursor",
	anyone, "TriggerError", "code message field",
	anyone, "TriggerResult", "accepted duplicate eventId error",
	anyone, "SeriesPoint", "start count",
	anyone, "DefinitionInsight", "definition count uniqueDevices series seriesCounts",
	anyone, "Overview", "from to interval timezone totalEvents uniqueDevices uniqueDevicesExact identifiedLeads newLeads series bucketStarts seriesCounts definitions",
	anyone, "BreakdownRow", "value count uniqueDevices engagement",
	anyone, "DefinitionCount", "definition count",
	anyone, "Rule", "field operator value",
	anyone, "FunnelStep", "code rules entered converted conversionRate overallRate medianSecondsFromPrevious",
	anyone, "FunnelReport", "from to steps",
	appReader, "EventMatcher", "id name code rules createdAt updatedAt",
	appReader, "Goal", "id name startMatcher completionMatcher windowSeconds createdAt updatedAt",
	anyone, "GoalReport", "from to started completed conversionRate medianSecondsToComplete",
	sentByCaller, "Device", "id appId",
	appReader, "Device", "userAgent firstSeenAt lastSeenAt lead timeline",
	appReader, "Lead", "id appId email name fields devices firstSeenAt lastSeenAt eventCount deviceMoves createdAt timeline narrative context",
	appReader, "DeviceMove", "deviceId fromLead toLead movedAt",
	anyone, "LeadEdge", "cursor node",
	anyone, "LeadConnection", "edges pageInfo",
	anyone, "IdentifyPayload", "lead device moved",
	appReader, "AutomationRule", "id name matcher identifiedOnly enabled actions createdAt updatedAt",
	appReader, "AutomationAction", "id kind url headers template enabled disabledReason retiredSecretExpiries previousSecretExpiresAt createdAt updatedAt",
	anyone, "WebhookHeader", "name valueHint",
	anyone, "ActionSecretPayload", "action signingSecret",
	anyone, "CreateAutomationRulePayload", "rule secrets",
	appReader, "Delivery", "id rule action eventId webhookId status attempts replays lastStatusCode lastError lastLatencyMs nextAttemptAt createdAt updatedAt attemptLog",
	appReader, "DeliveryAttempt", "at statusCode latencyMs error",
	anyone, "DeliveryEdge", "cursor node",
	anyone, "DeliveryConnection", "edges pageInfo",
	anyone, "TestRuleResult", "matched scanned truncated samples",
	anyone, "TestDeliveryResult", "webhookId statusCode latencyMs error responseBody",
	anyone, "ReplayRulePayload", "events",
	anyone, "EraseLeadPayload", "erased deletedDevices deletedEvents deletedLeads tombstones receiptId done erasureId failures lastFailureCode lastFailureAt",
	appOwner, "AuditRecord", "id kind actorKind actorUserId subjectHash events devices leads tombstones createdAt",
	anyone, "AuditRecordEdge", "cursor node",
	anyone, "AuditRecordConnection", "edges pageInfo",
)

var uniqueSeq atomic.Int64

func unique(prefix string) string { return fmt.Sprintf("%s%d", prefix, uniqueSeq.Add(1)) }

// Markers: strings of app A (and of its lead) and of app B that must never
// reach a caller who may not read them.
const (
	markerApp       = "Alpha Secret Site"
	markerLead      = "lead-alpha@example.com"
	markerLeadName  = "Alpha Lead Name"
	markerField     = "Alpha Secret Corp"
	markerURL       = "https://a.example/secret-page"
	markerTitle     = "Alpha Secret Title"
	markerProperty  = "alpha-secret-plan"
	markerPriorLead = "lead-prior@example.com"
)

// fixture is app A with a member of each role, app B owned by "other", and
// data in each, so that every field of the walk has something to show.
type fixture struct {
	a                *api
	appA, appB       string
	secretA, secretB string
	ingestToken      string
	tokens           map[string]string
	userIDs          map[string]uint64
	defA, leadA      string
	devA1, devA2     string
	hooks            *httptest.Server // receives app A's automation deliveries
	ruleA, actionA   string
	deliveryA        string
	markersA         []string
	markersB         []string
}

func newFixture(t *testing.T, db *gorm.DB) *fixture {
	// The walk selects every field at once; the limits are for attackers.
	a := newAPI(t, db, func(c *config) {
		c.MaxDepth, c.MaxComplexity = 64, 1<<30
		c.Webhooks.Guard.AllowPrivate = true
	})
	f := &fixture{a: a, tokens: map[string]string{}, userIDs: map[string]uint64{}}
	for _, r := range []string{other, viewer, editor, owner} {
		f.tokens[r] = a.signUp()
		id, err := a.tokenUser(f.tokens[r])
		if err != nil {
			t.Fatal(err)
		}
		f.userIDs[r] = id
	}
	var created createdApp
	a.ok(`mutation($n: String!) { createApp(input: {name: $n}) { app { id } secretKey } }`, &created, client.Var("n", markerApp), as(f.tokens[owner]))
	f.appA, f.secretA = created.CreateApp.App.ID, created.CreateApp.SecretKey
	for _, r := range []string{viewer, editor} {
		f.join(f.appA, f.tokens[owner], f.userIDs[r], r)
	}
	a.ok(`mutation($n: String!) { createApp(input: {name: $n}) { app { id } secretKey } }`, &created, client.Var("n", "Bravo Secret Site"), as(f.tokens[other]))
	f.appB, f.secretB = created.CreateApp.App.ID, created.CreateApp.SecretKey
	f.markersB = []string{f.appB, "Bravo Secret Site", "lead-bravo@example.com", "bravo_code", "https://b.example/bravo-secret"}
	var def struct{ CreateEventDefinition struct{ ID string } }
	a.ok(`mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "bravo_code", name: "Bravo"}) { id } }`, &def, client.Var("a", f.appB), as(f.tokens[other]))
	devB := unique("dev-bravo-")
	f.identify(f.appB, f.secretB, devB, "lead-bravo@example.com", nil)
	f.trigger(f.secretB, f.appB, devB, "bravo_code", "https://b.example/bravo-secret")
	f.trigger(f.secretB, f.appB, devB, "bravo_codx", "https://b.example/bravo-secret")

	a.ok(`mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "alpha_code", name: "Alpha"}) { id } }`, &def, client.Var("a", f.appA), as(f.tokens[owner]))
	f.defA = def.CreateEventDefinition.ID
	// A rule of app A sends its alpha_code events to a receiver.
	f.hooks = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(f.hooks.Close)
	t.Cleanup(func() { deleteRules(t, db, f.ownerV(), f.appA) })
	f.ruleA, f.actionA = f.freshRule()
	// Lead A owns two devices with events; the second came from another lead.
	f.devA1, f.devA2 = unique("dev-alpha-"), unique("dev-alpha-")
	f.identify(f.appA, f.secretA, f.devA2, markerPriorLead, nil)
	f.leadA = f.identify(f.appA, f.secretA, f.devA1, markerLead, map[string]any{"name": markerLeadName, "fields": map[string]any{"company": markerField}})
	f.identify(f.appA, f.secretA, f.devA2, markerLead, nil)
	for _, d := range []string{f.devA1, f.devA2} {
		f.trigger(f.secretA, f.appA, d, "alpha_code", markerURL)
		f.trigger(f.secretA, f.appA, d, "view", markerURL)
	}
	f.trigger(f.secretA, f.appA, f.devA1, "alpha_codx", markerURL) // an unknown code, for the inbox
	// An ingest token, and a webhook event of lead A through it (on the
	// lead's server-side device, with its integration).
	f.freshIngestToken()
	f.webhook(f.ingestToken, "billing", `{"events":[{"type":"alpha_code","email":"`+markerLead+`","details":{"plan":"`+markerProperty+`"}}]}`)
	f.markersA = []string{markerApp, markerLead, markerLeadName, markerField, markerURL, markerTitle, markerProperty, markerPriorLead, "alpha_code", f.devA1, f.devA2}
	ctx := context.Background()
	// A refused origin of each app, as the writer counts a browser of a
	// mistyped origin.
	for publicID, origin := range map[string]string{f.appA: "https://typo.example", f.appB: "https://bravo-typo.example"} {
		if app, err := models.AppByPublicID(ctx, db, publicID); err != nil {
			t.Fatal(err)
		} else if err := db.Create(&models.RefusedOrigin{AppID: app.ID, Origin: origin, Count: 1, FirstSeenAt: models.Now(), LastSeenAt: models.Now()}).Error; err != nil {
			t.Fatal(err)
		}
	}
	// Allowed-origin entries set aside by the upgrade that normalised the
	// saved lists, beside the origin the browser callers send.
	if err := db.Model(&models.App{}).Where("public_id IN ?", []string{f.appA, f.appB}).Updates(map[string]any{
		"allowed_origins": models.StringList{"https://site.example"}, "set_aside_origins": models.StringList{"https://*.site.example"},
	}).Error; err != nil {
		t.Fatal(err)
	}
	ownerV := models.Viewer{UserID: f.userIDs[owner]}
	if _, err := models.AddMember(ctx, db, ownerV, f.appA, "pending-invitee@example.com", models.RoleViewer); err != nil {
		t.Fatal(err)
	}
	f.freshGoal()
	f.waitForBreakdown()
	f.waitForDelivery()
	return f
}

// freshRule makes a rule of app A on alpha_code with a webhook action and
// returns the ids of both.
func (f *fixture) freshRule() (rule, action string) {
	created, err := models.CreateAutomationRuleFor(context.Background(), f.a.db, f.ownerV(), models.URLGuard{AllowPrivate: true}, f.appA,
		models.AutomationRuleInput{Name: ptrTo(unique("rule ")), Matcher: ptrTo(f.freshMatcherName()), Enabled: ptrTo(true)},
		[]models.AutomationActionInput{{Kind: ptrTo(models.ActionWebhook), URL: ptrTo(f.hooks.URL + "/crm"),
			Headers: []models.Header{{Name: "X-Api-Key", Value: markerHeader}}}})
	if err != nil {
		f.a.t.Fatal(err)
	}
	return models.FormatID(created.Rule.ID), models.FormatID(created.Secrets[0].Action.ID)
}

// deleteRules deletes the app's automation rules and so their delivery
// logs: the suites share one MySQL database, and deliveries left to retry
// against a receiver that is gone would write during other tests.
func deleteRules(t *testing.T, db *gorm.DB, v models.Viewer, appID string) {
	ctx := context.Background()
	rules, err := models.AutomationRulesFor(ctx, db, v, appID)
	if err != nil {
		t.Error(err)
		return
	}
	for _, r := range rules {
		if _, err := models.DeleteAutomationRuleFor(ctx, db, v, appID, models.FormatID(r.ID)); err != nil {
			t.Error(err)
		}
	}
}

// waitForDelivery waits until app A's rule has delivered an event, so the
// delivery log has a delivery with an attempt.
func (f *fixture) waitForDelivery() {
	for range 200 {
		page, err := models.DeliveriesFor(context.Background(), f.a.db, f.ownerV(), f.appA, models.DeliveriesInput{Status: models.DeliverySucceeded, First: 1})
		if err == nil && len(page.Deliveries) > 0 {
			f.deliveryA = models.FormatID(page.Deliveries[0].ID)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.a.t.Fatal("app A's rule never delivered the fixture's events")
}

// signInAgain gives every role a new access token, after an operation
// ended their sign-ins.
func (f *fixture) signInAgain() {
	for _, r := range []string{other, viewer, editor, owner} {
		var out struct{ Login struct{ AccessToken string } }
		f.a.ok(`mutation($e: String!) { login(email: $e, password: "correct horse battery") { accessToken } }`, &out,
			client.Var("e", f.a.emailOf(f.userIDs[r])), anonymous())
		f.tokens[r] = out.Login.AccessToken
	}
}

// join invites the user into app and accepts with the user's password.
func (f *fixture) join(appID, ownerToken string, userID uint64, role string) {
	var inv struct {
		AddMember struct{ InvitationToken string }
	}
	f.a.ok(`mutation($a: ID!, $e: String!, $r: Role!) { addMember(appId: $a, email: $e, role: $r) { invitationToken } }`, &inv,
		client.Var("a", appID), client.Var("e", f.a.emailOf(userID)), client.Var("r", role), as(ownerToken))
	f.a.ok(`mutation($t: String!) { acceptInvitation(token: $t, password: "correct horse battery") { accessToken } }`, &map[string]any{},
		client.Var("t", inv.AddMember.InvitationToken), anonymous())
}

// identify attaches a device to a lead with the app's secret key and returns the lead's id.
func (f *fixture) identify(appID, secret, device, email string, extra map[string]any) string {
	in := map[string]any{"appId": appID, "deviceId": device, "email": email}
	for k, v := range extra {
		in[k] = v
	}
	var out struct {
		Identify struct{ Lead struct{ ID string } }
	}
	f.a.ok(`mutation($in: IdentifyInput!) { identify(input: $in) { lead { id } } }`, &out, client.Var("in", in), as(secret))
	return out.Identify.Lead.ID
}

func (f *fixture) trigger(secret, appID, device, code, url string) {
	f.a.do(`mutation($in: TriggerInput!) { trigger(input: $in) { accepted } }`, client.Var("in", map[string]any{
		"appId": appID, "deviceId": device, "code": code, "url": url, "referrer": "https://ref.example/", "title": markerTitle,
		"properties": map[string]any{"plan": markerProperty},
	}), as(secret))
}

// waitForBreakdown waits until the pages breakdown shows the fixture's
// events, in case rollups are derived after the acknowledgement.
func (f *fixture) waitForBreakdown() {
	for range 100 {
		data, _ := f.a.do(`query($a: ID!, $r: RangeInput!) { breakdown(appId: $a, range: $r, by: pages) { engagement { count } } }`,
			client.Var("a", f.appA), client.Var("r", lastWeek()), as(f.tokens[owner]))
		if rows, _ := data["breakdown"].([]any); len(rows) > 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.a.t.Fatal("the pages breakdown never showed the fixture's events")
}

func (a *api) tokenUser(token string) (uint64, error) {
	var me struct{ Me struct{ ID string } }
	a.ok(`{ me { id } }`, &me, as(token))
	return models.ParseID("id", me.Me.ID)
}

func (a *api) emailOf(userID uint64) string {
	u, err := models.UserByID(context.Background(), a.db, userID)
	if err != nil {
		a.t.Fatal(err)
	}
	return u.Email
}

// credentials returns the request option that makes a request as caller.
func (f *fixture) credentials(caller string) client.Option {
	switch caller {
	case anon:
		return anonymous()
	case server:
		return as(f.secretA)
	case otherServer:
		return as(f.secretB)
	}
	return as(f.tokens[caller])
}

func (f *fixture) bearer(caller string) string {
	switch caller {
	case anon:
		return ""
	case server:
		return "Bearer " + f.secretA
	case otherServer:
		return "Bearer " + f.secretB
	}
	return "Bearer " + f.tokens[caller]
}

// markerHeader is the value of a custom webhook header of app A, which
// nobody may read back after saving it.
const markerHeader = "alpha-crm-key-123"

// forbiddenMarkers are the strings caller must never receive.
func (f *fixture) forbiddenMarkers(caller string) []string {
	switch caller {
	case anon:
		return append(slices.Clone(f.markersA), append(f.markersB, markerHeader)...)
	case other, otherServer:
		return append(slices.Clone(f.markersA), markerHeader)
	}
	return append(slices.Clone(f.markersB), markerHeader)
}

// operation is one root field: its expected outcome per caller, and its
// document with %s where the walk's selection set goes.
type operation struct {
	want expect
	doc  func(f *fixture) (string, map[string]any)
	// after sees the data of a successful attempt (to follow a rotated key).
	after func(f *fixture, data map[string]any)
	// readsAs names, for callers that reach objects of their own app rather
	// than app A's, the role they have in it.
	readsAs map[string]string
}

// operations lists every root field of the schema. TestEveryFieldIsClassified
// fails when the schema gains one that is not here.
var operations = map[string]operation{
	"Query.apps":        {want: signedIn, doc: fixed(`{ apps %s }`), readsAs: map[string]string{other: owner}},
	"Query.me":          {want: signedIn, doc: fixed(`{ me %s }`)},
	"Query.app":         {want: readApp, doc: withApp(`query($a: ID!) { app(id: $a) %s }`)},
	"Query.checkAppKey": {want: needsKey, doc: withApp(`query($a: ID!) { checkAppKey(appId: $a) %s }`)},
	"Query.eventDefinition": {want: readByID, doc: func(f *fixture) (string, map[string]any) {
		return `query($id: ID!) { eventDefinition(id: $id) %s }`, map[string]any{"id": f.defA}
	}},
	"Query.lead": {want: readByID, doc: func(f *fixture) (string, map[string]any) {
		return `query($id: ID!) { lead(id: $id) %s }`, map[string]any{"id": f.leadA}
	}},
	"Query.device": {want: readApp, doc: func(f *fixture) (string, map[string]any) {
		return `query($a: ID!, $d: ID!) { device(appId: $a, deviceId: $d) %s }`, map[string]any{"a": f.appA, "d": f.devA2}
	}},
	"Query.leads": {want: readApp, doc: func(f *fixture) (string, map[string]any) {
		return `query($a: ID!, $s: String) { leads(appId: $a, search: $s) %s }`, map[string]any{"a": f.appA, "s": markerLead}
	}},
	"Query.leadByEmail": {want: readApp, doc: func(f *fixture) (string, map[string]any) {
		return `query($a: ID!, $e: String!) { leadByEmail(appId: $a, email: $e) %s }`, map[string]any{"a": f.appA, "e": markerLead}
	}},
	"Query.members":     {want: ownApp, doc: withApp(`query($a: ID!) { members(appId: $a) %s }`)},
	"Query.invitations": {want: ownApp, doc: withApp(`query($a: ID!) { invitations(appId: $a) %s }`)},
	"Query.overview": {want: readApp, doc: func(f *fixture) (string, map[string]any) {
		return `query($a: ID!, $r: RangeInput!) { overview(appId: $a, range: $r) %s }`, map[string]any{"a": f.appA, "r": lastWeek()}
	}},
	"Query.breakdown": {want: readApp, doc: func(f *fixture) (string, map[string]any) {
		return `query($a: ID!, $r: RangeInput!) { breakdown(appId: $a, range: $r, by: pages) %s }`, map[string]any{"a": f.appA, "r": lastWeek()}
	}},
	"Query.funnel": {want: readApp, doc: func(f *fixture) (string, map[string]any) {
		return `query($a: ID!, $r: RangeInput!) { funnel(input: {appId: $a, range: $r, windowSeconds: 3600,
			steps: [{code: "alpha_code", rules: [{field: "url", operator: contains, value: "secret"}]}, {code: "view"}]}) %s }`, map[string]any{"a": f.appA, "r": lastWeek()}
	}},
	"Query.events": {want: readApp, doc: func(f *fixture) (string, map[string]any) {
		return `query($a: ID!) { events(appId: $a, rules: [{field: "code", operator: equals, value: "alpha_code"}]) %s }`, map[string]any{"a": f.appA}
	}},
	"Query.eventMatchers": {want: readApp, doc: withApp(`query($a: ID!) { eventMatchers(appId: $a) %s }`)},
	"Query.goals":         {want: readApp, doc: withApp(`query($a: ID!) { goals(appId: $a) %s }`)},
	"Query.goalReport": {want: readApp, doc: func(f *fixture) (string, map[string]any) {
		return `query($a: ID!, $g: ID!, $r: RangeInput!) { goalReport(appId: $a, goalId: $g, range: $r) %s }`, map[string]any{"a": f.appA, "g": f.freshGoal(), "r": lastWeek()}
	}},
	"Mutation.createApp": {want: signedIn, doc: fixed(`mutation { createApp(input: {name: "Another"}) %s }`),
		readsAs: map[string]string{other: owner, viewer: owner, editor: owner}},
	"Mutation.updateApp": {want: ownApp, doc: withApp(`mutation($a: ID!) { updateApp(id: $a, input: {name: "Alpha Secret Site"}) %s }`)},
	"Mutation.rotateAppSecret": {want: ownAppUser, doc: withApp(`mutation($a: ID!) { rotateAppSecret(id: $a) %s }`),
		after: func(f *fixture, data map[string]any) {
			f.secretA = data["rotateAppSecret"].(map[string]any)["secretKey"].(string)
		}},
	// A wrong password: the access check comes first, and nothing is
	// deleted (TestDeleteApp deletes).
	"Mutation.deleteApp": {want: expect{anon: unauth, other: notFound, viewer: forbidden, editor: forbidden, owner: "BAD_USER_INPUT",
		server: unauth, otherServer: unauth},
		doc: withApp(`mutation($a: ID!) { deleteApp(appId: $a, password: "not the password") %s }`)},
	"Mutation.createEventDefinition": {want: editApp, doc: func(f *fixture) (string, map[string]any) {
		return `mutation($a: ID!, $c: String!) { createEventDefinition(input: {appId: $a, code: $c, name: "New"}) %s }`, map[string]any{"a": f.appA, "c": unique("code_")}
	}},
	"Mutation.updateEventDefinition": {want: editByID, doc: func(f *fixture) (string, map[string]any) {
		return `mutation($id: ID!) { updateEventDefinition(id: $id, input: {name: "Alpha"}) %s }`, map[string]any{"id": f.defA}
	}},
	"Mutation.deleteEventDefinition": {want: editByID, doc: func(f *fixture) (string, map[string]any) {
		def, err := models.CreateEventDefinition(context.Background(), f.a.db, models.Viewer{UserID: f.userIDs[owner]}, f.appA,
			models.EventDefinitionInput{Code: ptrTo(unique("gone_")), Name: ptrTo("Gone")})
		if err != nil {
			f.a.t.Fatal(err)
		}
		return `mutation($id: ID!) { deleteEventDefinition(id: $id) %s }`, map[string]any{"id": models.FormatID(def.ID)}
	}},
	"Mutation.trigger": {want: browser, doc: func(f *fixture) (string, map[string]any) {
		return `mutation($a: ID!) { trigger(input: {appId: $a, deviceId: "d-trigger", code: "view"}) %s }`, map[string]any{"a": f.appA}
	}},
	"Mutation.triggerBatch": {want: expect{}, doc: func(f *fixture) (string, map[string]any) {
		// The second item is refused, so every caller sees an item's error.
		return `mutation($a: ID!) { triggerBatch(inputs: [{appId: $a, deviceId: "d-batch", code: "view"}, {appId: $a, deviceId: "d-batch", code: "nope"}]) %s }`, map[string]any{"a": f.appA}
	}},
	// A browser identifies a fresh device with the email of app A's lead:
	// the answer must hold nothing about that lead.
	"Mutation.identify": {want: browser, doc: func(f *fixture) (string, map[string]any) {
		return `mutation($a: ID!, $d: String!, $e: String!) { identify(input: {appId: $a, deviceId: $d, email: $e}) %s }`,
			map[string]any{"a": f.appA, "d": unique("d-ident-"), "e": markerLead}
	}},
	"Query.ingestTokens": {want: editApp, doc: withApp(`query($a: ID!) { ingestTokens(appId: $a) %s }`)},
	// Ingest tokens are credentials: signed-in owners and editors only.
	"Mutation.createIngestToken": {want: editAppUser, doc: func(f *fixture) (string, map[string]any) {
		return `mutation($a: ID!, $n: String!) { createIngestToken(appId: $a, name: $n) %s }`, map[string]any{"a": f.appA, "n": unique("Zapier ")}
	}},
	"Mutation.revokeIngestToken": {want: editAppUser, doc: func(f *fixture) (string, map[string]any) {
		return `mutation($id: ID!) { revokeIngestToken(id: $id) %s }`, map[string]any{"id": f.freshIngestToken()}
	}},
	"Mutation.eraseLead": {want: editApp, doc: func(f *fixture) (string, map[string]any) {
		email := unique("erase") + "@example.com"
		f.identify(f.appA, f.secretA, unique("d-erase-"), email, nil)
		return `mutation($a: ID!, $e: String!) { eraseLead(appId: $a, email: $e) %s }`, map[string]any{"a": f.appA, "e": email}
	}},
	"Mutation.eraseDevice": {want: editApp, doc: func(f *fixture) (string, map[string]any) {
		device := unique("d-erase-device-")
		f.identify(f.appA, f.secretA, device, unique("erase-device")+"@example.com", nil)
		return `mutation($a: ID!, $d: ID!) { eraseDevice(appId: $a, deviceId: $d) %s }`, map[string]any{"a": f.appA, "d": device}
	}},
	// Long before the fixture's data: nothing is erased, a receipt is written.
	"Mutation.eraseBefore": {want: ownApp, doc: func(f *fixture) (string, map[string]any) {
		return `mutation($a: ID!) { eraseBefore(appId: $a, before: "2001-01-01T00:00:00Z") %s }`, map[string]any{"a": f.appA}
	}},
	// The receipt of an erasure is there to read.
	// An erasure of a device: whoever may erase a device may follow it.
	"Query.erasure": {want: editApp, doc: func(f *fixture) (string, map[string]any) {
		device := unique("d-erasure-")
		f.identify(f.appA, f.secretA, device, unique("erasure")+"@example.com", nil)
		res, err := models.EraseDevice(context.Background(), f.a.db, models.Viewer{UserID: f.userIDs[owner]}, f.appA, device)
		if err != nil {
			f.a.t.Fatal(err)
		}
		return `query($a: ID!, $id: ID!) { erasure(appId: $a, id: $id) %s }`, map[string]any{"a": f.appA, "id": models.FormatID(res.ErasureID)}
	}},
	"Query.auditLog": {want: ownApp, doc: func(f *fixture) (string, map[string]any) {
		device := unique("d-audit-")
		f.identify(f.appA, f.secretA, device, unique("audit")+"@example.com", nil)
		if _, err := models.EraseDevice(context.Background(), f.a.db, models.Viewer{UserID: f.userIDs[owner]}, f.appA, device); err != nil {
			f.a.t.Fatal(err)
		}
		return `query($a: ID!) { auditLog(appId: $a) %s }`, map[string]any{"a": f.appA}
	}},
	"Mutation.login": {want: publicAuth, doc: func(f *fixture) (string, map[string]any) {
		email := unique("login") + "@example.com"
		models.CreateUser(context.Background(), f.a.db, email, "", "correct horse battery")
		return `mutation($e: String!) { login(email: $e, password: "correct horse battery") %s }`, map[string]any{"e": email}
	}},
	"Mutation.refreshToken": {want: publicAuth, doc: func(f *fixture) (string, map[string]any) {
		return `mutation($r: String!) { refreshToken(refreshToken: $r) %s }`, map[string]any{"r": f.freshRefreshToken()}
	}},
	"Mutation.logout": {want: publicAuth, doc: func(f *fixture) (string, map[string]any) {
		return `mutation($r: String!) { logout(refreshToken: $r) %s }`, map[string]any{"r": f.freshRefreshToken()}
	}},
	// Ends every sign-in of the caller; after signs the fixture in again.
	"Mutation.logoutEverywhere": {want: signedIn, doc: fixed(`mutation { logoutEverywhere %s }`),
		after: func(f *fixture, _ map[string]any) { f.signInAgain() }},
	// A wrong current password: the access check comes first, and no
	// sign-in of the fixture ends.
	"Mutation.changePassword": {want: expect{anon: unauth, server: unauth, otherServer: unauth,
		other: "BAD_USER_INPUT", viewer: "BAD_USER_INPUT", editor: "BAD_USER_INPUT", owner: "BAD_USER_INPUT"},
		doc: fixed(`mutation { changePassword(currentPassword: "not the password", newPassword: "another good password") %s }`)},
	// A wrong password: the access check comes first, and nothing is
	// deleted (TestDeleteAccount deletes).
	"Mutation.deleteAccount": {want: expect{anon: unauth, server: unauth, otherServer: unauth,
		other: "BAD_USER_INPUT", viewer: "BAD_USER_INPUT", editor: "BAD_USER_INPUT", owner: "BAD_USER_INPUT"},
		doc: fixed(`mutation { deleteAccount(password: "not the password") %s }`)},
	"Mutation.acceptInvitation": {want: publicAuth, doc: func(f *fixture) (string, map[string]any) {
		res, err := models.AddMember(context.Background(), f.a.db, models.Viewer{UserID: f.userIDs[owner]}, f.appA, unique("invitee")+"@example.com", models.RoleViewer)
		if err != nil {
			f.a.t.Fatal(err)
		}
		return `mutation($t: String!) { acceptInvitation(token: $t, password: "correct horse battery") %s }`, map[string]any{"t": res.Token}
	}},
	"Mutation.addMember": {want: ownApp, doc: func(f *fixture) (string, map[string]any) {
		return `mutation($a: ID!, $e: String!) { addMember(appId: $a, email: $e, role: viewer) %s }`, map[string]any{"a": f.appA, "e": unique("new") + "@example.com"}
	}},
	"Mutation.revokeInvitation": {want: ownApp, doc: func(f *fixture) (string, map[string]any) {
		res, err := models.AddMember(context.Background(), f.a.db, models.Viewer{UserID: f.userIDs[owner]}, f.appA, unique("revoked")+"@example.com", models.RoleEditor)
		if err != nil {
			f.a.t.Fatal(err)
		}
		return `mutation($a: ID!, $id: ID!) { revokeInvitation(appId: $a, id: $id) %s }`, map[string]any{"a": f.appA, "id": models.FormatID(res.Invitation.ID)}
	}},
	"Mutation.setMemberRole": {want: ownApp, doc: func(f *fixture) (string, map[string]any) {
		return `mutation($a: ID!, $u: ID!) { setMemberRole(appId: $a, userId: $u, role: editor) %s }`, map[string]any{"a": f.appA, "u": f.freshMember()}
	}},
	"Mutation.removeMember": {want: ownApp, doc: func(f *fixture) (string, map[string]any) {
		return `mutation($a: ID!, $u: ID!) { removeMember(appId: $a, userId: $u) %s }`, map[string]any{"a": f.appA, "u": f.freshMember()}
	}},
	"Mutation.markUnknownCodeTypo": {want: editApp, doc: withApp(`mutation($a: ID!) { markUnknownCodeTypo(appId: $a, code: "alpha_codx", typoOf: "alpha_code") %s }`)},
	"Mutation.createEventMatcher": {want: editApp, doc: func(f *fixture) (string, map[string]any) {
		return `mutation($a: ID!, $n: String!) { createEventMatcher(appId: $a, input: {name: $n, code: "view", rules: [{field: "url", operator: contains, value: "x"}]}) %s }`,
			map[string]any{"a": f.appA, "n": unique("matcher ")}
	}},
	"Mutation.updateEventMatcher": {want: editApp, doc: func(f *fixture) (string, map[string]any) {
		return `mutation($a: ID!, $id: ID!) { updateEventMatcher(appId: $a, id: $id, input: {code: "click"}) %s }`, map[string]any{"a": f.appA, "id": f.freshMatcher()}
	}},
	"Mutation.deleteEventMatcher": {want: editApp, doc: func(f *fixture) (string, map[string]any) {
		return `mutation($a: ID!, $id: ID!) { deleteEventMatcher(appId: $a, id: $id) %s }`, map[string]any{"a": f.appA, "id": f.freshMatcher()}
	}},
	"Mutation.createGoal": {want: editApp, doc: func(f *fixture) (string, map[string]any) {
		return `mutation($a: ID!, $n: String!, $s: String!, $c: String!) { createGoal(appId: $a, input: {name: $n, startMatcher: $s, completionMatcher: $c}) %s }`,
			map[string]any{"a": f.appA, "n": unique("goal "), "s": f.freshMatcherName(), "c": f.freshMatcherName()}
	}},
	"Mutation.updateGoal": {want: editApp, doc: func(f *fixture) (string, map[string]any) {
		return `mutation($a: ID!, $id: ID!) { updateGoal(appId: $a, id: $id, input: {windowSeconds: 7200}) %s }`, map[string]any{"a": f.appA, "id": f.freshGoal()}
	}},
	"Mutation.deleteGoal": {want: editApp, doc: func(f *fixture) (string, map[string]any) {
		return `mutation($a: ID!, $id: ID!) { deleteGoal(appId: $a, id: $id) %s }`, map[string]any{"a": f.appA, "id": f.freshGoal()}
	}},
	"Query.liveCursor": {want: readApp, doc: withApp(`query($a: ID!) { liveCursor(appId: $a) %s }`)},
	// With a cursor, so that the matrix covers the argument too (without
	// one the stream takes its own position, as ws_test.go's do).
	"Subscription.eventStored": {want: readApp, doc: func(f *fixture) (string, map[string]any) {
		pos, err := models.LivePosition(context.Background(), f.a.db)
		if err != nil {
			f.a.t.Fatal(err)
		}
		return `subscription($a: ID!, $after: String) { eventStored(appId: $a, after: $after) %s }`, map[string]any{"a": f.appA, "after": models.FormatID(pos)}
	}},
	"Query.automationRules": {want: readApp, doc: withApp(`query($a: ID!) { automationRules(appId: $a) %s }`)},
	"Query.automationRule": {want: readApp, doc: func(f *fixture) (string, map[string]any) {
		return `query($a: ID!, $id: ID!) { automationRule(appId: $a, id: $id) %s }`, map[string]any{"a": f.appA, "id": f.ruleA}
	}},
	"Query.deliveries": {want: readApp, doc: func(f *fixture) (string, map[string]any) {
		return `query($a: ID!, $r: ID!) { deliveries(appId: $a, ruleId: $r) %s }`, map[string]any{"a": f.appA, "r": f.ruleA}
	}},
	"Query.testRule": {want: readApp, doc: func(f *fixture) (string, map[string]any) {
		return `query($a: ID!, $m: String!, $r: RangeInput!) { testRule(appId: $a, input: {matcher: $m}, range: $r) %s }`,
			map[string]any{"a": f.appA, "m": f.freshMatcherName(), "r": lastWeek()}
	}},
	"Mutation.createAutomationRule": {want: editApp, doc: func(f *fixture) (string, map[string]any) {
		return `mutation($a: ID!, $n: String!, $m: String!, $u: String!, $k: String!) { createAutomationRule(appId: $a, input: {name: $n, matcher: $m,
			actions: [{kind: webhook, url: $u, headers: [{name: "X-Api-Key", value: $k}]}]}) %s }`,
			map[string]any{"a": f.appA, "n": unique("rule "), "m": f.freshMatcherName(), "u": f.hooks.URL, "k": markerHeader}
	}},
	"Mutation.updateAutomationRule": {want: editApp, doc: func(f *fixture) (string, map[string]any) {
		rule, _ := f.freshRule()
		return `mutation($a: ID!, $id: ID!) { updateAutomationRule(appId: $a, id: $id, input: {enabled: false}) %s }`, map[string]any{"a": f.appA, "id": rule}
	}},
	"Mutation.deleteAutomationRule": {want: editApp, doc: func(f *fixture) (string, map[string]any) {
		rule, _ := f.freshRule()
		return `mutation($a: ID!, $id: ID!) { deleteAutomationRule(appId: $a, id: $id) %s }`, map[string]any{"a": f.appA, "id": rule}
	}},
	"Mutation.addAutomationAction": {want: editApp, doc: func(f *fixture) (string, map[string]any) {
		rule, _ := f.freshRule()
		return `mutation($a: ID!, $r: ID!, $u: String!) { addAutomationAction(appId: $a, ruleId: $r, input: {kind: webhook, url: $u}) %s }`,
			map[string]any{"a": f.appA, "r": rule, "u": f.hooks.URL}
	}},
	"Mutation.updateAutomationAction": {want: editApp, doc: func(f *fixture) (string, map[string]any) {
		_, action := f.freshRule()
		return `mutation($a: ID!, $id: ID!) { updateAutomationAction(appId: $a, id: $id, input: {enabled: true}) %s }`, map[string]any{"a": f.appA, "id": action}
	}},
	"Mutation.deleteAutomationAction": {want: editApp, doc: func(f *fixture) (string, map[string]any) {
		_, action := f.freshRule()
		return `mutation($a: ID!, $id: ID!) { deleteAutomationAction(appId: $a, id: $id) %s }`, map[string]any{"a": f.appA, "id": action}
	}},
	"Mutation.rotateActionSecret": {want: editApp, doc: func(f *fixture) (string, map[string]any) {
		_, action := f.freshRule()
		return `mutation($a: ID!, $id: ID!) { rotateActionSecret(appId: $a, id: $id) %s }`, map[string]any{"a": f.appA, "id": action}
	}},
	"Mutation.replayDelivery": {want: editApp, doc: func(f *fixture) (string, map[string]any) {
		return `mutation($a: ID!, $id: ID!) { replayDelivery(appId: $a, id: $id) %s }`, map[string]any{"a": f.appA, "id": f.deliveryA}
	}},
	"Mutation.replayRule": {want: editApp, doc: func(f *fixture) (string, map[string]any) {
		return `mutation($a: ID!, $r: ID!, $range: RangeInput!) { replayRule(appId: $a, ruleId: $r, range: $range) %s }`,
			map[string]any{"a": f.appA, "r": f.ruleA, "range": lastWeek()}
	}},
	"Mutation.sendTestDelivery": {want: editApp, doc: func(f *fixture) (string, map[string]any) {
		return `mutation($a: ID!, $id: ID!) { sendTestDelivery(appId: $a, actionId: $id) %s }`, map[string]any{"a": f.appA, "id": f.actionA}
	}},
}

func fixed(doc string) func(*fixture) (string, map[string]any) {
	return func(*fixture) (string, map[string]any) { return doc, nil }
}

func withApp(doc string) func(*fixture) (string, map[string]any) {
	return func(f *fixture) (string, map[string]any) { return doc, map[string]any{"a": f.appA} }
}

func ptrTo[T any](v T) *T { return &v }

func lastWeek() map[string]any {
	now := time.Now().UTC()
	return map[string]any{"from": now.Add(-7 * 24 * time.Hour).Format(time.RFC3339), "to": now.Add(time.Hour).Format(time.RFC3339), "interval": "day"}
}

func (f *fixture) ownerV() models.Viewer { return models.Viewer{UserID: f.userIDs[owner]} }

func (f *fixture) freshMatcherName() string {
	name := unique("matcher ")
	_, err := models.CreateEventMatcherFor(context.Background(), f.a.db, f.ownerV(), f.appA, models.EventMatcherInput{
		Name: &name, Code: ptrTo("alpha_code"), Rules: []models.Rule{{Field: "url", Operator: "contains", Value: "secret"}},
	})
	if err != nil {
		f.a.t.Fatal(err)
	}
	return name
}

func (f *fixture) freshMatcher() string {
	name := f.freshMatcherName()
	matchers, err := models.EventMatchersFor(context.Background(), f.a.db, f.ownerV(), f.appA)
	if err != nil {
		f.a.t.Fatal(err)
	}
	for _, m := range matchers {
		if m.Name == name {
			return models.FormatID(m.ID)
		}
	}
	f.a.t.Fatalf("matcher %q not stored", name)
	return ""
}

func (f *fixture) freshGoal() string {
	start, done, name := f.freshMatcherName(), f.freshMatcherName(), unique("goal ")
	g, err := models.CreateGoalFor(context.Background(), f.a.db, f.ownerV(), f.appA, models.GoalInput{Name: &name, StartMatcher: &start, CompletionMatcher: &done})
	if err != nil {
		f.a.t.Fatal(err)
	}
	return models.FormatID(g.ID)
}

func (f *fixture) freshRefreshToken() string {
	email := unique("session") + "@example.com"
	models.CreateUser(context.Background(), f.a.db, email, "", "correct horse battery")
	var out struct{ Login struct{ RefreshToken string } }
	f.a.ok(`mutation($e: String!) { login(email: $e, password: "correct horse battery") { refreshToken } }`, &out, client.Var("e", email), anonymous())
	return out.Login.RefreshToken
}

// freshMember makes a new user a viewer of app A (invited, accepted) and
// returns its id.
func (f *fixture) freshMember() string {
	u, err := models.CreateUser(context.Background(), f.a.db, unique("member")+"@example.com", "", "correct horse battery")
	if err != nil {
		f.a.t.Fatal(err)
	}
	f.join(f.appA, f.tokens[owner], u.ID, viewer)
	return models.FormatID(u.ID)
}

// node is one field of a walk: the type it belongs to, its name, its
// arguments and, for object types, the fields selected of it.
type node struct {
	typ, field, args string
	object           string // the field's object type, "" for scalars and enums
	sel              []*node
}

func (n *node) key() string { return n.typ + "." + n.field }

// walk selects every field reachable from the root field rootType.name,
// each Type.field once, at its shallowest depth (breadth first).
func walk(schema *ast.Schema, rootType, name string) (*node, error) {
	def := schema.Types[rootType].Fields.ForName(name)
	root := &node{typ: rootType, field: name, object: objectType(schema, def.Type)}
	seen := map[string]bool{}
	for queue := []*node{root}; len(queue) > 0; queue = queue[1:] {
		n := queue[0]
		if n.object == "" {
			continue
		}
		for _, fd := range schema.Types[n.object].Fields {
			if strings.HasPrefix(fd.Name, "__") || seen[n.object+"."+fd.Name] {
				continue
			}
			seen[n.object+"."+fd.Name] = true
			c := &node{typ: n.object, field: fd.Name, object: objectType(schema, fd.Type)}
			for _, arg := range fd.Arguments {
				switch {
				case arg.Name == "first":
					c.args = "(first: 3)"
				case arg.Type.NonNull && arg.DefaultValue == nil:
					return nil, fmt.Errorf("%s.%s needs argument %s: teach walk() a value for it", n.object, fd.Name, arg.Name)
				}
			}
			n.sel = append(n.sel, c)
			queue = append(queue, c)
		}
	}
	return root, nil
}

func objectType(schema *ast.Schema, t *ast.Type) string {
	if def := schema.Types[t.Name()]; def != nil && def.Kind == ast.Object {
		return def.Name
	}
	return ""
}

// selection renders the selection set of n ("" for a scalar field).
func (n *node) selection() string {
	if n.object == "" {
		return ""
	}
	var b strings.Builder
	b.WriteString("{")
	if len(n.sel) == 0 {
		b.WriteString(" __typename")
	}
	for _, c := range n.sel {
		b.WriteString(" " + c.field + c.args + c.selection())
	}
	b.WriteString(" }")
	return b.String()
}

// readable returns the part of the walk caller may read, and, for each
// field the caller may not read although it may read its parent, the path
// to it (the probes).
func (n *node) readable(caller string) (*node, [][]*node) {
	out := *n
	out.sel = nil
	var probes [][]*node
	for _, c := range n.sel {
		if fieldAccess[c.key()].code(caller) != "" {
			leaf := *c
			leaf.sel = nil
			probes = append(probes, []*node{&leaf})
			continue
		}
		sub, subProbes := c.readable(caller)
		out.sel = append(out.sel, sub)
		for _, p := range subProbes {
			probes = append(probes, append([]*node{c}, p...))
		}
	}
	return &out, probes
}

// chain is the walk reduced to one path from the root to its last node.
func chain(root *node, path []*node) *node {
	out := *root
	out.sel = nil
	cur := &out
	for _, p := range path {
		c := *p
		c.sel = nil
		cur.sel = []*node{&c}
		cur = &c
	}
	return &out
}

// present reports whether data holds the field at path (names from the
// root field down), somewhere through its lists; nonNull asks for a value.
func present(data any, path []string, nonNull bool) bool {
	switch d := data.(type) {
	case []any:
		for _, e := range d {
			if present(e, path, nonNull) {
				return true
			}
		}
		return false
	case map[string]any:
		v, ok := d[path[0]]
		if !ok {
			return false
		}
		if len(path) == 1 {
			return !nonNull || v != nil
		}
		return present(v, path[1:], nonNull)
	}
	return false
}

// fieldsUnder lists n and every node below it with its path from the root.
func fieldsUnder(n *node, path []string, visit func(*node, []string)) {
	path = append(slices.Clone(path), n.field)
	visit(n, path)
	for _, c := range n.sel {
		fieldsUnder(c, path, visit)
	}
}

func schema() *ast.Schema {
	return generated.NewExecutableSchema(generated.Config{Resolvers: &graph.Resolver{}}).Schema()
}

// rootFields lists "Query.x", "Mutation.y" and "Subscription.z".
func rootFields(s *ast.Schema) []string {
	var out []string
	for _, root := range []*ast.Definition{s.Query, s.Mutation, s.Subscription} {
		if root == nil {
			continue
		}
		for _, f := range root.Fields {
			if !strings.HasPrefix(f.Name, "__") {
				out = append(out, root.Name+"."+f.Name)
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestEveryFieldIsClassified(t *testing.T) {
	s := schema()
	var missing []string
	reached := map[string]bool{}
	for _, name := range rootFields(s) {
		if _, ok := operations[name]; !ok {
			missing = append(missing, name+" (root field: add it to operations)")
		}
		typ, field, _ := strings.Cut(name, ".")
		root, err := walk(s, typ, field)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range root.sel {
			fieldsUnder(c, nil, func(n *node, _ []string) { reached[n.key()] = true })
		}
	}
	for key := range reached {
		if _, ok := fieldAccess[key]; !ok {
			missing = append(missing, key)
		}
	}
	for key := range fieldAccess {
		if !reached[key] {
			t.Errorf("fieldAccess lists %s, which no root field reaches", key)
		}
	}
	for name := range operations {
		if !slices.Contains(rootFields(s), name) {
			t.Errorf("operations lists %s, which the schema does not have", name)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Fatalf("fields without an access expectation in server/authz_test.go (fieldAccess): %v", missing)
	}
}

// TestAccessMatrix tries every root field as every caller. Where the caller
// may use the root field, it selects every field reachable from it that the
// caller may read (all must answer, with data) and probes each field the
// caller may not read (each must be refused with the caller's code). No
// answer may hold a marker of an app or lead the caller may not see.
func TestAccessMatrix(t *testing.T) {
	s := schema()
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db)
		srv := httptest.NewServer(f.a.handler)
		defer srv.Close()
		covered := map[string]map[string]bool{}
		readableSomewhere := map[string]map[string]bool{}
		for _, c := range callers {
			covered[c], readableSomewhere[c] = map[string]bool{}, map[string]bool{}
		}
		for _, name := range rootFields(s) {
			op := operations[name]
			typ, field, _ := strings.Cut(name, ".")
			root, err := walk(s, typ, field)
			if err != nil {
				t.Fatal(err)
			}
			for _, caller := range callers {
				m := &matrixRun{t: t, f: f, srv: srv.URL, name: name, op: op, caller: caller}
				if code := op.want[caller]; code != "" {
					m.refusedAtRoot(root, code)
					continue
				}
				reader := caller
				if r, ok := op.readsAs[caller]; ok {
					reader = r
				}
				tree, probes := root.readable(reader)
				data := m.run(tree, nil)
				fieldsUnder(tree, nil, func(n *node, path []string) {
					if n != tree {
						readableSomewhere[caller][n.key()] = true
						if present(data, path, false) {
							covered[caller][n.key()] = true
						}
					}
				})
				for _, p := range probes {
					m.probe(chain(root, p), p[len(p)-1], fieldAccess[p[len(p)-1].key()].code(reader))
				}
			}
		}
		for _, caller := range callers {
			for key := range readableSomewhere[caller] {
				if !covered[caller][key] {
					t.Errorf("%s may read %s, but no root field reached one with data: extend the fixture", caller, key)
				}
			}
		}
	})
}

// matrixRun is one root field tried as one caller.
type matrixRun struct {
	t      *testing.T
	f      *fixture
	srv    string
	name   string
	op     operation
	caller string
}

// send runs the document for tree as the caller and returns data and
// errors, after checking the answer for markers.
func (m *matrixRun) send(tree *node) (map[string]any, []gqlError, string) {
	m.t.Helper()
	doc, vars := m.op.doc(m.f)
	query := fmt.Sprintf(doc, tree.selection())
	var data map[string]any
	var errs []gqlError
	var raw []byte
	if strings.HasPrefix(m.name, "Subscription.") {
		data, errs, raw = m.subscribe(query, vars)
	} else {
		opts := []client.Option{m.f.credentials(m.caller), client.AddHeader("Origin", "https://site.example")}
		for k, v := range vars {
			opts = append(opts, client.Var(k, v))
		}
		resp, err := m.f.a.gql.RawPost(query, m.f.a.withCredentials(opts)...)
		if err != nil {
			m.t.Fatalf("%s as %s: %v\n%s", m.name, m.caller, err, query)
		}
		raw, _ = json.Marshal(resp)
		data, _ = resp.Data.(map[string]any)
		if len(resp.Errors) > 0 {
			json.Unmarshal(resp.Errors, &errs)
		}
	}
	for _, marker := range m.f.forbiddenMarkers(m.caller) {
		if strings.Contains(string(raw), marker) {
			m.t.Errorf("%s as %s: the answer holds %q, which this caller may not see: %s", m.name, m.caller, marker, raw)
		}
	}
	return data, errs, query
}

// run sends the readable tree, which must answer without errors.
func (m *matrixRun) run(tree *node, _ []string) map[string]any {
	data, errs, query := m.send(tree)
	if len(errs) > 0 {
		m.t.Errorf("%s as %s: want every readable field, got errors %+v\n%s", m.name, m.caller, errs, query)
	}
	if data != nil && m.op.after != nil && len(errs) == 0 {
		m.op.after(m.f, data)
	}
	return data
}

func (m *matrixRun) refusedAtRoot(root *node, code string) {
	minimal := *root
	minimal.sel = nil
	data, errs, query := m.send(&minimal)
	if len(errs) != 1 || errs[0].Extensions.Code != code {
		m.t.Errorf("%s as %s: want %s, got %+v\n%s", m.name, m.caller, code, errs, query)
	}
	if data != nil && data[root.field] != nil {
		m.t.Errorf("%s as %s: refused, yet answered %v", m.name, m.caller, data[root.field])
	}
}

// probe asks for one field the caller may not read: it must be refused
// with code at the field or at the object holding it, and show no value.
func (m *matrixRun) probe(tree, leaf *node, code string) {
	data, errs, query := m.send(tree)
	var path []string
	fieldsUnder(tree, nil, func(n *node, p []string) {
		if len(n.sel) == 0 {
			path = p
		}
	})
	if len(errs) == 0 {
		m.t.Errorf("%s as %s: %s was not refused\n%s", m.name, m.caller, leaf.key(), query)
		return
	}
	for _, e := range errs {
		if e.Extensions.Code != code || !isPrefix(e.Path, path) {
			m.t.Errorf("%s as %s: reading %s, want %s at %v or above, got %s %q at %v", m.name, m.caller, leaf.key(), code, path, e.Extensions.Code, e.Message, e.Path)
		}
	}
	if present(data, path, true) {
		m.t.Errorf("%s as %s: %s was refused, yet answered\n%s", m.name, m.caller, leaf.key(), query)
	}
}

// isPrefix reports whether an error's path (names and list indexes) leads
// to the field path (names only) or to a field above it.
func isPrefix(errPath []any, path []string) bool {
	i := 0
	for _, p := range errPath {
		name, ok := p.(string)
		if !ok {
			continue
		}
		if i >= len(path) || path[i] != name {
			return false
		}
		i++
	}
	return i > 0
}

// subscribe subscribes as the caller over a real websocket and returns the
// first event (or the refusal), triggering events until one arrives.
func (m *matrixRun) subscribe(query string, vars map[string]any) (map[string]any, []gqlError, []byte) {
	c, _, err := dialWS(m.t, m.srv, "")
	if err != nil {
		m.t.Fatal(err)
	}
	payload := map[string]any{}
	if b := m.f.bearer(m.caller); b != "" {
		payload["Authorization"] = b
	}
	if ack, err := c.init(payload); err != nil || ack.Type != "connection_ack" {
		m.t.Fatalf("%s as %s: connection_init answered %+v %v", m.name, m.caller, ack, err)
	}
	c.subscribe("1", query, vars)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
				m.f.trigger(m.f.secretA, m.f.appA, m.f.devA1, "alpha_code", markerURL)
			}
		}
	}()
	msg, err := c.next()
	if err != nil {
		m.t.Fatalf("%s as %s: %v", m.name, m.caller, err)
	}
	var out gqlPayload
	switch msg.Type {
	case "next":
		json.Unmarshal(msg.Payload, &out)
	case "error":
		json.Unmarshal(msg.Payload, &out.Errors)
	default:
		m.t.Fatalf("%s as %s: unexpected %+v", m.name, m.caller, msg)
	}
	return out.Data, out.Errors, msg.Payload
}

// Checking every object a field returns costs no query per object: a page of
// events with their definitions, devices and leads asks about the app and
// the caller's membership as often for 50 events as for 2. (Other queries
// depend on how the dataloaders' batches fall, so they are not counted.)
func TestAuthorizationCostsNoQueryPerObject(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		// Callbacks are registered before the server starts: its background
		// work (consumers, the delivery dispatcher) runs statements at once.
		counting := db.Session(&gorm.Session{NewDB: true})
		var queries atomic.Int64
		name := unique("count-queries-")
		counting.Callback().Query().Before("gorm:query").Register(name, func(tx *gorm.DB) {
			if tx.Statement.Context.Value(countQueriesKey{}) != nil && (tx.Statement.Table == "memberships" || tx.Statement.Table == "apps") {
				queries.Add(1)
			}
		})
		a := newAPI(t, db)
		appID, secret := a.createApp("Counted")
		page := func(n int) int64 {
			before := queries.Load()
			a.do(`query($a: ID!, $n: Int) { events(appId: $a, first: $n) { edges { node { code definition { name } device { id userAgent lead { email devices { id } } } lead { name } } } } }`,
				client.Var("a", appID), client.Var("n", n), func(r *client.Request) {
					r.HTTP = r.HTTP.WithContext(context.WithValue(r.HTTP.Context(), countQueriesKey{}, true))
				})
			return queries.Load() - before
		}
		for i := range 50 {
			d := fmt.Sprintf("device-%d", i%25)
			f := &fixture{a: a}
			if i < 25 {
				f.identify(appID, secret, d, d+"@example.com", nil)
			}
			f.trigger(secret, appID, d, "view", "https://s.example/")
		}
		small, large := page(2), page(50)
		if small == 0 || large != small {
			t.Fatalf("a page of 2 events asked %d times about the app and membership, a page of 50 %d times", small, large)
		}
	})
}

type countQueriesKey struct{}

// freshIngestToken makes an ingest token of app A as its owner; it returns
// the token's id, and keeps the token for webhook calls.
func (f *fixture) freshIngestToken() string {
	t, token, err := models.CreateIngestToken(context.Background(), f.a.db, models.Viewer{UserID: f.userIDs[owner]}, f.appA, unique("token "))
	if err != nil {
		f.a.t.Fatal(err)
	}
	f.ingestToken = token
	return models.FormatID(t.ID)
}

// webhook posts a Bento-style body through the ingest token.
func (f *fixture) webhook(token, integration, body string) {
	req := httptest.NewRequest(http.MethodPost, "/webhooks/"+token+"/"+integration+"/track", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	f.a.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"results":1`) {
		f.a.t.Fatalf("webhook: %d %s", rec.Code, rec.Body)
	}
}
