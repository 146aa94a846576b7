package models

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"
	"gorm.io/gorm"
)

// AutomationRule sends the events that match a stored matcher to its
// actions (webhooks, Slack) after they commit; see automation_consumer.go
// for how matches become deliveries and automation_send.go for delivery.
type AutomationRule struct {
	ID        uint64 `gorm:"primaryKey"`
	AppID     uint64 `gorm:"not null;uniqueIndex:idx_automation_rules_app_name,priority:1"`
	Name      string `gorm:"size:200;not null;uniqueIndex:idx_automation_rules_app_name,priority:2"`
	MatcherID uint64 `gorm:"not null;index:idx_automation_rules_matcher_id"`
	// IdentifiedOnly fires only for devices attached to a lead.
	IdentifiedOnly bool      `gorm:"not null"`
	Enabled        bool      `gorm:"not null"`
	CreatedAt      time.Time `gorm:"not null"`
	UpdatedAt      time.Time `gorm:"not null"`
}

// TableName implements gorm's tabler.
func (AutomationRule) TableName() string { return "automation_rules" }

// Action kinds.
const (
	ActionWebhook = "webhook"
	ActionSlack   = "slack"
)

// AutomationAction is one destination of a rule.
type AutomationAction struct {
	ID     uint64 `gorm:"primaryKey"`
	RuleID uint64 `gorm:"not null;index:idx_automation_actions_rule_id"`
	AppID  uint64 `gorm:"not null"`
	Kind   string `gorm:"size:16;not null"`
	URL    string `gorm:"size:2048;not null"`
	// Headers are sent with every webhook; their values are never shown again.
	Headers HeaderList `gorm:"type:text;not null"`
	// Template is the Slack message, with {{field}} placeholders.
	Template string `gorm:"size:2000;not null"`
	// Secret signs webhooks (Standard Webhooks, whsec_...); after a rotation
	// RetiredSecrets sign too, for a day each (automation_secret.go).
	Secret         string         `gorm:"size:64;not null"`
	RetiredSecrets RetiredSecrets `gorm:"type:text"`
	// PreviousSecret and PreviousUntil are the newest retired secret, as
	// the releases before migration 2026120503 kept it (their replicas
	// sign with it during a rolling upgrade).
	PreviousSecret string `gorm:"size:64;not null"`
	PreviousUntil  *time.Time
	// DisabledAt is set when the receiver answered 410 Gone or an editor
	// switched the action off; its deliveries wait until it is enabled again.
	DisabledAt     *time.Time
	DisabledReason string    `gorm:"size:200;not null"`
	CreatedAt      time.Time `gorm:"not null"`
	UpdatedAt      time.Time `gorm:"not null"`
}

// TableName implements gorm's tabler.
func (AutomationAction) TableName() string { return "automation_actions" }

// Header is one custom webhook header.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// HeaderList is stored as JSON.
type HeaderList []Header

// Value implements driver.Valuer.
func (l HeaderList) Value() (driver.Value, error) {
	if l == nil {
		return "[]", nil
	}
	return jsonValue([]Header(l))
}

// Scan implements sql.Scanner.
func (l *HeaderList) Scan(src any) error { return scanJSON(src, (*[]Header)(l)) }

// HeaderHint shows a header without its value: the name and the value's
// last two characters.
type HeaderHint struct {
	Name      string
	ValueHint string
}

// HeaderHints are the action's headers as the API shows them.
func (a *AutomationAction) HeaderHints() []HeaderHint {
	out := make([]HeaderHint, len(a.Headers))
	for i, h := range a.Headers {
		out[i] = HeaderHint{Name: h.Name, ValueHint: secretHint(h.Value)}
	}
	return out
}

// secretHint shows a secret as an ellipsis and, when it has 12 or more
// bytes, its last two.
func secretHint(v string) string {
	if n := len(v); n >= 12 {
		return "…" + v[n-2:]
	}
	return "…"
}

