package graph

import (
	"log/slog"

	"github.com/crumbs-dev/crumbs/models"
	"gorm.io/gorm"
)

// Resolver holds what the resolvers share: the store, the definition cache and
// the group-commit writer.
type Resolver struct {
	DB      *gorm.DB
	Catalog *models.Catalog
	Writer  *models.Writer
	Tokens  *models.Tokens
	Log     *slog.Logger
	// Automations delivers rule matches (nil: this server runs none).
	Automations *models.Dispatcher
	// Erasures runs erasures detached from their requests (nil: each runs
	// in its request until done).
	Erasures *models.Eraser
	// AppDeletions removes the data of deleted apps; deleteApp wakes it
	// (nil: the apps' rows wait for another replica's).
	AppDeletions *models.AppDeleter
}
