package graph

import (
	"context"
	"fmt"

	"github.com/crumbs-dev/crumbs/graph/generated"
	"github.com/crumbs-dev/crumbs/graph/model"
	"github.com/crumbs-dev/crumbs/models"
)

// AppID is the resolver for the appId field.
func (r *invitationResolver) AppID(ctx context.Context, obj *models.Invitation) (string, error) {
	return appPublicID(ctx, obj.AppID)
}

// Role is the resolver for the role field.
func (r *invitationResolver) Role(ctx context.Context, obj *models.Invitation) (model.Role, error) {
	return model.Role(obj.Role), nil
}

// User is the resolver for the user field.
func (r *memberResolver) User(ctx context.Context, obj *models.Membership) (*models.User, error) {
	user, err := load(ctx, loadersFrom(ctx).users, obj.UserID)
	if err == nil && user == nil {
		err = fmt.Errorf("user %d is gone: %w", obj.UserID, models.ErrNotFound)
	}
	return user, err
}

// Role is the resolver for the role field.
func (r *memberResolver) Role(ctx context.Context, obj *models.Membership) (model.Role, error) {
	return model.Role(obj.Role), nil
}

// Login is the resolver for the login field.
func (r *mutationResolver) Login(ctx context.Context, email string, password string) (*models.Session, error) {
	s, err := r.Tokens.Login(ctx, r.DB, RequestInfoFrom(ctx).ClientIP, email, password)
	noteRateLimit(ctx, err)
	return s, err
}

// RefreshToken is the resolver for the refreshToken field.
func (r *mutationResolver) RefreshToken(ctx context.Context, refreshToken string) (*models.Session, error) {
	s, err := r.Tokens.Refresh(ctx, r.DB, RequestInfoFrom(ctx).ClientIP, refreshToken)
	noteRateLimit(ctx, err)
	return s, err
}

// Logout is the resolver for the logout field.
func (r *mutationResolver) Logout(ctx context.Context, refreshToken string) (bool, error) {
	return true, r.Tokens.Logout(ctx, r.DB, refreshToken)
}

// LogoutEverywhere is the resolver for the logoutEverywhere field.
func (r *mutationResolver) LogoutEverywhere(ctx context.Context) (bool, error) {
	return true, r.Tokens.LogoutEverywhere(ctx, r.DB, viewer(ctx))
}

// ChangePassword is the resolver for the changePassword field.
func (r *mutationResolver) ChangePassword(ctx context.Context, currentPassword string, newPassword string) (bool, error) {
	err := r.Tokens.ChangePassword(ctx, r.DB, viewer(ctx), RequestInfoFrom(ctx).ClientIP, currentPassword, newPassword)
	noteRateLimit(ctx, err)
	return true, err
}

// DeleteAccount is the resolver for the deleteAccount field.
func (r *mutationResolver) DeleteAccount(ctx context.Context, password string) (bool, error) {
	err := r.Tokens.DeleteAccount(ctx, r.DB, viewer(ctx), RequestInfoFrom(ctx).ClientIP, password)
	noteRateLimit(ctx, err)
	return err == nil, err
}

// AcceptInvitation is the resolver for the acceptInvitation field.
func (r *mutationResolver) AcceptInvitation(ctx context.Context, token string, name *string, password string) (*models.Session, error) {
	s, err := r.Tokens.AcceptInvitation(ctx, r.DB, RequestInfoFrom(ctx).ClientIP, token, deref(name, ""), password)
	noteRateLimit(ctx, err)
	return s, err
}

// AddMember is the resolver for the addMember field.
func (r *mutationResolver) AddMember(ctx context.Context, appID string, email string, role model.Role) (*model.AddMemberPayload, error) {
	res, err := models.AddMember(ctx, r.DB, viewer(ctx), appID, email, models.Role(role))
	if err != nil {
		return nil, err
	}
	return &model.AddMemberPayload{Invitation: res.Invitation, InvitationToken: res.Token}, nil
}

// RevokeInvitation is the resolver for the revokeInvitation field.
func (r *mutationResolver) RevokeInvitation(ctx context.Context, appID string, id string) (*model.DeletePayload, error) {
	inv, err := models.RevokeInvitation(ctx, r.DB, viewer(ctx), appID, id)
	if err != nil {
		return nil, err
	}
	return &model.DeletePayload{ID: models.FormatID(inv.ID)}, nil
}

// SetMemberRole is the resolver for the setMemberRole field.
func (r *mutationResolver) SetMemberRole(ctx context.Context, appID string, userID string, role model.Role) (*models.Membership, error) {
	return models.SetMemberRole(ctx, r.DB, viewer(ctx), appID, userID, models.Role(role))
}

// RemoveMember is the resolver for the removeMember field.
func (r *mutationResolver) RemoveMember(ctx context.Context, appID string, userID string) (bool, error) {
	return true, models.RemoveMember(ctx, r.DB, viewer(ctx), appID, userID)
}

// Me is the resolver for the me field.
func (r *queryResolver) Me(ctx context.Context) (*models.User, error) {
	return models.Me(ctx, r.DB, viewer(ctx))
}

// Members is the resolver for the members field.
func (r *queryResolver) Members(ctx context.Context, appID string) ([]*models.Membership, error) {
	return models.Members(ctx, r.DB, viewer(ctx), appID)
}

// Invitations is the resolver for the invitations field.
func (r *queryResolver) Invitations(ctx context.Context, appID string) ([]*models.Invitation, error) {
	return models.Invitations(ctx, r.DB, viewer(ctx), appID)
}

// Invitation returns generated.InvitationResolver implementation.
func (r *Resolver) Invitation() generated.InvitationResolver { return &invitationResolver{r} }

// Member returns generated.MemberResolver implementation.
func (r *Resolver) Member() generated.MemberResolver { return &memberResolver{r} }

type (
	invitationResolver struct{ *Resolver }
	memberResolver     struct{ *Resolver }
)