// URLHint is the action's URL as the API shows it. Webhook URLs hold
// credentials in the path as often as in the query (Zapier's
// /hooks/catch/<account>/<key>/, Discord's /api/webhooks/<id>/<token>, the
// random paths of Make and n8n), so a webhook's hint is its scheme and
// host, the segments of its path that read as words (pathWord) up to the
// first that does not, that one and every later one as secretHint shows
// them (an id comes before the key it opens), and "?…" for a query. A
// Slack webhook's whole path is the credential: its hint is the host.
func (a *AutomationAction) URLHint() string {
	u, err := url.Parse(a.URL)
	if err != nil {
		return ""
	}
	hint := u.Scheme + "://" + u.Host
	if a.Kind != ActionWebhook {
		return hint + "/…"
	}
	segments := strings.Split(u.EscapedPath(), "/")
	hiding := false
	for i, seg := range segments {
		if seg != "" && (hiding || !pathWord(seg)) {
			hiding = true
			segments[i] = secretHint(seg)
		}
	}
	hint += strings.Join(segments, "/")
	if u.RawQuery != "" {
		hint += "?…"
	}
	return hint
}

// pathWord reports whether a URL path segment reads as a word, not an id
// or a key: "hooks", "webhook-triggers", "new_lead", "v2". That is 1 to 16
// lowercase ASCII letters in runs joined by single "-", "_" or ".", or "v"
// and one or two digits. A key of lowercase letters alone passes, unless
// it follows an id (a number, a UUID, anything in mixed case or escaped),
// as keys mostly do.
func pathWord(seg string) bool {
	if len(seg) > 16 {
		return false
	}
	if len(seg) >= 2 && len(seg) <= 3 && seg[0] == 'v' && strings.Trim(seg[1:], "0123456789") == "" {
		return true
	}
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case c >= 'a' && c <= 'z':
		case (c == '-' || c == '_' || c == '.') && i > 0 && i < len(seg)-1 && seg[i-1] >= 'a' && seg[i-1] <= 'z':
		default:
			return false
		}
	}
	return true
}

// Disabled reports whether the action is switched off.
func (a *AutomationAction) Disabled() bool { return a.DisabledAt != nil }

// Enabled reports whether the action sends.
func (a *AutomationAction) Enabled() bool { return a.DisabledAt == nil }

// AutomationRuleInput holds the editable fields of a rule; nil means unchanged.
type AutomationRuleInput struct {
	Name           *string
	Matcher        *string // name of a stored EventMatcher
	IdentifiedOnly *bool
	Enabled        *bool
}

// AutomationActionInput holds the editable fields of an action; nil means
// unchanged. Headers replace all headers.
type AutomationActionInput struct {
	Kind     *string
	URL      *string
	Headers  []Header
	Template *string
	Enabled  *bool
	// HeadersOrigin is the origin the headers of an update are given for
	// (its URL, or the URL as the API shows it, names it); without a URL
	// in the same update, the action as read when the update arrives.
	HeadersOrigin *string
}

const (
	maxActionsPerRule = 10
	maxHeaders        = 20
)

// reservedHeaders are set by Crumbs and may not be overridden.
var reservedHeaders = map[string]bool{
	"Content-Type": true, "Content-Length": true, "Host": true, "User-Agent": true,
	"Webhook-Id": true, "Webhook-Timestamp": true, "Webhook-Signature": true,
	"Connection": true, "Transfer-Encoding": true, "Te": true, "Upgrade": true, "Trailer": true,
}

// check validates the fields of in that need no lookup, adding the bad ones
// to bad, and copies them onto r.
func (r *AutomationRule) check(in AutomationRuleInput, bad *validation) {
	if in.Name != nil {
		if name, err := checkName(*in.Name); bad.add(err) {
			r.Name = name
		}
	}
	if in.IdentifiedOnly != nil {
		r.IdentifiedOnly = *in.IdentifiedOnly
	}
	if in.Enabled != nil {
		r.Enabled = *in.Enabled
	}
}

// setMatcher looks up the matcher named in in, if any, for r.
func (r *AutomationRule) setMatcher(ctx context.Context, db *gorm.DB, in AutomationRuleInput) error {
	if in.Matcher != nil {
		m, err := eventMatcherByName(ctx, db, r.AppID, "matcher", *in.Matcher)
		if err != nil {
			return err
		}
		r.MatcherID = m.ID
	}
	return nil
}

// apply validates in and copies it onto a; the error names every bad field.
func (a *AutomationAction) apply(ctx context.Context, guard URLGuard, field string, in AutomationActionInput) error {
	var bad validation
	if in.Kind != nil && bad.check(field+".kind", *in.Kind == ActionWebhook || *in.Kind == ActionSlack, "must be webhook or slack") {
		a.Kind = *in.Kind
	}
	if in.URL != nil {
		u := strings.TrimSpace(*in.URL)
		if err := guard.CheckURL(ctx, u); err != nil {
			bad.add(Invalid(field+".url", "%v", err))
		} else {
			bad.add(a.setURL(field, u, in.Headers != nil))
		}
	}
	bad.add(a.applyChecked(field, in))
	return bad.err()
}

