package graph

import (
	"context"
	"errors"
	"log/slog"

	"github.com/crumbs-dev/crumbs/graph/model"
	"github.com/crumbs-dev/crumbs/models"
)

func deref[T any](p *T, fallback T) T {
	if p == nil {
		return fallback
	}
	return *p
}

func eventConnection(page *models.EventPage) *model.EventConnection {
	conn := &model.EventConnection{Edges: make([]*model.EventEdge, len(page.Events)), PageInfo: &model.PageInfo{HasNextPage: page.HasNextPage}}
	for i, e := range page.Events {
		conn.Edges[i] = &model.EventEdge{Cursor: e.Cursor(), Node: e}
	}
	if n := len(conn.Edges); n > 0 {
		conn.PageInfo.EndCursor = &conn.Edges[n-1].Cursor
	}
	return conn
}

func appPublicID(ctx context.Context, appID uint64) (string, error) {
	app, err := loadersFrom(ctx).apps.Load(ctx, appID)
	if err != nil {
		return "", err
	}
	return app.PublicID, nil
}

func triggerInput(ctx context.Context, in *model.TriggerInput) models.TriggerInput {
	info := RequestInfoFrom(ctx)
	out := models.TriggerInput{
		AppPublicID: in.AppID, DeviceID: in.DeviceID, Code: in.Code,
		URL: deref(in.URL, ""), Referrer: deref(in.Referrer, ""), Title: deref(in.Title, ""),
		Properties: in.Properties, OccurredAt: in.OccurredAt, MessageID: in.MessageID,
		UserAgent: info.UserAgent, Secret: viewer(ctx).Secret, Credential: viewer(ctx).Err, Origin: info.Origin, ClientIP: info.ClientIP,
	}
	if in.Source != nil {
		out.Source = string(*in.Source)
	}
	return out
}

// noteRateLimit turns the response into a 429 with Retry-After when err is a
// rate limit.
func noteRateLimit(ctx context.Context, err error) {
	var limited *models.RateLimitError
	if errors.As(err, &limited) {
		setRateLimited(ctx, limited.RetryAfter)
	}
}

// triggerResult maps an outcome; with log set, a refusal becomes the item's error.
func triggerResult(ctx context.Context, log *slog.Logger, res models.TriggerResult) *model.TriggerResult {
	out := &model.TriggerResult{Accepted: res.Accepted, Duplicate: res.Duplicate}
	if res.EventID != 0 {
		id := models.FormatID(res.EventID)
		out.EventID = &id
	}
	if res.Err != nil && log != nil {
		code, msg, field := triggerError(ctx, log, res.Err)
		out.Error = &model.TriggerError{Code: code, Message: msg, Field: field}
	}
	return out
}
