package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/crumbs-dev/crumbs/graph/generated"
	"github.com/crumbs-dev/crumbs/graph/model"
	"github.com/crumbs-dev/crumbs/models"
)

// ActorUserID is the resolver for the actorUserId field.
func (r *auditRecordResolver) ActorUserID(ctx context.Context, obj *models.AuditRecord) (*string, error) {
	if obj.ActorUserID == nil {
		return nil, nil
	}
	id := models.FormatID(*obj.ActorUserID)
	return &id, nil
}

// AppID is the resolver for the appId field.
func (r *deviceResolver) AppID(ctx context.Context, obj *models.Device) (string, error) {
	return appPublicID(ctx, obj.AppID)
}

// Lead is the resolver for the lead field.
func (r *deviceResolver) Lead(ctx context.Context, obj *models.Device) (*models.Lead, error) {
	if obj.LeadID == nil {
		return nil, nil
	}
	return load(ctx, loadersFrom(ctx).leads, *obj.LeadID)
}

// Timeline is the resolver for the timeline field.
func (r *deviceResolver) Timeline(ctx context.Context, obj *models.Device, first *int, after *string) (*model.EventConnection, error) {
	page, err := models.DeviceTimeline(ctx, r.DB, obj, deref(first, 50), deref(after, ""))
	if err != nil {
		return nil, err
	}
	return eventConnection(page), nil
}

// FromLead is the resolver for the fromLead field.
func (r *deviceMoveResolver) FromLead(ctx context.Context, obj *models.DeviceMove) (*models.Lead, error) {
	if obj.FromLeadID == nil {
		return nil, nil
	}
	return load(ctx, loadersFrom(ctx).leads, *obj.FromLeadID)
}

// ToLead is the resolver for the toLead field.
func (r *deviceMoveResolver) ToLead(ctx context.Context, obj *models.DeviceMove) (*models.Lead, error) {
	lead, err := load(ctx, loadersFrom(ctx).leads, obj.ToLeadID)
	if err == nil && lead == nil {
		err = fmt.Errorf("lead %d was erased: %w", obj.ToLeadID, models.ErrNotFound)
	}
	return lead, err
}

// ReceiptID is the resolver for the receiptId field.
func (r *eraseLeadPayloadResolver) ReceiptID(ctx context.Context, obj *models.EraseResult) (*string, error) {
	if obj.ReceiptID == 0 {
		return nil, nil
	}
	id := models.FormatID(obj.ReceiptID)
	return &id, nil
}

// ErasureID is the resolver for the erasureId field.
func (r *eraseLeadPayloadResolver) ErasureID(ctx context.Context, obj *models.EraseResult) (*string, error) {
	if obj.ErasureID == 0 {
		return nil, nil
	}
	id := models.FormatID(obj.ErasureID)
	return &id, nil
}

// AppID is the resolver for the appId field.
func (r *leadResolver) AppID(ctx context.Context, obj *models.Lead) (string, error) {
	return appPublicID(ctx, obj.AppID)
}

// Fields is the resolver for the fields field.
func (r *leadResolver) Fields(ctx context.Context, obj *models.Lead) (map[string]any, error) {
	return obj.Fields, nil
}

// Devices is the resolver for the devices field.
func (r *leadResolver) Devices(ctx context.Context, obj *models.Lead) ([]*models.Device, error) {
	return load(ctx, loadersFrom(ctx).leadDevices, obj.ID)
}

// FirstSeenAt is the resolver for the firstSeenAt field.
func (r *leadResolver) FirstSeenAt(ctx context.Context, obj *models.Lead) (*time.Time, error) {
	stats, err := load(ctx, loadersFrom(ctx).leadStats, obj.ID)
	if err != nil || stats == nil || stats.FirstSeenAt == nil {
		return &obj.CreatedAt, err
	}
	return stats.FirstSeenAt, nil
}