// setURL moves a to the URL u, which the guard passed, unless a's saved
// headers would follow it to another origin: their values are never shown
// again, so they go only to the origin they were saved for, or an editor
// who could point the action elsewhere would read them at their own
// server. headersGiven says the same edit replaces them.
func (a *AutomationAction) setURL(field, u string, headersGiven bool) error {
	if !headersGiven && len(a.Headers) > 0 && !sameOrigin(u, a.URL) {
		return Invalid(field+".headers", "give the headers again (or none) to send them to another origin than %s", urlOrigin(a.URL))
	}
	a.URL = u
	return nil
}

// applyChecked validates the headers, template and switch of in, which need
// no lookup, and copies them onto a; the error names every bad field.
func (a *AutomationAction) applyChecked(field string, in AutomationActionInput) error {
	var bad validation
	if in.Headers != nil {
		if hs, err := a.checkHeaders(field, in.Headers); bad.add(err) {
			a.Headers = hs
		}
	}
	if in.Template != nil && bad.check(field+".template", utf8.RuneCountInString(*in.Template) <= 2000, "at most 2000 characters") {
		a.Template = *in.Template
	}
	if in.Enabled != nil {
		if *in.Enabled {
			a.DisabledAt, a.DisabledReason = nil, ""
		} else if a.DisabledAt == nil {
			now := Now()
			a.DisabledAt, a.DisabledReason = &now, "switched off by an editor"
		}
	}
	return bad.err()
}

// checkHeaders returns headers with canonical names, or refuses them (each
// bad name and value) if the action's kind sends none or net/http would
// refuse to send them: a saved action cannot fail every delivery.
func (a *AutomationAction) checkHeaders(field string, headers []Header) (HeaderList, error) {
	if a.Kind != ActionWebhook && len(headers) > 0 {
		return nil, Invalid(field+".headers", "only webhooks send custom headers")
	}
	if len(headers) > maxHeaders {
		return nil, Invalid(field+".headers", "at most %d headers", maxHeaders)
	}
	hs := make(HeaderList, len(headers))
	seen := map[string]bool{}
	var bad validation
	for i, h := range headers {
		f := fmt.Sprintf("%s.headers.%d", field, i)
		name := http.CanonicalHeaderKey(strings.TrimSpace(h.Name))
		if bad.check(f+".name", name != "" && len(name) <= 100 && httpguts.ValidHeaderFieldName(name) && !reservedHeaders[name],
			"%q cannot be set", truncate(h.Name, 40)) {
			bad.check(f+".name", !seen[name], "%s is given twice", name)
			seen[name] = true
		}
		bad.check(f+".value", len(h.Value) <= 2000 && httpguts.ValidHeaderFieldValue(h.Value),
			"must be one line of at most 2000 bytes, without control characters")
		hs[i] = Header{Name: name, Value: h.Value}
	}
	if err := bad.err(); err != nil {
		return nil, err
	}
	return hs, checkStoredJSON(field+".headers", []Header(hs))
}

// ActionSecret is an action's signing secret, shown once: when the action
// is created and when its secret is rotated.
type ActionSecret struct {
	Action *AutomationAction
	Secret string
}

// CreatedRule is a new rule and the secrets of its actions.
type CreatedRule struct {
	Rule    *AutomationRule
	Secrets []ActionSecret
}

