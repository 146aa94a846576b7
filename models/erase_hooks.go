package models

import (
	"sync"
	"time"

	"gorm.io/gorm"
)

// Erasure says what one erasure transaction removes, for the erase hooks.
type Erasure struct {
	AppID uint64
	// Kind is the audit kind: AuditEraseLead, AuditEraseDevice,
	// AuditEraseBefore or AuditRetention.
	Kind string
	// DeviceIDs are the erased devices (eraseLead, eraseDevice); nil when
	// the erasure is by date.
	DeviceIDs []string
	// Before is set when everything of the app older than it goes
	// (eraseBefore, retention).
	Before *time.Time
}

var eraseHooks struct {
	sync.RWMutex
	list []func(tx *gorm.DB, e Erasure) error
}

// RegisterEraseHook adds h to the functions every erasure calls inside its
// transaction, after deleting the events and before writing its receipt,
// so that data derived elsewhere (webhook delivery payloads, ...) goes with
// them. An error rolls the erasure back. Register from an init function.
func RegisterEraseHook(h func(tx *gorm.DB, e Erasure) error) {
	eraseHooks.Lock()
	defer eraseHooks.Unlock()
	eraseHooks.list = append(eraseHooks.list, h)
}

func runEraseHooks(tx *gorm.DB, e Erasure) error {
	eraseHooks.RLock()
	list := eraseHooks.list
	eraseHooks.RUnlock()
	for _, h := range list {
		if err := h(tx, e); err != nil {
			return err
		}
	}
	return nil
}