// LastSeenAt is the resolver for the lastSeenAt field.
func (r *leadResolver) LastSeenAt(ctx context.Context, obj *models.Lead) (*time.Time, error) {
	stats, err := load(ctx, loadersFrom(ctx).leadStats, obj.ID)
	if err != nil || stats == nil || stats.LastSeenAt == nil {
		return &obj.UpdatedAt, err
	}
	return stats.LastSeenAt, nil
}

// EventCount is the resolver for the eventCount field.
func (r *leadResolver) EventCount(ctx context.Context, obj *models.Lead) (int, error) {
	stats, err := load(ctx, loadersFrom(ctx).leadStats, obj.ID)
	if err != nil || stats == nil {
		return 0, err
	}
	return int(stats.EventCount), nil
}

// DeviceMoves is the resolver for the deviceMoves field.
func (r *leadResolver) DeviceMoves(ctx context.Context, obj *models.Lead) ([]*models.DeviceMove, error) {
	return load(ctx, loadersFrom(ctx).leadMoves, obj.ID)
}

// Timeline is the resolver for the timeline field.
func (r *leadResolver) Timeline(ctx context.Context, obj *models.Lead, first *int, after *string) (*model.EventConnection, error) {
	page, err := models.LeadTimeline(ctx, r.DB, obj, deref(first, 50), deref(after, ""))
	if err != nil {
		return nil, err
	}
	return eventConnection(page), nil
}

// Narrative is the resolver for the narrative field.
func (r *leadResolver) Narrative(ctx context.Context, obj *models.Lead) (string, error) {
	return models.LeadNarrative(ctx, r.DB, obj)
}

// Context is the resolver for the context field.
func (r *leadResolver) Context(ctx context.Context, obj *models.Lead) (any, error) {
	c, err := models.LeadContextOf(ctx, r.DB, obj)
	if err != nil {
		return nil, err
	}
	// As plain JSON values, in the struct's field order once marshalled.
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	return out, json.Unmarshal(raw, &out)
}

// Identify is the resolver for the identify field.
func (r *mutationResolver) Identify(ctx context.Context, input model.IdentifyInput) (*model.IdentifyPayload, error) {
	res, err := r.Writer.Identify(ctx, r.DB, models.IdentifyInput{
		AppPublicID: input.AppID, DeviceID: input.DeviceID, Email: input.Email,
		Name: input.Name, Fields: input.Fields, UserAgent: RequestInfoFrom(ctx).UserAgent,
		Secret: viewer(ctx).Secret, Credential: viewer(ctx).Err, Origin: RequestInfoFrom(ctx).Origin,
		ClientIP: RequestInfoFrom(ctx).ClientIP,
	})
	noteRateLimit(ctx, err)
	if err != nil {
		return nil, err
	}
	return &model.IdentifyPayload{Lead: res.Lead, Device: res.Device, Moved: res.Moved}, nil
}

// EraseLead is the resolver for the eraseLead field.
func (r *mutationResolver) EraseLead(ctx context.Context, appID string, email string) (*models.EraseResult, error) {
	if r.Erasures == nil {
		return models.EraseLead(ctx, r.DB, viewer(ctx), appID, email)
	}
	return r.Erasures.EraseLead(ctx, viewer(ctx), appID, email)
}

// EraseDevice is the resolver for the eraseDevice field.
func (r *mutationResolver) EraseDevice(ctx context.Context, appID string, deviceID string) (*models.EraseResult, error) {
	if r.Erasures == nil {
		return models.EraseDevice(ctx, r.DB, viewer(ctx), appID, deviceID)
	}
	return r.Erasures.EraseDevice(ctx, viewer(ctx), appID, deviceID)
}

// EraseBefore is the resolver for the eraseBefore field.
func (r *mutationResolver) EraseBefore(ctx context.Context, appID string, before time.Time) (*models.EraseResult, error) {
	if r.Erasures == nil {
		return models.EraseBefore(ctx, r.DB, viewer(ctx), appID, before)
	}
	return r.Erasures.EraseBefore(ctx, viewer(ctx), appID, before)
}