// CreateAutomationRuleFor creates a rule with its actions, for editors of
// the app. Each action's signing secret is in the answer, and only there.
func CreateAutomationRuleFor(ctx context.Context, db *gorm.DB, v Viewer, guard URLGuard, appPublicID string, in AutomationRuleInput, actions []AutomationActionInput) (*CreatedRule, error) {
	app, err := v.App(ctx, db, appPublicID, RoleEditor)
	if err != nil {
		return nil, err
	}
	var bad validation
	bad.check("name", in.Name != nil, "is required")
	bad.check("matcher", in.Matcher != nil, "is required")
	countOK := bad.check("actions", len(actions) > 0 && len(actions) <= maxActionsPerRule, "give 1 to %d actions", maxActionsPerRule)
	r := &AutomationRule{AppID: app.ID}
	r.check(in, &bad)
	var acts []*AutomationAction
	if countOK {
		acts = make([]*AutomationAction, len(actions))
		for i, ain := range actions {
			a, err := newAction(ctx, guard, app.ID, fmt.Sprintf("actions.%d", i), ain)
			bad.add(err)
			acts[i] = a
		}
	}
	if err := bad.err(); err != nil {
		return nil, err
	}
	if err := r.setMatcher(ctx, db, in); err != nil {
		return nil, err
	}
	err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := keepMatchers(tx, map[uint64]string{r.MatcherID: "matcher"}); err != nil {
			return err
		}
		if err := tx.Create(r).Error; err != nil {
			return conflictOnDuplicate(err, "name", "a rule named %q exists in this app", r.Name)
		}
		for _, a := range acts {
			a.RuleID = r.ID
		}
		return tx.Create(acts).Error
	})
	if err != nil {
		return nil, err
	}
	out := &CreatedRule{Rule: r}
	for _, a := range acts {
		out.Secrets = append(out.Secrets, ActionSecret{Action: a, Secret: a.Secret})
	}
	return out, nil
}

func newAction(ctx context.Context, guard URLGuard, appID uint64, field string, in AutomationActionInput) (*AutomationAction, error) {
	var bad validation
	bad.check(field+".kind", in.Kind != nil, "is required")
	bad.check(field+".url", in.URL != nil, "is required")
	a := &AutomationAction{AppID: appID, Headers: HeaderList{}, Secret: newSigningSecret()}
	if in.Kind != nil && bad.add(a.apply(ctx, guard, field, AutomationActionInput{Kind: in.Kind})) {
		if a.Kind != ActionWebhook {
			a.Secret = "" // Slack authenticates by its URL
		}
	} else {
		in.Headers = nil // whether they may be sent depends on the kind
	}
	in.Kind = nil
	bad.add(a.apply(ctx, guard, field, in))
	return a, bad.err()
}

// UpdateAutomationRuleFor changes the given fields of a rule, and only
// those, for editors of the app: concurrent edits of different fields (a
// rename, the switch) do not undo each other. The matcher named is looked
// up first; the rule is then read locked, so the rule it answers is the
// one stored.
func UpdateAutomationRuleFor(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, id string, in AutomationRuleInput) (*AutomationRule, error) {
	return inApp(ctx, db, v, appPublicID, RoleEditor, func(app *App) (*AutomationRule, error) {
		r, err := automationRuleByID(ctx, db, app, "id", id)
		if err != nil {
			return nil, err
		}
		var bad validation
		r.check(in, &bad)
		if err := bad.err(); err != nil {
			return nil, err
		}
		if err := r.setMatcher(ctx, db, in); err != nil {
			return nil, err
		}
		var stored *AutomationRule
		err = withRetry(ctx, func() error {
			return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				// The matcher named and the one the rule moves off first, then
				// the rule: the order DeleteEventMatcher locks in.
				var named map[uint64]string
				var leaving []uint64
				if in.Matcher != nil {
					current, err := automationRuleByID(ctx, tx, app, "id", id)
					if err != nil {
						return err
					}
					named, leaving = map[uint64]string{r.MatcherID: "matcher"}, []uint64{current.MatcherID}
				}
				if err := keepMatchers(tx, named, leaving...); err != nil {
					return err
				}
				var err error
				if stored, err = automationRuleByID(ctx, forUpdate(tx), app, "id", id); err != nil {
					return err
				}
				if in.Matcher != nil && stored.MatcherID != leaving[0] {
					// Moved meanwhile: this lock comes out of order, and the
					// deadlock it may meet is retried.
					if err := keepMatchers(tx, nil, stored.MatcherID); err != nil {
						return err
					}
				}
				err = tx.Model(&AutomationRule{}).Where("id = ?", stored.ID).Updates(stored.take(r, in)).Error
				return conflictOnDuplicate(err, "name", "a rule named %q exists in this app", r.Name)
			})
		})
		if err != nil {
			return nil, err
		}
		return stored, nil
	})
}

// take copies the fields that in gives from edited onto r and returns
// their columns, with updated_at.
func (r *AutomationRule) take(edited *AutomationRule, in AutomationRuleInput) map[string]any {
	r.UpdatedAt = Now()
	changes := map[string]any{"updated_at": r.UpdatedAt}
	if in.Name != nil {
		r.Name = edited.Name
		changes["name"] = r.Name
	}
	if in.Matcher != nil {
		r.MatcherID = edited.MatcherID
		changes["matcher_id"] = r.MatcherID
	}
	if in.IdentifiedOnly != nil {
		r.IdentifiedOnly = edited.IdentifiedOnly
		changes["identified_only"] = r.IdentifiedOnly
	}
	if in.Enabled != nil {
		r.Enabled = edited.Enabled
		changes["enabled"] = r.Enabled
	}
	return changes
}

