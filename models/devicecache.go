package models

import (
	"sync"
	"time"

	"gorm.io/gorm"
)

// recentDevices remembers the devices this process stored in the last
// minute, so a device's next events skip the device upsert: most visitors
// send several events within seconds. A device's first/last seen times are
// therefore exact to the minute. Entries are added only after their commit;
// any delete of devices (erasing a lead) forgets them all, and other replicas
// forget theirs within the minute, after which the device row is recreated.
type recentDevices struct {
	mu sync.Mutex
	m  map[DeviceKey]recentDevice
}

type recentDevice struct {
	first, last time.Time // the stored seen times
	stored      time.Time // when this process stored them
}

const (
	recentDeviceTTL  = time.Minute
	maxRecentDevices = 200_000
)

func newRecentDevices(db *gorm.DB) *recentDevices {
	r := &recentDevices{m: map[DeviceKey]recentDevice{}}
	name := "crumbs:devices:" + randomToken(8)
	db.Callback().Delete().After("gorm:delete").Register(name, func(tx *gorm.DB) {
		if tx.Statement.Schema != nil && tx.Statement.Schema.Table == "devices" {
			r.forget()
		}
	})
	return r
}

// covers reports whether the stored row of k already says what an event at
// `at` would write, closely enough.
func (r *recentDevices) covers(k DeviceKey, at, now time.Time) bool {
	r.mu.Lock()
	d, ok := r.m[k]
	r.mu.Unlock()
	return ok && now.Sub(d.stored) < recentDeviceTTL && !at.Before(d.first) && at.Sub(d.last) < recentDeviceTTL
}

func (r *recentDevices) remember(devices []*deviceSeen, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.m)+len(devices) > maxRecentDevices {
		clear(r.m)
	}
	for _, d := range devices {
		k := DeviceKey{d.appID, d.deviceID}
		prev, ok := r.m[k]
		if ok && now.Sub(prev.stored) < recentDeviceTTL {
			d.first, d.last = minTime(d.first, prev.first), maxTime(d.last, prev.last)
		}
		r.m[k] = recentDevice{first: d.first, last: d.last, stored: now}
	}
}

func (r *recentDevices) forget() {
	r.mu.Lock()
	clear(r.m)
	r.mu.Unlock()
}