// Lead is the resolver for the lead field.
func (r *queryResolver) Lead(ctx context.Context, id string) (*models.Lead, error) {
	return models.LeadByID(ctx, r.DB, viewer(ctx), id)
}

// Device is the resolver for the device field.
func (r *queryResolver) Device(ctx context.Context, appID string, deviceID string) (*models.Device, error) {
	return models.DeviceByID(ctx, r.DB, viewer(ctx), appID, deviceID)
}

// Leads is the resolver for the leads field.
func (r *queryResolver) Leads(ctx context.Context, appID string, search *string, first *int, after *string) (*model.LeadConnection, error) {
	page, err := models.Leads(ctx, r.DB, viewer(ctx), appID, deref(search, ""), deref(first, 50), deref(after, ""))
	if err != nil {
		return nil, err
	}
	conn := &model.LeadConnection{Edges: make([]*model.LeadEdge, len(page.Leads)), PageInfo: &model.PageInfo{HasNextPage: page.HasNextPage}}
	for i, l := range page.Leads {
		conn.Edges[i] = &model.LeadEdge{Cursor: models.FormatID(l.ID), Node: l}
	}
	if n := len(conn.Edges); n > 0 {
		conn.PageInfo.EndCursor = &conn.Edges[n-1].Cursor
	}
	return conn, nil
}

// LeadByEmail is the resolver for the leadByEmail field.
func (r *queryResolver) LeadByEmail(ctx context.Context, appID string, email string) (*models.Lead, error) {
	return models.LeadByEmail(ctx, r.DB, viewer(ctx), appID, email)
}

// Erasure is the resolver for the erasure field.
func (r *queryResolver) Erasure(ctx context.Context, appID string, id string) (*models.EraseResult, error) {
	return models.ErasureStatus(ctx, r.DB, viewer(ctx), appID, id)
}

// AuditLog is the resolver for the auditLog field.
func (r *queryResolver) AuditLog(ctx context.Context, appID string, first *int, after *string) (*model.AuditRecordConnection, error) {
	page, err := models.AuditLog(ctx, r.DB, viewer(ctx), appID, deref(first, 50), deref(after, ""))
	if err != nil {
		return nil, err
	}
	conn := &model.AuditRecordConnection{Edges: make([]*model.AuditRecordEdge, len(page.Records)), PageInfo: &model.PageInfo{HasNextPage: page.HasNextPage}}
	for i, rec := range page.Records {
		conn.Edges[i] = &model.AuditRecordEdge{Cursor: models.FormatID(rec.ID), Node: rec}
	}
	if n := len(conn.Edges); n > 0 {
		conn.PageInfo.EndCursor = &conn.Edges[n-1].Cursor
	}
	return conn, nil
}

// AuditRecord returns generated.AuditRecordResolver implementation.
func (r *Resolver) AuditRecord() generated.AuditRecordResolver { return &auditRecordResolver{r} }

// Device returns generated.DeviceResolver implementation.
func (r *Resolver) Device() generated.DeviceResolver { return &deviceResolver{r} }

// DeviceMove returns generated.DeviceMoveResolver implementation.
func (r *Resolver) DeviceMove() generated.DeviceMoveResolver { return &deviceMoveResolver{r} }

// EraseLeadPayload returns generated.EraseLeadPayloadResolver implementation.
func (r *Resolver) EraseLeadPayload() generated.EraseLeadPayloadResolver {
	return &eraseLeadPayloadResolver{r}
}

// Lead returns generated.LeadResolver implementation.
func (r *Resolver) Lead() generated.LeadResolver { return &leadResolver{r} }

type (
	auditRecordResolver      struct{ *Resolver }
	deviceResolver           struct{ *Resolver }
	deviceMoveResolver       struct{ *Resolver }
	eraseLeadPayloadResolver struct{ *Resolver }
	leadResolver             struct{ *Resolver }
)