// DeleteAutomationRuleFor deletes a rule, its actions and its delivery log,
// for editors of the app.
func DeleteAutomationRuleFor(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, id string) (*AutomationRule, error) {
	return inApp(ctx, db, v, appPublicID, RoleEditor, func(app *App) (*AutomationRule, error) {
		r, err := automationRuleByID(ctx, db, app, "id", id)
		if err != nil {
			return nil, err
		}
		return r, withRetry(ctx, func() error {
			return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				if _, err := deleteDeliveries(tx, "rule_id = ?", r.ID); err != nil {
					return err
				}
				if err := tx.Where("rule_id = ?", r.ID).Delete(&AutomationAction{}).Error; err != nil {
					return err
				}
				return tx.Delete(r).Error
			})
		})
	})
}

// AddAutomationActionFor adds an action to a rule, for editors of the app.
func AddAutomationActionFor(ctx context.Context, db *gorm.DB, v Viewer, guard URLGuard, appPublicID, ruleID string, in AutomationActionInput) (*ActionSecret, error) {
	return inApp(ctx, db, v, appPublicID, RoleEditor, func(app *App) (*ActionSecret, error) {
		r, err := automationRuleByID(ctx, db, app, "ruleId", ruleID)
		if err != nil {
			return nil, err
		}
		a, err := newAction(ctx, guard, app.ID, "input", in)
		if err != nil {
			return nil, err
		}
		a.RuleID = r.ID
		err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var n int64
			if err := forUpdate(tx.Model(&AutomationAction{})).Where("rule_id = ?", r.ID).Count(&n).Error; err != nil {
				return err
			}
			if n >= maxActionsPerRule {
				return Invalid("ruleId", "a rule has at most %d actions", maxActionsPerRule)
			}
			return tx.Create(a).Error
		})
		if err != nil {
			return nil, err
		}
		return &ActionSecret{Action: a, Secret: a.Secret}, nil
	})
}

// UpdateAutomationActionFor changes the given fields of an action, and
// only those, for editors of the app: an edit of the URL or template does
// not switch back on an action that a 410 Gone disabled meanwhile. The
// input is checked first (its URL may need a DNS lookup, which no lock
// should wait for); the action is then read locked, and what depends on
// fields the input leaves as they are is checked again against the stored
// ones: headers go only to the origin they were saved for, and headers
// given without a URL only to the origin they were given for, so a
// headers edit that lands after someone moved the action elsewhere is
// CONFLICT. Enabling an action that a 410 disabled lets its waiting
// deliveries go.
func UpdateAutomationActionFor(ctx context.Context, db *gorm.DB, v Viewer, guard URLGuard, appPublicID, id string, in AutomationActionInput) (*AutomationAction, error) {
	return inApp(ctx, db, v, appPublicID, RoleEditor, func(app *App) (*AutomationAction, error) {
		a, err := automationActionByID(ctx, db, app, "id", id)
		if err != nil {
			return nil, err
		}
		var bad validation
		bad.check("input.kind", in.Kind == nil || *in.Kind == a.Kind, "cannot change; add a new action instead")
		in.Kind = nil
		headersFor := urlOrigin(a.URL)
		bad.add(a.apply(ctx, guard, "input", in))
		if in.HeadersOrigin != nil {
			given := urlOrigin(strings.TrimSpace(*in.HeadersOrigin))
			if bad.check("input.headersOrigin", in.Headers != nil, "give it with headers") &&
				bad.check("input.headersOrigin", strings.HasPrefix(given, "http://") || strings.HasPrefix(given, "https://"), "is not an http(s) origin (scheme://host[:port])") &&
				in.URL != nil {
				bad.check("input.headersOrigin", sameOrigin(given, strings.TrimSpace(*in.URL)), "is not the origin of url")
			}
			headersFor = given
		}
		if err := bad.err(); err != nil {
			return nil, err
		}
		var stored *AutomationAction
		err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var err error
			if stored, err = automationActionByID(ctx, forUpdate(tx), app, "id", id); err != nil {
				return err
			}
			changes := map[string]any{}
			if in.URL != nil {
				if err := stored.setURL("input", a.URL, in.Headers != nil); err != nil {
					return err
				}
				changes["url"] = stored.URL
			} else if len(in.Headers) > 0 && !sameOrigin(stored.URL, headersFor) {
				return ConflictOn("input.headers", "the action was moved to %s meanwhile; these headers were given for %s: give them again for where it is now",
					urlOrigin(stored.URL), headersFor)
			}
			if err := stored.applyChecked("input", in); err != nil {
				return err
			}
			if in.Headers != nil {
				changes["headers"] = stored.Headers
			}
			if in.Template != nil {
				changes["template"] = stored.Template
			}
			if in.Enabled != nil {
				changes["disabled_at"], changes["disabled_reason"] = stored.DisabledAt, stored.DisabledReason
			}
			stored.UpdatedAt = Now()
			changes["updated_at"] = stored.UpdatedAt
			return tx.Model(&AutomationAction{}).Where("id = ?", stored.ID).Updates(changes).Error
		})
		if err != nil {
			return nil, err
		}
		return stored, nil
	})
}

// DeleteAutomationActionFor deletes an action and its delivery log, for
// editors of the app.
func DeleteAutomationActionFor(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, id string) (*AutomationAction, error) {
	return inApp(ctx, db, v, appPublicID, RoleEditor, func(app *App) (*AutomationAction, error) {
		a, err := automationActionByID(ctx, db, app, "id", id)
		if err != nil {
			return nil, err
		}
		return a, withRetry(ctx, func() error {
			return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				if _, err := deleteDeliveries(tx, "action_id = ?", a.ID); err != nil {
					return err
				}
				return tx.Delete(a).Error
			})
		})
	})
}

// AutomationRulesFor lists the app's rules, for viewers of the app.
func AutomationRulesFor(ctx context.Context, db *gorm.DB, v Viewer, appPublicID string) ([]*AutomationRule, error) {
	return inApp(ctx, db, v, appPublicID, RoleViewer, func(app *App) ([]*AutomationRule, error) {
		var rules []*AutomationRule
		err := db.WithContext(ctx).Where("app_id = ?", app.ID).Order("id").Find(&rules).Error
		return rules, err
	})
}

// AutomationRuleFor returns one rule of the app, for viewers of the app.
func AutomationRuleFor(ctx context.Context, db *gorm.DB, v Viewer, appPublicID, id string) (*AutomationRule, error) {
	return inApp(ctx, db, v, appPublicID, RoleViewer, func(app *App) (*AutomationRule, error) {
		return automationRuleByID(ctx, db, app, "id", id)
	})
}

// ActionsOfRules loads the actions of rules, for dataloaders.
func ActionsOfRules(ctx context.Context, db *gorm.DB, ruleIDs []uint64) (map[uint64][]*AutomationAction, error) {
	var acts []*AutomationAction
	if err := db.WithContext(ctx).Where("rule_id IN ?", ruleIDs).Order("id").Find(&acts).Error; err != nil {
		return nil, err
	}
	out := map[uint64][]*AutomationAction{}
	for _, a := range acts {
		out[a.RuleID] = append(out[a.RuleID], a)
	}
	return out, nil
}

// AutomationRulesByID loads rules by id, for dataloaders.
func AutomationRulesByID(ctx context.Context, db *gorm.DB, ids []uint64) (map[uint64]*AutomationRule, error) {
	return loadByID(ctx, db, ids, func(r *AutomationRule) uint64 { return r.ID })
}

// automationRuleByID returns the app's rule id, given in the argument field.
func automationRuleByID(ctx context.Context, db *gorm.DB, app *App, field, id string) (*AutomationRule, error) {
	n, err := ParseID(field, id)
	if err != nil {
		return nil, err
	}
	var r AutomationRule
	err = db.WithContext(ctx).Where("app_id = ? AND id = ?", app.ID, n).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, newError(ErrNotFound, "rule not found")
	}
	return &r, err
}

func automationActionByID(ctx context.Context, db *gorm.DB, app *App, field, id string) (*AutomationAction, error) {
	n, err := ParseID(field, id)
	if err != nil {
		return nil, err
	}
	var a AutomationAction
	err = db.WithContext(ctx).Where("app_id = ? AND id = ?", app.ID, n).Take(&a).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, newError(ErrNotFound, "action not found")
	}
	return &a, err
}
